//! Secondary indexes through aws-sdk-dynamodb: projections, sparse indexes, maintenance by
//! every write path, paging, validation messages, and the canary scan with index data.

mod common;
mod item_helpers;

use std::collections::{BTreeSet, HashMap};

use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, Delete, GlobalSecondaryIndex, KeySchemaElement, KeyType,
    LocalSecondaryIndex, Projection, ProjectionType, PutRequest, ScalarAttributeType, Select,
    TransactWriteItem, Update, WriteRequest,
};
use aws_sdk_dynamodb::Client;
use common::*;
use item_helpers::*;

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

fn gsi(name: &str, hash: &str, range: Option<&str>, p: Projection) -> GlobalSecondaryIndex {
    GlobalSecondaryIndex::builder()
        .index_name(name)
        .set_key_schema(Some(ks(hash, range)))
        .projection(p)
        .build()
        .unwrap()
}

fn lsi(name: &str, range: &str, p: Projection) -> LocalSecondaryIndex {
    LocalSecondaryIndex::builder()
        .index_name(name)
        .set_key_schema(Some(ks("pk", Some(range))))
        .projection(p)
        .build()
        .unwrap()
}

/// Table `T`: pk S, sk S; GSIs on (g S, gs N) with each projection and a hash-only GSI on h;
/// LSIs on l (N) KEYS_ONLY and INCLUDE [a].
async fn create_indexed(c: &Client, name: &str) {
    c.create_table()
        .table_name(name)
        .billing_mode(BillingMode::PayPerRequest)
        .set_key_schema(Some(ks("pk", Some("sk"))))
        .attribute_definitions(attr("pk", ScalarAttributeType::S))
        .attribute_definitions(attr("sk", ScalarAttributeType::S))
        .attribute_definitions(attr("g", ScalarAttributeType::S))
        .attribute_definitions(attr("gs", ScalarAttributeType::N))
        .attribute_definitions(attr("h", ScalarAttributeType::S))
        .attribute_definitions(attr("l", ScalarAttributeType::N))
        .global_secondary_indexes(gsi(
            "gKeys",
            "g",
            Some("gs"),
            proj(ProjectionType::KeysOnly, &[]),
        ))
        .global_secondary_indexes(gsi(
            "gInc",
            "g",
            Some("gs"),
            proj(ProjectionType::Include, &["a"]),
        ))
        .global_secondary_indexes(gsi("gAll", "g", Some("gs"), proj(ProjectionType::All, &[])))
        .global_secondary_indexes(gsi("hOnly", "h", None, proj(ProjectionType::All, &[])))
        .local_secondary_indexes(lsi("lKeys", "l", proj(ProjectionType::KeysOnly, &[])))
        .local_secondary_indexes(lsi("lInc", "l", proj(ProjectionType::Include, &["a"])))
        .send()
        .await
        .expect("create indexed table");
}

fn full(pk: &str, sk: &str, g: &str, gs: i64, l: i64) -> Item {
    HashMap::from([
        ("pk".to_string(), s(pk)),
        ("sk".to_string(), s(sk)),
        ("g".to_string(), s(g)),
        ("gs".to_string(), n(gs)),
        ("h".to_string(), s(g)),
        ("l".to_string(), n(l)),
        ("a".to_string(), s(&format!("a-{pk}-{sk}"))),
        ("b".to_string(), s(&format!("b-{pk}-{sk}"))),
    ])
}

