//! Query and Scan over sealed data.
//!
//! Query walks the partition's sealed sort index (storage/sort_index) for the order, then reads
//! the items it points at from one snapshot per chunk: O(log n + k) page and item reads, each
//! decrypted once. Tables without a sort key have no index: the partition is one item.
//! Scan walks the items space in storage order (token order): a parallel scan's segments are
//! contiguous slices of the partition-token space, so they are disjoint and together complete,
//! and LastEvaluatedKey is an item's primary key whose storage key says where to resume.

use std::sync::Arc;

use serde_json::{json, Value};

use super::capacity::{self, Units};
use super::commit::{index_error, open_item};
use super::items::{check_mix, projection, to_json};
use super::keys::key_from_map;
use super::{blocking, Services};
use crate::catalog::tables::{ScalarType, TableDef, TableEntry};
use crate::crypto::keyring::TableKeys;
use crate::error::ApiError;
use crate::expr::{self, Condition, ExprContext, KeyCondition, Projection, SortCondition, Usage};
use crate::items::{self, IndexPages, ItemKey, BASE_INDEX};
use crate::protocol::attr::{item_size, AttributeValue, Item};
use crate::protocol::input::{table_name, QueryInput, ScanInput};
use crate::storage::sort_index::{self, Bound, PartitionRef, Position, RangeQuery};
use crate::storage::Space;

/// DynamoDB: "A single Query (or Scan) operation can retrieve a maximum of 1 MB of data".
pub const MAX_PAGE_BYTES: usize = 1024 * 1024;
/// Index entries (or storage rows) fetched per round trip. Our choice: big enough that one
/// multi_get amortizes its snapshot, small enough that a Limit-10 Query reads little beyond.
const CHUNK: usize = 100;
/// DynamoDB: TotalSegments is at most 1,000,000.
pub const MAX_TOTAL_SEGMENTS: i64 = 1_000_000;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Select {
    All,
    Specific,
    Count,
}

/// Select against the projection parameters, with DynamoDB's messages.
pub(crate) fn select(
    select: Option<&str>,
    projection_expr: bool,
    attributes_to_get: bool,
) -> Result<Select, ApiError> {
    let which = if projection_expr {
        "ProjectionExpression"
    } else {
        "AttributesToGet"
    };
    let projected = projection_expr || attributes_to_get;
    match select {
        None if projected => Ok(Select::Specific),
        None => Ok(Select::All),
        Some("ALL_ATTRIBUTES") if projected => Err(ApiError::validation(format!(
            "Cannot specify the {which} when choosing to get ALL_ATTRIBUTES"
        ))),
        Some("ALL_ATTRIBUTES") => Ok(Select::All),
        Some("COUNT") if projected => Err(ApiError::validation(format!(
            "Cannot specify the {which} when choosing to get COUNT"
        ))),
        Some("COUNT") => Ok(Select::Count),
        Some("SPECIFIC_ATTRIBUTES") if projected => Ok(Select::Specific),
        Some("SPECIFIC_ATTRIBUTES") => Err(ApiError::validation(
            "Must specify the AttributesToGet or ProjectionExpression when choosing to get SPECIFIC_ATTRIBUTES",
        )),
        Some("ALL_PROJECTED_ATTRIBUTES") => Err(ApiError::validation(
            "ALL_PROJECTED_ATTRIBUTES can be used only when Querying using an IndexName",
        )),
        Some(other) => Err(ApiError::validation(format!(
            "1 validation error detected: Value '{other}' at 'select' failed to satisfy constraint: Member must satisfy enum value set: [SPECIFIC_ATTRIBUTES, COUNT, ALL_ATTRIBUTES, ALL_PROJECTED_ATTRIBUTES]"
        ))),
    }
}

