//! Key lifecycle against a real store and the in-process KMS, through the operations' own
//! entry points (no HTTP).
#![cfg(feature = "rocksdb")]

use std::sync::Arc;

use serde_json::json;

use super::*;
use crate::crypto::keyring::unwrap_table_keys;
use crate::ops::Services;

async fn services(dir: &std::path::Path) -> Arc<Services> {
    let config = crate::config::Config {
        data_dir: dir.to_path_buf(),
        ..Default::default()
    };
    crate::app::open_services(config).await.unwrap()
}

async fn table(svc: &Services, name: &str, sort: bool) {
    let mut req = json!({
        "TableName": name,
        "BillingMode": "PAY_PER_REQUEST",
        "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
        "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}],
    });
    if sort {
        req["KeySchema"]
            .as_array_mut()
            .unwrap()
            .push(json!({"AttributeName": "sk", "KeyType": "RANGE"}));
        req["AttributeDefinitions"]
            .as_array_mut()
            .unwrap()
            .push(json!({"AttributeName": "sk", "AttributeType": "N"}));
    }
    crate::ops::tables::create_table(svc, serde_json::from_value(req).unwrap())
        .await
        .unwrap();
}

async fn put(svc: &Arc<Services>, name: &str, pk: &str, sk: Option<u32>, v: &str) {
    let mut item = json!({"pk": {"S": pk}, "v": {"S": v}});
    if let Some(sk) = sk {
        item["sk"] = json!({"N": sk.to_string()});
    }
    let input = serde_json::from_value(json!({"TableName": name, "Item": item})).unwrap();
    crate::ops::items::put_item(svc, input).await.unwrap();
}

/// Every item of the table (wire JSON), opened with the table's current keys.
async fn all_items(svc: &Arc<Services>, name: &str) -> Vec<serde_json::Value> {
    let input = serde_json::from_value(json!({"TableName": name})).unwrap();
    let out = crate::ops::query::scan(svc, input).await.unwrap();
    let mut items = out["Items"].as_array().cloned().unwrap();
    items.sort_by_key(|i| i.to_string());
    items
}

fn gens(svc: &Services, name: &str) -> BTreeMap<u32, GenerationCounts> {
    let e = svc.catalog.table(name).unwrap();
    count_generations(svc.store.as_ref(), &e.def.keyspace).unwrap()
}

#[tokio::test]
async fn rotate_reencrypt_and_retire_keep_every_item() {
    let dir = tempfile::tempdir().unwrap();
    let svc = services(dir.path()).await;
    table(&svc, "ttt", true).await;
    for i in 0..300u32 {
        put(
            &svc,
            "ttt",
            &format!("p{}", i % 7),
            Some(i),
            &format!("v{i}"),
        )
        .await;
    }
    let before = all_items(&svc, "ttt").await;
    assert_eq!(before.len(), 300);
    let g1 = gens(&svc, "ttt");
    assert_eq!(g1.keys().copied().collect::<Vec<_>>(), vec![1]);
    assert_eq!(g1[&1].items, 300);
    assert!(
        g1[&1].pages > 0,
        "a table with a sort key has sort-index pages"
    );

    assert_eq!(rotate_data_key(&svc, "ttt").await.unwrap(), 2);
    // New writes use generation 2; old rows still open.
    put(&svc, "ttt", "new", Some(1), "after rotation").await;
    let g = gens(&svc, "ttt");
    assert_eq!(g[&1].items, 300);
    assert_eq!(g[&2].items, 1);
    assert_eq!(all_items(&svc, "ttt").await.len(), 301);

    // Generation 1 is still used: retiring it is refused; the active one never can be.
    assert!(matches!(
        retire_generation(&svc, "ttt", 1).await,
        Err(KeyJobError::Refused(_))
    ));
    assert!(matches!(
        retire_generation(&svc, "ttt", 2).await,
        Err(KeyJobError::Refused(_))
    ));

    let cfg = KeysConfig {
        reencrypt_rows_per_sec: 0,
        ..Default::default()
    };
    let p = run_reencrypt(&svc, "ttt", cfg).await.unwrap();
    assert_eq!(p.failed, 0);
    assert!(p.resealed >= 300, "{p:?}");
    assert_eq!(p.remaining, 0);
    assert!(p.finished.is_some());
    let g = gens(&svc, "ttt");
    assert_eq!(
        g.keys().copied().collect::<Vec<_>>(),
        vec![2],
        "only generation 2 left"
    );

    retire_generation(&svc, "ttt", 1).await.unwrap();
    let e = svc.catalog.table("ttt").unwrap();
    assert!(
        e.def.keys.generation(1).is_none(),
        "its wrapped DEK is gone"
    );
    let mut after = all_items(&svc, "ttt").await;
    after.retain(|i| i["pk"] != json!({"S": "new"}));
    assert_eq!(before, after, "same items after the drill");

    // After a restart (fresh unwrap from the KMS) everything still opens.
    drop(e);
    drop(svc);
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    let svc = services(dir.path()).await;
    assert_eq!(all_items(&svc, "ttt").await.len(), 301);
}

