//! DynamoDB JSON for attribute values: `{"S":"x"}`, `{"N":"1"}`, `{"B":"<base64>"}`, ...
//!
//! Deserialization is strict and validates as DynamoDB does. Validation failures are raised as
//! `serde::de::Error::custom("ValidationException: <DynamoDB message>")` (see
//! [`VALIDATION_PREFIX`]); wrong JSON shapes and types stay ordinary serde errors, which the
//! lead maps to SerializationException. A JSON `null` member counts as absent, as in AWS's
//! JSON protocol; unknown members are ignored.

use std::collections::BTreeMap;
use std::fmt;

use base64::Engine as _;
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::ser::{SerializeMap, SerializeSeq, Serializer};
use serde::{Deserialize, Serialize};

use super::{
    has_duplicates, list_display, AttrError, AttributeValue, Number, SetKind, MAX_NESTING_DEPTH,
    VALIDATION_PREFIX,
};

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

fn validation<E: de::Error>(e: AttrError) -> E {
    E::custom(format_args!("{VALIDATION_PREFIX}{e}"))
}

// ---------------------------------------------------------------------------------------------
// Serialize

impl Serialize for Number {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

struct B64Ref<'a>(&'a [u8]);

impl Serialize for B64Ref<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&B64.encode(self.0))
    }
}

struct SeqOf<'a, T>(&'a [T]);

impl Serialize for SeqOf<'_, Vec<u8>> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(self.0.len()))?;
        for b in self.0 {
            seq.serialize_element(&B64Ref(b))?;
        }
        seq.end()
    }
}

impl Serialize for AttributeValue {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(1))?;
        let k = self.type_name();
        match self {
            AttributeValue::S(v) => m.serialize_entry(k, v)?,
            AttributeValue::N(v) => m.serialize_entry(k, v)?,
            AttributeValue::B(v) => m.serialize_entry(k, &B64Ref(v))?,
            AttributeValue::Bool(v) => m.serialize_entry(k, v)?,
            AttributeValue::Null => m.serialize_entry(k, &true)?,
            AttributeValue::M(v) => m.serialize_entry(k, v)?,
            AttributeValue::L(v) => m.serialize_entry(k, v)?,
            AttributeValue::Ss(v) => m.serialize_entry(k, v)?,
            AttributeValue::Ns(v) => m.serialize_entry(k, v)?,
            AttributeValue::Bs(v) => m.serialize_entry(k, &SeqOf(v))?,
        }
        m.end()
    }
}

// ---------------------------------------------------------------------------------------------
// Deserialize

impl<'de> Deserialize<'de> for Number {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Number, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Number;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a number in a string")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Number, E> {
                s.parse().map_err(validation)
            }
        }
        d.deserialize_str(V)
    }
}

/// Base64 binary value.
struct Bin;

impl<'de> DeserializeSeed<'de> for Bin {
    type Value = Vec<u8>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Vec<u8>, D::Error> {
        d.deserialize_str(self)
    }
}

impl Visitor<'_> for Bin {
    type Value = Vec<u8>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a base64-encoded string")
    }
    fn visit_str<E: de::Error>(self, s: &str) -> Result<Vec<u8>, E> {
        // Not a ValidationException: like DynamoDB, undecodable base64 is a serialization error.
        B64.decode(s)
            .map_err(|_| E::custom("Base64 encoded binary value is invalid"))
    }
}

impl<'de> Deserialize<'de> for AttributeValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<AttributeValue, D::Error> {
        AvSeed { depth: 0 }.deserialize(d)
    }
}

/// An attribute value inside `depth` enclosing M/L containers.
#[derive(Clone, Copy)]
struct AvSeed {
    depth: usize,
}

impl AvSeed {
    /// The depth of a container that this value opens, or the nesting error.
    fn child<E: de::Error>(self) -> Result<usize, E> {
        let d = self.depth + 1;
        if d > MAX_NESTING_DEPTH {
            Err(validation(AttrError::NestingTooDeep))
        } else {
            Ok(d)
        }
    }
}

