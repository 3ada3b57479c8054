use std::os::unix::fs::PermissionsExt;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;

use super::*;
use crate::blob;
use crate::material::KeyMaterial;
use crate::types::{CreateKeyRequest, EncryptionContext, IncludeKeyMaterial, RotationType};

const DAY: u64 = 86_400;

fn store() -> KeyStore {
    KeyStore::in_memory("111122223333", "eu-west-1")
}

fn ctx(pairs: &[(&str, &str)]) -> EncryptionContext {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn new_key(s: &KeyStore) -> String {
    s.create_key(CreateKeyRequest::default()).unwrap().key_id
}

fn err_type<T: std::fmt::Debug>(r: Result<T, KmsError>) -> &'static str {
    r.unwrap_err().aws_type()
}

#[test]
fn create_and_describe_by_every_name() {
    let s = store();
    let meta = s
        .create_key(CreateKeyRequest {
            description: Some("d".into()),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(
        meta.arn,
        format!("arn:aws:kms:eu-west-1:111122223333:key/{}", meta.key_id)
    );
    assert_eq!(meta.key_state, KeyState::Enabled);
    assert!(meta.enabled);
    s.create_alias("alias/app", &meta.key_id).unwrap();
    for name in [
        meta.key_id.clone(),
        meta.key_id.to_uppercase(),
        meta.arn.clone(),
        "alias/app".to_string(),
        "arn:aws:kms:eu-west-1:111122223333:alias/app".to_string(),
    ] {
        assert_eq!(s.describe_key(&name).unwrap().key_id, meta.key_id, "{name}");
    }
    assert_eq!(err_type(s.describe_key("alias/none")), "NotFoundException");
    assert_eq!(err_type(s.describe_key("not-a-uuid")), "NotFoundException");
    assert_eq!(
        err_type(s.describe_key("arn:aws:kms:us-east-1:111122223333:key/x")),
        "NotFoundException"
    );
    assert_eq!(
        err_type(s.describe_key("arn:aws:s3:::bucket")),
        "InvalidArnException"
    );
    let missing = "00000000-0000-4000-8000-000000000000";
    let e = s.describe_key(missing).unwrap_err();
    assert_eq!(
        e.to_string(),
        format!("Key 'arn:aws:kms:eu-west-1:111122223333:key/{missing}' does not exist")
    );
    // Lifecycle operations take key ids and ARNs only.
    assert_eq!(err_type(s.disable_key("alias/app")), "NotFoundException");
    assert_eq!(
        err_type(s.create_key(CreateKeyRequest {
            key_spec: Some("RSA_2048".into()),
            ..Default::default()
        })),
        "UnsupportedOperationException"
    );
}

#[test]
fn encrypt_decrypt_and_context_binding() {
    let s = store();
    let k = new_key(&s);
    let c = ctx(&[("table", "t1"), ("purpose", "tk")]);
    let (blob, arn) = s.encrypt(&k, b"secret bytes", &c).unwrap();
    assert_eq!(arn, s.key_arn(&k));
    let (pt, arn2) = s.decrypt(&blob, &c, None).unwrap();
    assert_eq!(pt.as_slice(), b"secret bytes");
    assert_eq!(arn2, arn);
    assert_eq!(
        s.decrypt(&blob, &c, Some(&arn)).unwrap().0.as_slice(),
        b"secret bytes"
    );
    for wrong in [
        ctx(&[]),
        ctx(&[("table", "t2"), ("purpose", "tk")]),
        ctx(&[("table", "t1")]),
        ctx(&[("table", "t1"), ("purpose", "tk"), ("x", "")]),
        ctx(&[("tablet", "1"), ("purpose", "tk")]),
    ] {
        assert_eq!(
            err_type(s.decrypt(&blob, &wrong, None)),
            "InvalidCiphertextException"
        );
    }
    // A KeyId naming another key: IncorrectKeyException, even via an alias.
    let other = new_key(&s);
    s.create_alias("alias/other", &other).unwrap();
    assert_eq!(
        err_type(s.decrypt(&blob, &c, Some(&other))),
        "IncorrectKeyException"
    );
    assert_eq!(
        err_type(s.decrypt(&blob, &c, Some("alias/other"))),
        "IncorrectKeyException"
    );
    // Blobs differ each time (fresh IV).
    assert_ne!(s.encrypt(&k, b"secret bytes", &c).unwrap().0, blob);
    assert_eq!(err_type(s.encrypt(&k, b"", &c)), "ValidationException");
    assert_eq!(
        err_type(s.encrypt(&k, &[0u8; 4097], &c)),
        "ValidationException"
    );
}

#[test]
fn any_tampered_byte_is_invalid_ciphertext() {
    let s = store();
    let k = new_key(&s);
    let c = ctx(&[("a", "b")]);
    let (blob, _) = s.encrypt(&k, b"0123456789", &c).unwrap();
    for i in 0..blob.len() {
        let mut t = blob.clone();
        t[i] ^= 0x01;
        assert_eq!(
            err_type(s.decrypt(&t, &c, None)),
            "InvalidCiphertextException",
            "byte {i}"
        );
    }
    assert_eq!(
        err_type(s.decrypt(&blob[..blob.len() - 1], &c, None)),
        "InvalidCiphertextException"
    );
    assert_eq!(
        err_type(s.decrypt(&[1, 2, 3], &c, None)),
        "InvalidCiphertextException"
    );
    assert_eq!(err_type(s.decrypt(&[], &c, None)), "ValidationException");
}

#[test]
fn data_keys_and_reencrypt() {
    let s = store();
    let a = new_key(&s);
    let b = new_key(&s);
    let c = ctx(&[("ks", "1")]);
    let dk = s.generate_data_key(&a, &c, 32).unwrap();
    assert_eq!(dk.plaintext.len(), 32);
    assert!(!format!("{dk:?}").contains(&hex::encode(dk.plaintext.as_slice())));
    let (pt, _) = s.decrypt(&dk.ciphertext_blob, &c, None).unwrap();
    assert_eq!(pt.as_slice(), dk.plaintext.as_slice());
    let c2 = ctx(&[("ks", "2")]);
    let re = s
        .re_encrypt(&dk.ciphertext_blob, &c, Some(&a), &b, &c2)
        .unwrap();
    assert_eq!(re.source_key_arn, s.key_arn(&a));
    assert_eq!(re.key_arn, s.key_arn(&b));
    let (pt2, arn) = s.decrypt(&re.ciphertext_blob, &c2, None).unwrap();
    assert_eq!(pt2.as_slice(), dk.plaintext.as_slice());
    assert_eq!(arn, s.key_arn(&b));
    assert_eq!(
        err_type(s.re_encrypt(&dk.ciphertext_blob, &c, Some(&b), &b, &c2)),
        "IncorrectKeyException"
    );
    let w = s.generate_data_key_without_plaintext(&a, &c, 16).unwrap();
    assert_eq!(s.decrypt(&w.ciphertext_blob, &c, None).unwrap().0.len(), 16);
    assert_eq!(
        err_type(s.generate_data_key(&a, &c, 0)),
        "ValidationException"
    );
    assert_eq!(
        err_type(s.generate_data_key(&a, &c, 1025)),
        "ValidationException"
    );
    assert_eq!(s.generate_random(1024).unwrap().len(), 1024);
    assert_eq!(err_type(s.generate_random(0)), "ValidationException");
}

/// Every operation against each key state, with AWS's outcome (KMS developer guide, key states).
#[test]
fn states_by_operations_matrix() {
    let s = store();
    let c = ctx(&[]);
    let make = |state: KeyState| -> (String, Vec<u8>) {
        let id = new_key(&s);
        let (blob, _) = s.encrypt(&id, b"x", &c).unwrap();
        match state {
            KeyState::Enabled => {}
            KeyState::Disabled => s.disable_key(&id).unwrap(),
            KeyState::PendingDeletion => {
                s.schedule_key_deletion(&id, Some(7)).unwrap();
            }
        }
        (id, blob)
    };
    type Op<'a> = Box<dyn Fn(&str, &[u8]) -> Result<(), KmsError> + 'a>;
    let dest = new_key(&s);
    let ops: Vec<(&str, Op, [&str; 3])> = vec![
        (
            "Encrypt",
            Box::new(|k, _| s.encrypt(k, b"x", &c).map(drop)),
            ["ok", "DisabledException", "KMSInvalidStateException"],
        ),
        (
            "Decrypt",
            Box::new(|_, b| s.decrypt(b, &c, None).map(drop)),
            ["ok", "DisabledException", "KMSInvalidStateException"],
        ),
        (
            "ReEncrypt",
            Box::new(|_, b| s.re_encrypt(b, &c, None, &dest, &c).map(drop)),
            ["ok", "DisabledException", "KMSInvalidStateException"],
        ),
        (
            "GenerateDataKey",
            Box::new(|k, _| s.generate_data_key(k, &c, 32).map(drop)),
            ["ok", "DisabledException", "KMSInvalidStateException"],
        ),
        (
            "GenerateDataKeyWithoutPlaintext",
            Box::new(|k, _| s.generate_data_key_without_plaintext(k, &c, 32).map(drop)),
            ["ok", "DisabledException", "KMSInvalidStateException"],
        ),
        (
            "DescribeKey",
            Box::new(|k, _| s.describe_key(k).map(drop)),
            ["ok", "ok", "ok"],
        ),
        (
            "EnableKey",
            Box::new(|k, _| s.enable_key(k)),
            ["ok", "ok", "KMSInvalidStateException"],
        ),
        (
            "DisableKey",
            Box::new(|k, _| s.disable_key(k)),
            ["ok", "ok", "KMSInvalidStateException"],
        ),
        (
            "ScheduleKeyDeletion",
            Box::new(|k, _| s.schedule_key_deletion(k, None).map(drop)),
            ["ok", "ok", "KMSInvalidStateException"],
        ),
        (
            "CancelKeyDeletion",
            Box::new(|k, _| s.cancel_key_deletion(k).map(drop)),
            ["KMSInvalidStateException", "KMSInvalidStateException", "ok"],
        ),
        (
            "EnableKeyRotation",
            Box::new(|k, _| s.enable_key_rotation(k, None)),
            ["ok", "DisabledException", "KMSInvalidStateException"],
        ),
        (
            "DisableKeyRotation",
            Box::new(|k, _| s.disable_key_rotation(k)),
            ["ok", "DisabledException", "KMSInvalidStateException"],
        ),
        (
            "GetKeyRotationStatus",
            Box::new(|k, _| s.get_key_rotation_status(k).map(drop)),
            ["ok", "ok", "ok"],
        ),
        (
            "RotateKeyOnDemand",
            Box::new(|k, _| s.rotate_key_on_demand(k).map(drop)),
            ["ok", "DisabledException", "KMSInvalidStateException"],
        ),
        (
            "ListKeyRotations",
            Box::new(|k, _| {
                s.list_key_rotations(k, IncludeKeyMaterial::All, None, None)
                    .map(drop)
            }),
            ["ok", "ok", "ok"],
        ),
        (
            "CreateAlias",
            Box::new(|k, _| s.create_alias(&format!("alias/m-{k}"), k)),
            ["ok", "ok", "KMSInvalidStateException"],
        ),
        (
            "ListAliases",
            Box::new(|k, _| s.list_aliases(Some(k), None, None).map(drop)),
            ["ok", "ok", "ok"],
        ),
    ];
    for (name, op, expected) in &ops {
        for (i, state) in [
            KeyState::Enabled,
            KeyState::Disabled,
            KeyState::PendingDeletion,
        ]
        .into_iter()
        .enumerate()
        {
            let (id, blob) = make(state);
            let got = match op(&id, &blob) {
                Ok(()) => "ok",
                Err(e) => e.aws_type(),
            };
            assert_eq!(got, expected[i], "{name} on a {state:?} key");
        }
    }
    // Messages name the key ARN, as AWS does.
    let (id, _) = make(KeyState::Disabled);
    let e = s.encrypt(&id, b"x", &c).unwrap_err();
    assert_eq!(e.to_string(), format!("{} is disabled.", s.key_arn(&id)));
    // UpdateAlias to a key pending deletion is refused.
    let (ok_key, _) = make(KeyState::Enabled);
    s.create_alias("alias/u", &ok_key).unwrap();
    let (pending, _) = make(KeyState::PendingDeletion);
    assert_eq!(
        err_type(s.update_alias("alias/u", &pending)),
        "KMSInvalidStateException"
    );
}

#[test]
fn deletion_window_and_clock() {
    let s = store();
    let k = new_key(&s);
    s.create_alias("alias/gone", &k).unwrap();
    assert_eq!(
        err_type(s.schedule_key_deletion(&k, Some(6))),
        "ValidationException"
    );
    assert_eq!(
        err_type(s.schedule_key_deletion(&k, Some(31))),
        "ValidationException"
    );
    let before = s.now_epoch_secs();
    let d = s.schedule_key_deletion(&k, None).unwrap();
    assert_eq!(d.pending_window_in_days, 30);
    assert!(d.deletion_date >= before + 30.0 * DAY as f64 - 1.0);
    let meta = s.describe_key(&k).unwrap();
    assert_eq!(meta.key_state, KeyState::PendingDeletion);
    assert_eq!(meta.deletion_date, Some(d.deletion_date));
    assert!(!meta.enabled);
    // Cancel: back as Disabled.
    s.cancel_key_deletion(&k).unwrap();
    assert_eq!(s.describe_key(&k).unwrap().key_state, KeyState::Disabled);
    s.schedule_key_deletion(&k, Some(7)).unwrap();
    s.advance_clock(6 * DAY).unwrap();
    assert!(s.describe_key(&k).is_ok());
    s.advance_clock(DAY + 1).unwrap();
    assert_eq!(err_type(s.describe_key(&k)), "NotFoundException");
    assert!(s.list_aliases(None, None, None).unwrap().items.is_empty());
    assert!(s.list_keys(None, None).unwrap().items.is_empty());
}

#[test]
fn rotation_keeps_old_blobs_and_runs_on_the_clock() {
    let s = store();
    let k = new_key(&s);
    let c = ctx(&[("t", "1")]);
    let (old_blob, _) = s.encrypt(&k, b"old", &c).unwrap();
    let m0 = s.describe_key(&k).unwrap().current_key_material_id;
    s.rotate_key_on_demand(&k).unwrap();
    let m1 = s.describe_key(&k).unwrap().current_key_material_id;
    assert_ne!(m0, m1);
    let enc = s.encrypt_detailed(&k, b"new", &c).unwrap();
    assert_eq!(enc.key_material_id, m1);
    assert_eq!(s.decrypt(&old_blob, &c, None).unwrap().0.as_slice(), b"old");
    assert_eq!(
        s.decrypt_detailed(&old_blob, &c, None)
            .unwrap()
            .key_material_id,
        m0
    );
    assert_eq!(
        s.decrypt(&enc.ciphertext_blob, &c, None)
            .unwrap()
            .0
            .as_slice(),
        b"new"
    );
    // The two materials really differ: the header's material version selects the key, so
    // pointing the new blob at version 0 must fail authentication.
    let mut forged = enc.ciphertext_blob.clone();
    forged[17..21].copy_from_slice(&0u32.to_be_bytes());
    assert_eq!(
        err_type(s.decrypt(&forged, &c, None)),
        "InvalidCiphertextException"
    );

    let st = s.get_key_rotation_status(&k).unwrap();
    assert!(!st.key_rotation_enabled);
    assert_eq!(
        err_type(s.enable_key_rotation(&k, Some(89))),
        "ValidationException"
    );
    assert_eq!(
        err_type(s.enable_key_rotation(&k, Some(2561))),
        "ValidationException"
    );
    s.enable_key_rotation(&k, Some(90)).unwrap();
    let st = s.get_key_rotation_status(&k).unwrap();
    assert!(st.key_rotation_enabled);
    assert_eq!(st.rotation_period_in_days, Some(90));
    assert_eq!(s.material_versions(&k).unwrap(), 2);
    s.advance_clock(89 * DAY).unwrap();
    assert_eq!(s.material_versions(&k).unwrap(), 2);
    s.advance_clock(2 * DAY).unwrap();
    assert_eq!(s.material_versions(&k).unwrap(), 3);
    // Disabled keys do not rotate; they catch up when enabled again.
    s.disable_key(&k).unwrap();
    s.advance_clock(100 * DAY).unwrap();
    assert_eq!(s.material_versions(&k).unwrap(), 3);
    s.enable_key(&k).unwrap();
    assert_eq!(s.material_versions(&k).unwrap(), 4);
    let rot = s
        .list_key_rotations(&k, IncludeKeyMaterial::RotationsOnly, None, None)
        .unwrap();
    let kinds: Vec<_> = rot.items.iter().map(|r| r.rotation_type).collect();
    assert_eq!(
        kinds,
        vec![
            Some(RotationType::OnDemand),
            Some(RotationType::Automatic),
            Some(RotationType::Automatic)
        ]
    );
    assert_eq!(rot.items.last().unwrap().key_material_state, "CURRENT");
    assert_eq!(rot.items[0].key_material_state, "NON_CURRENT");
    let all = s
        .list_key_rotations(&k, IncludeKeyMaterial::All, Some(2), None)
        .unwrap();
    assert_eq!(all.items.len(), 2);
    assert!(all.items[0].rotation_date.is_none());
    assert!(all.next_marker.is_some());
    assert_eq!(s.decrypt(&old_blob, &c, None).unwrap().0.as_slice(), b"old");
    s.disable_key_rotation(&k).unwrap();
    assert!(!s.get_key_rotation_status(&k).unwrap().key_rotation_enabled);
}

#[test]
fn on_demand_rotation_limit() {
    let s = store();
    let k = new_key(&s);
    for _ in 0..super::rotation::MAX_ON_DEMAND_ROTATIONS {
        s.rotate_key_on_demand(&k).unwrap();
    }
    assert_eq!(
        err_type(s.rotate_key_on_demand(&k)),
        "LimitExceededException"
    );
}

#[test]
fn aliases_lifecycle() {
    let s = store();
    let a = new_key(&s);
    let b = new_key(&s);
    s.create_alias("alias/x", &a).unwrap();
    assert_eq!(
        err_type(s.create_alias("alias/x", &b)),
        "AlreadyExistsException"
    );
    assert_eq!(
        err_type(s.create_alias("alias/aws/x", &b)),
        "InvalidAliasNameException"
    );
    assert_eq!(
        err_type(s.create_alias("alias/y", "alias/x")),
        "NotFoundException"
    );
    s.update_alias("alias/x", &b).unwrap();
    assert_eq!(s.describe_key("alias/x").unwrap().key_id, b);
    assert_eq!(s.list_aliases(Some(&a), None, None).unwrap().items.len(), 0);
    assert_eq!(s.list_aliases(Some(&b), None, None).unwrap().items.len(), 1);
    s.delete_alias("alias/x").unwrap();
    assert_eq!(err_type(s.delete_alias("alias/x")), "NotFoundException");
    assert_eq!(err_type(s.update_alias("alias/x", &a)), "NotFoundException");
}

#[test]
fn inline_faults() {
    let s = store();
    let k = new_key(&s);
    s.add_fault(FaultRule {
        operation: "Decrypt".into(),
        error: Some("ThrottlingException".into()),
        message: None,
        latency_ms: 0,
        timeout: false,
        count: Some(1),
    })
    .unwrap();
    let (blob, _) = s.encrypt(&k, b"x", &ctx(&[])).unwrap();
    assert_eq!(
        err_type(s.decrypt(&blob, &ctx(&[]), None)),
        "ThrottlingException"
    );
    assert!(s.decrypt(&blob, &ctx(&[]), None).is_ok());
    s.add_fault(FaultRule {
        operation: "*".into(),
        error: None,
        message: None,
        latency_ms: 0,
        timeout: true,
        count: None,
    })
    .unwrap();
    assert_eq!(err_type(s.describe_key(&k)), "DependencyTimeoutException");
    s.clear_faults();
    assert!(s.describe_key(&k).is_ok());
}

#[test]
fn persistence_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("kms.state");
    let master = dir.path().join("kms.master");
    let seed_material = [0x5au8; 32];
    let (k, blob, old_blob, seeded_id) = {
        let s = KeyStore::open(&state, &master, "000000000000", "us-east-1").unwrap();
        let k = new_key(&s);
        let (old_blob, _) = s
            .encrypt(&k, b"before rotation", &ctx(&[("a", "1")]))
            .unwrap();
        s.rotate_key_on_demand(&k).unwrap();
        s.enable_key_rotation(&k, Some(180)).unwrap();
        s.create_alias("alias/p", &k).unwrap();
        let (blob, _) = s
            .encrypt(&k, b"after rotation", &ctx(&[("a", "1")]))
            .unwrap();
        let d = new_key(&s);
        s.disable_key(&d).unwrap();
        let p = new_key(&s);
        s.schedule_key_deletion(&p, Some(10)).unwrap();
        s.advance_clock(3 * DAY).unwrap();
        let seeded_id = "11111111-2222-4333-8444-555555555555";
        s.seed(SeedFile {
            keys: vec![SeedKey {
                id: seeded_id.into(),
                alias: Some("alias/seeded".into()),
                material: KeyMaterial::from_slice(&seed_material).unwrap(),
                description: None,
                enabled: true,
            }],
        })
        .unwrap();
        (k, blob, old_blob, seeded_id.to_string())
    };
    for p in [&state, &master] {
        let mode = std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{}", p.display());
    }
    // Nothing readable in the file: not the seeded material (raw, hex, base64), not ids.
    let raw = std::fs::read(&state).unwrap();
    let text = String::from_utf8_lossy(&raw);
    assert!(!text.contains(&B64.encode(seed_material)));
    assert!(!text.contains(&hex::encode(seed_material)));
    assert!(!raw.windows(32).any(|w| w == seed_material));
    assert!(!text.contains(&k));
    assert!(!text.contains("alias/p"));

    let s = KeyStore::open(&state, &master, "000000000000", "us-east-1").unwrap();
    assert_eq!(
        s.decrypt(&blob, &ctx(&[("a", "1")]), None)
            .unwrap()
            .0
            .as_slice(),
        b"after rotation"
    );
    assert_eq!(
        s.decrypt(&old_blob, &ctx(&[("a", "1")]), None)
            .unwrap()
            .0
            .as_slice(),
        b"before rotation"
    );
    assert_eq!(s.describe_key("alias/p").unwrap().key_id, k);
    assert_eq!(
        s.get_key_rotation_status(&k)
            .unwrap()
            .rotation_period_in_days,
        Some(180)
    );
    assert_eq!(s.material_versions(&k).unwrap(), 2);
    assert_eq!(s.describe_key("alias/seeded").unwrap().key_id, seeded_id);
    let states: Vec<KeyState> = s
        .list_keys(None, None)
        .unwrap()
        .items
        .iter()
        .map(|e| s.describe_key(&e.key_id).unwrap().key_state)
        .collect();
    assert_eq!(
        states.iter().filter(|x| **x == KeyState::Disabled).count(),
        1
    );
    assert_eq!(
        states
            .iter()
            .filter(|x| **x == KeyState::PendingDeletion)
            .count(),
        1
    );
    // The clock offset survived: 7 more days reach the 10-day deletion date.
    s.advance_clock(7 * DAY + 1).unwrap();
    assert_eq!(s.list_keys(None, None).unwrap().items.len(), 3);
    drop(s);

    // A wrong master key cannot open the state.
    let other_master = dir.path().join("other.master");
    let e = KeyStore::open(&state, &other_master, "000000000000", "us-east-1").unwrap_err();
    assert!(e.to_string().contains("cannot be opened"));
    // A tampered state file is refused, not half-loaded.
    let mut bad = std::fs::read(&state).unwrap();
    let n = bad.len();
    bad[n / 2] = if bad[n / 2] == b'A' { b'B' } else { b'A' };
    std::fs::write(&state, &bad).unwrap();
    assert!(KeyStore::open(&state, &master, "000000000000", "us-east-1").is_err());
}

#[test]
fn seeded_material_is_the_key_used() {
    let s = store();
    let material = [7u8; 32];
    let dir = tempfile::tempdir().unwrap();
    let seed = dir.path().join("seed.json");
    let id = "aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee";
    std::fs::write(
        &seed,
        format!(
            r#"{{"keys":[{{"id":"{id}","alias":"alias/known","material":"{}"}}]}}"#,
            B64.encode(material)
        ),
    )
    .unwrap();
    let metas = s.seed_from_file(&seed).unwrap();
    assert_eq!(metas[0].key_id, id);
    // Seeding again is idempotent.
    s.seed_from_file(&seed).unwrap();
    let c = ctx(&[("k", "v")]);
    let (blob_bytes, _) = s.encrypt("alias/known", b"hello", &c).unwrap();
    // Open the blob independently with the known material.
    let (header, sealed) = blob::parse(&blob_bytes).unwrap();
    assert_eq!(header.material_version, 0);
    let aad = blob::aad(&header, &c).unwrap();
    let pt = KeyMaterial::from_slice(&material)
        .unwrap()
        .open(&aad, sealed)
        .unwrap()
        .unwrap();
    assert_eq!(pt.as_slice(), b"hello");
    // Different material under the same id is refused.
    std::fs::write(
        &seed,
        format!(
            r#"{{"keys":[{{"id":"{id}","material":"{}"}}]}}"#,
            B64.encode([8u8; 32])
        ),
    )
    .unwrap();
    assert_eq!(err_type(s.seed_from_file(&seed)), "AlreadyExistsException");
    // Errors never echo the material.
    std::fs::write(&seed, r#"{"keys":[{"id":"x","material":"c2hvcnQ="}]}"#).unwrap();
    let e = s.seed_from_file(&seed).unwrap_err().to_string();
    assert!(!e.contains("c2hvcnQ="), "{e}");
}
