//! The table-driven corpus (`tests/iam_cases/*.json`), order-independence property tests and
//! explanation checks.

use super::context::RequestFacts;
use super::eval::{
    evaluate, AuthzRequest, ContextValue, Decision, Effect, PolicySet, PrincipalInfo, PrincipalKind,
};
use super::policy::{Policy, PolicyKind};
use proptest::prelude::*;
use serde_json::{json, Map, Value};
use std::sync::Arc;

fn doc_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn context_of(v: Option<&Value>) -> Vec<(String, ContextValue)> {
    let mut out = Vec::new();
    if let Some(Value::Object(m)) = v {
        for (k, v) in m {
            let cv = match v {
                Value::Object(o) if o.contains_key("num") => {
                    ContextValue::Num(o["num"].as_str().unwrap().to_owned())
                }
                other => ContextValue::from_json(other).unwrap(),
            };
            out.push((k.clone(), cv));
        }
    }
    out
}

fn run_case(case: &Map<String, Value>) -> Result<Decision, String> {
    let parse = |name: &str, v: &Value, kind| {
        Policy::parse(name, &doc_text(v), kind).map_err(|e| format!("policy {name} invalid: {e:?}"))
    };
    let mut identity = Vec::new();
    if let Some(Value::Array(docs)) = case.get("identity_policies") {
        for (i, d) in docs.iter().enumerate() {
            identity.push(Arc::new(parse(&format!("id{i}"), d, PolicyKind::Identity)?));
        }
    }
    let boundary = match case.get("permissions_boundary") {
        Some(d) => Some(parse("boundary", d, PolicyKind::Boundary)?),
        None => None,
    };
    // A role's trust policy fills the resource-based slot for sts:AssumeRole.
    let resource = match (case.get("resource_policy"), case.get("trust_policy")) {
        (Some(d), _) => Some(parse("resource", d, PolicyKind::Resource)?),
        (None, Some(d)) => Some(parse("trust", d, PolicyKind::Trust)?),
        (None, None) => None,
    };
    let principal: PrincipalInfo =
        serde_json::from_value(case.get("principal").cloned().ok_or("no principal")?)
            .map_err(|e| format!("principal: {e}"))?;
    let context = context_of(case.get("context"));
    let req = AuthzRequest {
        principal: &principal,
        action: case
            .get("action")
            .and_then(Value::as_str)
            .ok_or("no action")?,
        resource: case
            .get("resource")
            .and_then(Value::as_str)
            .ok_or("no resource")?,
        context: &context,
        facts: None,
    };
    let set = PolicySet {
        identity: &identity,
        boundary: boundary.as_ref(),
        resource: resource.as_ref(),
    };
    Ok(evaluate(&req, &set))
}

fn check_case(case: &Map<String, Value>) -> Result<(), String> {
    let d = run_case(case)?;
    let expect = case
        .get("expect")
        .and_then(Value::as_object)
        .ok_or("no expect")?;
    let got = serde_json::to_value(d.decision).map_err(|e| e.to_string())?;
    if Some(&got) != expect.get("decision") {
        return Err(format!(
            "decision {got}, expected {:?}; {d:?}",
            expect.get("decision")
        ));
    }
    if let Some(Value::Array(want)) = expect.get("matched") {
        let mut want: Vec<String> = want
            .iter()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect();
        let mut have: Vec<String> = d
            .matched_statements
            .iter()
            .map(|m| format!("{}[{}]", m.policy, m.index))
            .collect();
        want.sort();
        have.sort();
        if want != have {
            return Err(format!("matched {have:?}, expected {want:?}"));
        }
    }
    if let Some(Value::Array(want)) = expect.get("missing") {
        let want: Vec<String> = want
            .iter()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect();
        if want != d.missing_context_keys {
            return Err(format!(
                "missing {:?}, expected {want:?}",
                d.missing_context_keys
            ));
        }
    }
    if let Some(want) = expect.get("denied_by") {
        let have = serde_json::to_value(d.denied_by).map_err(|e| e.to_string())?;
        if &have != want {
            return Err(format!("denied_by {have}, expected {want}"));
        }
    }
    Ok(())
}

