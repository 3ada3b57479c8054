//! The item API beyond Put/Get/Delete through a real client: UpdateItem, Query, Scan, the
//! batches, the transactions, consumed capacity, concurrency, and the canary scan with
//! sort-key tables, queries and updates in the mix.

mod common;

use std::collections::HashMap;

use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::{
    AttributeAction, AttributeDefinition, AttributeValue as Av, AttributeValueUpdate, BillingMode,
    ComparisonOperator, Condition, ConditionCheck, Delete, Get, KeySchemaElement, KeyType,
    KeysAndAttributes, Put, PutRequest, ReturnConsumedCapacity, ReturnValue,
    ReturnValuesOnConditionCheckFailure, ScalarAttributeType, Select, TransactGetItem,
    TransactWriteItem, Update, WriteRequest,
};
use aws_sdk_dynamodb::Client;
use base64::Engine;
use common::*;

type Item = HashMap<String, Av>;

async fn create(c: &Client, name: &str, range: Option<ScalarAttributeType>) {
    let mut b = c
        .create_table()
        .table_name(name)
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
        );
    if let Some(t) = range {
        b = b
            .key_schema(
                KeySchemaElement::builder()
                    .attribute_name("sk")
                    .key_type(KeyType::Range)
                    .build()
                    .unwrap(),
            )
            .attribute_definitions(
                AttributeDefinition::builder()
                    .attribute_name("sk")
                    .attribute_type(t)
                    .build()
                    .unwrap(),
            );
    }
    b.send().await.expect("create table");
}

fn s(v: &str) -> Av {
    Av::S(v.to_string())
}

fn n(v: i64) -> Av {
    Av::N(v.to_string())
}

fn key(pk: &str, sk: Option<Av>) -> Item {
    let mut k = HashMap::from([("pk".to_string(), s(pk))]);
    if let Some(sk) = sk {
        k.insert("sk".to_string(), sk);
    }
    k
}

fn num(item: &Item, attr: &str) -> i64 {
    item[attr].as_n().unwrap().parse().unwrap()
}

