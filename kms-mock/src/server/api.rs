//! The KMS JSON protocol: operation name + JSON body -> KeyStore call -> JSON response.
//! Shapes and names follow AWS's service model (botocore `kms/2014-11-01/service-2.json`).

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{json, Map, Value};

use crate::error::KmsError;
use crate::types::{CreateKeyRequest, EncryptionContext, IncludeKeyMaterial, Page};
use crate::KeyStore;

/// Every operation the server answers (issue 4, item 2).
pub const OPERATIONS: &[&str] = &[
    "CreateKey",
    "DescribeKey",
    "ListKeys",
    "CreateAlias",
    "DeleteAlias",
    "UpdateAlias",
    "ListAliases",
    "Encrypt",
    "Decrypt",
    "ReEncrypt",
    "GenerateDataKey",
    "GenerateDataKeyWithoutPlaintext",
    "GenerateRandom",
    "EnableKey",
    "DisableKey",
    "ScheduleKeyDeletion",
    "CancelKeyDeletion",
    "EnableKeyRotation",
    "DisableKeyRotation",
    "GetKeyRotationStatus",
    "RotateKeyOnDemand",
    "ListKeyRotations",
];

const SYMMETRIC_DEFAULT: &str = "SYMMETRIC_DEFAULT";

fn parse<T: DeserializeOwned>(body: &[u8]) -> Result<T, KmsError> {
    let body: &[u8] = if body.iter().all(u8::is_ascii_whitespace) {
        b"{}"
    } else {
        body
    };
    // Position only: serde_json's messages may quote input values (plaintexts).
    serde_json::from_slice(body).map_err(|e| {
        KmsError::Serialization(format!(
            "Could not parse the request body (line {}, column {}): {}",
            e.line(),
            e.column(),
            match e.classify() {
                serde_json::error::Category::Data => "a member has the wrong type",
                _ => "malformed JSON",
            }
        ))
    })
}

fn required<T>(v: Option<T>, member: &str) -> Result<T, KmsError> {
    v.ok_or_else(|| {
        KmsError::Validation(format!(
            "1 validation error detected: Value null at '{member}' failed to satisfy constraint: Member must not be null"
        ))
    })
}

fn blob(v: &str, member: &str) -> Result<Vec<u8>, KmsError> {
    B64.decode(v.as_bytes())
        .map_err(|_| KmsError::Serialization(format!("Value of '{member}' is not valid base64")))
}

fn limit(v: Option<i64>) -> Result<Option<u32>, KmsError> {
    v.map(|l| {
        u32::try_from(l).map_err(|_| {
            KmsError::Validation(format!(
                "1 validation error detected: Value '{l}' at 'limit' failed to satisfy constraint: Member must have value between 1 and 1000"
            ))
        })
    })
    .transpose()
}

fn small_int(v: Option<i64>, member: &str) -> Result<Option<u32>, KmsError> {
    v.map(|n| {
        u32::try_from(n).map_err(|_| {
            KmsError::Validation(format!(
                "1 validation error detected: Value '{n}' at '{member}' failed to satisfy constraint: Member must have value greater than or equal to 1"
            ))
        })
    })
    .transpose()
}

fn check_algorithm(alg: Option<&str>) -> Result<(), KmsError> {
    match alg {
        None | Some(SYMMETRIC_DEFAULT) => Ok(()),
        Some(other) => Err(KmsError::InvalidKeyUsage(format!(
            "The encryption algorithm {other} is not supported by symmetric encryption keys."
        ))),
    }
}

fn dry_run(flag: Option<bool>) -> Result<(), KmsError> {
    if flag == Some(true) {
        return Err(KmsError::DryRun(
            "The request would have succeeded, but the DryRun option is set.".into(),
        ));
    }
    Ok(())
}

fn page_json<T: serde::Serialize>(list_name: &str, page: Page<T>) -> Result<Value, KmsError> {
    let mut out = Map::new();
    out.insert(list_name.into(), to_value(&page.items)?);
    out.insert("Truncated".into(), Value::Bool(page.next_marker.is_some()));
    if let Some(m) = page.next_marker {
        out.insert("NextMarker".into(), Value::String(m));
    }
    Ok(Value::Object(out))
}

fn to_value<T: serde::Serialize>(v: &T) -> Result<Value, KmsError> {
    serde_json::to_value(v).map_err(|_| KmsError::Internal("cannot serialize response".into()))
}

