//! Data-key rotation by policy (issue 4, deliverable 5): a server started in-process with the
//! `[keys]` settings rotates a table's data key on its own once the active generation is older
//! than `rotate_max_age_secs`, or has sealed more than `rotate_max_encryptions` values (and not
//! before). Observed through the `KeysStatus` admin API, as `sealdb keys status` sees it; every
//! item stays readable through aws-sdk-dynamodb. No timing assertions: every wait is a poll
//! with a generous deadline.

mod common;
mod key_support;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::AttributeValue as Av;
use common::TestServer;
use serde_json::{json, Value};

/// The manager checks the policy this often (the smallest accepted value).
const CHECK_SECS: u64 = 1;
/// Generous: the machine may be busy compiling; a working policy acts within a few checks.
const DEADLINE: Duration = Duration::from_secs(90);
const POLL: Duration = Duration::from_millis(200);

async fn server(adjust: impl FnOnce(&mut sealdb::config::KeysConfig)) -> TestServer {
    let dir = tempfile::tempdir().unwrap();
    TestServer::start_with(dir, |c| {
        c.keys.check_interval_secs = CHECK_SECS;
        adjust(&mut c.keys);
    })
    .await
}

/// `KeysStatus` for one table through the signed admin API.
async fn status(s: &TestServer, table: &str) -> Value {
    let (code, out) = key_support::admin_call(
        &s.endpoint,
        &s.access_key,
        &s.secret,
        "KeysStatus",
        json!({ "TableName": table }),
    )
    .await;
    assert_eq!(code, 200, "{out}");
    let t = out["Tables"][0].clone();
    assert_eq!(t["TableName"], table, "{out}");
    t
}

fn active_generation(status: &Value) -> u64 {
    status["ActiveGeneration"]
        .as_u64()
        .expect("ActiveGeneration")
}

/// Generation -> (items, encryptions) as the status reports them.
fn generations(status: &Value) -> BTreeMap<u64, (u64, u64)> {
    status["Generations"]
        .as_array()
        .expect("Generations")
        .iter()
        .map(|g| {
            (
                g["Generation"].as_u64().unwrap(),
                (
                    g["Items"].as_u64().unwrap(),
                    g["Encryptions"].as_u64().unwrap(),
                ),
            )
        })
        .collect()
}

/// Items of generations `>= g` and `< g`.
fn items_split(status: &Value, g: u64) -> (u64, u64) {
    generations(status)
        .iter()
        .fold((0, 0), |(hi, lo), (gen, (items, _))| {
            if *gen >= g {
                (hi + items, lo)
            } else {
                (hi, lo + items)
            }
        })
}

/// The active generation of the keys requests use right now (the table's key slot): once it
/// is `g`, every later write seals under `g` or newer.
fn slot_generation(s: &TestServer, table: &str) -> Option<u32> {
    let e = s.services().catalog.table(table)?;
    e.keys.cached().map(|k| k.active_generation())
}

/// Encryptions as the manager last persisted them, over all generations (it persists and
/// checks the policy in the same pass; a rotation persists the old generation's count first).
fn persisted_encryptions(s: &TestServer, table: &str) -> u64 {
    let e = s.services().catalog.table(table).expect("table");
    e.def.keys.generations.iter().map(|g| g.encryptions).sum()
}

async fn put(c: &aws_sdk_dynamodb::Client, table: &str, i: usize) {
    c.put_item()
        .table_name(table)
        .item("pk", Av::S(format!("k{i:04}")))
        .item("v", Av::S(format!("value {i}")))
        .send()
        .await
        .expect("PutItem");
}

/// Every item `0..n` reads back with its value (consistent GetItem) and a Scan sees exactly n.
async fn assert_all_readable(c: &aws_sdk_dynamodb::Client, table: &str, n: usize) {
    for i in 0..n {
        let out = c
            .get_item()
            .table_name(table)
            .key("pk", Av::S(format!("k{i:04}")))
            .consistent_read(true)
            .send()
            .await
            .expect("GetItem");
        let item = out.item().unwrap_or_else(|| panic!("item k{i:04} missing"));
        assert_eq!(item.get("v"), Some(&Av::S(format!("value {i}"))));
    }
    let (count, _) = key_support::checksum(c, table).await;
    assert_eq!(count, n);
}

