//! Binary forms of attribute values.
//!
//! - [`encode_item`] / [`decode_item`]: the compact item encoding that gets sealed. Canonical
//!   (one byte string per item), so a decoded item re-encodes to the same bytes. The decoder
//!   treats its input as hostile even though it was authenticated first: it rejects anything
//!   non-canonical, never panics, and never allocates more than the input's length justifies.
//! - [`key_token_input`]: the typed, length-prefixed bytes of a key value that the HMAC
//!   storage tokens are computed over.
//!
//! Item layout: `FORMAT_V1 | varint(count) | (name, value)*` with names strictly increasing.
//! name = `varint(len) | utf8`; value = `tag | body`:
//!
//! | tag | type | body |
//! |-----|------|------|
//! | 1 | S | varint(len), utf8 |
//! | 2 | N | number |
//! | 3 | B | varint(len), bytes |
//! | 4/5 | BOOL false/true | - |
//! | 6 | NULL | - |
//! | 7 | M | varint(count), (name, value)* (names strictly increasing) |
//! | 8 | L | varint(count), value* |
//! | 9 | SS | varint(count), (varint(len), utf8)* |
//! | 10 | NS | varint(count), number* |
//! | 11 | BS | varint(count), (varint(len), bytes)* |
//!
//! number = `0` (zero) | `1`/`2` (positive/negative), i16 LE exponent, varint(coefficient).
//! Varints are unsigned LEB128 without redundant trailing zero groups.

use std::collections::BTreeMap;

use super::{has_duplicates, AttrError, AttributeValue, Item, Number, MAX_NESTING_DEPTH};

/// First byte of an encoded item; a new layout gets a new value.
const FORMAT_V1: u8 = 1;

const T_S: u8 = 1;
const T_N: u8 = 2;
const T_B: u8 = 3;
const T_FALSE: u8 = 4;
const T_TRUE: u8 = 5;
const T_NULL: u8 = 6;
const T_M: u8 = 7;
const T_L: u8 = 8;
const T_SS: u8 = 9;
const T_NS: u8 = 10;
const T_BS: u8 = 11;

const N_ZERO: u8 = 0;
const N_POS: u8 = 1;
const N_NEG: u8 = 2;

// ---------------------------------------------------------------------------------------------
// Encoding

fn put_varint(out: &mut Vec<u8>, mut v: u128) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    put_varint(out, b.len() as u128);
    out.extend_from_slice(b);
}

fn put_number(out: &mut Vec<u8>, n: &Number) {
    let (negative, coeff, exp) = n.parts();
    if coeff == 0 {
        out.push(N_ZERO);
        return;
    }
    out.push(if negative { N_NEG } else { N_POS });
    out.extend_from_slice(&exp.to_le_bytes());
    put_varint(out, coeff);
}

fn put_value(out: &mut Vec<u8>, v: &AttributeValue) {
    match v {
        AttributeValue::S(s) => {
            out.push(T_S);
            put_bytes(out, s.as_bytes());
        }
        AttributeValue::N(n) => {
            out.push(T_N);
            put_number(out, n);
        }
        AttributeValue::B(b) => {
            out.push(T_B);
            put_bytes(out, b);
        }
        AttributeValue::Bool(false) => out.push(T_FALSE),
        AttributeValue::Bool(true) => out.push(T_TRUE),
        AttributeValue::Null => out.push(T_NULL),
        AttributeValue::M(m) => {
            out.push(T_M);
            put_map(out, m);
        }
        AttributeValue::L(l) => {
            out.push(T_L);
            put_varint(out, l.len() as u128);
            for v in l {
                put_value(out, v);
            }
        }
        AttributeValue::Ss(v) => {
            out.push(T_SS);
            put_varint(out, v.len() as u128);
            for s in v {
                put_bytes(out, s.as_bytes());
            }
        }
        AttributeValue::Ns(v) => {
            out.push(T_NS);
            put_varint(out, v.len() as u128);
            for n in v {
                put_number(out, n);
            }
        }
        AttributeValue::Bs(v) => {
            out.push(T_BS);
            put_varint(out, v.len() as u128);
            for b in v {
                put_bytes(out, b);
            }
        }
    }
}

