//! Storage: the `Store` trait, the key layout, and the RocksDB implementation.
//!
//! The trait is deliberately small (get, snapshot multi-get, ordered scan, conditional atomic
//! commit) so that a distributed engine can sit behind it later. The store never sees plaintext:
//! keys are HMAC tokens and values are sealed envelopes, so it only compares bytes.
//!
//! `rocks/` is the only module in the project that names RocksDB types.

mod mem;
#[cfg(feature = "rocksdb")]
mod rocks;
pub mod sort_index;

pub use mem::MemStore;
#[cfg(feature = "rocksdb")]
pub use rocks::RocksStore;

/// A keyspace of the store. Each is one RocksDB column family, so that each can be tuned (bloom
/// filters for point lookups) and compacted independently.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Space {
    /// Catalog: tables, wrapped keys, principals.
    Meta,
    /// Sealed items, keyed by `keyspace | index | T(pk) | T(pk, sk)`.
    Items,
    /// Sealed sort-index pages.
    SortIndex,
    /// Resumable background jobs (re-sealing, table deletion).
    Jobs,
}

impl Space {
    /// Every space, in a fixed order (the order of column family creation).
    pub const ALL: [Space; 4] = [Space::Meta, Space::Items, Space::SortIndex, Space::Jobs];

    /// The column family name. Stable on disk: never rename.
    pub const fn name(self) -> &'static str {
        match self {
            Space::Meta => "meta",
            Space::Items => "items",
            Space::SortIndex => "sortidx",
            Space::Jobs => "jobs",
        }
    }

    /// Dense index in `0..ALL.len()`, for per-space arrays.
    pub const fn index(self) -> usize {
        match self {
            Space::Meta => 0,
            Space::Items => 1,
            Space::SortIndex => 2,
            Space::Jobs => 3,
        }
    }
}

/// A precondition of a commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    pub space: Space,
    pub key: Vec<u8>,
    /// `None`: the key must be absent. `Some(v)`: the current value must equal `v` exactly.
    pub expect: Option<Vec<u8>>,
}

/// One mutation of a commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Write {
    Put {
        space: Space,
        key: Vec<u8>,
        value: Vec<u8>,
    },
    Delete {
        space: Space,
        key: Vec<u8>,
    },
}

impl Write {
    pub fn space(&self) -> Space {
        match self {
            Write::Put { space, .. } | Write::Delete { space, .. } => *space,
        }
    }

    pub fn key(&self) -> &[u8] {
        match self {
            Write::Put { key, .. } | Write::Delete { key, .. } => key,
        }
    }
}

/// Storage failures. Messages never carry key or value bytes (keys are tokens, values sealed,
/// but an error message is the wrong place for either).
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    #[error("storage I/O error: {0}")]
    Io(String),
    /// The engine's own checksums caught damaged bytes on disk. Distinct from `Io` so that the
    /// caller can report it as an integrity failure, like a failed AEAD tag.
    #[error("storage corruption: {0}")]
    Corruption(String),
    /// The store no longer takes commits: the RocksDB store's writer thread has stopped
    /// (shutdown, after in-flight requests finished) or ended. A remote store would use it after
    /// its connection closed.
    #[error("storage is closed")]
    Closed,
}

/// Why a commit did not apply. On any error nothing was written.
#[derive(Debug, thiserror::Error)]
pub enum CommitError {
    /// `checks[index]` was the first check that did not hold.
    #[error("condition {index} failed")]
    Conflict { index: usize },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// One page of an ordered scan.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScanPage {
    /// `(key, value)` in scan order (ascending, or descending for a reverse scan).
    pub entries: Vec<(Vec<u8>, Vec<u8>)>,
    /// Whether entries remain in the range beyond this page.
    pub more: bool,
}

