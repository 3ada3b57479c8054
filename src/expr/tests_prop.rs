//! Property tests: print(ast) parses back to the same AST; the parser never panics.

use proptest::prelude::*;

use super::*;
use crate::protocol::attr::{AttributeValue, Number};

fn name() -> impl Strategy<Value = String> {
    // Any name goes through a placeholder, so reserved words and odd characters are fine.
    prop_oneof![
        "[a-z][a-z0-9_]{0,6}",
        Just("status".to_string()),
        Just("a.b".to_string()),
        "\\PC{1,4}",
    ]
}

fn path() -> impl Strategy<Value = Path> {
    (
        name(),
        prop::collection::vec(
            prop_oneof![
                name().prop_map(PathElem::Attr),
                (0u32..50).prop_map(PathElem::Index)
            ],
            0..3,
        ),
    )
        .prop_map(|(first, rest)| {
            let mut v = vec![PathElem::Attr(first)];
            v.extend(rest);
            Path(v)
        })
}

fn num() -> impl Strategy<Value = AttributeValue> {
    (-1000i64..1000).prop_map(|i| AttributeValue::N(Number::from(i)))
}

fn value() -> impl Strategy<Value = AttributeValue> {
    prop_oneof![
        num(),
        "\\PC{0,5}".prop_map(AttributeValue::S),
        prop::collection::vec(any::<u8>(), 0..4).prop_map(AttributeValue::B),
        any::<bool>().prop_map(AttributeValue::Bool),
        Just(AttributeValue::Null),
        prop::collection::vec(num(), 0..3).prop_map(AttributeValue::L),
    ]
}

fn leaf() -> impl Strategy<Value = Cond> {
    let ops = prop_oneof![
        Just(CmpOp::Eq),
        Just(CmpOp::Ne),
        Just(CmpOp::Lt),
        Just(CmpOp::Le),
        Just(CmpOp::Gt),
        Just(CmpOp::Ge)
    ];
    prop_oneof![
        (ops, path(), num()).prop_map(|(o, p, v)| Cond::Cmp(
            o,
            Operand::Path(p),
            Operand::Value(v)
        )),
        (path(), value()).prop_map(|(p, v)| Cond::Cmp(
            CmpOp::Eq,
            Operand::Path(p),
            Operand::Value(v)
        )),
        (path(), num()).prop_map(|(p, v)| Cond::Cmp(
            CmpOp::Gt,
            Operand::Size(Box::new(Operand::Path(p))),
            Operand::Value(v)
        )),
        (path(), -100i64..100, 0i64..100).prop_map(|(p, lo, d)| Cond::Between(
            Operand::Path(p),
            Operand::Value(AttributeValue::N(Number::from(lo))),
            Operand::Value(AttributeValue::N(Number::from(lo + d))),
        )),
        (path(), prop::collection::vec(value(), 1..5)).prop_map(|(p, vs)| Cond::In(
            Operand::Path(p),
            vs.into_iter().map(Operand::Value).collect()
        )),
        path().prop_map(Cond::AttributeExists),
        path().prop_map(Cond::AttributeNotExists),
        (
            path(),
            prop::sample::select(vec![
                "S", "SS", "N", "NS", "B", "BS", "BOOL", "NULL", "L", "M"
            ])
        )
            .prop_map(|(p, t)| Cond::AttributeType(p, t.to_string())),
        (path(), "\\PC{0,3}").prop_map(|(p, x)| Cond::BeginsWith(
            Operand::Path(p),
            Operand::Value(AttributeValue::S(x))
        )),
        (path(), value()).prop_map(|(p, v)| Cond::Contains(Operand::Path(p), Operand::Value(v))),
    ]
}

fn cond() -> impl Strategy<Value = Cond> {
    leaf().prop_recursive(6, 40, 2, |inner| {
        prop_oneof![
            inner.clone().prop_map(|c| Cond::Not(Box::new(c))),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| Cond::And(Box::new(a), Box::new(b))),
            (inner.clone(), inner).prop_map(|(a, b)| Cond::Or(Box::new(a), Box::new(b))),
        ]
    })
}

