//! A JSON tree that keeps every object member in order, duplicates included, so that policy
//! validation can reject a duplicated element instead of silently keeping the last one.

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use std::fmt;

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum JVal {
    Null,
    Bool(bool),
    /// Numbers keep a decimal text form (condition values compare them exactly).
    Num(String),
    Str(String),
    Arr(Vec<JVal>),
    Obj(Vec<(String, JVal)>),
}

impl JVal {
    pub(crate) fn type_name(&self) -> &'static str {
        match self {
            JVal::Null => "null",
            JVal::Bool(_) => "a boolean",
            JVal::Num(_) => "a number",
            JVal::Str(_) => "a string",
            JVal::Arr(_) => "an array",
            JVal::Obj(_) => "an object",
        }
    }

    /// Scalar text as IAM reads condition values: strings, numbers and booleans.
    pub(crate) fn scalar_text(&self) -> Option<String> {
        match self {
            JVal::Str(s) | JVal::Num(s) => Some(s.clone()),
            JVal::Bool(b) => Some(b.to_string()),
            _ => None,
        }
    }
}

pub(crate) fn parse(text: &str) -> Result<JVal, serde_json::Error> {
    serde_json::from_str(text)
}

struct JVisitor;

impl<'de> Visitor<'de> for JVisitor {
    type Value = JVal;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_unit<E: de::Error>(self) -> Result<JVal, E> {
        Ok(JVal::Null)
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<JVal, E> {
        Ok(JVal::Bool(v))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<JVal, E> {
        Ok(JVal::Num(v.to_string()))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<JVal, E> {
        Ok(JVal::Num(v.to_string()))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<JVal, E> {
        Ok(JVal::Num(v.to_string()))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<JVal, E> {
        Ok(JVal::Str(v.to_owned()))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<JVal, E> {
        Ok(JVal::Str(v))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<JVal, A::Error> {
        let mut out = Vec::new();
        while let Some(v) = seq.next_element()? {
            out.push(v);
        }
        Ok(JVal::Arr(out))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<JVal, A::Error> {
        let mut out = Vec::new();
        while let Some((k, v)) = map.next_entry::<String, JVal>()? {
            out.push((k, v));
        }
        Ok(JVal::Obj(out))
    }
}

impl<'de> Deserialize<'de> for JVal {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<JVal, D::Error> {
        d.deserialize_any(JVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_duplicates_and_numbers() {
        let v = parse(r#"{"a":1,"a":2.5,"b":[true,null,"x"]}"#).unwrap();
        match v {
            JVal::Obj(m) => {
                assert_eq!(m.len(), 3);
                assert_eq!(m[0], ("a".into(), JVal::Num("1".into())));
                assert_eq!(m[1], ("a".into(), JVal::Num("2.5".into())));
            }
            other => panic!("{other:?}"),
        }
        assert!(parse("{").is_err());
    }
}
