//! The RocksDB `Store`: the only module in the project that names RocksDB types.
//!
//! Durability and group commit: every commit goes through one writer thread (`writer.rs`),
//! which applies the queued commits in arrival order as one RocksDB write with
//! `WriteOptions::set_sync(true)`: one WAL append and one fdatasync per group. Commits that
//! arrive while an fdatasync runs share the next one, and a lone commit does not wait for a
//! timer. Async callers (`commit_async`) await the outcome without holding a thread; blocking
//! callers (`commit`) wait on a channel.
//!
//! What "acknowledged" means: a commit returns `Ok` only after the WAL record holding it was
//! fsynced. RocksDB makes a synced write visible to readers only after that sync, so nothing a
//! reader sees can be lost by a crash, and after a crash (of the process or the machine)
//! recovery replays every acknowledged commit, whole. A commit that failed or never returned
//! may or may not be there after a crash, but never in part.
//!
//! Conditional commits: RocksDB has no compare-and-set. The writer is the only thread that
//! writes commits, so it checks each commit's preconditions against the current state (and the
//! earlier commits of its own group) with nothing able to change in between. Plain reads take
//! no store-wide lock: a group becomes visible atomically when its write returns. Single-key
//! reads of item rows go through the row cache (`row_cache.rs`, one of 64 shard locks for a
//! hash lookup), which the writer keeps equal to what RocksDB holds.

mod row_cache;
mod writer;

use super::{Check, CommitError, CommitFuture, ScanPage, Space, Store, StoreError, Write};
use rocksdb::{
    BlockBasedOptions, BottommostLevelCompaction, Cache, ColumnFamily, ColumnFamilyDescriptor,
    CompactOptions, DBCompressionType, DBRecoveryMode, ErrorKind, FlushOptions, Options,
    ReadOptions, WriteBatch, WriteOptions, DB,
};
use row_cache::{Lookup, RowCache};
use std::path::Path;
use std::sync::Arc;
use writer::{Pending, Reply, Writer};

// One LRU block cache shared by all column families, so a hot space can use what a cold one
// does not. 64 MiB suits a small server; index and filter blocks are charged to it too.
const BLOCK_CACHE_BYTES: usize = 64 << 20;

// The row cache (`row_cache.rs`): the latest sealed value of hot item rows. 32 MiB holds
// ~25k rows of 1 KiB items.
const ROW_CACHE_BYTES: usize = 32 << 20;

// RocksDB wiki (Bloom filter): 10 bits per key gives ~1% false positives.
const BLOOM_BITS_PER_KEY: f64 = 10.0;

// Memtable per column family. Items take RocksDB's default (64 MiB); the small spaces need
// less, which bounds worst-case memtable memory on a small machine.
const ITEMS_WRITE_BUFFER_BYTES: usize = 64 << 20;
const SMALL_WRITE_BUFFER_BYTES: usize = 16 << 20;

// With several column families, a rarely written one (meta) would otherwise keep old WAL
// files alive; past this total RocksDB flushes it so they can retire.
const MAX_TOTAL_WAL_BYTES: u64 = 256 << 20;

/// RocksDB behind the `Store` trait. Open once per data dir (RocksDB's LOCK file refuses a
/// second open); share it behind an `Arc`.
pub struct RocksStore {
    db: Arc<DB>,
    writer: Writer,
    sync_write: WriteOptions,
    /// Items rows only: the space read by key on every item operation.
    rows: Arc<RowCache>,
}

impl std::fmt::Debug for RocksStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RocksStore")
            .field("path", &self.db.path())
            .finish_non_exhaustive()
    }
}

impl RocksStore {
    /// Opens (creating if needed, mode 0700) the database in `dir` with one column family per
    /// `Space`.
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        create_private_dir(dir)?;
        let cache = Cache::new_lru_cache(BLOCK_CACHE_BYTES);