fn put_map(out: &mut Vec<u8>, m: &BTreeMap<String, AttributeValue>) {
    put_varint(out, m.len() as u128);
    for (k, v) in m {
        put_bytes(out, k.as_bytes());
        put_value(out, v);
    }
}

/// Appends the binary encoding of `item` to `out`.
pub fn encode_item(item: &Item, out: &mut Vec<u8>) {
    out.push(FORMAT_V1);
    put_map(out, item);
}

// ---------------------------------------------------------------------------------------------
// Decoding

struct Reader<'a> {
    buf: &'a [u8],
}

fn corrupt(what: &'static str) -> AttrError {
    AttrError::Corrupt(what)
}

impl<'a> Reader<'a> {
    fn byte(&mut self) -> Result<u8, AttrError> {
        let (&b, rest) = self.buf.split_first().ok_or(corrupt("truncated"))?;
        self.buf = rest;
        Ok(b)
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], AttrError> {
        if n > self.buf.len() {
            return Err(corrupt("length beyond input"));
        }
        let (head, rest) = self.buf.split_at(n);
        self.buf = rest;
        Ok(head)
    }

    fn varint(&mut self) -> Result<u128, AttrError> {
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
                if b == 0 && shift > 0 {
                    return Err(corrupt("non-canonical varint"));
                }
                return Ok(v);
            }
            shift += 7;
        }
    }

    /// A count or length; anything beyond the remaining input cannot be honest.
    fn len(&mut self) -> Result<usize, AttrError> {
        let v = self.varint()?;
        match usize::try_from(v) {
            Ok(n) if n <= self.buf.len() => Ok(n),
            _ => Err(corrupt("length beyond input")),
        }
    }

    fn bytes(&mut self) -> Result<&'a [u8], AttrError> {
        let n = self.len()?;
        self.take(n)
    }

    fn string(&mut self) -> Result<String, AttrError> {
        let b = self.bytes()?;
        std::str::from_utf8(b)
            .map(str::to_owned)
            .map_err(|_| corrupt("invalid utf-8"))
    }

    fn number(&mut self) -> Result<Number, AttrError> {
        match self.byte()? {
            N_ZERO => Ok(Number::ZERO),
            sign @ (N_POS | N_NEG) => {
                let e = self.take(2)?;
                let exp = i16::from_le_bytes([
                    e.first().copied().unwrap_or(0),
                    e.get(1).copied().unwrap_or(0),
                ]);
                let coeff = self.varint()?;
                Number::from_parts(sign == N_NEG, coeff, exp).ok_or(corrupt("invalid number"))
            }
            _ => Err(corrupt("invalid number sign")),
        }
    }

    /// Each element takes at least one byte, so the remaining input bounds the allocation.
    fn vec_for<T>(&self, count: usize) -> Vec<T> {
        Vec::with_capacity(count.min(self.buf.len()))
    }

    fn map(&mut self, depth: usize) -> Result<BTreeMap<String, AttributeValue>, AttrError> {
        let count = self.len()?;
        let mut m = BTreeMap::new();
        for _ in 0..count {
            let k = self.string()?;
            if m.last_key_value().is_some_and(|(last, _)| *last >= k) {
                return Err(corrupt("map keys not strictly increasing"));
            }
            let v = self.value(depth)?;
            m.insert(k, v);
        }
        Ok(m)
    }

    /// A value inside `depth` enclosing containers.
    fn value(&mut self, depth: usize) -> Result<AttributeValue, AttrError> {
        let tag = self.byte()?;
        Ok(match tag {
            T_S => AttributeValue::S(self.string()?),
            T_N => AttributeValue::N(self.number()?),
            T_B => AttributeValue::B(self.bytes()?.to_vec()),
            T_FALSE => AttributeValue::Bool(false),
            T_TRUE => AttributeValue::Bool(true),
            T_NULL => AttributeValue::Null,
            T_M | T_L => {
                let d = depth + 1;
                if d > MAX_NESTING_DEPTH {
                    return Err(AttrError::NestingTooDeep);
                }
                if tag == T_M {
                    AttributeValue::M(self.map(d)?)
                } else {
                    let count = self.len()?;
                    let mut l = self.vec_for(count);
                    for _ in 0..count {
                        l.push(self.value(d)?);
                    }
                    AttributeValue::L(l)
                }
            }
            T_SS => AttributeValue::Ss(self.set(Self::string)?),
            T_NS => AttributeValue::Ns(self.set(Self::number)?),
            T_BS => AttributeValue::Bs(self.set(|r| r.bytes().map(<[u8]>::to_vec))?),
            _ => return Err(corrupt("unknown type tag")),
        })
    }

    fn set<T: Ord>(
        &mut self,
        mut read: impl FnMut(&mut Self) -> Result<T, AttrError>,
    ) -> Result<Vec<T>, AttrError> {
        let count = self.len()?;
        if count == 0 {
            return Err(corrupt("empty set"));
        }
        let mut v = self.vec_for(count);
        for _ in 0..count {
            v.push(read(self)?);
        }
        if has_duplicates(&v) {
            return Err(corrupt("duplicate set members"));
        }
        Ok(v)
    }
}

