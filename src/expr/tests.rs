//! Parser tests: DynamoDB's validation messages.

use std::collections::HashMap;

use super::*;
use crate::protocol::attr::{AttributeValue, Number};

pub(crate) fn s(x: &str) -> AttributeValue {
    AttributeValue::S(x.to_string())
}

pub(crate) fn n(x: &str) -> AttributeValue {
    AttributeValue::N(x.parse::<Number>().unwrap())
}

pub(crate) struct Ctx {
    pub names: HashMap<String, String>,
    pub values: HashMap<String, AttributeValue>,
}

impl Ctx {
    pub fn new(names: &[(&str, &str)], values: &[(&str, AttributeValue)]) -> Ctx {
        Ctx {
            names: names
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            values: values
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect(),
        }
    }
    pub fn ctx(&self) -> ExprContext<'_> {
        ExprContext {
            names: (!self.names.is_empty()).then_some(&self.names),
            values: (!self.values.is_empty()).then_some(&self.values),
        }
    }
}

fn cond_err(src: &str, c: &Ctx) -> String {
    parse_condition(src, &c.ctx(), &mut Usage::new())
        .unwrap_err()
        .to_string()
}

fn upd_err(src: &str, c: &Ctx) -> String {
    parse_update(src, &c.ctx(), &mut Usage::new())
        .unwrap_err()
        .to_string()
}

fn none() -> Ctx {
    Ctx::new(&[], &[])
}

fn vals() -> Ctx {
    Ctx::new(
        &[("#a", "a"), ("#st", "status")],
        &[
            (":v", s("x")),
            (":n", n("1")),
            (":m", n("9")),
            (":b", AttributeValue::Bool(true)),
        ],
    )
}

#[test]
fn syntax_errors_quote_token_and_neighbours() {
    let c = vals();
    assert_eq!(
        cond_err("foo", &c),
        "Invalid ConditionExpression: Syntax error; token: \"<EOF>\", near: \"foo\""
    );
    assert_eq!(
        cond_err("a =", &c),
        "Invalid ConditionExpression: Syntax error; token: \"<EOF>\", near: \"=\""
    );
    assert_eq!(
        cond_err("a = :v b", &c),
        "Invalid ConditionExpression: Syntax error; token: \"b\", near: \":v b\""
    );
    assert_eq!(
        cond_err("a == :v", &c),
        "Invalid ConditionExpression: Syntax error; token: \"=\", near: \"== :v\""
    );
    assert_eq!(
        cond_err("a = :v!", &c),
        "Invalid ConditionExpression: Syntax error; token: \"!\", near: \":v!\""
    );
    assert_eq!(
        upd_err("SET MyStr = myNum Mystr2 myNum2", &none()),
        "Invalid UpdateExpression: Syntax error; token: \"Mystr2\", near: \"myNum Mystr2 myNum2\""
    );
    assert_eq!(
        upd_err("SET MyStr = myNum + 1", &none()),
        "Invalid UpdateExpression: Syntax error; token: \"1\", near: \"+ 1\""
    );
    for bad in [
        "whatever",
        "set a",
        "add a",
        "delete a",
        "remove a = b",
        "add a = b",
        "delete a b",
        "remove a b",
        "set a b",
        "set :a = b",
        "remove :a",
        "set a = b / c",
        "set a = b + c + d",
        "set (a = (b + c))",
        "set a = (b.c).d + e",
        "set a[1] = 1",
    ] {
        let e = upd_err(bad, &none());
        assert!(
            e.starts_with("Invalid UpdateExpression: Syntax error; "),
            "{bad}: {e}"
        );
    }
}

#[test]
fn empty_and_oversized() {
    assert_eq!(
        cond_err("  ", &none()),
        "Invalid ConditionExpression: The expression can not be empty;"
    );
    let long = format!("a = :v{}", " ".repeat(MAX_EXPRESSION_BYTES));
    assert_eq!(
        cond_err(&long, &vals()),
        format!(
            "Invalid ConditionExpression: Expression size has exceeded the maximum allowed size; expression size: {}",
            long.len()
        )
    );
}