impl<'de> DeserializeSeed<'de> for AvSeed {
    type Value = AttributeValue;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<AttributeValue, D::Error> {
        d.deserialize_map(self)
    }
}

enum TypeKey {
    S,
    N,
    B,
    Bool,
    Null,
    M,
    L,
    Ss,
    Ns,
    Bs,
    Other,
}

impl<'de> Deserialize<'de> for TypeKey {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<TypeKey, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = TypeKey;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an attribute value type")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<TypeKey, E> {
                Ok(match s {
                    "S" => TypeKey::S,
                    "N" => TypeKey::N,
                    "B" => TypeKey::B,
                    "BOOL" => TypeKey::Bool,
                    "NULL" => TypeKey::Null,
                    "M" => TypeKey::M,
                    "L" => TypeKey::L,
                    "SS" => TypeKey::Ss,
                    "NS" => TypeKey::Ns,
                    "BS" => TypeKey::Bs,
                    _ => TypeKey::Other,
                })
            }
        }
        d.deserialize_identifier(V)
    }
}

/// `Option` for a seed: JSON `null` -> `None`.
struct Opt<S>(S);

impl<'de, S: DeserializeSeed<'de>> DeserializeSeed<'de> for Opt<S> {
    type Value = Option<S::Value>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_option(self)
    }
}

impl<'de, S: DeserializeSeed<'de>> Visitor<'de> for Opt<S> {
    type Value = Option<S::Value>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a value or null")
    }
    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        self.0.deserialize(d).map(Some)
    }
}

impl<'de> Visitor<'de> for AvSeed {
    type Value = AttributeValue;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an AttributeValue object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<AttributeValue, A::Error> {
        let mut out: Option<AttributeValue> = None;
        while let Some(key) = map.next_key::<TypeKey>()? {
            let v = match key {
                TypeKey::S => map.next_value::<Option<String>>()?.map(AttributeValue::S),
                TypeKey::N => map.next_value::<Option<Number>>()?.map(AttributeValue::N),
                TypeKey::B => map.next_value_seed(Opt(Bin))?.map(AttributeValue::B),
                TypeKey::Bool => map.next_value::<Option<bool>>()?.map(AttributeValue::Bool),
                TypeKey::Null => match map.next_value::<Option<bool>>()? {
                    Some(true) => Some(AttributeValue::Null),
                    Some(false) => return Err(validation(AttrError::NullNotTrue)),
                    None => None,
                },
                TypeKey::M => {
                    let depth = self.child()?;
                    map.next_value_seed(Opt(MapSeed { depth }))?
                        .map(AttributeValue::M)
                }
                TypeKey::L => {
                    let depth = self.child()?;
                    map.next_value_seed(Opt(ListSeed { depth }))?
                        .map(AttributeValue::L)
                }
                TypeKey::Ss => map.next_value_seed(Opt(SetSeed::<StrMember>::new()))?,
                TypeKey::Ns => map.next_value_seed(Opt(SetSeed::<NumMember>::new()))?,
                TypeKey::Bs => map.next_value_seed(Opt(SetSeed::<BinMember>::new()))?,
                TypeKey::Other => {
                    map.next_value::<IgnoredAny>()?;
                    None
                }
            };
            if let Some(v) = v {
                if out.is_some() {
                    return Err(validation(AttrError::MultipleTypes));
                }
                out = Some(v);
            }
        }
        out.ok_or_else(|| validation(AttrError::EmptyValue))
    }
}

/// The value of "M": attribute name -> value, one level deeper.
struct MapSeed {
    depth: usize,
}

impl<'de> DeserializeSeed<'de> for MapSeed {
    type Value = BTreeMap<String, AttributeValue>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for MapSeed {
    type Value = BTreeMap<String, AttributeValue>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a map of attribute values")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut out = BTreeMap::new();
        while let Some(k) = map.next_key::<String>()? {
            let v = map.next_value_seed(AvSeed { depth: self.depth })?;
            out.insert(k, v);
        }
        Ok(out)
    }
}