        let mut opts = Options::default();
        opts.create_if_missing(true);
        opts.create_missing_column_families(true);
        // Verify what RocksDB reads back (WAL, MANIFEST, block checksums) and stop on damage
        // instead of silently skipping it.
        opts.set_paranoid_checks(true);
        // Synced writes are acknowledged only once in the WAL: recover every complete record
        // and drop a torn tail (it was never acknowledged).
        opts.set_wal_recovery_mode(DBRecoveryMode::PointInTime);
        // 2 cores: one flush and one compaction at a time.
        opts.set_max_background_jobs(2);
        // Group commit with less busy-waiting (see the module comment): a follower sleeps
        // after RocksDB's short fixed spin instead of also yielding for up to 100 µs, and the
        // leader inserts the whole group into the memtable itself instead of waking every
        // follower to insert its own batch. On 2 cores both cost CPU the request path needs:
        // benches/group_commit.rs, 32 writers: ~60 -> ~40 µs CPU per durable put, and
        // ~13k -> ~20k puts/s.
        opts.set_enable_write_thread_adaptive_yield(false);
        opts.set_allow_concurrent_memtable_write(false);
        // Smooth SST writeback instead of one large burst at file close.
        opts.set_bytes_per_sync(1 << 20);
        opts.set_max_total_wal_size(MAX_TOTAL_WAL_BYTES);
        opts.set_keep_log_file_num(4);
        opts.set_max_log_file_size(8 << 20);
        // Sealed values and HMAC tokens are incompressible; the default column family is unused
        // but gets the same setting so no compressor is ever asked for.
        opts.set_compression_type(DBCompressionType::None);

        let cfs = Space::ALL
            .iter()
            .map(|s| ColumnFamilyDescriptor::new(s.name(), cf_options(*s, &cache)));
        let db = Arc::new(DB::open_cf_descriptors(&opts, dir, cfs).map_err(store_err)?);
        let sync_write = || {
            let mut w = WriteOptions::default();
            w.set_sync(true);
            w
        };
        let rows = Arc::new(RowCache::new(ROW_CACHE_BYTES));
        let writer = Writer::start(db.clone(), sync_write(), rows.clone())?;
        Ok(Self {
            db,
            writer,
            sync_write: sync_write(),
            rows,
        })
    }

    /// Graceful shutdown: flushes every memtable to SST files (so the next open replays no
    /// WAL) and closes the database.
    pub fn close(self) -> Result<(), StoreError> {
        self.writer.stop();
        self.flush_all()?;
        self.db.flush_wal(true).map_err(store_err)?;
        // `Drop` closes the database, waiting for running background work.
        Ok(())
    }

    fn cf(&self, space: Space) -> Result<&ColumnFamily, StoreError> {
        self.db
            .cf_handle(space.name())
            .ok_or_else(|| StoreError::Io(format!("column family {} missing", space.name())))
    }

    fn flush_all(&self) -> Result<(), StoreError> {
        let cfs = Space::ALL
            .iter()
            .map(|s| self.cf(*s))
            .collect::<Result<Vec<_>, _>>()?;
        // FlushOptions default: wait until the flush is done.
        self.db
            .flush_cfs_opt(&cfs, &FlushOptions::default())
            .map_err(store_err)
    }

    /// Reads with the given options (a snapshot for more than one key).
    fn read_many(
        &self,
        keys: &[(Space, &[u8])],
        readopts: &ReadOptions,
    ) -> Result<Vec<Option<Vec<u8>>>, StoreError> {
        let with_cf = keys
            .iter()
            .map(|(s, k)| Ok((self.cf(*s)?, *k)))
            .collect::<Result<Vec<_>, StoreError>>()?;
        self.db
            .multi_get_cf_opt(with_cf, readopts)
            .into_iter()
            .map(|r| r.map_err(store_err))
            .collect()
    }
}

impl Drop for RocksStore {
    fn drop(&mut self) {
        // Queued commits are applied first; the writer's handle on the database goes with it,
        // so the database closes (and releases its LOCK file) when this store is dropped.
        self.writer.stop();
        // Every acknowledged write is already synced; this only covers a WAL tail written by
        // RocksDB itself (e.g. during recovery). DB's own Drop then closes cleanly.
        if let Err(e) = self.db.flush_wal(true) {
            tracing::warn!(error = %e, "rocksdb: WAL sync at close failed");
        }
    }
}

