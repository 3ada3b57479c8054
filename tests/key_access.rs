//! Key access states through a real client: a table whose KMS key is disabled becomes
//! INACCESSIBLE_ENCRYPTION_CREDENTIALS within the cache TTL (data calls fail, other tables
//! serve), and re-enabling the key brings it back without a restart.

mod common;

use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::{AttributeValue as Av, SseSpecification, TableStatus};
use aws_sdk_dynamodb::Client;
use common::*;

async fn get_v(c: &Client, table: &str) -> Result<Option<String>, String> {
    match c
        .get_item()
        .table_name(table)
        .key("pk", Av::S("k".into()))
        .send()
        .await
    {
        Ok(o) => Ok(o
            .item()
            .and_then(|i| i.get("v"))
            .and_then(|v| v.as_s().ok())
            .cloned()),
        Err(e) => Err(code(&e)),
    }
}

/// Polls `f` until it returns true or `limit` passes.
async fn eventually(limit: Duration, mut f: impl AsyncFnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if f().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoked_key_makes_the_table_inaccessible_and_enabling_restores_it() {
    let dir = tempfile::tempdir().unwrap();
    let srv = TestServer::start_with(dir, |c| {
        c.kms.key_cache_ttl_secs = 1;
        c.kms.probe_interval_secs = 1;
    })
    .await;
    let c = srv.client();
    let store = srv
        .services()
        .local_kms
        .as_ref()
        .expect("local KMS")
        .key_store();
    let key = store
        .create_key(kms_mock::CreateKeyRequest::default())
        .unwrap();

    table_request(&c, "Revocable", None)
        .sse_specification(
            SseSpecification::builder()
                .enabled(true)
                .kms_master_key_id(&key.key_id)
                .build(),
        )
        .send()
        .await
        .unwrap();
    create_table(&c, "Bystander", None).await;
    for t in ["Revocable", "Bystander"] {
        c.put_item()
            .table_name(t)
            .item("pk", Av::S("k".into()))
            .item("v", Av::S(format!("{t}-value")))
            .send()
            .await
            .unwrap();
    }
    assert_eq!(
        get_v(&c, "Revocable").await,
        Ok(Some("Revocable-value".into()))
    );

    store.disable_key(&key.key_id).unwrap();
    let denied = eventually(Duration::from_secs(6), async || {
        get_v(&c, "Revocable").await == Err("KMSAccessDeniedException".into())
    })
    .await;
    assert!(
        denied,
        "data calls fail within the TTL once the key is disabled"
    );
    let d = c
        .describe_table()
        .table_name("Revocable")
        .send()
        .await
        .unwrap();
    let t = d.table().unwrap();
    assert_eq!(
        t.table_status(),
        Some(&TableStatus::InaccessibleEncryptionCredentials)
    );
    assert!(t
        .sse_description()
        .unwrap()
        .inaccessible_encryption_date_time()
        .is_some());
    // Writes fail too, and the other table is unaffected.
    let e = c
        .put_item()
        .table_name("Revocable")
        .item("pk", Av::S("x".into()))
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&e), "KMSAccessDeniedException");
    assert_eq!(
        get_v(&c, "Bystander").await,
        Ok(Some("Bystander-value".into()))
    );

    store.enable_key(&key.key_id).unwrap();
    let back = eventually(Duration::from_secs(6), async || {
        get_v(&c, "Revocable").await == Ok(Some("Revocable-value".into()))
    })
    .await;
    assert!(
        back,
        "re-enabling the key brings the table back without a restart"
    );
    let d = c
        .describe_table()
        .table_name("Revocable")
        .send()
        .await
        .unwrap();
    assert_eq!(
        d.table().unwrap().table_status(),
        Some(&TableStatus::Active)
    );
    assert!(d
        .table()
        .unwrap()
        .sse_description()
        .unwrap()
        .inaccessible_encryption_date_time()
        .is_none());
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_are_refreshed_ahead_so_requests_do_not_call_the_kms() {
    let dir = tempfile::tempdir().unwrap();
    let srv = TestServer::start_with(dir, |c| {
        c.kms.key_cache_ttl_secs = 2;
        c.kms.probe_interval_secs = 1;
    })
    .await;
    let c = srv.client();
    create_table(&c, "Busy", None).await;
    c.put_item()
        .table_name("Busy")
        .item("pk", Av::S("k".into()))
        .item("v", Av::S("x".into()))
        .send()
        .await
        .unwrap();
    // Several TTLs of steady traffic.
    let start = Instant::now();
    let mut n = 0;
    while start.elapsed() < Duration::from_secs(5) {
        assert_eq!(get_v(&c, "Busy").await, Ok(Some("x".into())));
        n += 1;
    }
    let dir = srv.stop().await;
    let audit = std::fs::read_to_string(dir.path().join("audit.log")).unwrap();
    let decrypts = audit
        .lines()
        .filter(|l| l.contains("\"kind\":\"kms\"") && l.contains("\"op\":\"Decrypt\""))
        .count();
    // At most one refresh per half TTL (plus start-up), not one per request.
    assert!(n > 50, "traffic ran ({n} requests)");
    assert!(
        (1..=8).contains(&decrypts),
        "{decrypts} Decrypt calls for {n} requests"
    );
}
