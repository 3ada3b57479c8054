//! Condition operators: compiled once (typed values, parsed CIDRs/dates/numbers, patterns with
//! variables), evaluated against the request context without allocation.
//!
//! Semantics (IAM User Guide, "Condition operators", "Multivalued context keys", "Policy
//! variables"):
//! - several values for one key: OR for a positive operator, NOR for a negated one
//!   (`StringNotEquals`, `NotIpAddress`, ...);
//! - an absent key makes a positive operator false and a negated operator true; `...IfExists`
//!   makes any operator true; `Null` tests presence;
//! - `ForAllValues:` is true when every request value satisfies the operator (vacuously true for
//!   an absent key or an empty set); `ForAnyValue:` when at least one does (false when absent or
//!   empty);
//! - a multivalued key under a plain operator is read like `ForAnyValue:` for a positive
//!   operator and as "no value matches" for a negated one (AWS leaves this undocumented);
//! - a condition value whose variable has no value and no default equals nothing;
//! - a request value that cannot be read as the operator's type (a non-number under
//!   `NumericEquals`) matches no policy value.

use super::eval::{Ctx, Val};
use super::json::JVal;
use super::policy::PolicyProblem;
use super::values::{parse_instant, Cidr, Decimal, Instant};
use super::variables::ContextKey;
use super::wildcard::{ArnParts, ArnPattern, Fold, Pattern, Tri};
use base64::Engine as _;
use std::cmp::Ordering;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Qual {
    Plain,
    ForAllValues,
    ForAnyValue,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cmp {
    Eq,
    Lt,
    Le,
    Gt,
    Ge,
}

impl Cmp {
    fn holds(self, o: Ordering) -> bool {
        match self {
            Cmp::Eq => o == Ordering::Equal,
            Cmp::Lt => o == Ordering::Less,
            Cmp::Le => o != Ordering::Greater,
            Cmp::Gt => o == Ordering::Greater,
            Cmp::Ge => o != Ordering::Less,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Family {
    Str(Fold, bool), // fold, wildcards
    Num(Cmp),
    Date(Cmp),
    Bool,
    Binary,
    Ip,
    Arn,
    Null,
}

// Every base operator: (name, family, negated). Source: IAM User Guide, "IAM JSON policy
// elements: Condition operators".
const OPERATORS: &[(&str, Family, bool)] = &[
    ("StringEquals", Family::Str(Fold::Exact, false), false),
    ("StringNotEquals", Family::Str(Fold::Exact, false), true),
    (
        "StringEqualsIgnoreCase",
        Family::Str(Fold::Unicode, false),
        false,
    ),
    (
        "StringNotEqualsIgnoreCase",
        Family::Str(Fold::Unicode, false),
        true,
    ),
    ("StringLike", Family::Str(Fold::Exact, true), false),
    ("StringNotLike", Family::Str(Fold::Exact, true), true),
    ("NumericEquals", Family::Num(Cmp::Eq), false),
    ("NumericNotEquals", Family::Num(Cmp::Eq), true),
    ("NumericLessThan", Family::Num(Cmp::Lt), false),
    ("NumericLessThanEquals", Family::Num(Cmp::Le), false),
    ("NumericGreaterThan", Family::Num(Cmp::Gt), false),
    ("NumericGreaterThanEquals", Family::Num(Cmp::Ge), false),
    ("DateEquals", Family::Date(Cmp::Eq), false),
    ("DateNotEquals", Family::Date(Cmp::Eq), true),
    ("DateLessThan", Family::Date(Cmp::Lt), false),
    ("DateLessThanEquals", Family::Date(Cmp::Le), false),
    ("DateGreaterThan", Family::Date(Cmp::Gt), false),
    ("DateGreaterThanEquals", Family::Date(Cmp::Ge), false),
    ("Bool", Family::Bool, false),
    ("BinaryEquals", Family::Binary, false),
    ("IpAddress", Family::Ip, false),
    ("NotIpAddress", Family::Ip, true),
    ("ArnEquals", Family::Arn, false),
    ("ArnLike", Family::Arn, false),
    ("ArnNotEquals", Family::Arn, true),
    ("ArnNotLike", Family::Arn, true),
    ("Null", Family::Null, false),
];

#[derive(Debug, Clone, PartialEq)]
enum Values {
    Str(Vec<Pattern>),
    Num(Vec<Box<str>>), // validated decimals, re-borrowed at evaluation
    Date(Vec<Instant>),
    Bool(Vec<bool>),
    Binary(Vec<Vec<u8>>),
    Ip(Vec<Cidr>),
    Arn(Vec<ArnPattern>),
    Null(Vec<bool>),
}

/// One (operator, key, values) triple of a Condition block.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Condition {
    qual: Qual,
    family: Family,
    negated: bool,
    if_exists: bool,
    pub(crate) key: ContextKey,
    values: Values,
}

/// A parsed operator name (`ForAnyValue:StringLikeIfExists`).
struct Operator {
    qual: Qual,
    family: Family,
    negated: bool,
    if_exists: bool,
}

fn strip_prefix_ci<'s>(s: &'s str, p: &str) -> Option<&'s str> {
    let head = s.get(..p.len())?;
    if head.eq_ignore_ascii_case(p) {
        s.get(p.len()..)
    } else {
        None
    }
}

fn parse_operator(name: &str) -> Option<Operator> {
    let (qual, rest) = if let Some(r) = strip_prefix_ci(name, "ForAllValues:") {
        (Qual::ForAllValues, r)
    } else if let Some(r) = strip_prefix_ci(name, "ForAnyValue:") {
        (Qual::ForAnyValue, r)
    } else {
        (Qual::Plain, name)
    };
    let lookup = |base: &str| {
        OPERATORS
            .iter()
            .find(|(n, _, _)| n.eq_ignore_ascii_case(base))
            .map(|(_, f, neg)| (*f, *neg))
    };
    let (family, negated, if_exists) = match lookup(rest) {
        Some((f, n)) => (f, n, false),
        None => {
            let cut = rest.len().checked_sub("IfExists".len())?;
            let (base, suffix) = (rest.get(..cut)?, rest.get(cut..)?);
            if !suffix.eq_ignore_ascii_case("IfExists") {
                return None;
            }
            let (f, n) = lookup(base)?;
            (f, n, true)
        }
    };
    if family == Family::Null && (if_exists || qual != Qual::Plain) {
        return None;
    }
    Some(Operator {
        qual,
        family,
        negated,
        if_exists,
    })
}

impl Condition {
    /// Compiles one key of an operator block; problems are reported at `path`.
    pub(crate) fn compile(
        op_name: &str,
        op_path: &str,
        key: &str,
        value: &JVal,
        vars: bool,
        problems: &mut Vec<PolicyProblem>,
    ) -> Option<Condition> {
        let op = match parse_operator(op_name) {
            Some(op) => op,
            None => {
                problems.push(PolicyProblem::new(
                    op_path,
                    format!("unknown condition operator \"{op_name}\""),
                ));
                return None;
            }
        };
        let path = format!("{op_path}.{key}");
        if !ContextKey::is_well_formed(key) {
            problems.push(PolicyProblem::new(
                &path,
                format!("condition key \"{key}\" must have the form vendor:name"),
            ));
            return None;
        }
        let raw: Vec<String> = match value {
            JVal::Arr(items) => {
                let mut out = Vec::with_capacity(items.len());
                for (i, it) in items.iter().enumerate() {
                    match it.scalar_text() {
                        Some(t) => out.push(t),
                        None => problems.push(PolicyProblem::new(
                            &format!("{path}[{i}]"),
                            format!(
                                "condition value must be a string, number or boolean, not {}",
                                it.type_name()
                            ),
                        )),
                    }
                }
                out
            }
            other => match other.scalar_text() {
                Some(t) => vec![t],
                None => {
                    problems.push(PolicyProblem::new(
                        &path,
                        format!("condition value must be a string, number, boolean or an array of them, not {}", other.type_name()),
                    ));
                    return None;
                }
            },
        };
        let before = problems.len();
        let bad = |problems: &mut Vec<PolicyProblem>, v: &str, what: &str| {
            problems.push(PolicyProblem::new(
                &path,
                format!("{op_name} requires {what}; \"{v}\" is not one"),
            ));
        };
        let values = match op.family {
            Family::Str(_, wild) => {
                Values::Str(raw.iter().map(|v| Pattern::new(v, vars, wild)).collect())
            }
            Family::Num(_) => {
                for v in &raw {
                    if Decimal::parse(v).is_none() {
                        bad(problems, v, "decimal numbers");
                    }
                }
                Values::Num(raw.iter().map(|v| v.trim().into()).collect())
            }
            Family::Date(_) => Values::Date(
                raw.iter()
                    .filter_map(|v| {
                        let d = parse_instant(v);
                        if d.is_none() {
                            bad(problems, v, "ISO 8601 dates or epoch seconds");
                        }
                        d
                    })
                    .collect(),
            ),
            Family::Bool | Family::Null => {
                let mut out = Vec::new();
                for v in &raw {
                    if v.eq_ignore_ascii_case("true") {
                        out.push(true);
                    } else if v.eq_ignore_ascii_case("false") {
                        out.push(false);
                    } else {
                        bad(problems, v, "\"true\" or \"false\"");
                    }
                }
                if op.family == Family::Null {
                    Values::Null(out)
                } else {
                    Values::Bool(out)
                }
            }
            Family::Binary => Values::Binary(
                raw.iter()
                    .filter_map(|v| {
                        let d = base64::engine::general_purpose::STANDARD.decode(v).ok();
                        if d.is_none() {
                            bad(problems, v, "base64-encoded values");
                        }
                        d
                    })
                    .collect(),
            ),
            Family::Ip => Values::Ip(
                raw.iter()
                    .filter_map(|v| {
                        let c = Cidr::parse(v);
                        if c.is_none() {
                            bad(problems, v, "IPv4 or IPv6 addresses in CIDR notation");
                        }
                        c
                    })
                    .collect(),
            ),
            Family::Arn => Values::Arn(
                raw.iter()
                    .filter_map(|v| {
                        let a = ArnPattern::new(v, vars);
                        if a.is_none() {
                            bad(
                                problems,
                                v,
                                "ARNs (\"*\" or arn:partition:service:region:account:resource)",
                            );
                        }
                        a
                    })
                    .collect(),
            ),
        };
        if problems.len() != before {
            return None;
        }
        Some(Condition {
            qual: op.qual,
            family: op.family,
            negated: op.negated,
            if_exists: op.if_exists,
            key: ContextKey::new(key),
            values,
        })
    }

    /// Every context key this condition reads (its key and the variables in its values).
    pub(crate) fn keys(&self) -> Vec<&ContextKey> {
        let mut out = vec![&self.key];
        match &self.values {
            Values::Str(ps) => out.extend(ps.iter().flat_map(Pattern::var_keys)),
            Values::Arn(ps) => out.extend(ps.iter().flat_map(ArnPattern::var_keys)),
            _ => {}
        }
        out
    }

    pub(crate) fn eval<'x>(&'x self, ctx: &Ctx<'x>) -> bool {
        let val = ctx.get(&self.key);
        if let Values::Null(wants) = &self.values {
            let absent = val.is_none();
            return wants.contains(&absent);
        }
        let val = match val {
            Some(v) => v,
            None => {
                return self.if_exists
                    || match self.qual {
                        Qual::ForAllValues => true,
                        Qual::ForAnyValue => false,
                        Qual::Plain => self.negated,
                    }
            }
        };
        let mut satisfies = |v: &str| self.positive(v, ctx) != self.negated;
        match self.qual {
            Qual::ForAllValues => all_values(val, &mut satisfies),
            Qual::ForAnyValue => any_value(val, &mut satisfies),
            Qual::Plain => {
                let hit = any_value(val, &mut |v| self.positive(v, ctx));
                hit != self.negated
            }
        }
    }

    /// True when request value `v` matches at least one policy value under the positive
    /// form of the operator.
    fn positive<'x>(&'x self, v: &str, ctx: &Ctx<'x>) -> bool {
        match (&self.values, self.family) {
            (Values::Str(ps), Family::Str(fold, _)) => ps
                .iter()
                .any(|p| p.matches(v, fold, &mut |k| ctx.get_str(k)) == Tri::Match),
            (Values::Num(ns), Family::Num(cmp)) => match Decimal::parse(v) {
                Some(d) => ns
                    .iter()
                    .any(|n| Decimal::parse(n).is_some_and(|n| cmp.holds(d.compare(&n)))),
                None => false,
            },
            (Values::Date(ds), Family::Date(cmp)) => match parse_instant(v) {
                Some(t) => ds.iter().any(|d| cmp.holds(t.cmp(d))),
                None => false,
            },
            (Values::Bool(bs), _) => {
                let b = if v.eq_ignore_ascii_case("true") {
                    true
                } else if v.eq_ignore_ascii_case("false") {
                    false
                } else {
                    return false;
                };
                bs.contains(&b)
            }
            (Values::Binary(bs), _) => match base64::engine::general_purpose::STANDARD.decode(v) {
                Ok(bytes) => bs.contains(&bytes),
                Err(_) => false,
            },
            (Values::Ip(cs), _) => match v.trim().parse() {
                Ok(ip) => cs.iter().any(|c| c.contains(ip)),
                Err(_) => false,
            },
            (Values::Arn(ps), _) => {
                let parts = ArnParts::split(v);
                ps.iter()
                    .any(|p| p.matches(parts.as_ref(), &mut |k| ctx.get_str(k)) == Tri::Match)
            }
            _ => false,
        }
    }
}

