//! Evaluation, update application, projection and legacy translation on hand-made items.

use std::collections::{BTreeMap, HashMap};

use super::tests::{n, s, Ctx};
use super::*;
use crate::protocol::attr::{AttributeValue, Item};

fn item() -> Item {
    let mut m = BTreeMap::new();
    m.insert("b".to_string(), s("inner"));
    m.insert(
        "l".to_string(),
        AttributeValue::L(vec![n("1"), s("two"), n("3")]),
    );
    let mut it = Item::new();
    it.insert("pk".into(), s("k"));
    it.insert("n".into(), n("10"));
    it.insert("str".into(), s("héllo"));
    it.insert("bin".into(), AttributeValue::B(vec![0x00, 0xff, 0x10]));
    it.insert("m".into(), AttributeValue::M(m));
    it.insert(
        "ss".into(),
        AttributeValue::Ss(vec!["a".into(), "b".into()]),
    );
    it.insert(
        "ns".into(),
        AttributeValue::Ns(vec!["1".parse().unwrap(), "2.5".parse().unwrap()]),
    );
    it.insert("t".into(), AttributeValue::Bool(true));
    it
}

fn ctx() -> Ctx {
    Ctx::new(
        &[("#m", "m")],
        &[
            (":k", s("k")),
            (":n5", n("5")),
            (":n10", n("10.0")),
            (":n20", n("20")),
            (":he", s("hé")),
            (":ll", s("ll")),
            (":a", s("a")),
            (":z", s("z")),
            (":inner", s("inner")),
            (":one", n("1")),
            (":two", s("two")),
            (":b0", AttributeValue::B(vec![0x00])),
            (":b1", AttributeValue::B(vec![0x01])),
            (":ssab", AttributeValue::Ss(vec!["b".into(), "a".into()])),
            (":t", AttributeValue::Bool(true)),
            (":typeN", s("N")),
            (":typeM", s("M")),
            (":l", AttributeValue::L(vec![s("x")])),
            (
                ":nsx",
                AttributeValue::Ns(vec!["2.5".parse().unwrap(), "7".parse().unwrap()]),
            ),
            (":ssx", AttributeValue::Ss(vec!["a".into(), "b".into()])),
        ],
    )
}

fn check(src: &str, it: Option<&Item>) -> bool {
    let c = ctx();
    parse_condition(src, &c.ctx(), &mut Usage::new())
        .unwrap_or_else(|e| panic!("{src}: {e}"))
        .evaluate(it)
        .unwrap()
}

#[test]
fn comparisons() {
    let it = item();
    let i = Some(&it);
    assert!(check("pk = :k", i));
    assert!(check("n = :n10", i), "numbers compare numerically");
    assert!(check("n > :n5 AND n < :n20 AND n >= :n10 AND n <= :n10", i));
    assert!(!check("n < :k", i), "cross-type comparison is false");
    assert!(check("n <> :k", i));
    assert!(check("absent <> :k", i), "<> holds for an absent attribute");
    assert!(!check("absent = :k", i));
    assert!(check("str > :he", i), "strings compare by UTF-8 bytes");
    assert!(
        check("bin > :b0 AND bin < :b1", i),
        "binary compares unsigned"
    );
    assert!(check("n BETWEEN :n5 AND :n20", i));
    assert!(!check("n BETWEEN :a AND :z", i));
    assert!(check("n IN (:k, :n10)", i));
    assert!(!check("n IN (:k, :n5)", i));
    assert!(check("ss = :ssab", i), "set equality ignores order");
    assert!(check("#m.l[1] = :two AND #m.b = :inner OR t = :t", i));
}

#[test]
fn functions_eval() {
    let it = item();
    let i = Some(&it);
    assert!(check("attribute_exists(#m.l[2])", i));
    assert!(!check("attribute_exists(#m.l[3])", i));
    assert!(check("attribute_not_exists(#m.l[3])", i));
    assert!(
        check("attribute_not_exists(pk)", None),
        "absent item: every path is absent"
    );
    assert!(!check("attribute_exists(pk)", None));
    assert!(check(
        "attribute_type(n, :typeN) AND attribute_type(#m, :typeM)",
        i
    ));
    assert!(check("begins_with(str, :he)", i));
    assert!(check("begins_with(bin, :b0)", i));
    assert!(!check("begins_with(n, :he)", i));
    assert!(check(
        "contains(str, :ll) AND contains(ss, :a) AND contains(#m.l, :two)",
        i
    ));
    assert!(!check("contains(ss, :z)", i));
    assert!(check("contains(ns, :one)", i));
    assert!(
        check("size(str) = :n5 OR size(str) > :n5", i),
        "size of S counts UTF-8 bytes (6)"
    );
    assert!(check(
        "size(#m) < :n5 AND size(#m.l) BETWEEN :one AND :n5",
        i
    ));
    assert!(!check("size(n) > :one", i), "size of N is undefined: false");
    assert!(check("NOT contains(ss, :z)", i));
}

