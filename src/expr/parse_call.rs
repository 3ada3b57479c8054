//! Condition functions (attribute_exists, attribute_type, begins_with, contains, size) and
//! the operand checks DynamoDB applies to them at parse time.

use super::ast::{Cond, Operand, Path};
use super::lexer::Tok;
use super::parse::{Parser, Rank};
use super::ExprError;
use crate::protocol::attr::AttributeValue;

impl Parser<'_, '_, '_> {
    /// `name(args)` in a condition.
    pub(crate) fn call(&mut self) -> Result<Call, ExprError> {
        let name = self.cur_text();
        self.bump();
        self.expect(Tok::LParen)?;
        self.enter()?;
        let mut args = vec![self.operand()?];
        while *self.cur() == Tok::Comma {
            self.bump();
            args.push(self.operand()?);
        }
        self.leave();
        self.expect(Tok::RParen)?;
        self.count_op();
        let arity = match name {
            "attribute_exists" | "attribute_not_exists" | "size" => 1,
            "attribute_type" | "begins_with" | "contains" => 2,
            "if_not_exists" | "list_append" => {
                self.defer(
                    Rank::UnknownFunction,
                    format!(
                        "The function is not allowed in a condition expression; function: {name}"
                    ),
                );
                return Ok(Call::Cond(
                    Cond::AttributeExists(Path::attr("")),
                    name.to_string(),
                ));
            }
            _ => {
                self.defer(
                    Rank::UnknownFunction,
                    format!("Invalid function name; function: {name}"),
                );
                // Either shape parses on; the deferred error outranks any misuse report.
                return Ok(Call::Cond(
                    Cond::AttributeExists(Path::attr("")),
                    name.to_string(),
                ));
            }
        };
        let dummy = || Call::Op(Operand::Value(AttributeValue::Null));
        if args.len() != arity {
            self.defer(
                Rank::Semantic,
                format!(
                    "Incorrect number of operands for operator or function; operator or function: {name}, number of operands: {}",
                    args.len()
                ),
            );
            return Ok(if name == "size" {
                dummy()
            } else {
                Call::Cond(Cond::AttributeExists(Path::attr("")), name.to_string())
            });
        }
        let mut it = args.into_iter();
        let (a, b) = match (it.next(), it.next()) {
            (Some(a), b) => (a, b),
            (None, _) => return Ok(dummy()),
        };
        let b = b.unwrap_or(Operand::Value(AttributeValue::Null));
        if arity == 2 {
            self.check_distinct(name, &a, &b);
        }
        let cond = match name {
            "attribute_exists" | "attribute_not_exists" => {
                let p = self.require_path(name, a);
                if name == "attribute_exists" {
                    Cond::AttributeExists(p)
                } else {
                    Cond::AttributeNotExists(p)
                }
            }
            "attribute_type" => {
                let p = self.require_path(name, a);
                let t = match b {
                    Operand::Value(AttributeValue::S(s)) => {
                        if !TYPE_NAMES.contains(&s.as_str()) {
                            self.defer(
                                Rank::Semantic,
                                format!(
                                    "Invalid attribute type name found; type: {s}, valid types: {{B,NULL,SS,BOOL,L,BS,N,NS,S,M}}"
                                ),
                            );
                        }
                        s
                    }
                    other => {
                        let t = match &other {
                            Operand::Value(v) => v.type_name(),
                            Operand::Size(_) => "N",
                            Operand::Path(_) => "{NS,SS,L,BS,N,M,B,BOOL,NULL,S}",
                        };
                        self.operand_type_error(name, t);
                        String::from("S")
                    }
                };
                Cond::AttributeType(p, t)
            }
            "begins_with" => {
                for o in [&a, &b] {
                    if let Some(t) = static_type(o) {
                        if t != "S" && t != "B" {
                            self.operand_type_error(name, t);
                        }
                    }
                }
                Cond::BeginsWith(a, b)
            }
            "contains" => Cond::Contains(a, b),
            _ => {
                // size
                if let Some(t) = static_type(&a) {
                    if matches!(t, "N" | "BOOL" | "NULL") {
                        self.operand_type_error(name, t);
                    }
                }
                return Ok(Call::Op(Operand::Size(Box::new(a))));
            }
        };
        Ok(Call::Cond(cond, name.to_string()))
    }

    pub(crate) fn require_path(&mut self, func: &str, o: Operand) -> Path {
        match o {
            Operand::Path(p) => p,
            _ => {
                self.defer(
                    Rank::Semantic,
                    format!("Operator or function requires a document path; operator or function: {func}"),
                );
                Path::attr("")
            }
        }
    }

    pub fn operand_type_error(&mut self, func: &str, t: &str) {
        self.defer(
            Rank::Semantic,
            format!(
                "Incorrect operand type for operator or function; operator or function: {func}, operand type: {t}"
            ),
        );
    }

    pub(crate) fn check_distinct(&mut self, op: &str, a: &Operand, b: &Operand) {
        if let (Operand::Path(x), Operand::Path(y)) = (a, b) {
            if x == y {
                self.defer(
                    Rank::Semantic,
                    format!(
                        "The first operand must be distinct from the remaining operands for this operator or function; operator: {op}, first operand: {x}"
                    ),
                );
            }
        }
    }

    /// `<`, `<=`, `>`, `>=` and BETWEEN only order N, S and B.
    pub(crate) fn check_ordered(&mut self, op: &str, o: &Operand) {
        if let Some(t) = static_type(o) {
            if !matches!(t, "N" | "S" | "B") {
                self.operand_type_error(op, t);
            }
        }
    }

    pub(crate) fn check_between(&mut self, lo: &Operand, hi: &Operand) {
        let (Operand::Value(x), Operand::Value(y)) = (lo, hi) else {
            return;
        };
        let show = |v: &AttributeValue| {
            format!("AttributeValue: {{{}:{}}}", v.type_name(), scalar_text(v))
        };
        if x.type_name() != y.type_name() {
            self.defer(
                Rank::Semantic,
                format!(
                    "The BETWEEN operator requires same data type for lower and upper bounds; lower bound operand: {}, upper bound operand: {}",
                    show(x),
                    show(y)
                ),
            );
        } else if super::eval::compare_values(x, y) == Some(std::cmp::Ordering::Greater) {
            self.defer(
                Rank::Semantic,
                format!(
                    "The BETWEEN operator requires upper bound to be greater than or equal to lower bound; lower bound operand: {}, upper bound operand: {}",
                    show(x),
                    show(y)
                ),
            );
        }
    }
}

pub(crate) enum Call {
    Cond(Cond, String),
    Op(Operand),
}

/// attribute_type's accepted type names.
pub(crate) const TYPE_NAMES: [&str; 10] =
    ["S", "SS", "N", "NS", "B", "BS", "BOOL", "NULL", "L", "M"];

/// The type of an operand known at parse time (values and size()).
pub(crate) fn static_type(o: &Operand) -> Option<&'static str> {
    match o {
        Operand::Value(v) => Some(v.type_name()),
        Operand::Size(_) => Some("N"),
        Operand::Path(_) => None,
    }
}

fn scalar_text(v: &AttributeValue) -> String {
    use base64::Engine;
    match v {
        AttributeValue::S(s) => s.clone(),
        AttributeValue::N(n) => n.to_string(),
        AttributeValue::B(b) => base64::engine::general_purpose::STANDARD.encode(b),
        other => other.type_name().to_string(),
    }
}
