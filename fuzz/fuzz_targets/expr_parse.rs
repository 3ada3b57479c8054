//! Parse arbitrary strings as every DynamoDB expression kind; evaluate and apply whatever
//! parses. Nothing may panic or overflow the stack.
#![no_main]

use std::collections::HashMap;

use libfuzzer_sys::fuzz_target;
use sealdb::expr::{
    parse_condition, parse_filter, parse_key_condition, parse_projection, parse_update,
    ExprContext, Usage,
};
use sealdb::protocol::attr::{AttributeValue, Item};

fuzz_target!(|data: &[u8]| {
    let Ok(src) = std::str::from_utf8(data) else {
        return;
    };
    let names: HashMap<String, String> = [("#a", "a"), ("#b", "status"), ("#c", "c.d")]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let values: HashMap<String, AttributeValue> = [
        (":s", AttributeValue::S("x".into())),
        (":n", AttributeValue::N("1".parse().unwrap())),
        (":l", AttributeValue::L(vec![AttributeValue::Null])),
        (":ss", AttributeValue::Ss(vec!["x".into()])),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    let ctx = ExprContext {
        names: Some(&names),
        values: Some(&values),
    };
    let mut item = Item::new();
    item.insert(
        "a".into(),
        AttributeValue::L(vec![AttributeValue::S("y".into())]),
    );
    let mut usage = Usage::new();
    if let Ok(c) = parse_condition(src, &ctx, &mut usage) {
        let _ = c.evaluate(Some(&item));
        let _ = c.top_level_attributes();
    }
    let _ = parse_filter(src, &ctx, &mut usage);
    if let Ok(u) = parse_update(src, &ctx, &mut usage) {
        let mut it = item.clone();
        let _ = u.apply(&mut it);
    }
    if let Ok(p) = parse_projection(src, &ctx, &mut usage) {
        let _ = p.apply(&item);
    }
    let _ = parse_key_condition(src, &ctx, &mut usage, "a", Some("b"));
    let _ = usage.check_all_used(&ctx);
});
