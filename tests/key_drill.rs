//! The key lifecycle drill of issue 4, end to end through real clients (aws-sdk-dynamodb,
//! aws-sdk-kms, the `sealdb keys` CLI) with kms-mock as the KMS of the `aws` provider:
//! table under key A with 10,000 items -> RotateKeyOnDemand on A -> UpdateTable to key B under
//! continuous traffic (no failed request) -> disable A (table unaffected) -> rotate the data key
//! and re-encrypt, the server SIGKILLed mid-job and restarted (the job resumes) -> retire the old
//! generation -> disable B (inaccessible within the TTL) -> enable B (back). The checksum over
//! all items is the same at every step where the table is accessible.

mod common;
mod key_support;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::{
    AttributeValue as Av, PutRequest, ScalarAttributeType, SseSpecification, SseType, WriteRequest,
};
use key_support::*;

const TABLE: &str = "drill";
const ITEMS: u32 = 10_000;
const PARTITIONS: u32 = 100;
const TTL_SECS: u64 = 2;

fn item(i: u32) -> std::collections::HashMap<String, Av> {
    let mut m = std::collections::HashMap::new();
    m.insert("pk".to_string(), Av::S(format!("p{}", i % PARTITIONS)));
    m.insert("sk".to_string(), Av::N(i.to_string()));
    m.insert(
        "v".to_string(),
        Av::S(format!("value {i} {}", "x".repeat((i % 50) as usize))),
    );
    m
}