fn check_validation(case: &Map<String, Value>) -> Result<(), String> {
    let kind: PolicyKind =
        serde_json::from_value(case["kind"].clone()).map_err(|e| e.to_string())?;
    let mut text = match (case.get("raw"), case.get("doc")) {
        (Some(Value::String(r)), _) => r.clone(),
        (_, Some(d)) => {
            let mut d = d.clone();
            if let Some(n) = case.get("pad_to_chars").and_then(Value::as_u64) {
                d["Id"] = Value::String("x".repeat(n as usize));
            }
            d.to_string()
        }
        _ => return Err("no raw or doc".into()),
    };
    if let Some(n) = case.get("pad_whitespace").and_then(Value::as_u64) {
        text.push_str(&" ".repeat(n as usize));
    }
    let res = Policy::parse("v", &text, kind);
    if case.get("valid") == Some(&Value::Bool(true)) {
        return res
            .map(|_| ())
            .map_err(|e| format!("expected valid, got {e:?}"));
    }
    let problems = match res {
        Ok(_) => return Err("expected problems, policy was accepted".into()),
        Err(p) => p,
    };
    for want in case
        .get("errors")
        .and_then(Value::as_array)
        .ok_or("no errors")?
    {
        let path = want["path"].as_str().unwrap_or_default();
        let contains = want["contains"].as_str().unwrap_or_default();
        if !problems
            .iter()
            .any(|p| p.path == path && p.message.contains(contains))
        {
            return Err(format!(
                "no problem at {path} containing {contains:?}; got {problems:?}"
            ));
        }
    }
    Ok(())
}

#[test]
fn corpus() {
    // Found at run time: the compile-time value names whichever clone built this (cached)
    // test binary first, and cargo runs tests with the current checkout's value set.
    let root = std::env::var("CARGO_MANIFEST_DIR")
        .unwrap_or_else(|_| env!("CARGO_MANIFEST_DIR").to_owned());
    let dir = format!("{root}/tests/iam_cases");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    assert!(files.len() >= 7, "corpus files missing in {dir}");
    let mut failures = Vec::new();
    let mut count = 0;
    for f in files {
        let v: Value = serde_json::from_str(&std::fs::read_to_string(&f).unwrap()).unwrap();
        let defaults = v
            .get("defaults")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        let fname = f.file_name().unwrap().to_string_lossy().into_owned();
        for c in v
            .get("cases")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let mut merged = defaults.clone();
            for (k, val) in c.as_object().unwrap() {
                merged.insert(k.clone(), val.clone());
            }
            count += 1;
            if let Err(e) = check_case(&merged) {
                failures.push(format!("{fname}: {}: {e}", c["name"]));
            }
        }
        for c in v
            .get("validation")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            count += 1;
            if let Err(e) = check_validation(c.as_object().unwrap()) {
                failures.push(format!("{fname}: {}: {e}", c["name"]));
            }
        }
    }
    assert!(count > 100, "only {count} cases");
    assert!(
        failures.is_empty(),
        "{} of {count} cases failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

fn alice() -> PrincipalInfo {
    PrincipalInfo {
        kind: PrincipalKind::IAMUser,
        arn: "arn:aws:iam::111122223333:user/alice".into(),
        account: "111122223333".into(),
        userid: "AIDAALICE".into(),
        username: Some("alice".into()),
        role_arn: None,
        tags: [("team".to_owned(), "blue".to_owned())]
            .into_iter()
            .collect(),
    }
}

#[test]
fn explanation_and_denial_reasons() {
    let p = Arc::new(
        Policy::parse(
            "ReadOnly",
            r#"{"Version":"2012-10-17","Statement":[
                {"Sid":"Read","Effect":"Allow","Action":"dynamodb:Get*","Resource":"*"},
                {"Sid":"NoOrders","Effect":"Deny","Action":"*","Resource":"arn:aws:dynamodb:*:*:table/Orders"}]}"#,
            PolicyKind::Identity,
        )
        .unwrap(),
    );
    let principal = alice();
    let ctx = Vec::new();
    let set = PolicySet {
        identity: std::slice::from_ref(&p),
        boundary: None,
        resource: None,
    };
    let req = |action, resource| AuthzRequest {
        principal: &principal,
        action,
        resource,
        context: &ctx,
        facts: None,
    };
    let d = evaluate(
        &req(
            "dynamodb:GetItem",
            "arn:aws:dynamodb:us-east-1:111122223333:table/Orders",
        ),
        &set,
    );
    assert_eq!(d.decision, Effect::ExplicitDeny);
    assert_eq!(d.matched_statements.len(), 2);
    assert_eq!(d.matched_statements[1].sid.as_deref(), Some("NoOrders"));
    assert_eq!(d.matched_statements[1].effect, "Deny");
    assert_eq!(d.matched_statements[0].policy, "ReadOnly");
    assert_eq!(
        d.denial_reason("dynamodb:GetItem").as_deref(),
        Some("with an explicit deny in an identity-based policy")
    );
    let d = evaluate(
        &req(
            "dynamodb:PutItem",
            "arn:aws:dynamodb:us-east-1:111122223333:table/X",
        ),
        &set,
    );
    assert_eq!(d.decision, Effect::ImplicitDeny);
    assert_eq!(
        d.denial_reason("dynamodb:PutItem").as_deref(),
        Some("because no identity-based policy allows the dynamodb:PutItem action")
    );
    let d = evaluate(
        &req(
            "dynamodb:GetItem",
            "arn:aws:dynamodb:us-east-1:111122223333:table/X",
        ),
        &set,
    );
    assert!(d.is_allowed());
    assert_eq!(d.denial_reason("dynamodb:GetItem"), None);
    let out = serde_json::to_value(&d).unwrap();
    assert_eq!(out["decision"], "Allow");
    assert_eq!(out["matched_statements"][0]["sid"], "Read");
    assert!(out.get("denied_by").is_none());
    assert!(p.source().contains("NoOrders"));
    assert_eq!(p.name(), "ReadOnly");
}