/// A transactional ordered key-value store. Methods block (async callers run them on tokio's
/// blocking pool), except `commit_async`, which lets a request wait for durability without
/// holding a thread.
pub trait Store: Send + Sync + 'static {
    fn get(&self, space: Space, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError>;

    /// All reads from one consistent snapshot.
    fn multi_get(&self, keys: &[(Space, &[u8])]) -> Result<Vec<Option<Vec<u8>>>, StoreError>;

    /// Ordered range scan [start, end) (end None = unbounded), forward or reverse, at most
    /// `limit` entries; `more` says whether entries remain in the range. An empty or inverted
    /// range yields an empty page.
    fn scan(
        &self,
        space: Space,
        start: &[u8],
        end: Option<&[u8]>,
        reverse: bool,
        limit: usize,
    ) -> Result<ScanPage, StoreError>;

    /// Atomic: every check holds and all writes are applied, or nothing is. Durable when Ok
    /// (WAL synced). Linearizable with respect to other commits touching the same keys.
    /// Checks are evaluated against the state before the writes; writes apply in order (a
    /// later write to the same key wins).
    fn commit(&self, checks: &[Check], writes: &[Write]) -> Result<(), CommitError>;

    /// Removes every key in [start, end) of a space (table deletion) and makes it durable.
    /// An empty or inverted range removes nothing. Not ordered against concurrent commits into
    /// the range: callers stop writes to it first (the table is marked deleted in meta).
    fn delete_range(&self, space: Space, start: &[u8], end: &[u8]) -> Result<(), StoreError>;

    /// Flush memtables and compact everything (tests: the canary scan; admin).
    fn flush_and_compact(&self) -> Result<(), StoreError>;

    /// `commit` for async callers: the commit is submitted when this is called (so a caller
    /// may release a lock it held while building the commit before awaiting), and the future
    /// resolves with its outcome, with the same guarantees as `commit`. The default applies it
    /// at once, which suits stores whose commits do not wait for I/O.
    fn commit_async(&self, checks: Vec<Check>, writes: Vec<Write>) -> CommitFuture {
        Box::pin(std::future::ready(self.commit(&checks, &writes)))
    }

    /// Returns once every commit submitted before the call has been applied or has failed
    /// (blocking). Stores that apply commits inside `commit`/`commit_async` have nothing to wait for.
    fn flush_commits(&self) {}
}

/// The outcome of [`Store::commit_async`].
pub type CommitFuture =
    std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), CommitError>> + Send>>;

/// Behaviour every `Store` must show; run against each implementation by its own tests.
#[cfg(test)]
pub(crate) mod suite {
    use super::*;
    use std::collections::BTreeMap;
    use std::sync::Arc;

    pub fn put<S: Store>(s: &S, space: Space, k: &[u8], v: &[u8]) {
        let w = Write::Put {
            space,
            key: k.to_vec(),
            value: v.to_vec(),
        };
        s.commit(&[], &[w]).unwrap();
    }

    pub fn del<S: Store>(s: &S, space: Space, k: &[u8]) {
        let w = Write::Delete {
            space,
            key: k.to_vec(),
        };
        s.commit(&[], &[w]).unwrap();
    }

    fn keys(page: &ScanPage) -> Vec<Vec<u8>> {
        page.entries.iter().map(|(k, _)| k.clone()).collect()
    }

    pub fn get_put_delete<S: Store>(s: &S) {
        assert_eq!(s.get(Space::Items, b"a").unwrap(), None);
        put(s, Space::Items, b"a", b"1");
        assert_eq!(s.get(Space::Items, b"a").unwrap(), Some(b"1".to_vec()));
        // Spaces are disjoint.
        assert_eq!(s.get(Space::Meta, b"a").unwrap(), None);
        put(s, Space::Items, b"a", b"2");
        assert_eq!(s.get(Space::Items, b"a").unwrap(), Some(b"2".to_vec()));
        // Empty keys and empty values are ordinary bytes.
        put(s, Space::Jobs, b"", b"");
        assert_eq!(s.get(Space::Jobs, b"").unwrap(), Some(Vec::new()));
        del(s, Space::Items, b"a");
        assert_eq!(s.get(Space::Items, b"a").unwrap(), None);
        // Deleting an absent key is not an error.
        del(s, Space::Items, b"never");
        // Later writes to the same key in one commit win.
        let ws = [
            Write::Put {
                space: Space::Meta,
                key: b"x".to_vec(),
                value: b"first".to_vec(),
            },
            Write::Put {
                space: Space::Meta,
                key: b"x".to_vec(),
                value: b"second".to_vec(),
            },
        ];
        s.commit(&[], &ws).unwrap();
        assert_eq!(s.get(Space::Meta, b"x").unwrap(), Some(b"second".to_vec()));
    }