async fn load(c: &aws_sdk_dynamodb::Client) {
    let mut tasks = Vec::new();
    for w in 0..8u32 {
        let c = c.clone();
        tasks.push(tokio::spawn(async move {
            let mut i = w * 25;
            while i < ITEMS {
                let reqs: Vec<WriteRequest> = (i..(i + 25).min(ITEMS))
                    .map(|j| {
                        WriteRequest::builder()
                            .put_request(
                                PutRequest::builder()
                                    .set_item(Some(item(j)))
                                    .build()
                                    .unwrap(),
                            )
                            .build()
                    })
                    .collect();
                let mut pending = Some(reqs);
                while let Some(r) = pending.take() {
                    let out = c
                        .batch_write_item()
                        .request_items(TABLE, r)
                        .send()
                        .await
                        .expect("batch write");
                    pending = out
                        .unprocessed_items()
                        .and_then(|u| u.get(TABLE))
                        .filter(|v| !v.is_empty())
                        .cloned();
                }
                i += 8 * 25;
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
}

/// Continuous traffic: reads and identical re-writes of existing items (so the checksum does
/// not move), counting failures.
struct Traffic {
    stop: Arc<AtomicBool>,
    ok: Arc<AtomicU64>,
    failed: Arc<AtomicU64>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    errors: Arc<std::sync::Mutex<Vec<String>>>,
}

impl Traffic {
    fn start(c: &aws_sdk_dynamodb::Client) -> Traffic {
        let t = Traffic {
            stop: Arc::default(),
            ok: Arc::default(),
            failed: Arc::default(),
            tasks: Vec::new(),
            errors: Arc::default(),
        };
        let mut tasks = Vec::new();
        for w in 0..4u32 {
            let (c, stop, ok, failed, errors) = (
                c.clone(),
                t.stop.clone(),
                t.ok.clone(),
                t.failed.clone(),
                t.errors.clone(),
            );
            tasks.push(tokio::spawn(async move {
                let mut i = w * 977;
                while !stop.load(Ordering::Relaxed) {
                    i = (i + 7919) % ITEMS;
                    let r = if i % 2 == 0 {
                        c.put_item()
                            .table_name(TABLE)
                            .set_item(Some(item(i)))
                            .send()
                            .await
                            .map(|_| ())
                            .map_err(|e| format!("put: {}", common::code(&e)))
                    } else {
                        let it = item(i);
                        c.get_item()
                            .table_name(TABLE)
                            .key("pk", it["pk"].clone())
                            .key("sk", it["sk"].clone())
                            .send()
                            .await
                            .map_err(|e| format!("get: {}", common::code(&e)))
                            .and_then(|o| match o.item() {
                                Some(got) if got == &it => Ok(()),
                                other => Err(format!("get {i}: wrong item {other:?}")),
                            })
                    };
                    match r {
                        Ok(()) => ok.fetch_add(1, Ordering::Relaxed),
                        Err(e) => {
                            errors.lock().unwrap().push(e);
                            failed.fetch_add(1, Ordering::Relaxed)
                        }
                    };
                }
            }));
        }
        Traffic { tasks, ..t }
    }

    async fn stop(self) -> (u64, u64, Vec<String>) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.tasks {
            let _ = t.await;
        }
        let errors = self.errors.lock().unwrap().clone();
        (
            self.ok.load(Ordering::Relaxed),
            self.failed.load(Ordering::Relaxed),
            errors,
        )
    }
}

async fn table_status(c: &aws_sdk_dynamodb::Client) -> String {
    c.describe_table()
        .table_name(TABLE)
        .send()
        .await
        .expect("describe")
        .table()
        .and_then(|t| t.table_status())
        .map(|s| s.as_str().to_string())
        .unwrap_or_default()
}

async fn wait_status(c: &aws_sdk_dynamodb::Client, want: &str) {
    let deadline = Instant::now() + Duration::from_secs(TTL_SECS * 4 + 20);
    while Instant::now() < deadline {
        if table_status(c).await == want {
            return;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    panic!("table never became {want}");
}

async fn progress(server: &Server) -> serde_json::Value {
    let (status, out) = server
        .admin(
            "KeysStatus",
            serde_json::json!({"TableName": TABLE, "ProgressOnly": true}),
        )
        .await;
    assert_eq!(status, 200, "{out}");
    out["Reencrypt"].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn key_rotation_and_revocation_drill() {
    let kms_dir = tempfile::tempdir().unwrap();
    let kms_mock = KmsMock::start(&kms_dir.path().join("kms.json"), None);
    let kms = kms_mock.client().await;
    create_key(&kms, "alias/drill-default").await;
    let key_a = create_key(&kms, "alias/drill-a").await;
    let key_b = create_key(&kms, "alias/drill-b").await;

    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("server.log");
    let mut env = sealdb_env(&kms_mock.endpoint, "alias/drill-default");
    for (k, v) in [
        ("SEALDB_KMS_KEY_CACHE_TTL_SECS", TTL_SECS.to_string()),
        ("SEALDB_KMS_PROBE_INTERVAL_SECS", "1".to_string()),
        ("SEALDB_KEYS_REENCRYPT_ROWS_PER_SEC", "1500".to_string()),
    ] {
        env.push((k.to_string(), v));
    }
    let server = Server::start(dir.path(), &env, &log);
    let db = server.client();

    // A table under key A with 10,000 items (and sort-index pages: it has a sort key).
    common::table_request(&db, TABLE, Some(ScalarAttributeType::N))
        .sse_specification(
            SseSpecification::builder()
                .enabled(true)
                .sse_type(SseType::Kms)
                .kms_master_key_id("alias/drill-a")
                .build(),
        )
        .send()
        .await
        .expect("create table");
    load(&db).await;
    let baseline = checksum(&db, TABLE).await;
    assert_eq!(baseline.0, ITEMS as usize);

    // RotateKeyOnDemand on A: new KMS key material; the table key still unwraps.
    kms.rotate_key_on_demand()
        .key_id(&key_a)
        .send()
        .await
        .expect("RotateKeyOnDemand");
    tokio::time::sleep(Duration::from_secs(TTL_SECS + 1)).await;
    assert_eq!(checksum(&db, TABLE).await, baseline, "after rotating A");

    // UpdateTable to key B under continuous traffic: no failed request.
    let traffic = Traffic::start(&db);
    tokio::time::sleep(Duration::from_secs(1)).await;
    db.update_table()
        .table_name(TABLE)
        .sse_specification(
            SseSpecification::builder()
                .enabled(true)
                .sse_type(SseType::Kms)
                .kms_master_key_id("alias/drill-b")
                .build(),
        )
        .send()
        .await
        .expect("UpdateTable SSESpecification");
    tokio::time::sleep(Duration::from_secs(TTL_SECS * 2)).await;
    let (ok, failed, errors) = traffic.stop().await;
    assert!(ok > 50, "traffic ran ({ok} requests)");
    assert_eq!(failed, 0, "failed requests during the switch: {errors:?}");
    let sse = db
        .describe_table()
        .table_name(TABLE)
        .send()
        .await
        .unwrap()
        .table()
        .and_then(|t| t.sse_description())
        .and_then(|s| s.kms_master_key_arn())
        .map(str::to_string);
    assert_eq!(sse.as_deref(), Some(key_b.as_str()));

    // Disable A: the table no longer needs it.
    kms.disable_key()
        .key_id(&key_a)
        .send()
        .await
        .expect("DisableKey A");
    tokio::time::sleep(Duration::from_secs(TTL_SECS * 3)).await;
    assert_eq!(table_status(&db).await, "ACTIVE");
    assert_eq!(checksum(&db, TABLE).await, baseline, "after disabling A");

    // Rotate the data key (CLI, online).
    let (ok, out, err) = server.keys_cli(&["rotate-data-key", "--table", TABLE]);
    assert!(ok, "rotate-data-key: {out} {err}");
    assert!(out.contains("generation 2"), "{out}");
    // Generation 1 still holds every row: retiring it is refused.
    let (ok, _, err) =
        server.keys_cli(&["retire-generation", "--table", TABLE, "--generation", "1"]);
    assert!(!ok, "retiring a generation in use must fail");
    assert!(err.contains("still used"), "{err}");

    // Re-encrypt under traffic; SIGKILL the server mid-job.
    let traffic = Traffic::start(&db);
    let (ok, out, err) = server.keys_cli(&["reencrypt", "--table", TABLE]);
    assert!(ok, "reencrypt: {out} {err}");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let p = progress(&server).await;
        assert_eq!(p["Failed"], 0, "{p}");
        if p["Resealed"].as_u64().unwrap_or(0) >= 2000 {
            assert_eq!(p["Running"], true, "killed mid-job, not after: {p}");
            break;
        }
        assert!(Instant::now() < deadline, "job made no progress: {p}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (_, failed, errors) = traffic.stop().await;
    assert_eq!(
        failed, 0,
        "failed requests during re-encryption: {errors:?}"
    );
    server.kill9();

    let server = Server::start(dir.path(), &env, &log);
    let db = server.client();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let p = progress(&server).await;
    assert_eq!(p["Resumed"], true, "the job resumed at start: {p}");
    assert!(
        p["Scanned"].as_u64().unwrap_or(0) > 0,
        "it resumed from its cursor, not from scratch: {p}"
    );
    // Wait for it with the CLI (progress printed while waiting).
    let (ok, out, err) = server.keys_cli(&["reencrypt", "--table", TABLE, "--wait"]);
    assert!(ok, "reencrypt --wait: {out} {err}");
    assert!(out.contains("re-encryption finished"), "{out}");
    assert_eq!(checksum(&db, TABLE).await, baseline, "after re-encryption");

    // Generation 1 has no rows left: status says so, and retiring it succeeds.
    let (ok, out, err) = server.keys_cli(&["status", "--table", TABLE, "--json"]);
    assert!(ok, "status: {err}");
    let status: serde_json::Value = serde_json::from_str(&out).expect("status JSON");
    let t = &status["Tables"][0];
    assert_eq!(t["KmsKeyArn"], serde_json::json!(key_b));
    assert_eq!(t["KmsKeyState"], "Enabled");
    let g1 = t["Generations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["Generation"] == 1)
        .expect("generation 1")
        .clone();
    assert_eq!(
        (g1["Items"].as_u64(), g1["Pages"].as_u64()),
        (Some(0), Some(0)),
        "{t}"
    );
    let g2 = t["Generations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["Generation"] == 2)
        .expect("generation 2")
        .clone();
    assert_eq!(g2["Items"].as_u64(), Some(ITEMS as u64), "{t}");
    assert!(g2["Pages"].as_u64().unwrap_or(0) > 0, "{t}");
    let (ok, out, err) =
        server.keys_cli(&["retire-generation", "--table", TABLE, "--generation", "1"]);
    assert!(ok, "retire-generation: {out} {err}");
    let (_, out, _) = server.keys_cli(&["status", "--table", TABLE, "--json"]);
    let status: serde_json::Value = serde_json::from_str(&out).unwrap();
    let left: Vec<u64> = status["Tables"][0]["Generations"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|g| g["Generation"].as_u64())
        .collect();
    assert_eq!(left, vec![2]);
    assert_eq!(
        checksum(&db, TABLE).await,
        baseline,
        "after retiring generation 1"
    );

    // Disable B: inaccessible within the TTL; data calls fail with the KMS error.
    kms.disable_key()
        .key_id(&key_b)
        .send()
        .await
        .expect("DisableKey B");
    wait_status(&db, "INACCESSIBLE_ENCRYPTION_CREDENTIALS").await;
    let err = db
        .get_item()
        .table_name(TABLE)
        .key("pk", Av::S("p1".into()))
        .key("sk", Av::N("1".into()))
        .send()
        .await
        .expect_err("reads fail while B is disabled");
    assert_eq!(common::code(&err), "KMSAccessDeniedException");
    let (ok, out, _) = server.keys_cli(&["status", "--table", TABLE]);
    assert!(ok);
    assert!(out.contains("Disabled"), "{out}");

    // Enable B: the table is back, without a restart.
    kms.enable_key()
        .key_id(&key_b)
        .send()
        .await
        .expect("EnableKey B");
    wait_status(&db, "ACTIVE").await;
    assert_eq!(checksum(&db, TABLE).await, baseline, "after enabling B");
    server.terminate();
}