// Statement pools for the reordering property: each policy slot draws from its own pool.
const IDENTITY_POOL: &[&str] = &[
    r#"{"Effect":"Allow","Action":"dynamodb:*","Resource":"*"}"#,
    r#"{"Effect":"Allow","Action":"dynamodb:Get*","Resource":"arn:aws:dynamodb:*:*:table/T*"}"#,
    r#"{"Effect":"Deny","Action":"dynamodb:Delete*","Resource":"*"}"#,
    r#"{"Effect":"Allow","NotAction":"dynamodb:Scan","Resource":"*","Condition":{"IpAddress":{"aws:SourceIp":"10.0.0.0/8"}}}"#,
    r#"{"Effect":"Deny","Action":"*","Resource":"*","Condition":{"Bool":{"aws:SecureTransport":"false"}}}"#,
    r#"{"Effect":"Allow","Action":"dynamodb:PutItem","Resource":"arn:aws:dynamodb:*:*:table/${aws:username}*"}"#,
    r#"{"Effect":"Deny","Action":"dynamodb:*","NotResource":"arn:aws:dynamodb:*:*:table/T1"}"#,
    r#"{"Effect":"Allow","Action":"dynamodb:Query","Resource":"*","Condition":{"ForAllValues:StringEquals":{"dynamodb:Attributes":["a","b"]}}}"#,
    r#"{"Effect":"Deny","Action":"dynamodb:Query","Resource":"*","Condition":{"ForAnyValue:StringLike":{"dynamodb:Attributes":"s*"}}}"#,
    r#"{"Effect":"Allow","Action":"dynamodb:*Item","Resource":"*","Condition":{"StringEqualsIfExists":{"dynamodb:ReturnValues":"NONE"}}}"#,
];
const BOUNDARY_POOL: &[&str] = &[
    r#"{"Effect":"Allow","Action":"dynamodb:Get*","Resource":"*"}"#,
    r#"{"Effect":"Allow","Action":"dynamodb:Query","Resource":"*"}"#,
    r#"{"Effect":"Deny","Action":"dynamodb:PutItem","Resource":"*","Condition":{"Null":{"aws:SourceIp":"true"}}}"#,
    r#"{"Effect":"Allow","NotAction":"dynamodb:DeleteItem","Resource":"*"}"#,
];
const RESOURCE_POOL: &[&str] = &[
    r#"{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:user/alice"},"Action":"dynamodb:GetItem","Resource":"*"}"#,
    r#"{"Effect":"Allow","Principal":{"AWS":"111122223333"},"Action":"dynamodb:*","Resource":"*"}"#,
    r#"{"Effect":"Deny","Principal":"*","Action":"dynamodb:Scan","Resource":"*"}"#,
    r#"{"Effect":"Allow","Principal":"*","Action":"dynamodb:Query","Resource":"*","Condition":{"ArnEquals":{"aws:PrincipalArn":"arn:aws:iam::111122223333:user/alice"}}}"#,
    r#"{"Effect":"Deny","NotPrincipal":{"AWS":["arn:aws:iam::111122223333:user/alice","111122223333"]},"Action":"*","Resource":"*"}"#,
];
const ACTIONS: &[&str] = &[
    "dynamodb:GetItem",
    "dynamodb:PutItem",
    "dynamodb:DeleteItem",
    "dynamodb:Query",
    "dynamodb:Scan",
];
const RESOURCES: &[&str] = &[
    "arn:aws:dynamodb:us-east-1:111122223333:table/T1",
    "arn:aws:dynamodb:us-east-1:111122223333:table/alice-t",
    "arn:aws:dynamodb:us-east-1:111122223333:table/Other",
];

