//! The rest of the table API through aws-sdk-dynamodb: UpdateTable, time to live (with the
//! background sweeper), tags, and the IAM condition keys that tags feed.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use aws_sdk_dynamodb::types::{
    AttributeValue as Av, BillingMode, ProvisionedThroughput, ScalarAttributeType, TableClass, Tag,
    TimeToLiveSpecification, TimeToLiveStatus,
};
use aws_sdk_dynamodb::Client;
use common::*;
use sealdb::ops::admin::{run, AdminInput};
use sealdb::protocol::AdminOp;

const VALIDATION: &str = "ValidationException";
const DENIED: &str = "AccessDeniedException";

fn tag(k: &str, v: &str) -> Tag {
    Tag::builder().key(k).value(v).build().unwrap()
}

fn throughput(r: i64, w: i64) -> ProvisionedThroughput {
    ProvisionedThroughput::builder()
        .read_capacity_units(r)
        .write_capacity_units(w)
        .build()
        .unwrap()
}

fn ttl_spec(enabled: bool, attr: &str) -> TimeToLiveSpecification {
    TimeToLiveSpecification::builder()
        .enabled(enabled)
        .attribute_name(attr)
        .build()
        .unwrap()
}

fn now_secs() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

async fn table_arn(c: &Client, name: &str) -> String {
    c.describe_table()
        .table_name(name)
        .send()
        .await
        .unwrap()
        .table()
        .unwrap()
        .table_arn()
        .unwrap()
        .to_string()
}

/// Every tag of a resource, following NextToken; also the size of each page.
async fn all_tags(c: &Client, arn: &str) -> (BTreeMap<String, String>, Vec<usize>) {
    let mut tags = BTreeMap::new();
    let mut pages = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let out = c
            .list_tags_of_resource()
            .resource_arn(arn)
            .set_next_token(token.clone())
            .send()
            .await
            .unwrap();
        pages.push(out.tags().len());
        for t in out.tags() {
            tags.insert(t.key().to_string(), t.value().to_string());
        }
        match out.next_token() {
            Some(t) => token = Some(t.to_string()),
            None => return (tags, pages),
        }
    }
}

