//! Plaintext form of one sort-index page, and its compact binary encoding (the bytes that get
//! sealed).
//!
//! Layout: `FORMAT_V1 | level | low fence | high fence | body`, where `level` is 0 for a leaf
//! and the height above the leaves for an internal page. Fences are `0` (unbounded) or
//! `1 | key`. A leaf body is `prev | next | varint(n) | (key | varint(write seq))*` with
//! `prev`/`next` = `0` or `1 | page id`; an internal body is
//! `varint(children) | child0 | (separator key | child)*`.
//!
//! key = `sort key | item token(16)`; sort key = `1 | varint(len) | utf8` (S),
//! `2 | number` (N, the item codec's number form: `0` | `1`/`2`, i16 LE exponent, varint
//! coefficient), `3 | varint(len) | bytes` (B).
//!
//! The decoder treats its input as hostile although it was authenticated first: it never
//! panics, never allocates more than the input justifies, and rejects keys that are not
//! strictly increasing or that fall outside the page's fences, so later code can rely on both.

use super::{PageId, SortIndexError, Token, PAGE_ID_LEN, TOKEN_LEN};
use crate::protocol::attr::{AttributeValue, Number, MAX_SORT_KEY_BYTES};

/// First byte of a page's plaintext; a new layout gets a new value.
const FORMAT_V1: u8 = 1;
/// A B+tree of fan-out >= 2 over at most 2^64 entries is never taller than 64 levels; a level
/// byte above that can only be damage.
pub(super) const MAX_LEVEL: u8 = 64;

const T_S: u8 = 1;
const T_N: u8 = 2;
const T_B: u8 = 3;
const N_ZERO: u8 = 0;
const N_POS: u8 = 1;
const N_NEG: u8 = 2;

/// A sort key value. The derived order is the one Query needs within a type (S by UTF-8 bytes,
/// which is code point order; N numerically; B as unsigned bytes); across types it is the
/// variant order, which only matters for damaged or mixed data (a table's sort key has one type).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum SortKey {
    B(Vec<u8>),
    N(Number),
    S(String),
}

impl SortKey {
    pub(super) fn from_attr(v: &AttributeValue) -> Result<SortKey, SortIndexError> {
        let (sk, len) = match v {
            AttributeValue::S(s) => (SortKey::S(s.clone()), s.len()),
            AttributeValue::B(b) => (SortKey::B(b.clone()), b.len()),
            AttributeValue::N(n) => return Ok(SortKey::N(*n)),
            other => return Err(SortIndexError::NotAKeyType(other.type_name())),
        };
        if len > MAX_SORT_KEY_BYTES {
            return Err(SortIndexError::KeyTooLarge);
        }
        Ok(sk)
    }

    pub(super) fn to_attr(&self) -> AttributeValue {
        match self {
            SortKey::S(s) => AttributeValue::S(s.clone()),
            SortKey::N(n) => AttributeValue::N(*n),
            SortKey::B(b) => AttributeValue::B(b.clone()),
        }
    }

    fn encoded_len(&self) -> usize {
        match self {
            SortKey::S(s) => 1 + varint_len(s.len() as u128) + s.len(),
            SortKey::B(b) => 1 + varint_len(b.len() as u128) + b.len(),
            SortKey::N(n) => {
                let (_, coeff, _) = n.parts();
                if coeff == 0 {
                    2
                } else {
                    4 + varint_len(coeff)
                }
            }
        }
    }
}

/// The order of entries: sort key, then item token. For a base table the token is a function
/// of the sort key within a partition, so this is sort-key order; in a secondary index several
/// items share a sort key and the token keeps their entries apart.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(super) struct Key {
    pub sk: SortKey,
    pub token: Token,
}