    pub fn multi_get<S: Store>(s: &S) {
        put(s, Space::Items, b"k1", b"v1");
        put(s, Space::SortIndex, b"k1", b"p1");
        put(s, Space::Meta, b"k2", b"m2");
        let got = s
            .multi_get(&[
                (Space::Items, b"k1"),
                (Space::Items, b"k2"),
                (Space::SortIndex, b"k1"),
                (Space::Meta, b"k2"),
                (Space::Items, b"k1"),
            ])
            .unwrap();
        assert_eq!(
            got,
            vec![
                Some(b"v1".to_vec()),
                None,
                Some(b"p1".to_vec()),
                Some(b"m2".to_vec()),
                Some(b"v1".to_vec()),
            ]
        );
        assert!(s.multi_get(&[]).unwrap().is_empty());
    }

    pub fn scan<S: Store>(s: &S) {
        for k in [&b"b"[..], b"a", b"c\x00", b"c", b"d", b"\xff"] {
            put(s, Space::Items, k, &[k, b"-v"].concat());
        }
        put(s, Space::Meta, b"b2", b"other space");

        let all = s.scan(Space::Items, b"", None, false, 100).unwrap();
        assert_eq!(
            keys(&all),
            vec![
                b"a".to_vec(),
                b"b".to_vec(),
                b"c".to_vec(),
                b"c\x00".to_vec(),
                b"d".to_vec(),
                b"\xff".to_vec()
            ]
        );
        assert!(!all.more);
        assert_eq!(all.entries[0].1, b"a-v".to_vec());

        // [b, d): start inclusive, end exclusive.
        let mid = s.scan(Space::Items, b"b", Some(b"d"), false, 100).unwrap();
        assert_eq!(
            keys(&mid),
            vec![b"b".to_vec(), b"c".to_vec(), b"c\x00".to_vec()]
        );
        assert!(!mid.more);

        let rev = s.scan(Space::Items, b"b", Some(b"d"), true, 100).unwrap();
        assert_eq!(
            keys(&rev),
            vec![b"c\x00".to_vec(), b"c".to_vec(), b"b".to_vec()]
        );
        assert!(!rev.more);

        // Limits, with `more` telling whether the range holds more.
        let p = s.scan(Space::Items, b"b", Some(b"d"), false, 2).unwrap();
        assert_eq!(keys(&p), vec![b"b".to_vec(), b"c".to_vec()]);
        assert!(p.more);
        let p = s.scan(Space::Items, b"b", Some(b"d"), false, 3).unwrap();
        assert_eq!(p.entries.len(), 3);
        assert!(!p.more);
        let p = s.scan(Space::Items, b"b", None, true, 2).unwrap();
        assert_eq!(keys(&p), vec![b"\xff".to_vec(), b"d".to_vec()]);
        assert!(p.more);
        let p = s.scan(Space::Items, b"", None, false, 0).unwrap();
        assert!(p.entries.is_empty());
        assert!(p.more);

        // Empty, inverted and out-of-data ranges.
        for (a, b) in [(&b"c"[..], &b"c"[..]), (b"d", b"b"), (b"e", b"f")] {
            for rev in [false, true] {
                let p = s.scan(Space::Items, a, Some(b), rev, 10).unwrap();
                assert_eq!(p, ScanPage::default());
            }
        }
        let p = s.scan(Space::Jobs, b"", None, true, 10).unwrap();
        assert_eq!(p, ScanPage::default());
    }

