//! The foundation through a real client: tables, items of every type, validation errors,
//! authentication failures and IAM denials, against a server started as a user starts it.

mod common;

use std::collections::HashMap;
use std::time::{Duration, SystemTime};

use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue as Av, BillingMode, KeySchemaElement, KeyType, ReturnValue,
    ScalarAttributeType, SseSpecification,
};
use common::*;

fn every_type_item() -> HashMap<String, Av> {
    let mut inner = HashMap::new();
    inner.insert(
        "deep".to_string(),
        Av::L(vec![Av::N("1.5".into()), Av::Null(true), Av::Bool(false)]),
    );
    let mut item = HashMap::new();
    item.insert("pk".to_string(), Av::S("user#1 ünïcødé".into()));
    item.insert("sk".to_string(), Av::N("42".into()));
    item.insert("s".to_string(), Av::S("hello".into()));
    item.insert(
        "n".to_string(),
        Av::N("-12345678901234567890.123456789".into()),
    );
    item.insert("b".to_string(), Av::B(Blob::new(vec![0u8, 1, 2, 255])));
    item.insert("t".to_string(), Av::Bool(true));
    item.insert("z".to_string(), Av::Null(true));
    item.insert("m".to_string(), Av::M(inner));
    item.insert(
        "l".to_string(),
        Av::L(vec![Av::S("x".into()), Av::N("2".into())]),
    );
    item.insert("ss".to_string(), Av::Ss(vec!["a".into(), "b".into()]));
    item.insert("ns".to_string(), Av::Ns(vec!["1".into(), "2.5".into()]));
    item.insert(
        "bs".to_string(),
        Av::Bs(vec![Blob::new(vec![1u8]), Blob::new(vec![2u8, 3])]),
    );
    item
}