impl Key {
    pub(super) fn encoded_len(&self) -> usize {
        self.sk.encoded_len() + TOKEN_LEN
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct LeafEntry {
    pub key: Key,
    pub seq: u64,
}

impl LeafEntry {
    pub(super) fn encoded_len(&self) -> usize {
        self.key.encoded_len() + varint_len(u128::from(self.seq))
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Body {
    Leaf {
        prev: Option<PageId>,
        next: Option<PageId>,
        entries: Vec<LeafEntry>,
    },
    /// `children[j]` holds the keys in `[seps[j-1], seps[j])`, with the page's own fences at the
    /// ends; so `seps.len() + 1 == children.len()`.
    Internal {
        level: u8,
        children: Vec<PageId>,
        seps: Vec<Key>,
    },
}

/// One page: every key below it lies in `[low, high)` (`None` = unbounded).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Page {
    pub low: Option<Key>,
    pub high: Option<Key>,
    pub body: Body,
}

impl Page {
    pub(super) fn level(&self) -> u8 {
        match &self.body {
            Body::Leaf { .. } => 0,
            Body::Internal { level, .. } => *level,
        }
    }

    /// Exact length of [`Page::encode`]'s output, without encoding.
    pub(super) fn encoded_len(&self) -> usize {
        let fence = |f: &Option<Key>| 1 + f.as_ref().map_or(0, Key::encoded_len);
        let id = |p: &Option<PageId>| 1 + p.map_or(0, |_| PAGE_ID_LEN);
        let head = 2 + fence(&self.low) + fence(&self.high);
        head + match &self.body {
            Body::Leaf {
                prev,
                next,
                entries,
            } => {
                id(prev)
                    + id(next)
                    + varint_len(entries.len() as u128)
                    + entries.iter().map(LeafEntry::encoded_len).sum::<usize>()
            }
            Body::Internal { children, seps, .. } => {
                varint_len(children.len() as u128)
                    + children.len() * PAGE_ID_LEN
                    + seps.iter().map(Key::encoded_len).sum::<usize>()
            }
        }
    }

    /// [`Page::encoded_len`] without the fences: what a split can actually divide (each half
    /// keeps a copy of a fence), so large fence keys do not collapse the fan-out.
    pub(super) fn payload_len(&self) -> usize {
        let fence = |f: &Option<Key>| f.as_ref().map_or(0, Key::encoded_len);
        self.encoded_len()
            .saturating_sub(fence(&self.low))
            .saturating_sub(fence(&self.high))
    }

    pub(super) fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.encoded_len());
        out.push(FORMAT_V1);
        out.push(self.level());
        put_fence(&mut out, &self.low);
        put_fence(&mut out, &self.high);
        match &self.body {
            Body::Leaf {
                prev,
                next,
                entries,
            } => {
                put_opt_id(&mut out, prev);
                put_opt_id(&mut out, next);
                put_varint(&mut out, entries.len() as u128);
                for e in entries {
                    put_key(&mut out, &e.key);
                    put_varint(&mut out, u128::from(e.seq));
                }
            }
            Body::Internal { children, seps, .. } => {
                put_varint(&mut out, children.len() as u128);
                let mut ids = children.iter();
                if let Some(first) = ids.next() {
                    out.extend_from_slice(first);
                }
                for (sep, child) in seps.iter().zip(ids) {
                    put_key(&mut out, sep);
                    out.extend_from_slice(child);
                }
            }
        }
        out
    }

    pub(super) fn decode(bytes: &[u8]) -> Result<Page, SortIndexError> {
        let mut r = Reader { buf: bytes };
        if r.byte()? != FORMAT_V1 {
            return Err(corrupt("unknown page format"));
        }
        let level = r.byte()?;
        if level > MAX_LEVEL {
            return Err(corrupt("page level out of range"));
        }
        let low = r.fence()?;
        let high = r.fence()?;
        let body = if level == 0 {
            let prev = r.opt_id()?;
            let next = r.opt_id()?;
            let n = r.count()?;
            let mut entries: Vec<LeafEntry> = Vec::with_capacity(n);
            for _ in 0..n {
                let key = r.key()?;
                let seq = u64::try_from(r.varint()?).map_err(|_| corrupt("write seq overflow"))?;
                entries.push(LeafEntry { key, seq });
            }
            let keys: Vec<&Key> = entries.iter().map(|e| &e.key).collect();
            check_order(&low, &high, &keys, true)?;
            Body::Leaf {
                prev,
                next,
                entries,
            }
        } else {
            let n = r.count()?;
            if n == 0 {
                return Err(corrupt("internal page without children"));
            }
            let mut children = Vec::with_capacity(n);
            let mut seps = Vec::with_capacity(n - 1);
            children.push(r.id()?);
            for _ in 1..n {
                seps.push(r.key()?);
                children.push(r.id()?);
            }
            let keys: Vec<&Key> = seps.iter().collect();
            check_order(&low, &high, &keys, false)?;
            Body::Internal {
                level,
                children,
                seps,
            }
        };
        if !r.buf.is_empty() {
            return Err(corrupt("trailing bytes"));
        }
        Ok(Page { low, high, body })
    }
}

/// Keys strictly increasing and inside the fences: `low <= k` for leaf entries (an entry may
/// sit on its page's low fence), `low < k` for separators (every child range is non-empty),
/// and `k < high` for both; and `low < high`.
fn check_order(
    low: &Option<Key>,
    high: &Option<Key>,
    keys: &[&Key],
    leaf: bool,
) -> Result<(), SortIndexError> {
    if let (Some(l), Some(h)) = (low, high) {
        if l >= h {
            return Err(corrupt("empty fence range"));
        }
    }
    if keys.windows(2).any(|w| matches!(w, [a, b] if a >= b)) {
        return Err(corrupt("keys not strictly increasing"));
    }
    if let (Some(l), Some(first)) = (low, keys.first()) {
        if *first < l || (!leaf && *first == l) {
            return Err(corrupt("key below the low fence"));
        }
    }
    if let (Some(h), Some(last)) = (high, keys.last()) {
        if *last >= h {
            return Err(corrupt("key at or above the high fence"));
        }
    }
    Ok(())
}

fn corrupt(what: &'static str) -> SortIndexError {
    SortIndexError::Corrupt(what)
}

pub(super) fn varint_len(mut v: u128) -> usize {
    let mut n = 1;
    while v >= 0x80 {
        v >>= 7;
        n += 1;
    }
    n
}

fn put_varint(out: &mut Vec<u8>, mut v: u128) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn put_fence(out: &mut Vec<u8>, f: &Option<Key>) {
    match f {
        None => out.push(0),
        Some(k) => {
            out.push(1);
            put_key(out, k);
        }
    }
}

fn put_opt_id(out: &mut Vec<u8>, id: &Option<PageId>) {
    match id {
        None => out.push(0),
        Some(id) => {
            out.push(1);
            out.extend_from_slice(id);
        }
    }
}

fn put_key(out: &mut Vec<u8>, k: &Key) {
    match &k.sk {
        SortKey::S(s) => {
            out.push(T_S);
            put_varint(out, s.len() as u128);
            out.extend_from_slice(s.as_bytes());
        }
        SortKey::B(b) => {
            out.push(T_B);
            put_varint(out, b.len() as u128);
            out.extend_from_slice(b);
        }
        SortKey::N(n) => {
            out.push(T_N);
            let (negative, coeff, exp) = n.parts();
            if coeff == 0 {
                out.push(N_ZERO);
            } else {
                out.push(if negative { N_NEG } else { N_POS });
                out.extend_from_slice(&exp.to_le_bytes());
                put_varint(out, coeff);
            }
        }
    }
    out.extend_from_slice(&k.token);
}

struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    fn byte(&mut self) -> Result<u8, SortIndexError> {
        let (b, rest) = self.buf.split_first().ok_or(corrupt("truncated page"))?;
        self.buf = rest;
        Ok(*b)
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], SortIndexError> {
        if n > self.buf.len() {
            return Err(corrupt("length beyond page"));
        }
        let (head, rest) = self.buf.split_at(n);
        self.buf = rest;
        Ok(head)
    }