/// The global keys of the request path come from its facts, formatted as AWS gives them;
/// without facts they are missing, and a context entry overrides them.
#[test]
fn global_keys_are_read_from_the_request_facts() {
    let p = Arc::new(
        Policy::parse(
            "p",
            &doc(&[
                r#"{"Effect":"Allow","Action":"dynamodb:GetItem","Resource":"*","Condition":{
                "IpAddress":{"aws:SourceIp":"10.1.0.0/16"},
                "Bool":{"aws:SecureTransport":"true"},
                "DateEquals":{"aws:CurrentTime":"2026-12-07T10:29:21Z"},
                "NumericEquals":{"aws:EpochTime":"1796639361"},
                "StringEquals":{"aws:RequestedRegion":"eu-west-3"}}}"#,
            ]),
            PolicyKind::Identity,
        )
        .unwrap(),
    );
    let principal = alice();
    let now = time::OffsetDateTime::from_unix_timestamp(1_796_639_361).unwrap();
    let facts = RequestFacts::new("10.1.2.3".parse().unwrap(), true, now, "eu-west-3");
    let other_ip = RequestFacts::new("10.2.2.3".parse().unwrap(), true, now, "eu-west-3");
    let decide = |facts: Option<&RequestFacts>, context: &[(String, ContextValue)]| {
        evaluate(
            &AuthzRequest {
                principal: &principal,
                action: "dynamodb:GetItem",
                resource: "arn:aws:dynamodb:eu-west-3:111122223333:table/T",
                context,
                facts,
            },
            &PolicySet {
                identity: std::slice::from_ref(&p),
                boundary: None,
                resource: None,
            },
        )
    };
    assert_eq!(decide(Some(&facts), &[]).decision, Effect::Allow);
    assert_eq!(decide(Some(&other_ip), &[]).decision, Effect::ImplicitDeny);
    let ip = |v: &str| vec![("aws:SourceIp".to_owned(), ContextValue::Str(v.to_owned()))];
    assert_eq!(
        decide(Some(&other_ip), &ip("10.1.9.9")).decision,
        Effect::Allow
    );
    assert_eq!(
        decide(Some(&facts), &ip("10.2.9.9")).decision,
        Effect::ImplicitDeny
    );
    let d = decide(None, &[]);
    assert_eq!(d.decision, Effect::ImplicitDeny);
    assert_eq!(
        d.missing_context_keys,
        [
            "aws:CurrentTime",
            "aws:EpochTime",
            "aws:RequestedRegion",
            "aws:SecureTransport",
            "aws:SourceIp"
        ]
    );
}

fn shuffled<T: Clone>(items: &[T], seed: u64) -> Vec<T> {
    let mut v = items.to_vec();
    let mut s = seed | 1;
    for i in (1..v.len()).rev() {
        s = s
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let j = (s >> 33) as usize % (i + 1);
        v.swap(i, j);
    }
    v
}

fn doc(stmts: &[&str]) -> String {
    format!(
        r#"{{"Version":"2012-10-17","Statement":[{}]}}"#,
        stmts.join(",")
    )
}