fn limit(v: Option<i64>) -> Result<usize, ApiError> {
    match v {
        None => Ok(usize::MAX),
        Some(n) if n < 1 => Err(ApiError::validation(format!(
            "1 validation error detected: Value '{n}' at 'limit' failed to satisfy constraint: Member must have value greater than or equal to 1"
        ))),
        Some(n) => Ok(usize::try_from(n).unwrap_or(usize::MAX)),
    }
}

fn no_index(index: &Option<String>) -> Result<(), ApiError> {
    match index {
        // Secondary indexes come with issue 6.
        Some(i) => Err(ApiError::validation(format!(
            "The table does not have the specified index: {i}"
        ))),
        None => Ok(()),
    }
}

/// Where a read stops and what it returns.
struct Collector {
    select: Select,
    projection: Option<Projection>,
    filter: Option<Condition>,
    limit: usize,
    items: Vec<Item>,
    count: usize,
    scanned: usize,
    bytes: usize,
    last: Option<Item>,
}

impl Collector {
    fn new(
        select: Select,
        projection: Option<Projection>,
        filter: Option<Condition>,
        limit: usize,
    ) -> Collector {
        Collector {
            select,
            projection,
            filter,
            limit,
            items: Vec::new(),
            count: 0,
            scanned: 0,
            bytes: 0,
            last: None,
        }
    }

    /// Takes one evaluated item; true when the page is full (Limit or 1 MB).
    fn offer(&mut self, def: &TableDef, item: Item) -> Result<bool, ApiError> {
        self.scanned = self.scanned.saturating_add(1);
        self.bytes = self.bytes.saturating_add(item_size(&item));
        let full = self.scanned >= self.limit || self.bytes >= MAX_PAGE_BYTES;
        if full {
            self.last = Some(primary_key(def, &item));
        }
        let keep = match &self.filter {
            Some(f) => f.evaluate(Some(&item))?,
            None => true,
        };
        if keep {
            self.count = self.count.saturating_add(1);
            if self.select != Select::Count {
                self.items.push(match &self.projection {
                    Some(p) => p.apply(&item),
                    None => item,
                });
            }
        }
        Ok(full)
    }

    fn remaining(&self) -> usize {
        self.limit.saturating_sub(self.scanned)
    }

    fn response(
        self,
        table: &str,
        cap: capacity::Mode,
        consistent: bool,
    ) -> Result<Value, ApiError> {
        let mut out = json!({"Count": self.count, "ScannedCount": self.scanned});
        if self.select != Select::Count {
            let items: Result<Vec<Value>, ApiError> = self.items.iter().map(to_json).collect();
            out["Items"] = Value::Array(items?);
        }
        if let Some(k) = &self.last {
            out["LastEvaluatedKey"] = to_json(k)?;
        }
        let read = capacity::read_units(self.bytes, consistent);
        if let Some(c) = capacity::one(table, cap, Units { read, write: 0.0 }) {
            out["ConsumedCapacity"] = c;
        }
        Ok(out)
    }
}

/// The primary key attributes of an item (LastEvaluatedKey).
fn primary_key(def: &TableDef, item: &Item) -> Item {
    let mut k = Item::new();
    for attr in std::iter::once(&def.key_schema.hash).chain(def.key_schema.range.iter()) {
        if let Some(v) = item.get(&attr.name) {
            k.insert(attr.name.clone(), v.clone());
        }
    }
    k
}

fn starting_key(def: &TableDef, esk: &Item) -> Result<ItemKey, ApiError> {
    key_from_map(def, esk).map_err(|e| match e {
        ApiError::Validation(m) => {
            ApiError::Validation(format!("The provided starting key is invalid: {m}"))
        }
        other => other,
    })
}

