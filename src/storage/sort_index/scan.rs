//! Reads: one descent to the first wanted entry, then a walk along the leaf chain.
//!
//! Pages are read one at a time, not from one snapshot, so a reader can meet a writer's
//! split or removal halfway. Every step is checked against fences (a child against the range
//! its parent assigns, a neighbour leaf against the fence it shares with the current leaf); on a
//! mismatch the reader re-descends from the root, resuming strictly after the last entry it
//! returned. What it returns is always a correct, gap-free run of the index's order.

use super::page::{Body, Key, Page, SortKey};
use super::tree::key_of;
use super::{
    load_page, Bound, Entry, PageCrypto, PageId, PartitionRef, RangeQuery, SortIndexError,
    MAX_ATTEMPTS, ROOT_PAGE_ID,
};
use crate::protocol::attr::AttributeValue;
use crate::storage::Store;

/// The entries of `q` (see [`RangeQuery`]), reading O(log n + k) pages: one path from the root,
/// then only the leaves that hold returned entries, plus at most one more to learn that the
/// range ended there. Stops reading as soon as `limit` entries are found.
pub fn range(
    store: &dyn Store,
    crypto: &dyn PageCrypto,
    part: &PartitionRef<'_>,
    q: &RangeQuery<'_>,
) -> Result<Vec<Entry>, SortIndexError> {
    let mut w = Want {
        lower: SkBound::new(q.lower)?,
        upper: SkBound::new(q.upper)?,
        reverse: q.reverse,
        cursor: match q.start_after {
            Some(p) => Some(key_of(p.sort_key, p.item_token)?),
            None => None,
        },
    };
    let mut out = Vec::new();
    if q.limit == 0 {
        return Ok(out);
    }
    // Races in a row without a new entry: a long scan under steady writes keeps going, a
    // reader stuck on pages that never agree (damage) gives up.
    let mut failures = 0usize;
    let mut progress = 0usize;
    loop {
        match walk(store, crypto, part, &mut w, q.limit, &mut out)? {
            Walk::Done => return Ok(out),
            Walk::Raced if out.len() > progress => {
                progress = out.len();
                failures = 1;
            }
            Walk::Raced => {
                failures += 1;
                if failures >= MAX_ATTEMPTS {
                    return Err(SortIndexError::Inconsistent);
                }
            }
        }
    }
}

/// How a walk ended: finished, or it met pages mid-change and must re-descend from the cursor.
enum Walk {
    Done,
    Raced,
}

fn walk(
    store: &dyn Store,
    crypto: &dyn PageCrypto,
    part: &PartitionRef<'_>,
    w: &mut Want,
    limit: usize,
    out: &mut Vec<Entry>,
) -> Result<Walk, SortIndexError> {
    let Some((_, mut page)) = load_page(store, crypto, part, &ROOT_PAGE_ID)? else {
        return Ok(Walk::Done);
    };
    if page.low.is_some() || page.high.is_some() {
        return Err(SortIndexError::Corrupt("root page with fences"));
    }
    // Down to the leaf holding the first wanted position in the direction of travel.
    while let Body::Internal { seps, .. } = &page.body {
        let idx = if w.reverse {
            seps.partition_point(|s| !w.skip(s))
        } else {
            seps.partition_point(|s| w.skip(s))
        };
        let Some((child_id, low, high)) = page.child(idx) else {
            return Err(SortIndexError::Corrupt("child index out of range"));
        };
        let Some((_, child)) = load_page(store, crypto, part, &child_id)? else {
            return Ok(Walk::Raced);
        };
        if !child.fits(page.level(), low, high) {
            return Ok(Walk::Raced);
        }
        page = child;
    }
    loop {
        let Body::Leaf {
            prev,
            next,
            entries,
        } = &page.body
        else {
            return Ok(Walk::Raced);
        };
        if w.reverse {
            let end = entries.partition_point(|e| !w.skip(&e.key));
            for e in entries.iter().take(end).rev() {
                if w.lower.below(&e.key.sk) {
                    return Ok(Walk::Done);
                }
                if emit(w, out, e, limit) {
                    return Ok(Walk::Done);
                }
            }
            // Keys in earlier leaves are below this leaf's low fence.
            let Some(low) = &page.low else {
                return Ok(Walk::Done);
            };
            if w.lower.below(&low.sk) {
                return Ok(Walk::Done);
            }
            let Some(p) = prev else {
                return Ok(Walk::Raced);
            };
            match step(store, crypto, part, p, |n| n.high.as_ref() == Some(low))? {
                Some(n) => page = n,
                None => return Ok(Walk::Raced),
            }
        } else {
            let start = entries.partition_point(|e| w.skip(&e.key));
            for e in entries.iter().skip(start) {
                if w.upper.above(&e.key.sk) {
                    return Ok(Walk::Done);
                }
                if emit(w, out, e, limit) {
                    return Ok(Walk::Done);
                }
            }
            let Some(high) = &page.high else {
                return Ok(Walk::Done);
            };
            if w.upper.above(&high.sk) {
                return Ok(Walk::Done);
            }
            let Some(n) = next else {
                return Ok(Walk::Raced);
            };
            match step(store, crypto, part, n, |p| p.low.as_ref() == Some(high))? {
                Some(p) => page = p,
                None => return Ok(Walk::Raced),
            }
        }
    }
}

