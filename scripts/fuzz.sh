#!/usr/bin/env bash
# Runs every cargo-fuzz target of fuzz/ for SECONDS_PER_TARGET seconds each (default 60), one
# after the other, and prints per target: runs, seconds, result.
#
#   scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]
#
# Works on the stable toolchain: RUSTC_BOOTSTRAP=1 unlocks the -Z flags cargo-fuzz passes.
# Environment:
#   FUZZ_TARGET_DIR   cargo target dir (default ~/.cache/sealdb/fuzz-target; never the shared
#                     one: the sanitizer coverage flags would invalidate it)
#   FUZZ_SANITIZER    none (default) | address. The crate forbids unsafe code, so ASan mostly
#                     checks dependencies; `none` gives ~2x the executions per second. Overflow
#                     checks and debug assertions are on either way.
#   FUZZ_CGU          codegen units (default 16: much faster builds on a 2-core machine)
#   FUZZ_ARGS         extra libFuzzer flags, e.g. "-max_len=8192"
#   FUZZ_NO_BUILD=1   run the binaries already built (e.g. while the tree does not compile)
# Corpora grow in fuzz/corpus/<target> (seeded from fuzz/seeds/<target>); crash inputs land
# in fuzz/artifacts/<target>; full logs in $FUZZ_TARGET_DIR/logs/<target>.log.
# Reproduce a crash: scripts/fuzz.sh repro <target> <file>.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
FUZZ_DIR="$ROOT/fuzz"
export RUSTC_BOOTSTRAP=1
# The Makefile exports the shared target dir; fuzz builds never go there.
unset CARGO_TARGET_DIR
FUZZ_TARGET_DIR="${FUZZ_TARGET_DIR:-$HOME/.cache/sealdb/fuzz-target}"
FUZZ_SANITIZER="${FUZZ_SANITIZER:-none}"
FUZZ_CGU="${FUZZ_CGU:-16}"
FUZZ_ARGS="${FUZZ_ARGS:-}"
LOG_DIR="$FUZZ_TARGET_DIR/logs"

if ! command -v cargo-fuzz >/dev/null 2>&1 && [ ! -x "$HOME/.cargo/bin/cargo-fuzz" ]; then
    echo "installing cargo-fuzz into ~/.cargo/bin" >&2
    cargo install cargo-fuzz --locked
fi
export PATH="$HOME/.cargo/bin:$PATH"

build_flags=(--target-dir "$FUZZ_TARGET_DIR" --sanitizer "$FUZZ_SANITIZER" --codegen-units "$FUZZ_CGU")

cd "$FUZZ_DIR"

if [ "${1:-}" = "repro" ]; then
    target="${2:?usage: scripts/fuzz.sh repro TARGET FILE}"
    file="${3:?usage: scripts/fuzz.sh repro TARGET FILE}"
    case "$file" in /*) ;; *) file="$ROOT/$file" ;; esac
    exec cargo fuzz run "${build_flags[@]}" "$target" "$file" -- -runs=1
fi

SECS="${1:-60}"
shift || true
case "$SECS" in *[!0-9]*|'') echo "SECONDS_PER_TARGET must be a number" >&2; exit 2 ;; esac
if [ "$#" -gt 0 ]; then
    targets=("$@")
else
    mapfile -t targets < <(cargo fuzz list)
fi

# Build once, then run the binaries themselves: `cargo fuzz run` would rebuild before every
# target, and every target must fuzz the same snapshot of the tree.
if [ "${FUZZ_NO_BUILD:-0}" != 1 ]; then
    echo "building fuzz targets (sanitizer: $FUZZ_SANITIZER) in $FUZZ_TARGET_DIR" >&2
    cargo fuzz build "${build_flags[@]}"
fi
BIN_DIR="$FUZZ_TARGET_DIR/x86_64-unknown-linux-gnu/release"
mkdir -p "$LOG_DIR"

summary=()
failed=0
for t in "${targets[@]}"; do
    corpus="$FUZZ_DIR/corpus/$t"
    mkdir -p "$corpus" "$FUZZ_DIR/artifacts/$t"
    dirs=("$corpus")
    [ -d "$FUZZ_DIR/seeds/$t" ] && dirs+=("$FUZZ_DIR/seeds/$t")
    dict=()
    [ -f "$FUZZ_DIR/dicts/$t.dict" ] && dict=("-dict=$FUZZ_DIR/dicts/$t.dict")
    log="$LOG_DIR/$t.log"
    echo "== $t: ${SECS}s ==" >&2
    start=$(date +%s)
    set +e
    # -timeout: an input taking 20 s is a hang worth reporting. Single process (no -jobs):
    # the machine is shared.
    # shellcheck disable=SC2086
    # 2 MiB of stack, as a tokio worker thread has: deep recursion must fail cleanly there.
    (ulimit -s 2048 && exec "$BIN_DIR/$t" -artifact_prefix="$FUZZ_DIR/artifacts/$t/" \
        -max_total_time="$SECS" -timeout=20 -rss_limit_mb=2048 -print_final_stats=1 \
        "${dict[@]}" $FUZZ_ARGS "${dirs[@]}") >"$log" 2>&1
    rc=$?
    set -e
    elapsed=$(( $(date +%s) - start ))
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1 || true)
    [ -n "$runs" ] || runs=$(sed -n 's/^Done \([0-9]*\) runs.*/\1/p' "$log" | tail -1 || true)
    cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 | cut -d' ' -f2 || true)
    if [ "$rc" -eq 0 ]; then
        result="clean"
    else
        failed=1
        artifact=$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log" | tail -1)
        result="FAILED rc=$rc ${artifact:-see $log}"
        grep -m3 -E "panicked at|ERROR: libFuzzer|overflowed its stack" "$log" >&2 || true
    fi
    summary+=("$(printf '%-14s %12s runs %6ss  cov %-6s %s' "$t" "${runs:-?}" "$elapsed" "${cov:-?}" "$result")")
    echo "${summary[-1]}" >&2
done

echo
echo "fuzz summary ($(date -u +%Y-%m-%dT%H:%M:%SZ), ${SECS}s per target, sanitizer $FUZZ_SANITIZER):"
printf '%s\n' "${summary[@]}"
exit "$failed"