async fn put(c: &Client, table: &str, item: Item) {
    c.put_item()
        .table_name(table)
        .set_item(Some(item))
        .send()
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn update_item_expressions_return_values_and_protections() {
    let srv = TestServer::start().await;
    let c = srv.client();
    create(&c, "Upd", Some(ScalarAttributeType::N)).await;
    let k = key("a", Some(n(1)));

    // Upsert: the item starts as its key.
    let out = c
        .update_item()
        .table_name("Upd")
        .set_key(Some(k.clone()))
        .update_expression("SET #t = :t, l = list_append(if_not_exists(l, :e), :one) ADD cnt :inc")
        .expression_attribute_names("#t", "title")
        .expression_attribute_values(":t", s("hello"))
        .expression_attribute_values(":e", Av::L(vec![]))
        .expression_attribute_values(":one", Av::L(vec![n(1)]))
        .expression_attribute_values(":inc", n(5))
        .return_values(ReturnValue::AllNew)
        .send()
        .await
        .unwrap();
    let a = out.attributes().unwrap();
    assert_eq!(a["pk"], s("a"));
    assert_eq!(a["sk"], n(1));
    assert_eq!(a["title"], s("hello"));
    assert_eq!(num(a, "cnt"), 5);
    assert_eq!(a["l"], Av::L(vec![n(1)]));

    // UPDATED_OLD / UPDATED_NEW show only the touched attributes.
    let out = c
        .update_item()
        .table_name("Upd")
        .set_key(Some(k.clone()))
        .update_expression("SET cnt = cnt + :d REMOVE title")
        .expression_attribute_values(":d", n(2))
        .return_values(ReturnValue::UpdatedOld)
        .send()
        .await
        .unwrap();
    let a = out.attributes().unwrap();
    assert_eq!(a.len(), 2, "{a:?}");
    assert_eq!(num(a, "cnt"), 5);
    assert_eq!(a["title"], s("hello"));
    let out = c
        .update_item()
        .table_name("Upd")
        .set_key(Some(k.clone()))
        .update_expression("SET cnt = cnt - :d")
        .expression_attribute_values(":d", n(1))
        .return_values(ReturnValue::UpdatedNew)
        .send()
        .await
        .unwrap();
    assert_eq!(out.attributes().unwrap().len(), 1);
    assert_eq!(num(out.attributes().unwrap(), "cnt"), 6);
    let out = c
        .update_item()
        .table_name("Upd")
        .set_key(Some(k.clone()))
        .update_expression("ADD tags :t")
        .expression_attribute_values(":t", Av::Ss(vec!["x".into(), "y".into()]))
        .return_values(ReturnValue::AllOld)
        .send()
        .await
        .unwrap();
    let old = out.attributes().unwrap();
    assert!(!old.contains_key("tags") && !old.contains_key("title"));
    c.update_item()
        .table_name("Upd")
        .set_key(Some(k.clone()))
        .update_expression("DELETE tags :t")
        .expression_attribute_values(":t", Av::Ss(vec!["x".into()]))
        .send()
        .await
        .unwrap();
    let got = c
        .get_item()
        .table_name("Upd")
        .set_key(Some(k.clone()))
        .send()
        .await
        .unwrap();
    assert_eq!(got.item().unwrap()["tags"], Av::Ss(vec!["y".into()]));

    // A failed condition changes nothing and can return the item.
    let err = c
        .update_item()
        .table_name("Upd")
        .set_key(Some(k.clone()))
        .update_expression("SET cnt = :z")
        .condition_expression("cnt = :wrong")
        .expression_attribute_values(":z", n(0))
        .expression_attribute_values(":wrong", n(999))
        .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&err), "ConditionalCheckFailedException");
    let svc_err = err.into_service_error();
    match svc_err {
        aws_sdk_dynamodb::operation::update_item::UpdateItemError::ConditionalCheckFailedException(e) => {
            assert_eq!(num(e.item().unwrap(), "cnt"), 6);
        }
        other => panic!("unexpected {other:?}"),
    }

    // Key attributes are protected, with DynamoDB's message.
    for expr in ["SET pk = :v", "REMOVE sk", "SET sk = :v"] {
        let mut b = c
            .update_item()
            .table_name("Upd")
            .set_key(Some(k.clone()))
            .update_expression(expr);
        if expr.contains(":v") {
            b = b.expression_attribute_values(":v", s("x"));
        }
        let err = b.send().await.unwrap_err();
        assert_eq!(code(&err), "ValidationException");
        let attr = if expr.contains("pk") { "pk" } else { "sk" };
        assert_eq!(
            message(&err),
            format!("One or more parameter values were invalid: Cannot update attribute {attr}. This attribute is part of the key")
        );
    }
    // Unused values, and mixing legacy with expressions.
    let err = c
        .update_item()
        .table_name("Upd")
        .set_key(Some(k.clone()))
        .update_expression("SET a = :a")
        .expression_attribute_values(":a", n(1))
        .expression_attribute_values(":b", n(2))
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        message(&err),
        "Value provided in ExpressionAttributeValues unused in expressions: keys: {:b}"
    );
    let err = c
        .update_item()
        .table_name("Upd")
        .set_key(Some(k.clone()))
        .update_expression("SET a = :a")
        .expression_attribute_values(":a", n(1))
        .attribute_updates(
            "b",
            AttributeValueUpdate::builder()
                .action(AttributeAction::Put)
                .value(n(1))
                .build(),
        )
        .send()
        .await
        .unwrap_err();
    assert!(message(&err).starts_with(
        "Can not use both expression and non-expression parameters in the same request"
    ));

    // Legacy AttributeUpdates and Expected.
    c.update_item()
        .table_name("Upd")
        .set_key(Some(k.clone()))
        .attribute_updates(
            "cnt",
            AttributeValueUpdate::builder()
                .action(AttributeAction::Add)
                .value(n(10))
                .build(),
        )
        .attribute_updates(
            "legacy",
            AttributeValueUpdate::builder()
                .action(AttributeAction::Put)
                .value(s("yes"))
                .build(),
        )
        .expected(
            "cnt",
            aws_sdk_dynamodb::types::ExpectedAttributeValue::builder()
                .value(n(6))
                .build(),
        )
        .send()
        .await
        .unwrap();
    let got = c
        .get_item()
        .table_name("Upd")
        .set_key(Some(k.clone()))
        .send()
        .await
        .unwrap();
    let item = got.item().unwrap();
    assert_eq!(num(item, "cnt"), 16);
    assert_eq!(item["legacy"], s("yes"));
    let err = c
        .update_item()
        .table_name("Upd")
        .set_key(Some(k.clone()))
        .attribute_updates(
            "legacy",
            AttributeValueUpdate::builder()
                .action(AttributeAction::Delete)
                .build(),
        )
        .expected(
            "cnt",
            aws_sdk_dynamodb::types::ExpectedAttributeValue::builder()
                .exists(false)
                .build(),
        )
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&err), "ConditionalCheckFailedException");

    // Capacity: TOTAL on an update.
    let out = c
        .update_item()
        .table_name("Upd")
        .set_key(Some(k.clone()))
        .update_expression("SET big = :b")
        .expression_attribute_values(":b", s(&"x".repeat(3000)))
        .return_consumed_capacity(ReturnConsumedCapacity::Total)
        .send()
        .await
        .unwrap();
    let cc = out.consumed_capacity().unwrap();
    assert_eq!(cc.table_name(), Some("Upd"));
    assert_eq!(cc.capacity_units(), Some(3.0));
}

async fn fill(c: &Client, table: &str, pk: &str, count: i64) {
    let mut reqs = Vec::new();
    for i in 0..count {
        let item = HashMap::from([
            ("pk".to_string(), s(pk)),
            ("sk".to_string(), n(i)),
            ("v".to_string(), n(i % 7)),
            ("pad".to_string(), s("payload")),
        ]);
        reqs.push(
            WriteRequest::builder()
                .put_request(PutRequest::builder().set_item(Some(item)).build().unwrap())
                .build(),
        );
        if reqs.len() == 25 {
            let out = c
                .batch_write_item()
                .request_items(table, std::mem::take(&mut reqs))
                .send()
                .await
                .unwrap();
            assert!(out
                .unprocessed_items()
                .unwrap_or(&HashMap::new())
                .is_empty());
        }
    }
    if !reqs.is_empty() {
        c.batch_write_item()
            .request_items(table, reqs)
            .send()
            .await
            .unwrap();
    }
}