fn only(item: &Item, names: &[&str]) -> Item {
    item.iter()
        .filter(|(k, _)| names.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

async fn query_index(c: &Client, table: &str, index: &str, attr: &str, v: Av) -> Vec<Item> {
    c.query()
        .table_name(table)
        .index_name(index)
        .key_condition_expression("#k = :v")
        .expression_attribute_names("#k", attr)
        .expression_attribute_values(":v", v)
        .send()
        .await
        .unwrap()
        .items()
        .to_vec()
}

use aws_sdk_dynamodb::types::AttributeValue as Av;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_projection_returns_exactly_what_dynamodb_would() {
    let srv = TestServer::start().await;
    let c = srv.client();
    create_indexed(&c, "Proj").await;
    let items = [
        full("p1", "s1", "G", 3, 30),
        full("p1", "s2", "G", 1, 10),
        full("p2", "s1", "G", 2, 20),
        full("p1", "s3", "other", 9, 5),
    ];
    for i in &items {
        put(&c, "Proj", i.clone()).await;
    }
    // GSI, sorted by gs: p1/s2 (1), p2/s1 (2), p1/s1 (3).
    let order = [&items[1], &items[2], &items[0]];
    let got = query_index(&c, "Proj", "gKeys", "g", s("G")).await;
    let want: Vec<Item> = order
        .iter()
        .map(|i| only(i, &["pk", "sk", "g", "gs"]))
        .collect();
    assert_eq!(got, want, "KEYS_ONLY = table keys + index keys");
    let got = query_index(&c, "Proj", "gInc", "g", s("G")).await;
    let want: Vec<Item> = order
        .iter()
        .map(|i| only(i, &["pk", "sk", "g", "gs", "a"]))
        .collect();
    assert_eq!(got, want, "INCLUDE adds the named attributes");
    let got = query_index(&c, "Proj", "gAll", "g", s("G")).await;
    let want: Vec<Item> = order.iter().map(|i| (*i).clone()).collect();
    assert_eq!(got, want, "ALL = whole items");
    // Descending order on the index sort key.
    let got = c
        .query()
        .table_name("Proj")
        .index_name("gKeys")
        .key_condition_expression("g = :v AND gs >= :lo")
        .expression_attribute_values(":v", s("G"))
        .expression_attribute_values(":lo", n(2))
        .scan_index_forward(false)
        .send()
        .await
        .unwrap();
    let gs: Vec<i64> = got.items().iter().map(|i| num(i, "gs")).collect();
    assert_eq!(gs, vec![3, 2]);
    // Hash-only GSI.
    let got = query_index(&c, "Proj", "hOnly", "h", s("G")).await;
    let got: BTreeSet<String> = got
        .iter()
        .map(|i| format!("{:?}", only(i, &["pk", "sk"])))
        .collect();
    assert_eq!(got.len(), 3);
    // LSI KEYS_ONLY: table keys + l, ordered by l within pk p1.
    let got = query_index(&c, "Proj", "lKeys", "pk", s("p1")).await;
    let want: Vec<Item> = [&items[3], &items[1], &items[0]]
        .iter()
        .map(|i| only(i, &["pk", "sk", "l"]))
        .collect();
    assert_eq!(got, want);
    // LSI: attributes it does not project come from the table.
    let got = c
        .query()
        .table_name("Proj")
        .index_name("lKeys")
        .key_condition_expression("pk = :p")
        .expression_attribute_values(":p", s("p1"))
        .select(Select::AllAttributes)
        .send()
        .await
        .unwrap();
    assert_eq!(got.items()[0], items[3]);
    let got = c
        .query()
        .table_name("Proj")
        .index_name("lInc")
        .key_condition_expression("pk = :p AND l > :l")
        .expression_attribute_values(":p", s("p1"))
        .expression_attribute_values(":l", n(5))
        .projection_expression("b, a")
        .send()
        .await
        .unwrap();
    assert_eq!(
        got.items().to_vec(),
        vec![only(&items[1], &["a", "b"]), only(&items[0], &["a", "b"])]
    );
    // ALL_PROJECTED_ATTRIBUTES on a scan of an index.
    let got = c
        .scan()
        .table_name("Proj")
        .index_name("gInc")
        .select(Select::AllProjectedAttributes)
        .send()
        .await
        .unwrap();
    assert_eq!(got.count(), 4);
    for i in got.items() {
        let names: BTreeSet<&str> = i.keys().map(String::as_str).collect();
        assert_eq!(names, BTreeSet::from(["pk", "sk", "g", "gs", "a"]));
    }
    // GSI refusals.
    let e = c
        .query()
        .table_name("Proj")
        .index_name("gKeys")
        .key_condition_expression("g = :v")
        .expression_attribute_values(":v", s("G"))
        .select(Select::AllAttributes)
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&e), "ValidationException");
    assert_eq!(
        message(&e),
        "One or more parameter values were invalid: Select type ALL_ATTRIBUTES is not supported for global secondary index gKeys because its projection type is not ALL"
    );
    let e = c
        .query()
        .table_name("Proj")
        .index_name("gInc")
        .key_condition_expression("g = :v")
        .expression_attribute_values(":v", s("G"))
        .projection_expression("b")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&e), "ValidationException");
    assert!(message(&e).contains("gInc"), "{}", message(&e));
    let e = c
        .query()
        .table_name("Proj")
        .index_name("gAll")
        .key_condition_expression("g = :v")
        .expression_attribute_values(":v", s("G"))
        .consistent_read(true)
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        message(&e),
        "Consistent reads are not supported on global secondary indexes"
    );
    let e = c
        .query()
        .table_name("Proj")
        .index_name("nope")
        .key_condition_expression("g = :v")
        .expression_attribute_values(":v", s("G"))
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        message(&e),
        "The table does not have the specified index: nope"
    );
    // Key condition against the index's schema.
    let e = c
        .query()
        .table_name("Proj")
        .index_name("gAll")
        .key_condition_expression("pk = :v")
        .expression_attribute_values(":v", s("p1"))
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&e), "ValidationException");
    // DescribeTable.
    let d = c.describe_table().table_name("Proj").send().await.unwrap();
    let t = d.table().unwrap();
    let g = t.global_secondary_indexes();
    assert_eq!(g.len(), 4);
    let inc = g.iter().find(|i| i.index_name() == Some("gInc")).unwrap();
    assert_eq!(
        inc.projection().unwrap().non_key_attributes(),
        &["a".to_string()]
    );
    assert_eq!(inc.item_count(), Some(4));
    assert!(inc.index_arn().unwrap().ends_with("table/Proj/index/gInc"));
    assert_eq!(
        inc.index_status(),
        Some(&aws_sdk_dynamodb::types::IndexStatus::Active)
    );
    assert_eq!(t.local_secondary_indexes().len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sparse_index_follows_updates_and_deletes() {
    let srv = TestServer::start().await;
    let c = srv.client();
    create_indexed(&c, "Sparse").await;
    // No g: not in the GSIs; no l: not in the LSIs.
    put(
        &c,
        "Sparse",
        HashMap::from([
            ("pk".into(), s("p")),
            ("sk".into(), s("x")),
            ("a".into(), s("v")),
        ]),
    )
    .await;
    assert!(query_index(&c, "Sparse", "gAll", "g", s("G1"))
        .await
        .is_empty());
    assert!(query_index(&c, "Sparse", "lKeys", "pk", s("p"))
        .await
        .is_empty());
    let update = |expr: &'static str| {
        c.update_item()
            .table_name("Sparse")
            .key("pk", s("p"))
            .key("sk", s("x"))
            .update_expression(expr)
    };
    update("SET g = :g, gs = :n, l = :n")
        .expression_attribute_values(":g", s("G1"))
        .expression_attribute_values(":n", n(7))
        .send()
        .await
        .unwrap();
    let got = query_index(&c, "Sparse", "gInc", "g", s("G1")).await;
    assert_eq!(got.len(), 1);
    assert_eq!(got[0]["a"], s("v"));
    assert_eq!(
        query_index(&c, "Sparse", "lKeys", "pk", s("p")).await.len(),
        1
    );
    // A projected attribute changes: the entry follows.
    update("SET a = :a")
        .expression_attribute_values(":a", s("w"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        query_index(&c, "Sparse", "gInc", "g", s("G1")).await[0]["a"],
        s("w")
    );
    // The index key changes: the entry moves.
    update("SET g = :g")
        .expression_attribute_values(":g", s("G2"))
        .send()
        .await
        .unwrap();
    assert!(query_index(&c, "Sparse", "gAll", "g", s("G1"))
        .await
        .is_empty());
    assert_eq!(
        query_index(&c, "Sparse", "gAll", "g", s("G2")).await.len(),
        1
    );
    // A wrongly typed index key is refused; nothing changes.
    let e = update("SET gs = :x")
        .expression_attribute_values(":x", s("text"))
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&e), "ValidationException");
    assert!(
        message(&e).starts_with("One or more parameter values were invalid: Type mismatch for Index Key gs Expected: N Actual: S IndexName: g"),
        "{}",
        message(&e)
    );
    // Removing part of the key: out of the GSIs on (g, gs), still in the hash-only one.
    update("REMOVE gs").send().await.unwrap();
    assert!(query_index(&c, "Sparse", "gAll", "g", s("G2"))
        .await
        .is_empty());
    // Deleting the item removes every entry.
    c.delete_item()
        .table_name("Sparse")
        .key("pk", s("p"))
        .key("sk", s("x"))
        .send()
        .await
        .unwrap();
    assert!(query_index(&c, "Sparse", "lKeys", "pk", s("p"))
        .await
        .is_empty());
    for idx in ["gKeys", "gInc", "gAll", "hOnly", "lKeys", "lInc"] {
        let sc = c
            .scan()
            .table_name("Sparse")
            .index_name(idx)
            .send()
            .await
            .unwrap();
        assert_eq!(sc.count(), 0, "{idx} still has entries");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batches_and_transactions_maintain_indexes() {
    let srv = TestServer::start().await;
    let c = srv.client();
    create_indexed(&c, "Batch").await;
    let reqs: Vec<WriteRequest> = (0..10)
        .map(|i| {
            WriteRequest::builder()
                .put_request(
                    PutRequest::builder()
                        .set_item(Some(full("p", &format!("s{i}"), "G", i, i)))
                        .build()
                        .unwrap(),
                )
                .build()
        })
        .collect();
    c.batch_write_item()
        .request_items("Batch", reqs)
        .send()
        .await
        .unwrap();
    assert_eq!(
        query_index(&c, "Batch", "gKeys", "g", s("G")).await.len(),
        10
    );
    assert_eq!(
        query_index(&c, "Batch", "lInc", "pk", s("p")).await.len(),
        10
    );
    c.transact_write_items()
        .transact_items(tx_put("Batch", full("q", "s0", "G", 100, 1)))
        .transact_items(
            TransactWriteItem::builder()
                .delete(
                    Delete::builder()
                        .table_name("Batch")
                        .key("pk", s("p"))
                        .key("sk", s("s0"))
                        .build()
                        .unwrap(),
                )
                .build(),
        )
        .transact_items(
            TransactWriteItem::builder()
                .update(
                    Update::builder()
                        .table_name("Batch")
                        .key("pk", s("p"))
                        .key("sk", s("s1"))
                        .update_expression("SET g = :g")
                        .expression_attribute_values(":g", s("H"))
                        .build()
                        .unwrap(),
                )
                .build(),
        )
        .send()
        .await
        .unwrap();
    let g = query_index(&c, "Batch", "gKeys", "g", s("G")).await;
    let gs: Vec<i64> = g.iter().map(|i| num(i, "gs")).collect();
    assert_eq!(gs, vec![2, 3, 4, 5, 6, 7, 8, 9, 100]);
    assert_eq!(
        query_index(&c, "Batch", "gKeys", "g", s("H")).await.len(),
        1
    );
    assert_eq!(
        query_index(&c, "Batch", "lKeys", "pk", s("p")).await.len(),
        9
    );
    // A cancelled transaction leaves the indexes untouched.
    let e = c
        .transact_write_items()
        .transact_items(tx_put("Batch", full("r", "s0", "G", 200, 1)))
        .transact_items(
            TransactWriteItem::builder()
                .delete(
                    Delete::builder()
                        .table_name("Batch")
                        .key("pk", s("p"))
                        .key("sk", s("s2"))
                        .condition_expression("attribute_not_exists(pk)")
                        .build()
                        .unwrap(),
                )
                .build(),
        )
        .send()
        .await;
    assert!(e.is_err());
    assert_eq!(
        query_index(&c, "Batch", "gKeys", "g", s("G")).await.len(),
        9
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn index_paging_and_parallel_scan() {
    let srv = TestServer::start().await;
    let c = srv.client();
    create_indexed(&c, "Paging").await;
    for i in 0..30 {
        // Several items share a gs value: the order among them is by entry token.
        put(
            &c,
            "Paging",
            full(&format!("p{}", i % 4), &format!("s{i}"), "G", i % 5, i),
        )
        .await;
    }
    for idx in ["gKeys", "hOnly"] {
        let attr = if idx == "hOnly" { "h" } else { "g" };
        let mut seen = Vec::new();
        let mut start = None;
        loop {
            let out = c
                .query()
                .table_name("Paging")
                .index_name(idx)
                .key_condition_expression("#k = :v")
                .expression_attribute_names("#k", attr)
                .expression_attribute_values(":v", s("G"))
                .limit(7)
                .set_exclusive_start_key(start)
                .send()
                .await
                .unwrap();
            seen.extend(
                out.items()
                    .iter()
                    .map(|i| i["sk"].as_s().unwrap()[1..].parse::<i64>().unwrap()),
            );
            match out.last_evaluated_key() {
                Some(k) => {
                    let names: BTreeSet<&str> = k.keys().map(String::as_str).collect();
                    let mut want = BTreeSet::from(["pk", "sk", attr]);
                    if idx == "gKeys" {
                        want.insert("gs");
                    }
                    assert_eq!(names, want, "LastEvaluatedKey = table keys + index keys");
                    start = Some(k.clone());
                }
                None => break,
            }
        }
        seen.sort();
        assert_eq!(
            seen,
            (0..30).collect::<Vec<_>>(),
            "{idx}: pages complete and disjoint"
        );
    }
    let mut all = Vec::new();
    for seg in 0..3 {
        let mut start = None;
        loop {
            let out = c
                .scan()
                .table_name("Paging")
                .index_name("lKeys")
                .segment(seg)
                .total_segments(3)
                .limit(4)
                .set_exclusive_start_key(start)
                .send()
                .await
                .unwrap();
            all.extend(out.items().iter().map(|i| num(i, "l")));
            match out.last_evaluated_key() {
                Some(k) => start = Some(k.clone()),
                None => break,
            }
        }
    }
    all.sort();
    assert_eq!(all, (0..30).collect::<Vec<_>>());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_table_validation_messages() {
    let srv = TestServer::start().await;
    let c = srv.client();
    let base = |name: &str| {
        c.create_table()
            .table_name(name)
            .billing_mode(BillingMode::PayPerRequest)
            .set_key_schema(Some(ks("pk", Some("sk"))))
            .attribute_definitions(attr("pk", ScalarAttributeType::S))
            .attribute_definitions(attr("sk", ScalarAttributeType::S))
    };
    let msg = |r: Result<_, aws_sdk_dynamodb::error::SdkError<_, _>>| {
        let e = r.unwrap_err();
        assert_eq!(code(&e), "ValidationException");
        message(&e)
    };
    let m = msg(base("Val1")
        .local_secondary_indexes(lsi("lsi1", "x", proj(ProjectionType::All, &[])))
        .send()
        .await);
    assert_eq!(m, "One or more parameter values were invalid: Some index key attributes are not defined in AttributeDefinitions. Keys: [pk, x], AttributeDefinitions: [pk, sk]");
    let m = msg(base("Val2")
        .attribute_definitions(attr("x", ScalarAttributeType::N))
        .local_secondary_indexes(
            LocalSecondaryIndex::builder()
                .index_name("lsi1")
                .set_key_schema(Some(ks("x", Some("sk"))))
                .projection(proj(ProjectionType::All, &[]))
                .build()
                .unwrap(),
        )
        .send()
        .await);
    assert_eq!(m, "One or more parameter values were invalid: Index KeySchema does not have the same leading hash key as table KeySchema for index: lsi1. index hash key: x, table hash key: pk");
    let m = msg(base("Val3")
        .attribute_definitions(attr("x", ScalarAttributeType::N))
        .global_secondary_indexes(gsi(
            "gsi1",
            "x",
            None,
            proj(ProjectionType::KeysOnly, &["a"]),
        ))
        .send()
        .await);
    assert_eq!(m, "One or more parameter values were invalid: ProjectionType is KEYS_ONLY, but NonKeyAttributes is specified");
    let m = msg(base("Val4")
        .attribute_definitions(attr("x", ScalarAttributeType::N))
        .attribute_definitions(attr("unused", ScalarAttributeType::N))
        .global_secondary_indexes(gsi("gsi1", "x", None, proj(ProjectionType::All, &[])))
        .send()
        .await);
    assert_eq!(m, "One or more parameter values were invalid: Some AttributeDefinitions are not used. AttributeDefinitions: [pk, sk, unused, x], keys used: [pk, sk, x]");
    let m = msg(base("Val5")
        .attribute_definitions(attr("x", ScalarAttributeType::N))
        .global_secondary_indexes(gsi("dup", "x", None, proj(ProjectionType::All, &[])))
        .global_secondary_indexes(gsi("dup", "x", None, proj(ProjectionType::All, &[])))
        .send()
        .await);
    assert_eq!(
        m,
        "One or more parameter values were invalid: Duplicate index name: dup"
    );
    let mut b = base("Val6").attribute_definitions(attr("x", ScalarAttributeType::N));
    for i in 0..6 {
        b = b.local_secondary_indexes(lsi(&format!("l{i}x"), "x", proj(ProjectionType::All, &[])));
    }
    let m = msg(b.send().await);
    assert_eq!(m, "One or more parameter values were invalid: LocalSecondaryIndex count exceeds the per-table limit of 5");
    let mut b = base("Val7").attribute_definitions(attr("x", ScalarAttributeType::N));
    for i in 0..21 {
        b = b.global_secondary_indexes(gsi(
            &format!("g{i}x"),
            "x",
            None,
            proj(ProjectionType::All, &[]),
        ));
    }
    let m = msg(b.send().await);
    assert_eq!(m, "One or more parameter values were invalid: GlobalSecondaryIndex count exceeds the per-table limit of 20");
    let m = msg(c
        .create_table()
        .table_name("Val8")
        .billing_mode(BillingMode::PayPerRequest)
        .set_key_schema(Some(ks("pk", None)))
        .attribute_definitions(attr("pk", ScalarAttributeType::S))
        .attribute_definitions(attr("x", ScalarAttributeType::N))
        .local_secondary_indexes(
            LocalSecondaryIndex::builder()
                .index_name("lsi1")
                .set_key_schema(Some(ks("pk", Some("x"))))
                .projection(proj(ProjectionType::All, &[]))
                .build()
                .unwrap(),
        )
        .send()
        .await);
    assert_eq!(m, "One or more parameter values were invalid: Table KeySchema does not have a range key, which is required when specifying a LocalSecondaryIndex");
    // Over 100 projected attributes in total (6 GSIs x 20 names).
    let mut b = base("Val9").attribute_definitions(attr("x", ScalarAttributeType::N));
    for i in 0..6 {
        let names: Vec<String> = (0..20).map(|j| format!("a{i}_{j}")).collect();
        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
        b = b.global_secondary_indexes(gsi(
            &format!("g{i}x"),
            "x",
            None,
            proj(ProjectionType::Include, &refs),
        ));
    }
    let m = msg(b.send().await);
    assert!(m.contains("projected attributes"), "{m}");
    // Nothing was created by any of them.
    let names = c.list_tables().send().await.unwrap();
    assert!(names.table_names().is_empty());
}

/// Every encoding of a marker the scan looks for (as tests/at_rest.rs).
fn needles(marker: &[u8]) -> Vec<Vec<u8>> {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut all = vec![
        marker.to_vec(),
        hex::encode(marker).into_bytes(),
        hex::encode_upper(marker).into_bytes(),
        b64.encode(marker).trim_end_matches('=').as_bytes().to_vec(),
    ];
    // A marker whose hex has no letter a-f encodes the same in both cases: one needle, so
    // that one planted copy is one hit.
    all.sort();
    all.dedup();
    all
}

fn marker() -> String {
    const A: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let bytes: [u8; 20] = sealdb::crypto::secret::random_bytes().unwrap();
    bytes
        .iter()
        .map(|b| A[(*b as usize) % A.len()] as char)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn canary_scan_finds_no_index_data() {
    let srv = TestServer::start().await;
    let c = srv.client();
    create_indexed(&c, "Canary").await;
    let mut markers: Vec<String> = Vec::new();
    for i in 0..20 {
        let (pk, sk, g, a, b) = (marker(), marker(), marker(), marker(), marker());
        let gs = format!("7{}", &"3141592653589793238"[..(i % 10) + 5]);
        let item = HashMap::from([
            ("pk".to_string(), s(&pk)),
            ("sk".to_string(), s(&sk)),
            ("g".to_string(), s(&g)),
            ("h".to_string(), s(&g)),
            ("gs".to_string(), Av::N(gs)),
            ("l".to_string(), n(i as i64)),
            ("a".to_string(), s(&a)),
            ("b".to_string(), s(&b)),
        ]);
        put(&c, "Canary", item).await;
        assert_eq!(query_index(&c, "Canary", "gInc", "g", s(&g)).await.len(), 1);
        markers.extend([pk, sk, g, a, b]);
    }
    srv.services().store.flush_and_compact().unwrap();
    let dir = srv.stop().await;
    let all: Vec<Vec<u8>> = markers.iter().flat_map(|m| needles(m.as_bytes())).collect();
    let mut stack = vec![dir.path().to_path_buf()];
    let mut files = 0;
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
                continue;
            }
            files += 1;
            let bytes = std::fs::read(&p).unwrap();
            for nd in &all {
                assert!(
                    !bytes.windows(nd.len()).any(|w| w == nd.as_slice()),
                    "plaintext marker in {}",
                    p.display()
                );
            }
        }
    }
    assert!(files > 0);
}

/// ReturnItemCollectionMetrics=SIZE: returned for tables with LSIs (collection key and a GB
/// range), never for tables without them; an invalid value is DynamoDB's enum error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn item_collection_metrics_for_tables_with_lsis() {
    use aws_sdk_dynamodb::types::ReturnItemCollectionMetrics as Ricm;
    let srv = TestServer::start().await;
    let c = srv.client();
    create_indexed(&c, "Coll").await;
    let put = c
        .put_item()
        .table_name("Coll")
        .set_item(Some(full("p1", "s1", "G", 1, 10)))
        .return_item_collection_metrics(Ricm::Size)
        .send()
        .await
        .unwrap();
    let m = put
        .item_collection_metrics()
        .expect("metrics on an LSI table");
    assert_eq!(
        m.item_collection_key(),
        Some(&HashMap::from([("pk".to_string(), s("p1"))]))
    );
    assert_eq!(m.size_estimate_range_gb(), [0.0, 1.0]);

    let upd = c
        .update_item()
        .table_name("Coll")
        .key("pk", s("p1"))
        .key("sk", s("s1"))
        .update_expression("SET b = :b")
        .expression_attribute_values(":b", s("x"))
        .return_item_collection_metrics(Ricm::Size)
        .send()
        .await
        .unwrap();
    assert!(upd.item_collection_metrics().is_some());
    let del = c
        .delete_item()
        .table_name("Coll")
        .key("pk", s("p1"))
        .key("sk", s("s1"))
        .return_item_collection_metrics(Ricm::Size)
        .send()
        .await
        .unwrap();
    assert_eq!(
        del.item_collection_metrics()
            .and_then(|m| m.item_collection_key())
            .and_then(|k| k.get("pk")),
        Some(&s("p1"))
    );
    // Without SIZE, nothing.
    let plain = c
        .put_item()
        .table_name("Coll")
        .set_item(Some(full("p1", "s2", "G", 1, 10)))
        .send()
        .await
        .unwrap();
    assert!(plain.item_collection_metrics().is_none());

    // A table without LSIs never returns metrics.
    create_table(&c, "NoLsi", None).await;
    let out = c
        .put_item()
        .table_name("NoLsi")
        .item("pk", s("k"))
        .return_item_collection_metrics(Ricm::Size)
        .send()
        .await
        .unwrap();
    assert!(out.item_collection_metrics().is_none());

    // An invalid value is refused before anything is written.
    let (st, v) = raw_request(
        &srv.endpoint,
        &srv.access_key,
        &srv.secret,
        Some("DynamoDB_20120810.PutItem"),
        br#"{"TableName":"NoLsi","Item":{"pk":{"S":"bad"}},"ReturnItemCollectionMetrics":"ALL"}"#
            .to_vec(),
    )
    .await;
    assert_eq!(st, 400);
    assert_eq!(
        v["__type"].as_str(),
        Some("com.amazonaws.dynamodb.v20120810#ValidationException")
    );
    let got = c
        .get_item()
        .table_name("NoLsi")
        .key("pk", s("bad"))
        .send()
        .await
        .unwrap();
    assert!(got.item().is_none());
}

/// The partition key values of one table's ItemCollectionMetrics list, sorted.
fn collection_keys(
    m: Option<&HashMap<String, Vec<aws_sdk_dynamodb::types::ItemCollectionMetrics>>>,
    table: &str,
) -> Vec<String> {
    let mut keys: Vec<String> = m
        .and_then(|m| m.get(table))
        .map(|list| {
            list.iter()
                .map(|c| {
                    assert_eq!(c.size_estimate_range_gb(), [0.0, 1.0]);
                    let key = c.item_collection_key().expect("collection key");
                    assert_eq!(key.len(), 1, "only the partition key: {key:?}");
                    key.get("pk")
                        .and_then(|v| v.as_s().ok())
                        .cloned()
                        .expect("pk is S")
                })
                .collect()
        })
        .unwrap_or_default();
    keys.sort();
    keys
}

/// BatchWriteItem and TransactWriteItems return ItemCollectionMetrics keyed by table name, one
/// entry per item collection written, only for tables with LSIs; an invalid value is refused
/// before any member is written.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn item_collection_metrics_of_batches_and_transactions() {
    use aws_sdk_dynamodb::types::{
        ConditionCheck, DeleteRequest, ReturnItemCollectionMetrics as Ricm,
    };
    let srv = TestServer::start().await;
    let c = srv.client();
    create_indexed(&c, "CollB").await;
    create_table(&c, "PlainB", None).await;
    let put = |item: Item| {
        WriteRequest::builder()
            .put_request(PutRequest::builder().set_item(Some(item)).build().unwrap())
            .build()
    };
    let out = c
        .batch_write_item()
        .request_items(
            "CollB",
            vec![
                put(full("p1", "s1", "G", 1, 1)),
                put(full("p1", "s2", "G", 2, 2)),
                put(full("p2", "s1", "G", 3, 3)),
            ],
        )
        .request_items(
            "PlainB",
            vec![put(HashMap::from([("pk".to_string(), s("k"))]))],
        )
        .return_item_collection_metrics(Ricm::Size)
        .send()
        .await
        .unwrap();
    let m = out.item_collection_metrics();
    assert_eq!(collection_keys(m, "CollB"), vec!["p1", "p2"]);
    assert!(
        m.is_some_and(|m| !m.contains_key("PlainB")),
        "no metrics for a table without LSIs: {m:?}"
    );
    // Deletes report their collection too.
    let out = c
        .batch_write_item()
        .request_items(
            "CollB",
            vec![WriteRequest::builder()
                .delete_request(
                    DeleteRequest::builder()
                        .key("pk", s("p2"))
                        .key("sk", s("s1"))
                        .build()
                        .unwrap(),
                )
                .build()],
        )
        .return_item_collection_metrics(Ricm::Size)
        .send()
        .await
        .unwrap();
    assert_eq!(
        collection_keys(out.item_collection_metrics(), "CollB"),
        vec!["p2"]
    );
    // Without SIZE, nothing.
    let out = c
        .batch_write_item()
        .request_items("CollB", vec![put(full("p3", "s1", "G", 4, 4))])
        .send()
        .await
        .unwrap();
    assert!(out.item_collection_metrics().is_none_or(|m| m.is_empty()));

    let out = c
        .transact_write_items()
        .transact_items(tx_put("CollB", full("p4", "s1", "G", 5, 5)))
        .transact_items(
            TransactWriteItem::builder()
                .update(
                    Update::builder()
                        .table_name("CollB")
                        .key("pk", s("p1"))
                        .key("sk", s("s1"))
                        .update_expression("SET b = :b")
                        .expression_attribute_values(":b", s("new"))
                        .build()
                        .unwrap(),
                )
                .build(),
        )
        .transact_items(
            TransactWriteItem::builder()
                .condition_check(
                    ConditionCheck::builder()
                        .table_name("CollB")
                        .key("pk", s("p3"))
                        .key("sk", s("s1"))
                        .condition_expression("attribute_exists(pk)")
                        .build()
                        .unwrap(),
                )
                .build(),
        )
        .transact_items(tx_put(
            "PlainB",
            HashMap::from([("pk".to_string(), s("t"))]),
        ))
        .return_item_collection_metrics(Ricm::Size)
        .send()
        .await
        .unwrap();
    let m = out.item_collection_metrics();
    // The ConditionCheck on p3 writes nothing, so its collection is not reported.
    assert_eq!(collection_keys(m, "CollB"), vec!["p1", "p4"]);
    assert!(m.is_some_and(|m| !m.contains_key("PlainB")), "{m:?}");

    // Invalid values: ValidationException, and nothing was written.
    for (target, body) in [
        (
            "DynamoDB_20120810.BatchWriteItem",
            r#"{"RequestItems":{"PlainB":[{"PutRequest":{"Item":{"pk":{"S":"bad1"}}}}]},"ReturnItemCollectionMetrics":"ALL"}"#,
        ),
        (
            "DynamoDB_20120810.TransactWriteItems",
            r#"{"TransactItems":[{"Put":{"TableName":"PlainB","Item":{"pk":{"S":"bad2"}}}}],"ReturnItemCollectionMetrics":"size"}"#,
        ),
    ] {
        let (st, v) = raw_request(
            &srv.endpoint,
            &srv.access_key,
            &srv.secret,
            Some(target),
            body.as_bytes().to_vec(),
        )
        .await;
        assert_eq!(st, 400, "{target}: {v}");
        assert_eq!(
            v["__type"].as_str(),
            Some("com.amazonaws.dynamodb.v20120810#ValidationException"),
            "{target}: {v}"
        );
        assert!(
            v["message"]
                .as_str()
                .is_some_and(|m| m.contains("returnItemCollectionMetrics")),
            "{target}: {v}"
        );
    }
    for k in ["bad1", "bad2"] {
        let got = c
            .get_item()
            .table_name("PlainB")
            .key("pk", s(k))
            .send()
            .await
            .unwrap();
        assert!(got.item().is_none(), "{k} was written");
    }
}
