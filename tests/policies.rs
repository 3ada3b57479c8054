//! The example policies in `policies/`, enforced end to end through aws-sdk-dynamodb, and the
//! `sealdb policy` validator and simulator as a user runs them.

mod common;

use std::process::{Command, Stdio};

use aws_sdk_dynamodb::types::AttributeValue as Av;
use aws_sdk_dynamodb::Client;
use common::*;
use sealdb::ops::admin::{run, AdminInput};
use sealdb::protocol::AdminOp;

fn policy_file(name: &str) -> String {
    std::fs::read_to_string(source_path(&format!("policies/{name}"))).unwrap()
}

/// Creates a user with the given policies and returns a client signed as that user.
async fn user(srv: &TestServer, name: &str, policies: &[(&str, String)]) -> Client {
    let cat = &srv.services().catalog;
    let named = |extra: AdminInput| AdminInput {
        user_name: Some(name.to_string()),
        ..extra
    };
    run(cat, AdminOp::CreateUser, named(AdminInput::default()))
        .await
        .unwrap();
    for (pname, doc) in policies {
        run(
            cat,
            AdminOp::PutUserPolicy,
            named(AdminInput {
                policy_name: Some(pname.to_string()),
                policy_document: Some(doc.clone()),
                ..Default::default()
            }),
        )
        .await
        .unwrap();
    }
    let key = run(cat, AdminOp::CreateAccessKey, named(AdminInput::default()))
        .await
        .unwrap();
    client_for(
        &srv.endpoint,
        key["AccessKey"]["AccessKeyId"].as_str().unwrap(),
        key["AccessKey"]["SecretAccessKey"].as_str().unwrap(),
    )
}

async fn put(c: &Client, t: &str, pk: &str) -> Result<(), String> {
    c.put_item()
        .table_name(t)
        .item("pk", Av::S(pk.into()))
        .item("v", Av::S("x".into()))
        .send()
        .await
        .map(|_| ())
        .map_err(|e| code(&e))
}

async fn get(c: &Client, t: &str, pk: &str) -> Result<(), String> {
    c.get_item()
        .table_name(t)
        .key("pk", Av::S(pk.into()))
        .send()
        .await
        .map(|_| ())
        .map_err(|e| code(&e))
}

const DENIED: &str = "AccessDeniedException";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn example_policies_are_enforced() {
    let srv = TestServer::start().await;
    let admin = srv.client();
    create_table(&admin, "Tenants", None).await;
    create_table(&admin, "Other", None).await;

    // Tenant isolation: each user reaches only the partition named after them.
    let alice = user(
        &srv,
        "alice",
        &[("tenant", policy_file("tenant-isolation.json"))],
    )
    .await;
    let bob = user(
        &srv,
        "bob",
        &[("tenant", policy_file("tenant-isolation.json"))],
    )
    .await;
    assert_eq!(put(&alice, "Tenants", "alice").await, Ok(()));
    assert_eq!(get(&alice, "Tenants", "alice").await, Ok(()));
    assert_eq!(put(&alice, "Tenants", "bob").await, Err(DENIED.into()));
    assert_eq!(get(&bob, "Tenants", "alice").await, Err(DENIED.into()));
    assert_eq!(put(&bob, "Tenants", "bob").await, Ok(()));
    assert_eq!(
        put(&alice, "Other", "alice").await,
        Err(DENIED.into()),
        "only the Tenants table"
    );

    // Read-only.
    let reader = user(&srv, "reader", &[("ro", policy_file("read-only.json"))]).await;
    assert_eq!(get(&reader, "Other", "k").await, Ok(()));
    assert_eq!(put(&reader, "Other", "k").await, Err(DENIED.into()));
    reader.list_tables().send().await.unwrap();

    // Guardrail: an explicit deny beats the allow-everything policy.
    let guarded = user(
        &srv,
        "guarded",
        &[
            ("admin", policy_file("dev-admin.json")),
            ("guard", policy_file("deny-delete.json")),
        ],
    )
    .await;
    assert_eq!(put(&guarded, "Other", "k").await, Ok(()));
    let e = guarded
        .delete_item()
        .table_name("Other")
        .key("pk", Av::S("k".into()))
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&e), DENIED);
    assert!(message(&e).contains("explicit deny"), "{}", message(&e));
    let e = guarded
        .delete_table()
        .table_name("Other")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&e), DENIED);

    // IP and TLS restriction: loopback is in the allowed range, but this connection is not TLS.
    let plain = user(
        &srv,
        "plain",
        &[
            ("admin", policy_file("dev-admin.json")),
            ("net", policy_file("ip-tls-restriction.json")),
        ],
    )
    .await;
    assert_eq!(get(&plain, "Other", "k").await, Err(DENIED.into()));

    // Time window: the example's shape, with the window moved around "now".
    let now = time::OffsetDateTime::now_utc();
    let fmt = |t: time::OffsetDateTime| {
        t.format(&time::format_description::well_known::Rfc3339)
            .unwrap()
    };
    let window = |from: time::OffsetDateTime, to: time::OffsetDateTime| {
        policy_file("time-window.json")
            .replace("2026-01-01T00:00:00Z", &fmt(from))
            .replace("2027-01-01T00:00:00Z", &fmt(to))
    };
    let hour = time::Duration::hours(1);
    let open = user(&srv, "in_window", &[("w", window(now - hour, now + hour))]).await;
    assert_eq!(get(&open, "Other", "k").await, Ok(()));
    let closed = user(
        &srv,
        "out_of_window",
        &[("w", window(now + hour, now + hour * 2))],
    )
    .await;
    assert_eq!(get(&closed, "Other", "k").await, Err(DENIED.into()));

    // The global keys from the connection and the clock, all in one allow: the loopback source
    // address, plain HTTP, the configured region and the current epoch time.
    let region = srv.services().config.region.clone();
    let an_hour_ago = (now - hour).unix_timestamp();
    let globals = |range: &str| {
        format!(
            r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Action":"dynamodb:GetItem",
            "Resource":"*","Condition":{{"IpAddress":{{"aws:SourceIp":"{range}"}},
            "Bool":{{"aws:SecureTransport":"false"}},
            "StringEquals":{{"aws:RequestedRegion":"{region}"}},
            "NumericGreaterThan":{{"aws:EpochTime":"{an_hour_ago}"}}}}}}]}}"#
        )
    };
    let local = user(&srv, "from_loopback", &[("g", globals("127.0.0.0/8"))]).await;
    assert_eq!(get(&local, "Other", "k").await, Ok(()));
    let remote = user(&srv, "from_elsewhere", &[("g", globals("10.0.0.0/8"))]).await;
    assert_eq!(get(&remote, "Other", "k").await, Err(DENIED.into()));
    srv.stop().await;
}