/// Polls `check` until it returns `Some`, or panics with `what` after the deadline.
async fn poll<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + DEADLINE;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(POLL).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn data_key_rotates_by_age_and_new_writes_use_the_new_generation() {
    const TABLE: &str = "aged";
    const OLD: usize = 20;
    const NEW: usize = 10;
    let s = server(|k| k.rotate_max_age_secs = Some(3)).await;
    let c = s.client();
    common::create_table(&c, TABLE, None).await;
    let first = status(&s, TABLE).await;
    assert_eq!(active_generation(&first), 1);
    assert_eq!(generations(&first).len(), 1);
    for i in 0..OLD {
        put(&c, TABLE, i).await;
    }

    // Nobody asks for a rotation: the manager does it once generation 1 is old enough.
    let g = poll("a rotation by age", || async {
        let st = status(&s, TABLE).await;
        let slot = slot_generation(&s, TABLE)?;
        (active_generation(&st) > 1 && slot > 1).then_some(u64::from(slot))
    })
    .await;
    let before = status(&s, TABLE).await;
    assert!(generations(&before).len() >= 2, "{before}");
    assert!(
        generations(&before).contains_key(&1),
        "old rows keep their generation"
    );
    let (hi_before, lo_before) = items_split(&before, g);
    assert_eq!(hi_before + lo_before, OLD as u64);

    for i in OLD..OLD + NEW {
        put(&c, TABLE, i).await;
    }
    let after = status(&s, TABLE).await;
    let (hi_after, lo_after) = items_split(&after, g);
    assert_eq!(
        hi_after,
        hi_before + NEW as u64,
        "every new write sealed under generation {g} or newer: {after}"
    );
    assert_eq!(lo_after, lo_before, "older rows are untouched: {after}");
    assert_eq!(after["UnknownGenerationRows"].as_u64(), Some(0), "{after}");

    assert_all_readable(&c, TABLE, OLD + NEW).await;
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn data_key_rotates_after_max_encryptions_and_not_before() {
    const TABLE: &str = "used";
    // One PutItem on a table without sort key or indexes seals one value.
    const MAX: u64 = 40;
    let s = server(|k| k.rotate_max_encryptions = Some(MAX)).await;
    let c = s.client();
    common::create_table(&c, TABLE, None).await;

    // Well under the limit (the count is approximate, so leave room either way).
    let under = (MAX / 2) as usize;
    for i in 0..under {
        put(&c, TABLE, i).await;
    }
    // Wait for the manager to have persisted (and so checked) at least that count, then for
    // one more full pass after it: a pass that wrongly rotated would be finished by then.
    poll("the encryption count to be persisted", || async {
        (persisted_encryptions(&s, TABLE) >= under as u64).then_some(())
    })
    .await;
    put(&c, TABLE, under).await;
    let written = under + 1;
    poll("a second policy check", || async {
        (persisted_encryptions(&s, TABLE) >= written as u64).then_some(())
    })
    .await;
    let st = status(&s, TABLE).await;
    assert_eq!(
        active_generation(&st),
        1,
        "rotated before {MAX} encryptions: {st}"
    );
    assert_eq!(
        generations(&st).keys().copied().collect::<Vec<_>>(),
        vec![1]
    );
    assert!(generations(&st)[&1].1 >= written as u64, "{st}");

    // Past the limit: a new generation appears by itself.
    let total = MAX as usize + 10;
    for i in written..total {
        put(&c, TABLE, i).await;
    }
    let g = poll("a rotation by encryptions", || async {
        let st = status(&s, TABLE).await;
        let slot = slot_generation(&s, TABLE)?;
        (active_generation(&st) >= 2 && slot >= 2).then_some(u64::from(slot))
    })
    .await;
    let st = status(&s, TABLE).await;
    let gens = generations(&st);
    assert!(gens.contains_key(&2), "{st}");
    assert!(
        gens[&1].1 >= MAX,
        "generation 1 was retired from writes only after {MAX} encryptions: {st}"
    );
    let items: u64 = gens.values().map(|(items, _)| items).sum();
    assert_eq!(items, total as u64, "{st}");

    // New writes use the new generation.
    let (hi_before, _) = items_split(&st, g);
    for i in total..total + 5 {
        put(&c, TABLE, i).await;
    }
    let st = status(&s, TABLE).await;
    assert_eq!(items_split(&st, g).0, hi_before + 5, "{st}");

    assert_all_readable(&c, TABLE, total + 5).await;
    s.stop().await;
}