// ---- inputs (unknown members are ignored, as AWS does) ---------------------------------

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
struct KeyIdInput {
    key_id: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
struct CreateKeyInput {
    description: Option<String>,
    key_usage: Option<String>,
    key_spec: Option<String>,
    customer_master_key_spec: Option<String>,
    origin: Option<String>,
    custom_key_store_id: Option<String>,
    multi_region: Option<bool>,
    policy: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
struct ListInput {
    key_id: Option<String>,
    limit: Option<i64>,
    marker: Option<String>,
    include_key_material: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
struct AliasInput {
    alias_name: Option<String>,
    target_key_id: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
struct EncryptInput {
    key_id: Option<String>,
    plaintext: Option<String>,
    #[serde(default)]
    encryption_context: EncryptionContext,
    encryption_algorithm: Option<String>,
    dry_run: Option<bool>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
struct DecryptInput {
    ciphertext_blob: Option<String>,
    #[serde(default)]
    encryption_context: EncryptionContext,
    key_id: Option<String>,
    encryption_algorithm: Option<String>,
    recipient: Option<Value>,
    dry_run: Option<bool>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
struct ReEncryptInput {
    ciphertext_blob: Option<String>,
    #[serde(default)]
    source_encryption_context: EncryptionContext,
    source_key_id: Option<String>,
    destination_key_id: Option<String>,
    #[serde(default)]
    destination_encryption_context: EncryptionContext,
    source_encryption_algorithm: Option<String>,
    destination_encryption_algorithm: Option<String>,
    dry_run: Option<bool>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
struct DataKeyInput {
    key_id: Option<String>,
    #[serde(default)]
    encryption_context: EncryptionContext,
    number_of_bytes: Option<i64>,
    key_spec: Option<String>,
    recipient: Option<Value>,
    dry_run: Option<bool>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
struct RandomInput {
    number_of_bytes: Option<i64>,
    custom_key_store_id: Option<String>,
    recipient: Option<Value>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
struct ScheduleInput {
    key_id: Option<String>,
    pending_window_in_days: Option<i64>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
struct RotationInput {
    key_id: Option<String>,
    rotation_period_in_days: Option<i64>,
}

fn unsupported_recipient(r: &Option<Value>) -> Result<(), KmsError> {
    if r.is_some() {
        return Err(KmsError::UnsupportedOperation(
            "Recipient (Nitro Enclaves attestation) is not supported by kms-mock".into(),
        ));
    }
    Ok(())
}

/// Data key size from KeySpec / NumberOfBytes: exactly one of them (KMS API reference).
fn data_key_len(key_spec: Option<&str>, number_of_bytes: Option<i64>) -> Result<usize, KmsError> {
    match (key_spec, number_of_bytes) {
        (Some(_), Some(_)) => Err(KmsError::Validation(
            "Please specify either number of bytes or key spec.".into(),
        )),
        (None, None) => Err(KmsError::Validation(
            "Please specify either number of bytes or key spec.".into(),
        )),
        (Some("AES_256"), None) => Ok(32),
        (Some("AES_128"), None) => Ok(16),
        (Some(other), None) => Err(KmsError::Validation(format!(
            "1 validation error detected: Value '{other}' at 'keySpec' failed to satisfy constraint: Member must satisfy enum value set: [AES_256, AES_128]"
        ))),
        (None, Some(n)) => usize::try_from(n).map_err(|_| {
            KmsError::Validation(format!(
                "1 validation error detected: Value '{n}' at 'numberOfBytes' failed to satisfy constraint: Member must have value greater than or equal to 1"
            ))
        }),
    }
}

/// Runs one operation. `body` is the raw JSON request body.
pub fn dispatch(store: &KeyStore, op: &str, body: &[u8]) -> Result<Value, KmsError> {
    match op {
        "CreateKey" => {
            let i: CreateKeyInput = parse(body)?;
            if i.custom_key_store_id.is_some() {
                return Err(KmsError::UnsupportedOperation(
                    "Custom key stores are not supported by kms-mock".into(),
                ));
            }
            if i.policy
                .as_deref()
                .is_some_and(|p| serde_json::from_str::<Value>(p).is_err())
            {
                return Err(KmsError::MalformedPolicyDocument(
                    "The key policy is not valid JSON.".into(),
                ));
            }
            let meta = store.create_key(CreateKeyRequest {
                description: i.description,
                key_usage: i.key_usage,
                key_spec: i.key_spec.or(i.customer_master_key_spec),
                origin: i.origin,
                multi_region: i.multi_region,
            })?;
            Ok(json!({ "KeyMetadata": to_value(&meta)? }))
        }
        "DescribeKey" => {
            let i: KeyIdInput = parse(body)?;
            let meta = store.describe_key(&required(i.key_id, "keyId")?)?;
            Ok(json!({ "KeyMetadata": to_value(&meta)? }))
        }
        "ListKeys" => {
            let i: ListInput = parse(body)?;
            page_json(
                "Keys",
                store.list_keys(limit(i.limit)?, i.marker.as_deref())?,
            )
        }
        "CreateAlias" | "UpdateAlias" => {
            let i: AliasInput = parse(body)?;
            let name = required(i.alias_name, "aliasName")?;
            let target = required(i.target_key_id, "targetKeyId")?;
            if op == "CreateAlias" {
                store.create_alias(&name, &target)?;
            } else {
                store.update_alias(&name, &target)?;
            }
            Ok(json!({}))
        }
        "DeleteAlias" => {
            let i: AliasInput = parse(body)?;
            store.delete_alias(&required(i.alias_name, "aliasName")?)?;
            Ok(json!({}))
        }
        "ListAliases" => {
            let i: ListInput = parse(body)?;
            page_json(
                "Aliases",
                store.list_aliases(i.key_id.as_deref(), limit(i.limit)?, i.marker.as_deref())?,
            )
        }
        "Encrypt" => {
            let i: EncryptInput = parse(body)?;
            let key_id = required(i.key_id, "keyId")?;
            let plaintext =
                zeroize::Zeroizing::new(blob(&required(i.plaintext, "plaintext")?, "Plaintext")?);
            check_algorithm(i.encryption_algorithm.as_deref())?;
            let e = store.encrypt_detailed(&key_id, &plaintext, &i.encryption_context)?;
            dry_run(i.dry_run)?;
            Ok(json!({
                "CiphertextBlob": B64.encode(&e.ciphertext_blob),
                "KeyId": e.key_arn,
                "EncryptionAlgorithm": SYMMETRIC_DEFAULT,
            }))
        }
        "Decrypt" => {
            let i: DecryptInput = parse(body)?;
            let ct = blob(
                &required(i.ciphertext_blob, "ciphertextBlob")?,
                "CiphertextBlob",
            )?;
            check_algorithm(i.encryption_algorithm.as_deref())?;
            unsupported_recipient(&i.recipient)?;
            let d = store.decrypt_detailed(&ct, &i.encryption_context, i.key_id.as_deref())?;
            dry_run(i.dry_run)?;
            Ok(json!({
                "KeyId": d.key_arn,
                "Plaintext": B64.encode(d.plaintext.as_slice()),
                "EncryptionAlgorithm": SYMMETRIC_DEFAULT,
                "KeyMaterialId": d.key_material_id,
            }))
        }
        "ReEncrypt" => {
            let i: ReEncryptInput = parse(body)?;
            let ct = blob(
                &required(i.ciphertext_blob, "ciphertextBlob")?,
                "CiphertextBlob",
            )?;
            let dest = required(i.destination_key_id, "destinationKeyId")?;
            check_algorithm(i.source_encryption_algorithm.as_deref())?;
            check_algorithm(i.destination_encryption_algorithm.as_deref())?;
            let r = store.re_encrypt(
                &ct,
                &i.source_encryption_context,
                i.source_key_id.as_deref(),
                &dest,
                &i.destination_encryption_context,
            )?;
            dry_run(i.dry_run)?;
            Ok(json!({
                "CiphertextBlob": B64.encode(&r.ciphertext_blob),
                "SourceKeyId": r.source_key_arn,
                "KeyId": r.key_arn,
                "SourceEncryptionAlgorithm": SYMMETRIC_DEFAULT,
                "DestinationEncryptionAlgorithm": SYMMETRIC_DEFAULT,
                "SourceKeyMaterialId": r.source_key_material_id,
                "DestinationKeyMaterialId": r.destination_key_material_id,
            }))
        }
        "GenerateDataKey" => {
            let i: DataKeyInput = parse(body)?;
            let key_id = required(i.key_id, "keyId")?;
            unsupported_recipient(&i.recipient)?;
            let n = data_key_len(i.key_spec.as_deref(), i.number_of_bytes)?;
            let dk = store.generate_data_key(&key_id, &i.encryption_context, n)?;
            dry_run(i.dry_run)?;
            Ok(json!({
                "CiphertextBlob": B64.encode(&dk.ciphertext_blob),
                "Plaintext": B64.encode(dk.plaintext.as_slice()),
                "KeyId": dk.key_arn,
                "KeyMaterialId": dk.key_material_id,
            }))
        }
        "GenerateDataKeyWithoutPlaintext" => {
            let i: DataKeyInput = parse(body)?;
            let key_id = required(i.key_id, "keyId")?;
            let n = data_key_len(i.key_spec.as_deref(), i.number_of_bytes)?;
            let e = store.generate_data_key_without_plaintext(&key_id, &i.encryption_context, n)?;
            dry_run(i.dry_run)?;
            Ok(json!({
                "CiphertextBlob": B64.encode(&e.ciphertext_blob),
                "KeyId": e.key_arn,
                "KeyMaterialId": e.key_material_id,
            }))
        }
        "GenerateRandom" => {
            let i: RandomInput = parse(body)?;
            unsupported_recipient(&i.recipient)?;
            if i.custom_key_store_id.is_some() {
                return Err(KmsError::UnsupportedOperation(
                    "Custom key stores are not supported by kms-mock".into(),
                ));
            }
            let n = required(i.number_of_bytes, "numberOfBytes")?;
            let n = usize::try_from(n).map_err(|_| {
                KmsError::Validation(format!(
                    "1 validation error detected: Value '{n}' at 'numberOfBytes' failed to satisfy constraint: Member must have value greater than or equal to 1"
                ))
            })?;
            let r = store.generate_random(n)?;
            Ok(json!({ "Plaintext": B64.encode(r.as_slice()) }))
        }
        "EnableKey" | "DisableKey" => {
            let i: KeyIdInput = parse(body)?;
            let key_id = required(i.key_id, "keyId")?;
            if op == "EnableKey" {
                store.enable_key(&key_id)?;
            } else {
                store.disable_key(&key_id)?;
            }
            Ok(json!({}))
        }
        "ScheduleKeyDeletion" => {
            let i: ScheduleInput = parse(body)?;
            let key_id = required(i.key_id, "keyId")?;
            let days = small_int(i.pending_window_in_days, "pendingWindowInDays")?;
            to_value(&store.schedule_key_deletion(&key_id, days)?)
        }
        "CancelKeyDeletion" => {
            let i: KeyIdInput = parse(body)?;
            let arn = store.cancel_key_deletion(&required(i.key_id, "keyId")?)?;
            Ok(json!({ "KeyId": arn }))
        }
        "EnableKeyRotation" => {
            let i: RotationInput = parse(body)?;
            let key_id = required(i.key_id, "keyId")?;
            let days = small_int(i.rotation_period_in_days, "rotationPeriodInDays")?;
            store.enable_key_rotation(&key_id, days)?;
            Ok(json!({}))
        }
        "DisableKeyRotation" => {
            let i: KeyIdInput = parse(body)?;
            store.disable_key_rotation(&required(i.key_id, "keyId")?)?;
            Ok(json!({}))
        }
        "GetKeyRotationStatus" => {
            let i: KeyIdInput = parse(body)?;
            to_value(&store.get_key_rotation_status(&required(i.key_id, "keyId")?)?)
        }
        "RotateKeyOnDemand" => {
            let i: KeyIdInput = parse(body)?;
            let arn = store.rotate_key_on_demand(&required(i.key_id, "keyId")?)?;
            Ok(json!({ "KeyId": arn }))
        }
        "ListKeyRotations" => {
            let i: ListInput = parse(body)?;
            let key_id = required(i.key_id, "keyId")?;
            let include = match i.include_key_material.as_deref() {
                None | Some("ROTATIONS_ONLY") => IncludeKeyMaterial::RotationsOnly,
                Some("ALL_KEY_MATERIAL") => IncludeKeyMaterial::All,
                Some(other) => {
                    return Err(KmsError::Validation(format!(
                        "1 validation error detected: Value '{other}' at 'includeKeyMaterial' failed to satisfy constraint: Member must satisfy enum value set: [ALL_KEY_MATERIAL, ROTATIONS_ONLY]"
                    )))
                }
            };
            page_json(
                "Rotations",
                store.list_key_rotations(&key_id, include, limit(i.limit)?, i.marker.as_deref())?,
            )
        }
        other => Err(KmsError::UnknownOperation(format!(
            "Unknown operation {other}"
        ))),
    }
}
