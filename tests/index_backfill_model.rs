//! A reference-model property test of online GSI creation: a populated table (with an LSI)
//! gets a GSI through UpdateTable while concurrent writers put, update and delete items.
//! Once the index is ACTIVE and the writers are done, every GSI partition (paged Query) and
//! the whole index (Scan) must hold exactly the projections of the base items that carry both
//! index key attributes with the right types (sparse: the others are absent), and the LSI must
//! still agree with the base table.

mod common;
mod item_helpers;

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue as Av, BillingMode, CreateGlobalSecondaryIndexAction,
    GlobalSecondaryIndexUpdate, KeySchemaElement, KeyType, LocalSecondaryIndex, Projection,
    ProjectionType, PutRequest, ScalarAttributeType, TransactWriteItem, Update, WriteRequest,
};
use aws_sdk_dynamodb::Client;
use common::*;
use item_helpers::*;
use proptest::prelude::*;

const TABLE: &str = "Backfill";
/// Partition key values; each one's writes run in one writer task, in order, so the final
/// state of every item is determined by the generated operations.
const PARTITIONS: u8 = 4;
const WRITERS: u8 = 2;
/// Bound on waiting for the backfill (not a timing assertion).
const WAIT_LIMIT: Duration = Duration::from_secs(120);

/// The GSI key attribute `g` of a generated item: a string (indexed), a number (wrong type:
/// only possible before the index exists, skipped by the backfill) or absent.
#[derive(Debug, Clone, Copy)]
enum G {
    S(u8),
    N(u8),
    Absent,
}

#[derive(Debug, Clone)]
struct Seed {
    p: u8,
    sk: u8,
    g: G,
    gs: Option<u8>,
    l: Option<u8>,
    v: u8,
}

#[derive(Debug, Clone)]
enum Op {
    /// Replaces the item (g a string or absent), through PutItem or BatchWriteItem.
    Put {
        p: u8,
        sk: u8,
        g: Option<u8>,
        gs: Option<u8>,
        v: u8,
        batch: bool,
    },
    /// Sets or removes g, through UpdateItem or TransactWriteItems.
    SetG {
        p: u8,
        sk: u8,
        g: Option<u8>,
        tx: bool,
    },
    /// Sets the projected non-key attribute v (the item's g untouched).
    SetV {
        p: u8,
        sk: u8,
        v: u8,
    },
    Delete {
        p: u8,
        sk: u8,
    },
}

impl Op {
    fn partition(&self) -> u8 {
        match self {
            Op::Put { p, .. } | Op::SetG { p, .. } | Op::SetV { p, .. } | Op::Delete { p, .. } => {
                *p
            }
        }
    }
}

fn g_value() -> impl Strategy<Value = G> {
    prop_oneof![
        6 => (0u8..4).prop_map(G::S),
        1 => (0u8..4).prop_map(G::N),
        2 => Just(G::Absent),
    ]
}

fn seed() -> impl Strategy<Value = Seed> {
    (
        0..PARTITIONS,
        0u8..40,
        g_value(),
        proptest::option::weighted(0.85, 0u8..6),
        proptest::option::of(0u8..5),
        0u8..9,
    )
        .prop_map(|(p, sk, g, gs, l, v)| Seed { p, sk, g, gs, l, v })
}

fn op() -> impl Strategy<Value = Op> {
    // A subset of the seeds' keys, so that most operations meet backfilled items.
    let key = (0..PARTITIONS, 0u8..24);
    prop_oneof![
        4 => (key.clone(), proptest::option::weighted(0.8, 0u8..4), proptest::option::weighted(0.85, 0u8..6), 0u8..9, any::<bool>())
            .prop_map(|((p, sk), g, gs, v, batch)| Op::Put { p, sk, g, gs, v, batch }),
        3 => (key.clone(), proptest::option::weighted(0.7, 0u8..4), any::<bool>())
            .prop_map(|((p, sk), g, tx)| Op::SetG { p, sk, g, tx }),
        2 => (key.clone(), 0u8..9).prop_map(|((p, sk), v)| Op::SetV { p, sk, v }),
        2 => key.prop_map(|(p, sk)| Op::Delete { p, sk }),
    ]
}