/// Decodes an item encoded by [`encode_item`]. Rejects trailing bytes, unknown tags, lengths
/// beyond the input, invalid UTF-8, non-canonical numbers or varints, unsorted map keys, empty
/// or duplicated sets and nesting deeper than [`MAX_NESTING_DEPTH`].
pub fn decode_item(bytes: &[u8]) -> Result<Item, AttrError> {
    let mut r = Reader { buf: bytes };
    if r.byte()? != FORMAT_V1 {
        return Err(corrupt("unknown item format"));
    }
    let item = r.map(0)?;
    if !r.buf.is_empty() {
        return Err(corrupt("trailing bytes"));
    }
    Ok(item)
}

// ---------------------------------------------------------------------------------------------
// Key tokens

/// Appends the canonical token input of a key value: a type byte (`S`, `N`, `B`), a 4-byte
/// big-endian length and the value bytes (UTF-8; for N the normalized decimal form, so "1.0"
/// and "1" give the same bytes). The type byte keeps `{"S":"1"}` and `{"N":"1"}` apart, the
/// length keeps concatenations of several values unambiguous.
pub fn key_token_input(v: &AttributeValue, out: &mut Vec<u8>) -> Result<(), AttrError> {
    match v {
        AttributeValue::S(s) => put_prefixed(out, b'S', s.as_bytes()),
        AttributeValue::B(b) => put_prefixed(out, b'B', b),
        AttributeValue::N(n) => {
            out.push(b'N');
            let len_at = out.len();
            out.extend_from_slice(&[0; 4]);
            let start = out.len();
            let mut w = VecWriter(out);
            n.write_plain(&mut w).map_err(|_| AttrError::TooLarge)?;
            let len = u32::try_from(out.len() - start).map_err(|_| AttrError::TooLarge)?;
            if let Some(slot) = out.get_mut(len_at..start) {
                slot.copy_from_slice(&len.to_be_bytes());
            }
            Ok(())
        }
        other => Err(AttrError::NotAKeyType(other.type_name())),
    }
}

fn put_prefixed(out: &mut Vec<u8>, tag: u8, b: &[u8]) -> Result<(), AttrError> {
    let len = u32::try_from(b.len()).map_err(|_| AttrError::TooLarge)?;
    out.push(tag);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(b);
    Ok(())
}

struct VecWriter<'a>(&'a mut Vec<u8>);

impl std::fmt::Write for VecWriter<'_> {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        self.0.extend_from_slice(s.as_bytes());
        Ok(())
    }
}
