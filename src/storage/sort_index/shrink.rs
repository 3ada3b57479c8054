//! Removal: a leaf that becomes empty goes away with every ancestor it leaves childless, and
//! its key range passes to the neighbouring subtree (whose boundary pages get the new fence),
//! so fences always partition the key space and a range scan never crosses an empty leaf.
//! Pages left under a quarter full merge with a neighbour, so sparse leaves do not multiply the
//! pages a range reads, and a root left with one child hands its place to that child.

use super::page::{Body, Key, Page};
use super::tree::{descend, relink, split_bytes, Step, Tx};
use super::{PageId, SortIndexError, ROOT_PAGE_ID};

pub(super) fn remove(tx: &mut Tx<'_>, key: &Key) -> Result<(), SortIndexError> {
    let Some(mut path) = descend(tx, key)? else {
        return Ok(());
    };
    let Some(Step {
        id: leaf_id,
        mut page,
        ..
    }) = path.pop()
    else {
        return Err(SortIndexError::Inconsistent);
    };
    let Body::Leaf {
        entries,
        prev: leaf_prev,
        next: leaf_next,
    } = &mut page.body
    else {
        return Err(SortIndexError::Inconsistent);
    };
    let Ok(i) = entries.binary_search_by(|e| e.key.cmp(key)) else {
        return Ok(());
    };
    entries.remove(i);
    if !entries.is_empty() {
        return rebalance(tx, path, leaf_id, page);
    }
    let (leaf_prev, leaf_next) = (*leaf_prev, *leaf_next);
    // The deepest ancestor that keeps a child once this leaf (and every ancestor it leaves
    // childless) is gone. None: this was the last leaf, and the tree is now empty.
    let keep = path.iter().rposition(
        |s| matches!(&s.page.body, Body::Internal { children, .. } if children.len() >= 2),
    );
    let Some(keep) = keep else {
        for s in &path {
            tx.delete(s.id);
        }
        tx.delete(leaf_id);
        return Ok(());
    };
    for s in path.iter().skip(keep + 1) {
        tx.delete(s.id);
    }
    tx.delete(leaf_id);
    path.truncate(keep + 1);
    let Some(Step {
        id: pid,
        page: mut parent,
        idx,
    }) = path.pop()
    else {
        return Err(SortIndexError::Inconsistent);
    };
    // The removed subtree's range: single-child pages share their child's range, and descend
    // checked that, so the leaf's fences are the subtree's.
    let (gone_low, gone_high) = (page.low, page.high);
    let Body::Internal { children, seps, .. } = &mut parent.body else {
        return Err(SortIndexError::Inconsistent);
    };
    if idx > 0 {
        // The left neighbour subtree grows to the right: its rightmost path gets the new high
        // fence, and its last leaf (our leaf's prev) links past the removed leaf.
        let sib = *children.get(idx - 1).ok_or(SortIndexError::Inconsistent)?;
        let bottom = widen(tx, sib, false, gone_low.as_ref(), gone_high.clone())?;
        if Some(bottom) != leaf_prev {
            return Err(SortIndexError::Inconsistent);
        }
        relink(tx, bottom, None, Some((Some(leaf_id), leaf_next)))?;
        if let Some(n) = leaf_next {
            relink(tx, n, Some((Some(leaf_id), Some(bottom))), None)?;
        }
        seps.remove(idx - 1);
        children.remove(idx);
    } else {
        let sib = *children.get(1).ok_or(SortIndexError::Inconsistent)?;
        let bottom = widen(tx, sib, true, gone_high.as_ref(), gone_low.clone())?;
        if Some(bottom) != leaf_next {
            return Err(SortIndexError::Inconsistent);
        }
        relink(tx, bottom, Some((Some(leaf_id), leaf_prev)), None)?;
        if let Some(p) = leaf_prev {
            relink(tx, p, None, Some((Some(leaf_id), Some(bottom))))?;
        }
        if seps.is_empty() {
            return Err(SortIndexError::Inconsistent);
        }
        seps.remove(0);
        children.remove(0);
    }
    rebalance(tx, path, pid, parent)
}

