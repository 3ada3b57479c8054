//! UpdateTable's `GlobalSecondaryIndexUpdates`: online creation (with backfill) and deletion
//! of global secondary indexes. Called by `ops::update_table`.

use serde_json::Value;

use super::Services;
use crate::error::ApiError;

/// Validates and starts the requested GSI changes on `table`. `attribute_definitions` are the
/// request's AttributeDefinitions (raw JSON), `updates` its GlobalSecondaryIndexUpdates.
pub async fn apply_gsi_updates(
    svc: &Services,
    table: &str,
    attribute_definitions: &[Value],
    updates: &[Value],
) -> Result<(), ApiError> {
    let _ = (svc, table, attribute_definitions);
    if updates.is_empty() {
        return Ok(());
    }
    Err(ApiError::NotImplemented(
        "sealdb does not implement GlobalSecondaryIndexUpdates yet".into(),
    ))
}
