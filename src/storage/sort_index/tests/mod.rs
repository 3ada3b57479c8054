//! Test support (an AES-GCM `PageCrypto`, a read-counting store, a full-tree invariant check)
//! and the unit tests; the model test and the large tests live in submodules.

use std::cell::Cell;
use std::sync::atomic::{AtomicUsize, Ordering};

use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};
use ring::rand::{SecureRandom, SystemRandom};
use zeroize::Zeroizing;

use super::page::{Body, Key, Page, SortKey};
use super::*;
use crate::protocol::attr::Number;
use crate::storage::{CommitError, MemStore, ScanPage, Space, Store, StoreError};

mod large;
mod model;

thread_local! {
    /// Overrides [`PAGE_SPLIT_BYTES`] on this thread (tree.rs reads it under cfg(test)).
    pub(super) static SPLIT_BYTES: Cell<Option<usize>> = const { Cell::new(None) };
}

/// Runs `f` with small pages, so that a few dozen entries build a tree several levels deep.
pub(super) fn with_split_bytes<T>(n: usize, f: impl FnOnce() -> T) -> T {
    SPLIT_BYTES.with(|c| c.set(Some(n)));
    let out = f();
    SPLIT_BYTES.with(|c| c.set(None));
    out
}

/// AES-256-GCM with a random nonce and the storage key as AAD: the shape of the server's
/// implementation, without its key hierarchy.
pub(super) struct TestCrypto {
    key: LessSafeKey,
    rng: SystemRandom,
}

impl TestCrypto {
    pub(super) fn new() -> Self {
        let rng = SystemRandom::new();
        let mut k = [0u8; 32];
        rng.fill(&mut k).unwrap();
        let key = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &k).unwrap());
        TestCrypto { key, rng }
    }
}

