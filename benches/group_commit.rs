//! Group commit under concurrency: N writers each run PutItem's storage pattern (read the
//! current value, then a commit that checks it and writes 1 KiB) against one RocksDB store
//! for a fixed time, first as N OS threads calling the blocking `commit`, then as N tasks on
//! a 2-worker tokio runtime awaiting `commit_async` (the request path). Prints puts/s, wall
//! time per put and CPU time per put (user + system of the whole process, from
//! /proc/self/stat), because on a small shared machine the CPU spent per durable put
//! (wake-ups, spinning, syscalls) decides throughput as much as fsync latency.
//!
//! Run: `cargo bench --bench group_commit` (optional args: seconds per case, writer counts,
//! e.g. `-- 3 1 8 32 64`).

use sealdb::storage::{Check, RocksStore, Space, Store, Write};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const VALUE_BYTES: usize = 1024;
const KEYS: u64 = 10_000;

fn key(n: u64) -> Vec<u8> {
    n.wrapping_mul(0x9E37_79B9_7F4A_7C15).to_be_bytes().to_vec()
}

/// utime + stime of this process in clock ticks (Linux: fields 14 and 15 of /proc/self/stat).
fn cpu_ticks() -> u64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // The command name may contain spaces; fields after the closing parenthesis are fixed.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    // After ')' the first field is field 3 (state), so field 14 is at index 11.
    let get = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    get(11) + get(12)
}

// Linux reports /proc times in USER_HZ, which is 100 on every mainstream distribution.
const TICKS_PER_SECOND: f64 = 100.0;

fn one_put(store: &RocksStore, n: u64, value: &mut [u8]) -> (Check, Write) {
    let k = key(n % KEYS);
    let current = store.get(Space::Items, &k).expect("get");
    value[..8].copy_from_slice(&n.to_be_bytes());
    let check = Check {
        space: Space::Items,
        key: k.clone(),
        expect: current,
    };
    let put = Write::Put {
        space: Space::Items,
        key: k,
        value: value.to_vec(),
    };
    (check, put)
}

/// (puts/s, wall µs per put per writer, CPU µs per put) over `seconds`.
fn measure(
    writers: u64,
    seconds: u64,
    body: impl FnOnce(Arc<AtomicBool>, Arc<AtomicU64>),
) -> (f64, f64, f64) {
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicU64::new(0));
    let cpu0 = cpu_ticks();
    let start = Instant::now();
    let (s2, d2) = (stop.clone(), done.clone());
    let timer = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_secs(seconds));
        s2.store(true, Ordering::Relaxed);
    });
    body(stop, d2);
    let _ = timer.join();
    let wall = start.elapsed().as_secs_f64();
    let cpu = (cpu_ticks() - cpu0) as f64 / TICKS_PER_SECOND;
    let n = done.load(Ordering::Relaxed).max(1) as f64;
    (n / wall, wall * writers as f64 / n * 1e6, cpu / n * 1e6)
}

fn run_threads(store: &Arc<RocksStore>, writers: u64, seconds: u64) -> (f64, f64, f64) {
    measure(writers, seconds, |stop, done| {
        let handles: Vec<_> = (0..writers)
            .map(|w| {
                let (store, stop, done) = (store.clone(), stop.clone(), done.clone());
                std::thread::spawn(move || {
                    let mut n = w;
                    let mut value = vec![0xA5u8; VALUE_BYTES];
                    while !stop.load(Ordering::Relaxed) {
                        let (check, put) = one_put(&store, n, &mut value);
                        n += writers;
                        // A lost race (another writer changed the key) is a valid outcome too.
                        let _ = store.commit(&[check], &[put]);
                        done.fetch_add(1, Ordering::Relaxed);
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().expect("writer");
        }
    })
}

fn run_tasks(store: &Arc<RocksStore>, writers: u64, seconds: u64) -> (f64, f64, f64) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .expect("runtime");
    measure(writers, seconds, |stop, done| {
        rt.block_on(async {
            let handles: Vec<_> = (0..writers)
                .map(|w| {
                    let (store, stop, done) = (store.clone(), stop.clone(), done.clone());
                    tokio::spawn(async move {
                        let mut n = w;
                        let mut value = vec![0xA5u8; VALUE_BYTES];
                        while !stop.load(Ordering::Relaxed) {
                            let (check, put) = one_put(&store, n, &mut value);
                            n += writers;
                            let _ = store.commit_async(vec![check], vec![put]).await;
                            done.fetch_add(1, Ordering::Relaxed);
                        }
                    })
                })
                .collect();
            for h in handles {
                let _ = h.await;
            }
        })
    })
}

fn main() {
    // `cargo bench` passes `--bench`; everything numeric is ours.
    let nums: Vec<u64> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let seconds = nums.first().copied().unwrap_or(3);
    let writers: Vec<u64> = if nums.len() > 1 {
        nums[1..].to_vec()
    } else {
        vec![1, 8, 32, 64]
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Arc::new(RocksStore::open(dir.path()).expect("open"));
    println!(
        "{:>8} {:>8} {:>10} {:>14} {:>14}",
        "mode", "writers", "puts/s", "latency µs", "CPU µs/put"
    );
    for w in writers {
        for (mode, run) in [
            ("threads", run_threads as fn(&_, _, _) -> _),
            ("tasks", run_tasks),
        ] {
            let (rate, latency, cpu) = run(&store, w, seconds);
            println!("{mode:>8} {w:>8} {rate:>10.0} {latency:>14.0} {cpu:>14.1}");
        }
    }
}
