//! Fuzz the IAM policy parser and evaluator: arbitrary bytes are split into a policy document
//! and a request description; every accepted policy is evaluated in every slot.
//!
//! Input layout: byte 0 picks the principal kind; the rest is `POLICY \0 REQUEST` where REQUEST
//! is lines of `key=value` (`a,b,c` -> multivalued, `key=` -> empty list, `key!` -> Bool(true)),
//! with `@action=` and `@resource=` setting the request's action and resource.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sealdb::iam::eval::{
    evaluate, AuthzRequest, ContextValue, PolicySet, PrincipalInfo, PrincipalKind,
};
use sealdb::iam::policy::{Policy, PolicyKind, SizeLimit};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

fuzz_target!(|data: &[u8]| {
    let Some((&sel, rest)) = data.split_first() else {
        return;
    };
    let text = String::from_utf8_lossy(rest);
    let (policy_text, request_text) = text.split_once('\0').unwrap_or((&text, ""));

    let mut action = "dynamodb:GetItem".to_owned();
    let mut resource = "arn:aws:dynamodb:us-east-1:111122223333:table/T".to_owned();
    let mut context = HashMap::new();
    for line in request_text.lines() {
        if let Some(a) = line.strip_prefix("@action=") {
            action = a.to_owned();
        } else if let Some(r) = line.strip_prefix("@resource=") {
            resource = r.to_owned();
        } else if let Some(k) = line.strip_suffix('!') {
            context.insert(k.to_owned(), ContextValue::Bool(true));
        } else if let Some((k, v)) = line.split_once('=') {
            let value = if v.is_empty() {
                ContextValue::List(Vec::new())
            } else if v.contains(',') {
                ContextValue::List(v.split(',').map(str::to_owned).collect())
            } else if v.bytes().all(|b| b.is_ascii_digit()) {
                ContextValue::Num(v.to_owned())
            } else {
                ContextValue::Str(v.to_owned())
            };
            context.insert(k.to_owned(), value);
        }
    }
    let kind = match sel % 3 {
        0 => PrincipalKind::IAMUser,
        1 => PrincipalKind::AssumedRole,
        _ => PrincipalKind::Root,
    };
    let principal = PrincipalInfo {
        kind,
        arn: match kind {
            PrincipalKind::IAMUser => "arn:aws:iam::111122223333:user/alice".into(),
            PrincipalKind::AssumedRole => "arn:aws:sts::111122223333:assumed-role/r/s".into(),
            PrincipalKind::Root => "arn:aws:iam::111122223333:root".into(),
        },
        account: "111122223333".into(),
        userid: "AIDAX".into(),
        username: (kind == PrincipalKind::IAMUser).then(|| "alice".into()),
        role_arn: (kind == PrincipalKind::AssumedRole)
            .then(|| "arn:aws:iam::111122223333:role/r".into()),
        tags: BTreeMap::from([("team".to_owned(), "blue".to_owned())]),
    };
    let identity = Policy::parse_with_limit(
        "id",
        policy_text,
        PolicyKind::Identity,
        SizeLimit::Unlimited,
    )
    .ok();
    let resource_policy = Policy::parse_with_limit(
        "rp",
        policy_text,
        PolicyKind::Resource,
        SizeLimit::Unlimited,
    )
    .ok();
    let ids: Vec<Arc<Policy>> = identity.iter().cloned().map(Arc::new).collect();
    let req = AuthzRequest {
        principal: &principal,
        action: &action,
        resource: &resource,
        context: &context,
    };
    let d1 = evaluate(
        &req,
        &PolicySet {
            identity: &ids,
            boundary: identity.as_ref(),
            resource: resource_policy.as_ref(),
        },
    );
    // an identity policy evaluated twice (as two attached policies) decides the same
    let twice: Vec<Arc<Policy>> = ids.iter().chain(ids.iter()).cloned().collect();
    let d2 = evaluate(
        &req,
        &PolicySet {
            identity: &twice,
            boundary: identity.as_ref(),
            resource: resource_policy.as_ref(),
        },
    );
    assert_eq!(d1.decision, d2.decision);
    let _ = serde_json_free_debug(&d1);
    // the same text as a role trust policy (the resource slot for sts:AssumeRole): it never
    // lets the account root in, and never allows without one of its own statements matching
    if let Ok(trust) = Policy::parse_with_limit(
        "trust",
        policy_text,
        PolicyKind::Trust,
        SizeLimit::Unlimited,
    ) {
        let d3 = evaluate(
            &req,
            &PolicySet {
                identity: &ids,
                boundary: None,
                resource: Some(&trust),
            },
        );
        if d3.is_allowed() {
            assert!(kind != PrincipalKind::Root);
            assert!(d3.matched_statements.iter().any(|m| m.policy == "trust"));
        }
    }
});

fn serde_json_free_debug(d: &sealdb::iam::eval::Decision) -> usize {
    format!("{d:?}").len()
}