    fn varint(&mut self) -> Result<u128, SortIndexError> {
        let mut v: u128 = 0;
        let mut shift = 0u32;
        loop {
            let b = self.byte()?;
            let low = u128::from(b & 0x7f);
            if shift >= 128 || (shift > 0 && (low >> (128 - shift)) != 0) {
                return Err(corrupt("varint overflow"));
            }
            v |= low << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
            shift += 7;
        }
    }

    /// A count or length: each counted element takes at least one byte, so anything beyond
    /// the remaining input is damage (and bounds every allocation by the page size).
    fn count(&mut self) -> Result<usize, SortIndexError> {
        match usize::try_from(self.varint()?) {
            Ok(n) if n <= self.buf.len() => Ok(n),
            _ => Err(corrupt("count beyond page")),
        }
    }

    fn id(&mut self) -> Result<PageId, SortIndexError> {
        let b = self.take(PAGE_ID_LEN)?;
        let mut id = [0u8; PAGE_ID_LEN];
        id.copy_from_slice(b);
        Ok(id)
    }

    fn opt_id(&mut self) -> Result<Option<PageId>, SortIndexError> {
        match self.byte()? {
            0 => Ok(None),
            1 => self.id().map(Some),
            _ => Err(corrupt("invalid page pointer flag")),
        }
    }