fn decide(
    identity: &[Vec<&str>],
    boundary: &Option<Vec<&str>>,
    resource: &Option<Vec<&str>>,
    action: &str,
    resource_arn: &str,
    ctx: &[(String, ContextValue)],
    facts: Option<&RequestFacts>,
) -> Effect {
    let ids: Vec<Arc<Policy>> = identity
        .iter()
        .enumerate()
        .filter(|(_, s)| !s.is_empty())
        .map(|(i, s)| {
            Arc::new(Policy::parse(&format!("p{i}"), &doc(s), PolicyKind::Identity).unwrap())
        })
        .collect();
    let b = boundary
        .as_ref()
        .filter(|s| !s.is_empty())
        .map(|s| Policy::parse("b", &doc(s), PolicyKind::Boundary).unwrap());
    let r = resource
        .as_ref()
        .filter(|s| !s.is_empty())
        .map(|s| Policy::parse("r", &doc(s), PolicyKind::Resource).unwrap());
    let principal = alice();
    let req = AuthzRequest {
        principal: &principal,
        action,
        resource: resource_arn,
        context: ctx,
        facts,
    };
    evaluate(
        &req,
        &PolicySet {
            identity: &ids,
            boundary: b.as_ref(),
            resource: r.as_ref(),
        },
    )
    .decision
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]
    #[test]
    fn decision_does_not_depend_on_order(
        picks in proptest::collection::vec((0..IDENTITY_POOL.len(), 0..3usize), 0..10),
        bpicks in proptest::option::of(proptest::collection::vec(0..BOUNDARY_POOL.len(), 0..4)),
        rpicks in proptest::option::of(proptest::collection::vec(0..RESOURCE_POOL.len(), 0..4)),
        action in 0..ACTIONS.len(),
        res in 0..RESOURCES.len(),
        ip in proptest::option::of(prop_oneof![Just("10.1.2.3"), Just("192.168.0.1")]),
        tls in proptest::option::of(any::<bool>()),
        attrs in proptest::option::of(proptest::collection::vec(prop_oneof![Just("a"), Just("b"), Just("secret")], 0..3)),
        seed in any::<u64>(),
    ) {
        let mut identity: Vec<Vec<&str>> = vec![Vec::new(); 3];
        for (s, p) in &picks {
            identity[*p].push(IDENTITY_POOL[*s]);
        }
        let boundary = bpicks.map(|v| v.iter().map(|i| BOUNDARY_POOL[*i]).collect::<Vec<_>>());
        let resource = rpicks.map(|v| v.iter().map(|i| RESOURCE_POOL[*i]).collect::<Vec<_>>());
        let mut ctx = Vec::new();
        if let Some(a) = attrs {
            ctx.push(("dynamodb:Attributes".to_owned(), ContextValue::List(a.iter().map(|s| s.to_string()).collect())));
        }
        // The global keys as the request path gives them (read from the request's facts) ...
        let facts = match (ip, tls) {
            (Some(ip), Some(t)) => Some(RequestFacts::new(
                ip.parse().unwrap(), t, time::OffsetDateTime::UNIX_EPOCH, "us-east-1",
            )),
            _ => None,
        };
        let operation_keys = ctx.len();
        if let Some(ip) = ip { ctx.push(("aws:SourceIp".to_owned(), ContextValue::Str(ip.to_owned()))); }
        if let Some(t) = tls { ctx.push(("aws:SecureTransport".to_owned(), ContextValue::Bool(t))); }
        let base = decide(&identity, &boundary, &resource, ACTIONS[action], RESOURCES[res], &ctx, None);
        // ... decide exactly as the same keys carried in the context.
        if let Some(f) = &facts {
            let lazy = decide(&identity, &boundary, &resource, ACTIONS[action], RESOURCES[res], &ctx[..operation_keys], Some(f));
            prop_assert_eq!(base, lazy);
        }
        // reorder policies and the statements inside every policy
        let identity2: Vec<Vec<&str>> = shuffled(&identity, seed)
            .into_iter()
            .enumerate()
            .map(|(i, s)| shuffled(&s, seed.wrapping_add(i as u64 + 1)))
            .collect();
        let boundary2 = boundary.as_ref().map(|s| shuffled(s, seed ^ 0x55));
        let resource2 = resource.as_ref().map(|s| shuffled(s, seed ^ 0xaa));
        let again = decide(&identity2, &boundary2, &resource2, ACTIONS[action], RESOURCES[res], &ctx, None);
        prop_assert_eq!(base, again);
        // merging every identity statement into one policy is also equivalent
        let merged: Vec<&str> = identity.iter().flatten().copied().collect();
        let one = decide(&[merged], &boundary, &resource, ACTIONS[action], RESOURCES[res], &ctx, None);
        prop_assert_eq!(base, one);
    }

    #[test]
    fn parse_never_panics(s in "\\PC{0,200}") {
        let _ = Policy::parse("f", &s, PolicyKind::Identity);
        let _ = Policy::parse("f", &s, PolicyKind::Resource);
    }

    #[test]
    fn valid_generated_documents_parse(
        stmts in proptest::collection::vec(0..IDENTITY_POOL.len(), 1..8),
    ) {
        let s: Vec<&str> = stmts.iter().map(|i| IDENTITY_POOL[*i]).collect();
        let p = Policy::parse("g", &doc(&s), PolicyKind::Identity);
        prop_assert!(p.is_ok());
        prop_assert_eq!(p.map(|p| p.statement_count()).unwrap_or(0), s.len());
    }
}

#[test]
fn resource_policy_json_value_round_trip() {
    // Simulator-style inputs: the lead builds ContextValue from JSON with from_json.
    assert_eq!(
        ContextValue::from_json(&json!(["a", 1, true])),
        Some(ContextValue::List(vec![
            "a".into(),
            "1".into(),
            "true".into()
        ]))
    );
    assert_eq!(
        ContextValue::from_json(&json!(12.5)),
        Some(ContextValue::Num("12.5".into()))
    );
    assert_eq!(ContextValue::from_json(&json!(null)), None);
    assert_eq!(
        ContextValue::from_json(&json!([])),
        Some(ContextValue::List(vec![]))
    );
}
