//! Items written straight to DynamoDB JSON bytes, for GetItem's response (the hottest read
//! path). The output is byte for byte what `serde_json::to_vec` gives for the same value (the
//! tests compare the two); the difference is string escaping, which copies runs of bytes that
//! need no escape eight at a time. serde_json's byte-at-a-time escaping was ~3% of a GetItem's
//! server CPU with a 1 KiB string attribute (perf, issue 2 notes).

use base64::Engine as _;

use super::{AttributeValue, Item};

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

/// Appends `item` as a DynamoDB JSON map (`{"name":{"S":"v"},...}`).
pub fn write_item(out: &mut Vec<u8>, item: &Item) {
    out.push(b'{');
    for (i, (name, value)) in item.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_str(out, name);
        out.push(b':');
        write_value(out, value);
    }
    out.push(b'}');
}

/// Appends one attribute value (`{"S":"v"}`, `{"N":"1"}`, ...).
pub fn write_value(out: &mut Vec<u8>, value: &AttributeValue) {
    out.extend_from_slice(b"{\"");
    out.extend_from_slice(value.type_name().as_bytes());
    out.extend_from_slice(b"\":");
    match value {
        AttributeValue::S(s) => write_str(out, s),
        AttributeValue::N(n) => write_number(out, n),
        AttributeValue::B(b) => write_b64(out, b),
        AttributeValue::Bool(b) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
        AttributeValue::Null => out.extend_from_slice(b"true"),
        AttributeValue::M(m) => write_item(out, m),
        AttributeValue::L(l) => write_seq(out, l, write_value),
        AttributeValue::Ss(v) => write_seq(out, v, |o, s| write_str(o, s)),
        AttributeValue::Ns(v) => write_seq(out, v, write_number),
        AttributeValue::Bs(v) => write_seq(out, v, |o, b| write_b64(o, b)),
    }
    out.push(b'}');
}

fn write_seq<T>(out: &mut Vec<u8>, items: &[T], write: impl Fn(&mut Vec<u8>, &T)) {
    out.push(b'[');
    for (i, x) in items.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write(out, x);
    }
    out.push(b']');
}

fn write_number(out: &mut Vec<u8>, n: &super::Number) {
    use std::io::Write as _;
    out.push(b'"');
    // Writing into a Vec cannot fail; a number's text (digits, '-', '.', 'E') needs no escape.
    let _ = write!(out, "{n}");
    out.push(b'"');
}

fn write_b64(out: &mut Vec<u8>, bytes: &[u8]) {
    out.push(b'"');
    let start = out.len();
    let len = base64::encoded_len(bytes.len(), true).unwrap_or(0);
    out.resize(start.saturating_add(len), 0);
    match out
        .get_mut(start..)
        .map(|tail| B64.encode_slice(bytes, tail))
    {
        Some(Ok(n)) => out.truncate(start.saturating_add(n)),
        // Unreachable (the tail is exactly the encoded length); fall back to allocating.
        _ => {
            out.truncate(start);
            out.extend_from_slice(B64.encode(bytes).as_bytes());
        }
    }
    out.push(b'"');
}

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGH: u64 = 0x8080_8080_8080_8080;

/// Whether any of the eight bytes in `x` is a control character (< 0x20), `"` or `\`.
/// (The classic "has a byte less than n" / "has a zero byte" bit tricks; both are exact.)
fn needs_escape(x: u64) -> bool {
    let control = x.wrapping_sub(ONES * 0x20) & !x & HIGH;
    let q = x ^ (ONES * u64::from(b'"'));
    let quote = q.wrapping_sub(ONES) & !q & HIGH;
    let b = x ^ (ONES * u64::from(b'\\'));
    let backslash = b.wrapping_sub(ONES) & !b & HIGH;
    (control | quote | backslash) != 0
}

