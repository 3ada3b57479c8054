//! Writes: upsert and remove on an in-memory overlay of the pages they touch, turned into a
//! [`Plan`] at the end.
//!
//! Splits keep the left half under the old id (so the parent's pointer stays valid) and give
//! the right half a fresh random id; a root split moves both halves to fresh ids because the
//! root's id is fixed. Removal and merging live in `shrink.rs`.

use std::collections::{BTreeMap, BTreeSet};

use ring::rand::{SecureRandom, SystemRandom};

use super::page::{Body, Key, LeafEntry, Page, SortKey, MAX_LEVEL};
use super::shrink::remove;
use super::{
    load_page, page_key, Change, Entry, PageCrypto, PageId, PartitionRef, Plan, Position,
    SortIndexError, MAX_ATTEMPTS, PAGE_SPLIT_BYTES, ROOT_PAGE_ID,
};
use crate::protocol::attr::AttributeValue;
use crate::storage::{Check, Space, Store, Write};

/// Plans `changes`, applied in order, to one partition's index. See [`Plan`] for how to
/// commit it. Re-reads from scratch (a few times) if it caught the pages mid-change.
pub fn plan(
    store: &dyn Store,
    crypto: &dyn PageCrypto,
    part: &PartitionRef<'_>,
    changes: &[Change<'_>],
) -> Result<Plan, SortIndexError> {
    // Convert first: a bad key is the caller's error, not a reason to retry.
    let mut ops = Vec::with_capacity(changes.len());
    for c in changes {
        ops.push(match c {
            Change::Upsert(e) => Op::Upsert(LeafEntry {
                key: key_of(&e.sort_key, &e.item_token)?,
                seq: e.write_seq,
            }),
            Change::Remove(p) => Op::Remove(key_of(p.sort_key, p.item_token)?),
        });
    }
    let rng = SystemRandom::new();
    for _ in 0..MAX_ATTEMPTS {
        let mut tx = Tx::new(store, crypto, part, &rng);
        let applied = ops.iter().try_for_each(|op| match op {
            Op::Upsert(e) => upsert(&mut tx, e.clone()),
            Op::Remove(k) => remove(&mut tx, k),
        });
        match applied {
            Ok(()) => return tx.finish(),
            Err(SortIndexError::Inconsistent) => continue,
            Err(e) => return Err(e),
        }
    }
    Err(SortIndexError::Inconsistent)
}

/// [`plan`] for one upsert.
pub fn plan_upsert(
    store: &dyn Store,
    crypto: &dyn PageCrypto,
    part: &PartitionRef<'_>,
    entry: &Entry,
) -> Result<Plan, SortIndexError> {
    plan(store, crypto, part, &[Change::Upsert(entry)])
}

/// [`plan`] for one removal.
pub fn plan_remove(
    store: &dyn Store,
    crypto: &dyn PageCrypto,
    part: &PartitionRef<'_>,
    sort_key: &AttributeValue,
    item_token: &super::Token,
) -> Result<Plan, SortIndexError> {
    let pos = Position {
        sort_key,
        item_token,
    };
    plan(store, crypto, part, &[Change::Remove(pos)])
}

pub(super) fn key_of(sk: &AttributeValue, token: &super::Token) -> Result<Key, SortIndexError> {
    Ok(Key {
        sk: SortKey::from_attr(sk)?,
        token: *token,
    })
}

enum Op {
    Upsert(LeafEntry),
    Remove(Key),
}

/// The pages one plan has read and changed.
pub(super) struct Tx<'a> {
    store: &'a dyn Store,
    crypto: &'a dyn PageCrypto,
    part: &'a PartitionRef<'a>,
    rng: &'a SystemRandom,
    /// Sealed bytes as first read (`None`: absent, or a fresh id): the plan's checks.
    read: BTreeMap<PageId, Option<Vec<u8>>>,
    /// Current content of every page touched (`None`: absent or deleted).
    cur: BTreeMap<PageId, Option<Page>>,
    dirty: BTreeSet<PageId>,
}

