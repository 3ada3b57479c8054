//! The sealed per-partition sort index (DESIGN.md section 4): the order of a partition's items
//! without anything orderable on disk.
//!
//! Storage keys of items are HMAC tokens, so the store cannot order a partition by sort key.
//! Each partition (of a table, or of a secondary index under its own index id) therefore keeps
//! a B+tree of `(sort key, T(pk, sk), write seq)` entries whose pages are sealed one by one
//! (AES-256-GCM through [`PageCrypto`]) in [`Space::SortIndex`]:
//!
//! - page storage key = partition prefix | 16-byte page id. The root has the fixed id
//!   [`ROOT_PAGE_ID`]; every other page a random id, so neither keys nor their order reveal
//!   anything about the sort keys; page sizes reveal only roughly how many entries a page holds.
//! - a page's plaintext holds a format version, its fence keys (the key range `[low, high)` it
//!   covers), and either entries plus the ids of its neighbour leaves (leaves are linked both
//!   ways so range scans walk leaves), or separator keys and child ids.
//! - [`range`] descends once and walks leaves: O(log n + k) page reads, each page decrypted
//!   once. Fences let a reader that raced a writer notice (a child's fences disagree with its
//!   parent, a neighbour's with its sibling) and re-descend from where it stopped.
//! - writes are plans ([`plan`], [`plan_upsert`], [`plan_remove`]): the checks and writes of
//!   one index change, committed by the caller together with the item itself so that the item
//!   and its entry never diverge. Every page the plan read is checked by exact sealed bytes (a
//!   re-seal never repeats bytes: the nonce is fresh), so two writers racing on one partition
//!   serialize: the second commit fails with `CommitError::Conflict` and re-plans from scratch.
//!
//! Entries are ordered by sort key, then item token. For a base table the token is a function of
//! the sort key within a partition, so that is sort-key order and each sort key has one entry;
//! in a secondary index several items may share a sort key and the token keeps them apart (the
//! same order DynamoDB leaves unspecified). Sort keys compare as DynamoDB does: S by UTF-8
//! bytes, N numerically, B as unsigned bytes.
//!
//! Not defended here: a party able to write the store could put back an older sealed copy of a
//! page under the same key (a rollback); fences catch only rollbacks that break the tree's shape.

mod page;
mod scan;
mod shrink;
mod tree;

#[cfg(test)]
mod tests;

use zeroize::Zeroizing;

use crate::protocol::attr::AttributeValue;
use crate::storage::{Check, Space, Store, StoreError, Write};

pub use scan::{prefix_range, range, PrefixRange};
pub use tree::{plan, plan_remove, plan_upsert};

/// Length of an item token `T(pk, sk)` (crypto::tokens::TOKEN_LEN).
pub const TOKEN_LEN: usize = 16;
pub type Token = [u8; TOKEN_LEN];

/// 128 random bits: ids never collide in practice, and a collision would still only fail the
/// commit (new pages are checked absent).
pub const PAGE_ID_LEN: usize = 16;
pub type PageId = [u8; PAGE_ID_LEN];

/// Fixed id of every partition's root page, so a reader needs no pointer to start from.
pub const ROOT_PAGE_ID: PageId = [0; PAGE_ID_LEN];

/// A page splits once its plaintext, fences aside, exceeds this. 4 KiB: a Limit-10 Query on
/// typical keys (about 60-100 entries per leaf) reads the root, an inner page or two and one or
/// two leaves, while an insert rewrites (and re-seals) only ~4 KiB; it also matches RocksDB's
/// default 4 KiB block, so one page read is about one block read. Fences are left out because
/// both halves of a split keep one, so counting them would let two 1 KiB fences halve the
/// fan-out of pages with large keys. A split needs two entries (or three children), so with
/// DynamoDB's 1 KiB sort-key limit a page stays below ~8 KiB.
pub const PAGE_SPLIT_BYTES: usize = 4096;

/// How often a reader re-descends after racing a writer, or a planner re-plans, before giving
/// up. Each race needs a concurrent split or removal on the same partition, so a handful is
/// plenty; a persistent disagreement means damage, reported as [`SortIndexError::Inconsistent`].
const MAX_ATTEMPTS: usize = 8;

/// Seals and opens page plaintext. The server implements it with the table's data key and the
/// label `sealdb/sortidx/v1`, binding `storage_key` (partition prefix | page id) into the AAD so
/// a page cannot be moved to another position, partition or table.
pub trait PageCrypto {
    fn seal(&self, storage_key: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, SortIndexError>;
    fn open(&self, storage_key: &[u8], sealed: &[u8])
        -> Result<Zeroizing<Vec<u8>>, SortIndexError>;
}

/// One partition's index: pages live at `prefix | page id` in `Space::SortIndex`. The prefix is
/// `keyspace(16) | index(1) | T(pk)(16)`; all prefixes in the space must have the same length,
/// so that no partition's page keys can start with another partition's prefix.
#[derive(Clone, Copy, Debug)]
pub struct PartitionRef<'a> {
    pub prefix: &'a [u8],
}

/// One index entry: where an item sits in sort order.
#[derive(Clone, Debug, PartialEq)]
pub struct Entry {
    /// S, N or B.
    pub sort_key: AttributeValue,
    /// `T(pk, sk)` of the item (of the base item, for a secondary index).
    pub item_token: Token,
    /// The write sequence of the item version this entry describes; Query can compare it with
    /// the sealed item's header to notice an index entry that lags its item.
    pub write_seq: u64,
}