    pub fn commit_checks<S: Store>(s: &S) {
        let put_x = |v: &[u8]| Write::Put {
            space: Space::Items,
            key: b"x".to_vec(),
            value: v.to_vec(),
        };
        let absent = |k: &[u8]| Check {
            space: Space::Items,
            key: k.to_vec(),
            expect: None,
        };
        let equals = |k: &[u8], v: &[u8]| Check {
            space: Space::Items,
            key: k.to_vec(),
            expect: Some(v.to_vec()),
        };

        // Absence check passes on a fresh key, then fails once it exists.
        s.commit(&[absent(b"x")], &[put_x(b"v1")]).unwrap();
        match s.commit(&[absent(b"x")], &[put_x(b"v2")]) {
            Err(CommitError::Conflict { index: 0 }) => {}
            other => panic!("expected conflict 0, got {other:?}"),
        }
        assert_eq!(s.get(Space::Items, b"x").unwrap(), Some(b"v1".to_vec()));

        // Equality check: exact bytes only (a prefix or an extension is not equal).
        for wrong in [&b"v"[..], b"v10", b"", b"V1"] {
            let r = s.commit(&[equals(b"x", wrong)], &[put_x(b"bad")]);
            assert!(
                matches!(r, Err(CommitError::Conflict { index: 0 })),
                "{r:?}"
            );
        }
        s.commit(&[equals(b"x", b"v1")], &[put_x(b"v2")]).unwrap();
        assert_eq!(s.get(Space::Items, b"x").unwrap(), Some(b"v2".to_vec()));
        // Expecting a value of an absent key fails.
        let r = s.commit(&[equals(b"nope", b"")], &[]);
        assert!(
            matches!(r, Err(CommitError::Conflict { index: 0 })),
            "{r:?}"
        );

        // The first failing index is reported, and no write of the batch is applied.
        let writes = [
            put_x(b"v3"),
            Write::Put {
                space: Space::Meta,
                key: b"side".to_vec(),
                value: b"effect".to_vec(),
            },
            Write::Delete {
                space: Space::Items,
                key: b"x".to_vec(),
            },
        ];
        let checks = [
            equals(b"x", b"v2"),
            absent(b"y"),
            equals(b"x", b"stale"),
            absent(b"x"),
        ];
        match s.commit(&checks, &writes) {
            Err(CommitError::Conflict { index: 2 }) => {}
            other => panic!("expected conflict 2, got {other:?}"),
        }
        assert_eq!(s.get(Space::Items, b"x").unwrap(), Some(b"v2".to_vec()));
        assert_eq!(s.get(Space::Meta, b"side").unwrap(), None);

        // All checks pass: every write applies, in order.
        s.commit(&checks[..2], &writes).unwrap();
        assert_eq!(s.get(Space::Items, b"x").unwrap(), None);
        assert_eq!(
            s.get(Space::Meta, b"side").unwrap(),
            Some(b"effect".to_vec())
        );

        // Checks only (ConditionCheck): passes without writing.
        s.commit(&[absent(b"x"), absent(b"y")], &[]).unwrap();
        s.commit(&[], &[]).unwrap();
    }

