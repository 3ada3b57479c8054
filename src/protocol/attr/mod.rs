//! DynamoDB attribute values: the typed form of `{"S": ...}`, `{"N": ...}`, ...
//!
//! Every other module works on [`AttributeValue`] and [`Item`]; nothing outside this module
//! looks at DynamoDB JSON or at the sealed binary form of an item.
//!
//! - [`number`]: exact decimal numbers with DynamoDB's precision and range.
//! - [`json`]: strict DynamoDB JSON (de)serialization with DynamoDB's validation messages.
//! - [`codec`]: compact binary item encoding (the plaintext that gets sealed) and key tokens.
//! - [`write`]: items straight to DynamoDB JSON bytes (GetItem's response).

use std::collections::BTreeMap;

mod codec;
mod json;
mod number;
#[cfg(test)]
mod tests;
mod write;

pub use codec::{decode_item, encode_item, key_token_input};
pub use number::Number;
pub use write::write_item;

/// An item: attribute name -> value. Ordered so that the binary encoding is canonical.
pub type Item = BTreeMap<String, AttributeValue>;

/// Prefix of serde error messages that are DynamoDB validation failures (ValidationException),
/// as opposed to shape/type errors (SerializationException). See [`json`].
pub const VALIDATION_PREFIX: &str = "ValidationException: ";

// DynamoDB limit: "The maximum item size in DynamoDB is 400 KB, which includes both attribute
// name binary length (UTF-8 length) and attribute value lengths" (Developer Guide, Constraints;
// 1 KB = 1024 bytes).
pub const MAX_ITEM_SIZE: usize = 409_600;
// DynamoDB limit: "The length of a partition key value must be between 1 and 2048 bytes"
// (Developer Guide, Constraints: Partition keys and sort keys).
pub const MAX_PARTITION_KEY_BYTES: usize = 2048;
// DynamoDB limit: "The length of a sort key value must be between 1 and 1024 bytes"
// (Developer Guide, Constraints: Partition keys and sort keys).
pub const MAX_SORT_KEY_BYTES: usize = 1024;
// DynamoDB limit: "DynamoDB supports nested attributes up to 32 levels deep" (Developer Guide,
// Constraints: Nested attribute depth). Counted in M/L containers: an item attribute that is
// a map is level 1.
pub const MAX_NESTING_DEPTH: usize = 32;

/// One DynamoDB attribute value.
///
/// Sets keep the order they arrived in (DynamoDB returns members in an unspecified order);
/// their members are unique (numbers compared numerically) and they are never empty once
/// they have passed deserialization or [`decode_item`].
#[derive(Clone, Debug, PartialEq)]
pub enum AttributeValue {
    S(String),
    N(Number),
    B(Vec<u8>),
    Bool(bool),
    Null,
    M(BTreeMap<String, AttributeValue>),
    L(Vec<AttributeValue>),
    Ss(Vec<String>),
    Ns(Vec<Number>),
    Bs(Vec<Vec<u8>>),
}

impl AttributeValue {
    /// The DynamoDB type descriptor ("S", "N", "B", "BOOL", "NULL", "M", "L", "SS", "NS", "BS").
    pub fn type_name(&self) -> &'static str {
        match self {
            AttributeValue::S(_) => "S",
            AttributeValue::N(_) => "N",
            AttributeValue::B(_) => "B",
            AttributeValue::Bool(_) => "BOOL",
            AttributeValue::Null => "NULL",
            AttributeValue::M(_) => "M",
            AttributeValue::L(_) => "L",
            AttributeValue::Ss(_) => "SS",
            AttributeValue::Ns(_) => "NS",
            AttributeValue::Bs(_) => "BS",
        }
    }

    /// Size of the value by DynamoDB's rules (Developer Guide, "DynamoDB item sizes and
    /// formats"): S = UTF-8 bytes, B = raw bytes, N = see [`Number::size`], BOOL/NULL = 1,
    /// M/L = 3 + per element (1 + element size, + key length for M), sets = sum of members.
    pub fn size(&self) -> usize {
        match self {
            AttributeValue::S(s) => s.len(),
            AttributeValue::N(n) => n.size(),
            AttributeValue::B(b) => b.len(),
            AttributeValue::Bool(_) | AttributeValue::Null => 1,
            AttributeValue::M(m) => m.iter().fold(3usize, |acc, (k, v)| {
                acc.saturating_add(k.len())
                    .saturating_add(v.size())
                    .saturating_add(1)
            }),
            AttributeValue::L(l) => l.iter().fold(3usize, |acc, v| {
                acc.saturating_add(v.size()).saturating_add(1)
            }),
            AttributeValue::Ss(v) => v.iter().fold(0usize, |a, s| a.saturating_add(s.len())),
            AttributeValue::Ns(v) => v.iter().fold(0usize, |a, n| a.saturating_add(n.size())),
            AttributeValue::Bs(v) => v.iter().fold(0usize, |a, b| a.saturating_add(b.len())),
        }
    }
}