#[test]
fn placeholders_must_be_defined_and_used() {
    let c = vals();
    assert_eq!(
        cond_err("a = :nope", &c),
        "Invalid ConditionExpression: An expression attribute value used in expression is not defined; attribute value: :nope"
    );
    assert_eq!(
        upd_err("SET #x = :v", &c),
        "Invalid UpdateExpression: An expression attribute name used in the document path is not defined; attribute name: #x"
    );
    let ctx = c.ctx();
    let mut usage = Usage::new();
    parse_condition("#a = :v", &ctx, &mut usage).unwrap();
    assert_eq!(
        usage.check_all_used(&ctx).unwrap_err().to_string(),
        "Value provided in ExpressionAttributeNames unused in expressions: keys: {#st}"
    );
    parse_update("SET #st = :n", &ctx, &mut usage).unwrap();
    assert_eq!(
        usage.check_all_used(&ctx).unwrap_err().to_string(),
        "Value provided in ExpressionAttributeValues unused in expressions: keys: {:b, :m}"
    );
    parse_projection("x", &ctx, &mut usage).unwrap();
    parse_filter("contains(a, :b) OR a BETWEEN :n AND :m", &ctx, &mut usage).unwrap();
    usage.check_all_used(&ctx).unwrap();
}

#[test]
fn reserved_words() {
    let c = vals();
    assert_eq!(
        cond_err("status = :v", &c),
        "Invalid ConditionExpression: Attribute name is a reserved keyword; reserved keyword: status"
    );
    assert_eq!(
        upd_err(" remove Absolute ", &c),
        "Invalid UpdateExpression: Attribute name is a reserved keyword; reserved keyword: Absolute"
    );
    assert!(parse_condition("#st = :v", &c.ctx(), &mut Usage::new()).is_ok());
    // A syntax error wins over a reserved word.
    assert!(upd_err("add abort b", &c).contains("Syntax error"));
}

#[test]
fn functions() {
    let c = vals();
    assert_eq!(
        cond_err("foo(a)", &c),
        "Invalid ConditionExpression: Invalid function name; function: foo"
    );
    assert_eq!(
        cond_err("attribute_exists(a, b)", &c),
        "Invalid ConditionExpression: Incorrect number of operands for operator or function; operator or function: attribute_exists, number of operands: 2"
    );
    assert_eq!(
        cond_err("attribute_exists(:v)", &c),
        "Invalid ConditionExpression: Operator or function requires a document path; operator or function: attribute_exists"
    );
    assert_eq!(
        cond_err("attribute_type(a, :n)", &c),
        "Invalid ConditionExpression: Incorrect operand type for operator or function; operator or function: attribute_type, operand type: N"
    );
    assert_eq!(
        cond_err("attribute_type(a, :v)", &c),
        "Invalid ConditionExpression: Invalid attribute type name found; type: x, valid types: {B,NULL,SS,BOOL,L,BS,N,NS,S,M}"
    );
    assert_eq!(
        cond_err("begins_with(a, :n)", &c),
        "Invalid ConditionExpression: Incorrect operand type for operator or function; operator or function: begins_with, operand type: N"
    );
    assert_eq!(
        cond_err("size(a)", &c),
        "Invalid ConditionExpression: The function is not allowed to be used this way in an expression; function: size"
    );
    assert_eq!(
        cond_err("attribute_exists(a) = :v", &c),
        "Invalid ConditionExpression: The function is not allowed to be used this way in an expression; function: attribute_exists"
    );
    assert_eq!(
        cond_err("size(:n) > :n", &c),
        "Invalid ConditionExpression: Incorrect operand type for operator or function; operator or function: size, operand type: N"
    );
    assert_eq!(
        cond_err("contains(a, a)", &c),
        "Invalid ConditionExpression: The first operand must be distinct from the remaining operands for this operator or function; operator: contains, first operand: [a]"
    );
    assert_eq!(
        cond_err("a.b[1] = a.b[1]", &c),
        "Invalid ConditionExpression: The first operand must be distinct from the remaining operands for this operator or function; operator: =, first operand: [a, b, [1]]"
    );
    assert_eq!(
        cond_err("a < :b", &c),
        "Invalid ConditionExpression: Incorrect operand type for operator or function; operator or function: <, operand type: BOOL"
    );
    assert!(cond_err("if_not_exists(a, :v) = :v", &c).contains("if_not_exists"));
}

