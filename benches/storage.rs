//! Storage put/get of 1 KiB values through the `Store` trait on RocksDB.
//!
//! `put_sync` commits one synced write at a time, so it measures one fsync per put.
//! `put_sync_8_writers` runs eight threads committing at once: RocksDB's write group shares
//! one fsync among them (group commit), so the time per put should drop well below the
//! single-writer figure. Run: `cargo bench --bench storage`.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use sealdb::storage::{RocksStore, Space, Store, Write};
use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const VALUE_BYTES: usize = 1024;
const PRELOADED_KEYS: u64 = 10_000;
const WRITERS: u64 = 8;

// Spreads sequential counters over the key space, like HMAC tokens would be.
fn key(n: u64) -> [u8; 8] {
    n.wrapping_mul(0x9E37_79B9_7F4A_7C15).to_be_bytes()
}

fn put(store: &RocksStore, n: u64, value: &[u8]) {
    let w = Write::Put {
        space: Space::Items,
        key: key(n).to_vec(),
        value: value.to_vec(),
    };
    store.commit(&[], &[w]).expect("put");
}

fn bench_storage(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Arc::new(RocksStore::open(dir.path()).expect("open"));
    let value = vec![0xA5u8; VALUE_BYTES];
    // Preload in large commits: one fsync per thousand keys, not per key.
    let batch: Vec<u64> = (0..PRELOADED_KEYS).collect();
    for chunk in batch.chunks(1000) {
        let writes: Vec<Write> = chunk
            .iter()
            .map(|n| Write::Put {
                space: Space::Items,
                key: key(*n).to_vec(),
                value: value.clone(),
            })
            .collect();
        store.commit(&[], &writes).expect("preload");
    }
    let next = Arc::new(AtomicU64::new(PRELOADED_KEYS));

    let mut g = c.benchmark_group("storage_1KiB");
    g.throughput(Throughput::Elements(1));
    g.sample_size(20);
    g.measurement_time(Duration::from_secs(10));

    let mut i = 0u64;
    g.bench_function("get", |b| {
        b.iter(|| {
            i = (i + 1) % PRELOADED_KEYS;
            black_box(store.get(Space::Items, &key(i)).expect("get"))
        })
    });

    g.bench_function("put_sync", |b| {
        b.iter(|| put(&store, next.fetch_add(1, Ordering::Relaxed), &value))
    });

    g.bench_function("put_sync_8_writers", |b| {
        b.iter_custom(|iters| {
            let per_writer = iters.div_ceil(WRITERS);
            let start = Instant::now();
            let handles: Vec<_> = (0..WRITERS)
                .map(|_| {
                    let store = Arc::clone(&store);
                    let next = Arc::clone(&next);
                    let value = value.clone();
                    std::thread::spawn(move || {
                        for _ in 0..per_writer {
                            put(&store, next.fetch_add(1, Ordering::Relaxed), &value);
                        }
                    })
                })
                .collect();
            for h in handles {
                h.join().expect("writer");
            }
            // Report per put: total puts done, not `iters`, so rounding up is not free.
            start
                .elapsed()
                .mul_f64(iters as f64 / (per_writer * WRITERS) as f64)
        })
    });
    g.finish();
}

criterion_group!(benches, bench_storage);
criterion_main!(benches);