fn sks(items: &[Item]) -> Vec<i64> {
    items.iter().map(|i| num(i, "sk")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn query_orders_pages_filters_and_projects() {
    let srv = TestServer::start().await;
    let c = srv.client();
    create(&c, "Qry", Some(ScalarAttributeType::N)).await;
    fill(&c, "Qry", "p", 120).await;
    fill(&c, "Qry", "other", 10).await;

    let q = |lo: i64, hi: i64| {
        c.query()
            .table_name("Qry")
            .key_condition_expression("pk = :p AND sk BETWEEN :lo AND :hi")
            .expression_attribute_values(":p", s("p"))
            .expression_attribute_values(":lo", n(lo))
            .expression_attribute_values(":hi", n(hi))
    };
    let out = q(10, 19).send().await.unwrap();
    assert_eq!(sks(out.items()), (10..=19).collect::<Vec<_>>());
    assert_eq!(out.count(), 10);
    assert!(out.last_evaluated_key().is_none());

    // Descending with Limit and paging.
    let mut got = Vec::new();
    let mut start = None;
    let mut pages = 0;
    loop {
        let out = q(5, 100)
            .scan_index_forward(false)
            .limit(7)
            .set_exclusive_start_key(start)
            .send()
            .await
            .unwrap();
        assert!(out.items().len() <= 7);
        got.extend(sks(out.items()));
        pages += 1;
        start = out.last_evaluated_key().cloned();
        if start.is_none() {
            break;
        }
    }
    assert_eq!(got, (5..=100).rev().collect::<Vec<_>>());
    assert!(pages >= 14);

    // Filter counts after Limit; projection; COUNT.
    let out = c
        .query()
        .table_name("Qry")
        .key_condition_expression("pk = :p AND sk < :hi")
        .filter_expression("v = :z")
        .projection_expression("sk, #v")
        .expression_attribute_names("#v", "v")
        .expression_attribute_values(":p", s("p"))
        .expression_attribute_values(":hi", n(30))
        .expression_attribute_values(":z", n(0))
        .limit(20)
        .send()
        .await
        .unwrap();
    assert_eq!(out.scanned_count(), 20);
    assert_eq!(sks(out.items()), vec![0, 7, 14]);
    assert!(out.items().iter().all(|i| i.len() == 2));
    assert_eq!(out.last_evaluated_key().unwrap()["sk"], n(19));
    let out = c
        .query()
        .table_name("Qry")
        .key_condition_expression("pk = :p")
        .expression_attribute_values(":p", s("other"))
        .select(Select::Count)
        .return_consumed_capacity(ReturnConsumedCapacity::Indexes)
        .send()
        .await
        .unwrap();
    assert_eq!(out.count(), 10);
    assert!(out.items().is_empty());
    let cc = out.consumed_capacity().unwrap();
    assert_eq!(cc.capacity_units(), Some(0.5));
    assert_eq!(cc.table().unwrap().capacity_units(), Some(0.5));

    // Legacy KeyConditions + QueryFilter + AttributesToGet.
    let out = c
        .query()
        .table_name("Qry")
        .key_conditions(
            "pk",
            Condition::builder()
                .comparison_operator(ComparisonOperator::Eq)
                .attribute_value_list(s("p"))
                .build()
                .unwrap(),
        )
        .key_conditions(
            "sk",
            Condition::builder()
                .comparison_operator(ComparisonOperator::Ge)
                .attribute_value_list(n(115))
                .build()
                .unwrap(),
        )
        .query_filter(
            "v",
            Condition::builder()
                .comparison_operator(ComparisonOperator::Ne)
                .attribute_value_list(n(3))
                .build()
                .unwrap(),
        )
        .attributes_to_get("sk")
        .consistent_read(true)
        .send()
        .await
        .unwrap();
    // 115 % 7 == 3 is filtered out.
    assert_eq!(sks(out.items()), vec![116, 117, 118, 119]);

    // Validation errors.
    let err = c
        .query()
        .table_name("Qry")
        .key_condition_expression("pk = :p")
        .filter_expression("sk > :x")
        .expression_attribute_values(":p", s("p"))
        .expression_attribute_values(":x", n(1))
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&err), "ValidationException");
    assert_eq!(
        message(&err),
        "Filter Expression can only contain non-primary key attributes: Primary key attribute: sk"
    );
    let err = c.query().table_name("Qry").send().await.unwrap_err();
    assert_eq!(
        message(&err),
        "Either the KeyConditions or KeyConditionExpression parameter must be specified in the request."
    );
    let err = c
        .query()
        .table_name("Qry")
        .key_condition_expression("pk = :p")
        .expression_attribute_values(":p", n(1))
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        message(&err),
        "One or more parameter values were invalid: Condition parameter type does not match schema type"
    );
    let err = c
        .query()
        .table_name("Qry")
        .key_condition_expression("sk = :p")
        .expression_attribute_values(":p", n(1))
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        message(&err),
        "Query condition missed key schema element: pk"
    );
    let err = c
        .query()
        .table_name("Qry")
        .key_condition_expression("pk = :p")
        .expression_attribute_values(":p", s("p"))
        .select(Select::SpecificAttributes)
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        message(&err),
        "Must specify the AttributesToGet or ProjectionExpression when choosing to get SPECIFIC_ATTRIBUTES"
    );
    let err = c
        .query()
        .table_name("Nope")
        .key_condition_expression("pk = :p")
        .expression_attribute_values(":p", s("p"))
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&err), "ResourceNotFoundException");

    // Deleted items leave the index; re-created ones come back in order.
    for i in [10, 11, 12] {
        c.delete_item()
            .table_name("Qry")
            .set_key(Some(key("p", Some(n(i)))))
            .send()
            .await
            .unwrap();
    }
    let out = q(9, 13).send().await.unwrap();
    assert_eq!(sks(out.items()), vec![9, 13]);
    c.update_item()
        .table_name("Qry")
        .set_key(Some(key("p", Some(n(11)))))
        .update_expression("SET v = :v")
        .expression_attribute_values(":v", n(1))
        .send()
        .await
        .unwrap();
    let out = q(9, 13).send().await.unwrap();
    assert_eq!(sks(out.items()), vec![9, 11, 13]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn query_string_and_binary_keys_and_hash_only_tables() {
    let srv = TestServer::start().await;
    let c = srv.client();
    create(&c, "StrT", Some(ScalarAttributeType::S)).await;
    for sk in ["app", "apple", "apricot", "b", "ap", "Ä", "a\u{10FFFF}"] {
        put(&c, "StrT", key("p", Some(s(sk)))).await;
    }
    let out = c
        .query()
        .table_name("StrT")
        .key_condition_expression("pk = :p AND begins_with(sk, :a)")
        .expression_attribute_values(":p", s("p"))
        .expression_attribute_values(":a", s("ap"))
        .send()
        .await
        .unwrap();
    let got: Vec<&str> = out
        .items()
        .iter()
        .map(|i| i["sk"].as_s().unwrap().as_str())
        .collect();
    assert_eq!(got, vec!["ap", "app", "apple", "apricot"]);

    create(&c, "BinT", Some(ScalarAttributeType::B)).await;
    for b in [
        vec![0u8],
        vec![0xff],
        vec![0xff, 0xff],
        vec![1, 2],
        vec![0, 0],
    ] {
        put(&c, "BinT", key("p", Some(Av::B(Blob::new(b))))).await;
    }
    let out = c
        .query()
        .table_name("BinT")
        .key_condition_expression("pk = :p AND sk > :x")
        .expression_attribute_values(":p", s("p"))
        .expression_attribute_values(":x", Av::B(Blob::new(vec![0u8])))
        .scan_index_forward(false)
        .send()
        .await
        .unwrap();
    let got: Vec<Vec<u8>> = out
        .items()
        .iter()
        .map(|i| i["sk"].as_b().unwrap().as_ref().to_vec())
        .collect();
    assert_eq!(
        got,
        vec![vec![0xff, 0xff], vec![0xff], vec![1, 2], vec![0, 0]]
    );

    create(&c, "Hash", None).await;
    put(
        &c,
        "Hash",
        HashMap::from([("pk".into(), s("x")), ("a".into(), n(1))]),
    )
    .await;
    let out = c
        .query()
        .table_name("Hash")
        .key_condition_expression("pk = :p")
        .expression_attribute_values(":p", s("x"))
        .send()
        .await
        .unwrap();
    assert_eq!(out.count(), 1);
    assert_eq!(out.items()[0]["a"], n(1));
    let out = c
        .query()
        .table_name("Hash")
        .key_condition_expression("pk = :p")
        .expression_attribute_values(":p", s("missing"))
        .send()
        .await
        .unwrap();
    assert_eq!(out.count(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scan_filters_pages_and_parallel_segments() {
    let srv = TestServer::start().await;
    let c = srv.client();
    create(&c, "Scn", Some(ScalarAttributeType::N)).await;
    for p in 0..10 {
        fill(&c, "Scn", &format!("p{p}"), 20).await;
    }
    let all_key = |i: &Item| (i["pk"].as_s().unwrap().clone(), num(i, "sk"));

    // Paging with Limit covers everything exactly once.
    let mut seen = Vec::new();
    let mut start = None;
    loop {
        let out = c
            .scan()
            .table_name("Scn")
            .limit(33)
            .set_exclusive_start_key(start)
            .send()
            .await
            .unwrap();
        assert!(out.items().len() <= 33);
        seen.extend(out.items().iter().map(all_key));
        start = out.last_evaluated_key().cloned();
        if start.is_none() {
            break;
        }
    }
    seen.sort();
    let before = seen.len();
    seen.dedup();
    assert_eq!(before, 200);
    assert_eq!(seen.len(), 200);

    // Parallel scan: segments are disjoint and complete, also when paged.
    for total in [1, 3, 7] {
        let mut union = Vec::new();
        for seg in 0..total {
            let mut start = None;
            loop {
                let out = c
                    .scan()
                    .table_name("Scn")
                    .segment(seg)
                    .total_segments(total)
                    .limit(17)
                    .set_exclusive_start_key(start)
                    .send()
                    .await
                    .unwrap();
                union.extend(out.items().iter().map(all_key));
                start = out.last_evaluated_key().cloned();
                if start.is_none() {
                    break;
                }
            }
        }
        union.sort();
        let len = union.len();
        union.dedup();
        assert_eq!(len, 200, "total {total}: duplicates across segments");
        assert_eq!(union.len(), 200, "total {total}: missing items");
    }

    // Filter (expression and legacy), projection, count.
    let out = c
        .scan()
        .table_name("Scn")
        .filter_expression("v = :z AND sk >= :ten")
        .expression_attribute_values(":z", n(0))
        .expression_attribute_values(":ten", n(10))
        .projection_expression("pk")
        .send()
        .await
        .unwrap();
    assert_eq!(out.count(), 10); // sk 14 in each partition
    assert_eq!(out.scanned_count(), 200);
    assert!(out.items().iter().all(|i| i.len() == 1));
    let out = c
        .scan()
        .table_name("Scn")
        .scan_filter(
            "sk",
            Condition::builder()
                .comparison_operator(ComparisonOperator::Lt)
                .attribute_value_list(n(2))
                .build()
                .unwrap(),
        )
        .select(Select::Count)
        .send()
        .await
        .unwrap();
    assert_eq!(out.count(), 20);
    assert!(out.items().is_empty());

    let err = c
        .scan()
        .table_name("Scn")
        .segment(1)
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        message(&err),
        "The TotalSegments parameter is required but was not present in the request when Segment parameter is present"
    );
    let err = c
        .scan()
        .table_name("Scn")
        .segment(2)
        .total_segments(2)
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        message(&err),
        "The Segment parameter is zero-based and must be less than parameter TotalSegments: Segment: 2 is not less than TotalSegments: 2"
    );
    let err = c
        .scan()
        .table_name("Scn")
        .limit(0)
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&err), "ValidationException");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batches_read_write_and_validate() {
    let srv = TestServer::start().await;
    let c = srv.client();
    create(&c, "Bat1", Some(ScalarAttributeType::N)).await;
    create(&c, "Bat2", None).await;
    fill(&c, "Bat1", "p", 25).await;
    let mut reqs = Vec::new();
    for i in 0..5 {
        reqs.push(
            WriteRequest::builder()
                .put_request(
                    PutRequest::builder()
                        .set_item(Some(HashMap::from([
                            ("pk".into(), s(&format!("h{i}"))),
                            ("x".into(), n(i)),
                        ])))
                        .build()
                        .unwrap(),
                )
                .build(),
        );
    }
    reqs.push(
        WriteRequest::builder()
            .delete_request(
                aws_sdk_dynamodb::types::DeleteRequest::builder()
                    .set_key(Some(key("gone", None)))
                    .build()
                    .unwrap(),
            )
            .build(),
    );
    let out = c
        .batch_write_item()
        .request_items("Bat2", reqs)
        .return_consumed_capacity(ReturnConsumedCapacity::Total)
        .send()
        .await
        .unwrap();
    assert!(out.unprocessed_items().unwrap().is_empty());
    assert_eq!(out.consumed_capacity()[0].capacity_units(), Some(6.0));

    let keys1: Vec<Item> = (0..25).map(|i| key("p", Some(n(i)))).collect();
    let out = c
        .batch_get_item()
        .request_items(
            "Bat1",
            KeysAndAttributes::builder()
                .set_keys(Some(keys1.clone()))
                .projection_expression("sk")
                .consistent_read(true)
                .build()
                .unwrap(),
        )
        .request_items(
            "Bat2",
            KeysAndAttributes::builder()
                .keys(key("h3", None))
                .keys(key("missing", None))
                .build()
                .unwrap(),
        )
        .return_consumed_capacity(ReturnConsumedCapacity::Total)
        .send()
        .await
        .unwrap();
    let r = out.responses().unwrap();
    let mut got = sks(&r["Bat1"]);
    got.sort();
    assert_eq!(got, (0..25).collect::<Vec<_>>());
    assert!(r["Bat1"].iter().all(|i| i.len() == 1));
    assert_eq!(r["Bat2"].len(), 1);
    assert_eq!(num(&r["Bat2"][0], "x"), 3);
    assert!(out.unprocessed_keys().unwrap().is_empty());
    let cc = out.consumed_capacity();
    assert_eq!(cc.len(), 2);
    assert_eq!(cc[0].table_name(), Some("Bat1"));
    assert_eq!(cc[0].capacity_units(), Some(25.0));
    assert_eq!(cc[1].capacity_units(), Some(1.0));

    // Validation: duplicates, too many.
    let err = c
        .batch_get_item()
        .request_items(
            "Bat2",
            KeysAndAttributes::builder()
                .keys(key("h1", None))
                .keys(key("h1", None))
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        message(&err),
        "Provided list of item keys contains duplicates"
    );
    let many: Vec<Item> = (0..101).map(|i| key(&format!("k{i}"), None)).collect();
    let err = c
        .batch_get_item()
        .request_items(
            "Bat2",
            KeysAndAttributes::builder()
                .set_keys(Some(many))
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        message(&err),
        "Too many items requested for the BatchGetItem call"
    );
    let dup = || {
        WriteRequest::builder()
            .put_request(
                PutRequest::builder()
                    .set_item(Some(key("same", None)))
                    .build()
                    .unwrap(),
            )
            .build()
    };
    let err = c
        .batch_write_item()
        .request_items("Bat2", vec![dup(), dup()])
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        message(&err),
        "Provided list of item keys contains duplicates"
    );
    let err = c
        .batch_write_item()
        .request_items(
            "Bat2",
            (0..26)
                .map(|i| {
                    WriteRequest::builder()
                        .put_request(
                            PutRequest::builder()
                                .set_item(Some(key(&format!("z{i}"), None)))
                                .build()
                                .unwrap(),
                        )
                        .build()
                })
                .collect(),
        )
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&err), "ValidationException");
    // Nothing of the rejected batches was written.
    let got = c
        .get_item()
        .table_name("Bat2")
        .set_key(Some(key("same", None)))
        .send()
        .await
        .unwrap();
    assert!(got.item().is_none());
}