impl<'a> Tx<'a> {
    fn new(
        store: &'a dyn Store,
        crypto: &'a dyn PageCrypto,
        part: &'a PartitionRef<'a>,
        rng: &'a SystemRandom,
    ) -> Self {
        Tx {
            store,
            crypto,
            part,
            rng,
            read: BTreeMap::new(),
            cur: BTreeMap::new(),
            dirty: BTreeSet::new(),
        }
    }

    pub(super) fn get(&mut self, id: &PageId) -> Result<Option<Page>, SortIndexError> {
        if let Some(p) = self.cur.get(id) {
            return Ok(p.clone());
        }
        let (sealed, page) = match load_page(self.store, self.crypto, self.part, id)? {
            Some((s, p)) => (Some(s), Some(p)),
            None => (None, None),
        };
        self.read.insert(*id, sealed);
        self.cur.insert(*id, page.clone());
        Ok(page)
    }

    /// A page the structure says exists: missing means we raced a writer (or damage).
    pub(super) fn must_get(&mut self, id: &PageId) -> Result<Page, SortIndexError> {
        self.get(id)?.ok_or(SortIndexError::Inconsistent)
    }

    pub(super) fn set(&mut self, id: PageId, page: Page) {
        self.cur.insert(id, Some(page));
        self.dirty.insert(id);
    }

    pub(super) fn delete(&mut self, id: PageId) {
        self.cur.insert(id, None);
        self.dirty.insert(id);
    }

    fn fresh_id(&mut self) -> Result<PageId, SortIndexError> {
        loop {
            let mut id = [0u8; super::PAGE_ID_LEN];
            self.rng.fill(&mut id).map_err(|_| SortIndexError::Random)?;
            if id != ROOT_PAGE_ID && !self.cur.contains_key(&id) {
                // Checked absent at commit, so even a collision with a page we never read
                // fails the commit rather than overwriting it.
                self.read.insert(id, None);
                self.cur.insert(id, None);
                return Ok(id);
            }
        }
    }

    fn finish(self) -> Result<Plan, SortIndexError> {
        let mut plan = Plan::default();
        for (id, expect) in &self.read {
            plan.checks.push(Check {
                space: Space::SortIndex,
                key: page_key(self.part, id),
                expect: expect.clone(),
            });
        }
        for id in &self.dirty {
            let key = page_key(self.part, id);
            match self.cur.get(id) {
                Some(Some(page)) => {
                    let plain = zeroize::Zeroizing::new(page.encode());
                    let value = self.crypto.seal(&key, &plain)?;
                    plan.writes.push(Write::Put {
                        space: Space::SortIndex,
                        key,
                        value,
                    });
                }
                // A fresh id that ended up unused was never written: nothing to delete.
                _ if self.read.get(id).is_some_and(Option::is_none) => {}
                _ => plan.writes.push(Write::Delete {
                    space: Space::SortIndex,
                    key,
                }),
            }
        }
        Ok(plan)
    }
}

/// One page on the way from the root to a leaf, with the child index taken below it.
pub(super) struct Step {
    pub id: PageId,
    pub page: Page,
    pub idx: usize,
}

/// The path from the root to the leaf whose range holds `key`; `None` for an empty tree.
/// Every child is checked against the range its parent assigns to it.
pub(super) fn descend(tx: &mut Tx<'_>, key: &Key) -> Result<Option<Vec<Step>>, SortIndexError> {
    let Some(root) = tx.get(&ROOT_PAGE_ID)? else {
        return Ok(None);
    };
    if root.low.is_some() || root.high.is_some() {
        return Err(SortIndexError::Corrupt("root page with fences"));
    }
    let mut path = Vec::new();
    let mut id = ROOT_PAGE_ID;
    let mut page = root;
    loop {
        let idx = match &page.body {
            Body::Leaf { .. } => {
                path.push(Step { id, page, idx: 0 });
                return Ok(Some(path));
            }
            Body::Internal { seps, .. } => seps.partition_point(|s| s <= key),
        };
        let (child_id, low, high) = page.child(idx).ok_or(SortIndexError::Inconsistent)?;
        let child = tx.must_get(&child_id)?;
        if !child.fits(page.level(), low, high) {
            return Err(SortIndexError::Inconsistent);
        }
        path.push(Step { id, page, idx });
        id = child_id;
        page = child;
    }
}

