#!/usr/bin/env bash
# Creates (or reuses) the project-local Python virtual environment with moto's server, which
# the integration tests start as a second KMS implementation for the `aws` provider.
# Idempotent: a venv whose pinned versions are already installed is left alone (no network).
# Prints the venv's path on stdout; everything else goes to stderr.
# Override the location with SEALDB_VENV.
set -euo pipefail

# Pinned so that CI and every developer test against the same moto (PyPI versions).
MOTO_VERSION=5.2.5
BOTO3_VERSION=1.44.5

VENV="${SEALDB_VENV:-$HOME/.cache/sealdb/venv}"
STAMP="$VENV/.sealdb-pins"
WANT="moto[server]==$MOTO_VERSION boto3==$BOTO3_VERSION"

if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$WANT" ] && [ -x "$VENV/bin/moto_server" ]; then
  echo "$VENV"
  exit 0
fi

PYTHON="${PYTHON:-python3}"
if ! command -v "$PYTHON" >/dev/null 2>&1; then
  echo "python-venv: $PYTHON not found" >&2
  exit 1
fi

mkdir -p "$(dirname "$VENV")"
# Tests and `make test` may run this at the same time: one installs, the others wait.
exec 9>"$VENV.lock"
if command -v flock >/dev/null 2>&1; then
  flock 9
fi
if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$WANT" ] && [ -x "$VENV/bin/moto_server" ]; then
  echo "$VENV"
  exit 0
fi

if [ ! -x "$VENV/bin/python" ]; then
  echo "python-venv: creating $VENV" >&2
  if ! "$PYTHON" -m venv "$VENV" >&2; then
    # Debian's python3 ships venv separately.
    if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" -eq 0 ]; then
      pyver="$("$PYTHON" -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')"
      apt-get update -qq >&2
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "python$pyver-venv" >&2
      rm -rf "$VENV"
      "$PYTHON" -m venv "$VENV" >&2
    else
      echo "python-venv: '$PYTHON -m venv' failed (install the python3-venv package)" >&2
      exit 1
    fi
  fi
fi

echo "python-venv: installing $WANT" >&2
# shellcheck disable=SC2086 # WANT is a list of requirement specifiers.
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check $WANT >&2
echo "$WANT" >"$STAMP"
echo "$VENV"