/// Key condition values against the schema's types.
fn check_key_types(def: &TableDef, kc: &KeyCondition) -> Result<(), ApiError> {
    let mismatch = || {
        ApiError::validation(
            "One or more parameter values were invalid: Condition parameter type does not match schema type",
        )
    };
    if !def.key_schema.hash.ty.matches(&kc.partition.1) {
        return Err(mismatch());
    }
    if let (Some((_, sc)), Some(r)) = (&kc.sort, &def.key_schema.range) {
        if let (SortCondition::BeginsWith(_), ScalarType::N) = (sc, r.ty) {
            return Err(ApiError::validation(
                "Invalid KeyConditionExpression: Incorrect operand type for operator or function; operator or function: begins_with, operand type: N",
            ));
        }
        if sc.values().iter().any(|v| !r.ty.matches(v)) {
            return Err(mismatch());
        }
        if let SortCondition::Between(lo, hi) = sc {
            if expr::compare_values(lo, hi) == Some(std::cmp::Ordering::Greater) {
                return Err(ApiError::validation(
                    "Invalid KeyConditionExpression: The BETWEEN operator requires upper bound to be greater than or equal to lower bound",
                ));
            }
        }
    }
    Ok(())
}

/// The key condition of a Query from KeyConditionExpression or legacy KeyConditions.
pub(crate) fn key_condition(
    def: &TableDef,
    ctx: &ExprContext,
    usage: &mut Usage,
    expression: Option<&str>,
    legacy: Option<&crate::protocol::input::LegacyFilter>,
) -> Result<KeyCondition, ApiError> {
    let hash = def.key_schema.hash.name.as_str();
    let range = def.key_schema.range.as_ref().map(|r| r.name.as_str());
    match (expression, legacy) {
        (Some(src), _) => Ok(expr::parse_key_condition(src, ctx, usage, hash, range)?),
        (None, Some(kc)) => Ok(expr::key_conditions_to_key_condition(kc, hash, range)?),
        (None, None) => Err(ApiError::validation(
            "Either the KeyConditions or KeyConditionExpression parameter must be specified in the request.",
        )),
    }
}

pub async fn query(svc: &Arc<Services>, input: QueryInput) -> Result<Value, ApiError> {
    let name = table_name(input.table_name)?;
    no_index(&input.index_name)?;
    let cap = capacity::mode(&input.return_consumed_capacity)?;
    let limit = limit(input.limit)?;
    let entry = svc.table(&name)?;
    let def = &entry.def;
    let names = input.expression_attribute_names.as_ref();
    let values = input.expression_attribute_values.as_ref();
    check_mix(
        &[
            ("AttributesToGet", input.attributes_to_get.is_some()),
            ("QueryFilter", input.query_filter.is_some()),
            ("KeyConditions", input.key_conditions.is_some()),
        ],
        &[
            (
                "ProjectionExpression",
                input.projection_expression.is_some(),
            ),
            ("FilterExpression", input.filter_expression.is_some()),
            (
                "KeyConditionExpression",
                input.key_condition_expression.is_some(),
            ),
        ],
        names,
        values,
    )?;
    let sel = select(
        input.select.as_deref(),
        input.projection_expression.is_some(),
        input.attributes_to_get.is_some(),
    )?;
    let ctx = ExprContext { names, values };
    let mut usage = Usage::default();
    let kc = key_condition(
        def,
        &ctx,
        &mut usage,
        input.key_condition_expression.as_deref(),
        input.key_conditions.as_ref(),
    )?;
    let (filter, filter_param) = match (&input.filter_expression, &input.query_filter) {
        (Some(src), _) => (
            Some(expr::parse_filter(src, &ctx, &mut usage)?),
            "Filter Expression",
        ),
        (None, Some(f)) => (
            expr::filter_to_condition(f, input.conditional_operator)?,
            "QueryFilter",
        ),
        (None, None) => (None, ""),
    };
    let proj = projection(
        &ctx,
        &mut usage,
        input.projection_expression.as_deref(),
        input.attributes_to_get.as_ref(),
    )?;
    usage.check_all_used(&ctx)?;
    check_key_types(def, &kc)?;
    if let Some(f) = &filter {
        let key_names = [
            Some(def.key_schema.hash.name.as_str()),
            def.key_schema.range.as_ref().map(|r| r.name.as_str()),
        ];
        for a in f.top_level_attributes() {
            if key_names.contains(&Some(a.as_str())) {
                return Err(ApiError::validation(format!(
                    "{filter_param} can only contain non-primary key attributes: Primary key attribute: {a}"
                )));
            }
        }
    }
    let start = match &input.exclusive_start_key {
        Some(esk) => {
            let k = starting_key(def, esk)?;
            if k.pk != kc.partition.1 {
                return Err(ApiError::validation(
                    "The provided starting key is invalid: The provided key element does not match the query's partition key",
                ));
            }
            Some(k)
        }
        None => None,
    };
    let consistent = input.consistent_read.unwrap_or(false);
    let collector = Collector::new(sel, proj, filter, limit);
    let forward = input.scan_index_forward.unwrap_or(true);
    let keys = svc.table_keys(&entry).await?;
    let svc2 = svc.clone();
    let e2 = entry.clone();
    let collector = blocking(move || {
        let mut c = collector;
        run_query(&svc2, &keys, &e2, &kc, start.as_ref(), !forward, &mut c)?;
        Ok(c)
    })
    .await?;
    collector.response(&name, cap, consistent)
}

