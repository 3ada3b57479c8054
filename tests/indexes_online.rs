//! Online GSI changes through aws-sdk-dynamodb: UpdateTable adds an index to a populated
//! table (backfilled, with writes during the backfill), deletes one, and refuses what
//! DynamoDB refuses; an index left CREATING by a stopped server is finished at start.

mod common;
mod item_helpers;

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue as Av, BillingMode, CreateGlobalSecondaryIndexAction,
    DeleteGlobalSecondaryIndexAction, GlobalSecondaryIndexUpdate, KeySchemaElement, KeyType,
    Projection, ProjectionType, PutRequest, ScalarAttributeType, WriteRequest,
};
use aws_sdk_dynamodb::Client;
use common::*;
use item_helpers::*;

/// How long a test waits for a backfill before failing (a bound, not a timing assertion).
const WAIT_LIMIT: Duration = Duration::from_secs(120);

fn ks(hash: &str, range: Option<&str>) -> Vec<KeySchemaElement> {
    let mut v = vec![KeySchemaElement::builder()
        .attribute_name(hash)
        .key_type(KeyType::Hash)
        .build()
        .unwrap()];
    if let Some(r) = range {
        v.push(
            KeySchemaElement::builder()
                .attribute_name(r)
                .key_type(KeyType::Range)
                .build()
                .unwrap(),
        );
    }
    v
}

fn attr(n: &str, t: ScalarAttributeType) -> AttributeDefinition {
    AttributeDefinition::builder()
        .attribute_name(n)
        .attribute_type(t)
        .build()
        .unwrap()
}

fn proj(t: ProjectionType, include: &[&str]) -> Projection {
    let mut p = Projection::builder().projection_type(t);
    for a in include {
        p = p.non_key_attributes(*a);
    }
    p.build()
}

fn create_action(
    name: &str,
    hash: &str,
    range: Option<&str>,
    p: Projection,
) -> GlobalSecondaryIndexUpdate {
    GlobalSecondaryIndexUpdate::builder()
        .create(
            CreateGlobalSecondaryIndexAction::builder()
                .index_name(name)
                .set_key_schema(Some(ks(hash, range)))
                .projection(p)
                .build()
                .unwrap(),
        )
        .build()
}

fn delete_action(name: &str) -> GlobalSecondaryIndexUpdate {
    GlobalSecondaryIndexUpdate::builder()
        .delete(
            DeleteGlobalSecondaryIndexAction::builder()
                .index_name(name)
                .build()
                .unwrap(),
        )
        .build()
}

async fn create_table(c: &Client, name: &str) {
    c.create_table()
        .table_name(name)
        .billing_mode(BillingMode::PayPerRequest)
        .set_key_schema(Some(ks("pk", Some("sk"))))
        .attribute_definitions(attr("pk", ScalarAttributeType::S))
        .attribute_definitions(attr("sk", ScalarAttributeType::N))
        .send()
        .await
        .expect("create table");
}

/// Item i of partition `pk`: g cycles over 5 values (absent on every 7th item, a number on
/// every 11th: both stay out of an index on g S), gs = i % 13, a and b payloads.
fn row(pk: &str, i: i64) -> Item {
    let mut m = HashMap::from([
        ("pk".to_string(), s(pk)),
        ("sk".to_string(), n(i)),
        ("gs".to_string(), n(i % 13)),
        ("a".to_string(), s(&format!("a{i}"))),
        ("b".to_string(), s(&format!("b{i}"))),
        ("h".to_string(), s(&format!("h{}", i % 3))),
    ]);
    if i % 11 == 0 {
        m.insert("g".to_string(), n(i));
    } else if i % 7 != 0 {
        m.insert("g".to_string(), s(&format!("g{}", i % 5)));
    }
    m
}

async fn populate(c: &Client, table: &str, count: i64) {
    let mut reqs = Vec::new();
    for i in 0..count {
        let pk = format!("p{}", i % 4);
        reqs.push(
            WriteRequest::builder()
                .put_request(
                    PutRequest::builder()
                        .set_item(Some(row(&pk, i)))
                        .build()
                        .unwrap(),
                )
                .build(),
        );
        if reqs.len() == 25 || i + 1 == count {
            let mut pending = HashMap::from([(table.to_string(), std::mem::take(&mut reqs))]);
            while !pending.is_empty() {
                let out = c
                    .batch_write_item()
                    .set_request_items(Some(pending))
                    .send()
                    .await
                    .unwrap();
                pending = out.unprocessed_items().cloned().unwrap_or_default();
            }
        }
    }
}