fn sealdb(args: &[&str], stdin: Option<&str>) -> (i32, String) {
    use std::io::Write;
    let mut child = Command::new(sealdb_bin())
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    if let Some(s) = stdin {
        input.write_all(s.as_bytes()).unwrap();
    }
    drop(input);
    let out = child.wait_with_output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[test]
fn validate_and_simulate_from_the_command_line() {
    let dir = source_path("policies");
    let files: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path().display().to_string())
        .filter(|p| p.ends_with(".json"))
        .collect();
    assert!(files.len() >= 8);
    let mut args = vec!["policy", "validate"];
    args.extend(files.iter().map(String::as_str));
    let (code, out) = sealdb(&args, None);
    assert_eq!(code, 0, "{out}");

    let bad = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(bad.path(), r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"dynamodb:GetItem","Resource":"*","NotResource":"x"}]}"#).unwrap();
    let (code, out) = sealdb(&["policy", "validate", bad.path().to_str().unwrap()], None);
    assert_eq!(code, 1);
    assert!(
        out.contains("Statement[0]"),
        "the problem names its JSON path: {out}"
    );

    let request = |action: &str, leading: &str| {
        format!(
            r#"{{"identity_policies": [{tenant}, {guard}],
                "principal": {{"type": "IAMUser", "arn": "arn:aws:iam::000000000000:user/alice", "account": "000000000000", "userid": "AIDAALICE", "username": "alice", "tags": {{}}}},
                "action": "{action}", "resource": "arn:aws:dynamodb:us-east-1:000000000000:table/Tenants",
                "context": {{"dynamodb:LeadingKeys": ["{leading}"]}}}}"#,
            tenant = policy_file("tenant-isolation.json"),
            guard = policy_file("deny-delete.json"),
        )
    };
    let decide = |input: String| {
        let (code, out) = sealdb(&["policy", "simulate"], Some(&input));
        assert_eq!(code, 0, "{out}");
        serde_json::from_str::<serde_json::Value>(&out).unwrap()
    };
    let d = decide(request("dynamodb:GetItem", "alice"));
    assert_eq!(d["decision"], "Allow");
    assert_eq!(d["matched_statements"][0]["sid"], "OwnPartitionOnly");
    assert_eq!(
        decide(request("dynamodb:GetItem", "bob"))["decision"],
        "ImplicitDeny"
    );
    let d = decide(request("dynamodb:DeleteItem", "alice"));
    assert_eq!(d["decision"], "ExplicitDeny");
    assert!(d["matched_statements"]
        .as_array()
        .unwrap()
        .iter()
        .any(|m| m["sid"] == "NoDeletes"));
}
