//! Item seal/open (encode + HKDF + AES-256-GCM, and the reverse with re-tokenization or, for a
//! known key, a key comparison) and storage put/get through the sealed path, for 1 KiB items.
use std::sync::Arc;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use sealdb::catalog::tables::TableDef;
use sealdb::crypto::keyring::{create_table_keys, TableKeys, WrappedTableKeys};
use sealdb::items::{self, ItemKey, BASE_INDEX};
use sealdb::kms::local::{LocalKms, DEFAULT_ALIAS};
use sealdb::protocol::attr::{AttributeValue, Item};
use sealdb::storage::{Check, RocksStore, Space, Store, Write};

fn table() -> (TableDef, TableKeys) {
    let kms = LocalKms::in_memory("000000000000", "us-east-1").unwrap();
    let ks = [9u8; 16];
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (wrapped, keys): (WrappedTableKeys, TableKeys) = rt
        .block_on(create_table_keys(&kms, DEFAULT_ALIAS, &ks))
        .unwrap();
    // Built through serde so that optional TableDef fields (tags, indexes, ...) take their
    // stored defaults, as for a record written by an older version.
    let def: TableDef = serde_json::from_value(serde_json::json!({
        "name": "bench",
        "table_id": "id",
        "keyspace": hex::encode(ks),
        "key_schema": {"hash": {"name": "pk", "ty": "S"}, "range": null},
        "attribute_definitions": [],
        "billing_mode": "PAY_PER_REQUEST",
        "throughput": null,
        "created": 0.0,
        "sse_explicit": false,
        "keys": serde_json::to_value(&wrapped).unwrap(),
    }))
    .unwrap();
    (def, keys)
}

fn item_1k(i: usize) -> (ItemKey, Item) {
    let pk = AttributeValue::S(format!("user#{i:08}"));
    let mut item = Item::new();
    item.insert("pk".into(), pk.clone());
    item.insert("payload".into(), AttributeValue::S("x".repeat(1000)));
    (ItemKey { pk, sk: None }, item)
}

fn seal_open(c: &mut Criterion) {
    let (def, keys) = table();
    let (key, item) = item_1k(1);
    let sk = items::storage_key(&keys, BASE_INDEX, &key).unwrap();
    let sealed = items::seal(&keys, BASE_INDEX, &sk, &item).unwrap();
    let mut g = c.benchmark_group("item_1KiB");
    g.throughput(Throughput::Elements(1));
    g.bench_function("seal", |b| {
        b.iter(|| items::seal(&keys, BASE_INDEX, &sk, &item).unwrap())
    });
    g.bench_function("open", |b| {
        b.iter(|| items::open(&keys, &def, BASE_INDEX, &sk, &sealed).unwrap())
    });
    // What GetItem and single-item writes do: the key is known, so the decrypted key is
    // compared with it instead of being re-tokenized.
    let at = items::KeyedAt::new(&keys, BASE_INDEX, &key).unwrap();
    g.bench_function("open_keyed", |b| {
        b.iter(|| at.open(&keys, &def, &sealed).unwrap())
    });
    g.bench_function("storage_key", |b| {
        b.iter(|| items::storage_key(&keys, BASE_INDEX, &key).unwrap())
    });
    g.finish();
}

fn store_put_get(c: &mut Criterion) {
    let (def, keys) = table();
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(RocksStore::open(dir.path()).unwrap());
    let mut g = c.benchmark_group("sealed_store_1KiB");
    g.throughput(Throughput::Elements(1));
    let mut i = 0usize;
    g.bench_function("put_synced", |b| {
        b.iter_batched(
            || {
                i += 1;
                item_1k(i)
            },
            |(key, item)| {
                let sk = items::storage_key(&keys, BASE_INDEX, &key).unwrap();
                let v = items::seal(&keys, BASE_INDEX, &sk, &item).unwrap();
                store
                    .commit(
                        &[Check {
                            space: Space::Items,
                            key: sk.clone(),
                            expect: None,
                        }],
                        &[Write::Put {
                            space: Space::Items,
                            key: sk,
                            value: v,
                        }],
                    )
                    .unwrap();
            },
            BatchSize::SmallInput,
        )
    });
    let n = i.max(1);
    let mut j = 0usize;
    g.bench_function("get_open", |b| {
        b.iter(|| {
            j = j % n + 1;
            let (key, _) = item_1k(j);
            let sk = items::storage_key(&keys, BASE_INDEX, &key).unwrap();
            let v = store.get(Space::Items, &sk).unwrap().unwrap();
            items::open(&keys, &def, BASE_INDEX, &sk, &v).unwrap()
        })
    });
    g.finish();
}

criterion_group!(benches, seal_open, store_put_get);
criterion_main!(benches);
