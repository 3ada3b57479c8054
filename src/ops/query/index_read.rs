//! Reads of a secondary index for Query and Scan: the index partition's sealed sort index
//! (or token order), the projected entry as the item, and the base item when an LSI read asks
//! for attributes the index does not project.

use super::*;

/// One read of a secondary index.
pub(super) struct IndexRead<'a> {
    pub(super) svc: &'a Services,
    pub(super) keys: &'a TableKeys,
    pub(super) entry: &'a TableEntry,
    pub(super) idx: &'a IndexDef,
    pub(super) fetch_base: bool,
}

impl IndexRead<'_> {
    fn open(&self, at: &[u8], bytes: &[u8]) -> Result<Item, ApiError> {
        let e = items::open_index_entry(self.keys, &self.entry.def, self.idx, at, bytes).map_err(
            |e| {
                self.svc.audit.record(
                    "integrity",
                    json!({"table": self.entry.def.name, "index": self.idx.name,
                           "storage_key": hex::encode(at), "error": e.to_string()}),
                );
                ApiError::from(e)
            },
        )?;
        if !self.fetch_base {
            return Ok(e);
        }
        let base = crate::ops::keys::key_from_item(&self.entry.def, &e)?;
        let sk = items::storage_key(self.keys, BASE_INDEX, &base)?;
        match self.svc.store.get(Space::Items, &sk)? {
            Some(b) => open_item(self.svc, self.keys, self.entry, &sk, &b),
            // Deleted between the two reads: what the index held is all there is.
            None => Ok(e),
        }
    }

    fn start_at(&self, s: &IndexStart) -> Result<Vec<u8>, ApiError> {
        Ok(items::index_storage_key(
            self.keys,
            self.idx.id,
            &s.pk,
            s.sk.as_ref(),
            &s.base,
        )?)
    }

    /// Entries in `[from, to)` of the items space in storage order (hash-only index
    /// partitions, and Scan).
    fn walk(&self, mut from: Vec<u8>, to: &[u8], c: &mut Collector) -> Result<(), ApiError> {
        loop {
            let want = c.remaining().min(CHUNK);
            if want == 0 {
                return Ok(());
            }
            let page = self
                .svc
                .store
                .scan(Space::Items, &from, Some(to), false, want)?;
            for (k, v) in &page.entries {
                if c.offer(self.open(k, v)?)? {
                    return Ok(());
                }
            }
            match page.entries.last() {
                Some((k, _)) if page.more => from = [k.as_slice(), &[0u8]].concat(),
                _ => return Ok(()),
            }
        }
    }

    pub(super) fn query(
        &self,
        kc: &KeyCondition,
        start: Option<&IndexStart>,
        reverse: bool,
        c: &mut Collector,
    ) -> Result<(), ApiError> {
        let prefix = items::index_partition_prefix(self.keys, self.idx.id, &kc.partition.1)?;
        if self.idx.key_schema.range.is_none() {
            let from = match start {
                Some(s) => [self.start_at(s)?.as_slice(), &[0u8]].concat(),
                None => prefix.clone(),
            };
            return self.walk(from, &crate::indexes::prefix_end(&prefix), c);
        }
        let part = PartitionRef { prefix: &prefix };
        let crypto = IndexPages {
            keys: self.keys,
            index: self.idx.id,
        };
        let sc = kc.sort.as_ref().map(|(_, s)| s);
        let (mut lower, mut upper, pr) = bounds(sc)?;
        if let Some(pr) = &pr {
            lower = pr.lower();
            upper = pr.upper();
        }
        let mut cursor: Option<(AttributeValue, [u8; 16])> = match start {
            Some(s) => {
                let at = self.start_at(s)?;
                let token = items::item_token_of(&at)
                    .ok_or_else(|| ApiError::Internal("malformed storage key".into()))?;
                s.sk.clone().map(|v| (v, token))
            }
            None => None,
        };
        loop {
            let want = c.remaining().min(CHUNK);
            if want == 0 {
                return Ok(());
            }
            let entries = sort_index::range(
                self.svc.store.as_ref(),
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
            let at: Vec<Vec<u8>> = entries
                .iter()
                .map(|e| [prefix.as_slice(), &e.item_token].concat())
                .collect();
            let lookups: Vec<(Space, &[u8])> =
                at.iter().map(|k| (Space::Items, k.as_slice())).collect();
            let values = self.svc.store.multi_get(&lookups)?;
            for ((e, k), v) in entries.iter().zip(&at).zip(values) {
                cursor = Some((e.sort_key.clone(), e.item_token));
                let Some(bytes) = v else { continue };
                if c.offer(self.open(k, &bytes)?)? {
                    return Ok(());
                }
            }
            if entries.len() < want {
                return Ok(());
            }
        }
    }

    pub(super) fn scan(
        &self,
        (segment, total): (u64, u64),
        start: Option<&IndexStart>,
        c: &mut Collector,
    ) -> Result<(), ApiError> {
        let mut space = items::table_prefix(&self.keys.keyspace);
        space.push(self.idx.id);
        let lo = segment_bound(&space, segment, total);
        let hi = segment_bound(&space, segment.saturating_add(1), total);
        let from = match start {
            Some(s) => {
                let at = self.start_at(s)?;
                if at < lo || at >= hi {
                    return Err(ApiError::validation(
                        "The provided Exclusive start key does not map to the provided segment",
                    ));
                }
                [at.as_slice(), &[0u8]].concat()
            }
            None => lo,
        };
        self.walk(from, &hi, c)
    }
}