/// Loads the neighbour leaf `id` if it continues the chain (`fits`), else `None`.
fn step(
    store: &dyn Store,
    crypto: &dyn PageCrypto,
    part: &PartitionRef<'_>,
    id: &PageId,
    fits: impl Fn(&Page) -> bool,
) -> Result<Option<Page>, SortIndexError> {
    Ok(load_page(store, crypto, part, id)?
        .map(|(_, p)| p)
        .filter(|p| p.level() == 0 && fits(p)))
}

/// Appends an entry and moves the cursor past it; true once `limit` is reached.
fn emit(w: &mut Want, out: &mut Vec<Entry>, e: &super::page::LeafEntry, limit: usize) -> bool {
    out.push(Entry {
        sort_key: e.key.sk.to_attr(),
        item_token: e.key.token,
        write_seq: e.seq,
    });
    w.cursor = Some(e.key.clone());
    out.len() >= limit
}

/// What a range wants, with the cursor (the last entry returned, or ExclusiveStartKey).
struct Want {
    lower: SkBound,
    upper: SkBound,
    reverse: bool,
    cursor: Option<Key>,
}

impl Want {
    /// Keys before the first wanted position in the direction of travel: a prefix of the order
    /// going forward (below the lower bound, or at/before the cursor), a suffix going backward.
    fn skip(&self, k: &Key) -> bool {
        if self.reverse {
            self.upper.above(&k.sk) || self.cursor.as_ref().is_some_and(|c| k >= c)
        } else {
            self.lower.below(&k.sk) || self.cursor.as_ref().is_some_and(|c| k <= c)
        }
    }
}

enum SkBound {
    Unbounded,
    Included(SortKey),
    Excluded(SortKey),
}

impl SkBound {
    fn new(b: Bound<'_>) -> Result<SkBound, SortIndexError> {
        Ok(match b {
            Bound::Unbounded => SkBound::Unbounded,
            Bound::Included(v) => SkBound::Included(SortKey::from_attr(v)?),
            Bound::Excluded(v) => SkBound::Excluded(SortKey::from_attr(v)?),
        })
    }

    /// Fails this bound taken as a lower bound.
    fn below(&self, sk: &SortKey) -> bool {
        match self {
            SkBound::Unbounded => false,
            SkBound::Included(b) => sk < b,
            SkBound::Excluded(b) => sk <= b,
        }
    }

    /// Fails this bound taken as an upper bound.
    fn above(&self, sk: &SortKey) -> bool {
        match self {
            SkBound::Unbounded => false,
            SkBound::Included(b) => sk > b,
            SkBound::Excluded(b) => sk >= b,
        }
    }
}

/// The sort-key range of `begins_with(sk, prefix)`: `[prefix, next)` where `next` is the
/// least value above every value that starts with `prefix` (none if there is no such value).
#[derive(Clone, Debug, PartialEq)]
pub struct PrefixRange {
    lower: AttributeValue,
    upper: Option<AttributeValue>,
}

impl PrefixRange {
    pub fn lower(&self) -> Bound<'_> {
        Bound::Included(&self.lower)
    }

    pub fn upper(&self) -> Bound<'_> {
        match &self.upper {
            Some(u) => Bound::Excluded(u),
            None => Bound::Unbounded,
        }
    }
}

/// The range for `begins_with` on an S or B sort key (DynamoDB allows it on no other type).
pub fn prefix_range(prefix: &AttributeValue) -> Result<PrefixRange, SortIndexError> {
    let upper = match prefix {
        // Bytes: drop trailing 0xFF, then increment the last byte.
        AttributeValue::B(b) => {
            let mut n = b.clone();
            while n.last() == Some(&0xff) {
                n.pop();
            }
            match n.last_mut() {
                Some(last) => {
                    *last = last.saturating_add(1);
                    Some(AttributeValue::B(n))
                }
                None => None,
            }
        }
        // Strings order by UTF-8 bytes, which is code point order: drop trailing U+10FFFF,
        // then replace the last char by the next scalar value (skipping the surrogate gap).
        AttributeValue::S(s) => {
            let mut chars: Vec<char> = s.chars().collect();
            while chars.last() == Some(&char::MAX) {
                chars.pop();
            }
            match chars.pop() {
                Some(c) => {
                    let next = match c {
                        '\u{D7FF}' => '\u{E000}',
                        c => char::from_u32(u32::from(c) + 1).unwrap_or(char::MAX),
                    };
                    chars.push(next);
                    Some(AttributeValue::S(chars.into_iter().collect()))
                }
                None => None,
            }
        }
        other => return Err(SortIndexError::PrefixType(other.type_name())),
    };
    // Same size checks as any bound.
    SortKey::from_attr(prefix)?;
    Ok(PrefixRange {
        lower: prefix.clone(),
        upper,
    })
}