fn bounds(
    sc: Option<&SortCondition>,
) -> Result<(Bound<'_>, Bound<'_>, Option<sort_index::PrefixRange>), ApiError> {
    Ok(match sc {
        None => (Bound::Unbounded, Bound::Unbounded, None),
        Some(SortCondition::Eq(v)) => (Bound::Included(v), Bound::Included(v), None),
        Some(SortCondition::Lt(v)) => (Bound::Unbounded, Bound::Excluded(v), None),
        Some(SortCondition::Le(v)) => (Bound::Unbounded, Bound::Included(v), None),
        Some(SortCondition::Gt(v)) => (Bound::Excluded(v), Bound::Unbounded, None),
        Some(SortCondition::Ge(v)) => (Bound::Included(v), Bound::Unbounded, None),
        Some(SortCondition::Between(a, b)) => (Bound::Included(a), Bound::Included(b), None),
        Some(SortCondition::BeginsWith(v)) => (
            Bound::Unbounded,
            Bound::Unbounded,
            Some(sort_index::prefix_range(v).map_err(index_error)?),
        ),
    })
}

fn run_query(
    svc: &Services,
    keys: &TableKeys,
    entry: &TableEntry,
    kc: &KeyCondition,
    start: Option<&ItemKey>,
    reverse: bool,
    c: &mut Collector,
) -> Result<(), ApiError> {
    let def = &entry.def;
    if def.key_schema.range.is_none() {
        // The partition is one item; after it (ExclusiveStartKey) there is nothing.
        if start.is_some() {
            return Ok(());
        }
        let key = ItemKey {
            pk: kc.partition.1.clone(),
            sk: None,
        };
        let sk = items::storage_key(keys, BASE_INDEX, &key)?;
        if let Some(bytes) = svc.store.get(Space::Items, &sk)? {
            c.offer(def, open_item(svc, keys, entry, &sk, &bytes)?)?;
        }
        return Ok(());
    }
    let prefix = items::partition_prefix(keys, BASE_INDEX, &kc.partition.1)?;
    let part = PartitionRef { prefix: &prefix };
    let crypto = IndexPages {
        keys,
        index: BASE_INDEX,
    };
    let sc = kc.sort.as_ref().map(|(_, s)| s);
    let (mut lower, mut upper, pr) = bounds(sc)?;
    if let Some(pr) = &pr {
        lower = pr.lower();
        upper = pr.upper();
    }
    let mut cursor: Option<(AttributeValue, [u8; 16])> = match start {
        Some(k) => {
            let sk = items::storage_key(keys, BASE_INDEX, k)?;
            let token = items::item_token_of(&sk)
                .ok_or_else(|| ApiError::Internal("malformed storage key".into()))?;
            k.sk.clone().map(|v| (v, token))
        }
        None => None,
    };
    loop {
        let want = c.remaining().min(CHUNK);
        if want == 0 {
            return Ok(());
        }
        let entries = sort_index::range(
            svc.store.as_ref(),
            &crypto,
            &part,
            &RangeQuery {
                lower,
                upper,
                reverse,
                start_after: cursor.as_ref().map(|(v, t)| Position {
                    sort_key: v,
                    item_token: t,
                }),
                limit: want,
            },
        )
        .map_err(index_error)?;
        let item_keys: Vec<Vec<u8>> = entries
            .iter()
            .map(|e| [prefix.as_slice(), &e.item_token].concat())
            .collect();
        let lookups: Vec<(Space, &[u8])> = item_keys
            .iter()
            .map(|k| (Space::Items, k.as_slice()))
            .collect();
        let values = svc.store.multi_get(&lookups)?;
        for ((e, k), v) in entries.iter().zip(&item_keys).zip(values) {
            cursor = Some((e.sort_key.clone(), e.item_token));
            // An entry whose item is gone was deleted between the two reads: skip it.
            let Some(bytes) = v else { continue };
            let item = open_item(svc, keys, entry, k, &bytes)?;
            if c.offer(def, item)? {
                return Ok(());
            }
        }
        if entries.len() < want {
            return Ok(());
        }
    }
}

