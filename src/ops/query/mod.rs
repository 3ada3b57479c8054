//! Query and Scan over sealed data.
//!
//! Query walks the partition's sealed sort index (storage/sort_index) for the order, then reads
//! the items it points at from one snapshot per chunk: O(log n + k) page and item reads, each
//! decrypted once. Tables without a sort key have no index: the partition is one item.
//! Scan walks the items space in storage order (token order): a parallel scan's segments are
//! contiguous slices of the partition-token space, so they are disjoint and together complete,
//! and LastEvaluatedKey is an item's primary key whose storage key says where to resume.
//!
//! With IndexName both read the index's entries instead (crate::indexes): the index partition's
//! sealed sort index for order (token order for a hash-only GSI), the projected entry as the
//! item, and, for an LSI asked for attributes it does not project, the base item.

use std::sync::Arc;

use serde_json::{json, Value};

use super::capacity::{self, Units};
use super::commit::{index_error, open_item};
use super::items::{check_mix, projection, to_json};
use super::keys::key_from_map;
use super::{blocking, Services};
use crate::catalog::tables::{KeySchema, ScalarType, TableDef, TableEntry};
use crate::crypto::keyring::TableKeys;
use crate::error::ApiError;
use crate::expr::{self, Condition, ExprContext, KeyCondition, Projection, SortCondition, Usage};
use crate::indexes::{IndexDef, IndexKind, ProjectionType};
use crate::items::{self, IndexPages, ItemKey, BASE_INDEX};
use crate::protocol::attr::{item_size, AttributeValue, Item};
use crate::protocol::input::{table_name, QueryInput, ScanInput};
use crate::storage::sort_index::{self, Bound, PartitionRef, Position, RangeQuery};
use crate::storage::Space;

mod index_read;
mod scan;

use index_read::IndexRead;
pub use scan::scan;
use scan::segment_bound;

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
    /// Index reads only: the entry as the index stores it.
    AllProjected,
}