fn tx_put(table: &str, item: Item) -> TransactWriteItem {
    TransactWriteItem::builder()
        .put(
            Put::builder()
                .table_name(table)
                .set_item(Some(item))
                .build()
                .unwrap(),
        )
        .build()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transactions_are_all_or_nothing_and_idempotent() {
    let srv = TestServer::start().await;
    let c = srv.client();
    create(&c, "Tx1", Some(ScalarAttributeType::N)).await;
    create(&c, "Tx2", None).await;
    put(
        &c,
        "Tx2",
        HashMap::from([("pk".into(), s("acct")), ("bal".into(), n(100))]),
    )
    .await;
    put(&c, "Tx1", key("p", Some(n(9)))).await;

    let debit = |amount: i64| {
        TransactWriteItem::builder()
            .update(
                Update::builder()
                    .table_name("Tx2")
                    .set_key(Some(key("acct", None)))
                    .update_expression("SET bal = bal - :a")
                    .condition_expression("bal >= :a")
                    .expression_attribute_values(":a", n(amount))
                    .return_values_on_condition_check_failure(
                        ReturnValuesOnConditionCheckFailure::AllOld,
                    )
                    .build()
                    .unwrap(),
            )
            .build()
    };
    let out = c
        .transact_write_items()
        .transact_items(tx_put("Tx1", key("p", Some(n(1)))))
        .transact_items(debit(30))
        .transact_items(
            TransactWriteItem::builder()
                .delete(
                    Delete::builder()
                        .table_name("Tx1")
                        .set_key(Some(key("p", Some(n(9)))))
                        .build()
                        .unwrap(),
                )
                .build(),
        )
        .return_consumed_capacity(ReturnConsumedCapacity::Total)
        .send()
        .await
        .unwrap();
    let cc = out.consumed_capacity();
    assert_eq!(cc.len(), 2);
    assert_eq!(cc[0].capacity_units(), Some(4.0)); // T1: 2 writes x 2
    let bal = |c: Client| async move {
        let got = c
            .get_item()
            .table_name("Tx2")
            .set_key(Some(key("acct", None)))
            .send()
            .await
            .unwrap();
        num(got.item().unwrap(), "bal")
    };
    assert_eq!(bal(c.clone()).await, 70);
    let q = c
        .query()
        .table_name("Tx1")
        .key_condition_expression("pk = :p")
        .expression_attribute_values(":p", s("p"))
        .send()
        .await
        .unwrap();
    assert_eq!(sks(q.items()), vec![1]);

    // A failed member cancels everything; reasons come in request order.
    let err = c
        .transact_write_items()
        .transact_items(tx_put("Tx1", key("p", Some(n(2)))))
        .transact_items(debit(1000))
        .transact_items(
            TransactWriteItem::builder()
                .condition_check(
                    ConditionCheck::builder()
                        .table_name("Tx1")
                        .set_key(Some(key("p", Some(n(1)))))
                        .condition_expression("attribute_exists(pk)")
                        .build()
                        .unwrap(),
                )
                .build(),
        )
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&err), "TransactionCanceledException");
    match err.into_service_error() {
        aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError::TransactionCanceledException(e) => {
            let codes: Vec<&str> = e.cancellation_reasons().iter().map(|r| r.code().unwrap()).collect();
            assert_eq!(codes, vec!["None", "ConditionalCheckFailed", "None"]);
            assert_eq!(num(e.cancellation_reasons()[1].item().unwrap(), "bal"), 70);
        }
        other => panic!("unexpected {other:?}"),
    }
    let got = c
        .get_item()
        .table_name("Tx1")
        .set_key(Some(key("p", Some(n(2)))))
        .send()
        .await
        .unwrap();
    assert!(got.item().is_none(), "cancelled put must not be visible");

    // Idempotency: the same token and request run once.
    for _ in 0..2 {
        c.transact_write_items()
            .client_request_token("token-1")
            .transact_items(debit(10))
            .send()
            .await
            .unwrap();
    }
    assert_eq!(bal(c.clone()).await, 60);
    let err = c
        .transact_write_items()
        .client_request_token("token-1")
        .transact_items(debit(11))
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&err), "IdempotentParameterMismatchException");

    // One item twice; too many members.
    let err = c
        .transact_write_items()
        .transact_items(debit(1))
        .transact_items(debit(2))
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        message(&err),
        "Transaction request cannot include multiple operations on one item"
    );
    let mut b = c.transact_write_items();
    for i in 0..101 {
        b = b.transact_items(tx_put("Tx1", key("p", Some(n(100 + i)))));
    }
    assert_eq!(code(&b.send().await.unwrap_err()), "ValidationException");

    // TransactGetItems: one snapshot, projections, missing items.
    let out = c
        .transact_get_items()
        .transact_items(
            TransactGetItem::builder()
                .get(
                    Get::builder()
                        .table_name("Tx2")
                        .set_key(Some(key("acct", None)))
                        .projection_expression("bal")
                        .build()
                        .unwrap(),
                )
                .build(),
        )
        .transact_items(
            TransactGetItem::builder()
                .get(
                    Get::builder()
                        .table_name("Tx1")
                        .set_key(Some(key("p", Some(n(77)))))
                        .build()
                        .unwrap(),
                )
                .build(),
        )
        .send()
        .await
        .unwrap();
    let r = out.responses();
    assert_eq!(r.len(), 2);
    assert_eq!(r[0].item().unwrap().len(), 1);
    assert_eq!(num(r[0].item().unwrap(), "bal"), 60);
    assert!(r[1].item().is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conditional_increments_are_linearizable() {
    let srv = TestServer::start().await;
    let c = srv.client();
    create(&c, "Ctr", Some(ScalarAttributeType::N)).await;
    put(
        &c,
        "Ctr",
        HashMap::from([
            ("pk".into(), s("ctr")),
            ("sk".into(), n(0)),
            ("v".into(), n(0)),
        ]),
    )
    .await;
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let c = srv.client();
        tasks.push(tokio::spawn(async move {
            let mut ok = 0u64;
            for _ in 0..25 {
                let got = c
                    .get_item()
                    .table_name("Ctr")
                    .set_key(Some(key("ctr", Some(n(0)))))
                    .consistent_read(true)
                    .send()
                    .await
                    .unwrap();
                let cur = num(got.item().unwrap(), "v");
                let r = c
                    .update_item()
                    .table_name("Ctr")
                    .set_key(Some(key("ctr", Some(n(0)))))
                    .update_expression("SET v = :new")
                    .condition_expression("v = :cur")
                    .expression_attribute_values(":new", n(cur + 1))
                    .expression_attribute_values(":cur", n(cur))
                    .send()
                    .await;
                match r {
                    Ok(_) => ok += 1,
                    Err(e) => assert_eq!(code(&e), "ConditionalCheckFailedException"),
                }
            }
            ok
        }));
    }
    let mut total = 0;
    for t in tasks {
        total += t.await.unwrap();
    }
    let got = c
        .get_item()
        .table_name("Ctr")
        .set_key(Some(key("ctr", Some(n(0)))))
        .send()
        .await
        .unwrap();
    assert!(total > 0);
    assert_eq!(num(got.item().unwrap(), "v") as u64, total);
}