/// Item size by DynamoDB's rules: for each attribute, its name's UTF-8 length plus its value's
/// size. Compare with [`MAX_ITEM_SIZE`].
pub fn item_size(item: &Item) -> usize {
    item.iter().fold(0usize, |acc, (k, v)| {
        acc.saturating_add(k.len()).saturating_add(v.size())
    })
}

/// The kind of set named in DynamoDB's empty-set message ("An string set  may not be empty").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SetKind {
    String,
    Number,
    Binary,
}

impl std::fmt::Display for SetKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            SetKind::String => "string",
            SetKind::Number => "number",
            SetKind::Binary => "binary",
        })
    }
}

/// Attribute value errors. The Display text of every validation variant is DynamoDB's exact
/// message (the lead maps them to ValidationException).
#[derive(Debug, thiserror::Error, Clone, PartialEq)]
pub enum AttrError {
    #[error("A value provided cannot be converted into a number")]
    NumberInvalid,
    #[error("Attempting to store more than 38 significant digits in a Number")]
    NumberPrecision,
    /// Also what DynamoDB reports when `+`/`-`/ADD would need more than 38 digits.
    #[error(
        "Number overflow. Attempting to store a number with magnitude larger than supported range"
    )]
    NumberOverflow,
    #[error(
        "Number underflow. Attempting to store a number with magnitude smaller than supported range"
    )]
    NumberUnderflow,
    #[error(
        "Supplied AttributeValue is empty, must contain exactly one of the supported datatypes"
    )]
    EmptyValue,
    #[error("Supplied AttributeValue has more than one datatypes set, must contain exactly one of the supported datatypes")]
    MultipleTypes,
    #[error(
        "One or more parameter values were invalid: Null attribute value types must have the value of true"
    )]
    NullNotTrue,
    // DynamoDB's message really has two spaces before "may".
    #[error("One or more parameter values were invalid: An {0} set  may not be empty")]
    EmptySet(SetKind),
    /// The payload is the collection as DynamoDB prints it: `[a, b, a]`.
    #[error(
        "One or more parameter values were invalid: Input collection {0} contains duplicates."
    )]
    DuplicateSetMembers(String),
    #[error("Nesting Levels have exceeded supported limits")]
    NestingTooDeep,
    /// Only S, N and B can be key attributes; callers check the declared type first.
    #[error("One or more parameter values were invalid: Key attributes must be of type S, N or B, not {0}")]
    NotAKeyType(&'static str),
    /// A value does not fit a length prefix (cannot happen for values under the item limit).
    #[error("attribute value too large to encode")]
    TooLarge,
    /// The stored binary form is malformed. Internal: it never reflects client input.
    #[error("stored item encoding is invalid: {0}")]
    Corrupt(&'static str),
}

impl AttrError {
    /// True for the errors that DynamoDB reports as ValidationException.
    pub fn is_validation(&self) -> bool {
        !matches!(self, AttrError::TooLarge | AttrError::Corrupt(_))
    }
}

/// True if `v` has two equal members (by `Ord`, so numbers compare numerically).
pub(crate) fn has_duplicates<T: Ord>(v: &[T]) -> bool {
    // Small sets are the common case: a quadratic scan beats allocating for a sort.
    if v.len() <= 16 {
        return v
            .iter()
            .enumerate()
            .any(|(i, a)| v.iter().skip(i + 1).any(|b| a == b));
    }
    let mut refs: Vec<&T> = v.iter().collect();
    refs.sort_unstable();
    refs.windows(2).any(|w| matches!(w, [a, b] if a == b))
}

/// DynamoDB's rendering of a collection in the duplicates message: `[a, b, c]`.
pub(crate) fn list_display<T, F>(items: &[T], mut show: F) -> String
where
    F: FnMut(&T, &mut String),
{
    let mut s = String::from("[");
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            s.push_str(", ");
        }
        show(item, &mut s);
    }
    s.push(']');
    s
}
