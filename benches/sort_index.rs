//! Sealed sort index: a Limit-10 range on a 100-entry partition versus a 200,000-entry one,
//! on RocksDB, reopened after loading (so the first reads are cold). The index reads
//! O(log n + k) pages, so the large partition should cost one or two page reads (each an
//! AES-GCM open and a decode of ~4 KiB) more than the small one, not 2,000 times as much.
//! Also printed: the page reads of one such range. Run: `cargo bench --bench sort_index`.

use std::hint::black_box;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};
use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};
use ring::rand::{SecureRandom, SystemRandom};
use zeroize::Zeroizing;

use sealdb::protocol::attr::AttributeValue;
use sealdb::storage::sort_index::{
    plan, range, Bound, Change, Entry, PageCrypto, PartitionRef, RangeQuery, SortIndexError,
};
use sealdb::storage::{Check, CommitError, RocksStore, ScanPage, Space, Store, StoreError, Write};

const SMALL: u64 = 100;
const LARGE: u64 = 200_000;
/// Changes per plan while loading: one synced commit each, so loading takes seconds.
const LOAD_BATCH: usize = 500;

/// AES-256-GCM, random nonce, storage key as AAD: what the server's page sealing costs.
struct BenchCrypto {
    key: LessSafeKey,
    rng: SystemRandom,
}

impl PageCrypto for BenchCrypto {
    fn seal(&self, storage_key: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, SortIndexError> {
        let mut iv = [0u8; NONCE_LEN];
        self.rng.fill(&mut iv).map_err(|_| SortIndexError::Seal)?;
        let mut buf = plaintext.to_vec();
        self.key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(iv),
                Aad::from(storage_key),
                &mut buf,
            )
            .map_err(|_| SortIndexError::Seal)?;
        let mut out = iv.to_vec();
        out.extend_from_slice(&buf);
        Ok(out)
    }

    fn open(
        &self,
        storage_key: &[u8],
        sealed: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, SortIndexError> {
        let (iv, ct) = sealed
            .split_at_checked(NONCE_LEN)
            .ok_or(SortIndexError::Integrity)?;
        let nonce = Nonce::try_assume_unique_for_key(iv).map_err(|_| SortIndexError::Integrity)?;
        let mut buf = Zeroizing::new(ct.to_vec());
        let n = self
            .key
            .open_in_place(nonce, Aad::from(storage_key), &mut buf)
            .map_err(|_| SortIndexError::Integrity)?
            .len();
        buf.truncate(n);
        Ok(buf)
    }
}

/// Counts point reads: the index reads pages one `get` at a time.
struct Counting {
    inner: RocksStore,
    gets: AtomicUsize,
}

impl Store for Counting {
    fn get(&self, space: Space, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        self.gets.fetch_add(1, Ordering::Relaxed);
        self.inner.get(space, key)
    }
    fn multi_get(&self, keys: &[(Space, &[u8])]) -> Result<Vec<Option<Vec<u8>>>, StoreError> {
        self.inner.multi_get(keys)
    }
    fn scan(
        &self,
        space: Space,
        start: &[u8],
        end: Option<&[u8]>,
        reverse: bool,
        limit: usize,
    ) -> Result<ScanPage, StoreError> {
        self.inner.scan(space, start, end, reverse, limit)
    }
    fn commit(&self, checks: &[Check], writes: &[Write]) -> Result<(), CommitError> {
        self.inner.commit(checks, writes)
    }
    fn delete_range(&self, space: Space, start: &[u8], end: &[u8]) -> Result<(), StoreError> {
        self.inner.delete_range(space, start, end)
    }
    fn flush_and_compact(&self) -> Result<(), StoreError> {
        self.inner.flush_and_compact()
    }
}

fn token(n: u64) -> [u8; 16] {
    let mut t = [0u8; 16];
    t[..8].copy_from_slice(&n.wrapping_mul(0x9E37_79B9_7F4A_7C15).to_be_bytes());
    t[8..].copy_from_slice(&n.to_be_bytes());
    t
}

fn load(store: &dyn Store, crypto: &dyn PageCrypto, part: &PartitionRef<'_>, n: u64) {
    // Time-ordered sort keys (ISO timestamps), inserted in a scattered order so that pages
    // fill as they would under real traffic rather than as a perfect bulk load.
    let scattered: Vec<u64> = (0..n).map(|i| (i * 7_919 + 13) % n).collect();
    for chunk in scattered.chunks(LOAD_BATCH) {
        let entries: Vec<Entry> = chunk
            .iter()
            .map(|&k| Entry {
                sort_key: AttributeValue::S(format!("2024-01-01T00:00:00.{k:09}Z")),
                item_token: token(k),
                write_seq: k,
            })
            .collect();
        let changes: Vec<Change<'_>> = entries.iter().map(Change::Upsert).collect();
        let p = plan(store, crypto, part, &changes).expect("plan");
        store.commit(&p.checks, &p.writes).expect("commit");
    }
}

fn bench_sort_index(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    let rng = SystemRandom::new();
    let mut k = [0u8; 32];
    rng.fill(&mut k).expect("rng");
    let crypto = BenchCrypto {
        key: LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &k).expect("key")),
        rng,
    };
    let (small_prefix, large_prefix) = ([1u8; 33], [2u8; 33]);
    let small = PartitionRef {
        prefix: &small_prefix,
    };
    let large = PartitionRef {
        prefix: &large_prefix,
    };
    {
        let store = RocksStore::open(dir.path()).expect("open");
        load(&store, &crypto, &small, SMALL);
        load(&store, &crypto, &large, LARGE);
        store.close().expect("close");
    }
    let store = Counting {
        inner: RocksStore::open(dir.path()).expect("reopen"),
        gets: AtomicUsize::new(0),
    };
    let q = RangeQuery {
        limit: 10,
        ..RangeQuery::default()
    };
    for (name, part) in [("100", &small), ("200000", &large)] {
        store.gets.store(0, Ordering::Relaxed);
        let t = Instant::now();
        let got = range(&store, &crypto, part, &q).expect("range");
        let cold = t.elapsed();
        assert_eq!(got.len(), 10);
        let reads = store.gets.load(Ordering::Relaxed);
        eprintln!(
            "sort_index {name} entries: first (cold) Limit-10 range {cold:?}, {reads} page reads"
        );
    }
    let mut g = c.benchmark_group("sort_index_range_limit10");
    g.sample_size(50);
    g.measurement_time(Duration::from_secs(5));
    for (name, part, n) in [("100", &small, SMALL), ("200000", &large, LARGE)] {
        g.bench_function(name, |b| {
            b.iter(|| black_box(range(&store, &crypto, part, &q).expect("range")))
        });
        // Descending from the middle of the partition (a bounded, reversed Query).
        let mid = AttributeValue::S(format!("2024-01-01T00:00:00.{:09}Z", n / 2));
        let qr = RangeQuery {
            upper: Bound::Included(&mid),
            reverse: true,
            ..q
        };
        g.bench_function(format!("{name}_reverse_from_middle"), |b| {
            b.iter(|| black_box(range(&store, &crypto, part, &qr).expect("range")))
        });
    }
    g.finish();
}

criterion_group!(benches, bench_sort_index);
criterion_main!(benches);
