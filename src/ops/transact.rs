//! TransactWriteItems and TransactGetItems.
//!
//! A write transaction reads every member's item from one snapshot (`Store::multi_get`),
//! evaluates every condition on the plaintext, and commits all members' item checks and
//! writes, plus the sort-index plans of every partition they touch, in ONE `Store::commit`:
//! all or nothing, and isolated, because the commit only lands if none of the items or pages
//! read changed. A lost race re-reads and re-decides everything.
//!
//! ClientRequestToken idempotency lives in memory (per data directory, for 10 minutes, as
//! DynamoDB's): a retry after a server restart is executed again. That is the documented
//! limitation of this implementation; conditions in the transaction still guard it.

use std::collections::{HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use serde_json::{json, Map, Value};

use super::capacity::{self, PerTable};
use super::commit::{self, open_item, Effect, Staged, MAX_WRITE_ATTEMPTS};
use super::items::{on_failure_old, to_json};
use super::keys::{key_from_item, key_from_map};
use super::update::{apply_update, protect_key};
use super::{blocking, Services};
use crate::catalog::tables::TableEntry;
use crate::crypto::keyring::TableKeys;
use crate::error::{ApiError, CancellationReason};
use crate::expr::{self, Condition, ExprContext, Projection, Update, Usage};
use crate::indexes::collection;
use crate::items::{self, ItemKey, BASE_INDEX};
use crate::protocol::attr::{item_size, Item, MAX_ITEM_SIZE};
use crate::protocol::input::{
    required, table_name, TransactAction, TransactGetItemsInput, TransactWriteItemsInput,
};
use crate::storage::Space;

/// DynamoDB: a transaction holds at most 100 actions.
pub const MAX_TRANSACT_ITEMS: usize = 100;
/// DynamoDB: "A client token is valid for 10 minutes after the first request that uses it".
pub const IDEMPOTENCY_WINDOW: Duration = Duration::from_secs(600);
/// DynamoDB: ClientRequestToken is 1 to 36 characters.
pub const MAX_CLIENT_TOKEN_LEN: usize = 36;

enum Kind {
    Check,
    Put(Item),
    Delete,
    Update(Update),
}

struct Member {
    table: String,
    entry: Arc<TableEntry>,
    key: ItemKey,
    kind: Kind,
    cond: Option<Condition>,
    on_fail_old: bool,
}

fn parse_member(svc: &Services, kind: &str, a: TransactAction) -> Result<Member, ApiError> {
    let table = table_name(a.table_name)?;
    let entry = svc.table(&table)?;
    let names = a.expression_attribute_names.as_ref();
    let values = a.expression_attribute_values.as_ref();
    let ctx = ExprContext { names, values };
    let mut usage = Usage::default();
    let cond = match &a.condition_expression {
        Some(src) => Some(expr::parse_condition(src, &ctx, &mut usage)?),
        None => None,
    };
    let (key, kind) = match kind {
        "Put" => {
            let item = required(a.item, "item")?;
            if item_size(&item) > MAX_ITEM_SIZE {
                return Err(ApiError::validation(
                    "Item size has exceeded the maximum allowed size",
                ));
            }
            (key_from_item(&entry.def, &item)?, Kind::Put(item))
        }
        other => {
            let key = key_from_map(&entry.def, &required(a.key, "key")?)?;
            let kind = match other {
                "ConditionCheck" => {
                    if cond.is_none() {
                        return Err(ApiError::validation(
                            "1 validation error detected: Value null at 'transactItems.1.member.conditionCheck.conditionExpression' failed to satisfy constraint: Member must not be null",
                        ));
                    }
                    Kind::Check
                }
                "Delete" => Kind::Delete,
                _ => {
                    let src = required(a.update_expression, "updateExpression")?;
                    let u = expr::parse_update(&src, &ctx, &mut usage)?;
                    protect_key(&entry.def, &u)?;
                    Kind::Update(u)
                }
            };
            (key, kind)
        }
    };
    usage.check_all_used(&ctx)?;
    if cond.is_none() && (names.is_some() || values.is_some()) && !matches!(kind, Kind::Update(_)) {
        return Err(ApiError::validation(if names.is_some() {
            "ExpressionAttributeNames can only be specified when using expressions"
        } else {
            "ExpressionAttributeValues can only be specified when using expressions"
        }));
    }
    Ok(Member {
        table,
        entry,
        key,
        kind,
        cond,
        on_fail_old: on_failure_old(&a.return_values_on_condition_check_failure)?,
    })
}

type TokenKey = (PathBuf, String);

/// Tokens seen in the last [`IDEMPOTENCY_WINDOW`]: request digest and response per token, and
/// the tokens in arrival order so that expiry is amortized O(1) per transaction.
#[derive(Default)]
struct Tokens {
    seen: HashMap<TokenKey, ([u8; 32], Instant, Value)>,
    order: VecDeque<(Instant, TokenKey)>,
}

impl Tokens {
    fn expire(&mut self) {
        while let Some((at, _)) = self.order.front() {
            if at.elapsed() < IDEMPOTENCY_WINDOW {
                break;
            }
            if let Some((_, key)) = self.order.pop_front() {
                if self
                    .seen
                    .get(&key)
                    .is_some_and(|(_, t, _)| t.elapsed() >= IDEMPOTENCY_WINDOW)
                {
                    self.seen.remove(&key);
                }
            }
        }
    }
}

fn tokens() -> &'static Mutex<Tokens> {
    static TOKENS: OnceLock<Mutex<Tokens>> = OnceLock::new();
    TOKENS.get_or_init(|| Mutex::new(Tokens::default()))
}

