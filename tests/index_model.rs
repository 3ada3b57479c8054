//! A reference-model property test: random puts, updates (index keys set, changed, removed),
//! deletes, batches and transactions against a table with a GSI and an LSI; every index query
//! (paged) must return what a plaintext model (a BTreeMap) says, in index order.

mod common;
mod item_helpers;

use std::collections::{BTreeMap, HashMap};

use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType,
    LocalSecondaryIndex, Projection, ProjectionType, PutRequest, ScalarAttributeType, WriteRequest,
};
use aws_sdk_dynamodb::Client;
use common::*;
use item_helpers::*;
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Op {
    /// pk, sk, g (GSI hash), gs (GSI range), l (LSI range), v (projected), via batch?
    Put(u8, u8, Option<u8>, u8, Option<u8>, u8, bool),
    /// Sets g (or removes it with None) on an item, via a transaction?
    SetG(u8, u8, Option<u8>, bool),
    Delete(u8, u8),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0u8..3, 0u8..6, proptest::option::of(0u8..3), 0u8..4, proptest::option::of(0u8..5), 0u8..9, any::<bool>())
            .prop_map(|(p, s, g, gs, l, v, b)| Op::Put(p, s, g, gs, l, v, b)),
        2 => (0u8..3, 0u8..6, proptest::option::of(0u8..3), any::<bool>())
            .prop_map(|(p, s, g, t)| Op::SetG(p, s, g, t)),
        1 => (0u8..3, 0u8..6).prop_map(|(p, s)| Op::Delete(p, s)),
    ]
}

fn ks(hash: &str, range: &str) -> Vec<KeySchemaElement> {
    vec![
        KeySchemaElement::builder()
            .attribute_name(hash)
            .key_type(KeyType::Hash)
            .build()
            .unwrap(),
        KeySchemaElement::builder()
            .attribute_name(range)
            .key_type(KeyType::Range)
            .build()
            .unwrap(),
    ]
}

fn attr(n: &str, t: ScalarAttributeType) -> AttributeDefinition {
    AttributeDefinition::builder()
        .attribute_name(n)
        .attribute_type(t)
        .build()
        .unwrap()
}