fn bool_text(b: bool) -> &'static str {
    if b {
        "true"
    } else {
        "false"
    }
}

fn any_value(v: Val<'_>, f: &mut dyn FnMut(&str) -> bool) -> bool {
    match v {
        Val::Str(s) => f(s),
        Val::Bool(b) => f(bool_text(b)),
        Val::List(l) => l.iter().any(|s| f(s)),
    }
}

fn all_values(v: Val<'_>, f: &mut dyn FnMut(&str) -> bool) -> bool {
    match v {
        Val::Str(s) => f(s),
        Val::Bool(b) => f(bool_text(b)),
        Val::List(l) => l.iter().all(|s| f(s)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operator_names() {
        assert!(parse_operator("StringEquals").is_some());
        assert!(parse_operator("ForAllValues:StringLikeIfExists")
            .is_some_and(|o| o.if_exists && o.qual == Qual::ForAllValues));
        assert!(parse_operator("NotIpAddressIfExists").is_some_and(|o| o.negated));
        assert!(parse_operator("NullIfExists").is_none());
        assert!(parse_operator("ForAnyValue:Null").is_none());
        assert!(parse_operator("StringEqualz").is_none());
        assert!(parse_operator("IfExists").is_none());
        assert!(parse_operator("").is_none());
    }
}