fn digest(body: &[u8]) -> [u8; 32] {
    let d = ring::digest::digest(&ring::digest::SHA256, body);
    let mut out = [0u8; 32];
    out.copy_from_slice(d.as_ref());
    out
}

pub async fn transact_write_items(
    svc: &Arc<Services>,
    input: TransactWriteItemsInput,
    body: &[u8],
) -> Result<Value, ApiError> {
    let list = required(input.transact_items, "transactItems")?;
    let cap = capacity::mode(&input.return_consumed_capacity)?;
    let want_metrics = collection::wants_metrics(input.return_item_collection_metrics.as_deref())?;
    if list.is_empty() || list.len() > MAX_TRANSACT_ITEMS {
        return Err(ApiError::validation(format!(
            "1 validation error detected: Value at 'transactItems' failed to satisfy constraint: Member must have length {} {}",
            if list.is_empty() { "greater than or equal to" } else { "less than or equal to" },
            if list.is_empty() { 1 } else { MAX_TRANSACT_ITEMS }
        )));
    }
    let token = match input.client_request_token {
        Some(t) if t.is_empty() || t.len() > MAX_CLIENT_TOKEN_LEN => {
            return Err(ApiError::validation(format!(
                "1 validation error detected: Value '{t}' at 'clientRequestToken' failed to satisfy constraint: Member must have length less than or equal to {MAX_CLIENT_TOKEN_LEN}"
            )))
        }
        Some(t) => Some((svc.config.data_dir.clone(), t)),
        None => None,
    };
    let hash = digest(body);
    if let Some(t) = &token {
        let mut map = tokens()
            .lock()
            .map_err(|_| ApiError::Internal("token map".into()))?;
        map.expire();
        if let Some((h, at, out)) = map.seen.get(t) {
            if at.elapsed() < IDEMPOTENCY_WINDOW {
                if *h == hash {
                    return Ok(out.clone());
                }
                return Err(ApiError::IdempotentParameterMismatch(
                    "The request uses the same client token as a previous, but non-identical request."
                        .into(),
                ));
            }
        }
    }
    let mut members = Vec::with_capacity(list.len());
    for m in list {
        let actions = [
            ("ConditionCheck", m.condition_check),
            ("Put", m.put),
            ("Delete", m.delete),
            ("Update", m.update),
        ];
        let mut chosen = actions.into_iter().filter_map(|(k, a)| a.map(|a| (k, a)));
        let (kind, action) = match (chosen.next(), chosen.next()) {
            (Some(one), None) => one,
            _ => {
                return Err(ApiError::validation(
                    "TransactItems can only contain one of Check, Put, Update or Delete",
                ))
            }
        };
        members.push(parse_member(svc, kind, action)?);
    }
    for (i, a) in members.iter().enumerate() {
        if members[..i]
            .iter()
            .any(|b| b.entry.def.keyspace == a.entry.def.keyspace && b.key == a.key)
        {
            return Err(ApiError::validation(
                "Transaction request cannot include multiple operations on one item",
            ));
        }
    }
    let mut table_keys: HashMap<String, Arc<TableKeys>> = HashMap::new();
    for m in &members {
        if !table_keys.contains_key(&m.table) {
            table_keys.insert(m.table.clone(), svc.table_keys(&m.entry).await?);
        }
    }
    let svc2 = svc.clone();
    let (units, metrics) = blocking(move || {
        let units = run_write(&svc2, &members, &table_keys)?;
        let metrics = if want_metrics {
            write_metrics(&svc2, &members, &table_keys)?
        } else {
            Map::new()
        };
        Ok((units, metrics))
    })
    .await?;
    let mut out = json!({});
    if let Some(c) = units.list(cap) {
        out["ConsumedCapacity"] = c;
    }
    if !metrics.is_empty() {
        out["ItemCollectionMetrics"] = Value::Object(metrics);
    }
    if let Some(t) = token {
        let mut map = tokens()
            .lock()
            .map_err(|_| ApiError::Internal("token map".into()))?;
        map.expire();
        let now = Instant::now();
        map.order.push_back((now, t.clone()));
        map.seen.insert(t, (hash, now, out.clone()));
    }
    Ok(out)
}