impl PageCrypto for TestCrypto {
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
        if sealed.len() < NONCE_LEN {
            return Err(SortIndexError::Integrity);
        }
        let (iv, ct) = sealed.split_at(NONCE_LEN);
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

/// A MemStore that counts point reads (the only way the index reads pages).
#[derive(Default)]
pub(super) struct CountingStore {
    pub inner: MemStore,
    pub gets: AtomicUsize,
}

impl CountingStore {
    pub(super) fn take_gets(&self) -> usize {
        self.gets.swap(0, Ordering::SeqCst)
    }
}

impl Store for CountingStore {
    fn get(&self, space: Space, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        self.gets.fetch_add(1, Ordering::SeqCst);
        self.inner.get(space, key)
    }
    fn multi_get(&self, keys: &[(Space, &[u8])]) -> Result<Vec<Option<Vec<u8>>>, StoreError> {
        self.gets.fetch_add(keys.len(), Ordering::SeqCst);
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

pub(super) const PREFIX: [u8; 33] = [7u8; 33];
pub(super) const PART: PartitionRef<'static> = PartitionRef { prefix: &PREFIX };

pub(super) fn token(n: u64) -> Token {
    let mut t = [0u8; 16];
    t[..8].copy_from_slice(&n.to_be_bytes());
    t[8..].copy_from_slice(&n.wrapping_mul(0x9E37_79B9_7F4A_7C15).to_le_bytes());
    t
}

pub(super) fn num(s: &str) -> AttributeValue {
    AttributeValue::N(s.parse::<Number>().unwrap())
}

pub(super) fn s(v: &str) -> AttributeValue {
    AttributeValue::S(v.to_owned())
}

pub(super) fn entry(sk: AttributeValue, tok: Token, seq: u64) -> Entry {
    Entry {
        sort_key: sk,
        item_token: tok,
        write_seq: seq,
    }
}

/// Plans and commits changes, as the server will (retrying a conflicting plan from scratch).
pub(super) fn apply(store: &dyn Store, c: &dyn PageCrypto, part: &PartitionRef, ch: &[Change]) {
    loop {
        let p = plan(store, c, part, ch).unwrap();
        match store.commit(&p.checks, &p.writes) {
            Ok(()) => return,
            Err(CommitError::Conflict { .. }) => continue,
            Err(e) => panic!("{e}"),
        }
    }
}

pub(super) fn all(store: &dyn Store, c: &dyn PageCrypto, part: &PartitionRef) -> Vec<Entry> {
    range(store, c, part, &RangeQuery::default()).unwrap()
}

/// Walks the whole tree from the root and checks every structural invariant: each child covers
/// exactly the range its parent assigns, levels step down by one, leaves are non-empty (a root
/// leaf too: an empty tree has no root) and linked in key order both ways, and every stored
/// page of the partition is reachable. Returns the height and the entries in order.
pub(super) fn check_tree(
    store: &dyn Store,
    c: &dyn PageCrypto,
    part: &PartitionRef,
) -> (usize, Vec<(Key, u64)>) {
    let stored = store
        .scan(Space::SortIndex, part.prefix, None, false, usize::MAX)
        .unwrap()
        .entries
        .into_iter()
        .filter(|(k, _)| k.starts_with(part.prefix))
        .count();
    let Some((_, root)) = load_page(store, c, part, &ROOT_PAGE_ID).unwrap() else {
        assert_eq!(stored, 0, "pages without a root");
        return (0, Vec::new());
    };
    assert!(root.low.is_none() && root.high.is_none());
    let mut leaves: Vec<(PageId, Page)> = Vec::new();
    let mut visited = 1usize;
    fn visit(
        store: &dyn Store,
        c: &dyn PageCrypto,
        part: &PartitionRef,
        id: PageId,
        page: Page,
        leaves: &mut Vec<(PageId, Page)>,
        visited: &mut usize,
    ) {
        match &page.body {
            Body::Leaf { entries, .. } => {
                assert!(!entries.is_empty(), "empty leaf");
                leaves.push((id, page));
            }
            Body::Internal { children, .. } => {
                for i in 0..children.len() {
                    let (cid, low, high) = page.child(i).unwrap();
                    assert_ne!(cid, ROOT_PAGE_ID);
                    let (_, child) = load_page(store, c, part, &cid).unwrap().expect("child");
                    assert!(child.fits(page.level(), low, high), "child fences");
                    *visited += 1;
                    visit(store, c, part, cid, child, leaves, visited);
                }
            }
        }
    }
    let height = usize::from(root.level()) + 1;
    visit(
        store,
        c,
        part,
        ROOT_PAGE_ID,
        root,
        &mut leaves,
        &mut visited,
    );
    assert_eq!(visited, stored, "unreachable pages left behind");
    let mut out = Vec::new();
    for (i, (_, leaf)) in leaves.iter().enumerate() {
        let Body::Leaf {
            prev,
            next,
            entries,
        } = &leaf.body
        else {
            unreachable!()
        };
        let want_prev = i.checked_sub(1).map(|j| leaves[j].0);
        let want_next = leaves.get(i + 1).map(|l| l.0);
        assert_eq!(*prev, want_prev, "prev link of leaf {i}");
        assert_eq!(*next, want_next, "next link of leaf {i}");
        out.extend(entries.iter().map(|e| (e.key.clone(), e.seq)));
    }
    assert!(out.windows(2).all(|w| w[0].0 < w[1].0));
    (height, out)
}

#[test]
fn empty_index_reads_nothing_and_removing_is_a_noop() {
    let st = CountingStore::default();
    let c = TestCrypto::new();
    assert!(all(&st, &c, &PART).is_empty());
    let p = plan_remove(&st, &c, &PART, &s("x"), &token(1)).unwrap();
    assert!(p.writes.is_empty());
    // The absent root is still checked, so a concurrent first insert conflicts.
    assert_eq!(p.checks.len(), 1);
    assert_eq!(p.checks[0].expect, None);
}

#[test]
fn upsert_replaces_the_write_seq_and_remove_deletes_the_root() {
    let st = MemStore::new();
    let c = TestCrypto::new();
    apply(
        &st,
        &c,
        &PART,
        &[Change::Upsert(&entry(s("a"), token(1), 1))],
    );
    apply(
        &st,
        &c,
        &PART,
        &[Change::Upsert(&entry(s("a"), token(1), 5))],
    );
    assert_eq!(all(&st, &c, &PART), vec![entry(s("a"), token(1), 5)]);
    // Same seq again: nothing to write.
    let p = plan_upsert(&st, &c, &PART, &entry(s("a"), token(1), 5)).unwrap();
    assert!(p.writes.is_empty());
    let p = plan_remove(&st, &c, &PART, &s("a"), &token(1)).unwrap();
    st.commit(&p.checks, &p.writes).unwrap();
    assert!(all(&st, &c, &PART).is_empty());
    // The last entry takes the root page with it: nothing of the partition stays on disk.
    let left = st.scan(Space::SortIndex, b"", None, false, 10).unwrap();
    assert!(left.entries.is_empty());
}

#[test]
fn plans_from_one_snapshot_conflict() {
    let st = MemStore::new();
    let c = TestCrypto::new();
    let key = |i: u64| num(&i.to_string());
    let (mut conflicts, mut both) = (0, 0);
    with_split_bytes(256, || {
        for i in 0..60u64 {
            apply(
                &st,
                &c,
                &PART,
                &[Change::Upsert(&entry(key(i * 10), token(i), 1))],
            );
        }
        // Two writers plan from the same state. The second commit must fail exactly when the
        // first wrote a page the second read (same leaf, or a split reaching a page on its
        // path); otherwise its plan is still what it would plan now, and it may apply.
        for n in 0..200u64 {
            let a = (n * 37) % 700;
            let b = (n * 53 + 5) % 700;
            let ea = entry(key(a), token(a), 2 + n);
            let eb = entry(key(b), token(b), 2 + n);
            let pa = plan_upsert(&st, &c, &PART, &ea).unwrap();
            let pb = plan_upsert(&st, &c, &PART, &eb).unwrap();
            let overlap = pb
                .checks
                .iter()
                .any(|ch| pa.writes.iter().any(|w| w.key() == ch.key.as_slice()));
            st.commit(&pa.checks, &pa.writes).unwrap();
            match st.commit(&pb.checks, &pb.writes) {
                Err(CommitError::Conflict { .. }) if overlap => {
                    conflicts += 1;
                    apply(&st, &c, &PART, &[Change::Upsert(&eb)]);
                }
                Ok(()) if !overlap => both += 1,
                r => panic!("overlap {overlap}, commit {r:?}"),
            }
            let got = all(&st, &c, &PART);
            assert!(got.contains(&ea) && got.contains(&eb));
        }
        check_tree(&st, &c, &PART);
    });
    assert!(
        conflicts > 0 && both > 0,
        "{conflicts} conflicts, {both} disjoint"
    );

    // Plans of different partitions do not interfere, and merge refuses a same-partition pair.
    let other = [9u8; 33];
    let part2 = PartitionRef { prefix: &other };
    let e = entry(s("z"), token(1), 1);
    let mut p1 = plan_upsert(&st, &c, &PART, &e).unwrap();
    let p2 = plan_upsert(&st, &c, &part2, &e).unwrap();
    let p3 = plan_upsert(&st, &c, &PART, &entry(s("y"), token(2), 1)).unwrap();
    p1.merge(p2).unwrap();
    assert!(matches!(
        p1.merge(p3),
        Err(SortIndexError::OverlappingPlans)
    ));
    st.commit(&p1.checks, &p1.writes).unwrap();
    assert_eq!(all(&st, &c, &part2), vec![e.clone()]);
    assert!(all(&st, &c, &PART).contains(&e));
}

#[test]
fn no_sort_key_or_token_bytes_in_stored_pages() {
    let st = MemStore::new();
    let c = TestCrypto::new();
    let marker = "CANARY-sortidx-5f1c9e";
    let tok = *b"TOKEN-CANARY-16b";
    with_split_bytes(512, || {
        for i in 0..200u64 {
            let sk = s(&format!("{marker}-{i:04}"));
            apply(&st, &c, &PART, &[Change::Upsert(&entry(sk, tok, i))]);
            let bk = AttributeValue::B(format!("{marker}/{i}").into_bytes());
            let other = [3u8; 33];
            let p2 = PartitionRef { prefix: &other };
            apply(&st, &c, &p2, &[Change::Upsert(&entry(bk, token(i), i))]);
        }
    });
    let pages = st
        .scan(Space::SortIndex, b"", None, false, usize::MAX)
        .unwrap();
    assert!(pages.entries.len() > 10, "the test needs a multi-page tree");
    let hay: Vec<u8> = pages
        .entries
        .iter()
        .flat_map(|(k, v)| k.iter().chain(v.iter()).copied())
        .collect();
    for needle in [marker.as_bytes(), b"CANARY", &tok, b"0123"] {
        assert!(
            !hay.windows(needle.len()).any(|w| w == needle),
            "plaintext found on disk"
        );
    }
    // And the index still reads back in order.
    let got = all(&st, &c, &PART);
    assert_eq!(got.len(), 200);
    assert_eq!(got[7].sort_key, s(&format!("{marker}-0007")));
}

#[test]
fn tampered_or_moved_pages_are_integrity_errors() {
    let st = MemStore::new();
    let c = TestCrypto::new();
    apply(
        &st,
        &c,
        &PART,
        &[Change::Upsert(&entry(s("a"), token(1), 1))],
    );
    let root_key = page_key(&PART, &ROOT_PAGE_ID);
    let sealed = st.get(Space::SortIndex, &root_key).unwrap().unwrap();
    // The same bytes under another partition's root: the AAD binds the storage key.
    let other = [8u8; 33];
    let p2 = PartitionRef { prefix: &other };
    let w = Write::Put {
        space: Space::SortIndex,
        key: page_key(&p2, &ROOT_PAGE_ID),
        value: sealed.clone(),
    };
    st.commit(&[], &[w]).unwrap();
    let q = RangeQuery::default();
    assert!(matches!(
        range(&st, &c, &p2, &q),
        Err(SortIndexError::Integrity)
    ));
    let mut bad = sealed;
    let last = bad.len() - 1;
    bad[last] ^= 1;
    let w = Write::Put {
        space: Space::SortIndex,
        key: root_key,
        value: bad,
    };
    st.commit(&[], &[w]).unwrap();
    assert!(matches!(
        range(&st, &c, &PART, &q),
        Err(SortIndexError::Integrity)
    ));
}

#[test]
fn non_key_types_are_rejected() {
    let st = MemStore::new();
    let c = TestCrypto::new();
    let e = entry(AttributeValue::Bool(true), token(1), 1);
    assert!(matches!(
        plan_upsert(&st, &c, &PART, &e),
        Err(SortIndexError::NotAKeyType("BOOL"))
    ));
    let big = entry(s(&"x".repeat(1025)), token(1), 1);
    assert!(matches!(
        plan_upsert(&st, &c, &PART, &big),
        Err(SortIndexError::KeyTooLarge)
    ));
    assert!(matches!(
        prefix_range(&num("1")),
        Err(SortIndexError::PrefixType("N"))
    ));
}

#[test]
fn prefix_ranges() {
    let up = |p: &AttributeValue| {
        let r = prefix_range(p).unwrap();
        assert!(matches!(r.lower(), Bound::Included(l) if l == p));
        match r.upper() {
            Bound::Excluded(u) => Some(u.clone()),
            Bound::Unbounded => None,
            Bound::Included(_) => panic!("inclusive upper bound"),
        }
    };
    let b = |v: &[u8]| AttributeValue::B(v.to_vec());
    assert_eq!(up(&b(b"ab")), Some(b(b"ac")));
    assert_eq!(up(&b(&[1, 0xff, 0xff])), Some(b(&[2])));
    assert_eq!(up(&b(&[0xff, 0xff])), None);
    assert_eq!(up(&b(&[])), None);
    assert_eq!(up(&s("ab")), Some(s("ac")));
    assert_eq!(up(&s("a\u{10FFFF}")), Some(s("b")));
    assert_eq!(up(&s("\u{D7FF}")), Some(s("\u{E000}")));
    assert_eq!(up(&s("\u{10FFFF}")), None);
    assert_eq!(up(&s("")), None);
}

#[test]
fn pages_round_trip_and_reject_damage() {
    let key = |v: &str, t: u64| Key {
        sk: SortKey::S(v.to_owned()),
        token: token(t),
    };
    let leaf = Page {
        low: Some(key("b", 0)),
        high: Some(key("m", 0)),
        body: Body::Leaf {
            prev: Some([1; 16]),
            next: None,
            entries: vec![
                super::page::LeafEntry {
                    key: key("b", 0),
                    seq: 0,
                },
                super::page::LeafEntry {
                    key: key("c", 3),
                    seq: u64::MAX,
                },
            ],
        },
    };
    let inner = Page {
        low: None,
        high: None,
        body: Body::Internal {
            level: 2,
            children: vec![[1; 16], [2; 16]],
            seps: vec![key("k", 1)],
        },
    };
    for p in [&leaf, &inner] {
        let bytes = p.encode();
        assert_eq!(bytes.len(), p.encoded_len());
        assert_eq!(&Page::decode(&bytes).unwrap(), p);
        // Every truncation and every appended byte is refused, never a panic.
        for n in 0..bytes.len() {
            assert!(Page::decode(&bytes[..n]).is_err());
        }
        let mut long = bytes.clone();
        long.push(0);
        assert!(Page::decode(&long).is_err());
    }
    // An entry below the low fence, and out-of-order separators, are damage.
    let mut bad = leaf.clone();
    bad.low = Some(key("c", 9));
    assert!(Page::decode(&bad.encode()).is_err());
    let mut bad = inner;
    if let Body::Internal { seps, children, .. } = &mut bad.body {
        seps.insert(0, key("z", 1));
        children.push([3; 16]);
    }
    assert!(Page::decode(&bad.encode()).is_err());
}
