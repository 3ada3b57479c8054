//! The item API beyond Put/Get/Delete through a real client: UpdateItem, the batches, the
//! transactions, consumed capacity, fine-grained IAM keys and concurrent conditional writes.
//! Query and Scan: tests/query_scan.rs; the reference-model property test: tests/query_model.rs.

mod common;
mod item_helpers;

use std::collections::HashMap;

use aws_sdk_dynamodb::types::{
    AttributeAction, AttributeValue as Av, AttributeValueUpdate, ConditionCheck, Delete, Get,
    KeysAndAttributes, PutRequest, ReturnConsumedCapacity, ReturnValue,
    ReturnValuesOnConditionCheckFailure, ScalarAttributeType, Select, TransactGetItem,
    TransactWriteItem, Update, WriteRequest,
};
use aws_sdk_dynamodb::Client;
use common::*;
use item_helpers::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn update_item_expressions_return_values_and_protections() {
    let srv = TestServer::start().await;
    let c = srv.client();
    create_table(&c, "Upd", Some(ScalarAttributeType::N)).await;
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batches_read_write_and_validate() {
    let srv = TestServer::start().await;
    let c = srv.client();
    create_table(&c, "Bat1", Some(ScalarAttributeType::N)).await;
    create_table(&c, "Bat2", None).await;
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transactions_are_all_or_nothing_and_idempotent() {
    let srv = TestServer::start().await;
    let c = srv.client();
    create_table(&c, "Tx1", Some(ScalarAttributeType::N)).await;
    create_table(&c, "Tx2", None).await;
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
    create_table(&c, "Ctr", Some(ScalarAttributeType::N)).await;
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fine_grained_iam_keys_of_the_item_api() {
    use sealdb::ops::admin::{run, AdminInput};
    use sealdb::protocol::AdminOp;
    let srv = TestServer::start().await;
    let admin = srv.client();
    create_table(&admin, "Tenants", Some(ScalarAttributeType::N)).await;
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batch_get_returns_unprocessed_keys_beyond_16_megabytes() {
    let srv = TestServer::start().await;
    let c = srv.client();
    create_table(&c, "Huge", None).await;
    let blob = "y".repeat(399_000);
    let keys: Vec<Item> = (0..45).map(|i| key(&format!("k{i:02}"), None)).collect();
    for k in &keys {
        let mut item = k.clone();
        item.insert("d".into(), s(&blob));
        put(&c, "Huge", item).await;
    }
    let mut pending = keys.clone();
    let mut seen = Vec::new();
    let mut rounds = 0;
    while !pending.is_empty() {
        rounds += 1;
        let out = c
            .batch_get_item()
            .request_items(
                "Huge",
                KeysAndAttributes::builder()
                    .set_keys(Some(pending.clone()))
                    .build()
                    .unwrap(),
            )
            .send()
            .await
            .unwrap();
        let got = &out.responses().unwrap()["Huge"];
        assert!(got.len() * 399_000 <= 16 * 1024 * 1024);
        seen.extend(got.iter().map(|i| i["pk"].as_s().unwrap().clone()));
        pending = out
            .unprocessed_keys()
            .and_then(|u| u.get("Huge"))
            .map(|k| k.keys().to_vec())
            .unwrap_or_default();
        assert!(rounds < 5);
    }
    assert_eq!(rounds, 2, "the first response must stop at 16 MB");
    seen.sort();
    assert_eq!(seen.len(), 45);
    seen.dedup();
    assert_eq!(seen.len(), 45);
}

/// GetItem's response (serialized straight from the item): the item with every type, the
/// projection, ConsumedCapacity for eventually and strongly consistent reads, and an absent
/// item (no `Item` member, capacity still reported).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_item_response_projection_and_capacity() {
    let srv = TestServer::start().await;
    let c = srv.client();
    create_table(&c, "GetCap", Some(ScalarAttributeType::N)).await;
    let k = key("a", Some(n(1)));
    let mut item = k.clone();
    item.insert("big".into(), s(&"x".repeat(5000)));
    item.insert(
        "nested".into(),
        Av::M(HashMap::from([(
            "l".into(),
            Av::L(vec![n(2), Av::Bool(true), Av::Null(true)]),
        )])),
    );
    item.insert("set".into(), Av::Ns(vec!["1.5".into(), "-2".into()]));
    item.insert(
        "bin".into(),
        Av::B(aws_sdk_dynamodb::primitives::Blob::new(vec![0u8, 255, 7])),
    );
    c.put_item()
        .table_name("GetCap")
        .set_item(Some(item.clone()))
        .send()
        .await
        .unwrap();

    // Whole item, eventually consistent: 5 KB is two 4 KB units, halved.
    let got = c
        .get_item()
        .table_name("GetCap")
        .set_key(Some(k.clone()))
        .return_consumed_capacity(ReturnConsumedCapacity::Total)
        .send()
        .await
        .unwrap();
    let back = got.item().unwrap();
    assert_eq!(back.len(), item.len());
    for (name, v) in &item {
        if name == "set" {
            let Av::Ns(mut ns) = back[name].clone() else {
                panic!("{:?}", back[name])
            };
            ns.sort();
            assert_eq!(ns, ["-2", "1.5"]);
        } else {
            assert_eq!(&back[name], v, "{name}");
        }
    }
    let cc = got.consumed_capacity().unwrap();
    assert_eq!(cc.table_name(), Some("GetCap"));
    assert_eq!(cc.capacity_units(), Some(1.0));

    // Projection and a strongly consistent read (full units).
    let got = c
        .get_item()
        .table_name("GetCap")
        .set_key(Some(k.clone()))
        .projection_expression("#n.l[1], sk")
        .expression_attribute_names("#n", "nested")
        .consistent_read(true)
        .return_consumed_capacity(ReturnConsumedCapacity::Total)
        .send()
        .await
        .unwrap();
    let back = got.item().unwrap();
    assert_eq!(back.len(), 2, "{back:?}");
    assert_eq!(back["sk"], n(1));
    assert_eq!(
        back["nested"],
        Av::M(HashMap::from([("l".into(), Av::L(vec![Av::Bool(true)]))]))
    );
    assert_eq!(got.consumed_capacity().unwrap().capacity_units(), Some(2.0));

    // Absent item: no Item, capacity still reported; without capacity the answer is empty.
    let missing = key("zz", Some(n(9)));
    let got = c
        .get_item()
        .table_name("GetCap")
        .set_key(Some(missing.clone()))
        .return_consumed_capacity(ReturnConsumedCapacity::Total)
        .send()
        .await
        .unwrap();
    assert!(got.item().is_none());
    assert_eq!(got.consumed_capacity().unwrap().capacity_units(), Some(0.5));
    let got = c
        .get_item()
        .table_name("GetCap")
        .set_key(Some(missing))
        .send()
        .await
        .unwrap();
    assert!(got.item().is_none() && got.consumed_capacity().is_none());
}
