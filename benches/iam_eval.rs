//! IAM decision latency: a principal with 10 identity policies totalling 100 statements, a
//! permissions boundary and a table resource policy; then the same with 10,000 principals
//! defined (looked up per request). Prints p50/p99 per decision from individually timed runs
//! (criterion reports means), then runs the criterion benchmarks.

use criterion::{criterion_group, criterion_main, Criterion};
use sealdb::iam::eval::{
    evaluate, AuthzRequest, ContextValue, PolicySet, PrincipalInfo, PrincipalKind,
};
use sealdb::iam::policy::{Policy, PolicyKind};
use std::collections::{BTreeMap, HashMap};
use std::hint::black_box;
use std::sync::Arc;
use std::time::Instant;

const ACCOUNT: &str = "111122223333";

/// Ten statements in the style of real DynamoDB policies; `p` varies table names per policy.
fn identity_doc(p: usize) -> String {
    let t = |s: &str| format!("arn:aws:dynamodb:us-east-1:{ACCOUNT}:table/{s}{p}");
    let stmts = [
        format!(
            r#"{{"Sid":"Read{p}","Effect":"Allow","Action":["dynamodb:GetItem","dynamodb:BatchGetItem","dynamodb:Query"],"Resource":["{}","{}/index/*"]}}"#,
            t("Orders"),
            t("Orders")
        ),
        format!(
            r#"{{"Sid":"Write{p}","Effect":"Allow","Action":["dynamodb:PutItem","dynamodb:UpdateItem"],"Resource":"{}","Condition":{{"ForAllValues:StringEquals":{{"dynamodb:LeadingKeys":["${{aws:username}}"]}}}}}}"#,
            t("Tenants")
        ),
        format!(
            r#"{{"Sid":"Attrs{p}","Effect":"Allow","Action":"dynamodb:GetItem","Resource":"{}","Condition":{{"ForAllValues:StringEquals":{{"dynamodb:Attributes":["pk","sk","name","email"]}},"StringEqualsIfExists":{{"dynamodb:Select":"SPECIFIC_ATTRIBUTES"}}}}}}"#,
            t("Users")
        ),
        format!(
            r#"{{"Sid":"NoDelete{p}","Effect":"Deny","Action":["dynamodb:DeleteTable","dynamodb:DeleteItem"],"Resource":"{}"}}"#,
            t("Audit")
        ),
        format!(
            r#"{{"Sid":"Net{p}","Effect":"Deny","Action":"dynamodb:*","Resource":"{}","Condition":{{"NotIpAddress":{{"aws:SourceIp":["10.0.0.0/8","192.168.0.0/16","fd00::/8"]}}}}}}"#,
            t("Secure")
        ),
        format!(
            r#"{{"Sid":"Tls{p}","Effect":"Deny","Action":"dynamodb:*","Resource":"{}","Condition":{{"Bool":{{"aws:SecureTransport":"false"}}}}}}"#,
            t("Secure")
        ),
        format!(
            r#"{{"Sid":"Window{p}","Effect":"Allow","Action":"dynamodb:Scan","Resource":"{}","Condition":{{"DateGreaterThan":{{"aws:CurrentTime":"2024-01-01T00:00:00Z"}},"DateLessThan":{{"aws:CurrentTime":"2030-01-01T00:00:00Z"}}}}}}"#,
            t("Reports")
        ),
        format!(
            r#"{{"Sid":"Tag{p}","Effect":"Allow","Action":"dynamodb:*","Resource":"{}","Condition":{{"StringEquals":{{"aws:PrincipalTag/team":"team{p}"}}}}}}"#,
            t("Team")
        ),
        format!(
            r#"{{"Sid":"Own{p}","Effect":"Allow","Action":"dynamodb:*","Resource":"arn:aws:dynamodb:*:{ACCOUNT}:table/${{aws:username}}-{p}-*"}}"#
        ),
        format!(
            r#"{{"Sid":"List{p}","Effect":"Allow","Action":["dynamodb:ListTables","dynamodb:DescribeTable"],"Resource":"*"}}"#
        ),
    ];
    format!(
        r#"{{"Version":"2012-10-17","Statement":[{}]}}"#,
        stmts.join(",")
    )
}