#[tokio::test]
async fn switching_the_kms_key_rewraps_without_touching_rows() {
    let dir = tempfile::tempdir().unwrap();
    let svc = services(dir.path()).await;
    table(&svc, "sss", false).await;
    for i in 0..50 {
        put(&svc, "sss", &format!("k{i}"), None, "x").await;
    }
    let e = svc.catalog.table("sss").unwrap();
    let old_arn = e.def.keys.kms_key_arn.clone();
    let rows_before = svc
        .store
        .scan(
            crate::storage::Space::Items,
            &e.def.keyspace,
            Some(&crate::catalog::prefix_end(&e.def.keyspace)),
            false,
            1000,
        )
        .unwrap();
    let local = svc.local_kms.clone().unwrap();
    let b = local
        .key_store()
        .create_key(kms_mock::CreateKeyRequest::default())
        .unwrap();
    local
        .key_store()
        .create_alias("alias/key-b", &b.key_id)
        .unwrap();

    crate::ops::key_admin::switch_table_kms_key(
        &svc,
        "sss",
        &json!({"Enabled": true, "SSEType": "KMS", "KMSMasterKeyId": "alias/key-b"}),
    )
    .await
    .unwrap();
    let e2 = svc.catalog.table("sss").unwrap();
    assert_eq!(e2.def.keys.kms_key_arn, b.arn);
    assert!(e2.def.sse_explicit);
    assert_ne!(e2.def.keys.table_key_blob, e.def.keys.table_key_blob);
    let rows_after = svc
        .store
        .scan(
            crate::storage::Space::Items,
            &e.def.keyspace,
            Some(&crate::catalog::prefix_end(&e.def.keyspace)),
            false,
            1000,
        )
        .unwrap();
    assert_eq!(rows_before, rows_after, "no row rewritten");

    // The old key is no longer needed: disable it, drop the cache, and the table still opens.
    local.key_store().disable_key(&old_arn).ok();
    let fresh = unwrap_table_keys(svc.kms.as_ref(), &e2.def.keys, &e2.def.keyspace)
        .await
        .unwrap();
    assert_eq!(fresh.generations(), vec![1]);
    e2.keys.forget();
    assert_eq!(all_items(&svc, "sss").await.len(), 50);

    // An unknown or disabled key is refused like CreateTable refuses it.
    for bad in ["alias/nope", old_arn.as_str()] {
        assert!(crate::ops::key_admin::switch_table_kms_key(
            &svc,
            "sss",
            &json!({"Enabled": true, "SSEType": "KMS", "KMSMasterKeyId": bad}),
        )
        .await
        .is_err());
    }
}

#[test]
fn keys_config_reads_the_environment_and_rejects_garbage() {
    // As a server reads it: defaults (no file), the environment, then the range checks.
    let from_env = |get: &dyn Fn(&str) -> Option<String>| {
        let mut c = KeysConfig::default();
        c.apply_env(get).and_then(|()| c.validate()).map(|()| c)
    };
    let c = from_env(&|k| match k {
        "SEALDB_KEYS_REENCRYPT_ROWS_PER_SEC" => Some("50".into()),
        "SEALDB_KEYS_ROTATE_MAX_ENCRYPTIONS" => Some("1000".into()),
        _ => None,
    })
    .unwrap();
    assert_eq!(c.reencrypt_rows_per_sec, 50);
    assert_eq!(c.rotate_max_encryptions, Some(1000));
    assert_eq!(c.rotate_max_age_secs, None);
    assert!(from_env(&|k| {
        (k == "SEALDB_KEYS_ROTATE_MAX_AGE_SECS").then(|| "soon".to_string())
    })
    .is_err());
}

#[tokio::test]
async fn reseal_never_overwrites_a_row_a_writer_changed() {
    let dir = tempfile::tempdir().unwrap();
    let svc = services(dir.path()).await;
    table(&svc, "ccc", false).await;
    put(&svc, "ccc", "a", None, "old").await;
    rotate_data_key(&svc, "ccc").await.unwrap();
    let e = svc.catalog.table("ccc").unwrap();
    let keys = svc.table_keys(&e).await.unwrap();
    let page = svc
        .store
        .scan(
            crate::storage::Space::Items,
            &e.def.keyspace,
            Some(&crate::catalog::prefix_end(&e.def.keyspace)),
            false,
            10,
        )
        .unwrap();
    let (k, v) = page.entries[0].clone();
    let resealed = crate::items::reseal_row(&keys, crate::storage::Space::Items, &k, &v)
        .unwrap()
        .unwrap();
    assert_eq!(crate::items::row_generation(&resealed), Some(2));
    // A writer replaces the row meanwhile; the job's conditional write must lose.
    put(&svc, "ccc", "a", None, "new").await;
    let r = svc.store.commit(
        &[crate::storage::Check {
            space: crate::storage::Space::Items,
            key: k.clone(),
            expect: Some(v),
        }],
        &[crate::storage::Write::Put {
            space: crate::storage::Space::Items,
            key: k,
            value: resealed,
        }],
    );
    assert!(r.is_err());
    let items = all_items(&svc, "ccc").await;
    assert_eq!(items[0]["v"], json!({"S": "new"}));
}