/// Select against the projection parameters, with DynamoDB's messages, for a read that may
/// name an index (where ALL_PROJECTED_ATTRIBUTES is allowed
/// and is the default).
pub(crate) fn select_for(
    select: Option<&str>,
    projection_expr: bool,
    attributes_to_get: bool,
    on_index: bool,
) -> Result<Select, ApiError> {
    let which = if projection_expr {
        "ProjectionExpression"
    } else {
        "AttributesToGet"
    };
    let projected = projection_expr || attributes_to_get;
    match select {
        None if projected => Ok(Select::Specific),
        None if on_index => Ok(Select::AllProjected),
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
        Some("ALL_PROJECTED_ATTRIBUTES") if projected => Err(ApiError::validation(format!(
            "Cannot specify the {which} when choosing to get ALL_PROJECTED_ATTRIBUTES"
        ))),
        Some("ALL_PROJECTED_ATTRIBUTES") if on_index => Ok(Select::AllProjected),
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

/// What a Query or Scan reads: the table, or one of its indexes.
#[derive(Clone)]
struct Source {
    index: Option<IndexDef>,
    /// An LSI read that needs attributes the index does not project: read the base item.
    fetch_base: bool,
}

impl Source {
    fn schema<'a>(&'a self, def: &'a TableDef) -> &'a KeySchema {
        match &self.index {
            Some(i) => &i.key_schema,
            None => &def.key_schema,
        }
    }

    /// LastEvaluatedKey's attributes: the table's keys, plus the index's.
    fn key_names(&self, def: &TableDef) -> Vec<String> {
        let mut v: Vec<String> = std::iter::once(&def.key_schema.hash)
            .chain(def.key_schema.range.iter())
            .map(|a| a.name.clone())
            .collect();
        if let Some(i) = &self.index {
            for a in std::iter::once(&i.key_schema.hash).chain(i.key_schema.range.iter()) {
                if !v.contains(&a.name) {
                    v.push(a.name.clone());
                }
            }
        }
        v
    }
}

/// The index a read names (must exist and be readable), with ConsistentRead's GSI rule.
fn resolve_index(
    def: &TableDef,
    index: &Option<String>,
    consistent: bool,
) -> Result<Option<IndexDef>, ApiError> {
    let Some(name) = index else { return Ok(None) };
    let idx = def.index(name).filter(|i| i.readable()).ok_or_else(|| {
        ApiError::validation(format!(
            "The table does not have the specified index: {name}"
        ))
    })?;
    if consistent && idx.kind == IndexKind::Global {
        return Err(ApiError::validation(
            "Consistent reads are not supported on global secondary indexes",
        ));
    }
    Ok(Some(idx.clone()))
}

/// Whether the read needs the base items (LSI), or DynamoDB's refusal (GSI).
fn needs_base(
    def: &TableDef,
    idx: &IndexDef,
    sel: Select,
    proj: Option<&Projection>,
    filter: Option<&Condition>,
) -> Result<bool, ApiError> {
    if idx.projection == ProjectionType::All {
        return Ok(false);
    }
    let missing = |names: Vec<String>| -> Vec<String> {
        names
            .into_iter()
            .filter(|a| !idx.projects(&def.key_schema, a))
            .collect()
    };
    let global = idx.kind == IndexKind::Global;
    if sel == Select::All {
        if global {
            return Err(ApiError::validation(format!(
                "One or more parameter values were invalid: Select type ALL_ATTRIBUTES is not supported for global secondary index {} because its projection type is not ALL",
                idx.name
            )));
        }
        return Ok(true);
    }
    let from_projection = proj
        .map(|p| missing(p.top_level_attributes()))
        .unwrap_or_default();
    if !from_projection.is_empty() {
        if global {
            return Err(ApiError::validation(format!(
                "One or more parameter values were invalid: Global secondary index {} does not project the requested attributes: [{}]",
                idx.name,
                from_projection.join(", ")
            )));
        }
        return Ok(true);
    }
    // A GSI filter on an unprojected attribute sees it as absent; an LSI fetches it.
    let from_filter = filter
        .map(|f| missing(f.top_level_attributes()))
        .unwrap_or_default();
    Ok(!global && !from_filter.is_empty())
}

/// Where a read stops and what it returns.
struct Collector {
    key_names: Vec<String>,
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
        key_names: Vec<String>,
        select: Select,
        projection: Option<Projection>,
        filter: Option<Condition>,
        limit: usize,
    ) -> Collector {
        Collector {
            key_names,
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
    fn offer(&mut self, item: Item) -> Result<bool, ApiError> {
        self.scanned = self.scanned.saturating_add(1);
        self.bytes = self.bytes.saturating_add(item_size(&item));
        let full = self.scanned >= self.limit || self.bytes >= MAX_PAGE_BYTES;
        if full {
            self.last = Some(
                self.key_names
                    .iter()
                    .filter_map(|n| item.get(n).map(|v| (n.clone(), v.clone())))
                    .collect(),
            );
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

fn starting_key(def: &TableDef, esk: &Item) -> Result<ItemKey, ApiError> {
    key_from_map(def, esk).map_err(|e| match e {
        ApiError::Validation(m) => {
            ApiError::Validation(format!("The provided starting key is invalid: {m}"))
        }
        other => other,
    })
}

/// Where an index read resumes: the base key and the entry's index key.
struct IndexStart {
    base: ItemKey,
    pk: AttributeValue,
    sk: Option<AttributeValue>,
}

/// ExclusiveStartKey of an index read: exactly the table's and the index's key attributes.
fn index_starting_key(
    def: &TableDef,
    idx: &IndexDef,
    names: &[String],
    esk: &Item,
) -> Result<IndexStart, ApiError> {
    let invalid = || ApiError::validation("The provided starting key is invalid");
    if esk.len() != names.len() || names.iter().any(|n| !esk.contains_key(n)) {
        return Err(invalid());
    }
    let table_part: Item = std::iter::once(&def.key_schema.hash)
        .chain(def.key_schema.range.iter())
        .filter_map(|a| esk.get(&a.name).map(|v| (a.name.clone(), v.clone())))
        .collect();
    let base = starting_key(def, &table_part)?;
    let (pk, sk) = idx.key_of(esk).ok_or_else(invalid)?;
    Ok(IndexStart { base, pk, sk })
}

/// Key condition values against the schema's types.
fn check_key_types(schema: &KeySchema, kc: &KeyCondition) -> Result<(), ApiError> {
    let mismatch = || {
        ApiError::validation(
            "One or more parameter values were invalid: Condition parameter type does not match schema type",
        )
    };
    if !schema.hash.ty.matches(&kc.partition.1) {
        return Err(mismatch());
    }
    if let (Some((_, sc)), Some(r)) = (&kc.sort, &schema.range) {
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
    schema: &KeySchema,
    ctx: &ExprContext,
    usage: &mut Usage,
    expression: Option<&str>,
    legacy: Option<&crate::protocol::input::LegacyFilter>,
) -> Result<KeyCondition, ApiError> {
    let hash = schema.hash.name.as_str();
    let range = schema.range.as_ref().map(|r| r.name.as_str());
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
    let cap = capacity::mode(&input.return_consumed_capacity)?;
    let limit = limit(input.limit)?;
    let entry = svc.table(&name)?;
    let def = &entry.def;
    let consistent = input.consistent_read.unwrap_or(false);
    let index = resolve_index(def, &input.index_name, consistent)?;
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
    let sel = select_for(
        input.select.as_deref(),
        input.projection_expression.is_some(),
        input.attributes_to_get.is_some(),
        index.is_some(),
    )?;
    let mut src = Source {
        index,
        fetch_base: false,
    };
    let schema = src.schema(def).clone();
    let ctx = ExprContext { names, values };
    let mut usage = Usage::default();
    let kc = key_condition(
        &schema,
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
    check_key_types(&schema, &kc)?;
    if let Some(f) = &filter {
        let key_names = [
            Some(schema.hash.name.as_str()),
            schema.range.as_ref().map(|r| r.name.as_str()),
        ];
        for a in f.top_level_attributes() {
            if key_names.contains(&Some(a.as_str())) {
                return Err(ApiError::validation(format!(
                    "{filter_param} can only contain non-primary key attributes: Primary key attribute: {a}"
                )));
            }
        }
    }
    if let Some(idx) = &src.index {
        src.fetch_base = needs_base(def, idx, sel, proj.as_ref(), filter.as_ref())?;
    }
    let key_names = src.key_names(def);
    let collector = Collector::new(key_names.clone(), sel, proj, filter, limit);
    let forward = input.scan_index_forward.unwrap_or(true);
    let keys = svc.table_keys(&entry).await?;
    let svc2 = svc.clone();
    let e2 = entry.clone();
    let collector = match src.index.clone() {
        None => {
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
            blocking(move || {
                let mut c = collector;
                run_query(&svc2, &keys, &e2, &kc, start.as_ref(), !forward, &mut c)?;
                Ok(c)
            })
            .await?
        }
        Some(idx) => {
            let start = match &input.exclusive_start_key {
                Some(esk) => {
                    let s = index_starting_key(def, &idx, &key_names, esk)?;
                    if s.pk != kc.partition.1 {
                        return Err(ApiError::validation(
                            "The provided starting key is invalid: The provided key element does not match the query's partition key",
                        ));
                    }
                    Some(s)
                }
                None => None,
            };
            let fetch = src.fetch_base;
            blocking(move || {
                let mut c = collector;
                let r = IndexRead {
                    svc: &svc2,
                    keys: &keys,
                    entry: &e2,
                    idx: &idx,
                    fetch_base: fetch,
                };
                r.query(&kc, start.as_ref(), !forward, &mut c)?;
                Ok(c)
            })
            .await?
        }
    };
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
            c.offer(open_item(svc, keys, entry, &sk, &bytes)?)?;
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
            if c.offer(item)? {
                return Ok(());
            }
        }
        if entries.len() < want {
            return Ok(());
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
        assert!(select_for(Some("COUNT"), true, false, false).is_err());
        assert_eq!(
            select_for(None, false, false, true).unwrap(),
            Select::AllProjected
        );
        assert!(select_for(Some("ALL_PROJECTED_ATTRIBUTES"), false, false, false).is_err());
        assert_eq!(
            select_for(None, false, true, false).unwrap(),
            Select::Specific
        );
        assert!(limit(Some(0)).is_err());
    }
}