    fn fence(&mut self) -> Result<Option<Key>, SortIndexError> {
        match self.byte()? {
            0 => Ok(None),
            1 => self.key().map(Some),
            _ => Err(corrupt("invalid fence flag")),
        }
    }

    fn key(&mut self) -> Result<Key, SortIndexError> {
        let sk = match self.byte()? {
            T_S => {
                let n = self.count()?;
                let b = self.take(n)?;
                let s = std::str::from_utf8(b).map_err(|_| corrupt("invalid utf-8"))?;
                SortKey::S(s.to_owned())
            }
            T_B => {
                let n = self.count()?;
                SortKey::B(self.take(n)?.to_vec())
            }
            T_N => SortKey::N(self.number()?),
            _ => return Err(corrupt("unknown sort key type")),
        };
        let t = self.take(TOKEN_LEN)?;
        let mut token = [0u8; TOKEN_LEN];
        token.copy_from_slice(t);
        Ok(Key { sk, token })
    }

    fn number(&mut self) -> Result<Number, SortIndexError> {
        match self.byte()? {
            N_ZERO => Ok(Number::ZERO),
            sign @ (N_POS | N_NEG) => {
                let e = self.take(2)?;
                let mut exp = [0u8; 2];
                exp.copy_from_slice(e);
                let coeff = self.varint()?;
                Number::from_parts(sign == N_NEG, coeff, i16::from_le_bytes(exp))
                    .ok_or(corrupt("invalid number"))
            }
            _ => Err(corrupt("invalid number sign")),
        }
    }
}

impl Page {
    /// Whether this page may sit where its parent points: one level below `parent_level`,
    /// covering exactly the range the parent assigns to it.
    pub(super) fn fits(&self, parent_level: u8, low: Option<&Key>, high: Option<&Key>) -> bool {
        self.level().checked_add(1) == Some(parent_level)
            && self.low.as_ref() == low
            && self.high.as_ref() == high
    }

    /// The range `[low, high)` that an internal page assigns to its child `idx`, and the child.
    pub(super) fn child(&self, idx: usize) -> Option<(PageId, Option<&Key>, Option<&Key>)> {
        let Body::Internal { children, seps, .. } = &self.body else {
            return None;
        };
        let id = *children.get(idx)?;
        let low = match idx.checked_sub(1) {
            None => self.low.as_ref(),
            Some(i) => Some(seps.get(i)?),
        };
        let high = match seps.get(idx) {
            Some(k) => Some(k),
            None => self.high.as_ref(),
        };
        Some((id, low, high))
    }
}