/// Stores `page` (child `path.last().idx` of the last page on `path`) after it shrank. Below a
/// quarter of a page it merges with its neighbour under the same parent when the two fit in
/// three quarters of a page (the gap keeps a merge from being undone by the next split), and
/// the parent, one child shorter, gets the same treatment. Finally a root left with a single
/// child hands its place to that child, one level fewer to read.
fn rebalance(
    tx: &mut Tx<'_>,
    mut path: Vec<Step>,
    mut id: PageId,
    mut page: Page,
) -> Result<(), SortIndexError> {
    let limit = split_bytes();
    while page.payload_len() < limit / 4 {
        let Some(Step {
            id: pid,
            page: mut parent,
            idx,
        }) = path.pop()
        else {
            break;
        };
        let Body::Internal { children, .. } = &parent.body else {
            return Err(SortIndexError::Inconsistent);
        };
        // Merge children `l` and `l + 1`: with the left neighbour if there is one.
        let l = idx.saturating_sub(1);
        if l + 1 >= children.len() {
            tx.set(id, page);
            return collapse_root(tx);
        }
        let other = if idx == l { l + 1 } else { l };
        let (oid, olow, ohigh) = parent.child(other).ok_or(SortIndexError::Inconsistent)?;
        let sibling = tx.must_get(&oid)?;
        if !sibling.fits(parent.level(), olow, ohigh) {
            return Err(SortIndexError::Inconsistent);
        }
        let Body::Internal { children, seps, .. } = &mut parent.body else {
            return Err(SortIndexError::Inconsistent);
        };
        let sep = seps.get(l).cloned().ok_or(SortIndexError::Inconsistent)?;
        let joined = page.payload_len() + sibling.payload_len() + sep.encoded_len();
        if joined > limit / 4 * 3 {
            tx.set(id, page);
            return collapse_root(tx);
        }
        let ((lid, left), (rid, right)) = if idx == l {
            ((id, page), (oid, sibling))
        } else {
            ((oid, sibling), (id, page))
        };
        let merged = join(tx, lid, left, rid, right, sep)?;
        tx.set(lid, merged);
        tx.delete(rid);
        seps.remove(l);
        children.remove(l + 1);
        (id, page) = (pid, parent);
    }
    tx.set(id, page);
    collapse_root(tx)
}

/// Appends page `right` to its left neighbour `left` (same parent, `sep` between them).
fn join(
    tx: &mut Tx<'_>,
    lid: PageId,
    left: Page,
    rid: PageId,
    right: Page,
    sep: Key,
) -> Result<Page, SortIndexError> {
    let Page { low, body, .. } = left;
    let body = match (body, right.body) {
        (
            Body::Leaf {
                prev,
                next,
                mut entries,
            },
            Body::Leaf {
                prev: rprev,
                next: rnext,
                entries: rentries,
            },
        ) => {
            if next != Some(rid) || rprev != Some(lid) {
                return Err(SortIndexError::Inconsistent);
            }
            if let Some(n) = rnext {
                relink(tx, n, Some((Some(rid), Some(lid))), None)?;
            }
            entries.extend(rentries);
            Body::Leaf {
                prev,
                next: rnext,
                entries,
            }
        }
        (
            Body::Internal {
                level,
                mut children,
                mut seps,
            },
            Body::Internal {
                level: rlevel,
                children: rchildren,
                seps: rseps,
            },
        ) if level == rlevel => {
            seps.push(sep);
            seps.extend(rseps);
            children.extend(rchildren);
            Body::Internal {
                level,
                children,
                seps,
            }
        }
        _ => return Err(SortIndexError::Inconsistent),
    };
    Ok(Page {
        low,
        high: right.high,
        body,
    })
}

/// While the root has a single child, that child's content moves into the root (its range is
/// the whole key space, and a lone leaf has no neighbours, so nothing else points at it).
fn collapse_root(tx: &mut Tx<'_>) -> Result<(), SortIndexError> {
    loop {
        let Some(root) = tx.get(&ROOT_PAGE_ID)? else {
            return Ok(());
        };
        let only = match &root.body {
            Body::Internal { children, .. } => match children.as_slice() {
                [only] => *only,
                _ => return Ok(()),
            },
            Body::Leaf { .. } => return Ok(()),
        };
        let child = tx.must_get(&only)?;
        if !child.fits(root.level(), None, None) {
            return Err(SortIndexError::Inconsistent);
        }
        if let Body::Leaf { prev, next, .. } = &child.body {
            if prev.is_some() || next.is_some() {
                return Err(SortIndexError::Inconsistent);
            }
        }
        tx.delete(only);
        tx.set(ROOT_PAGE_ID, child);
    }
}

/// Walks the boundary of subtree `top` facing the removed range (its leftmost path if
/// `left_edge`, else its rightmost) and moves that fence from `old` to `new`. Returns the id of
/// the boundary leaf.
fn widen(
    tx: &mut Tx<'_>,
    top: PageId,
    left_edge: bool,
    old: Option<&Key>,
    new: Option<Key>,
) -> Result<PageId, SortIndexError> {
    let mut id = top;
    loop {
        let mut page = tx.must_get(&id)?;
        let fence = if left_edge {
            &mut page.low
        } else {
            &mut page.high
        };
        if fence.as_ref() != old {
            return Err(SortIndexError::Inconsistent);
        }
        fence.clone_from(&new);
        let below = match &page.body {
            Body::Leaf { .. } => None,
            Body::Internal { children, .. } => {
                let c = if left_edge {
                    children.first()
                } else {
                    children.last()
                };
                Some(*c.ok_or(SortIndexError::Inconsistent)?)
            }
        };
        tx.set(id, page);
        match below {
            None => return Ok(id),
            Some(c) => id = c,
        }
    }
}