fn apply(src: &str, it: &mut Item) -> Result<UpdateEffects, ExprError> {
    let c = ctx();
    parse_update(src, &c.ctx(), &mut Usage::new())
        .unwrap_or_else(|e| panic!("{src}: {e}"))
        .apply(it)
}

#[test]
fn update_set_and_arithmetic() {
    let mut it = item();
    let eff = apply(
        "SET n = n + :n5, a = n, #m.b = :z, #m.l[1] = :a, #m.l[9] = :z",
        &mut it,
    )
    .unwrap();
    assert_eq!(it["n"], n("15"));
    assert_eq!(it["a"], n("10"), "right-hand sides read the old item");
    assert_eq!(it["m"], {
        let mut m = BTreeMap::new();
        m.insert("b".to_string(), s("z"));
        m.insert(
            "l".to_string(),
            AttributeValue::L(vec![n("1"), s("a"), n("3"), s("z")]),
        );
        AttributeValue::M(m)
    });
    assert_eq!(eff.top_level_attributes(), vec!["a", "m", "n"]);
    let old = item();
    let projected = eff.project(&old);
    assert_eq!(projected.get("n"), Some(&n("10")));
    assert!(!projected.contains_key("a"));

    apply(
        "SET c = if_not_exists(c, :one), n = if_not_exists(n, :one), l = list_append(:l, #m.l)",
        &mut it,
    )
    .unwrap();
    assert_eq!(it["c"], n("1"));
    assert_eq!(it["n"], n("15"));
    assert!(matches!(&it["l"], AttributeValue::L(v) if v.len() == 5 && v[0] == s("x")));
    apply("SET n = n - :n20", &mut it).unwrap();
    assert_eq!(it["n"], n("-5"));
}

#[test]
fn update_errors_leave_item_unchanged() {
    let mut it = item();
    let before = it.clone();
    assert_eq!(
        apply("SET a = nope", &mut it),
        Err(ExprError::MissingAttribute)
    );
    assert_eq!(
        apply("SET a = str + :one", &mut it),
        Err(ExprError::IncorrectOperandType)
    );
    assert_eq!(
        apply("SET x = :one, nope.a = :one", &mut it),
        Err(ExprError::InvalidUpdatePath)
    );
    assert_eq!(
        apply("REMOVE str.a", &mut it),
        Err(ExprError::InvalidUpdatePath)
    );
    assert_eq!(
        apply("REMOVE #m[1]", &mut it),
        Err(ExprError::InvalidUpdatePath)
    );
    assert_eq!(
        apply("ADD ss :one", &mut it),
        Err(ExprError::IncorrectOperandType)
    );
    assert_eq!(
        apply("DELETE ns :ssx", &mut it),
        Err(ExprError::IncorrectOperandType)
    );
    assert_eq!(
        apply("ADD nope.x :one", &mut it),
        Err(ExprError::InvalidUpdatePath)
    );
    assert_eq!(it, before);
    assert_eq!(
        "The document path provided in the update expression is invalid for update",
        ExprError::InvalidUpdatePath.to_string()
    );
}

#[test]
fn update_remove_add_delete() {
    let mut it = item();
    apply("REMOVE #m.l[0], #m.l[2], absent, #m.nothere", &mut it).unwrap();
    assert!(
        matches!(&it["m"], AttributeValue::M(m) if m["l"] == AttributeValue::L(vec![s("two")])),
        "indexes refer to the list before removal"
    );
    apply("ADD n :n5, newn :one, ss :ssx, newset :ssx", &mut it).unwrap();
    assert_eq!(it["n"], n("15"));
    assert_eq!(it["newn"], n("1"));
    assert!(matches!(&it["ss"], AttributeValue::Ss(v) if v.len() == 2));
    assert_eq!(
        it["newset"],
        AttributeValue::Ss(vec!["a".into(), "b".into()])
    );
    apply("DELETE ns :nsx, ss :ssx, nothere :ssx", &mut it).unwrap();
    assert_eq!(it["ns"], AttributeValue::Ns(vec!["1".parse().unwrap()]));
    assert!(!it.contains_key("ss"), "an emptied set is removed");
}

#[test]
fn projection() {
    let it = item();
    let c = ctx();
    let p = parse_projection(
        "pk, #m.l[2], #m.l[0], nope, n.x",
        &c.ctx(),
        &mut Usage::new(),
    )
    .unwrap();
    let out = p.apply(&it);
    assert_eq!(out.len(), 2);
    assert_eq!(out["pk"], s("k"));
    let mut m = BTreeMap::new();
    m.insert("l".to_string(), AttributeValue::L(vec![n("1"), n("3")]));
    assert_eq!(out["m"], AttributeValue::M(m));
}