fn cf_options(space: Space, cache: &Cache) -> Options {
    let mut table = BlockBasedOptions::default();
    table.set_block_cache(cache);
    // Charge index and filter blocks to the shared cache (bounded memory), but keep L0's
    // pinned: they are probed on every lookup.
    table.set_cache_index_and_filter_blocks(true);
    table.set_pin_l0_filter_and_index_blocks_in_cache(true);
    // Items and sort-index pages are fetched by point lookup (GetItem, page id), where a bloom
    // filter saves a disk read for absent keys. Meta and jobs are mostly scanned.
    if matches!(space, Space::Items | Space::SortIndex) {
        table.set_bloom_filter(BLOOM_BITS_PER_KEY, false);
    }
    let mut opts = Options::default();
    opts.set_block_based_table_factory(&table);
    opts.set_compression_type(DBCompressionType::None);
    opts.set_write_buffer_size(match space {
        Space::Items => ITEMS_WRITE_BUFFER_BYTES,
        Space::Meta | Space::SortIndex | Space::Jobs => SMALL_WRITE_BUFFER_BYTES,
    });
    opts
}

/// Creates `dir` (and missing parents) with mode 0700, and tightens an existing `dir` that
/// others could read: it will hold the sealed data and the wrapped keys.
fn create_private_dir(dir: &Path) -> Result<(), StoreError> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| StoreError::Io(format!("creating the database directory: {e}")))?;
    let meta = std::fs::metadata(dir)
        .map_err(|e| StoreError::Io(format!("reading the database directory: {e}")))?;
    if meta.permissions().mode() & 0o077 != 0 {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
            .map_err(|e| StoreError::Io(format!("restricting the database directory: {e}")))?;
    }
    Ok(())
}

/// RocksDB's messages name the failed operation, file and offset, never key or value bytes.
fn store_err(e: rocksdb::Error) -> StoreError {
    match e.kind() {
        ErrorKind::Corruption => StoreError::Corruption(e.into_string()),
        _ => StoreError::Io(e.into_string()),
    }
}

impl Store for RocksStore {
    fn get(&self, space: Space, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        if space != Space::Items {
            return self.db.get_cf(self.cf(space)?, key).map_err(store_err);
        }
        match self.rows.lookup(key) {
            Lookup::Hit(value) => Ok(Some(value)),
            Lookup::Miss(ticket) => {
                let value = self.db.get_cf(self.cf(space)?, key).map_err(store_err)?;
                self.rows.fill(key, ticket, value.as_deref());
                Ok(value)
            }
        }
    }

    fn multi_get(&self, keys: &[(Space, &[u8])]) -> Result<Vec<Option<Vec<u8>>>, StoreError> {
        let mut readopts = ReadOptions::default();
        if keys.len() < 2 {
            return self.read_many(keys, &readopts);
        }
        let snapshot = self.db.snapshot();
        readopts.set_snapshot(&snapshot);
        self.read_many(keys, &readopts)
    }

    fn scan(
        &self,
        space: Space,
        start: &[u8],
        end: Option<&[u8]>,
        reverse: bool,
        limit: usize,
    ) -> Result<ScanPage, StoreError> {
        if end.is_some_and(|e| e <= start) {
            return Ok(ScanPage::default());
        }
        let cf = self.cf(space)?;
        // Bounds inside RocksDB stop the iterator at the range edge (it does not step into
        // the neighbouring table's keys) and make seek_to_first/last land on the range.
        let mut readopts = ReadOptions::default();
        readopts.set_iterate_lower_bound(start.to_vec());
        if let Some(e) = end {
            readopts.set_iterate_upper_bound(e.to_vec());
        }
        let mut it = self.db.raw_iterator_cf_opt(cf, readopts);
        if reverse {
            it.seek_to_last();
        } else {
            it.seek_to_first();
        }
        let mut entries = Vec::new();
        while entries.len() < limit {
            let Some((k, v)) = it.item() else { break };
            entries.push((k.to_vec(), v.to_vec()));
            if reverse {
                it.prev();
            } else {
                it.next();
            }
        }
        let more = it.valid();
        // An invalid iterator is either the end of the range or an error.
        it.status().map_err(store_err)?;
        Ok(ScanPage { entries, more })
    }

    fn commit(&self, checks: &[Check], writes: &[Write]) -> Result<(), CommitError> {
        if checks.is_empty() && writes.is_empty() {
            return Ok(());
        }
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        self.writer.submit(Pending {
            checks: checks.to_vec(),
            writes: writes.to_vec(),
            reply: Reply::Thread(tx),
        });
        // The writer answers every commit it takes, and a stopped writer answers at once.
        rx.recv().unwrap_or(Err(StoreError::Closed.into()))
    }