/// Where segment `i` of `total` starts in a table's items space (`keyspace | index | T(pk)`):
/// the partition-token space cut into `total` equal slices on its first 8 bytes.
fn segment_bound(table: &[u8], i: u64, total: u64) -> Vec<u8> {
    let mut k = table.to_vec();
    if i == 0 {
        return k;
    }
    if i >= total {
        // Past every key of this index: the next index id.
        if let Some(last) = k.last_mut() {
            *last = last.saturating_add(1);
        }
        return k;
    }
    let at = ((u128::from(i) << 64) / u128::from(total.max(1))) as u64;
    k.extend_from_slice(&at.to_be_bytes());
    k
}

pub async fn scan(svc: &Arc<Services>, input: ScanInput) -> Result<Value, ApiError> {
    let name = table_name(input.table_name)?;
    no_index(&input.index_name)?;
    let cap = capacity::mode(&input.return_consumed_capacity)?;
    let limit = limit(input.limit)?;
    let (segment, total) = match (input.segment, input.total_segments) {
        (None, None) => (0u64, 1u64),
        (Some(_), None) => return Err(ApiError::validation(
            "The TotalSegments parameter is required but was not present in the request when Segment parameter is present",
        )),
        (None, Some(_)) => return Err(ApiError::validation(
            "The Segment parameter is required but was not present in the request when parameter TotalSegments is present",
        )),
        (Some(s), Some(t)) => {
            if !(1..=MAX_TOTAL_SEGMENTS).contains(&t) {
                return Err(ApiError::validation(format!(
                    "1 validation error detected: Value '{t}' at 'totalSegments' failed to satisfy constraint: Member must have value {} {}",
                    if t < 1 { "greater than or equal to" } else { "less than or equal to" },
                    if t < 1 { 1 } else { MAX_TOTAL_SEGMENTS }
                )));
            }
            if s < 0 {
                return Err(ApiError::validation(format!(
                    "1 validation error detected: Value '{s}' at 'segment' failed to satisfy constraint: Member must have value greater than or equal to 0"
                )));
            }
            if s >= t {
                return Err(ApiError::validation(format!(
                    "The Segment parameter is zero-based and must be less than parameter TotalSegments: Segment: {s} is not less than TotalSegments: {t}"
                )));
            }
            (s as u64, t as u64)
        }
    };
    let entry = svc.table(&name)?;
    let def = &entry.def;
    let names = input.expression_attribute_names.as_ref();
    let values = input.expression_attribute_values.as_ref();
    check_mix(
        &[
            ("AttributesToGet", input.attributes_to_get.is_some()),
            ("ScanFilter", input.scan_filter.is_some()),
        ],
        &[
            (
                "ProjectionExpression",
                input.projection_expression.is_some(),
            ),
            ("FilterExpression", input.filter_expression.is_some()),
        ],
        names,
        values,
    )?;
    let sel = select(
        input.select.as_deref(),
        input.projection_expression.is_some(),
        input.attributes_to_get.is_some(),
    )?;
    let ctx = ExprContext { names, values };
    let mut usage = Usage::default();
    let filter = match (&input.filter_expression, &input.scan_filter) {
        (Some(src), _) => Some(expr::parse_filter(src, &ctx, &mut usage)?),
        (None, Some(f)) => expr::filter_to_condition(f, input.conditional_operator)?,
        (None, None) => None,
    };
    let proj = projection(
        &ctx,
        &mut usage,
        input.projection_expression.as_deref(),
        input.attributes_to_get.as_ref(),
    )?;
    usage.check_all_used(&ctx)?;
    let start = match &input.exclusive_start_key {
        Some(esk) => Some(starting_key(def, esk)?),
        None => None,
    };
    let consistent = input.consistent_read.unwrap_or(false);
    let collector = Collector::new(sel, proj, filter, limit);
    let keys = svc.table_keys(&entry).await?;
    let svc2 = svc.clone();
    let e2 = entry.clone();
    let collector = blocking(move || {
        let mut c = collector;
        run_scan(&svc2, &keys, &e2, (segment, total), start.as_ref(), &mut c)?;
        Ok(c)
    })
    .await?;
    collector.response(&name, cap, consistent)
}

