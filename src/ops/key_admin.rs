//! Key lifecycle operations on a table: switching its KMS key (UpdateTable SSESpecification),
//! and sealdb's key administration API (`SealDBAdmin_20261101.KeysStatus`, `RotateDataKey`,
//! `ReencryptTable`, `RetireGeneration`), authorized as `sealdb:<Operation>` on the table ARN.
//! The same functions serve the admin endpoint and the offline CLI (`sealdb keys ... --data-dir`).

use std::sync::Arc;

use serde::Deserialize;
use serde_json::{json, Value};

use super::Services;
use crate::error::ApiError;
use crate::keyjob::{self, KeyJobError};
use crate::protocol::input::{table_name, CreateTableInput};
use crate::protocol::KeysOp;

/// UpdateTable's `SSESpecification` (raw JSON): switches `table` to another KMS key online.
/// The key is named and checked exactly as CreateTable does (id, ARN, alias name or alias ARN;
/// it must be enabled); `Enabled: false` or no key id means the server's default key.
pub async fn switch_table_kms_key(
    svc: &Services,
    table: &str,
    sse_specification: &Value,
) -> Result<(), ApiError> {
    let input: CreateTableInput =
        serde_json::from_value(json!({ "SSESpecification": sse_specification }))
            .map_err(|e| ApiError::validation(format!("Invalid SSESpecification: {e}")))?;
    let (arn, explicit) = super::tables::resolve_table_kms_key(svc, &input).await?;
    keyjob::switch_kms_key(svc, table, &arn, explicit)
        .await
        .map_err(api_error)
}

/// Input of the key administration API.
#[derive(Debug, Deserialize, Default, Clone)]
#[serde(rename_all = "PascalCase", default)]
pub struct KeysInput {
    pub table_name: Option<String>,
    pub generation: Option<u32>,
    /// KeysStatus: only the re-encryption progress of `TableName` (no row counting, no KMS
    /// call), for polling.
    pub progress_only: Option<bool>,
}

impl KeysInput {
    /// The IAM action (`sealdb:<Operation>`) and resource (the table's ARN; every table's for
    /// a status of all tables) this request needs.
    pub fn target(&self, op: KeysOp, region: &str, account: &str) -> (String, String) {
        let table = self.table_name.as_deref().unwrap_or("*");
        (
            format!("sealdb:{}", op.name()),
            format!("arn:aws:dynamodb:{region}:{account}:table/{table}"),
        )
    }
}

pub fn api_error(e: KeyJobError) -> ApiError {
    match e {
        KeyJobError::TableNotFound(t) => ApiError::ResourceNotFound(format!(
            "Requested resource not found: Table: {t} not found"
        )),
        KeyJobError::Invalid(m) => ApiError::Validation(m),
        KeyJobError::Refused(m) => ApiError::ResourceInUse(m),
        KeyJobError::Conflict => ApiError::ServiceUnavailable(e.to_string()),
        KeyJobError::Keyring(k) => k.into(),
        KeyJobError::Catalog(c) => c.into(),
        KeyJobError::Store(s) => s.into(),
        KeyJobError::Task(m) => ApiError::Internal(m),
    }
}

/// Runs one key administration operation. `ReencryptTable` starts the job in the background
/// and returns at once; poll `KeysStatus` for its progress.
pub async fn run(svc: &Arc<Services>, op: KeysOp, input: KeysInput) -> Result<Value, ApiError> {
    let table = || table_name(input.table_name.clone());
    match op {
        KeysOp::KeysStatus if input.progress_only == Some(true) => {
            let t = table()?;
            svc.table(&t)?;
            Ok(json!({ "TableName": t, "Reencrypt": keyjob::progress(svc, &t) }))
        }
        KeysOp::KeysStatus => {
            let (tables, mlock) = keyjob::status(svc, input.table_name.as_deref())
                .await
                .map_err(api_error)?;
            Ok(json!({
                "Tables": tables,
                "KeyMemory": {
                    "LockedPages": mlock.locked_pages,
                    "LockFailures": mlock.failures,
                    "MemlockLimitBytes": mlock.limit_bytes,
                    "AllLocked": mlock.all_locked(),
                },
            }))
        }
        KeysOp::RotateDataKey => {
            let t = table()?;
            let g = keyjob::rotate_data_key(svc, &t).await.map_err(api_error)?;
            Ok(json!({ "TableName": t, "ActiveGeneration": g }))
        }
        KeysOp::ReencryptTable => {
            let t = table()?;
            let p = keyjob::start_reencrypt(svc, &t, svc.config.keys.clone())
                .await
                .map_err(api_error)?;
            Ok(json!({ "TableName": t, "Reencrypt": p }))
        }
        KeysOp::RetireGeneration => {
            let t = table()?;
            let g = input.generation.ok_or_else(|| {
                ApiError::validation(
                    "1 validation error detected: Value null at 'generation' failed to satisfy constraint: Member must not be null",
                )
            })?;
            keyjob::retire_generation(svc, &t, g)
                .await
                .map_err(api_error)?;
            Ok(json!({ "TableName": t, "RetiredGeneration": g }))
        }
    }
}
