//! PutItem throughput with 0, 1 and 3 global secondary indexes (ALL projection), through the
//! operation layer of a real server instance (sealing, index maintenance, durable commits;
//! HTTP and SigV4 left out so that the index cost is what varies). Each put writes a new item
//! of ~200 bytes whose index keys spread over 64 index partitions.
//! Run: `cargo bench --bench gsi_put`.

use std::sync::Arc;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use sealdb::app;
use sealdb::config::Config;
use sealdb::ops::Services;
use sealdb::protocol::input::{decode, CreateTableInput, PutItemInput};
use serde_json::{json, Value};

fn create_body(name: &str, gsis: usize) -> Value {
    let mut attrs = vec![json!({"AttributeName": "pk", "AttributeType": "S"})];
    let mut list = Vec::new();
    for i in 0..gsis {
        attrs.push(json!({"AttributeName": format!("g{i}"), "AttributeType": "S"}));
        attrs.push(json!({"AttributeName": format!("s{i}"), "AttributeType": "N"}));
        list.push(json!({
            "IndexName": format!("gsi{i}"),
            "KeySchema": [
                {"AttributeName": format!("g{i}"), "KeyType": "HASH"},
                {"AttributeName": format!("s{i}"), "KeyType": "RANGE"}
            ],
            "Projection": {"ProjectionType": "ALL"}
        }));
    }
    let mut body = json!({
        "TableName": name,
        "BillingMode": "PAY_PER_REQUEST",
        "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
        "AttributeDefinitions": attrs,
    });
    if gsis > 0 {
        body["GlobalSecondaryIndexes"] = Value::Array(list);
    }
    body
}

fn put_body(name: &str, i: u64) -> Vec<u8> {
    let mut item = json!({
        "pk": {"S": format!("user#{i:012}")},
        "payload": {"S": "x".repeat(150)},
    });
    for g in 0..3 {
        item[format!("g{g}")] = json!({"S": format!("part{}", (i * 7 + g) % 64)});
        item[format!("s{g}")] = json!({"N": format!("{}", i.wrapping_mul(2654435761) % 1_000_000)});
    }
    serde_json::to_vec(&json!({"TableName": name, "Item": item})).unwrap()
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let running = rt
        .block_on(app::start(Config {
            listen: "127.0.0.1:0".into(),
            data_dir: dir.path().to_path_buf(),
            ..Config::default()
        }))
        .unwrap();
    let svc: Arc<Services> = running.services.clone();
    let mut g = c.benchmark_group("put_item_gsis");
    g.throughput(Throughput::Elements(1));
    g.sample_size(50);
    for gsis in [0usize, 1, 3] {
        let name = format!("bench_gsi_{gsis}");
        let input: CreateTableInput =
            decode(&serde_json::to_vec(&create_body(&name, gsis)).unwrap()).unwrap();
        rt.block_on(sealdb::ops::tables::create_table(&svc, input))
            .unwrap();
        let mut i = 0u64;
        g.bench_function(format!("{gsis}_gsi"), |b| {
            b.iter(|| {
                i += 1;
                let input: PutItemInput = decode(&put_body(&name, i)).unwrap();
                rt.block_on(sealdb::ops::items::put_item(&svc, input))
                    .unwrap()
            })
        });
    }
    g.finish();
    drop(running);
}

criterion_group!(benches, bench);
criterion_main!(benches);