fn upsert(tx: &mut Tx<'_>, entry: LeafEntry) -> Result<(), SortIndexError> {
    let Some(mut path) = descend(tx, &entry.key)? else {
        let root = Page {
            low: None,
            high: None,
            body: Body::Leaf {
                prev: None,
                next: None,
                entries: vec![entry],
            },
        };
        tx.set(ROOT_PAGE_ID, root);
        return Ok(());
    };
    let Some(Step { id, mut page, .. }) = path.pop() else {
        return Err(SortIndexError::Inconsistent);
    };
    let Body::Leaf { entries, .. } = &mut page.body else {
        return Err(SortIndexError::Inconsistent);
    };
    let pos = match entries.binary_search_by(|e| e.key.cmp(&entry.key)) {
        Ok(i) => {
            if let Some(e) = entries.get_mut(i) {
                if e.seq == entry.seq {
                    return Ok(());
                }
                e.seq = entry.seq;
            }
            tx.set(id, page);
            return Ok(());
        }
        Err(i) => {
            entries.insert(i, entry);
            i
        }
    };
    let mut carry = split_if_full(tx, id, page, pos)?;
    // Each split hands its new right sibling to the parent, which may split in turn.
    while let Some((sep, right)) = carry {
        let Step {
            id, mut page, idx, ..
        } = path.pop().ok_or(SortIndexError::Inconsistent)?;
        let Body::Internal { children, seps, .. } = &mut page.body else {
            return Err(SortIndexError::Inconsistent);
        };
        if idx > seps.len() {
            return Err(SortIndexError::Inconsistent);
        }
        seps.insert(idx, sep);
        children.insert(idx + 1, right);
        carry = split_if_full(tx, id, page, idx + 1)?;
    }
    Ok(())
}

/// Stores `page` (just grown at element `pos`), split in two if it is over size. Returns the
/// separator and id of a new right sibling for the parent to adopt; a root split is finished
/// here (the root gains a level), so it returns `None`.
fn split_if_full(
    tx: &mut Tx<'_>,
    id: PageId,
    page: Page,
    pos: usize,
) -> Result<Option<(Key, PageId)>, SortIndexError> {
    let (len, min_len) = match &page.body {
        Body::Leaf { entries, .. } => (entries.len(), 2),
        Body::Internal { children, .. } => (children.len(), 3),
    };
    if page.payload_len() <= split_bytes() || len < min_len {
        tx.set(id, page);
        return Ok(None);
    }
    let at = split_point(&page, pos, len);
    let (mut left, mut right, sep) = split_at(page, at)?;
    if id == ROOT_PAGE_ID {
        let level = left
            .level()
            .checked_add(1)
            .filter(|l| *l <= MAX_LEVEL)
            .ok_or(SortIndexError::Corrupt("tree too deep"))?;
        let (a, b) = (tx.fresh_id()?, tx.fresh_id()?);
        // A root leaf has no neighbours, so its halves only link to each other.
        set_links(&mut left, None, Some(b));
        set_links(&mut right, Some(a), None);
        tx.set(a, left);
        tx.set(b, right);
        let root = Page {
            low: None,
            high: None,
            body: Body::Internal {
                level,
                children: vec![a, b],
                seps: vec![sep],
            },
        };
        tx.set(ROOT_PAGE_ID, root);
        return Ok(None);
    }
    let rid = tx.fresh_id()?;
    if let Body::Leaf { prev, next, .. } = &left.body {
        let (old_prev, old_next) = (*prev, *next);
        if let Some(n) = old_next {
            relink(tx, n, Some((Some(id), Some(rid))), None)?;
        }
        set_links(&mut left, old_prev, Some(rid));
        set_links(&mut right, Some(id), old_next);
    }
    tx.set(id, left);
    tx.set(rid, right);
    Ok(Some((sep, rid)))
}

/// Sets a leaf's neighbour links (no-op on internal pages, which have none).
fn set_links(page: &mut Page, new_prev: Option<PageId>, new_next: Option<PageId>) {
    if let Body::Leaf { prev, next, .. } = &mut page.body {
        *prev = new_prev;
        *next = new_next;
    }
}

