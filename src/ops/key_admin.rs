//! Key lifecycle operations on a table: switching its KMS key (UpdateTable SSESpecification),
//! data-key rotation, re-encryption and retiring generations.

use serde_json::Value;

use super::Services;
use crate::error::ApiError;

/// UpdateTable's `SSESpecification` (raw JSON): switches `table` to another KMS key online.
pub async fn switch_table_kms_key(
    svc: &Services,
    table: &str,
    sse_specification: &Value,
) -> Result<(), ApiError> {
    let _ = (svc, table, sse_specification);
    Err(ApiError::NotImplemented(
        "sealdb does not implement changing SSESpecification yet".into(),
    ))
}