fn sorted_sets(mut item: HashMap<String, Av>) -> HashMap<String, Av> {
    for v in item.values_mut() {
        match v {
            Av::Ss(s) | Av::Ns(s) => s.sort(),
            Av::Bs(b) => b.sort_by(|x, y| x.as_ref().cmp(y.as_ref())),
            _ => {}
        }
    }
    item
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tables_and_items_of_every_type_round_trip() {
    let srv = TestServer::start().await;
    let c = srv.client();
    create_table(&c, "Things", Some(ScalarAttributeType::N)).await;

    let listed = c.list_tables().send().await.unwrap();
    assert_eq!(listed.table_names(), ["Things"]);

    let item = every_type_item();
    c.put_item()
        .table_name("Things")
        .set_item(Some(item.clone()))
        .send()
        .await
        .unwrap();
    let key = HashMap::from([
        ("pk".to_string(), item["pk"].clone()),
        ("sk".to_string(), Av::N("42.0".into())), // numbers compare exactly: 42.0 == 42
    ]);
    let got = c
        .get_item()
        .table_name("Things")
        .set_key(Some(key.clone()))
        .consistent_read(true)
        .send()
        .await
        .unwrap();
    assert_eq!(
        sorted_sets(got.item().unwrap().clone()),
        sorted_sets(item.clone())
    );

    // Projection with a name placeholder.
    let got = c
        .get_item()
        .table_name("Things")
        .set_key(Some(key.clone()))
        .projection_expression("#s, m.deep[0]")
        .expression_attribute_names("#s", "s")
        .send()
        .await
        .unwrap();
    let p = got.item().unwrap();
    assert_eq!(p.len(), 2, "{p:?}");
    assert_eq!(p["s"], Av::S("hello".into()));

    let d = c
        .describe_table()
        .table_name("Things")
        .send()
        .await
        .unwrap();
    let t = d.table().unwrap();
    assert_eq!(t.table_status().unwrap().as_str(), "ACTIVE");
    assert_eq!(t.item_count(), Some(1));
    assert!(t.table_size_bytes().unwrap() > 0);
    assert_eq!(
        t.table_arn().unwrap(),
        "arn:aws:dynamodb:us-east-1:000000000000:table/Things"
    );
    assert!(t.table_id().is_some() && t.creation_date_time().is_some());
    assert_eq!(
        t.billing_mode_summary().unwrap().billing_mode().unwrap(),
        &BillingMode::PayPerRequest
    );
    assert!(
        t.sse_description().is_none(),
        "default key: no SSEDescription, as DynamoDB's AWS-owned key"
    );

    // Overwrite returns the old item; delete returns it too; then it is gone.
    let mut changed = item.clone();
    changed.insert("s".into(), Av::S("changed".into()));
    let put = c
        .put_item()
        .table_name("Things")
        .set_item(Some(changed))
        .return_values(ReturnValue::AllOld)
        .send()
        .await
        .unwrap();
    assert_eq!(put.attributes().unwrap()["s"], Av::S("hello".into()));
    let del = c
        .delete_item()
        .table_name("Things")
        .set_key(Some(key.clone()))
        .return_values(ReturnValue::AllOld)
        .send()
        .await
        .unwrap();
    assert_eq!(del.attributes().unwrap()["s"], Av::S("changed".into()));
    let got = c
        .get_item()
        .table_name("Things")
        .set_key(Some(key.clone()))
        .send()
        .await
        .unwrap();
    assert!(got.item().is_none());

    c.delete_table().table_name("Things").send().await.unwrap();
    let err = c
        .describe_table()
        .table_name("Things")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&err), "ResourceNotFoundException");
    assert!(c
        .list_tables()
        .send()
        .await
        .unwrap()
        .table_names()
        .is_empty());
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_tables_pages_and_duplicates_are_refused() {
    let srv = TestServer::start().await;
    let c = srv.client();
    for n in ["tab_c", "tab_a", "tab_b"] {
        create_table(&c, n, None).await;
    }
    let err = c
        .create_table()
        .table_name("tab_a")
        .billing_mode(BillingMode::PayPerRequest)
        .key_schema(
            KeySchemaElement::builder()
                .attribute_name("pk")
                .key_type(KeyType::Hash)
                .build()
                .unwrap(),
        )
        .attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name("pk")
                .attribute_type(ScalarAttributeType::S)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&err), "ResourceInUseException");
    let p1 = c.list_tables().limit(2).send().await.unwrap();
    assert_eq!(p1.table_names(), ["tab_a", "tab_b"]);
    assert_eq!(p1.last_evaluated_table_name(), Some("tab_b"));
    let p2 = c
        .list_tables()
        .limit(2)
        .exclusive_start_table_name("tab_b")
        .send()
        .await
        .unwrap();
    assert_eq!(p2.table_names(), ["tab_c"]);
    assert_eq!(p2.last_evaluated_table_name(), None);
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn validation_errors_match_dynamodb() {
    let srv = TestServer::start().await;
    let c = srv.client();
    create_table(&c, "Val", Some(ScalarAttributeType::N)).await;

    // CreateTable: key schema attribute not defined.
    let err = c
        .create_table()
        .table_name("Bad")
        .billing_mode(BillingMode::PayPerRequest)
        .key_schema(
            KeySchemaElement::builder()
                .attribute_name("id")
                .key_type(KeyType::Hash)
                .build()
                .unwrap(),
        )
        .attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name("other")
                .attribute_type(ScalarAttributeType::S)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&err), "ValidationException");
    assert!(
        message(&err).contains("Some index key attributes are not defined in AttributeDefinitions"),
        "{}",
        message(&err)
    );

    // CreateTable: PROVISIONED without throughput.
    let err = c
        .create_table()
        .table_name("Bad")
        .key_schema(
            KeySchemaElement::builder()
                .attribute_name("id")
                .key_type(KeyType::Hash)
                .build()
                .unwrap(),
        )
        .attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name("id")
                .attribute_type(ScalarAttributeType::S)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap_err();
    assert!(
        message(&err).contains("ReadCapacityUnits and WriteCapacityUnits must both be specified"),
        "{}",
        message(&err)
    );

    let put = |item: Vec<(&str, Av)>| {
        c.put_item()
            .table_name("Val")
            .set_item(Some(
                item.into_iter().map(|(k, v)| (k.to_string(), v)).collect(),
            ))
            .send()
    };
    let err = put(vec![("pk", Av::S("a".into()))]).await.unwrap_err();
    assert_eq!(
        message(&err),
        "One or more parameter values were invalid: Missing the key sk in the item"
    );
    let err = put(vec![("pk", Av::S("a".into())), ("sk", Av::S("x".into()))])
        .await
        .unwrap_err();
    assert_eq!(
        message(&err),
        "One or more parameter values were invalid: Type mismatch for key sk expected: N actual: S"
    );
    let err = put(vec![
        ("pk", Av::S("a".into())),
        ("sk", Av::N("1".into())),
        ("e", Av::Ss(vec![])),
    ])
    .await
    .unwrap_err();
    assert_eq!(code(&err), "ValidationException");
    let err = put(vec![
        ("pk", Av::S("a".into())),
        ("sk", Av::N("1".into())),
        ("d", Av::Ss(vec!["x".into(), "x".into()])),
    ])
    .await
    .unwrap_err();
    assert!(
        message(&err).contains("contains duplicates"),
        "{}",
        message(&err)
    );
    let err = put(vec![
        ("pk", Av::S("a".into())),
        ("sk", Av::N("1e126".into())),
    ])
    .await
    .unwrap_err();
    assert!(
        message(&err).contains("Number overflow"),
        "{}",
        message(&err)
    );
    let err = put(vec![("pk", Av::S("".into())), ("sk", Av::N("1".into()))])
        .await
        .unwrap_err();
    assert!(
        message(&err).contains("cannot contain an empty string value"),
        "{}",
        message(&err)
    );
    let err = put(vec![
        ("pk", Av::S("p".repeat(2049))),
        ("sk", Av::N("1".into())),
    ])
    .await
    .unwrap_err();
    assert!(
        message(&err).contains("Size of hashkey has exceeded"),
        "{}",
        message(&err)
    );
    let err = put(vec![
        ("pk", Av::S("a".into())),
        ("sk", Av::N("1".into())),
        ("big", Av::S("x".repeat(400 * 1024))),
    ])
    .await
    .unwrap_err();
    assert_eq!(
        message(&err),
        "Item size has exceeded the maximum allowed size"
    );
    // Nothing was written by any of the failed calls.
    let scan_count = srv
        .services()
        .catalog
        .table("Val")
        .unwrap()
        .stats
        .snapshot()
        .0;
    assert_eq!(scan_count, 0);

    let err = c
        .get_item()
        .table_name("Val")
        .key("pk", Av::S("a".into()))
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        message(&err),
        "The provided key element does not match the schema"
    );
    let err = c
        .get_item()
        .table_name("Missing")
        .key("pk", Av::S("a".into()))
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&err), "ResourceNotFoundException");
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn protocol_errors_never_crash() {
    let srv = TestServer::start().await;
    let (id, s) = (srv.access_key.clone(), srv.secret.clone());
    let ep = srv.endpoint.clone();
    let (st, v) = raw_request(
        &ep,
        &id,
        &s,
        Some("DynamoDB_20120810.Frobnicate"),
        b"{}".to_vec(),
    )
    .await;
    assert_eq!(
        (st, v["__type"].as_str().unwrap()),
        (
            400,
            "com.amazonaws.dynamodb.v20120810#UnknownOperationException"
        )
    );
    let (st, v) = raw_request(
        &ep,
        &id,
        &s,
        Some("DynamoDB_20120810.GetItem"),
        b"{not json".to_vec(),
    )
    .await;
    assert_eq!(
        (st, v["__type"].as_str().unwrap()),
        (
            400,
            "com.amazonaws.dynamodb.v20120810#SerializationException"
        )
    );
    let (st, v) = raw_request(
        &ep,
        &id,
        &s,
        Some("DynamoDB_20120810.GetItem"),
        br#"{"TableName": 7}"#.to_vec(),
    )
    .await;
    assert_eq!(
        (st, v["__type"].as_str().unwrap()),
        (
            400,
            "com.amazonaws.dynamodb.v20120810#SerializationException"
        )
    );
    let (st, v) = raw_request(
        &ep,
        &id,
        &s,
        Some("DynamoDB_20120810.DescribeTable"),
        b"{}".to_vec(),
    )
    .await;
    assert_eq!(st, 400);
    assert!(
        v["message"]
            .as_str()
            .unwrap()
            .contains("Value null at 'tableName'"),
        "{v}"
    );
    let (st, v) = raw_request(
        &ep,
        &id,
        &s,
        Some("DynamoDB_20120810.CreateBackup"),
        b"{}".to_vec(),
    )
    .await;
    assert_eq!(st, 400);
    assert!(
        v["message"].as_str().unwrap().contains("CreateBackup"),
        "{v}"
    );
    // An oversized body is refused from its Content-Length, before a byte of it is read.
    {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut sock = tokio::net::TcpStream::connect(ep.trim_start_matches("http://"))
            .await
            .unwrap();
        let head = format!(
            "POST / HTTP/1.1\r\nhost: {}\r\nx-amz-target: DynamoDB_20120810.GetItem\r\ncontent-type: application/x-amz-json-1.0\r\ncontent-length: {}\r\n\r\n",
            ep.trim_start_matches("http://"),
            16 * 1024 * 1024 + 1
        );
        sock.write_all(head.as_bytes()).await.unwrap();
        let mut buf = vec![0u8; 4096];
        let n = sock.read(&mut buf).await.unwrap();
        let text = String::from_utf8_lossy(&buf[..n]);
        assert!(text.starts_with("HTTP/1.1 413"), "{text}");
    }

    // Unsigned health probe; other paths and methods are 4xx.
    let host = ep.trim_start_matches("http://");
    let r = reqwest::get(&ep).await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(r.text().await.unwrap(), format!("healthy: {host}"));
    assert_eq!(
        reqwest::get(format!("{ep}/other"))
            .await
            .unwrap()
            .status()
            .as_u16(),
        404
    );
    let r = reqwest::Client::new().put(&ep).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 405);
    // An unsigned POST gets MissingAuthenticationToken, with the DynamoDB response headers.
    let r = reqwest::Client::new()
        .post(&ep)
        .header("x-amz-target", "DynamoDB_20120810.ListTables")
        .header("content-type", "application/x-amz-json-1.0")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert!(r.headers().contains_key("x-amzn-requestid"));
    let crc: u32 = r.headers()["x-amz-crc32"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    let body = r.bytes().await.unwrap();
    assert_eq!(crc, crc32fast::hash(&body));
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(
        v["__type"],
        "com.amazonaws.dynamodb.v20120810#MissingAuthenticationTokenException"
    );
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authentication_failures() {
    let srv = TestServer::start().await;
    let wrong_secret = client_for(
        &srv.endpoint,
        &srv.access_key,
        "wrong-secret-wrong-secret-wrong-secret1",
    );
    let err = wrong_secret.list_tables().send().await.unwrap_err();
    assert_eq!(code(&err), "InvalidSignatureException");
    let unknown = client_for(&srv.endpoint, "AKIAUNKNOWNUNKNOWN00", &srv.secret);
    let err = unknown.list_tables().send().await.unwrap_err();
    assert_eq!(code(&err), "UnrecognizedClientException");
    let old = client_at_time(
        &srv.endpoint,
        &srv.access_key,
        &srv.secret,
        Some(SystemTime::now() - Duration::from_secs(16 * 60)),
    );
    let err = old.list_tables().send().await.unwrap_err();
    assert_eq!(code(&err), "InvalidSignatureException");
    assert!(
        message(&err).contains("Signature expired"),
        "{}",
        message(&err)
    );
    // 14 minutes is within the allowed skew.
    let skewed = client_at_time(
        &srv.endpoint,
        &srv.access_key,
        &srv.secret,
        Some(SystemTime::now() - Duration::from_secs(14 * 60)),
    );
    skewed.list_tables().send().await.unwrap();
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn iam_denies_before_storage() {
    use sealdb::ops::admin::{run, AdminInput};
    use sealdb::protocol::AdminOp;
    let srv = TestServer::start().await;
    let admin = srv.client();
    create_table(&admin, "Guarded", None).await;
    let cat = &srv.services().catalog;
    let user = |extra: AdminInput| AdminInput {
        user_name: Some("reader".into()),
        ..extra
    };
    run(cat, AdminOp::CreateUser, user(AdminInput::default()))
        .await
        .unwrap();
    run(cat, AdminOp::PutUserPolicy, user(AdminInput {
        policy_name: Some("read-only".into()),
        policy_document: Some(r#"{"Version":"2012-10-17","Statement":[
            {"Effect":"Allow","Action":["dynamodb:GetItem","dynamodb:Describe*","dynamodb:ListTables"],"Resource":"*"},
            {"Effect":"Deny","Action":"dynamodb:DeleteTable","Resource":"arn:aws:dynamodb:*:*:table/Guarded"}]}"#.into()),
        ..Default::default()
    })).await.unwrap();
    let key = run(cat, AdminOp::CreateAccessKey, user(AdminInput::default()))
        .await
        .unwrap();
    let reader = client_for(
        &srv.endpoint,
        key["AccessKey"]["AccessKeyId"].as_str().unwrap(),
        key["AccessKey"]["SecretAccessKey"].as_str().unwrap(),
    );
    reader
        .describe_table()
        .table_name("Guarded")
        .send()
        .await
        .unwrap();
    reader
        .get_item()
        .table_name("Guarded")
        .key("pk", Av::S("a".into()))
        .send()
        .await
        .unwrap();
    let err = reader
        .put_item()
        .table_name("Guarded")
        .item("pk", Av::S("a".into()))
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&err), "AccessDeniedException");
    assert_eq!(
        message(&err),
        "User: arn:aws:iam::000000000000:user/reader is not authorized to perform: dynamodb:PutItem on resource: arn:aws:dynamodb:us-east-1:000000000000:table/Guarded because no identity-based policy allows the dynamodb:PutItem action"
    );
    let err = reader
        .delete_table()
        .table_name("Guarded")
        .send()
        .await
        .unwrap_err();
    assert!(
        message(&err).contains("with an explicit deny in an identity-based policy"),
        "{}",
        message(&err)
    );
    // Denied means nothing was written, and the table is still there.
    let got = admin
        .get_item()
        .table_name("Guarded")
        .key("pk", Av::S("a".into()))
        .send()
        .await
        .unwrap();
    assert!(got.item().is_none());
    admin
        .describe_table()
        .table_name("Guarded")
        .send()
        .await
        .unwrap();
    // Access to a table that does not exist is still decided by IAM first.
    let err = reader
        .put_item()
        .table_name("Nope")
        .item("pk", Av::S("a".into()))
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&err), "AccessDeniedException");
    // Deleting the key takes effect on the next request.
    run(
        cat,
        AdminOp::DeleteAccessKey,
        AdminInput {
            access_key_id: key["AccessKey"]["AccessKeyId"].as_str().map(String::from),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let err = reader
        .describe_table()
        .table_name("Guarded")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&err), "UnrecognizedClientException");
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_table_that_names_its_key_reports_it() {
    let srv = TestServer::start().await;
    let c = srv.client();
    c.create_table()
        .table_name("Named")
        .billing_mode(BillingMode::PayPerRequest)
        .key_schema(
            KeySchemaElement::builder()
                .attribute_name("pk")
                .key_type(KeyType::Hash)
                .build()
                .unwrap(),
        )
        .attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name("pk")
                .attribute_type(ScalarAttributeType::S)
                .build()
                .unwrap(),
        )
        .sse_specification(
            SseSpecification::builder()
                .enabled(true)
                .kms_master_key_id("alias/sealdb-default")
                .build(),
        )
        .send()
        .await
        .unwrap();
    let t = c.describe_table().table_name("Named").send().await.unwrap();
    let sse = t
        .table()
        .unwrap()
        .sse_description()
        .expect("SSEDescription");
    assert_eq!(sse.status().unwrap().as_str(), "ENABLED");
    assert_eq!(sse.sse_type().unwrap().as_str(), "KMS");
    assert!(sse
        .kms_master_key_arn()
        .unwrap()
        .starts_with("arn:aws:kms:us-east-1:000000000000:key/"));
    let err = c
        .create_table()
        .table_name("Named2")
        .billing_mode(BillingMode::PayPerRequest)
        .key_schema(
            KeySchemaElement::builder()
                .attribute_name("pk")
                .key_type(KeyType::Hash)
                .build()
                .unwrap(),
        )
        .attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name("pk")
                .attribute_type(ScalarAttributeType::S)
                .build()
                .unwrap(),
        )
        .sse_specification(
            SseSpecification::builder()
                .enabled(true)
                .kms_master_key_id("alias/does-not-exist")
                .build(),
        )
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&err), "ValidationException");
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn describe_limits_and_endpoints() {
    let srv = TestServer::start().await;
    let c = srv.client();
    let l = c.describe_limits().send().await.unwrap();
    assert_eq!(l.table_max_read_capacity_units(), Some(40000));
    assert_eq!(l.account_max_write_capacity_units(), Some(80000));
    let e = c.describe_endpoints().send().await.unwrap();
    let ep = &e.endpoints()[0];
    assert_eq!(ep.address(), srv.endpoint.trim_start_matches("http://"));
    assert_eq!(ep.cache_period_in_minutes(), 1440);
    srv.stop().await;
}