/// ItemCollectionMetrics of a committed transaction: the collections its Put, Update and
/// Delete members wrote (ConditionCheck members write nothing), per table.
fn write_metrics(
    svc: &Services,
    members: &[Member],
    table_keys: &HashMap<String, Arc<TableKeys>>,
) -> Result<Map<String, Value>, ApiError> {
    let mut out = Map::new();
    let mut tables: Vec<&str> = members.iter().map(|m| m.table.as_str()).collect();
    tables.sort_unstable();
    tables.dedup();
    for table in tables {
        let written: Vec<&Member> = members
            .iter()
            .filter(|m| m.table == table && !matches!(m.kind, Kind::Check))
            .collect();
        let (Some(first), Some(keys)) = (written.first(), table_keys.get(table)) else {
            continue;
        };
        let pks: Vec<_> = written.iter().map(|m| &m.key.pk).collect();
        collection::add_table_metrics(&mut out, svc.store.as_ref(), keys, &first.entry.def, &pks)?;
    }
    Ok(out)
}

fn run_write(
    svc: &Services,
    members: &[Member],
    table_keys: &HashMap<String, Arc<TableKeys>>,
) -> Result<PerTable, ApiError> {
    let keys_of = |m: &Member| {
        table_keys
            .get(&m.table)
            .cloned()
            .ok_or_else(|| ApiError::Internal("missing table keys".into()))
    };
    let mut sks = Vec::with_capacity(members.len());
    for m in members {
        sks.push(items::storage_key(&*keys_of(m)?, BASE_INDEX, &m.key)?);
    }
    for _ in 0..MAX_WRITE_ATTEMPTS {
        let lookups: Vec<(Space, &[u8])> =
            sks.iter().map(|k| (Space::Items, k.as_slice())).collect();
        let sealed = svc.store.multi_get(&lookups)?;
        let mut olds = Vec::with_capacity(members.len());
        for ((m, sk), s) in members.iter().zip(&sks).zip(&sealed) {
            olds.push(match s {
                Some(b) => Some(open_item(svc, &*keys_of(m)?, &m.entry, sk, b)?),
                None => None,
            });
        }
        let mut reasons = Vec::with_capacity(members.len());
        let mut news: Vec<Option<Item>> = Vec::with_capacity(members.len());
        let mut failed = false;
        for (m, old) in members.iter().zip(&olds) {
            let ok = match &m.cond {
                Some(c) => c.evaluate(old.as_ref())?,
                None => true,
            };
            if !ok {
                failed = true;
                reasons.push(CancellationReason {
                    code: "ConditionalCheckFailed",
                    message: Some("The conditional request failed".into()),
                    item: if m.on_fail_old { old.clone() } else { None },
                });
                news.push(None);
                continue;
            }
            let new = match &m.kind {
                Kind::Check | Kind::Delete => Ok(None),
                Kind::Put(item) => Ok(Some(item.clone())),
                Kind::Update(u) => {
                    apply_update(&m.entry.def, &m.key, Some(u), old.as_ref()).map(|(i, _)| Some(i))
                }
            };
            match new {
                Ok(n) => {
                    reasons.push(CancellationReason {
                        code: "None",
                        message: None,
                        item: None,
                    });
                    news.push(n);
                }
                Err(e) => {
                    failed = true;
                    reasons.push(CancellationReason {
                        code: "ValidationError",
                        message: Some(e.to_string()),
                        item: None,
                    });
                    news.push(None);
                }
            }
        }
        if failed {
            return Err(ApiError::TransactionCanceled { reasons });
        }
        let mut all_keys = Vec::with_capacity(members.len());
        for m in members {
            all_keys.push(keys_of(m)?);
        }
        let staged: Vec<Staged<'_>> = members
            .iter()
            .zip(&sks)
            .zip(&sealed)
            .zip(&news)
            .zip(&all_keys)
            .map(|((((m, sk), s), new), k)| Staged {
                entry: &m.entry,
                keys: k,
                key: m.key.clone(),
                sk: sk.clone(),
                read: s.clone(),
                effect: match (&m.kind, new) {
                    (Kind::Check, _) => Effect::Check,
                    (_, Some(item)) => Effect::Put(item),
                    (_, None) => Effect::Delete,
                },
            })
            .collect();
        if commit::commit(svc, &staged)? {
            let mut units = PerTable::default();
            for ((m, old), new) in members.iter().zip(&olds).zip(&news) {
                if !matches!(m.kind, Kind::Check) {
                    commit::account(&m.entry, old.as_ref(), new.as_ref());
                }
                // Transactions cost double: prepare and commit.
                let w = capacity::write_units(
                    old.as_ref().map(item_size).unwrap_or(0),
                    new.as_ref().map(item_size).unwrap_or(0),
                );
                units.write(&m.table, 2.0 * w);
            }
            return Ok(units);
        }
    }
    Err(ApiError::TransactionCanceled {
        reasons: members
            .iter()
            .map(|_| CancellationReason {
                code: "TransactionConflict",
                message: Some("Transaction is ongoing for the item".into()),
                item: None,
            })
            .collect(),
    })
}