async fn create(c: &Client) {
    c.create_table()
        .table_name("Model")
        .billing_mode(BillingMode::PayPerRequest)
        .set_key_schema(Some(ks("pk", "sk")))
        .attribute_definitions(attr("pk", ScalarAttributeType::S))
        .attribute_definitions(attr("sk", ScalarAttributeType::N))
        .attribute_definitions(attr("g", ScalarAttributeType::S))
        .attribute_definitions(attr("gs", ScalarAttributeType::N))
        .attribute_definitions(attr("l", ScalarAttributeType::N))
        .global_secondary_indexes(
            GlobalSecondaryIndex::builder()
                .index_name("byG")
                .set_key_schema(Some(ks("g", "gs")))
                .projection(
                    Projection::builder()
                        .projection_type(ProjectionType::Include)
                        .non_key_attributes("v")
                        .build(),
                )
                .build()
                .unwrap(),
        )
        .local_secondary_indexes(
            LocalSecondaryIndex::builder()
                .index_name("byL")
                .set_key_schema(Some(ks("pk", "l")))
                .projection(
                    Projection::builder()
                        .projection_type(ProjectionType::KeysOnly)
                        .build(),
                )
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
}

type Model = BTreeMap<(u8, u8), Item>;

async fn apply(c: &Client, model: &mut Model, op: &Op) {
    match op {
        Op::Put(p, sk, g, gs, l, v, batch) => {
            let mut item: Item = HashMap::from([
                ("pk".to_string(), s(&format!("p{p}"))),
                ("sk".to_string(), n(*sk as i64)),
                ("gs".to_string(), n(*gs as i64)),
                ("v".to_string(), n(*v as i64)),
                ("w".to_string(), s("unprojected")),
            ]);
            if let Some(g) = g {
                item.insert("g".into(), s(&format!("g{g}")));
            }
            if let Some(l) = l {
                item.insert("l".into(), n(*l as i64));
            }
            if *batch {
                c.batch_write_item()
                    .request_items(
                        "Model",
                        vec![WriteRequest::builder()
                            .put_request(
                                PutRequest::builder()
                                    .set_item(Some(item.clone()))
                                    .build()
                                    .unwrap(),
                            )
                            .build()],
                    )
                    .send()
                    .await
                    .unwrap();
            } else {
                put(c, "Model", item.clone()).await;
            }
            model.insert((*p, *sk), item);
        }
        Op::SetG(p, sk, g, tx) => {
            let expr = if g.is_some() {
                "SET g = :g"
            } else {
                "REMOVE g"
            };
            let vals: Option<HashMap<String, aws_sdk_dynamodb::types::AttributeValue>> =
                g.map(|g| HashMap::from([(":g".to_string(), s(&format!("g{g}")))]));
            if *tx {
                let u = aws_sdk_dynamodb::types::Update::builder()
                    .table_name("Model")
                    .key("pk", s(&format!("p{p}")))
                    .key("sk", n(*sk as i64))
                    .update_expression(expr)
                    .set_expression_attribute_values(vals)
                    .build()
                    .unwrap();
                c.transact_write_items()
                    .transact_items(
                        aws_sdk_dynamodb::types::TransactWriteItem::builder()
                            .update(u)
                            .build(),
                    )
                    .send()
                    .await
                    .unwrap();
            } else {
                c.update_item()
                    .table_name("Model")
                    .key("pk", s(&format!("p{p}")))
                    .key("sk", n(*sk as i64))
                    .update_expression(expr)
                    .set_expression_attribute_values(vals)
                    .send()
                    .await
                    .unwrap();
            }
            let e = model.entry((*p, *sk)).or_insert_with(|| {
                HashMap::from([
                    ("pk".to_string(), s(&format!("p{p}"))),
                    ("sk".to_string(), n(*sk as i64)),
                ])
            });
            match g {
                Some(g) => {
                    e.insert("g".into(), s(&format!("g{g}")));
                }
                None => {
                    e.remove("g");
                }
            }
        }
        Op::Delete(p, sk) => {
            c.delete_item()
                .table_name("Model")
                .key("pk", s(&format!("p{p}")))
                .key("sk", n(*sk as i64))
                .send()
                .await
                .unwrap();
            model.remove(&(*p, *sk));
        }
    }
}

async fn query_all(
    c: &Client,
    index: &str,
    attr: &str,
    v: aws_sdk_dynamodb::types::AttributeValue,
) -> Vec<Item> {
    let mut out = Vec::new();
    let mut start = None;
    loop {
        let r = c
            .query()
            .table_name("Model")
            .index_name(index)
            .key_condition_expression("#k = :v")
            .expression_attribute_names("#k", attr)
            .expression_attribute_values(":v", v.clone())
            .limit(3)
            .set_exclusive_start_key(start)
            .send()
            .await
            .unwrap();
        out.extend(r.items().iter().cloned());
        match r.last_evaluated_key() {
            Some(k) => start = Some(k.clone()),
            None => return out,
        }
    }
}

fn only(item: &Item, names: &[&str]) -> Item {
    item.iter()
        .filter(|(k, _)| names.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// Entries sorted by (index sort key, table key): index order up to ties, which DynamoDB
/// leaves unspecified, so ties are compared as sets.
fn canonical(mut v: Vec<Item>, sort: &str) -> Vec<(i64, String, i64, Item)> {
    let mut out: Vec<(i64, String, i64, Item)> = v
        .drain(..)
        .map(|i| {
            (
                num(&i, sort),
                i["pk"].as_s().unwrap().clone(),
                num(&i, "sk"),
                i,
            )
        })
        .collect();
    out.sort_by(|a, b| (a.0, &a.1, a.2).cmp(&(b.0, &b.1, b.2)));
    out
}

async fn check(c: &Client, model: &Model) {
    for g in 0..3u8 {
        let got = query_all(c, "byG", "g", s(&format!("g{g}"))).await;
        let sorts: Vec<i64> = got.iter().map(|i| num(i, "gs")).collect();
        assert!(
            sorts.windows(2).all(|w| w[0] <= w[1]),
            "GSI order: {sorts:?}"
        );
        let want: Vec<Item> = model
            .values()
            .filter(|i| i.get("g") == Some(&s(&format!("g{g}"))) && i.contains_key("gs"))
            .map(|i| only(i, &["pk", "sk", "g", "gs", "v"]))
            .collect();
        assert_eq!(canonical(got, "gs"), canonical(want, "gs"), "GSI g{g}");
    }
    for p in 0..3u8 {
        let got = query_all(c, "byL", "pk", s(&format!("p{p}"))).await;
        let want: Vec<Item> = model
            .values()
            .filter(|i| i["pk"] == s(&format!("p{p}")) && i.contains_key("l"))
            .map(|i| only(i, &["pk", "sk", "l"]))
            .collect();
        let sorts: Vec<i64> = got.iter().map(|i| num(i, "l")).collect();
        assert!(
            sorts.windows(2).all(|w| w[0] <= w[1]),
            "LSI order: {sorts:?}"
        );
        assert_eq!(canonical(got, "l"), canonical(want, "l"), "LSI p{p}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 8, ..ProptestConfig::default() })]
    #[test]
    fn indexes_match_the_model(ops in proptest::collection::vec(op(), 1..60)) {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        rt.block_on(async {
            let srv = TestServer::start().await;
            let c = srv.client();
            create(&c).await;
            let mut model = Model::new();
            for (i, op) in ops.iter().enumerate() {
                apply(&c, &mut model, op).await;
                if i % 15 == 14 {
                    check(&c, &model).await;
                }
            }
            check(&c, &model).await;
            // And after a restart (figures and caches start over, entries are on disk).
            let dir = srv.stop().await;
            let srv = TestServer::start_in(dir).await;
            check(&srv.client(), &model).await;
            srv.stop().await;
        });
    }
}