    pub fn delete_range<S: Store>(s: &S) {
        for k in [&b"t1/a"[..], b"t1/b", b"t1/c", b"t2/a", b"t0/z"] {
            put(s, Space::Items, k, b"v");
        }
        put(s, Space::Meta, b"t1/a", b"kept");
        s.delete_range(Space::Items, b"t1/", b"t1/\xff").unwrap();
        let left = s.scan(Space::Items, b"", None, false, 100).unwrap();
        assert_eq!(keys(&left), vec![b"t0/z".to_vec(), b"t2/a".to_vec()]);
        assert_eq!(s.get(Space::Items, b"t1/b").unwrap(), None);
        assert_eq!(s.get(Space::Meta, b"t1/a").unwrap(), Some(b"kept".to_vec()));
        // End is exclusive; empty and inverted ranges remove nothing.
        s.delete_range(Space::Items, b"t0/z\x00", b"t2/a").unwrap();
        s.delete_range(Space::Items, b"t2/a", b"t2/a").unwrap();
        s.delete_range(Space::Items, b"t3", b"t0").unwrap();
        let left = s.scan(Space::Items, b"", None, false, 100).unwrap();
        assert_eq!(keys(&left), vec![b"t0/z".to_vec(), b"t2/a".to_vec()]);
        // Keys written after the deletion are visible again.
        put(s, Space::Items, b"t1/a", b"new");
        assert_eq!(s.get(Space::Items, b"t1/a").unwrap(), Some(b"new".to_vec()));
        s.flush_and_compact().unwrap();
        assert_eq!(s.get(Space::Items, b"t1/a").unwrap(), Some(b"new".to_vec()));
        assert_eq!(s.get(Space::Items, b"t1/b").unwrap(), None);
    }

    /// Threads increment one counter by compare-and-swap until each has landed `per_thread`
    /// increments. A lost update (two commits passing the same check) leaves the counter short.
    /// Async commits are submitted when `commit_async` is called, in call order: a commit
    /// whose check depends on an earlier, not yet awaited one sees its write (they may share a
    /// group), and one that expects the overwritten state conflicts.
    pub fn async_commits_apply_in_submission_order<S: Store>(s: &S) {
        let key = b"k".to_vec();
        let put = |v: &[u8]| Write::Put {
            space: Space::Items,
            key: key.clone(),
            value: v.to_vec(),
        };
        let expect = |v: Option<&[u8]>| Check {
            space: Space::Items,
            key: key.clone(),
            expect: v.map(<[u8]>::to_vec),
        };
        let first = s.commit_async(vec![expect(None)], vec![put(b"1")]);
        let second = s.commit_async(vec![expect(Some(b"1"))], vec![put(b"2")]);
        let stale = s.commit_async(vec![expect(None)], vec![put(b"x")]);
        let pure_check = s.commit_async(vec![expect(Some(b"2"))], vec![]);
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        rt.block_on(async {
            first.await.unwrap();
            second.await.unwrap();
            assert!(matches!(
                stale.await,
                Err(CommitError::Conflict { index: 0 })
            ));
            pure_check.await.unwrap();
        });
        assert_eq!(s.get(Space::Items, &key).unwrap(), Some(b"2".to_vec()));
    }

    /// `flush_commits` returns only after every commit submitted before it was applied.
    pub fn flush_commits_waits_for_submitted<S: Store>(s: &S) {
        let pending: Vec<_> = (0u8..20)
            .map(|i| {
                s.commit_async(
                    vec![],
                    vec![Write::Put {
                        space: Space::Jobs,
                        key: vec![i],
                        value: vec![i; 3],
                    }],
                )
            })
            .collect();
        s.flush_commits();
        for i in 0u8..20 {
            assert_eq!(s.get(Space::Jobs, &[i]).unwrap(), Some(vec![i; 3]));
        }
        drop(pending);
    }

    /// A compare-and-set increment of the big-endian counter at `key` (Meta space).
    fn increment<S: Store>(s: &S, key: &[u8]) -> (Check, Write) {
        increment_in(s, Space::Meta, key).1
    }

    /// The counter at `key` in `space`, and the compare-and-set commit that adds one to it.
    pub fn increment_in<S: Store>(s: &S, space: Space, key: &[u8]) -> (u64, (Check, Write)) {
        let cur = s.get(space, key).unwrap().unwrap();
        let n = u64::from_be_bytes(cur.as_slice().try_into().unwrap());
        let check = Check {
            space,
            key: key.to_vec(),
            expect: Some(cur),
        };
        let w = Write::Put {
            space,
            key: key.to_vec(),
            value: (n + 1).to_be_bytes().to_vec(),
        };
        (n, (check, w))
    }

