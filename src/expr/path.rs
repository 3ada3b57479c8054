//! Document paths on items: get, set, remove, project.

use std::collections::BTreeMap;

use super::ast::{Path, PathElem};
use super::ExprError;
use crate::protocol::attr::{AttributeValue, Item};

fn index(i: u32) -> usize {
    usize::try_from(i).unwrap_or(usize::MAX)
}

/// The value at `path`, if every step exists and has the right type.
pub fn get<'a>(item: &'a Item, path: &Path) -> Option<&'a AttributeValue> {
    let (first, rest) = path.0.split_first()?;
    let PathElem::Attr(name) = first else {
        return None;
    };
    let mut cur = item.get(name)?;
    for e in rest {
        cur = match (e, cur) {
            (PathElem::Attr(k), AttributeValue::M(m)) => m.get(k)?,
            (PathElem::Index(i), AttributeValue::L(l)) => l.get(index(*i))?,
            _ => return None,
        };
    }
    Some(cur)
}

fn get_mut<'a>(item: &'a mut Item, elems: &[PathElem]) -> Option<&'a mut AttributeValue> {
    let (first, rest) = elems.split_first()?;
    let PathElem::Attr(name) = first else {
        return None;
    };
    let mut cur = item.get_mut(name)?;
    for e in rest {
        cur = match (e, cur) {
            (PathElem::Attr(k), AttributeValue::M(m)) => m.get_mut(k)?,
            (PathElem::Index(i), AttributeValue::L(l)) => l.get_mut(index(*i))?,
            _ => return None,
        };
    }
    Some(cur)
}

/// The container that holds the last step of `path` (None for a top-level path). It must
/// exist and be a map (last step a name) or a list (last step an index).
fn parent_mut<'a>(
    item: &'a mut Item,
    path: &'a Path,
) -> Result<Option<(&'a mut AttributeValue, &'a PathElem)>, ExprError> {
    let Some((last, parent)) = path.0.split_last() else {
        return Err(ExprError::InvalidUpdatePath);
    };
    if parent.is_empty() {
        return Ok(None);
    }
    let container = get_mut(item, parent).ok_or(ExprError::InvalidUpdatePath)?;
    match (last, &*container) {
        (PathElem::Attr(_), AttributeValue::M(_)) | (PathElem::Index(_), AttributeValue::L(_)) => {
            Ok(Some((container, last)))
        }
        _ => Err(ExprError::InvalidUpdatePath),
    }
}

/// Fails with InvalidUpdatePath unless the parent container of `path` exists with the right type.
pub fn check_parent(item: &mut Item, path: &Path) -> Result<(), ExprError> {
    parent_mut(item, path).map(|_| ())
}

/// Write `value` at `path`. A list index past the end appends.
pub fn set(item: &mut Item, path: &Path, value: AttributeValue) -> Result<(), ExprError> {
    match parent_mut(item, path)? {
        None => {
            item.insert(path.top().to_string(), value);
        }
        Some((AttributeValue::M(m), PathElem::Attr(k))) => {
            m.insert(k.clone(), value);
        }
        Some((AttributeValue::L(l), PathElem::Index(i))) => match l.get_mut(index(*i)) {
            Some(slot) => *slot = value,
            None => l.push(value),
        },
        Some(_) => return Err(ExprError::InvalidUpdatePath),
    }
    Ok(())
}

/// Remove the value at `path` (absent is fine; a missing or mistyped parent is not).
pub fn remove(item: &mut Item, path: &Path) -> Result<Option<AttributeValue>, ExprError> {
    Ok(match parent_mut(item, path)? {
        None => item.remove(path.top()),
        Some((AttributeValue::M(m), PathElem::Attr(k))) => m.remove(k),
        Some((AttributeValue::L(l), PathElem::Index(i))) => {
            let i = index(*i);
            (i < l.len()).then(|| l.remove(i))
        }
        Some(_) => return Err(ExprError::InvalidUpdatePath),
    })
}

#[derive(Default)]
struct Trie {
    whole: bool,
    attrs: BTreeMap<String, Trie>,
    idx: BTreeMap<u32, Trie>,
}

impl Trie {
    fn insert(&mut self, elems: &[PathElem]) {
        let mut node = self;
        for e in elems {
            node = match e {
                PathElem::Attr(a) => node.attrs.entry(a.clone()).or_default(),
                PathElem::Index(i) => node.idx.entry(*i).or_default(),
            };
        }
        node.whole = true;
    }

    fn apply(&self, v: &AttributeValue) -> Option<AttributeValue> {
        if self.whole {
            return Some(v.clone());
        }
        match v {
            AttributeValue::M(m) if !self.attrs.is_empty() => {
                let out: BTreeMap<String, AttributeValue> = self
                    .attrs
                    .iter()
                    .filter_map(|(k, t)| Some((k.clone(), t.apply(m.get(k)?)?)))
                    .collect();
                (!out.is_empty()).then_some(AttributeValue::M(out))
            }
            AttributeValue::L(l) if !self.idx.is_empty() => {
                let out: Vec<AttributeValue> = self
                    .idx
                    .iter()
                    .filter_map(|(i, t)| t.apply(l.get(index(*i))?))
                    .collect();
                (!out.is_empty()).then_some(AttributeValue::L(out))
            }
            _ => None,
        }
    }
}

/// The parts of `item` named by `paths`. Nested selections keep their containers; selected
/// list elements keep their relative order (DynamoDB compacts them into a shorter list).
pub fn project(item: &Item, paths: &[Path]) -> Item {
    let mut root = Trie::default();
    for p in paths {
        root.insert(&p.0);
    }
    root.attrs
        .iter()
        .filter_map(|(k, t)| Some((k.clone(), t.apply(item.get(k)?)?)))
        .collect()
}