/// [`PAGE_SPLIT_BYTES`]; tests lower it to grow deep trees from few entries.
pub(super) fn split_bytes() -> usize {
    #[cfg(test)]
    if let Some(n) = super::tests::SPLIT_BYTES.with(std::cell::Cell::get) {
        return n;
    }
    PAGE_SPLIT_BYTES
}

/// Where to cut an over-size page of `len` elements that just grew at `pos`: appending at the
/// right edge of the tree (ascending keys, the common case for time-ordered sort keys) keeps
/// the old page full and starts a new one, and likewise at the left edge for descending keys;
/// otherwise halves by bytes. Always leaves each side non-empty.
fn split_point(page: &Page, pos: usize, len: usize) -> usize {
    let last = len.saturating_sub(1);
    if pos == last && page.high.is_none() {
        return last;
    }
    if pos == 0 && page.low.is_none() {
        return 1;
    }
    let sizes: Vec<usize> = match &page.body {
        Body::Leaf { entries, .. } => entries.iter().map(LeafEntry::encoded_len).collect(),
        Body::Internal { seps, .. } => std::iter::once(0)
            .chain(seps.iter().map(Key::encoded_len))
            .collect(),
    };
    let half = sizes.iter().sum::<usize>() / 2;
    let mut acc = 0usize;
    let mut at = 0usize;
    for s in &sizes {
        if acc >= half {
            break;
        }
        acc = acc.saturating_add(*s);
        at += 1;
    }
    at.clamp(1, last.max(1))
}

/// Cuts a page before element `at` (an entry, or a child). The halves keep the page's outer
/// fences and links; the new inner fence is the separator.
fn split_at(page: Page, at: usize) -> Result<(Page, Page, Key), SortIndexError> {
    let Page { low, high, body } = page;
    match body {
        Body::Leaf {
            prev,
            next,
            mut entries,
        } => {
            if at == 0 || at >= entries.len() {
                return Err(SortIndexError::Inconsistent);
            }
            let right_entries = entries.split_off(at);
            let sep = right_entries
                .first()
                .map(|e| e.key.clone())
                .ok_or(SortIndexError::Inconsistent)?;
            let left = Page {
                low,
                high: Some(sep.clone()),
                body: Body::Leaf {
                    prev,
                    next,
                    entries,
                },
            };
            let right = Page {
                low: Some(sep.clone()),
                high,
                body: Body::Leaf {
                    prev: None,
                    next,
                    entries: right_entries,
                },
            };
            Ok((left, right, sep))
        }
        Body::Internal {
            level,
            mut children,
            mut seps,
        } => {
            if at == 0 || at >= children.len() {
                return Err(SortIndexError::Inconsistent);
            }
            let right_children = children.split_off(at);
            // seps[at-1] separates the halves and moves up; the rest stay with their side.
            let right_seps = seps.split_off(at);
            let sep = seps.pop().ok_or(SortIndexError::Inconsistent)?;
            let left = Page {
                low,
                high: Some(sep.clone()),
                body: Body::Internal {
                    level,
                    children,
                    seps,
                },
            };
            let right = Page {
                low: Some(sep.clone()),
                high,
                body: Body::Internal {
                    level,
                    children: right_children,
                    seps: right_seps,
                },
            };
            Ok((left, right, sep))
        }
    }
}

/// Rewrites a leaf's links, each given as `(expected old, new)`; `None` leaves a link alone.
/// A link that is not what the caller expects means the pages changed under us.
pub(super) fn relink(
    tx: &mut Tx<'_>,
    id: PageId,
    prev_swap: Option<(Option<PageId>, Option<PageId>)>,
    next_swap: Option<(Option<PageId>, Option<PageId>)>,
) -> Result<(), SortIndexError> {
    let mut page = tx.must_get(&id)?;
    let Body::Leaf { prev, next, .. } = &mut page.body else {
        return Err(SortIndexError::Inconsistent);
    };
    for (link, swap) in [(prev, prev_swap), (next, next_swap)] {
        if let Some((old, new)) = swap {
            if *link != old {
                return Err(SortIndexError::Inconsistent);
            }
            *link = new;
        }
    }
    tx.set(id, page);
    Ok(())
}
