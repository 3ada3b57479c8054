//! Evaluating conditions on a (decrypted) item.

use std::borrow::Cow;
use std::cmp::Ordering;

use super::ast::{CmpOp, Cond, Operand};
use super::parse::Condition;
use super::path::get;
use super::ExprError;
use crate::protocol::attr::{AttributeValue, Item, Number};

/// Order of two values when DynamoDB orders them: N numerically, S by UTF-8 bytes, B as
/// unsigned bytes. Any other pair (including mixed types) has no order.
pub fn compare_values(a: &AttributeValue, b: &AttributeValue) -> Option<Ordering> {
    match (a, b) {
        (AttributeValue::N(x), AttributeValue::N(y)) => Some(x.cmp(y)),
        // str's Ord is lexicographic over the UTF-8 bytes, which is DynamoDB's order.
        (AttributeValue::S(x), AttributeValue::S(y)) => Some(x.as_bytes().cmp(y.as_bytes())),
        (AttributeValue::B(x), AttributeValue::B(y)) => Some(x.cmp(y)),
        _ => None,
    }
}

/// DynamoDB equality: same type and same value; sets compare as sets (order-free), numbers
/// numerically, maps and lists element by element.
pub fn values_equal(a: &AttributeValue, b: &AttributeValue) -> bool {
    match (a, b) {
        (AttributeValue::Ss(x), AttributeValue::Ss(y)) => same_members(x, y),
        (AttributeValue::Ns(x), AttributeValue::Ns(y)) => same_members(x, y),
        (AttributeValue::Bs(x), AttributeValue::Bs(y)) => same_members(x, y),
        (AttributeValue::L(x), AttributeValue::L(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| values_equal(p, q))
        }
        (AttributeValue::M(x), AttributeValue::M(y)) => {
            x.len() == y.len()
                && x.iter()
                    .zip(y)
                    .all(|((k1, v1), (k2, v2))| k1 == k2 && values_equal(v1, v2))
        }
        _ => a == b,
    }
}

fn same_members<T: Ord>(x: &[T], y: &[T]) -> bool {
    if x.len() != y.len() {
        return false;
    }
    let mut a: Vec<&T> = x.iter().collect();
    let mut b: Vec<&T> = y.iter().collect();
    a.sort_unstable();
    b.sort_unstable();
    a == b
}

/// size(): S and B in bytes, sets, lists and maps in elements; no size for N, BOOL, NULL.
fn size_of(v: &AttributeValue) -> Option<usize> {
    match v {
        AttributeValue::S(s) => Some(s.len()),
        AttributeValue::B(b) => Some(b.len()),
        AttributeValue::Ss(x) => Some(x.len()),
        AttributeValue::Ns(x) => Some(x.len()),
        AttributeValue::Bs(x) => Some(x.len()),
        AttributeValue::L(x) => Some(x.len()),
        AttributeValue::M(x) => Some(x.len()),
        AttributeValue::N(_) | AttributeValue::Bool(_) | AttributeValue::Null => None,
    }
}

fn operand<'a>(o: &'a Operand, item: Option<&'a Item>) -> Option<Cow<'a, AttributeValue>> {
    match o {
        Operand::Path(p) => item.and_then(|i| get(i, p)).map(Cow::Borrowed),
        Operand::Value(v) => Some(Cow::Borrowed(v)),
        Operand::Size(inner) => {
            let v = operand(inner, item)?;
            let n = size_of(&v)?;
            let n = u64::try_from(n).ok()?;
            Some(Cow::Owned(AttributeValue::N(Number::from(n))))
        }
    }
}

fn contains(haystack: &AttributeValue, needle: &AttributeValue) -> bool {
    match (haystack, needle) {
        (AttributeValue::S(s), AttributeValue::S(n)) => s.contains(n.as_str()),
        (AttributeValue::B(s), AttributeValue::B(n)) => {
            n.is_empty() || s.windows(n.len()).any(|w| w == n.as_slice())
        }
        (AttributeValue::Ss(s), AttributeValue::S(n)) => s.iter().any(|x| x == n),
        (AttributeValue::Ns(s), AttributeValue::N(n)) => s.iter().any(|x| x == n),
        (AttributeValue::Bs(s), AttributeValue::B(n)) => s.iter().any(|x| x == n),
        (AttributeValue::L(l), n) => l.iter().any(|x| values_equal(x, n)),
        _ => false,
    }
}

fn begins_with(a: &AttributeValue, prefix: &AttributeValue) -> bool {
    match (a, prefix) {
        (AttributeValue::S(s), AttributeValue::S(p)) => s.starts_with(p.as_str()),
        (AttributeValue::B(s), AttributeValue::B(p)) => s.starts_with(p),
        _ => false,
    }
}

pub(crate) fn eval(c: &Cond, item: Option<&Item>) -> bool {
    match c {
        Cond::Cmp(op, a, b) => {
            let (x, y) = (operand(a, item), operand(b, item));
            if *op == CmpOp::Ne {
                // `a <> :v` holds when a is absent.
                return !matches!((&x, &y), (Some(x), Some(y)) if values_equal(x, y));
            }
            let (Some(x), Some(y)) = (x, y) else {
                return false;
            };
            match op {
                CmpOp::Eq => values_equal(&x, &y),
                CmpOp::Lt => compare_values(&x, &y) == Some(Ordering::Less),
                CmpOp::Le => matches!(
                    compare_values(&x, &y),
                    Some(Ordering::Less | Ordering::Equal)
                ),
                CmpOp::Gt => compare_values(&x, &y) == Some(Ordering::Greater),
                CmpOp::Ge => matches!(
                    compare_values(&x, &y),
                    Some(Ordering::Greater | Ordering::Equal)
                ),
                CmpOp::Ne => false,
            }
        }
        Cond::Between(a, lo, hi) => {
            let (Some(x), Some(lo), Some(hi)) =
                (operand(a, item), operand(lo, item), operand(hi, item))
            else {
                return false;
            };
            matches!(
                compare_values(&x, &lo),
                Some(Ordering::Greater | Ordering::Equal)
            ) && matches!(
                compare_values(&x, &hi),
                Some(Ordering::Less | Ordering::Equal)
            )
        }
        Cond::In(a, list) => match operand(a, item) {
            Some(x) => list
                .iter()
                .any(|o| operand(o, item).is_some_and(|y| values_equal(&x, &y))),
            None => false,
        },
        Cond::AttributeExists(p) => item.and_then(|i| get(i, p)).is_some(),
        Cond::AttributeNotExists(p) => item.and_then(|i| get(i, p)).is_none(),
        Cond::AttributeType(p, t) => item
            .and_then(|i| get(i, p))
            .is_some_and(|v| v.type_name() == t),
        Cond::BeginsWith(a, b) => match (operand(a, item), operand(b, item)) {
            (Some(x), Some(y)) => begins_with(&x, &y),
            _ => false,
        },
        Cond::Contains(a, b) => match (operand(a, item), operand(b, item)) {
            (Some(x), Some(y)) => contains(&x, &y),
            _ => false,
        },
        Cond::Not(x) => !eval(x, item),
        Cond::And(x, y) => eval(x, item) && eval(y, item),
        Cond::Or(x, y) => eval(x, item) || eval(y, item),
    }
}

impl Condition {
    /// Evaluate on an item; `None` means the item does not exist (every path is absent).
    /// Type mismatches make a comparison false, never an error.
    pub fn evaluate(&self, item: Option<&Item>) -> Result<bool, ExprError> {
        Ok(eval(&self.root, item))
    }
}