    /// Many tasks increment one counter with async compare-and-set commits on a multi-thread
    /// runtime: no increment is lost or doubled, however the writer groups them.
    pub fn concurrent_async_cas<S: Store>(s: Arc<S>, tasks: usize, per_task: u64) {
        let key = b"async-counter".to_vec();
        put(&*s, Space::Meta, &key, &0u64.to_be_bytes());
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .build()
            .unwrap();
        rt.block_on(async {
            let handles: Vec<_> = (0..tasks)
                .map(|_| {
                    let s = Arc::clone(&s);
                    let key = key.clone();
                    tokio::spawn(async move {
                        let mut landed = 0u64;
                        while landed < per_task {
                            let (check, w) = increment(&*s, &key);
                            match s.commit_async(vec![check], vec![w]).await {
                                Ok(()) => landed += 1,
                                Err(CommitError::Conflict { index: 0 }) => {}
                                Err(e) => panic!("{e}"),
                            }
                        }
                    })
                })
                .collect();
            for h in handles {
                h.await.unwrap();
            }
        });
        let v = s.get(Space::Meta, &key).unwrap().unwrap();
        let total = u64::from_be_bytes(v.as_slice().try_into().unwrap());
        assert_eq!(total, tasks as u64 * per_task);
    }

    pub fn concurrent_cas<S: Store>(s: Arc<S>, threads: usize, per_thread: u64) {
        let key = b"counter".to_vec();
        put(&*s, Space::Meta, &key, &0u64.to_be_bytes());
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                let s = Arc::clone(&s);
                let key = key.clone();
                std::thread::spawn(move || {
                    let mut landed = 0u64;
                    let mut conflicts = 0u64;
                    while landed < per_thread {
                        let (check, w) = increment(&*s, &key);
                        match s.commit(&[check], &[w]) {
                            Ok(()) => landed += 1,
                            Err(CommitError::Conflict { index: 0 }) => conflicts += 1,
                            Err(e) => panic!("{e}"),
                        }
                    }
                    conflicts
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
        let v = s.get(Space::Meta, &key).unwrap().unwrap();
        let total = u64::from_be_bytes(v.as_slice().try_into().unwrap());
        assert_eq!(total, threads as u64 * per_thread);
    }

    /// Random operations for the model test.
    #[derive(Debug, Clone)]
    pub enum Op {
        Commit(Vec<Check>, Vec<Write>),
        Get(Space, Vec<u8>),
        MultiGet(Vec<(Space, Vec<u8>)>),
        Scan(Space, Vec<u8>, Option<Vec<u8>>, bool, usize),
        DeleteRange(Space, Vec<u8>, Vec<u8>),
    }

    pub mod strategy {
        use super::*;
        use proptest::prelude::*;

        // Few spaces and a tiny alphabet, so that operations collide on keys often.
        fn space() -> impl Strategy<Value = Space> {
            prop_oneof![Just(Space::Items), Just(Space::Meta)]
        }
        fn key() -> impl Strategy<Value = Vec<u8>> {
            proptest::collection::vec(prop_oneof![Just(0u8), Just(1), Just(0xff)], 0..3)
        }
        fn value() -> impl Strategy<Value = Vec<u8>> {
            proptest::collection::vec(prop_oneof![Just(b'a'), Just(b'b')], 0..2)
        }
        fn check() -> impl Strategy<Value = Check> {
            (space(), key(), proptest::option::of(value())).prop_map(|(space, key, expect)| Check {
                space,
                key,
                expect,
            })
        }
        fn write() -> impl Strategy<Value = Write> {
            prop_oneof![
                3 => (space(), key(), value())
                    .prop_map(|(space, key, value)| Write::Put { space, key, value }),
                1 => (space(), key()).prop_map(|(space, key)| Write::Delete { space, key }),
            ]
        }
        pub fn op() -> impl Strategy<Value = Op> {
            prop_oneof![
                6 => (
                    proptest::collection::vec(check(), 0..3),
                    proptest::collection::vec(write(), 0..4)
                ).prop_map(|(c, w)| Op::Commit(c, w)),
                2 => (space(), key()).prop_map(|(s, k)| Op::Get(s, k)),
                1 => proptest::collection::vec((space(), key()), 0..4).prop_map(Op::MultiGet),
                3 => (space(), key(), proptest::option::of(key()), any::<bool>(), 0usize..5)
                    .prop_map(|(s, a, b, r, l)| Op::Scan(s, a, b, r, l)),
                1 => (space(), key(), key()).prop_map(|(s, a, b)| Op::DeleteRange(s, a, b)),
            ]
        }
    }

    /// Reference semantics: one BTreeMap per space.
    #[derive(Default)]
    pub struct Model(BTreeMap<(Space, Vec<u8>), Vec<u8>>);

    impl Model {
        fn range(&self, space: Space, start: &[u8], end: Option<&[u8]>) -> Vec<(Vec<u8>, Vec<u8>)> {
            self.0
                .iter()
                .filter(|((s, k), _)| {
                    *s == space && k.as_slice() >= start && end.is_none_or(|e| k.as_slice() < e)
                })
                .map(|((_, k), v)| (k.clone(), v.clone()))
                .collect()
        }
    }

    /// Applies `ops` to the store and to the model, comparing every observable result.
    pub fn run_against_model<S: Store>(s: &S, ops: &[Op]) {
        let mut m = Model::default();
        for op in ops {
            match op {
                Op::Commit(checks, writes) => {
                    let failed = checks
                        .iter()
                        .position(|c| m.0.get(&(c.space, c.key.clone())) != c.expect.as_ref());
                    match (s.commit(checks, writes), failed) {
                        (Ok(()), None) => {
                            for w in writes {
                                match w {
                                    Write::Put { space, key, value } => {
                                        m.0.insert((*space, key.clone()), value.clone());
                                    }
                                    Write::Delete { space, key } => {
                                        m.0.remove(&(*space, key.clone()));
                                    }
                                }
                            }
                        }
                        (Err(CommitError::Conflict { index }), Some(i)) => assert_eq!(index, i),
                        (got, want) => panic!("{op:?}: got {got:?}, model says {want:?}"),
                    }
                }
                Op::Get(space, key) => {
                    let want = m.0.get(&(*space, key.clone())).cloned();
                    assert_eq!(s.get(*space, key).unwrap(), want, "{op:?}");
                }
                Op::MultiGet(keys) => {
                    let req: Vec<(Space, &[u8])> =
                        keys.iter().map(|(sp, k)| (*sp, k.as_slice())).collect();
                    let want: Vec<_> = keys.iter().map(|k| m.0.get(k).cloned()).collect();
                    assert_eq!(s.multi_get(&req).unwrap(), want, "{op:?}");
                }
                Op::Scan(space, start, end, reverse, limit) => {
                    let mut all = m.range(*space, start, end.as_deref());
                    if *reverse {
                        all.reverse();
                    }
                    let more = all.len() > *limit;
                    all.truncate(*limit);
                    let got = s
                        .scan(*space, start, end.as_deref(), *reverse, *limit)
                        .unwrap();
                    assert_eq!(got.entries, all, "{op:?}");
                    assert_eq!(got.more, more, "{op:?}");
                }
                Op::DeleteRange(space, start, end) => {
                    s.delete_range(*space, start, end).unwrap();
                    m.0.retain(|(sp, k), _| {
                        !(*sp == *space && k.as_slice() >= start.as_slice() && k < end)
                    });
                }
            }
        }
        // Final state: every space matches the model.
        for space in [Space::Items, Space::Meta] {
            let got = s.scan(space, b"", None, false, usize::MAX).unwrap();
            assert_eq!(got.entries, m.range(space, b"", None));
            assert!(!got.more);
        }
    }
}