async fn scan_all(c: &Client, table: &str, index: Option<&str>) -> Vec<Item> {
    let mut out = Vec::new();
    let mut start = None;
    loop {
        let r = c
            .scan()
            .table_name(table)
            .set_index_name(index.map(String::from))
            .set_exclusive_start_key(start)
            .send()
            .await
            .unwrap();
        out.extend(r.items().iter().cloned());
        start = r.last_evaluated_key().cloned();
        if start.is_none() {
            return out;
        }
    }
}

async fn query_all(c: &Client, table: &str, index: &str, attr: &str, v: Av) -> Vec<Item> {
    let mut out = Vec::new();
    let mut start = None;
    loop {
        let r = c
            .query()
            .table_name(table)
            .index_name(index)
            .key_condition_expression("#k = :v")
            .expression_attribute_names("#k", attr)
            .expression_attribute_values(":v", v.clone())
            .set_exclusive_start_key(start)
            .limit(17)
            .send()
            .await
            .unwrap();
        out.extend(r.items().iter().cloned());
        start = r.last_evaluated_key().cloned();
        if start.is_none() {
            return out;
        }
    }
}

/// (IndexStatus, Backfilling) of a GSI, or None when DescribeTable no longer lists it.
async fn gsi_status(c: &Client, table: &str, index: &str) -> Option<(String, Option<bool>)> {
    let d = c.describe_table().table_name(table).send().await.unwrap();
    let t = d.table().unwrap();
    t.global_secondary_indexes()
        .iter()
        .find(|g| g.index_name() == Some(index))
        .map(|g| {
            (
                g.index_status()
                    .map(|s| s.as_str().to_string())
                    .unwrap_or_default(),
                g.backfilling(),
            )
        })
}

