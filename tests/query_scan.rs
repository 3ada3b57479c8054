//! Query and Scan through a real client: order, paging, filters, projections, Select, the
//! 1 MB page limit, parallel scan segments, and the canary scan with sort-key tables, queries
//! and updates in the mix.

mod common;
mod item_helpers;

use std::collections::HashMap;

use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::{
    AttributeValue as Av, ComparisonOperator, Condition, ReturnConsumedCapacity,
    ScalarAttributeType, Select,
};
use base64::Engine;
use common::*;
use item_helpers::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn query_orders_pages_filters_and_projects() {
    let srv = TestServer::start().await;
    let c = srv.client();
    create_table(&c, "Qry", Some(ScalarAttributeType::N)).await;
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
    create_table(&c, "StrT", Some(ScalarAttributeType::S)).await;
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

    create_table(&c, "BinT", Some(ScalarAttributeType::B)).await;
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

    create_table(&c, "Hash", None).await;
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
    create_table(&c, "Scn", Some(ScalarAttributeType::N)).await;
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
    // A key from one segment handed to another. Partition tokens are keyed per table, so
    // which segments hold items differs from run to run: take the first that holds one.
    let mut from = None;
    for seg in 0..3 {
        let page = c
            .scan()
            .table_name("Scn")
            .segment(seg)
            .total_segments(3)
            .limit(1)
            .send()
            .await
            .unwrap();
        if let Some(k) = page.last_evaluated_key() {
            from = Some((seg, k.clone()));
            break;
        }
    }
    let (seg, key) = from.expect("some segment holds an item");
    let err = c
        .scan()
        .table_name("Scn")
        .segment((seg + 1) % 3)
        .total_segments(3)
        .set_exclusive_start_key(Some(key))
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        message(&err),
        "The provided Exclusive start key does not map to the provided segment"
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
async fn query_and_scan_pages_stop_at_one_megabyte() {
    let srv = TestServer::start().await;
    let c = srv.client();
    create_table(&c, "Large", Some(ScalarAttributeType::N)).await;
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
    let mut all = vec![
        m.to_vec(),
        hex::encode(m).into_bytes(),
        hex::encode_upper(m).into_bytes(),
        b64.encode(m).trim_end_matches('=').as_bytes().to_vec(),
    ];
    // A marker whose hex has no letter a-f encodes the same in both cases: one needle, so
    // that one planted copy is one hit.
    all.sort();
    all.dedup();
    all
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
    create_table(&c, "CanS", Some(ScalarAttributeType::S)).await;
    create_table(&c, "CanB", Some(ScalarAttributeType::B)).await;
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