    fn commit_async(&self, checks: Vec<Check>, writes: Vec<Write>) -> CommitFuture {
        if checks.is_empty() && writes.is_empty() {
            return Box::pin(std::future::ready(Ok(())));
        }
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.writer.submit(Pending {
            checks,
            writes,
            reply: Reply::Task(tx),
        });
        Box::pin(async move { rx.await.unwrap_or(Err(StoreError::Closed.into())) })
    }

    fn flush_commits(&self) {
        // An empty commit still goes through the queue: it is answered only after every
        // commit queued before it was applied.
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        self.writer.submit(Pending {
            checks: Vec::new(),
            writes: Vec::new(),
            reply: Reply::Thread(tx),
        });
        let _ = rx.recv();
    }

    fn delete_range(&self, space: Space, start: &[u8], end: &[u8]) -> Result<(), StoreError> {
        if end <= start {
            return Ok(());
        }
        let cf = self.cf(space)?;
        let mut batch = WriteBatch::default();
        batch.delete_range_cf(cf, start, end);
        // The row cache cannot tell which of its rows the range holds: it empties, and takes
        // no fills until the range is gone from RocksDB too.
        self.rows.begin_clear();
        let deleted = self.db.write_opt(batch, &self.sync_write);
        self.rows.end_clear();
        deleted.map_err(store_err)?;
        // The tombstone only hides the rows. Flushing every column family retires the WAL
        // files that still hold the deleted values; the forced compaction then rewrites the
        // SST files of the range without them (bottommost level included).
        self.flush_all()?;
        let mut compact = CompactOptions::default();
        compact.set_bottommost_level_compaction(BottommostLevelCompaction::Force);
        self.db
            .compact_range_cf_opt(cf, Some(start), Some(end), &compact);
        Ok(())
    }