#[test]
fn between_and_in() {
    let c = vals();
    assert_eq!(
        cond_err("a BETWEEN :m AND :n", &c),
        "Invalid ConditionExpression: The BETWEEN operator requires upper bound to be greater than or equal to lower bound; lower bound operand: AttributeValue: {N:9}, upper bound operand: AttributeValue: {N:1}"
    );
    assert_eq!(
        cond_err("a BETWEEN :n AND :v", &c),
        "Invalid ConditionExpression: The BETWEEN operator requires same data type for lower and upper bounds; lower bound operand: AttributeValue: {N:1}, upper bound operand: AttributeValue: {S:x}"
    );
    let list: Vec<String> = (0..=MAX_IN_OPERANDS).map(|_| ":n".to_string()).collect();
    assert_eq!(
        cond_err(&format!("a IN ({})", list.join(",")), &c),
        "Invalid ConditionExpression: The IN operator is provided with too many operands; number of operands: 101"
    );
    let ok: Vec<String> = (0..MAX_IN_OPERANDS).map(|_| ":n".to_string()).collect();
    assert!(parse_condition(
        &format!("a IN ({})", ok.join(",")),
        &c.ctx(),
        &mut Usage::new()
    )
    .is_ok());
}

#[test]
fn parentheses() {
    let c = vals();
    assert_eq!(
        cond_err("((a = :v))", &c),
        "Invalid ConditionExpression: The expression has redundant parentheses;"
    );
    assert_eq!(
        cond_err("((a)) = :v", &c),
        "Invalid ConditionExpression: The expression has redundant parentheses;"
    );
    for ok in [
        "(a = :v)",
        "(a) = :v",
        "NOT (a = :v)",
        "(a = :v OR b = :v) AND c = :v",
        "a = (:v)",
    ] {
        assert!(
            parse_condition(ok, &c.ctx(), &mut Usage::new()).is_ok(),
            "{ok}"
        );
    }
}

#[test]
fn precedence() {
    let c = vals();
    let p = parse_condition(
        "a = :v OR b = :v AND NOT c = :v",
        &c.ctx(),
        &mut Usage::new(),
    )
    .unwrap();
    assert!(
        matches!(p.cond(), Cond::Or(_, r) if matches!(**r, Cond::And(_, ref y) if matches!(**y, Cond::Not(_))))
    );
    let p = parse_condition("a = :v and b = :v or c = :v", &c.ctx(), &mut Usage::new()).unwrap();
    assert!(matches!(p.cond(), Cond::Or(l, _) if matches!(**l, Cond::And(..))));
    assert_eq!(p.top_level_attributes(), vec!["a", "b", "c"]);
}

#[test]
fn deep_nesting_is_rejected_not_overflowed() {
    let c = vals();
    let deep = format!("{}a = :v{}", "(".repeat(2000), ")".repeat(2000));
    assert!(cond_err(&deep, &c).contains("nested too deeply"));
    let nots = format!("{}a = :v", "NOT ".repeat(1000));
    assert!(cond_err(&nots, &c).starts_with("Invalid ConditionExpression"));
    let fns = format!("{}:v{}", "size(".repeat(1000), ")".repeat(1000));
    assert!(cond_err(&format!("{fns} = :n"), &c).starts_with("Invalid ConditionExpression"));
    let upd = format!(
        "SET a = {}:v{}",
        "list_append(".repeat(1000),
        ", :v)".repeat(1000)
    );
    assert!(upd_err(&upd, &c).starts_with("Invalid UpdateExpression"));
}

#[test]
fn operator_limit() {
    let c = vals();
    let conds: Vec<String> = (0..=MAX_OPERATORS / 2)
        .map(|i| format!("a{i} = :v"))
        .collect();
    let e = cond_err(&conds.join(" AND "), &c);
    assert!(e.contains("too many operators"), "{e}");
}

#[test]
fn update_sections_and_types() {
    let c = Ctx::new(
        &[("#a", "a")],
        &[
            (":s", s("a")),
            (":n", n("1")),
            (":l", AttributeValue::L(vec![])),
            (":ss", AttributeValue::Ss(vec!["a".into()])),
        ],
    );
    assert_eq!(
        upd_err("set a = :n set c = :n", &c),
        "Invalid UpdateExpression: The \"SET\" section can only be used once in an update expression;"
    );
    assert_eq!(
        upd_err("add a.b :s", &c),
        "Invalid UpdateExpression: Incorrect operand type for operator or function; operator: ADD, operand type: STRING"
    );
    assert_eq!(
        upd_err("delete a :n", &c),
        "Invalid UpdateExpression: Incorrect operand type for operator or function; operator: DELETE, operand type: NUMBER"
    );
    assert_eq!(
        upd_err("set a = list_append(:s, a)", &c),
        "Invalid UpdateExpression: Incorrect operand type for operator or function; operator or function: list_append, operand type: S"
    );
    assert_eq!(
        upd_err("set a = a + :s", &c),
        "Invalid UpdateExpression: Incorrect operand type for operator or function; operator or function: +, operand type: S"
    );
    assert_eq!(
        upd_err("set a = if_not_exists(c)", &c),
        "Invalid UpdateExpression: Incorrect number of operands for operator or function; operator or function: if_not_exists, number of operands: 1"
    );
    assert_eq!(
        upd_err("set a = if_not_exists(:n, c)", &c),
        "Invalid UpdateExpression: Operator or function requires a document path; operator or function: if_not_exists"
    );
    assert_eq!(
        upd_err("set a = if_not_exist(a, :n)", &c),
        "Invalid UpdateExpression: Invalid function name; function: if_not_exist"
    );
    let ok = parse_update(
        "SET a = list_append(if_not_exists(a, :l), :l), b = b - :n ADD c :ss, d :n REMOVE e[1], f.g DELETE h :ss",
        &c.ctx(),
        &mut Usage::new(),
    )
    .unwrap();
    assert_eq!(
        ok.modified_attributes(),
        vec!["a", "b", "c", "d", "e", "f", "h"]
    );
}