#[test]
fn legacy_translation() {
    let it = item();
    let mut expected = HashMap::new();
    expected.insert(
        "pk".to_string(),
        ExpectedAttributeValue {
            value: Some(s("k")),
            ..Default::default()
        },
    );
    expected.insert(
        "gone".to_string(),
        ExpectedAttributeValue {
            exists: Some(false),
            ..Default::default()
        },
    );
    expected.insert(
        "n".to_string(),
        ExpectedAttributeValue {
            comparison_operator: Some("BETWEEN".into()),
            attribute_value_list: Some(vec![n("1"), n("10")]),
            ..Default::default()
        },
    );
    let c = expected_to_condition(&expected, None).unwrap().unwrap();
    assert!(c.evaluate(Some(&it)).unwrap());
    assert!(!c.evaluate(None).unwrap());

    let bad: HashMap<String, ExpectedAttributeValue> =
        [("a".to_string(), ExpectedAttributeValue::default())].into();
    assert_eq!(
        expected_to_condition(&bad, None).unwrap_err().to_string(),
        "One or more parameter values were invalid: Value must be provided when Exists is null for Attribute: a"
    );

    let json = r#"{"str": {"ComparisonOperator": "CONTAINS", "AttributeValueList": [{"S": "ll"}]},
                   "ss": {"ComparisonOperator": "NOT_CONTAINS", "AttributeValueList": [{"S": "q"}]},
                   "nothere": {"ComparisonOperator": "NULL"}}"#;
    let filter: HashMap<String, LegacyCondition> = serde_json::from_str(json).unwrap();
    let f = filter_to_condition(&filter, Some(ConditionalOperator::And))
        .unwrap()
        .unwrap();
    assert!(f.evaluate(Some(&it)).unwrap());
    let f = filter_to_condition(&filter, Some(ConditionalOperator::Or))
        .unwrap()
        .unwrap();
    assert!(f.evaluate(None).unwrap());
    let bad: HashMap<String, LegacyCondition> =
        serde_json::from_str(r#"{"a": {"ComparisonOperator": "EQ"}}"#).unwrap();
    assert_eq!(
        filter_to_condition(&bad, None).unwrap_err().to_string(),
        "One or more parameter values were invalid: Invalid number of argument(s) for the EQ ComparisonOperator"
    );

    let kc: HashMap<String, LegacyCondition> = serde_json::from_str(
        r#"{"pk": {"ComparisonOperator": "EQ", "AttributeValueList": [{"S": "k"}]},
            "sk": {"ComparisonOperator": "BEGINS_WITH", "AttributeValueList": [{"S": "ab"}]}}"#,
    )
    .unwrap();
    let k = key_conditions_to_key_condition(&kc, "pk", Some("sk")).unwrap();
    assert_eq!(k.partition, ("pk".to_string(), s("k")));
    let (_, sc) = k.sort.unwrap();
    assert!(sc.matches(&s("abc")) && !sc.matches(&s("b")));

    let upd: HashMap<String, AttributeValueUpdate> = serde_json::from_str(
        r#"{"n": {"Action": "ADD", "Value": {"N": "5"}}, "str": {"Action": "DELETE"},
            "new": {"Value": {"S": "v"}}, "lst": {"Action": "ADD", "Value": {"L": [{"S": "a"}]}}}"#,
    )
    .unwrap();
    let u = attribute_updates_to_update(&upd).unwrap();
    let mut it2 = item();
    u.apply(&mut it2).unwrap();
    assert_eq!(it2["n"], n("15"));
    assert!(!it2.contains_key("str"));
    assert_eq!(it2["new"], s("v"));
    assert_eq!(it2["lst"], AttributeValue::L(vec![s("a")]));
    let bad: HashMap<String, AttributeValueUpdate> =
        serde_json::from_str(r#"{"a": {"Action": "ADD", "Value": {"S": "1"}}}"#).unwrap();
    assert_eq!(
        attribute_updates_to_update(&bad).unwrap_err().to_string(),
        "One or more parameter values were invalid: ADD action is not supported for the type S"
    );

    let p = attributes_to_get_to_projection(&["pk".into(), "n".into()]).unwrap();
    assert_eq!(p.apply(&it).len(), 2);
}

#[test]
fn sort_conditions() {
    assert!(SortCondition::Between(n("1"), n("3")).matches(&n("3")));
    assert!(!SortCondition::Lt(s("b")).matches(&n("1")));
    assert!(
        SortCondition::Ge(AttributeValue::B(vec![0x80])).matches(&AttributeValue::B(vec![0xff]))
    );
}