    fn flush_and_compact(&self) -> Result<(), StoreError> {
        self.flush_all()?;
        let mut compact = CompactOptions::default();
        compact.set_bottommost_level_compaction(BottommostLevelCompaction::Force);
        for space in Space::ALL {
            self.db
                .compact_range_cf_opt(self.cf(space)?, None::<&[u8]>, None::<&[u8]>, &compact);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::suite;
    use super::*;
    use proptest::prelude::*;
    use std::sync::Arc;

    fn fresh() -> (tempfile::TempDir, RocksStore) {
        let dir = tempfile::tempdir().unwrap();
        let store = RocksStore::open(&dir.path().join("db")).unwrap();
        (dir, store)
    }

    #[test]
    fn get_put_delete() {
        let (_dir, s) = fresh();
        suite::get_put_delete(&s);
    }

    #[test]
    fn multi_get() {
        let (_dir, s) = fresh();
        suite::multi_get(&s);
    }

    #[test]
    fn scan() {
        let (_dir, s) = fresh();
        suite::scan(&s);
    }

    #[test]
    fn scan_reads_flushed_and_unflushed_data_alike() {
        let (_dir, s) = fresh();
        suite::put(&s, Space::Items, b"a", b"1");
        suite::put(&s, Space::Items, b"c", b"3");
        s.flush_and_compact().unwrap();
        suite::put(&s, Space::Items, b"b", b"2");
        suite::del(&s, Space::Items, b"c");
        let p = s.scan(Space::Items, b"", None, true, 10).unwrap();
        let keys: Vec<_> = p.entries.iter().map(|(k, _)| k.clone()).collect();
        assert_eq!(keys, vec![b"b".to_vec(), b"a".to_vec()]);
    }

    #[test]
    fn commit_checks() {
        let (_dir, s) = fresh();
        suite::commit_checks(&s);
    }

    #[test]
    fn async_commits_apply_in_submission_order() {
        let (_dir, s) = fresh();
        suite::async_commits_apply_in_submission_order(&s);
    }

    #[test]
    fn flush_commits_waits_for_submitted() {
        let (_dir, s) = fresh();
        suite::flush_commits_waits_for_submitted(&s);
    }

    #[test]
    fn concurrent_async_cas() {
        let (_dir, s) = fresh();
        suite::concurrent_async_cas(Arc::new(s), 32, 20);
    }

    #[test]
    fn commits_after_close_are_refused_not_lost() {
        let (_dir, s) = fresh();
        s.writer.stop();
        let w = Write::Put {
            space: Space::Items,
            key: b"late".to_vec(),
            value: b"v".to_vec(),
        };
        assert!(matches!(
            s.commit(&[], std::slice::from_ref(&w)),
            Err(CommitError::Store(StoreError::Closed))
        ));
        assert_eq!(s.get(Space::Items, b"late").unwrap(), None);
    }

    #[test]
    fn delete_range() {
        let (_dir, s) = fresh();
        suite::delete_range(&s);
    }

    #[test]
    fn concurrent_cas() {
        let (_dir, s) = fresh();
        suite::concurrent_cas(Arc::new(s), 8, 40);
    }

    /// Item rows go through the row cache. Writers bump counters by compare-and-set while
    /// readers hammer the same keys: no reader ever sees a counter go back (a stale cache
    /// entry would), every writer reads back at least what it just committed, and once all is
    /// done every key reads its final count, also after a range delete of half of them.
    #[test]
    fn item_reads_through_the_row_cache_never_go_back() {
        const KEYS: u8 = 4;
        const PER_WRITER: u64 = 150;
        let (_dir, s) = fresh();
        let s = Arc::new(s);
        let key = |i: u8| vec![b'r', i];
        for i in 0..KEYS {
            suite::put(&*s, Space::Items, &key(i), &0u64.to_be_bytes());
        }
        let read = |s: &RocksStore, k: &[u8]| {
            let v = s.get(Space::Items, k).unwrap().unwrap();
            u64::from_be_bytes(v.as_slice().try_into().unwrap())
        };
        let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let readers: Vec<_> = (0..3)
            .map(|_| {
                let (s, done) = (s.clone(), done.clone());
                std::thread::spawn(move || {
                    let mut seen = [0u64; KEYS as usize];
                    let mut reads = 0u64;
                    while !done.load(std::sync::atomic::Ordering::Acquire) {
                        for i in 0..KEYS {
                            let n = read(&s, &key(i));
                            assert!(n >= seen[i as usize], "key {i} went back to {n}");
                            seen[i as usize] = n;
                            reads += 1;
                        }
                    }
                    reads
                })
            })
            .collect();
        let writers: Vec<_> = (0..4)
            .map(|w| {
                let s = s.clone();
                std::thread::spawn(move || {
                    for j in 0..PER_WRITER {
                        let k = key(((w + j) % u64::from(KEYS)) as u8);
                        loop {
                            let (n, (check, put)) = suite::increment_in(&*s, Space::Items, &k);
                            match s.commit(&[check], &[put]) {
                                Ok(()) => {
                                    assert!(read(&s, &k) > n, "own write not visible");
                                    break;
                                }
                                Err(CommitError::Conflict { index: 0 }) => {}
                                Err(e) => panic!("{e}"),
                            }
                        }
                    }
                })
            })
            .collect();
        for w in writers {
            w.join().unwrap();
        }
        done.store(true, std::sync::atomic::Ordering::Release);
        for r in readers {
            assert!(r.join().unwrap() > 0);
        }
        let total: u64 = (0..KEYS).map(|i| read(&s, &key(i))).sum();
        assert_eq!(total, 4 * PER_WRITER);
        s.delete_range(Space::Items, &key(0), &key(2)).unwrap();
        assert_eq!(s.get(Space::Items, &key(0)).unwrap(), None);
        assert_eq!(s.get(Space::Items, &key(1)).unwrap(), None);
        assert_eq!(read(&s, &key(2)) + read(&s, &key(3)), 2 * PER_WRITER);
    }

    #[test]
    fn creates_private_dir_and_column_families() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a").join("db");
        drop(RocksStore::open(&path).unwrap());
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700);
        let mut names = DB::list_cf(&Options::default(), &path).unwrap();
        names.sort();
        assert_eq!(names, ["default", "items", "jobs", "meta", "sortidx"]);

        // An existing directory that others could read is tightened.
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        drop(RocksStore::open(&path).unwrap());
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700);
    }

    #[test]
    fn second_open_of_same_dir_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let _first = RocksStore::open(dir.path()).unwrap();
        assert!(matches!(
            RocksStore::open(dir.path()),
            Err(StoreError::Io(_))
        ));
    }

    #[test]
    fn persists_across_drop_and_close() {
        let dir = tempfile::tempdir().unwrap();
        {
            let s = RocksStore::open(dir.path()).unwrap();
            for i in 0u32..100 {
                suite::put(&s, Space::Items, &i.to_be_bytes(), &[7; 1024]);
            }
            suite::put(&s, Space::Meta, b"table", b"def");
            suite::del(&s, Space::Items, &5u32.to_be_bytes());
            // Dropped without flushing: the reopen replays the WAL.
        }
        {
            let s = RocksStore::open(dir.path()).unwrap();
            let page = s.scan(Space::Items, b"", None, false, 1000).unwrap();
            assert_eq!(page.entries.len(), 99);
            assert_eq!(s.get(Space::Items, &5u32.to_be_bytes()).unwrap(), None);
            assert_eq!(s.get(Space::Meta, b"table").unwrap(), Some(b"def".to_vec()));
            suite::put(&s, Space::Jobs, b"job", b"1");
            s.close().unwrap();
        }
        let s = RocksStore::open(dir.path()).unwrap();
        assert_eq!(s.get(Space::Jobs, b"job").unwrap(), Some(b"1".to_vec()));
        assert_eq!(
            s.get(Space::Items, &7u32.to_be_bytes()).unwrap(),
            Some(vec![7; 1024])
        );
    }

    /// Every file under `dir` whose bytes contain `needle`.
    fn files_containing(dir: &Path, needle: &[u8]) -> Vec<std::path::PathBuf> {
        let mut hits = Vec::new();
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                hits.extend(files_containing(&path, needle));
            } else if std::fs::read(&path)
                .unwrap()
                .windows(needle.len())
                .any(|w| w == needle)
            {
                hits.push(path);
            }
        }
        hits
    }

    #[test]
    fn delete_range_removes_the_bytes_from_disk() {
        let dir = tempfile::tempdir().unwrap();
        let doomed = b"MARKER-doomed-5b1c0e7a".to_vec();
        let kept = b"MARKER-kept-93a4d2f1".to_vec();
        {
            let s = RocksStore::open(dir.path()).unwrap();
            for i in 0u8..50 {
                suite::put(
                    &s,
                    Space::Items,
                    &[b't', 1, i],
                    &[&doomed[..], &[i]].concat(),
                );
            }
            suite::put(&s, Space::Items, &[b't', 2, 0], &kept);
            s.flush_and_compact().unwrap();
            s.close().unwrap();
        }
        // The scanner works: both markers are on disk (values are stored uncompressed).
        assert!(!files_containing(dir.path(), &doomed).is_empty());
        assert!(!files_containing(dir.path(), &kept).is_empty());
        {
            let s = RocksStore::open(dir.path()).unwrap();
            s.delete_range(Space::Items, &[b't', 1], &[b't', 2])
                .unwrap();
            assert_eq!(s.get(Space::Items, &[b't', 1, 3]).unwrap(), None);
            s.close().unwrap();
        }
        assert_eq!(
            files_containing(dir.path(), &doomed),
            Vec::<std::path::PathBuf>::new()
        );
        assert!(!files_containing(dir.path(), &kept).is_empty());
        let s = RocksStore::open(dir.path()).unwrap();
        assert_eq!(s.get(Space::Items, &[b't', 2, 0]).unwrap(), Some(kept));
    }

    #[test]
    fn damaged_sst_reads_as_corruption() {
        let dir = tempfile::tempdir().unwrap();
        let marker = b"MARKER-flip-me-44e1".to_vec();
        {
            let s = RocksStore::open(dir.path()).unwrap();
            suite::put(&s, Space::Items, b"victim", &marker);
            s.flush_and_compact().unwrap();
            s.close().unwrap();
        }
        let files = files_containing(dir.path(), &marker);
        assert_eq!(files.len(), 1, "{files:?}");
        let mut bytes = std::fs::read(&files[0]).unwrap();
        let at = bytes
            .windows(marker.len())
            .position(|w| w == marker)
            .unwrap();
        bytes[at] ^= 0x01;
        std::fs::write(&files[0], bytes).unwrap();

        let s = RocksStore::open(dir.path()).unwrap();
        match s.get(Space::Items, b"victim") {
            Err(StoreError::Corruption(msg)) => assert!(!msg.contains("victim"), "{msg}"),
            other => panic!("expected corruption, got {other:?}"),
        }
    }

    proptest! {
        // Each case opens a fresh database and syncs every commit: keep the count modest.
        #![proptest_config(ProptestConfig::with_cases(48))]
        #[test]
        fn matches_model(ops in proptest::collection::vec(suite::strategy::op(), 0..60)) {
            let (_dir, s) = fresh();
            suite::run_against_model(&s, &ops);
        }
    }
}
