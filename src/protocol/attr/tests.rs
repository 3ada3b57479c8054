//! Unit and property tests for the attribute value layer.

use std::cmp::Ordering;
use std::collections::BTreeMap;

use proptest::prelude::*;

use super::*;

fn num(s: &str) -> Number {
    s.parse().unwrap()
}

fn json(s: &str) -> Result<AttributeValue, String> {
    serde_json::from_str::<AttributeValue>(s).map_err(|e| e.to_string())
}

/// Asserts a validation failure with exactly DynamoDB's message.
fn assert_validation(input: &str, msg: &str) {
    let err = json(input).unwrap_err();
    let want = format!("{VALIDATION_PREFIX}{msg}");
    assert!(
        err.starts_with(&want),
        "input {input}: got {err:?}, want {want:?}"
    );
}

/// Asserts a plain serde (serialization) failure.
fn assert_shape_error(input: &str) {
    let err = json(input).unwrap_err();
    assert!(
        !err.starts_with(VALIDATION_PREFIX),
        "input {input}: got {err:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// Numbers: unit tests

#[test]
fn number_normalized_display() {
    for (input, want) in [
        ("1.50", "1.5"),
        ("1e2", "100"),
        ("-0", "0"),
        ("0.0010", "0.001"),
        ("3", "3"),
        ("-7.1234", "-7.1234"),
        ("-17e5", "-1700000"),
        ("-17.4E37", "-174000000000000000000000000000000000000"),
        ("+3", "3"),
        (".123", "0.123"),
        ("0001.23", "1.23"),
        ("1e+5", "100000"),
        ("0e1000", "0"),
        ("0.000", "0"),
        ("1.", "1"),
        ("-.5", "-0.5"),
        ("123.456e-2", "1.23456"),
        ("120.5", "120.5"),
        ("1E-3", "0.001"),
        (
            "1000000000000000000000000000000000000000000",
            "1000000000000000000000000000000000000000000",
        ),
    ] {
        assert_eq!(num(input).to_string(), want, "input {input}");
    }
    assert_eq!(num("1e-130").to_string(), format!("0.{}1", "0".repeat(129)));
    assert_eq!(num("-1e125").to_string(), format!("-1{}", "0".repeat(125)));
}

#[test]
fn number_invalid_syntax() {
    for s in [
        "",
        "NaN",
        "-NaN",
        "Infinity",
        "-Infinity",
        "inf",
        "0x10",
        "0X1F",
        " 1",
        "1 ",
        "dog",
        "-dog",
        "1e",
        "e5",
        ".",
        "-",
        "+",
        "1..2",
        "1.2.3",
        "1e5.5",
        "--1",
        "+-1",
        "1e--5",
        "1e+",
        "1,5",
        "١",
        "1_000",
        "\u{0}1",
    ] {
        assert_eq!(
            s.parse::<Number>(),
            Err(AttrError::NumberInvalid),
            "input {s:?}"
        );
    }
}

#[test]
fn number_limits() {
    // 38 significant digits are fine, 39 are not; leading/trailing zeros do not count.
    let d38 = "12345678901234567890123456789012345678";
    assert_eq!(num(d38).to_string(), d38);
    assert_eq!(
        num(&format!("000{d38}000")).to_string(),
        format!("{d38}000")
    );
    assert_eq!(num(&format!("0.{d38}")).to_string(), format!("0.{d38}"));
    for s in [
        "123456789012345678901234567890123456789",
        "3.14159265358979323846264338327950288419",
        "314159265358979323846264338327950288419e30",
    ] {
        assert_eq!(s.parse::<Number>(), Err(AttrError::NumberPrecision), "{s}");
    }
    for s in ["1e126", "11e125", "-1e126", "1e999999999999999999999"] {
        assert_eq!(s.parse::<Number>(), Err(AttrError::NumberOverflow), "{s}");
    }
    for s in ["1e-131", "0.9e-130", "-1e-131", "1e-999999999999999999999"] {
        assert_eq!(s.parse::<Number>(), Err(AttrError::NumberUnderflow), "{s}");
    }
    for s in [
        "1e125",
        "9.99999999e125",
        "1e-130",
        "-1e-130",
        "9.9999999999999999999999999999999999999E+125",
    ] {
        assert!(s.parse::<Number>().is_ok(), "{s}");
    }
    assert_eq!(
        AttrError::NumberPrecision.to_string(),
        "Attempting to store more than 38 significant digits in a Number"
    );
    assert_eq!(
        AttrError::NumberOverflow.to_string(),
        "Number overflow. Attempting to store a number with magnitude larger than supported range"
    );
    assert_eq!(
        AttrError::NumberUnderflow.to_string(),
        "Number underflow. Attempting to store a number with magnitude smaller than supported range"
    );
    assert_eq!(
        AttrError::NumberInvalid.to_string(),
        "A value provided cannot be converted into a number"
    );
}

#[test]
fn number_equality_and_order() {
    assert_eq!(num("1.0"), num("1"));
    assert_eq!(num("100"), num("1e2"));
    assert_eq!(num("-0"), num("0"));
    assert!(num("-1") < num("0"));
    assert!(num("0.001") < num("0.01"));
    assert!(num("-0.001") > num("-0.01"));
    assert!(num("9.99") < num("10"));
    assert!(num("1e-130") > Number::ZERO);
    assert!(num("-1e125") < num("-9.9e124"));
    assert_eq!(num("12.5").cmp(&num("12.50")), Ordering::Equal);
    use std::collections::HashSet;
    let set: HashSet<Number> = ["1", "1.0", "1e0", "10e-1"]
        .iter()
        .map(|s| num(s))
        .collect();
    assert_eq!(set.len(), 1);
    assert_eq!(Number::from(-1200i64), num("-1.2e3"));
    assert_eq!(Number::from(0u64), Number::ZERO);
}

#[test]
fn number_arithmetic() {
    let ok =
        |a: &str, b: &str, sum: &str| assert_eq!(num(a).add(&num(b)).unwrap().to_string(), sum);
    ok("1", "10000000000000000000000", "10000000000000000000001");
    ok("0.1", "0.2", "0.3");
    ok(
        "99999999999999999999999999999999999999",
        "1",
        "100000000000000000000000000000000000000",
    );
    ok("-5", "5", "0");
    ok("-5", "3", "-2");
    ok("1e40", "-9.99e39", "10000000000000000000000000000000000000");
    ok("1e38", "-1", "99999999999999999999999999999999999999");
    ok("0", "-7.5", "-7.5");
    assert_eq!(
        num("10000000000000000000000")
            .sub(&num("1"))
            .unwrap()
            .to_string(),
        "9999999999999999999999"
    );
    // DynamoDB reports precision loss in arithmetic as overflow.
    assert_eq!(num("1e50").add(&num("1")), Err(AttrError::NumberOverflow));
    assert_eq!(num("1e50").sub(&num("1")), Err(AttrError::NumberOverflow));
    assert_eq!(
        num("9e125").add(&num("9e125")),
        Err(AttrError::NumberOverflow)
    );
    assert_eq!(
        num("9e125").sub(&num("-9e125")),
        Err(AttrError::NumberOverflow)
    );
    assert_eq!(
        num("1.1e-130").sub(&num("1e-130")),
        Err(AttrError::NumberUnderflow)
    );
    assert_eq!(
        num("12345678901234567890123456789012345678").add(&num("0.1")),
        Err(AttrError::NumberOverflow)
    );
}

// ---------------------------------------------------------------------------------------------
// JSON: unit tests

#[test]
fn json_shape_validation_messages() {
    assert_validation(
        "{}",
        "Supplied AttributeValue is empty, must contain exactly one of the supported datatypes",
    );
    assert_validation(
        r#"{"S": null}"#,
        "Supplied AttributeValue is empty, must contain exactly one of the supported datatypes",
    );
    assert_validation(
        r#"{"S":"a","N":"1"}"#,
        "Supplied AttributeValue has more than one datatypes set, must contain exactly one of the supported datatypes",
    );
    assert_validation(
        r#"{"NULL": false}"#,
        "One or more parameter values were invalid: Null attribute value types must have the value of true",
    );
    assert_validation(
        r#"{"SS": []}"#,
        "One or more parameter values were invalid: An string set  may not be empty",
    );
    assert_validation(
        r#"{"NS": []}"#,
        "One or more parameter values were invalid: An number set  may not be empty",
    );
    assert_validation(
        r#"{"BS": []}"#,
        "One or more parameter values were invalid: An binary set  may not be empty",
    );
    assert_validation(
        r#"{"SS": ["a", "a"]}"#,
        "One or more parameter values were invalid: Input collection [a, a] contains duplicates.",
    );
    assert_validation(
        r#"{"NS": ["1", "2", "1.0"]}"#,
        "One or more parameter values were invalid: Input collection [1, 2, 1] contains duplicates.",
    );
    assert_validation(
        r#"{"BS": ["AQI=", "AQI="]}"#,
        "One or more parameter values were invalid: Input collection [AQI=, AQI=] contains duplicates.",
    );
    // Many members: the sort-based duplicate check.
    let many: Vec<String> = (0..40).map(|i| format!("\"{i}\"")).collect();
    let dup = format!(r#"{{"NS": [{}, "39.0"]}}"#, many.join(","));
    assert!(json(&dup).unwrap_err().contains("contains duplicates."));
    let ok = format!(r#"{{"NS": [{}]}}"#, many.join(","));
    assert!(matches!(json(&ok).unwrap(), AttributeValue::Ns(v) if v.len() == 40));
}

#[test]
fn json_number_messages() {
    for s in ["", "NaN", "Infinity", "0x1A", " 1", "abc"] {
        assert_validation(
            &format!(r#"{{"N": "{s}"}}"#),
            "A value provided cannot be converted into a number",
        );
    }
    assert_validation(
        r#"{"N": "1234567890123456789012345678901234567890"}"#,
        "Attempting to store more than 38 significant digits in a Number",
    );
    assert_validation(
        r#"{"N": "1e126"}"#,
        "Number overflow. Attempting to store a number with magnitude larger than supported range",
    );
    assert_validation(
        r#"{"N": "1e-131"}"#,
        "Number underflow. Attempting to store a number with magnitude smaller than supported range",
    );
    assert_validation(
        r#"{"NS": ["1", "x"]}"#,
        "A value provided cannot be converted into a number",
    );
}

#[test]
fn json_nested_validation() {
    assert_validation(
        r#"{"M": {"a": {"S": "x"}, "b": {"SS": []}}}"#,
        "One or more parameter values were invalid: An string set  may not be empty",
    );
    assert_validation(
        r#"{"L": [{"S": "x"}, {"NULL": false}]}"#,
        "One or more parameter values were invalid: Null attribute value types must have the value of true",
    );
    assert_validation(r#"{"L": [{}]}"#, "Supplied AttributeValue is empty");
    assert_validation(
        r#"{"M": {"a": {"L": [{"N": "x"}]}}}"#,
        "A value provided cannot be converted into a number",
    );
}

fn nested_json(levels: usize, list: bool) -> String {
    let mut s = String::from(r#"{"S":"leaf"}"#);
    for _ in 0..levels {
        s = if list {
            format!(r#"{{"L":[{s}]}}"#)
        } else {
            format!(r#"{{"M":{{"k":{s}}}}}"#)
        };
    }
    s
}

#[test]
fn json_nesting_limit() {
    for list in [false, true] {
        assert!(json(&nested_json(MAX_NESTING_DEPTH, list)).is_ok());
        assert_validation(
            &nested_json(MAX_NESTING_DEPTH + 1, list),
            "Nesting Levels have exceeded supported limits",
        );
        // Far deeper than serde_json's own recursion limit: still our message, no stack issue.
        assert_validation(
            &nested_json(500, list),
            "Nesting Levels have exceeded supported limits",
        );
    }
}

#[test]
fn json_shape_errors_are_not_validation() {
    assert_shape_error(r#"{"N": 123}"#);
    assert_shape_error(r#"{"S": 1}"#);
    assert_shape_error(r#"{"BOOL": "true"}"#);
    assert_shape_error(r#"{"NULL": "x"}"#);
    assert_shape_error(r#"{"SS": "a"}"#);
    assert_shape_error(r#"{"SS": ["a", null]}"#);
    assert_shape_error(r#"{"M": []}"#);
    assert_shape_error(r#"{"L": {}}"#);
    assert_shape_error(r#"[]"#);
    assert_shape_error(r#""S""#);
    // Invalid base64 is a serialization problem, not a validation one.
    assert_shape_error(r#"{"B": "!!!"}"#);
    assert_shape_error(r#"{"B": "AQI"}"#);
    assert_shape_error(r#"{"BS": ["AQI=", "*"]}"#);
}

#[test]
fn json_accepts_and_serializes() {
    let v = json(r#"{"S": null, "N": "1.50", "Extra": [1, 2]}"#).unwrap();
    assert_eq!(v, AttributeValue::N(num("1.5")));
    assert_eq!(serde_json::to_string(&v).unwrap(), r#"{"N":"1.5"}"#);
    let cases = [
        (AttributeValue::S("x".into()), r#"{"S":"x"}"#),
        (AttributeValue::B(vec![1, 2]), r#"{"B":"AQI="}"#),
        (AttributeValue::Bool(true), r#"{"BOOL":true}"#),
        (AttributeValue::Null, r#"{"NULL":true}"#),
        (
            AttributeValue::L(vec![AttributeValue::Null]),
            r#"{"L":[{"NULL":true}]}"#,
        ),
        (
            AttributeValue::M(BTreeMap::from([(
                "a".to_string(),
                AttributeValue::Bool(false),
            )])),
            r#"{"M":{"a":{"BOOL":false}}}"#,
        ),
        (
            AttributeValue::Ss(vec!["b".into(), "a".into()]),
            r#"{"SS":["b","a"]}"#,
        ),
        (
            AttributeValue::Ns(vec![num("1e2"), num("-0.5")]),
            r#"{"NS":["100","-0.5"]}"#,
        ),
        (
            AttributeValue::Bs(vec![vec![0xff], vec![]]),
            r#"{"BS":["/w==",""]}"#,
        ),
        (AttributeValue::S(String::new()), r#"{"S":""}"#),
    ];
    for (v, text) in cases {
        assert_eq!(serde_json::to_string(&v).unwrap(), text);
        assert_eq!(json(text).unwrap(), v);
    }
    let item: Item = serde_json::from_str(r#"{"pk": {"S": "a"}, "n": {"N": "0.0010"}}"#).unwrap();
    assert_eq!(item.get("n"), Some(&AttributeValue::N(num("0.001"))));
}

// ---------------------------------------------------------------------------------------------
// Sizes and key tokens

#[test]
fn sizes_follow_dynamodb_rules() {
    use AttributeValue as A;
    assert_eq!(A::S("abc".into()).size(), 3);
    assert_eq!(A::S("é".into()).size(), 2);
    assert_eq!(A::B(vec![0; 10]).size(), 10);
    assert_eq!(A::Bool(true).size(), 1);
    assert_eq!(A::Null.size(), 1);
    assert_eq!(A::N(num("12345")).size(), 4); // ceil(5/2) + 1
    assert_eq!(A::N(num("1234")).size(), 3);
    assert_eq!(A::N(num("-0.000120")).size(), 2); // digits "12"
    assert_eq!(A::N(Number::ZERO).size(), 2);
    assert_eq!(A::M(BTreeMap::new()).size(), 3);
    assert_eq!(A::L(vec![]).size(), 3);
    let m = A::M(BTreeMap::from([("a".to_string(), A::S("xy".into()))]));
    assert_eq!(m.size(), 3 + 1 + 2 + 1);
    assert_eq!(A::L(vec![A::Null, A::Null]).size(), 3 + 2 * 2);
    assert_eq!(A::Ss(vec!["ab".into(), "c".into()]).size(), 3);
    assert_eq!(A::Ns(vec![num("1"), num("123")]).size(), 2 + 3);
    assert_eq!(A::Bs(vec![vec![1, 2], vec![3]]).size(), 3);
    let item: Item = BTreeMap::from([
        ("pk".to_string(), A::S("abcd".into())),
        ("m".to_string(), m),
    ]);
    assert_eq!(item_size(&item), 2 + 4 + 1 + 7);
    assert_eq!(MAX_ITEM_SIZE, 400 * 1024);
}

#[test]
fn key_token_input_is_canonical_and_typed() {
    let tok = |v: &AttributeValue| {
        let mut out = Vec::new();
        key_token_input(v, &mut out).unwrap();
        out
    };
    use AttributeValue as A;
    assert_eq!(tok(&A::N(num("1.0"))), tok(&A::N(num("1"))));
    assert_eq!(tok(&A::N(num("1"))), b"N\0\0\0\x011".to_vec());
    assert_ne!(tok(&A::S("1".into())), tok(&A::N(num("1"))));
    assert_ne!(tok(&A::S("1".into())), tok(&A::B(b"1".to_vec())));
    assert_eq!(tok(&A::S("ab".into())), b"S\0\0\0\x02ab".to_vec());
    // Appends rather than overwrites, so composite inputs can be built.
    let mut out = b"x".to_vec();
    key_token_input(&A::N(num("-2.5")), &mut out).unwrap();
    assert_eq!(out, b"xN\0\0\0\x04-2.5".to_vec());
    let mut out = Vec::new();
    assert_eq!(
        key_token_input(&A::Null, &mut out),
        Err(AttrError::NotAKeyType("NULL"))
    );
    assert_eq!(
        key_token_input(&A::Ss(vec!["a".into()]), &mut out),
        Err(AttrError::NotAKeyType("SS"))
    );
}

// ---------------------------------------------------------------------------------------------
// Binary codec: unit tests

fn enc(item: &Item) -> Vec<u8> {
    let mut out = Vec::new();
    encode_item(item, &mut out);
    out
}

#[test]
fn decode_rejects_malformed_input() {
    use AttributeValue as A;
    let item: Item = BTreeMap::from([
        ("a".to_string(), A::S("x".into())),
        ("b".to_string(), A::N(num("-1.5"))),
    ]);
    let good = enc(&item);
    assert_eq!(decode_item(&good).unwrap(), item);
    let bad = |bytes: &[u8]| {
        assert!(
            matches!(decode_item(bytes), Err(AttrError::Corrupt(_))),
            "{bytes:?}"
        )
    };
    bad(&[]);
    bad(&[2, 0]); // unknown format
    let mut trailing = good.clone();
    trailing.push(0);
    bad(&trailing);
    bad(&good[..good.len() - 1]);
    bad(&[1, 1, 1, b'a', 99]); // unknown tag
    bad(&[1, 1, 1, b'a', 1, 5, b'x']); // length beyond input
    bad(&[1, 1, 1, 0xff, 6]); // invalid utf-8 name
    bad(&[1, 1, 1, b'a', 1, 1, 0xc0]); // invalid utf-8 value
    bad(&[1, 0x81, 0x00]); // non-canonical varint
    bad(&[1, 2, 1, b'b', 6, 1, b'a', 6]); // unsorted keys
    bad(&[1, 2, 1, b'a', 6, 1, b'a', 6]); // duplicate keys
    bad(&[1, 1, 1, b'a', 2, 1, 0, 0, 10]); // coefficient with trailing zero
    bad(&[1, 1, 1, b'a', 2, 1, 0x7f, 0, 1]); // exponent out of range
    bad(&[1, 1, 1, b'a', 2, 3]); // bad sign byte
    bad(&[1, 1, 1, b'a', 9, 0]); // empty set
    bad(&[1, 1, 1, b'a', 9, 2, 1, b'x', 1, b'x']); // duplicate set members
    bad(&[1, 0xff, 0xff, 0xff, 0xff, 0x0f]); // count far beyond input: no huge allocation
    bad(&[
        1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        0xff, 0xff, 0xff, 0xff, 0xff, 0x7f,
    ]);
    // Nesting: 32 levels decode, 33 do not.
    let mut deep = A::Null;
    for _ in 0..MAX_NESTING_DEPTH {
        deep = A::L(vec![deep]);
    }
    let ok_item: Item = BTreeMap::from([("d".to_string(), deep.clone())]);
    assert_eq!(decode_item(&enc(&ok_item)).unwrap(), ok_item);
    let too_deep: Item = BTreeMap::from([("d".to_string(), A::L(vec![deep]))]);
    assert_eq!(decode_item(&enc(&too_deep)), Err(AttrError::NestingTooDeep));
}

// ---------------------------------------------------------------------------------------------
// Independent decimal model for property tests: `mag * 10^scale`, digits as bytes 0..=9,
// most significant first, no leading zeros (empty = zero).

#[derive(Clone, Debug)]
struct Model {
    neg: bool,
    mag: Vec<u8>,
    scale: i64,
}

impl Model {
    fn new(neg: bool, digits: &[u8], scale: i64) -> Model {
        let mut mag: Vec<u8> = digits.iter().copied().skip_while(|&d| d == 0).collect();
        let mut scale = scale;
        while mag.last() == Some(&0) {
            mag.pop();
            scale += 1;
        }
        if mag.is_empty() {
            return Model {
                neg: false,
                mag,
                scale: 0,
            };
        }
        Model { neg, mag, scale }
    }

    /// Magnitudes aligned to the smaller scale, as equal-length digit vectors.
    fn aligned(&self, o: &Model) -> (Vec<u8>, Vec<u8>, i64) {
        let s = self.scale.min(o.scale);
        let mut a = self.mag.clone();
        a.extend(std::iter::repeat_n(0, (self.scale - s) as usize));
        let mut b = o.mag.clone();
        b.extend(std::iter::repeat_n(0, (o.scale - s) as usize));
        let n = a.len().max(b.len());
        let pad = |v: Vec<u8>| {
            let mut p = vec![0; n - v.len()];
            p.extend(v);
            p
        };
        (pad(a), pad(b), s)
    }

    fn cmp_mag(&self, o: &Model) -> Ordering {
        let (a, b, _) = self.aligned(o);
        a.cmp(&b)
    }

    fn cmp(&self, o: &Model) -> Ordering {
        let sign = |m: &Model| {
            if m.mag.is_empty() {
                0
            } else if m.neg {
                -1
            } else {
                1
            }
        };
        match sign(self).cmp(&sign(o)) {
            Ordering::Equal if sign(self) == 0 => Ordering::Equal,
            Ordering::Equal if self.neg => self.cmp_mag(o).reverse(),
            Ordering::Equal => self.cmp_mag(o),
            other => other,
        }
    }

    fn add(&self, o: &Model) -> Model {
        let (a, b, s) = self.aligned(o);
        if self.neg == o.neg {
            let mut out = vec![0u8; a.len() + 1];
            let mut carry = 0;
            for i in (0..a.len()).rev() {
                let t = a[i] + b[i] + carry;
                out[i + 1] = t % 10;
                carry = t / 10;
            }
            out[0] = carry;
            Model::new(self.neg, &out, s)
        } else {
            let (big, small, neg) = match a.cmp(&b) {
                Ordering::Less => (b, a, o.neg),
                _ => (a, b, self.neg),
            };
            let mut out = vec![0u8; big.len()];
            let mut borrow = 0i8;
            for i in (0..big.len()).rev() {
                let mut t = big[i] as i8 - small[i] as i8 - borrow;
                borrow = 0;
                if t < 0 {
                    t += 10;
                    borrow = 1;
                }
                out[i] = t as u8;
            }
            Model::new(neg, &out, s)
        }
    }

    /// Exponent of the leading digit.
    fn adj(&self) -> i64 {
        self.mag.len() as i64 - 1 + self.scale
    }

    /// What DynamoDB says about storing this value.
    fn check(&self) -> Result<(), AttrError> {
        if self.mag.is_empty() {
            return Ok(());
        }
        if self.adj() > 125 {
            Err(AttrError::NumberOverflow)
        } else if self.adj() < -130 {
            Err(AttrError::NumberUnderflow)
        } else if self.mag.len() > 38 {
            Err(AttrError::NumberPrecision)
        } else {
            Ok(())
        }
    }

    fn plain(&self) -> String {
        if self.mag.is_empty() {
            return "0".into();
        }
        let digits: String = self.mag.iter().map(|d| char::from(b'0' + d)).collect();
        let body = if self.scale >= 0 {
            format!("{digits}{}", "0".repeat(self.scale as usize))
        } else {
            let frac = (-self.scale) as usize;
            let padded = format!(
                "{}{digits}",
                "0".repeat((frac + 1).saturating_sub(digits.len()))
            );
            let (i, f) = padded.split_at(padded.len() - frac);
            format!("{i}.{f}")
        };
        if self.neg {
            format!("-{body}")
        } else {
            body
        }
    }
}

/// Number text in the many spellings DynamoDB accepts, with its model value.
fn number_text() -> impl Strategy<Value = (String, Model)> {
    (
        prop_oneof![Just(""), Just("+"), Just("-")],
        proptest::collection::vec(0u8..10, 0..45),
        proptest::collection::vec(0u8..10, 0..45),
        any::<bool>(),
        proptest::option::of((
            prop_oneof![Just("e"), Just("E")],
            prop_oneof![Just(""), Just("+"), Just("-")],
            0i64..180,
        )),
    )
        .prop_filter("needs a digit", |(_, i, f, _, _)| {
            !i.is_empty() || !f.is_empty()
        })
        .prop_map(|(sign, int, frac, dot, exp)| {
            let ds = |v: &[u8]| v.iter().map(|d| char::from(b'0' + d)).collect::<String>();
            let mut s = format!("{sign}{}", ds(&int));
            if !frac.is_empty() || dot {
                s.push('.');
                s.push_str(&ds(&frac));
            }
            let mut e = 0;
            if let Some((ech, esign, ev)) = exp {
                s.push_str(&format!("{ech}{esign}{ev}"));
                e = if esign == "-" { -ev } else { ev };
            }
            let mut all = int.clone();
            all.extend(&frac);
            (s, Model::new(sign == "-", &all, e - frac.len() as i64))
        })
}

/// A valid number with its leading digit at 10^adj.
fn number_at(adj: impl Strategy<Value = i64>) -> impl Strategy<Value = Number> {
    // Short coefficients are common in practice and reach the carry/borrow edge cases.
    let digits = prop_oneof![
        proptest::collection::vec(0u8..10, 1..=3),
        proptest::collection::vec(0u8..10, 1..=38),
        proptest::collection::vec(9u8..10, 30..=38),
    ];
    (any::<bool>(), digits, adj).prop_map(|(neg, mut d, adj)| {
        d[0] = d[0].max(1);
        let ds: String = d.iter().map(|x| char::from(b'0' + x)).collect();
        let sign = if neg { "-" } else { "" };
        format!("{sign}{}.{}e{adj}", &ds[..1], &ds[1..])
            .parse()
            .unwrap()
    })
}

/// A valid number, spread over the whole range or concentrated near 1 (so sums often fit).
fn arb_number() -> impl Strategy<Value = Number> {
    number_at(prop_oneof![
        -130i64..=125,
        -6i64..=6,
        Just(125i64),
        Just(-130i64)
    ])
}

/// Two numbers whose leading digits are at most 40 places apart, so that their sum or
/// difference often fits in 38 digits and every carry/borrow path is exercised.
fn near_pair() -> impl Strategy<Value = (Number, Number)> {
    (-130i64..=125, -40i64..=40).prop_flat_map(|(a, d)| {
        let b = (a + d).clamp(-130, 125);
        (number_at(Just(a)), number_at(Just(b)))
    })
}

fn model_of(n: &Number) -> Model {
    let s = n.to_string();
    let (neg, body) = s
        .strip_prefix('-')
        .map_or((false, s.as_str()), |b| (true, b));
    let (int, frac) = body.split_once('.').unwrap_or((body, ""));
    let digits: Vec<u8> = int.bytes().chain(frac.bytes()).map(|b| b - b'0').collect();
    Model::new(neg, &digits, -(frac.len() as i64))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn prop_parse_matches_model((text, model) in number_text()) {
        match (text.parse::<Number>(), model.check()) {
            (Ok(n), Ok(())) => {
                prop_assert_eq!(n.to_string(), model.plain());
                prop_assert_eq!(n.significant_digits() as usize, model.mag.len().max(1));
            }
            (got, want) => prop_assert_eq!(got.err(), want.err(), "text {}", text),
        }
    }

    #[test]
    fn prop_display_parse_identity(n in arb_number()) {
        let s = n.to_string();
        prop_assert!(!s.contains(['e', 'E', '+']));
        let back: Number = s.parse().unwrap();
        prop_assert_eq!(back, n);
        prop_assert_eq!(back.to_string(), s);
    }

    #[test]
    fn prop_order_matches_model(a in arb_number(), b in arb_number()) {
        prop_assert_eq!(a.cmp(&b), model_of(&a).cmp(&model_of(&b)));
        prop_assert_eq!(a == b, model_of(&a).cmp(&model_of(&b)) == Ordering::Equal);
    }

    #[test]
    fn prop_add_sub_match_model(
        (a, b) in prop_oneof![(arb_number(), arb_number()), near_pair()],
    ) {
        for (got, want) in [
            (a.add(&b), model_of(&a).add(&model_of(&b))),
            (a.sub(&b), model_of(&a).add(&model_of(&b.neg()))),
        ] {
            match (got, want.check()) {
                (Ok(n), Ok(())) => prop_assert_eq!(n.to_string(), want.plain()),
                // Too many digits from arithmetic is reported as overflow, like DynamoDB.
                (Err(e), Err(AttrError::NumberPrecision)) => prop_assert_eq!(e, AttrError::NumberOverflow),
                (got, want) => prop_assert_eq!(got.err(), want.err()),
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Items: property tests

fn arb_value() -> impl Strategy<Value = AttributeValue> {
    use proptest::collection::{btree_map, btree_set, vec};
    use AttributeValue as A;
    let leaf = prop_oneof![
        "\\PC{0,12}".prop_map(A::S),
        arb_number().prop_map(A::N),
        vec(any::<u8>(), 0..12).prop_map(A::B),
        any::<bool>().prop_map(A::Bool),
        Just(A::Null),
        btree_set("\\PC{0,6}", 1..5).prop_map(|s| A::Ss(s.into_iter().rev().collect())),
        btree_set(arb_number(), 1..5).prop_map(|s| A::Ns(s.into_iter().collect())),
        btree_set(vec(any::<u8>(), 0..6), 1..5).prop_map(|s| A::Bs(s.into_iter().collect())),
    ];
    leaf.prop_recursive(5, 64, 5, |inner| {
        prop_oneof![
            btree_map("\\PC{0,6}", inner.clone(), 0..5).prop_map(A::M),
            vec(inner, 0..5).prop_map(A::L),
        ]
    })
}

fn arb_item() -> impl Strategy<Value = Item> {
    proptest::collection::btree_map("\\PC{1,8}", arb_value(), 0..8)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(500))]

    #[test]
    fn prop_codec_round_trip(item in arb_item()) {
        let bytes = enc(&item);
        prop_assert_eq!(decode_item(&bytes).unwrap(), item);
    }

    #[test]
    fn prop_json_round_trip(item in arb_item()) {
        let text = serde_json::to_string(&item).unwrap();
        let back: Item = serde_json::from_str(&text).unwrap();
        prop_assert_eq!(item_size(&back), item_size(&item));
        prop_assert_eq!(back, item);
    }

    #[test]
    fn prop_decode_mutated_never_panics(
        item in arb_item(),
        edits in proptest::collection::vec((any::<prop::sample::Index>(), 0u8..3, any::<u8>()), 1..4),
    ) {
        let mut bytes = enc(&item);
        for (at, op, byte) in edits {
            let i = at.index(bytes.len() + 1);
            match op {
                0 if i < bytes.len() => bytes[i] = byte,
                1 if i < bytes.len() => { bytes.remove(i); }
                _ => bytes.insert(i, byte),
            }
        }
        if let Ok(decoded) = decode_item(&bytes) {
            prop_assert_eq!(enc(&decoded), bytes);
        }
    }

    #[test]
    fn prop_decode_random_bytes(tail in proptest::collection::vec(any::<u8>(), 0..64)) {
        let mut bytes = vec![1u8];
        bytes.extend(tail);
        if let Ok(decoded) = decode_item(&bytes) {
            prop_assert_eq!(enc(&decoded), bytes);
        }
    }

    #[test]
    fn prop_json_random_text_never_panics(text in "[\\[\\]{}\":,a-zA-Z0-9 .+-]{0,40}") {
        let _ = serde_json::from_str::<AttributeValue>(&text);
    }
}

/// Fuzz finding (attr_decode): a "positive" number with coefficient 0 decoded as zero, so the
/// decoder accepted a second encoding of zero and the item did not re-encode to its input.
#[test]
fn a_signed_zero_coefficient_is_not_canonical() {
    let signed_zero = [0x01, 0x01, 0x00, 0x02, 0x01, 0x00, 0x00, 0x00];
    match decode_item(&signed_zero) {
        Err(AttrError::Corrupt(_)) => {}
        Ok(item) => {
            let mut again = Vec::new();
            encode_item(&item, &mut again);
            assert_eq!(
                again, signed_zero,
                "a decoded item must re-encode to its input"
            );
        }
        Err(other) => panic!("unexpected error {other:?}"),
    }
}
