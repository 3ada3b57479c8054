//! Secondary index definitions as stored (sealed) in the table record.

use serde::{Deserialize, Serialize};

use crate::catalog::tables::{KeySchema, Throughput};
use crate::protocol::attr::{AttributeValue, Item};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum IndexKind {
    Global,
    Local,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ProjectionType {
    KeysOnly,
    Include,
    All,
}

impl ProjectionType {
    pub fn parse(s: &str) -> Option<ProjectionType> {
        match s {
            "KEYS_ONLY" => Some(ProjectionType::KeysOnly),
            "INCLUDE" => Some(ProjectionType::Include),
            "ALL" => Some(ProjectionType::All),
            _ => None,
        }
    }

    pub fn as_str(&self) -> &'static str {
        match self {
            ProjectionType::KeysOnly => "KEYS_ONLY",
            ProjectionType::Include => "INCLUDE",
            ProjectionType::All => "ALL",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum IndexStatus {
    Creating,
    Active,
    Updating,
    Deleting,
}

impl IndexStatus {
    pub fn as_str(&self) -> &'static str {
        match self {
            IndexStatus::Creating => "CREATING",
            IndexStatus::Active => "ACTIVE",
            IndexStatus::Updating => "UPDATING",
            IndexStatus::Deleting => "DELETING",
        }
    }
}

/// One GSI or LSI. `id` is the index byte of its storage keys (`keyspace | id | ...`); the
/// base table is 0, so ids run 1..=255 and are never shared by two live indexes of a table.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct IndexDef {
    pub name: String,
    pub id: u8,
    pub kind: IndexKind,
    pub key_schema: KeySchema,
    pub projection: ProjectionType,
    /// INCLUDE only.
    #[serde(default)]
    pub non_key_attributes: Vec<String>,
    pub status: IndexStatus,
    /// A GSI added by UpdateTable while its backfill runs.
    #[serde(default)]
    pub backfilling: bool,
    /// GSIs of PROVISIONED tables (accepted and reported; sealdb does not throttle).
    #[serde(default)]
    pub throughput: Option<Throughput>,
    /// Backfill progress (hex of the base storage key to resume from), persisted every page so
    /// that a restarted server resumes instead of starting over.
    #[serde(default)]
    pub backfill_cursor: Option<String>,
}

impl IndexDef {
    /// Whether writes maintain the index: everything but an index being deleted.
    pub fn maintained(&self) -> bool {
        self.status != IndexStatus::Deleting
    }

    /// Whether Query and Scan may read it. DynamoDB refuses reads of an index that is not
    /// ACTIVE (a GSI still backfilling).
    pub fn readable(&self) -> bool {
        matches!(self.status, IndexStatus::Active | IndexStatus::Updating)
    }

    pub fn hash_name(&self) -> &str {
        &self.key_schema.hash.name
    }

    pub fn range_name(&self) -> Option<&str> {
        self.key_schema.range.as_ref().map(|r| r.name.as_str())
    }

    /// Whether an attribute (top-level name) is stored in this index's entries, given the
    /// table's own key attributes (always projected).
    pub fn projects(&self, table_keys: &KeySchema, attr: &str) -> bool {
        self.projection == ProjectionType::All
            || is_key_attr(table_keys, attr)
            || is_key_attr(&self.key_schema, attr)
            || (self.projection == ProjectionType::Include
                && self.non_key_attributes.iter().any(|a| a == attr))
    }

    /// The entry stored for `item`: its projection (the whole item for ALL).
    pub fn project(&self, table_keys: &KeySchema, item: &Item) -> Item {
        if self.projection == ProjectionType::All {
            return item.clone();
        }
        item.iter()
            .filter(|(k, _)| self.projects(table_keys, k))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    /// The index key of `item`, when it has every index key attribute with the index's type
    /// (otherwise the item is not in this sparse index). Values were validated on write.
    pub fn key_of(&self, item: &Item) -> Option<(AttributeValue, Option<AttributeValue>)> {
        let h = item.get(&self.key_schema.hash.name)?;
        if !self.key_schema.hash.ty.matches(h) {
            return None;
        }
        let r = match &self.key_schema.range {
            Some(r) => {
                let v = item.get(&r.name)?;
                if !r.ty.matches(v) {
                    return None;
                }
                Some(v.clone())
            }
            None => None,
        };
        Some((h.clone(), r))
    }
}

pub fn is_key_attr(schema: &KeySchema, attr: &str) -> bool {
    schema.hash.name == attr || schema.range.as_ref().is_some_and(|r| r.name == attr)
}