/// Appends `s` as a JSON string literal, escaped exactly as serde_json escapes it.
pub fn write_str(out: &mut Vec<u8>, s: &str) {
    out.push(b'"');
    let bytes = s.as_bytes();
    // bytes[plain..at] need no escape and are not yet copied.
    let mut plain = 0;
    let mut at = 0;
    let mut chunks = bytes.chunks_exact(8);
    for chunk in chunks.by_ref() {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        if needs_escape(u64::from_le_bytes(word)) {
            for (i, &b) in chunk.iter().enumerate() {
                if let Some(esc) = escape(b) {
                    out.extend_from_slice(bytes.get(plain..at + i).unwrap_or_default());
                    push_escape(out, b, esc);
                    plain = at + i + 1;
                }
            }
        }
        at += 8;
    }
    for (i, &b) in chunks.remainder().iter().enumerate() {
        if let Some(esc) = escape(b) {
            out.extend_from_slice(bytes.get(plain..at + i).unwrap_or_default());
            push_escape(out, b, esc);
            plain = at + i + 1;
        }
    }
    out.extend_from_slice(bytes.get(plain..).unwrap_or_default());
    out.push(b'"');
}

/// serde_json's escapes: the short forms, else `\u00XX` with lowercase hex.
fn escape(b: u8) -> Option<u8> {
    match b {
        b'"' => Some(b'"'),
        b'\\' => Some(b'\\'),
        0x08 => Some(b'b'),
        0x0C => Some(b'f'),
        b'\n' => Some(b'n'),
        b'\r' => Some(b'r'),
        b'\t' => Some(b't'),
        0..=0x1F => Some(b'u'),
        _ => None,
    }
}

fn push_escape(out: &mut Vec<u8>, b: u8, esc: u8) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push(b'\\');
    out.push(esc);
    if esc == b'u' {
        out.extend_from_slice(b"00");
        out.push(HEX[usize::from(b >> 4)]);
        out.push(HEX[usize::from(b & 0xF)]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::attr::Number;
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    fn same_as_serde(item: &Item) -> Result<(), TestCaseError> {
        let mut ours = Vec::new();
        write_item(&mut ours, item);
        let theirs = serde_json::to_vec(item).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(
            String::from_utf8_lossy(&ours),
            String::from_utf8_lossy(&theirs)
        );
        Ok(())
    }

    /// Strings dense in the bytes around every escape boundary, at every offset in a word.
    fn text() -> impl Strategy<Value = String> {
        let c = prop_oneof![
            4 => proptest::char::range('\u{0}', '\u{7f}'),
            1 => Just('"'),
            1 => Just('\\'),
            1 => proptest::char::range('\u{1e}', '\u{23}'),
            1 => proptest::char::range('\u{5b}', '\u{5d}'),
            1 => any::<char>(),
        ];
        proptest::collection::vec(c, 0..40).prop_map(|v| v.into_iter().collect())
    }

    fn value() -> impl Strategy<Value = AttributeValue> {
        let number = (any::<i64>(), 0u32..6).prop_map(|(m, e)| {
            let n: Number = format!("{m}E-{e}")
                .parse()
                .unwrap_or_else(|_| "0".parse().unwrap());
            n
        });
        let leaf = prop_oneof![
            text().prop_map(AttributeValue::S),
            number.clone().prop_map(AttributeValue::N),
            proptest::collection::vec(any::<u8>(), 0..20).prop_map(AttributeValue::B),
            any::<bool>().prop_map(AttributeValue::Bool),
            Just(AttributeValue::Null),
            proptest::collection::vec(text(), 1..4).prop_map(AttributeValue::Ss),
            proptest::collection::vec(number, 1..4).prop_map(AttributeValue::Ns),
            proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..9), 1..4)
                .prop_map(AttributeValue::Bs),
        ];
        leaf.prop_recursive(3, 24, 4, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..4).prop_map(AttributeValue::L),
                proptest::collection::btree_map(text(), inner, 0..4).prop_map(AttributeValue::M),
            ]
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]
        #[test]
        fn items_are_written_as_serde_json_writes_them(
            item in proptest::collection::btree_map(text(), value(), 0..5)
        ) {
            same_as_serde(&item)?;
        }
    }

    #[test]
    fn every_byte_at_every_offset_escapes_as_serde_json_does() {
        for b in 0u8..0x80 {
            for offset in 0..17 {
                let s = format!("{}{}tail", "a".repeat(offset), char::from(b));
                let mut ours = Vec::new();
                write_str(&mut ours, &s);
                assert_eq!(
                    ours,
                    serde_json::to_vec(&s).unwrap(),
                    "byte {b:#x} at {offset}"
                );
            }
        }
        let mut item = BTreeMap::new();
        item.insert(
            "k\"ey".to_string(),
            AttributeValue::S("x".repeat(1000) + "\u{7}é\u{1F600}"),
        );
        same_as_serde(&item).unwrap();
    }
}