/// The position of an entry, for paging (ExclusiveStartKey): the caller derives the token from
/// the key it was given, so resuming needs no stored cursor.
#[derive(Clone, Copy, Debug)]
pub struct Position<'a> {
    pub sort_key: &'a AttributeValue,
    pub item_token: &'a Token,
}

/// One change to a partition's index.
#[derive(Clone, Copy, Debug)]
pub enum Change<'a> {
    /// Inserts the entry, or updates the write seq of the entry at the same position.
    Upsert(&'a Entry),
    /// Removes the entry at this position; removing an absent entry changes nothing.
    Remove(Position<'a>),
}

/// The checks and writes of one or more index changes in one partition.
///
/// The caller commits them TOGETHER with the item writes, in one `Store::commit`, so that the
/// index and the items never diverge; on `CommitError::Conflict` it re-plans everything from
/// scratch. Several changes to ONE partition must come from one [`plan`] call: two plans made
/// from the same state overwrite each other's pages if committed together (use
/// [`Plan::merge`], which refuses that). Plans of different partitions touch disjoint keys.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Plan {
    /// One exact-bytes (or absence) check per page the plan read or created.
    pub checks: Vec<Check>,
    pub writes: Vec<Write>,
}

impl Plan {
    /// Appends `other`, refusing plans that read or write the same page (two plans of one
    /// partition), whose writes would silently overwrite each other.
    pub fn merge(&mut self, other: Plan) -> Result<(), SortIndexError> {
        let mine: std::collections::HashSet<&[u8]> =
            self.checks.iter().map(|c| c.key.as_slice()).collect();
        if other.checks.iter().any(|c| mine.contains(c.key.as_slice())) {
            return Err(SortIndexError::OverlappingPlans);
        }
        self.checks.extend(other.checks);
        self.writes.extend(other.writes);
        Ok(())
    }
}

/// One end of a sort-key range.
#[derive(Clone, Copy, Debug)]
pub enum Bound<'a> {
    Unbounded,
    Included(&'a AttributeValue),
    Excluded(&'a AttributeValue),
}

/// A range read: entries with `lower <= sort key <= upper` (per the bounds), ascending or
/// (`reverse`) descending, starting strictly after `start_after` in the direction of travel
/// (ExclusiveStartKey), at most `limit`.
#[derive(Clone, Copy, Debug)]
pub struct RangeQuery<'a> {
    pub lower: Bound<'a>,
    pub upper: Bound<'a>,
    pub reverse: bool,
    pub start_after: Option<Position<'a>>,
    pub limit: usize,
}

impl Default for RangeQuery<'_> {
    /// The whole partition, ascending, unlimited.
    fn default() -> Self {
        RangeQuery {
            lower: Bound::Unbounded,
            upper: Bound::Unbounded,
            reverse: false,
            start_after: None,
            limit: usize::MAX,
        }
    }
}

/// Sort-index failures. Messages never carry key bytes or sort-key values.
#[derive(Debug, thiserror::Error)]
pub enum SortIndexError {
    /// A sort key (or bound, or position) that is not S, N or B. The caller validated the key
    /// schema first, so this is a programming error rather than a client error.
    #[error("sort keys must be of type S, N or B, not {0}")]
    NotAKeyType(&'static str),
    /// An S or B sort key above DynamoDB's 1024-byte limit (validated by the caller first).
    #[error("sort key exceeds the maximum length")]
    KeyTooLarge,
    /// begins_with on a number (DynamoDB accepts it only on S and B).
    #[error("begins_with needs an S or B prefix, not {0}")]
    PrefixType(&'static str),
    /// Sealing a page failed.
    #[error("sealing a sort-index page failed")]
    Seal,
    /// A page failed authentication (tag, binding): damaged or moved bytes.
    #[error("sort-index page failed its integrity check")]
    Integrity,
    /// A page decrypted but its contents are malformed.
    #[error("sort-index page is malformed: {0}")]
    Corrupt(&'static str),
    /// Pages kept disagreeing (fences, links, missing pages) after re-reading: damage or a
    /// rolled-back page, or more concurrent restructuring than the retry budget.
    #[error("sort-index pages are inconsistent")]
    Inconsistent,
    /// Two plans of the same partition given to [`Plan::merge`].
    #[error("sort-index plans overlap")]
    OverlappingPlans,
    /// The system random number generator failed (page ids).
    #[error("random number generator failed")]
    Random,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// `prefix | id`: where a page lives.
pub fn page_key(part: &PartitionRef<'_>, id: &PageId) -> Vec<u8> {
    let mut k = Vec::with_capacity(part.prefix.len() + PAGE_ID_LEN);
    k.extend_from_slice(part.prefix);
    k.extend_from_slice(id);
    k
}

/// Reads and opens one page: `None` if absent, else its sealed bytes (for a plan's check) and
/// its decoded plaintext.
fn load_page(
    store: &dyn Store,
    crypto: &dyn PageCrypto,
    part: &PartitionRef<'_>,
    id: &PageId,
) -> Result<Option<(Vec<u8>, page::Page)>, SortIndexError> {
    let key = page_key(part, id);
    let Some(sealed) = store.get(Space::SortIndex, &key)? else {
        return Ok(None);
    };
    let plain = crypto.open(&key, &sealed)?;
    let page = page::Page::decode(&plain)?;
    Ok(Some((sealed, page)))
}