#[test]
fn overlapping_and_conflicting_paths() {
    let c = Ctx::new(&[("#c", "c"), ("#d", "[3]")], &[(":v", s("x"))]);
    assert_eq!(
        upd_err("set d[1] = a, d.b = a, c[1].a = a, #c = if_not_exists(a, :v)", &c),
        "Invalid UpdateExpression: Two document paths overlap with each other; must remove or rewrite one of these paths; path one: [c, [1], a], path two: [c]"
    );
    assert_eq!(
        upd_err("set #c[3].#d = a, #c[3] = a", &c),
        "Invalid UpdateExpression: Two document paths overlap with each other; must remove or rewrite one of these paths; path one: [c, [3], [3]], path two: [c, [3]]"
    );
    assert_eq!(
        upd_err("remove a.#c set a[1] = #d", &c),
        "Invalid UpdateExpression: Two document paths conflict with each other; must remove or rewrite one of these paths; path one: [a, c], path two: [a, [1]]"
    );
    assert_eq!(
        parse_projection("a, a.b", &c.ctx(), &mut Usage::new()).unwrap_err().to_string(),
        "Invalid ProjectionExpression: Two document paths overlap with each other; must remove or rewrite one of these paths; path one: [a], path two: [a, b]"
    );
    assert_eq!(
        parse_projection("a, b", &c.ctx(), &mut Usage::new())
            .unwrap()
            .top_level_attributes(),
        vec!["a", "b"]
    );
    assert!(parse_projection("a b", &c.ctx(), &mut Usage::new())
        .unwrap_err()
        .to_string()
        .contains("token: \"b\", near: \"a b\""));
}

#[test]
fn key_conditions() {
    let c = Ctx::new(
        &[],
        &[
            (":p", s("p")),
            (":a", n("1")),
            (":b", n("5")),
            (":s", s("pre")),
        ],
    );
    let kc = |src: &str| parse_key_condition(src, &c.ctx(), &mut Usage::new(), "pk", Some("sk"));
    let k = kc("pk = :p AND sk BETWEEN :a AND :b").unwrap();
    assert_eq!(k.partition, ("pk".to_string(), s("p")));
    assert_eq!(
        k.sort,
        Some(("sk".into(), SortCondition::Between(n("1"), n("5"))))
    );
    let k = kc("begins_with(sk, :s) AND :p = pk").unwrap();
    assert_eq!(
        k.sort,
        Some(("sk".into(), SortCondition::BeginsWith(s("pre"))))
    );
    let k = kc(":a < sk AND pk = :p").unwrap();
    assert_eq!(k.sort, Some(("sk".into(), SortCondition::Gt(n("1")))));
    assert!(kc("pk = :p").unwrap().sort.is_none());
    assert_eq!(
        kc("pk = :p OR sk = :a").unwrap_err().to_string(),
        "Invalid KeyConditionExpression: Invalid operator used in KeyConditionExpression: OR"
    );
    assert_eq!(
        kc("sk = :a").unwrap_err().to_string(),
        "Query condition missed key schema element: pk"
    );
    assert_eq!(
        kc("pk < :p").unwrap_err().to_string(),
        "Query key condition not supported"
    );
    assert_eq!(
        kc("pk = :p AND extra = :a").unwrap_err().to_string(),
        "Query key condition not supported"
    );
    assert!(kc("pk = :p AND sk = :a AND sk = :b").is_err());
    assert!(kc("pk = :p AND pk = :p").is_err());
    assert_eq!(
        kc("pk = ").unwrap_err().to_string(),
        "Invalid KeyConditionExpression: Syntax error; token: \"<EOF>\", near: \"=\""
    );
}