/// Creates a user with the given inline policies and returns a client signed as that user.
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn update_table_settings_are_validated_applied_and_described() {
    let srv = TestServer::start().await;
    let c = srv.client();
    create_table(&c, "Settings", None).await;

    // Nothing to change.
    let e = c
        .update_table()
        .table_name("Settings")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&e), VALIDATION);
    assert!(message(&e).starts_with("At least one of ProvisionedThroughput, BillingMode"));

    // PROVISIONED needs throughput; PAY_PER_REQUEST refuses it.
    let e = c
        .update_table()
        .table_name("Settings")
        .billing_mode(BillingMode::Provisioned)
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        message(&e),
        "One or more parameter values were invalid: ProvisionedThroughput must be specified when BillingMode is PROVISIONED"
    );
    let e = c
        .update_table()
        .table_name("Settings")
        .provisioned_throughput(throughput(5, 7))
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        message(&e),
        "One or more parameter values were invalid: Neither ReadCapacityUnits nor WriteCapacityUnits can be specified when BillingMode is PAY_PER_REQUEST"
    );

    // Switch to PROVISIONED 5/7: reported by UpdateTable and DescribeTable.
    let out = c
        .update_table()
        .table_name("Settings")
        .billing_mode(BillingMode::Provisioned)
        .provisioned_throughput(throughput(5, 7))
        .send()
        .await
        .unwrap();
    let d = out.table_description().unwrap();
    assert_eq!(
        d.billing_mode_summary().unwrap().billing_mode(),
        Some(&BillingMode::Provisioned)
    );
    let t = c
        .describe_table()
        .table_name("Settings")
        .send()
        .await
        .unwrap();
    let t = t.table().unwrap();
    assert_eq!(
        t.billing_mode_summary().unwrap().billing_mode(),
        Some(&BillingMode::Provisioned)
    );
    let pt = t.provisioned_throughput().unwrap();
    assert_eq!(
        (pt.read_capacity_units(), pt.write_capacity_units()),
        (Some(5), Some(7))
    );
    assert_eq!(t.table_status().map(|s| s.as_str()), Some("ACTIVE"));

    // The same throughput again changes nothing: DynamoDB refuses it.
    let e = c
        .update_table()
        .table_name("Settings")
        .provisioned_throughput(throughput(5, 7))
        .send()
        .await
        .unwrap_err();
    assert!(
        message(&e).starts_with("The provisioned throughput for the table will not change."),
        "{}",
        message(&e)
    );
    // A new throughput on a PROVISIONED table needs no BillingMode; the ARN names the table.
    let arn = table_arn(&c, "Settings").await;
    c.update_table()
        .table_name(&arn)
        .provisioned_throughput(throughput(10, 3))
        .send()
        .await
        .unwrap();
    let t = c
        .describe_table()
        .table_name("Settings")
        .send()
        .await
        .unwrap();
    let pt = t.table().unwrap().provisioned_throughput().unwrap();
    assert_eq!(
        (pt.read_capacity_units(), pt.write_capacity_units()),
        (Some(10), Some(3))
    );
    let e = c
        .update_table()
        .table_name("Settings")
        .provisioned_throughput(throughput(0, 1))
        .send()
        .await
        .unwrap_err();
    assert!(message(&e).contains("Member must have value greater than or equal to 1"));

    // Back to on-demand.
    c.update_table()
        .table_name("Settings")
        .billing_mode(BillingMode::PayPerRequest)
        .send()
        .await
        .unwrap();
    let t = c
        .describe_table()
        .table_name("Settings")
        .send()
        .await
        .unwrap();
    let t = t.table().unwrap();
    assert_eq!(
        t.billing_mode_summary().unwrap().billing_mode(),
        Some(&BillingMode::PayPerRequest)
    );
    assert!(t
        .billing_mode_summary()
        .unwrap()
        .last_update_to_pay_per_request_date_time()
        .is_some());
    assert_eq!(
        t.provisioned_throughput().unwrap().read_capacity_units(),
        Some(0)
    );

    // Table class.
    c.update_table()
        .table_name("Settings")
        .table_class(TableClass::StandardInfrequentAccess)
        .send()
        .await
        .unwrap();
    let t = c
        .describe_table()
        .table_name("Settings")
        .send()
        .await
        .unwrap();
    assert_eq!(
        t.table()
            .unwrap()
            .table_class_summary()
            .unwrap()
            .table_class(),
        Some(&TableClass::StandardInfrequentAccess)
    );
    let e = c
        .update_table()
        .table_name("Settings")
        .table_class(TableClass::from("COLD"))
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&e), VALIDATION);
    assert!(message(&e).starts_with("Invalid table-class parameter provided"));

    // Deletion protection must be the only change, and then blocks DeleteTable.
    let e = c
        .update_table()
        .table_name("Settings")
        .deletion_protection_enabled(true)
        .billing_mode(BillingMode::PayPerRequest)
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        message(&e),
        "One or more parameter values were invalid: DeletionProtection modification must be the only operation in the request"
    );
    c.update_table()
        .table_name("Settings")
        .deletion_protection_enabled(true)
        .send()
        .await
        .unwrap();
    let t = c
        .describe_table()
        .table_name("Settings")
        .send()
        .await
        .unwrap();
    assert_eq!(t.table().unwrap().deletion_protection_enabled(), Some(true));
    let e = c
        .delete_table()
        .table_name("Settings")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&e), VALIDATION);
    assert_eq!(
        message(&e),
        "Resource cannot be deleted as it is currently protected against deletion. Disable deletion protection first."
    );
    c.update_table()
        .table_name("Settings")
        .deletion_protection_enabled(false)
        .send()
        .await
        .unwrap();
    c.delete_table()
        .table_name("Settings")
        .send()
        .await
        .unwrap();

    // A table that does not exist.
    let e = c
        .update_table()
        .table_name("Nope")
        .billing_mode(BillingMode::PayPerRequest)
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&e), "ResourceNotFoundException");

    // Settings survive a restart (they live in the sealed catalog record).
    create_table(&c, "Durable", None).await;
    c.update_table()
        .table_name("Durable")
        .table_class(TableClass::StandardInfrequentAccess)
        .send()
        .await
        .unwrap();
    let dir = srv.stop().await;
    let srv = TestServer::start_in(dir).await;
    let t = srv
        .client()
        .describe_table()
        .table_name("Durable")
        .send()
        .await
        .unwrap();
    assert_eq!(
        t.table()
            .unwrap()
            .table_class_summary()
            .unwrap()
            .table_class(),
        Some(&TableClass::StandardInfrequentAccess)
    );
    srv.stop().await;
}