async fn wait_active(c: &Client, table: &str, index: &str) {
    let deadline = tokio::time::Instant::now() + WAIT_LIMIT;
    loop {
        let st = gsi_status(c, table, index).await.expect("index listed");
        if st.0 == "ACTIVE" {
            assert_eq!(st.1, None, "Backfilling is only reported while CREATING");
            return;
        }
        assert_eq!(st.0, "CREATING");
        assert!(
            tokio::time::Instant::now() < deadline,
            "backfill did not finish"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn wait_gone(c: &Client, table: &str, index: &str) {
    let deadline = tokio::time::Instant::now() + WAIT_LIMIT;
    while let Some(st) = gsi_status(c, table, index).await {
        assert_eq!(st.0, "DELETING");
        assert!(tokio::time::Instant::now() < deadline, "index not removed");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn only(item: &Item, names: &[&str]) -> Item {
    item.iter()
        .filter(|(k, _)| names.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

fn sort_key(i: &Item) -> String {
    let mut v: Vec<String> = i.iter().map(|(k, v)| format!("{k}={v:?}")).collect();
    v.sort();
    v.join(",")
}

/// Checks the GSI (g S, gs N) projecting `names` against the base table: per g value, the
/// entries are exactly the projections of the items whose g is a string, in gs order.
async fn assert_consistent(c: &Client, table: &str, index: &str, names: &[&str]) {
    let base = scan_all(c, table, None).await;
    let mut want: BTreeMap<String, Vec<Item>> = BTreeMap::new();
    for item in &base {
        if let (Some(Av::S(g)), Some(Av::N(_))) = (item.get("g"), item.get("gs")) {
            want.entry(g.clone()).or_default().push(only(item, names));
        }
    }
    assert!(!want.is_empty());
    let mut total = 0;
    for (g, mut expected) in want {
        let got = query_all(c, table, index, "g", s(&g)).await;
        let gs: Vec<i64> = got.iter().map(|i| num(i, "gs")).collect();
        assert!(gs.windows(2).all(|w| w[0] <= w[1]), "sorted by gs: {gs:?}");
        let mut got_sorted = got.clone();
        got_sorted.sort_by_key(sort_key);
        expected.sort_by_key(sort_key);
        assert_eq!(got_sorted, expected, "index {index}, g = {g}");
        total += got.len();
    }
    // No entry for an item that is not in the index any more.
    assert_eq!(scan_all(c, table, Some(index)).await.len(), total);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gsi_added_online_is_backfilled_and_consistent() {
    let srv = TestServer::start().await;
    let c = srv.client();
    create_table(&c, "Online").await;
    populate(&c, "Online", 400).await;
    let out = c
        .update_table()
        .table_name("Online")
        .attribute_definitions(attr("g", ScalarAttributeType::S))
        .attribute_definitions(attr("gs", ScalarAttributeType::N))
        .global_secondary_index_updates(create_action(
            "byG",
            "g",
            Some("gs"),
            proj(ProjectionType::Include, &["a"]),
        ))
        .send()
        .await
        .expect("update table");
    let desc = out.table_description().unwrap();
    let g = &desc.global_secondary_indexes()[0];
    assert_eq!(g.index_name(), Some("byG"));
    assert_eq!(g.index_status().unwrap().as_str(), "CREATING");
    // Until ACTIVE, the index is not readable.
    let early = c
        .query()
        .table_name("Online")
        .index_name("byG")
        .key_condition_expression("g = :v")
        .expression_attribute_values(":v", s("g1"))
        .send()
        .await;
    if let Err(e) = &early {
        assert_eq!(code(e), "ValidationException");
    }
    // Writes while the index is created: new items, g changed, g removed, items deleted.
    for i in (400..440).filter(|i| i % 11 != 0) {
        put(&c, "Online", row("p9", i)).await;
    }
    // An index key of the wrong type is refused while the index is created, as once active.
    let e = c
        .put_item()
        .table_name("Online")
        .set_item(Some(row("p9", 440)))
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&e), "ValidationException");
    for i in (0..400).step_by(9) {
        let pk = format!("p{}", i % 4);
        c.update_item()
            .table_name("Online")
            .key("pk", s(&pk))
            .key("sk", n(i))
            .update_expression("SET g = :g, a = :a")
            .expression_attribute_values(":g", s("moved"))
            .expression_attribute_values(":a", s("changed"))
            .send()
            .await
            .unwrap();
    }
    for i in (1..400).step_by(10) {
        let pk = format!("p{}", i % 4);
        c.update_item()
            .table_name("Online")
            .key("pk", s(&pk))
            .key("sk", n(i))
            .update_expression("REMOVE g")
            .send()
            .await
            .unwrap();
    }
    for i in (2..400).step_by(8) {
        let pk = format!("p{}", i % 4);
        c.delete_item()
            .table_name("Online")
            .key("pk", s(&pk))
            .key("sk", n(i))
            .send()
            .await
            .unwrap();
    }
    wait_active(&c, "Online", "byG").await;
    assert_consistent(&c, "Online", "byG", &["pk", "sk", "g", "gs", "a"]).await;
    // Once ACTIVE, writes keep it consistent as for any index.
    put(&c, "Online", row("p1", 1000)).await;
    c.delete_item()
        .table_name("Online")
        .key("pk", s("p3"))
        .key("sk", n(3))
        .send()
        .await
        .unwrap();
    assert_consistent(&c, "Online", "byG", &["pk", "sk", "g", "gs", "a"]).await;
    // The new attribute definitions are the table's now.
    let d = c
        .describe_table()
        .table_name("Online")
        .send()
        .await
        .unwrap();
    let names: Vec<&str> = d
        .table()
        .unwrap()
        .attribute_definitions()
        .iter()
        .map(|a| a.attribute_name())
        .collect();
    assert_eq!(names, vec!["pk", "sk", "g", "gs"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gsi_deleted_online_disappears_and_its_name_can_be_reused() {
    let srv = TestServer::start().await;
    let c = srv.client();
    create_table(&c, "Del").await;
    populate(&c, "Del", 200).await;
    c.update_table()
        .table_name("Del")
        .attribute_definitions(attr("h", ScalarAttributeType::S))
        .global_secondary_index_updates(create_action(
            "byH",
            "h",
            None,
            proj(ProjectionType::KeysOnly, &[]),
        ))
        .send()
        .await
        .unwrap();
    wait_active(&c, "Del", "byH").await;
    let got = query_all(&c, "Del", "byH", "h", s("h1")).await;
    let base = scan_all(&c, "Del", None).await;
    let mut want: Vec<Item> = base
        .iter()
        .filter(|i| i.get("h") == Some(&s("h1")))
        .map(|i| only(i, &["pk", "sk", "h"]))
        .collect();
    let mut got_sorted = got.clone();
    got_sorted.sort_by_key(sort_key);
    want.sort_by_key(sort_key);
    assert_eq!(got_sorted, want, "KEYS_ONLY hash-only GSI after backfill");

    let out = c
        .update_table()
        .table_name("Del")
        .global_secondary_index_updates(delete_action("byH"))
        .send()
        .await
        .unwrap();
    let listed = out.table_description().unwrap().global_secondary_indexes();
    assert!(listed.iter().all(|g| g.index_name() != Some("byH")
        || g.index_status().map(|s| s.as_str()) == Some("DELETING")));
    wait_gone(&c, "Del", "byH").await;
    let e = c
        .query()
        .table_name("Del")
        .index_name("byH")
        .key_condition_expression("h = :v")
        .expression_attribute_values(":v", s("h1"))
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&e), "ValidationException");
    assert_eq!(
        message(&e),
        "The table does not have the specified index: byH"
    );
    let d = c.describe_table().table_name("Del").send().await.unwrap();
    let t = d.table().unwrap();
    assert!(t.global_secondary_indexes().is_empty());
    assert_eq!(t.attribute_definitions().len(), 2, "h is no longer defined");

    // The same name again, now INCLUDE [b] on (h, sk): no leftover of the deleted index.
    c.put_item()
        .table_name("Del")
        .item("pk", s("x"))
        .item("sk", n(1))
        .item("h", s("h1"))
        .item("b", s("bx"))
        .send()
        .await
        .unwrap();
    c.update_table()
        .table_name("Del")
        .attribute_definitions(attr("h", ScalarAttributeType::S))
        .global_secondary_index_updates(create_action(
            "byH",
            "h",
            Some("sk"),
            proj(ProjectionType::Include, &["b"]),
        ))
        .send()
        .await
        .unwrap();
    wait_active(&c, "Del", "byH").await;
    let got = query_all(&c, "Del", "byH", "h", s("h1")).await;
    let base = scan_all(&c, "Del", None).await;
    let mut want: Vec<Item> = base
        .iter()
        .filter(|i| i.get("h") == Some(&s("h1")))
        .map(|i| only(i, &["pk", "sk", "h", "b"]))
        .collect();
    let sks: Vec<i64> = got.iter().map(|i| num(i, "sk")).collect();
    assert!(sks.windows(2).all(|w| w[0] <= w[1]));
    let mut got_sorted = got.clone();
    got_sorted.sort_by_key(sort_key);
    want.sort_by_key(sort_key);
    assert_eq!(got_sorted, want);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gsi_update_validation() {
    let srv = TestServer::start().await;
    let c = srv.client();
    create_table(&c, "Val").await;
    put(&c, "Val", row("p", 1)).await;
    // Two index creations in one call.
    let e = c
        .update_table()
        .table_name("Val")
        .attribute_definitions(attr("g", ScalarAttributeType::S))
        .attribute_definitions(attr("h", ScalarAttributeType::S))
        .global_secondary_index_updates(create_action(
            "ix1",
            "g",
            None,
            proj(ProjectionType::All, &[]),
        ))
        .global_secondary_index_updates(create_action(
            "ix2",
            "h",
            None,
            proj(ProjectionType::All, &[]),
        ))
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&e), "LimitExceededException");
    assert!(message(&e).contains("Only 1 online index can be created or deleted"));
    // Deleting an index that does not exist.
    let e = c
        .update_table()
        .table_name("Val")
        .global_secondary_index_updates(delete_action("nope"))
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&e), "ResourceNotFoundException");
    // A key attribute missing from AttributeDefinitions.
    let e = c
        .update_table()
        .table_name("Val")
        .global_secondary_index_updates(create_action(
            "ix1",
            "g",
            None,
            proj(ProjectionType::All, &[]),
        ))
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&e), "ValidationException");
    assert!(
        message(&e).contains("Some index key attributes are not defined"),
        "{}",
        message(&e)
    );
    // Throughput for an index of an on-demand table.
    let e = c
        .update_table()
        .table_name("Val")
        .attribute_definitions(attr("g", ScalarAttributeType::S))
        .global_secondary_index_updates(
            GlobalSecondaryIndexUpdate::builder()
                .create(
                    CreateGlobalSecondaryIndexAction::builder()
                        .index_name("ix1")
                        .set_key_schema(Some(ks("g", None)))
                        .projection(proj(ProjectionType::All, &[]))
                        .provisioned_throughput(
                            aws_sdk_dynamodb::types::ProvisionedThroughput::builder()
                                .read_capacity_units(1)
                                .write_capacity_units(1)
                                .build()
                                .unwrap(),
                        )
                        .build()
                        .unwrap(),
                )
                .build(),
        )
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&e), "ValidationException");
    // A valid one, then the same name again.
    c.update_table()
        .table_name("Val")
        .attribute_definitions(attr("g", ScalarAttributeType::S))
        .global_secondary_index_updates(create_action(
            "ix1",
            "g",
            None,
            proj(ProjectionType::All, &[]),
        ))
        .send()
        .await
        .unwrap();
    wait_active(&c, "Val", "ix1").await;
    let e = c
        .update_table()
        .table_name("Val")
        .attribute_definitions(attr("g", ScalarAttributeType::S))
        .global_secondary_index_updates(create_action(
            "ix1",
            "g",
            None,
            proj(ProjectionType::All, &[]),
        ))
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&e), "ValidationException");
    assert!(message(&e).contains("already exists"), "{}", message(&e));
    // A create and a delete together are two online changes too.
    let e = c
        .update_table()
        .table_name("Val")
        .attribute_definitions(attr("h", ScalarAttributeType::S))
        .global_secondary_index_updates(create_action(
            "ix2",
            "h",
            None,
            proj(ProjectionType::All, &[]),
        ))
        .global_secondary_index_updates(delete_action("ix1"))
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&e), "LimitExceededException");
    let got = query_all(&c, "Val", "ix1", "g", row("p", 1)["g"].clone()).await;
    assert_eq!(got, vec![row("p", 1)]);
}