fn upd_operand() -> impl Strategy<Value = UpdOperand> {
    prop_oneof![
        path().prop_map(UpdOperand::Path),
        value().prop_map(UpdOperand::Value),
        (path(), value())
            .prop_map(|(p, v)| UpdOperand::IfNotExists(p, Box::new(UpdOperand::Value(v)))),
        (path(), path()).prop_map(|(a, b)| UpdOperand::ListAppend(
            Box::new(UpdOperand::Path(a)),
            Box::new(UpdOperand::Path(b))
        )),
    ]
}

fn set_value() -> impl Strategy<Value = SetValue> {
    prop_oneof![
        upd_operand().prop_map(SetValue::Operand),
        (path(), num())
            .prop_map(|(p, v)| SetValue::Plus(UpdOperand::Path(p), UpdOperand::Value(v))),
        (num(), path())
            .prop_map(|(v, p)| SetValue::Minus(UpdOperand::Value(v), UpdOperand::Path(p))),
    ]
}

fn update() -> impl Strategy<Value = Update> {
    (
        prop::collection::vec(set_value(), 0..3),
        0usize..3,
        prop::collection::vec(num(), 0..3),
        0usize..3,
    )
        .prop_filter("at least one action", |(s, r, a, d)| {
            !s.is_empty() || *r > 0 || !a.is_empty() || *d > 0
        })
        .prop_map(|(sets, nrem, adds, ndel)| {
            // Distinct top-level targets so no two paths overlap.
            let mut i = 0;
            let mut next = || {
                i += 1;
                Path(vec![PathElem::Attr(format!("t{i}")), PathElem::Index(i)])
            };
            let set = sets.into_iter().map(|v| (next(), v)).collect();
            let remove = (0..nrem).map(|_| next()).collect();
            let add = adds.into_iter().map(|v| (next(), v)).collect();
            let delete = (0..ndel)
                .map(|k| (next(), AttributeValue::Ss(vec![format!("m{k}")])))
                .collect();
            Update::from_actions(set, remove, add, delete)
        })
}

fn ctx_of(p: &Printed) -> ExprContext<'_> {
    ExprContext {
        names: Some(&p.names),
        values: Some(&p.values),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn condition_round_trips(c in cond()) {
        let cond = Condition::from_cond(c);
        let printed = print_condition(&cond);
        let ctx = ctx_of(&printed);
        let mut usage = Usage::new();
        let parsed = parse_condition(&printed.expr, &ctx, &mut usage);
        prop_assert_eq!(parsed.as_ref().ok(), Some(&cond), "{} -> {:?}", printed.expr, parsed);
        prop_assert!(usage.check_all_used(&ctx).is_ok());
    }

    #[test]
    fn update_round_trips(u in update()) {
        let printed = print_update(&u);
        let ctx = ctx_of(&printed);
        let parsed = parse_update(&printed.expr, &ctx, &mut Usage::new());
        prop_assert_eq!(parsed.as_ref().ok(), Some(&u), "{} -> {:?}", printed.expr, parsed);
    }

    #[test]
    fn parsers_never_panic(src in "[ a-zA-Z0-9_#:.,()\\[\\]=<>+-]{0,60}") {
        let names: std::collections::HashMap<String, String> = [("#a".to_string(), "a".to_string())].into();
        let values: std::collections::HashMap<String, AttributeValue> = [(":v".to_string(), AttributeValue::S("x".into()))].into();
        let ctx = ExprContext { names: Some(&names), values: Some(&values) };
        let mut u = Usage::new();
        let _ = parse_condition(&src, &ctx, &mut u);
        let _ = parse_update(&src, &ctx, &mut u);
        let _ = parse_projection(&src, &ctx, &mut u);
        let _ = parse_key_condition(&src, &ctx, &mut u, "a", Some("b"));
    }
}