const BOUNDARY: &str = r#"{"Version":"2012-10-17","Statement":[
  {"Sid":"Dynamo","Effect":"Allow","Action":"dynamodb:*","Resource":"*"},
  {"Sid":"NoAdmin","Effect":"Deny","Action":["dynamodb:DeleteTable","dynamodb:UpdateTable"],"Resource":"*"},
  {"Sid":"Region","Effect":"Deny","Action":"*","Resource":"*","Condition":{"StringNotEquals":{"aws:RequestedRegion":"us-east-1"}}}]}"#;

const RESOURCE: &str = r#"{"Version":"2012-10-17","Statement":[
  {"Sid":"Readers","Effect":"Allow","Principal":{"AWS":["arn:aws:iam::111122223333:role/reader","arn:aws:iam::111122223333:user/bob"]},"Action":["dynamodb:GetItem","dynamodb:Query"],"Resource":"*"},
  {"Sid":"Guard","Effect":"Deny","Principal":"*","Action":"dynamodb:DeleteTable","Resource":"*"},
  {"Sid":"Ips","Effect":"Deny","Principal":"*","Action":"*","Resource":"*","Condition":{"NotIpAddress":{"aws:SourceIp":["10.0.0.0/8"]}}}]}"#;

fn principal(name: &str) -> PrincipalInfo {
    PrincipalInfo {
        kind: PrincipalKind::IAMUser,
        arn: format!("arn:aws:iam::{ACCOUNT}:user/{name}"),
        account: ACCOUNT.into(),
        userid: format!("AIDA{name}"),
        username: Some(name.into()),
        role_arn: None,
        tags: BTreeMap::from([("team".to_owned(), "team3".to_owned())]),
    }
}

fn context() -> Vec<(String, ContextValue)> {
    let s = |v: &str| ContextValue::Str(v.into());
    Vec::from([
        ("aws:SourceIp".into(), s("10.1.2.3")),
        ("aws:SecureTransport".into(), ContextValue::Bool(true)),
        ("aws:CurrentTime".into(), s("2025-06-01T12:00:00Z")),
        (
            "aws:EpochTime".into(),
            ContextValue::Num("1748779200".into()),
        ),
        ("aws:RequestedRegion".into(), s("us-east-1")),
        ("aws:PrincipalType".into(), s("User")),
        (
            "dynamodb:LeadingKeys".into(),
            ContextValue::List(vec!["alice".into()]),
        ),
        (
            "dynamodb:Attributes".into(),
            ContextValue::List(vec!["pk".into(), "name".into()]),
        ),
        ("dynamodb:Select".into(), s("SPECIFIC_ATTRIBUTES")),
        ("dynamodb:ReturnConsumedCapacity".into(), s("NONE")),
    ])
}

struct Fixture {
    identity: Vec<Arc<Policy>>,
    boundary: Policy,
    resource: Policy,
}

fn fixture() -> Fixture {
    let identity = (0..10)
        .map(|p| {
            Arc::new(
                Policy::parse(&format!("p{p}"), &identity_doc(p), PolicyKind::Identity)
                    .expect("valid identity policy"),
            )
        })
        .collect::<Vec<_>>();
    assert_eq!(
        identity.iter().map(|p| p.statement_count()).sum::<usize>(),
        100
    );
    Fixture {
        identity,
        boundary: Policy::parse("boundary", BOUNDARY, PolicyKind::Boundary)
            .expect("valid boundary"),
        resource: Policy::parse("table", RESOURCE, PolicyKind::Resource)
            .expect("valid resource policy"),
    }
}

