//! Local and global secondary indexes (issue 6): definitions (stored in the table record),
//! CreateTable validation, DescribeTable output, the maintenance of index entries by every
//! write path, statistics and LSI item collections.
//!
//! An index entry is the projection of a base item, sealed like an item under the index's own
//! index byte (`items::index_storage_key`); an index with a sort key also keeps a sealed sort
//! index per index partition (storage/sort_index) under the same index byte. A hash-only GSI
//! needs none: its partitions are read in token order, like a table without a sort key.

pub mod collection;
pub mod create;
pub mod def;
pub mod describe;
pub mod gate;
pub mod maintain;
pub mod stats;

pub use def::{IndexDef, IndexKind, IndexStatus, ProjectionType};

use crate::catalog::tables::KeyAttr;
use crate::error::ApiError;
use crate::protocol::attr::{AttributeValue, MAX_PARTITION_KEY_BYTES, MAX_SORT_KEY_BYTES};

/// Index key values obey the table's key size limits (2048 bytes hash, 1024 bytes range).
pub(crate) fn check_key_size(
    idx: &IndexDef,
    attr: &KeyAttr,
    v: &AttributeValue,
) -> Result<(), ApiError> {
    let is_hash = idx.key_schema.hash.name == attr.name;
    let size = v.size();
    if is_hash && size > MAX_PARTITION_KEY_BYTES {
        return Err(ApiError::validation(format!(
            "One or more parameter values were invalid: Size of hashkey has exceeded the maximum size limit of{MAX_PARTITION_KEY_BYTES} bytes"
        )));
    }
    if !is_hash && size > MAX_SORT_KEY_BYTES {
        return Err(ApiError::validation(format!(
            "One or more parameter values were invalid: Aggregated size of all range keys has exceeded the size limit of {MAX_SORT_KEY_BYTES} bytes"
        )));
    }
    Ok(())
}

/// `prefix` + 1 in the last byte that can be incremented: the end of a prefix range.
pub fn prefix_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xFF {
            end.push(last + 1);
            return end;
        }
    }
    vec![0xFF; prefix.len() + 1]
}
