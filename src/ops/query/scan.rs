//! Scan: the items space in storage (token) order, cut into parallel-scan segments.

use super::*;

/// Where segment `i` of `total` starts in a table's items space (`keyspace | index | T(pk)`):
/// the partition-token space cut into `total` equal slices on its first 8 bytes.
pub(super) fn segment_bound(table: &[u8], i: u64, total: u64) -> Vec<u8> {
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
    let consistent = input.consistent_read.unwrap_or(false);
    let index = resolve_index(def, &input.index_name, consistent)?;
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
    let sel = select_for(
        input.select.as_deref(),
        input.projection_expression.is_some(),
        input.attributes_to_get.is_some(),
        index.is_some(),
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
    let mut src = Source {
        index,
        fetch_base: false,
    };
    if let Some(idx) = &src.index {
        src.fetch_base = needs_base(def, idx, sel, proj.as_ref(), filter.as_ref())?;
    }
    let key_names = src.key_names(def);
    let collector = Collector::new(key_names.clone(), sel, proj, filter, limit);
    let keys = svc.table_keys(&entry).await?;
    let svc2 = svc.clone();
    let e2 = entry.clone();
    let collector = match src.index.clone() {
        None => {
            let start = match &input.exclusive_start_key {
                Some(esk) => Some(starting_key(def, esk)?),
                None => None,
            };
            blocking(move || {
                let mut c = collector;
                run_scan(&svc2, &keys, &e2, (segment, total), start.as_ref(), &mut c)?;
                Ok(c)
            })
            .await?
        }
        Some(idx) => {
            let start = match &input.exclusive_start_key {
                Some(esk) => Some(index_starting_key(def, &idx, &key_names, esk)?),
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
                r.scan((segment, total), start.as_ref(), &mut c)?;
                Ok(c)
            })
            .await?
        }
    };
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
            if c.offer(item)? {
                return Ok(());
            }
        }
        match page.entries.last() {
            Some((k, _)) if page.more => from = [k.as_slice(), &[0u8]].concat(),
            _ => return Ok(()),
        }
    }
}