fn projection() -> impl Strategy<Value = ProjectionType> {
    prop_oneof![
        Just(ProjectionType::KeysOnly),
        Just(ProjectionType::Include),
        Just(ProjectionType::All),
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
        .table_name(TABLE)
        .billing_mode(BillingMode::PayPerRequest)
        .set_key_schema(Some(ks("pk", "sk")))
        .attribute_definitions(attr("pk", ScalarAttributeType::S))
        .attribute_definitions(attr("sk", ScalarAttributeType::N))
        .attribute_definitions(attr("l", ScalarAttributeType::N))
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

fn pk(p: u8) -> Av {
    s(&format!("p{p}"))
}

fn seed_item(x: &Seed) -> Item {
    let mut item: Item = HashMap::from([
        ("pk".to_string(), pk(x.p)),
        ("sk".to_string(), n(x.sk.into())),
        ("v".to_string(), n(x.v.into())),
        ("w".to_string(), s("never projected by INCLUDE")),
    ]);
    match x.g {
        G::S(g) => {
            item.insert("g".into(), s(&format!("g{g}")));
        }
        G::N(g) => {
            item.insert("g".into(), n(g.into()));
        }
        G::Absent => {}
    }
    if let Some(gs) = x.gs {
        item.insert("gs".into(), n(gs.into()));
    }
    if let Some(l) = x.l {
        item.insert("l".into(), n(l.into()));
    }
    item
}

async fn populate(c: &Client, seeds: &[Seed]) -> BTreeMap<(u8, u8), Item> {
    let mut model = BTreeMap::new();
    for x in seeds {
        model.insert((x.p, x.sk), seed_item(x));
    }
    let items: Vec<&Item> = model.values().collect();
    for chunk in items.chunks(25) {
        let reqs: Vec<WriteRequest> = chunk
            .iter()
            .map(|i| {
                WriteRequest::builder()
                    .put_request(
                        PutRequest::builder()
                            .set_item(Some((*i).clone()))
                            .build()
                            .unwrap(),
                    )
                    .build()
            })
            .collect();
        let out = c
            .batch_write_item()
            .request_items(TABLE, reqs)
            .send()
            .await
            .unwrap();
        assert!(out.unprocessed_items().is_none_or(|u| u.is_empty()));
    }
    model
}

/// Applies one operation and its effect on the writer's part of the model.
async fn apply(c: &Client, model: &mut BTreeMap<(u8, u8), Item>, op: &Op) {
    match op {
        Op::Put {
            p,
            sk,
            g,
            gs,
            v,
            batch,
        } => {
            let mut item: Item = HashMap::from([
                ("pk".to_string(), pk(*p)),
                ("sk".to_string(), n((*sk).into())),
                ("v".to_string(), n((*v).into())),
                ("w".to_string(), s("put")),
            ]);
            if let Some(g) = g {
                item.insert("g".into(), s(&format!("g{g}")));
            }
            if let Some(gs) = gs {
                item.insert("gs".into(), n((*gs).into()));
            }
            if *batch {
                let req = WriteRequest::builder()
                    .put_request(
                        PutRequest::builder()
                            .set_item(Some(item.clone()))
                            .build()
                            .unwrap(),
                    )
                    .build();
                let out = c
                    .batch_write_item()
                    .request_items(TABLE, vec![req])
                    .send()
                    .await
                    .unwrap();
                assert!(out.unprocessed_items().is_none_or(|u| u.is_empty()));
            } else {
                put(c, TABLE, item.clone()).await;
            }
            model.insert((*p, *sk), item);
        }
        Op::SetG { p, sk, g, tx } => {
            let expr = if g.is_some() {
                "SET g = :g"
            } else {
                "REMOVE g"
            };
            let vals = g.map(|g| HashMap::from([(":g".to_string(), s(&format!("g{g}")))]));
            if *tx {
                let u = Update::builder()
                    .table_name(TABLE)
                    .key("pk", pk(*p))
                    .key("sk", n((*sk).into()))
                    .update_expression(expr)
                    .set_expression_attribute_values(vals)
                    .build()
                    .unwrap();
                c.transact_write_items()
                    .transact_items(TransactWriteItem::builder().update(u).build())
                    .send()
                    .await
                    .unwrap();
            } else {
                c.update_item()
                    .table_name(TABLE)
                    .key("pk", pk(*p))
                    .key("sk", n((*sk).into()))
                    .update_expression(expr)
                    .set_expression_attribute_values(vals)
                    .send()
                    .await
                    .unwrap();
            }
            let e = model.entry((*p, *sk)).or_insert_with(|| {
                HashMap::from([
                    ("pk".to_string(), pk(*p)),
                    ("sk".to_string(), n((*sk).into())),
                ])
            });
            match g {
                Some(g) => e.insert("g".into(), s(&format!("g{g}"))),
                None => e.remove("g"),
            };
        }
        Op::SetV { p, sk, v } => {
            let out = c
                .update_item()
                .table_name(TABLE)
                .key("pk", pk(*p))
                .key("sk", n((*sk).into()))
                .update_expression("SET v = :v")
                .expression_attribute_values(":v", n((*v).into()))
                .send()
                .await;
            let current = model.get(&(*p, *sk));
            match out {
                Ok(_) => {
                    let e = model.entry((*p, *sk)).or_insert_with(|| {
                        HashMap::from([
                            ("pk".to_string(), pk(*p)),
                            ("sk".to_string(), n((*sk).into())),
                        ])
                    });
                    e.insert("v".into(), n((*v).into()));
                }
                // Once the index exists, DynamoDB refuses any write of an item whose g has
                // the wrong type for it; the item stays as it was.
                Err(e) => {
                    assert!(
                        current.is_some_and(|i| matches!(i.get("g"), Some(Av::N(_)))),
                        "unexpected failure: {e:?}"
                    );
                    assert_eq!(code(&e), "ValidationException");
                    assert!(message(&e).contains("Type mismatch for Index Key"), "{e:?}");
                }
            }
        }
        Op::Delete { p, sk } => {
            c.delete_item()
                .table_name(TABLE)
                .key("pk", pk(*p))
                .key("sk", n((*sk).into()))
                .send()
                .await
                .unwrap();
            model.remove(&(*p, *sk));
        }
    }
}

async fn paged(c: &Client, index: &str, attr: &str, v: Av) -> Vec<Item> {
    let mut out = Vec::new();
    let mut start = None;
    loop {
        let r = c
            .query()
            .table_name(TABLE)
            .index_name(index)
            .key_condition_expression("#k = :v")
            .expression_attribute_names("#k", attr)
            .expression_attribute_values(":v", v.clone())
            .limit(4)
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

async fn scan_all(c: &Client, index: Option<&str>) -> Vec<Item> {
    let mut out = Vec::new();
    let mut start = None;
    loop {
        let r = c
            .scan()
            .table_name(TABLE)
            .set_index_name(index.map(String::from))
            .set_exclusive_start_key(start)
            .limit(7)
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

fn project(item: &Item, p: &ProjectionType, keys: &[&str]) -> Item {
    match p {
        ProjectionType::All => item.clone(),
        other => {
            let extra: &[&str] = if *other == ProjectionType::Include {
                &["v"]
            } else {
                &[]
            };
            item.iter()
                .filter(|(k, _)| keys.contains(&k.as_str()) || extra.contains(&k.as_str()))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect()
        }
    }
}

/// (index sort key, pk, sk, item): index order up to ties (unspecified), ties as sets.
/// An index entry in comparable form: (index sort key, pk, sk, sorted attributes).
type Row = (i64, String, i64, Vec<(String, String)>);

fn canonical(items: Vec<Item>, sort: &str) -> Vec<Row> {
    let mut out: Vec<_> = items
        .into_iter()
        .map(|i| {
            let mut attrs: Vec<(String, String)> = i
                .iter()
                .map(|(k, v)| (k.clone(), format!("{v:?}")))
                .collect();
            attrs.sort();
            (
                num(&i, sort),
                i["pk"].as_s().unwrap().clone(),
                num(&i, "sk"),
                attrs,
            )
        })
        .collect();
    out.sort();
    out
}

async fn wait_active(c: &Client, index: &str) {
    let deadline = tokio::time::Instant::now() + WAIT_LIMIT;
    loop {
        let d = c.describe_table().table_name(TABLE).send().await.unwrap();
        let status = d
            .table()
            .and_then(|t| {
                t.global_secondary_indexes()
                    .iter()
                    .find(|g| g.index_name() == Some(index))
            })
            .and_then(|g| g.index_status())
            .map(|s| s.as_str().to_string())
            .expect("index listed");
        if status == "ACTIVE" {
            return;
        }
        assert_eq!(status, "CREATING");
        assert!(
            tokio::time::Instant::now() < deadline,
            "backfill did not finish"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn check(c: &Client, model: &BTreeMap<(u8, u8), Item>, p: &ProjectionType) {
    // The writers' model is the final base table (each item's writes were serialized).
    let base = canonical(scan_all(c, None).await, "sk");
    assert_eq!(
        base,
        canonical(model.values().cloned().collect(), "sk"),
        "base table"
    );
    let gsi_keys = ["pk", "sk", "g", "gs"];
    let mut total = 0;
    for g in 0..4u8 {
        let got = paged(c, "byG", "g", s(&format!("g{g}"))).await;
        let order: Vec<i64> = got.iter().map(|i| num(i, "gs")).collect();
        assert!(
            order.windows(2).all(|w| w[0] <= w[1]),
            "GSI order {order:?}"
        );
        total += got.len();
        let want: Vec<Item> = model
            .values()
            .filter(|i| {
                i.get("g") == Some(&s(&format!("g{g}"))) && matches!(i.get("gs"), Some(Av::N(_)))
            })
            .map(|i| project(i, p, &gsi_keys))
            .collect();
        assert_eq!(canonical(got, "gs"), canonical(want, "gs"), "GSI g{g}");
    }
    // No entry outside the queried partitions (items with a numeric or no g, or no gs).
    assert_eq!(scan_all(c, Some("byG")).await.len(), total, "GSI scan");
    for part in 0..PARTITIONS {
        let got = paged(c, "byL", "pk", pk(part)).await;
        let want: Vec<Item> = model
            .values()
            .filter(|i| i["pk"] == pk(part) && i.contains_key("l"))
            .map(|i| project(i, &ProjectionType::KeysOnly, &["pk", "sk", "l"]))
            .collect();
        assert_eq!(canonical(got, "l"), canonical(want, "l"), "LSI p{part}");
    }
}

async fn run_case(seeds: Vec<Seed>, ops: Vec<Op>, trigger: usize, p: ProjectionType) {
    let srv = TestServer::start().await;
    let c = srv.client();
    create(&c).await;
    let initial = populate(&c, &seeds).await;

    let done = Arc::new(AtomicUsize::new(0));
    let mut writers = Vec::new();
    for w in 0..WRITERS {
        let mine: Vec<Op> = ops
            .iter()
            .filter(|o| o.partition() % WRITERS == w)
            .cloned()
            .collect();
        let mut part: BTreeMap<(u8, u8), Item> = initial
            .iter()
            .filter(|((p, _), _)| p % WRITERS == w)
            .map(|(k, v)| (*k, v.clone()))
            .collect();
        let c = c.clone();
        let done = done.clone();
        writers.push(tokio::spawn(async move {
            for op in &mine {
                apply(&c, &mut part, op).await;
                done.fetch_add(1, Ordering::SeqCst);
            }
            part
        }));
    }
    // The index is requested after `trigger` writes landed; the rest race the backfill.
    while done.load(Ordering::SeqCst) < trigger.min(ops.len()) {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let mut gsi = CreateGlobalSecondaryIndexAction::builder()
        .index_name("byG")
        .set_key_schema(Some(ks("g", "gs")));
    let mut projection = Projection::builder().projection_type(p.clone());
    if p == ProjectionType::Include {
        projection = projection.non_key_attributes("v");
    }
    gsi = gsi.projection(projection.build());
    c.update_table()
        .table_name(TABLE)
        .attribute_definitions(attr("g", ScalarAttributeType::S))
        .attribute_definitions(attr("gs", ScalarAttributeType::N))
        .global_secondary_index_updates(
            GlobalSecondaryIndexUpdate::builder()
                .create(gsi.build().unwrap())
                .build(),
        )
        .send()
        .await
        .expect("create the GSI online");
    wait_active(&c, "byG").await;
    let mut model = BTreeMap::new();
    for w in writers {
        model.extend(w.await.unwrap());
    }
    check(&c, &model, &p).await;
    srv.stop().await;
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, ..ProptestConfig::default() })]
    #[test]
    fn online_gsi_matches_the_model(
        seeds in proptest::collection::vec(seed(), 1..160),
        ops in proptest::collection::vec(op(), 0..120),
        trigger in 0usize..120,
        p in projection(),
    ) {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(run_case(seeds, ops, trigger, p));
    }
}
