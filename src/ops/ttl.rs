//! Time to live: UpdateTimeToLive, DescribeTimeToLive, and the background sweeper that
//! deletes expired items.
//!
//! The sweeper deletes through the same single-item commit path as DeleteItem
//! (`commit::write_item`), so whatever that path maintains (the sort index, secondary index
//! entries) goes with the item. Each delete is conditional on the item still being expired
//! when it commits: a concurrent write that extends or removes the expiry wins. Until the
//! sweeper reaches an expired item, reads still return it, as DynamoDB's do.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use serde_json::{json, Value};

use super::commit::{open_item, write_item};
use super::keys::key_from_item;
use super::tags::table_name_or_arn;
use super::{blocking, Services};
use crate::catalog::prefix_end;
use crate::catalog::tables::TableEntry;
use crate::crypto::keyring::{Keyspace, TableKeys};
use crate::error::ApiError;
use crate::items::{self, BASE_INDEX};
use crate::protocol::attr::{AttributeValue, Item, Number};
use crate::protocol::input::{required, TableNameInput};
use crate::storage::Space;

/// Service model (TimeToLiveAttributeName): 1-255 characters.
const MAX_TTL_ATTRIBUTE_LEN: usize = 255;
/// DynamoDB ignores expiry times more than five years in the past (Developer Guide, "Using
/// DynamoDB Time to Live": "no more than five years in the past"); 1826 days = 5 years.
const MAX_EXPIRED_AGE_SECS: i64 = 1826 * 86_400;
/// Rows read per storage scan of the sweeper (one blocking-pool task each).
const SWEEP_PAGE: usize = 128;
/// Pages per table per sweep period: bounds the work one period does on a large table, so
/// the sweeper never monopolizes the store; the next period resumes where this one stopped.
const SWEEP_PAGES_PER_PERIOD: usize = 64;
/// Expired items deleted per table per period (each is a synced commit). Our choice: about
/// as many as a busy client's writes, leaving most of the write path to requests.
const SWEEP_DELETES_PER_PERIOD: usize = 1000;
/// The sweeper never runs more often than this, whatever the configuration says.
const MIN_SWEEP_INTERVAL_MS: u64 = 50;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct TimeToLiveSpecification {
    pub enabled: Option<bool>,
    pub attribute_name: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct UpdateTimeToLiveInput {
    pub table_name: Option<String>,
    pub time_to_live_specification: Option<TimeToLiveSpecification>,
}

fn table_not_found(name: &str) -> ApiError {
    ApiError::ResourceNotFound(format!(
        "Requested resource not found: Table: {name} not found"
    ))
}

pub async fn update_time_to_live(
    svc: &Services,
    input: UpdateTimeToLiveInput,
) -> Result<Value, ApiError> {
    let name = table_name_or_arn(svc, input.table_name)?;
    let spec = required(input.time_to_live_specification, "timeToLiveSpecification")?;
    let (enabled, attr) = match (spec.enabled, spec.attribute_name) {
        (Some(e), Some(a)) => (e, a),
        (e, a) => {
            let mut problems = Vec::new();
            if a.is_none() {
                problems.push("Value null at 'timeToLiveSpecification.attributeName' failed to satisfy constraint: Member must not be null");
            }
            if e.is_none() {
                problems.push("Value null at 'timeToLiveSpecification.enabled' failed to satisfy constraint: Member must not be null");
            }
            return Err(ApiError::validation(format!(
                "{} validation error{} detected: {}",
                problems.len(),
                if problems.len() == 1 { "" } else { "s" },
                problems.join("; ")
            )));
        }
    };
    let len = attr.chars().count();
    if !(1..=MAX_TTL_ATTRIBUTE_LEN).contains(&len) {
        return Err(ApiError::validation(format!(
            "1 validation error detected: Value '{attr}' at 'timeToLiveSpecification.attributeName' failed to satisfy constraint: Member must have length {}",
            if len == 0 { "greater than or equal to 1" } else { "less than or equal to 255" }
        )));
    }
    if svc.catalog.table(&name).is_none() {
        return Err(table_not_found(&name));
    }
    svc.catalog
        .update_table(&name, |def| {
            match (&def.ttl_attribute, enabled) {
                (Some(current), _) if *current != attr => Err(ApiError::validation(format!(
                    "TimeToLive is active on a different AttributeName: current AttributeName is {current}"
                ))),
                (Some(_), true) => Err(ApiError::validation("TimeToLive is already enabled")),
                (None, false) => Err(ApiError::validation("TimeToLive is already disabled")),
                (Some(_), false) => {
                    def.ttl_attribute = None;
                    Ok(())
                }
                (None, true) => {
                    def.ttl_attribute = Some(attr.clone());
                    Ok(())
                }
            }
        })
        .await?;
    Ok(json!({
        "TimeToLiveSpecification": { "Enabled": enabled, "AttributeName": attr }
    }))
}

pub async fn describe_time_to_live(
    svc: &Services,
    input: TableNameInput,
) -> Result<Value, ApiError> {
    let name = table_name_or_arn(svc, input.table_name)?;
    let entry = svc
        .catalog
        .table(&name)
        .ok_or_else(|| table_not_found(&name))?;
    Ok(json!({ "TimeToLiveDescription": describe(&entry.def.ttl_attribute) }))
}

fn describe(ttl_attribute: &Option<String>) -> Value {
    match ttl_attribute {
        Some(a) => json!({ "TimeToLiveStatus": "ENABLED", "AttributeName": a }),
        None => json!({ "TimeToLiveStatus": "DISABLED" }),
    }
}

/// Whether `item` is expired at `now` (epoch seconds) under TTL attribute `attr`: a Number
/// below now and no more than five years old. Anything else never expires.
pub fn expired(item: &Item, attr: &str, now: i64) -> bool {
    match item.get(attr) {
        Some(AttributeValue::N(n)) => {
            *n < Number::from(now) && *n >= Number::from(now.saturating_sub(MAX_EXPIRED_AGE_SECS))
        }
        _ => false,
    }
}

// ---- The sweeper -------------------------------------------------------------------------

/// Starts the background sweeper: every `[ttl] sweep_interval_ms`, each table with TTL
/// enabled is swept (resuming where the previous period stopped). Runs until the services
/// are dropped or the handle is aborted.
pub fn spawn_sweeper(svc: &Arc<Services>) -> tokio::task::JoinHandle<()> {
    let weak = Arc::downgrade(svc);
    let period = Duration::from_millis(svc.config.ttl.sweep_interval_ms.max(MIN_SWEEP_INTERVAL_MS));
    tokio::spawn(async move {
        let mut cursors: HashMap<Keyspace, Vec<u8>> = HashMap::new();
        loop {
            tokio::time::sleep(period).await;
            let Some(svc) = weak.upgrade() else { return };
            sweep_once(&svc, &mut cursors).await;
        }
    })
}

/// One sweep period over every TTL-enabled table; returns the number of items deleted.
/// `cursors` remembers, per keyspace, where an unfinished pass resumes.
pub async fn sweep_once(svc: &Arc<Services>, cursors: &mut HashMap<Keyspace, Vec<u8>>) -> usize {
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let tables = svc.catalog.tables();
    cursors.retain(|ks, _| {
        tables
            .iter()
            .any(|t| t.def.keyspace == *ks && t.def.ttl_attribute.is_some())
    });
    let mut total = 0usize;
    for entry in tables {
        let Some(attr) = entry.def.ttl_attribute.clone() else {
            continue;
        };
        let keyspace = entry.def.keyspace;
        let cursor = cursors.remove(&keyspace);
        match sweep_table(svc, entry.clone(), attr, cursor, now).await {
            Ok((deleted, next)) => {
                if let Some(next) = next {
                    cursors.insert(keyspace, next);
                }
                if deleted > 0 {
                    svc.audit
                        .record("ttl", json!({"table": entry.def.name, "deleted": deleted}));
                }
                total = total.saturating_add(deleted);
            }
            // A table whose key is unavailable (KMS down, key revoked) waits for a later period.
            Err(e) => tracing::warn!(table = %entry.def.name, error = %e, "ttl sweep skipped"),
        }
    }
    total
}

/// Sweeps one table for at most one period's budget: (items deleted, where to resume).
async fn sweep_table(
    svc: &Arc<Services>,
    entry: Arc<TableEntry>,
    attr: String,
    cursor: Option<Vec<u8>>,
    now: i64,
) -> Result<(usize, Option<Vec<u8>>), ApiError> {
    let keys = svc.table_keys(&entry).await?;
    let mut base = items::table_prefix(&entry.def.keyspace);
    base.push(BASE_INDEX);
    let end = prefix_end(&base);
    let mut from = cursor.unwrap_or(base);
    let mut deleted = 0usize;
    for _ in 0..SWEEP_PAGES_PER_PERIOD {
        let budget = SWEEP_DELETES_PER_PERIOD.saturating_sub(deleted);
        if budget == 0 {
            return Ok((deleted, Some(from)));
        }
        let (svc2, keys2, entry2, attr2, end2) = (
            svc.clone(),
            keys.clone(),
            entry.clone(),
            attr.clone(),
            end.clone(),
        );
        let (n, next) = blocking(move || {
            sweep_page(&svc2, &keys2, &entry2, &attr2, (&from, &end2), now, budget)
        })
        .await?;
        deleted = deleted.saturating_add(n);
        match next {
            Some(next) => from = next,
            None => return Ok((deleted, None)),
        }
        // Let request tasks run between pages.
        tokio::task::yield_now().await;
    }
    Ok((deleted, Some(from)))
}

/// One page of the base table from `range.0`: deletes the expired items (at most `budget`),
/// returns how many and the resume point (None at the end of the table).
fn sweep_page(
    svc: &Services,
    keys: &TableKeys,
    entry: &TableEntry,
    attr: &str,
    (from, end): (&[u8], &[u8]),
    now: i64,
    budget: usize,
) -> Result<(usize, Option<Vec<u8>>), ApiError> {
    let page = svc
        .store
        .scan(Space::Items, from, Some(end), false, SWEEP_PAGE)?;
    let mut deleted = 0usize;
    for (k, v) in &page.entries {
        if deleted >= budget {
            // Resume at this row next period.
            return Ok((deleted, Some(k.clone())));
        }
        // An item that does not open is audited by open_item and left for an operator.
        let Ok(item) = open_item(svc, keys, entry, k, v) else {
            continue;
        };
        if !expired(&item, attr, now) {
            continue;
        }
        let Ok(key) = key_from_item(&entry.def, &item) else {
            continue;
        };
        let outcome = write_item(svc, keys, entry, &key, |current| match current {
            Some(c) if expired(c, attr, now) => Ok(None),
            // Updated (expiry extended or removed) or deleted since we read it.
            _ => Err(ApiError::ConditionalCheckFailed { item: None }),
        });
        match outcome {
            Ok((Some(_), None)) => deleted += 1,
            Ok(_) | Err(ApiError::ConditionalCheckFailed { .. }) => {}
            // A hot item keeps losing the race: leave it for the next period.
            Err(ApiError::TransactionConflict(_)) => {}
            Err(e) => return Err(e),
        }
    }
    let next = match (page.more, page.entries.last()) {
        (true, Some((k, _))) => Some([k.as_slice(), &[0u8]].concat()),
        _ => None,
    };
    Ok((deleted, next))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn item_with(attr: &str, v: AttributeValue) -> Item {
        let mut i = Item::new();
        i.insert(attr.to_string(), v);
        i
    }

    fn n(s: &str) -> AttributeValue {
        AttributeValue::N(s.parse().unwrap())
    }

    #[test]
    fn only_past_numbers_within_five_years_expire() {
        let now = 1_700_000_000;
        assert!(expired(&item_with("exp", n("1699999999")), "exp", now));
        assert!(expired(&item_with("exp", n("1699999999.5")), "exp", now));
        assert!(!expired(&item_with("exp", n("1700000000")), "exp", now));
        assert!(!expired(&item_with("exp", n("1700000001")), "exp", now));
        assert!(!expired(
            &item_with("exp", AttributeValue::S("1".into())),
            "exp",
            now
        ));
        assert!(!expired(&item_with("other", n("1")), "exp", now));
        // Older than five years: DynamoDB never expires it.
        assert!(!expired(&item_with("exp", n("1")), "exp", now));
        let edge = (now - MAX_EXPIRED_AGE_SECS).to_string();
        assert!(expired(&item_with("exp", n(&edge)), "exp", now));
    }

    proptest! {
        #[test]
        fn expiry_is_a_window_below_now(t in -10_000_000_000i64..10_000_000_000, now in 0i64..5_000_000_000) {
            let item = item_with("e", AttributeValue::N(Number::from(t)));
            prop_assert_eq!(expired(&item, "e", now), t < now && t >= now - MAX_EXPIRED_AGE_SECS);
        }
    }
}