/// An index persisted as CREATING while no server ran (a stop in mid-backfill) is backfilled
/// when the server starts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn creating_index_is_finished_after_a_restart() {
    use sealdb::catalog::tables::{KeyAttr, KeySchema, ScalarType};
    use sealdb::indexes::{IndexDef, IndexKind, IndexStatus, ProjectionType as P};

    let srv = TestServer::start().await;
    let c = srv.client();
    create_table(&c, "Resume").await;
    populate(&c, "Resume", 150).await;
    let dir = srv.stop().await;
    {
        let svc = sealdb::app::open_services(test_config(dir.path()))
            .await
            .unwrap();
        let g = KeyAttr {
            name: "g".into(),
            ty: ScalarType::S,
        };
        let gs = KeyAttr {
            name: "gs".into(),
            ty: ScalarType::N,
        };
        svc.catalog
            .update_table("Resume", |def| {
                def.attribute_definitions.push(g.clone());
                def.attribute_definitions.push(gs.clone());
                def.indexes.push(IndexDef {
                    name: "byG".into(),
                    id: 1,
                    kind: IndexKind::Global,
                    key_schema: KeySchema {
                        hash: g,
                        range: Some(gs),
                    },
                    projection: P::All,
                    non_key_attributes: vec![],
                    status: IndexStatus::Creating,
                    backfilling: true,
                    throughput: None,
                    backfill_cursor: None,
                });
                Ok::<(), sealdb::error::ApiError>(())
            })
            .await
            .unwrap();
    }
    let srv = TestServer::start_in(dir).await;
    let c = srv.client();
    wait_active(&c, "Resume", "byG").await;
    assert_consistent(&c, "Resume", "byG", &["pk", "sk", "g", "gs", "a", "b", "h"]).await;
}