async fn put_with(c: &Client, table: &str, pk: &str, sk: i64, exp: Option<Av>) {
    let mut req = c
        .put_item()
        .table_name(table)
        .item("pk", Av::S(pk.into()))
        .item("sk", Av::N(sk.to_string()));
    if let Some(v) = exp {
        req = req.item("exp", v);
    }
    req.send().await.unwrap();
}

async fn sort_keys(c: &Client, table: &str, pk: &str) -> Vec<String> {
    let out = c
        .query()
        .table_name(table)
        .key_condition_expression("pk = :p")
        .expression_attribute_values(":p", Av::S(pk.into()))
        .consistent_read(true)
        .send()
        .await
        .unwrap();
    out.items()
        .iter()
        .map(|i| i["sk"].as_n().unwrap().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ttl_sweeper_deletes_expired_items_and_only_those() {
    let dir = tempfile::tempdir().unwrap();
    let srv = TestServer::start_with(dir, |cfg| cfg.ttl.sweep_interval_ms = 200).await;
    let c = srv.client();
    create_table(&c, "Ttl", Some(ScalarAttributeType::N)).await;

    let d = c
        .describe_time_to_live()
        .table_name("Ttl")
        .send()
        .await
        .unwrap();
    assert_eq!(
        d.time_to_live_description().unwrap().time_to_live_status(),
        Some(&TimeToLiveStatus::Disabled)
    );

    let now = now_secs();
    let n = |v: i64| Some(Av::N(v.to_string()));
    put_with(&c, "Ttl", "p", 1, n(now - 100)).await; // expired
    put_with(&c, "Ttl", "p", 2, n(now + 3600)).await; // in the future
    put_with(&c, "Ttl", "p", 3, Some(Av::S((now - 100).to_string()))).await; // not a number
    put_with(&c, "Ttl", "p", 4, None).await; // no expiry
    put_with(&c, "Ttl", "p", 5, n(1)).await; // more than five years old: never expires
    put_with(&c, "Ttl", "p", 6, n(now - 5)).await; // expired
    put_with(&c, "Ttl", "q", 1, n(now - 1)).await; // expired, alone in its partition

    // TTL still disabled: nothing is swept.
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(sort_keys(&c, "Ttl", "p").await.len(), 6);

    let out = c
        .update_time_to_live()
        .table_name("Ttl")
        .time_to_live_specification(ttl_spec(true, "exp"))
        .send()
        .await
        .unwrap();
    let spec = out.time_to_live_specification().unwrap();
    assert!(spec.enabled());
    assert_eq!(spec.attribute_name(), "exp");
    let e = c
        .update_time_to_live()
        .table_name("Ttl")
        .time_to_live_specification(ttl_spec(true, "exp"))
        .send()
        .await
        .unwrap_err();
    assert_eq!(message(&e), "TimeToLive is already enabled");
    let e = c
        .update_time_to_live()
        .table_name("Ttl")
        .time_to_live_specification(ttl_spec(true, "other"))
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        message(&e),
        "TimeToLive is active on a different AttributeName: current AttributeName is exp"
    );
    let d = c
        .describe_time_to_live()
        .table_name("Ttl")
        .send()
        .await
        .unwrap();
    let d = d.time_to_live_description().unwrap();
    assert_eq!(d.time_to_live_status(), Some(&TimeToLiveStatus::Enabled));
    assert_eq!(d.attribute_name(), Some("exp"));

    // The expired items disappear within a few sweep periods (generous bound for slow CI).
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let left = sort_keys(&c, "Ttl", "p").await;
        let q = sort_keys(&c, "Ttl", "q").await;
        if left == ["2", "3", "4", "5"] && q.is_empty() {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "expired items not swept: {left:?} {q:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Gone from the base table too, and counted.
    let got = c
        .get_item()
        .table_name("Ttl")
        .key("pk", Av::S("p".into()))
        .key("sk", Av::N("1".into()))
        .consistent_read(true)
        .send()
        .await
        .unwrap();
    assert!(got.item().is_none());
    let scan = c.scan().table_name("Ttl").send().await.unwrap();
    assert_eq!(scan.count(), 4);

    // Disabling: the attribute must match; twice is an error.
    let e = c
        .update_time_to_live()
        .table_name("Ttl")
        .time_to_live_specification(ttl_spec(false, "other"))
        .send()
        .await
        .unwrap_err();
    assert!(message(&e).starts_with("TimeToLive is active on a different AttributeName"));
    c.update_time_to_live()
        .table_name("Ttl")
        .time_to_live_specification(ttl_spec(false, "exp"))
        .send()
        .await
        .unwrap();
    let e = c
        .update_time_to_live()
        .table_name("Ttl")
        .time_to_live_specification(ttl_spec(false, "exp"))
        .send()
        .await
        .unwrap_err();
    assert_eq!(message(&e), "TimeToLive is already disabled");
    // Disabled again: a newly expired item stays.
    put_with(&c, "Ttl", "p", 7, n(now_secs() - 10)).await;
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert!(sort_keys(&c, "Ttl", "p").await.contains(&"7".to_string()));

    let e = c
        .describe_time_to_live()
        .table_name("Missing")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&e), "ResourceNotFoundException");
    srv.stop().await;
}

