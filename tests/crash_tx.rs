//! SIGKILL during a transactional load: after restart, every transaction is wholly visible or
//! wholly absent (items and their sort-index entries alike).

mod common;

use std::collections::HashMap;
use std::time::Duration;

use aws_sdk_dynamodb::types::{AttributeValue as Av, Put, ScalarAttributeType, TransactWriteItem};
use common::*;

fn put(table: &str, pk: &str, sk: i64) -> TransactWriteItem {
    let item = HashMap::from([
        ("pk".to_string(), Av::S(pk.to_string())),
        ("sk".to_string(), Av::N(sk.to_string())),
    ]);
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
async fn no_partial_transaction_survives_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let srv = ChildServer::start(dir.path());
    let c = srv.client();
    create_table(&c, "Crash", Some(ScalarAttributeType::N)).await;

    // Two writers: transaction i puts sk=i into partitions "a" and "b".
    let mut tasks = Vec::new();
    for w in 0..2i64 {
        let c = c.clone();
        tasks.push(tokio::spawn(async move {
            let mut acked = Vec::new();
            for i in 0..10_000i64 {
                let sk = i * 2 + w;
                let r = c
                    .transact_write_items()
                    .transact_items(put("Crash", "a", sk))
                    .transact_items(put("Crash", "b", sk))
                    .send()
                    .await;
                match r {
                    Ok(_) => acked.push(sk),
                    Err(_) => break, // the server died
                }
            }
            acked
        }));
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    srv.kill9();
    let mut acked = Vec::new();
    for t in tasks {
        acked.extend(t.await.unwrap());
    }
    assert!(
        !acked.is_empty(),
        "no transaction completed before the kill"
    );

    let srv = ChildServer::start(dir.path());
    let c = srv.client();
    let mut parts = Vec::new();
    for pk in ["a", "b"] {
        let mut got = Vec::new();
        let mut start = None;
        loop {
            let out = c
                .query()
                .table_name("Crash")
                .key_condition_expression("pk = :p")
                .expression_attribute_values(":p", Av::S(pk.into()))
                .consistent_read(true)
                .set_exclusive_start_key(start)
                .send()
                .await
                .unwrap();
            got.extend(
                out.items()
                    .iter()
                    .map(|i| i["sk"].as_n().unwrap().parse::<i64>().unwrap()),
            );
            start = out.last_evaluated_key().cloned();
            if start.is_none() {
                break;
            }
        }
        parts.push(got);
    }
    assert_eq!(parts[0], parts[1], "a transaction is half visible");
    for sk in &acked {
        assert!(
            parts[0].binary_search(sk).is_ok(),
            "acknowledged transaction {sk} lost"
        );
    }
    // Scan agrees with the index: every item has its entry and vice versa.
    let mut scanned = 0;
    let mut start = None;
    loop {
        let out = c
            .scan()
            .table_name("Crash")
            .set_exclusive_start_key(start)
            .send()
            .await
            .unwrap();
        scanned += out.count();
        start = out.last_evaluated_key().cloned();
        if start.is_none() {
            break;
        }
    }
    assert_eq!(scanned as usize, parts[0].len() * 2);
    srv.terminate();
}