fn marker() -> String {
    const A: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let bytes: [u8; 20] = sealdb::crypto::secret::random_bytes().unwrap();
    bytes
        .iter()
        .map(|b| A[(*b as usize) % A.len()] as char)
        .collect()
}

fn needles(m: &[u8]) -> Vec<Vec<u8>> {
    let b64 = base64::engine::general_purpose::STANDARD;
    vec![
        m.to_vec(),
        hex::encode(m).into_bytes(),
        hex::encode_upper(m).into_bytes(),
        b64.encode(m).trim_end_matches('=').as_bytes().to_vec(),
    ]
}

fn scan_dir(dir: &std::path::Path, markers: &[Vec<u8>]) -> (usize, Vec<String>) {
    let all: Vec<Vec<u8>> = markers.iter().flat_map(|m| needles(m)).collect();
    let mut hits = Vec::new();
    let mut files = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
                continue;
            }
            files += 1;
            let bytes = std::fs::read(&p).unwrap();
            for n in &all {
                if bytes.windows(n.len()).any(|w| w == n.as_slice()) {
                    hits.push(p.display().to_string());
                }
            }
        }
    }
    (files, hits)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn canary_with_sort_keys_queries_and_updates() {
    let srv = TestServer::start().await;
    let c = srv.client();
    create(&c, "CanS", Some(ScalarAttributeType::S)).await;
    create(&c, "CanB", Some(ScalarAttributeType::B)).await;
    let mut markers: Vec<Vec<u8>> = Vec::new();
    let pk = marker();
    markers.push(pk.clone().into_bytes());
    for i in 0..150 {
        let (sk, v, upd) = (marker(), marker(), marker());
        for m in [&sk, &v, &upd] {
            markers.push(m.clone().into_bytes());
        }
        let table = if i % 2 == 0 { "CanS" } else { "CanB" };
        let skv = if i % 2 == 0 {
            s(&sk)
        } else {
            Av::B(Blob::new(sk.clone().into_bytes()))
        };
        put(
            &c,
            table,
            HashMap::from([
                ("pk".into(), s(&pk)),
                ("sk".into(), skv.clone()),
                ("v".into(), s(&v)),
            ]),
        )
        .await;
        c.update_item()
            .table_name(table)
            .set_key(Some(HashMap::from([
                ("pk".into(), s(&pk)),
                ("sk".into(), skv),
            ])))
            .update_expression("SET u = :u")
            .expression_attribute_values(":u", s(&upd))
            .send()
            .await
            .unwrap();
    }
    for table in ["CanS", "CanB"] {
        let out = c
            .query()
            .table_name(table)
            .key_condition_expression("pk = :p")
            .expression_attribute_values(":p", s(&pk))
            .send()
            .await
            .unwrap();
        assert_eq!(out.count(), 75);
        let out = c.scan().table_name(table).send().await.unwrap();
        assert_eq!(out.count(), 75);
    }
    srv.services().store.flush_and_compact().unwrap();
    let dir = srv.stop().await;
    let (files, hits) = scan_dir(dir.path(), &markers);
    assert!(files > 0);
    assert!(hits.is_empty(), "plaintext on disk: {hits:?}");
    // The scanner finds a planted marker.
    let plant = tempfile::tempdir().unwrap();
    let m = marker();
    std::fs::write(plant.path().join("x"), hex::encode(&m)).unwrap();
    assert_eq!(scan_dir(plant.path(), &[m.into_bytes()]).1.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn query_and_scan_pages_stop_at_one_megabyte() {
    let srv = TestServer::start().await;
    let c = srv.client();
    create(&c, "Large", Some(ScalarAttributeType::N)).await;
    let blob = "x".repeat(390_000);
    for i in 0..5 {
        put(
            &c,
            "Large",
            HashMap::from([
                ("pk".into(), s("p")),
                ("sk".into(), n(i)),
                ("d".into(), s(&blob)),
            ]),
        )
        .await;
    }
    let q = c
        .query()
        .table_name("Large")
        .key_condition_expression("pk = :p")
        .expression_attribute_values(":p", s("p"))
        .return_consumed_capacity(ReturnConsumedCapacity::Total);
    let out = q.clone().send().await.unwrap();
    // 3 x ~390 KB crosses 1 MB: the page ends there.
    assert_eq!(out.count(), 3);
    assert_eq!(out.last_evaluated_key().unwrap()["sk"], n(2));
    let size = 3 * (390_000 + 1 + 2 + 1 + 1 + 2 + 2); // d + pk + sk, names and values
    let units = (size as f64 / 4096.0).ceil() / 2.0;
    assert_eq!(
        out.consumed_capacity().unwrap().capacity_units(),
        Some(units)
    );
    let out = q
        .set_exclusive_start_key(out.last_evaluated_key().cloned())
        .send()
        .await
        .unwrap();
    assert_eq!(sks(out.items()), vec![3, 4]);
    assert!(out.last_evaluated_key().is_none());
    let out = c.scan().table_name("Large").send().await.unwrap();
    assert_eq!(out.count(), 3);
    assert!(out.last_evaluated_key().is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fine_grained_iam_keys_of_the_item_api() {
    use sealdb::ops::admin::{run, AdminInput};
    use sealdb::protocol::AdminOp;
    let srv = TestServer::start().await;
    let admin = srv.client();
    create(&admin, "Tenants", Some(ScalarAttributeType::N)).await;
    put(&admin, "Tenants", key("mine", Some(n(1)))).await;
    put(&admin, "Tenants", key("other", Some(n(1)))).await;
    let cat = &srv.services().catalog;
    let user = |extra: AdminInput| AdminInput {
        user_name: Some("tenant".into()),
        ..extra
    };
    run(cat, AdminOp::CreateUser, user(AdminInput::default()))
        .await
        .unwrap();
    run(
        cat,
        AdminOp::PutUserPolicy,
        user(AdminInput {
            policy_name: Some("tenant".into()),
            policy_document: Some(
                r#"{"Version":"2012-10-17","Statement":[
            {"Effect":"Allow","Action":["dynamodb:Query","dynamodb:GetItem"],"Resource":"*",
             "Condition":{"ForAllValues:StringEquals":{"dynamodb:LeadingKeys":["mine"]}}},
            {"Effect":"Allow","Action":"dynamodb:PutItem","Resource":"*",
             "Condition":{"StringEquals":{"dynamodb:EnclosingOperation":"TransactWriteItems"}}},
            {"Effect":"Allow","Action":"dynamodb:Scan","Resource":"*",
             "Condition":{"StringEquals":{"dynamodb:Select":"COUNT"}}}]}"#
                    .into(),
            ),
            ..Default::default()
        }),
    )
    .await
    .unwrap();
    let k = run(cat, AdminOp::CreateAccessKey, user(AdminInput::default()))
        .await
        .unwrap();
    let t = client_for(
        &srv.endpoint,
        k["AccessKey"]["AccessKeyId"].as_str().unwrap(),
        k["AccessKey"]["SecretAccessKey"].as_str().unwrap(),
    );
    let query = |pk: &str| {
        t.query()
            .table_name("Tenants")
            .key_condition_expression("pk = :p")
            .expression_attribute_values(":p", s(pk))
            .send()
    };
    assert_eq!(query("mine").await.unwrap().count(), 1);
    let err = query("other").await.unwrap_err();
    assert_eq!(code(&err), "AccessDeniedException");
    assert!(message(&err).contains("dynamodb:Query"));
    // PutItem only inside a transaction.
    t.transact_write_items()
        .transact_items(tx_put("Tenants", key("mine", Some(n(2)))))
        .send()
        .await
        .unwrap();
    let err = t
        .put_item()
        .table_name("Tenants")
        .set_item(Some(key("mine", Some(n(3)))))
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&err), "AccessDeniedException");
    // Scan only as COUNT; batches need their own action.
    let out = t
        .scan()
        .table_name("Tenants")
        .select(Select::Count)
        .send()
        .await
        .unwrap();
    assert_eq!(out.count(), 3);
    let err = t.scan().table_name("Tenants").send().await.unwrap_err();
    assert_eq!(code(&err), "AccessDeniedException");
    let err = t
        .batch_get_item()
        .request_items(
            "Tenants",
            KeysAndAttributes::builder()
                .keys(key("mine", Some(n(1))))
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap_err();
    assert!(message(&err).contains("dynamodb:BatchGetItem on resource"));
}