struct GetMember {
    table: String,
    entry: Arc<TableEntry>,
    key: ItemKey,
    projection: Option<Projection>,
}

pub async fn transact_get_items(
    svc: &Arc<Services>,
    input: TransactGetItemsInput,
) -> Result<Value, ApiError> {
    let list = required(input.transact_items, "transactItems")?;
    let cap = capacity::mode(&input.return_consumed_capacity)?;
    if list.is_empty() || list.len() > MAX_TRANSACT_ITEMS {
        return Err(ApiError::validation(format!(
            "1 validation error detected: Value at 'transactItems' failed to satisfy constraint: Member must have length {} {}",
            if list.is_empty() { "greater than or equal to" } else { "less than or equal to" },
            if list.is_empty() { 1 } else { MAX_TRANSACT_ITEMS }
        )));
    }
    let mut members = Vec::with_capacity(list.len());
    for m in list {
        let g = required(m.get, "get")?;
        let table = table_name(g.table_name)?;
        let entry = svc.table(&table)?;
        let key = key_from_map(&entry.def, &required(g.key, "key")?)?;
        let ctx = ExprContext {
            names: g.expression_attribute_names.as_ref(),
            values: None,
        };
        let mut usage = Usage::default();
        let projection = match &g.projection_expression {
            Some(src) => Some(expr::parse_projection(src, &ctx, &mut usage)?),
            None => None,
        };
        usage.check_all_used(&ctx)?;
        members.push(GetMember {
            table,
            entry,
            key,
            projection,
        });
    }
    let mut table_keys: HashMap<String, Arc<TableKeys>> = HashMap::new();
    for m in &members {
        if !table_keys.contains_key(&m.table) {
            table_keys.insert(m.table.clone(), svc.table_keys(&m.entry).await?);
        }
    }
    let svc2 = svc.clone();
    let (found, units) = blocking(move || {
        let mut sks = Vec::with_capacity(members.len());
        let mut ks = Vec::with_capacity(members.len());
        for m in &members {
            let k = table_keys
                .get(&m.table)
                .cloned()
                .ok_or_else(|| ApiError::Internal("missing table keys".into()))?;
            sks.push(items::storage_key(&k, BASE_INDEX, &m.key)?);
            ks.push(k);
        }
        let lookups: Vec<(Space, &[u8])> =
            sks.iter().map(|k| (Space::Items, k.as_slice())).collect();
        // One snapshot for every member: the reads are mutually consistent.
        let sealed = svc2.store.multi_get(&lookups)?;
        let mut out = Vec::with_capacity(members.len());
        let mut units = PerTable::default();
        for (((m, sk), k), s) in members.iter().zip(&sks).zip(&ks).zip(sealed) {
            let item = match s {
                Some(b) => Some(open_item(&svc2, k, &m.entry, sk, &b)?),
                None => None,
            };
            let size = item.as_ref().map(item_size).unwrap_or(0);
            units.read(&m.table, 2.0 * capacity::read_units(size, true));
            out.push(item.map(|i| match &m.projection {
                Some(p) => p.apply(&i),
                None => i,
            }));
        }
        Ok((out, units))
    })
    .await?;
    let mut responses = Vec::with_capacity(found.len());
    for item in found {
        responses.push(match item {
            Some(i) => json!({"Item": to_json(&i)?}),
            None => json!({}),
        });
    }
    let mut out = json!({"Responses": responses});
    if let Some(c) = units.list(cap) {
        out["ConsumedCapacity"] = c;
    }
    Ok(out)
}