/// The value of "L", one level deeper.
struct ListSeed {
    depth: usize,
}

impl<'de> DeserializeSeed<'de> for ListSeed {
    type Value = Vec<AttributeValue>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for ListSeed {
    type Value = Vec<AttributeValue>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a list of attribute values")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(64));
        while let Some(v) = seq.next_element_seed(AvSeed { depth: self.depth })? {
            out.push(v);
        }
        Ok(out)
    }
}

/// A set member type: how it is read and how DynamoDB prints it in the duplicates message.
trait Member: Sized + Ord {
    const KIND: SetKind;
    fn read<'de, A: SeqAccess<'de>>(seq: &mut A) -> Result<Option<Self>, A::Error>;
    fn show(&self, out: &mut String);
    fn wrap(v: Vec<Self>) -> AttributeValue;
}

#[derive(PartialEq, Eq, PartialOrd, Ord)]
struct StrMember(String);
#[derive(PartialEq, Eq, PartialOrd, Ord)]
struct NumMember(Number);
#[derive(PartialEq, Eq, PartialOrd, Ord)]
struct BinMember(Vec<u8>);

impl Member for StrMember {
    const KIND: SetKind = SetKind::String;
    fn read<'de, A: SeqAccess<'de>>(seq: &mut A) -> Result<Option<Self>, A::Error> {
        Ok(seq.next_element::<String>()?.map(StrMember))
    }
    fn show(&self, out: &mut String) {
        out.push_str(&self.0);
    }
    fn wrap(v: Vec<Self>) -> AttributeValue {
        AttributeValue::Ss(v.into_iter().map(|m| m.0).collect())
    }
}

impl Member for NumMember {
    const KIND: SetKind = SetKind::Number;
    fn read<'de, A: SeqAccess<'de>>(seq: &mut A) -> Result<Option<Self>, A::Error> {
        Ok(seq.next_element::<Number>()?.map(NumMember))
    }
    fn show(&self, out: &mut String) {
        // Normalized form: the input spelling is not kept.
        let _ = self.0.write_plain(out);
    }
    fn wrap(v: Vec<Self>) -> AttributeValue {
        AttributeValue::Ns(v.into_iter().map(|m| m.0).collect())
    }
}

impl Member for BinMember {
    const KIND: SetKind = SetKind::Binary;
    fn read<'de, A: SeqAccess<'de>>(seq: &mut A) -> Result<Option<Self>, A::Error> {
        Ok(seq.next_element_seed(Bin)?.map(BinMember))
    }
    fn show(&self, out: &mut String) {
        B64.encode_string(&self.0, out);
    }
    fn wrap(v: Vec<Self>) -> AttributeValue {
        AttributeValue::Bs(v.into_iter().map(|m| m.0).collect())
    }
}

struct SetSeed<M>(std::marker::PhantomData<M>);

impl<M> SetSeed<M> {
    fn new() -> Self {
        SetSeed(std::marker::PhantomData)
    }
}

impl<'de, M: Member> DeserializeSeed<'de> for SetSeed<M> {
    type Value = AttributeValue;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<AttributeValue, D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de, M: Member> Visitor<'de> for SetSeed<M> {
    type Value = AttributeValue;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a list of set members")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<AttributeValue, A::Error> {
        let mut v: Vec<M> = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(64));
        while let Some(m) = M::read(&mut seq)? {
            v.push(m);
        }
        if v.is_empty() {
            return Err(validation(AttrError::EmptySet(M::KIND)));
        }
        if has_duplicates(&v) {
            let shown = list_display(&v, |m, out| m.show(out));
            return Err(validation(AttrError::DuplicateSetMembers(shown)));
        }
        Ok(M::wrap(v))
    }
}