fn run_scan(
    svc: &Services,
    keys: &TableKeys,
    entry: &TableEntry,
    (segment, total): (u64, u64),
    start: Option<&ItemKey>,
    c: &mut Collector,
) -> Result<(), ApiError> {
    let mut table = items::table_prefix(&keys.keyspace);
    table.push(BASE_INDEX);
    let lo = segment_bound(&table, segment, total);
    let hi = segment_bound(&table, segment.saturating_add(1), total);
    let mut from = match start {
        Some(k) => {
            let sk = items::storage_key(keys, BASE_INDEX, k)?;
            if sk < lo || sk >= hi {
                return Err(ApiError::validation(
                    "The provided Exclusive start key does not map to the provided segment",
                ));
            }
            // Strictly after the start key: its immediate successor.
            [sk.as_slice(), &[0u8]].concat()
        }
        None => lo,
    };
    loop {
        let want = c.remaining().min(CHUNK);
        if want == 0 {
            return Ok(());
        }
        let page = svc
            .store
            .scan(Space::Items, &from, Some(&hi), false, want)?;
        for (k, v) in &page.entries {
            let item = open_item(svc, keys, entry, k, v)?;
            if c.offer(&entry.def, item)? {
                return Ok(());
            }
        }
        match page.entries.last() {
            Some((k, _)) if page.more => from = [k.as_slice(), &[0u8]].concat(),
            _ => return Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_are_contiguous_and_cover_the_index() {
        let table = vec![7u8; 17];
        for total in [1u64, 2, 3, 7, 1000, 1_000_000] {
            assert_eq!(segment_bound(&table, 0, total), table);
            let mut end = table.clone();
            *end.last_mut().unwrap() += 1;
            assert_eq!(segment_bound(&table, total, total), end);
            let mut prev = segment_bound(&table, 0, total);
            for i in 1..total.min(50) {
                let b = segment_bound(&table, i, total);
                assert!(b > prev, "bounds increase");
                prev = b;
            }
        }
        assert!(select(Some("COUNT"), true, false).is_err());
        assert_eq!(select(None, false, true).unwrap(), Select::Specific);
        assert!(limit(Some(0)).is_err());
    }
}