/// The `sk` values of one index partition (`attr` = `v`), sorted.
async fn index_sort_keys(c: &Client, table: &str, index: &str, attr: &str, v: Av) -> Vec<i64> {
    let out = c
        .query()
        .table_name(table)
        .index_name(index)
        .key_condition_expression("#k = :v")
        .expression_attribute_names("#k", attr)
        .expression_attribute_values(":v", v)
        .send()
        .await
        .unwrap();
    let mut sks: Vec<i64> = out
        .items()
        .iter()
        .map(|i| i["sk"].as_n().unwrap().parse().unwrap())
        .collect();
    sks.sort_unstable();
    sks
}

/// The sweeper deletes the GSI and LSI entries of the items it expires, and only theirs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ttl_sweeper_removes_index_entries_of_expired_items() {
    use aws_sdk_dynamodb::types::{
        AttributeDefinition, GlobalSecondaryIndex, KeySchemaElement, KeyType, LocalSecondaryIndex,
        Projection, ProjectionType,
    };
    let key = |n: &str, t: KeyType| {
        KeySchemaElement::builder()
            .attribute_name(n)
            .key_type(t)
            .build()
            .unwrap()
    };
    let attr = |n: &str, t: ScalarAttributeType| {
        AttributeDefinition::builder()
            .attribute_name(n)
            .attribute_type(t)
            .build()
            .unwrap()
    };
    let all = || {
        Projection::builder()
            .projection_type(ProjectionType::All)
            .build()
    };
    let dir = tempfile::tempdir().unwrap();
    let srv = TestServer::start_with(dir, |cfg| cfg.ttl.sweep_interval_ms = 200).await;
    let c = srv.client();
    c.create_table()
        .table_name("TtlIdx")
        .billing_mode(BillingMode::PayPerRequest)
        .key_schema(key("pk", KeyType::Hash))
        .key_schema(key("sk", KeyType::Range))
        .attribute_definitions(attr("pk", ScalarAttributeType::S))
        .attribute_definitions(attr("sk", ScalarAttributeType::N))
        .attribute_definitions(attr("g", ScalarAttributeType::S))
        .attribute_definitions(attr("l", ScalarAttributeType::N))
        .global_secondary_indexes(
            GlobalSecondaryIndex::builder()
                .index_name("byG")
                .key_schema(key("g", KeyType::Hash))
                .key_schema(key("sk", KeyType::Range))
                .projection(all())
                .build()
                .unwrap(),
        )
        .local_secondary_indexes(
            LocalSecondaryIndex::builder()
                .index_name("byL")
                .key_schema(key("pk", KeyType::Hash))
                .key_schema(key("l", KeyType::Range))
                .projection(all())
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    c.update_time_to_live()
        .table_name("TtlIdx")
        .time_to_live_specification(ttl_spec(true, "exp"))
        .send()
        .await
        .unwrap();
    let now = now_secs();
    // sk 1..=8; odd ones expired, even ones live (in the future or without expiry).
    for sk in 1..=8i64 {
        let mut req = c
            .put_item()
            .table_name("TtlIdx")
            .item("pk", Av::S("p".into()))
            .item("sk", Av::N(sk.to_string()))
            .item("g", Av::S(if sk <= 4 { "A" } else { "B" }.into()))
            .item("l", Av::N((100 - sk).to_string()));
        let exp = match sk % 4 {
            1 | 3 => Some(now - 50 * sk),
            2 => Some(now + 3600),
            _ => None,
        };
        if let Some(e) = exp {
            req = req.item("exp", Av::N(e.to_string()));
        }
        req.send().await.unwrap();
    }
    assert_eq!(
        index_sort_keys(&c, "TtlIdx", "byG", "g", Av::S("A".into())).await,
        [1, 2, 3, 4]
    );
    assert_eq!(
        index_sort_keys(&c, "TtlIdx", "byL", "pk", Av::S("p".into())).await,
        [1, 2, 3, 4, 5, 6, 7, 8]
    );

    // Generous bound for slow CI; the sweep period is 200 ms.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        if sort_keys(&c, "TtlIdx", "p").await == ["2", "4", "6", "8"] {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "expired items not swept"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        index_sort_keys(&c, "TtlIdx", "byG", "g", Av::S("A".into())).await,
        [2, 4]
    );
    assert_eq!(
        index_sort_keys(&c, "TtlIdx", "byG", "g", Av::S("B".into())).await,
        [6, 8]
    );
    assert_eq!(
        index_sort_keys(&c, "TtlIdx", "byL", "pk", Av::S("p".into())).await,
        [2, 4, 6, 8]
    );
    // Index scans agree: no stray entries outside the queried partitions.
    for index in ["byG", "byL"] {
        let scan = c
            .scan()
            .table_name("TtlIdx")
            .index_name(index)
            .send()
            .await
            .unwrap();
        assert_eq!(scan.count(), 4, "{index}");
    }
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_items_stay_readable_until_swept() {
    let dir = tempfile::tempdir().unwrap();
    // A sweep period far beyond the test: nothing is swept while it runs.
    let srv = TestServer::start_with(dir, |cfg| cfg.ttl.sweep_interval_ms = 3_600_000).await;
    let c = srv.client();
    create_table(&c, "Lazy", None).await;
    c.update_time_to_live()
        .table_name("Lazy")
        .time_to_live_specification(ttl_spec(true, "exp"))
        .send()
        .await
        .unwrap();
    c.put_item()
        .table_name("Lazy")
        .item("pk", Av::S("old".into()))
        .item("exp", Av::N((now_secs() - 1000).to_string()))
        .send()
        .await
        .unwrap();
    let got = c
        .get_item()
        .table_name("Lazy")
        .key("pk", Av::S("old".into()))
        .send()
        .await
        .unwrap();
    assert!(
        got.item().is_some(),
        "DynamoDB returns expired, unswept items"
    );
    assert_eq!(c.scan().table_name("Lazy").send().await.unwrap().count(), 1);

    // One sweep period, run by hand: the expired item goes, a live one stays.
    c.put_item()
        .table_name("Lazy")
        .item("pk", Av::S("live".into()))
        .item("exp", Av::N((now_secs() + 1000).to_string()))
        .send()
        .await
        .unwrap();
    let mut cursors = std::collections::HashMap::new();
    let deleted = sealdb::ops::ttl::sweep_once(srv.services(), &mut cursors).await;
    assert_eq!(deleted, 1);
    let scan = c.scan().table_name("Lazy").send().await.unwrap();
    assert_eq!(scan.count(), 1);
    assert_eq!(scan.items()[0]["pk"].as_s().unwrap(), "live");

    // A period deletes a bounded batch; the next period resumes and finishes.
    let expired = (now_secs() - 60).to_string();
    for chunk in 0..48 {
        let mut req = c.batch_write_item();
        let writes: Vec<_> = (0..25)
            .map(|i| {
                let put = aws_sdk_dynamodb::types::PutRequest::builder()
                    .item("pk", Av::S(format!("bulk{chunk:02}-{i:02}")))
                    .item("exp", Av::N(expired.clone()))
                    .build()
                    .unwrap();
                aws_sdk_dynamodb::types::WriteRequest::builder()
                    .put_request(put)
                    .build()
            })
            .collect();
        req = req.request_items("Lazy", writes);
        let out = req.send().await.unwrap();
        assert!(out.unprocessed_items().is_none_or(|u| u.is_empty()));
    }
    let first = sealdb::ops::ttl::sweep_once(srv.services(), &mut cursors).await;
    assert!(first > 0 && first < 1200, "bounded batch: {first}");
    let mut total = first;
    while total < 1200 {
        let n = sealdb::ops::ttl::sweep_once(srv.services(), &mut cursors).await;
        assert!(n > 0, "each period makes progress ({total} of 1200)");
        total += n;
    }
    assert_eq!(total, 1200);
    assert_eq!(c.scan().table_name("Lazy").send().await.unwrap().count(), 1);
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tags_round_trip_with_limits_and_paging() {
    let srv = TestServer::start().await;
    let c = srv.client();
    table_request(&c, "Tagged", None)
        .tags(tag("env", "prod"))
        .tags(tag("empty", ""))
        .send()
        .await
        .unwrap();
    let arn = table_arn(&c, "Tagged").await;
    let (tags, _) = all_tags(&c, &arn).await;
    assert_eq!(
        tags,
        BTreeMap::from([
            ("empty".to_string(), String::new()),
            ("env".to_string(), "prod".to_string())
        ])
    );

    // Add 28 more (30 in all), overwrite one: pages of at most 10, NextToken until the end.
    let mut req = c.tag_resource().resource_arn(&arn);
    for i in 0..28 {
        req = req.tags(tag(&format!("k{i:02}"), &format!("v{i}")));
    }
    req.tags(tag("env", "staging")).send().await.unwrap();
    let (tags, pages) = all_tags(&c, &arn).await;
    assert_eq!(tags.len(), 30);
    assert_eq!(tags["env"], "staging");
    assert!(pages.len() >= 3, "paged: {pages:?}");
    assert!(pages.iter().all(|n| *n <= 10), "{pages:?}");

    // Untag: unknown keys are not an error.
    c.untag_resource()
        .resource_arn(&arn)
        .tag_keys("k00")
        .tag_keys("never-there")
        .send()
        .await
        .unwrap();
    let (tags, _) = all_tags(&c, &arn).await;
    assert_eq!(tags.len(), 29);
    assert!(!tags.contains_key("k00"));

    // 50 tags at most.
    let mut req = c.tag_resource().resource_arn(&arn);
    for i in 0..22 {
        req = req.tags(tag(&format!("x{i:02}"), "v"));
    }
    let e = req.send().await.unwrap_err();
    assert_eq!(code(&e), VALIDATION);
    assert_eq!(
        message(&e),
        "Number of Tags exceed the current limit for the provided ResourceArn"
    );
    assert_eq!(all_tags(&c, &arn).await.0.len(), 29, "nothing applied");
    let mut req = c.tag_resource().resource_arn(&arn);
    for i in 0..21 {
        req = req.tags(tag(&format!("x{i:02}"), "v"));
    }
    req.send().await.unwrap();
    assert_eq!(all_tags(&c, &arn).await.0.len(), 50);

    // Key and value rules.
    let bad = |k: &str, v: &str| {
        let c = c.clone();
        let arn = arn.clone();
        let (k, v) = (k.to_string(), v.to_string());
        async move {
            let e = c
                .tag_resource()
                .resource_arn(&arn)
                .tags(tag(&k, &v))
                .send()
                .await
                .unwrap_err();
            (code(&e), message(&e))
        }
    };
    assert_eq!(
        bad("aws:owner", "x").await,
        (
            VALIDATION.to_string(),
            "Tag Key cannot be prefixed with aws:, Key: aws:owner".to_string()
        )
    );
    assert_eq!(
        bad("hi!", "x").await.1,
        "The Tag Key provided is invalid, Key: hi!"
    );
    assert_eq!(
        bad("env", "d%g").await.1,
        "The Tag Value provided is invalid, Value: d%g"
    );
    assert_eq!(bad(&"k".repeat(129), "x").await.0, VALIDATION);
    assert_eq!(bad("env", &"v".repeat(257)).await.0, VALIDATION);
    let e = c
        .tag_resource()
        .resource_arn(&arn)
        .set_tags(Some(vec![]))
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        message(&e),
        "Atleast one Tag needs to be provided as Input."
    );

    // ARNs.
    let e = c
        .list_tags_of_resource()
        .resource_arn("Tagged")
        .send()
        .await
        .unwrap_err();
    assert!(message(&e).contains("ARNs must start with 'arn:'"));
    let e = c
        .list_tags_of_resource()
        .resource_arn(format!("{arn}/index/gsi"))
        .send()
        .await
        .unwrap_err();
    assert!(message(&e).contains("only table or stream is accepted"));
    let e = c
        .tag_resource()
        .resource_arn(format!("{arn}x"))
        .tags(tag("a", "b"))
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&e), "ResourceNotFoundException");

    // CreateTable refuses bad tags and creates nothing.
    let mut req = table_request(&c, "TooMany", None);
    for i in 0..51 {
        req = req.tags(tag(&format!("t{i}"), "v"));
    }
    let e = req.send().await.unwrap_err();
    assert_eq!(code(&e), VALIDATION);
    let e = c
        .describe_table()
        .table_name("TooMany")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&e), "ResourceNotFoundException");
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tag_condition_keys_drive_iam_decisions() {
    let srv = TestServer::start().await;
    let admin = srv.client();
    table_request(&admin, "ProdT", None)
        .tags(tag("env", "prod"))
        .send()
        .await
        .unwrap();
    table_request(&admin, "DevT", None)
        .tags(tag("env", "dev"))
        .send()
        .await
        .unwrap();
    create_table(&admin, "Untagged", None).await;

    // aws:ResourceTag: data access only to tables tagged env=prod.
    let prod_only = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow",
        "Action":["dynamodb:GetItem","dynamodb:PutItem","dynamodb:DescribeTimeToLive"],
        "Resource":"*","Condition":{"StringEquals":{"aws:ResourceTag/env":"prod"}}}]}"#;
    let u = user(&srv, "prodop", &[("prod", prod_only.to_string())]).await;
    let put = |c: &Client, t: &str| {
        c.put_item()
            .table_name(t)
            .item("pk", Av::S("k".into()))
            .send()
    };
    assert!(put(&u, "ProdT").await.is_ok());
    assert_eq!(code(&put(&u, "DevT").await.unwrap_err()), DENIED);
    assert_eq!(
        code(&put(&u, "Untagged").await.unwrap_err()),
        DENIED,
        "an absent tag does not match"
    );
    assert!(u
        .describe_time_to_live()
        .table_name("ProdT")
        .send()
        .await
        .is_ok());
    // Re-tagging is effective on the next request.
    let dev_arn = table_arn(&admin, "DevT").await;
    admin
        .tag_resource()
        .resource_arn(&dev_arn)
        .tags(tag("env", "prod"))
        .send()
        .await
        .unwrap();
    assert!(put(&u, "DevT").await.is_ok());

    // aws:RequestTag and aws:TagKeys on TagResource/UntagResource, aws:RequestTag on
    // CreateTable.
    let taggers = r#"{"Version":"2012-10-17","Statement":[
        {"Effect":"Allow","Action":"dynamodb:TagResource","Resource":"*","Condition":{
            "StringEquals":{"aws:RequestTag/team":"blue"},
            "ForAllValues:StringEquals":{"aws:TagKeys":["team"]}}},
        {"Effect":"Allow","Action":"dynamodb:UntagResource","Resource":"*","Condition":{
            "ForAllValues:StringEquals":{"aws:TagKeys":["team"]}}},
        {"Effect":"Allow","Action":"dynamodb:CreateTable","Resource":"*","Condition":{
            "StringEquals":{"aws:RequestTag/env":"dev"}}}]}"#;
    let t = user(&srv, "tagger", &[("tags", taggers.to_string())]).await;
    let prod_arn = table_arn(&admin, "ProdT").await;
    let tag_it = |tags: Vec<Tag>| {
        t.tag_resource()
            .resource_arn(&prod_arn)
            .set_tags(Some(tags))
            .send()
    };
    assert!(tag_it(vec![tag("team", "blue")]).await.is_ok());
    assert_eq!(
        code(&tag_it(vec![tag("team", "red")]).await.unwrap_err()),
        DENIED
    );
    assert_eq!(
        code(
            &tag_it(vec![tag("team", "blue"), tag("owner", "x")])
                .await
                .unwrap_err()
        ),
        DENIED,
        "aws:TagKeys holds every key of the request"
    );
    let untag = |k: &str| {
        t.untag_resource()
            .resource_arn(&prod_arn)
            .tag_keys(k)
            .send()
    };
    assert!(untag("team").await.is_ok());
    assert_eq!(code(&untag("env").await.unwrap_err()), DENIED);
    let (tags, _) = all_tags(&admin, &prod_arn).await;
    assert_eq!(tags.get("env").map(String::as_str), Some("prod"));
    assert!(!tags.contains_key("team"));

    assert!(table_request(&t, "ByTagger", None)
        .tags(tag("env", "dev"))
        .send()
        .await
        .is_ok());
    let e = table_request(&t, "ByTagger2", None)
        .tags(tag("env", "prod"))
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&e), DENIED);
    let e = table_request(&t, "ByTagger3", None)
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&e), DENIED, "no tags: aws:RequestTag/env is absent");
    srv.stop().await;
}