// The request mix: an allowed attribute-restricted read, a tenant write, and a denied delete.
const REQUESTS: &[(&str, &str)] = &[
    (
        "dynamodb:GetItem",
        "arn:aws:dynamodb:us-east-1:111122223333:table/Users3",
    ),
    (
        "dynamodb:PutItem",
        "arn:aws:dynamodb:us-east-1:111122223333:table/Tenants7",
    ),
    (
        "dynamodb:DeleteItem",
        "arn:aws:dynamodb:us-east-1:111122223333:table/Audit5",
    ),
];

fn percentiles(label: &str, mut run: impl FnMut(usize)) {
    const N: usize = 200_000;
    for i in 0..10_000 {
        run(i);
    }
    let mut t = Vec::with_capacity(N);
    for i in 0..N {
        let start = Instant::now();
        run(i);
        t.push(start.elapsed().as_nanos());
    }
    t.sort_unstable();
    let at = |q: f64| t[((N as f64) * q) as usize] as f64 / 1000.0;
    println!(
        "{label}: p50 {:.2} us, p99 {:.2} us, p99.9 {:.2} us ({N} decisions)",
        at(0.50),
        at(0.99),
        at(0.999)
    );
}

fn bench(c: &mut Criterion) {
    let f = fixture();
    let alice = principal("alice");
    let ctx = context();
    let set = PolicySet {
        identity: &f.identity,
        boundary: Some(&f.boundary),
        resource: Some(&f.resource),
    };
    let decide = |i: usize| {
        let (action, resource) = REQUESTS[i % REQUESTS.len()];
        let req = AuthzRequest {
            principal: &alice,
            action,
            resource,
            context: &ctx,
            facts: None,
        };
        black_box(evaluate(&req, &set));
    };
    // sanity: the mix exercises allow and deny
    for (i, want) in [true, true, false].into_iter().enumerate() {
        let (action, resource) = REQUESTS[i];
        let req = AuthzRequest {
            principal: &alice,
            action,
            resource,
            context: &ctx,
            facts: None,
        };
        assert_eq!(
            evaluate(&req, &set).is_allowed(),
            want,
            "{action} on {resource}"
        );
    }

    // 10,000 principals: per-user inline policy plus the shared managed policies.
    let shared: Vec<Arc<Policy>> = f.identity.iter().take(9).cloned().collect();
    let mut directory: HashMap<String, (PrincipalInfo, Vec<Arc<Policy>>)> = HashMap::new();
    for u in 0..10_000 {
        let name = format!("user{u}");
        let mut policies = shared.clone();
        policies.push(Arc::new(
            Policy::parse(
                &format!("inline-{u}"),
                &identity_doc(9),
                PolicyKind::Identity,
            )
            .expect("valid"),
        ));
        directory.insert(name.clone(), (principal(&name), policies));
    }
    let names: Vec<String> = (0..10_000)
        .map(|u| format!("user{}", (u * 7919) % 10_000))
        .collect();
    let decide_many = |i: usize| {
        let (p, pols) = &directory[&names[i % names.len()]];
        let (action, resource) = REQUESTS[i % REQUESTS.len()];
        let req = AuthzRequest {
            principal: p,
            action,
            resource,
            context: &ctx,
            facts: None,
        };
        let set = PolicySet {
            identity: pols,
            boundary: Some(&f.boundary),
            resource: Some(&f.resource),
        };
        black_box(evaluate(&req, &set));
    };

    if std::env::args().any(|a| a == "--bench") {
        percentiles(
            "iam decision, 1 principal, 100 statements + boundary + resource policy",
            decide,
        );
        percentiles("iam decision, 10,000 principals defined", decide_many);
    }
    c.bench_function("iam_decision_100_statements", |b| {
        let mut i = 0;
        b.iter(|| {
            i += 1;
            decide(i)
        })
    });
    c.bench_function("iam_decision_10000_principals", |b| {
        let mut i = 0;
        b.iter(|| {
            i += 1;
            decide_many(i)
        })
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
