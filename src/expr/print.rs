//! AST -> expression text, with every name and value as a placeholder (so that any attribute
//! name, reserved or not, prints safely). `parse(print(ast)) == ast` is a tested property.

use std::collections::HashMap;

use super::ast::{Cond, Operand, Path, PathElem, SetValue, UpdOperand};
use super::parse::{Condition, Update};
use crate::protocol::attr::AttributeValue;

/// An expression string with the ExpressionAttributeNames / Values it needs.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Printed {
    pub expr: String,
    pub names: HashMap<String, String>,
    pub values: HashMap<String, AttributeValue>,
}

#[derive(Default)]
struct Printer {
    out: Printed,
    by_name: HashMap<String, String>,
}

impl Printer {
    fn name(&mut self, n: &str) -> String {
        if let Some(k) = self.by_name.get(n) {
            return k.clone();
        }
        let k = format!("#n{}", self.by_name.len());
        self.by_name.insert(n.to_string(), k.clone());
        self.out.names.insert(k.clone(), n.to_string());
        k
    }

    fn value(&mut self, v: &AttributeValue) -> String {
        let k = format!(":v{}", self.out.values.len());
        self.out.values.insert(k.clone(), v.clone());
        k
    }

    fn path(&mut self, p: &Path) -> String {
        let mut s = String::new();
        for (i, e) in p.0.iter().enumerate() {
            match e {
                PathElem::Attr(a) => {
                    if i > 0 {
                        s.push('.');
                    }
                    let k = self.name(a);
                    s.push_str(&k);
                }
                PathElem::Index(n) => s.push_str(&format!("[{n}]")),
            }
        }
        s
    }

    fn operand(&mut self, o: &Operand) -> String {
        match o {
            Operand::Path(p) => self.path(p),
            Operand::Value(v) => self.value(v),
            Operand::Size(x) => format!("size({})", self.operand(x)),
        }
    }

    fn cond(&mut self, c: &Cond) -> String {
        match c {
            Cond::Cmp(op, a, b) => {
                let a = self.operand(a);
                let b = self.operand(b);
                format!("{a} {} {b}", op.symbol())
            }
            Cond::Between(a, lo, hi) => {
                let a = self.operand(a);
                let lo = self.operand(lo);
                let hi = self.operand(hi);
                format!("{a} BETWEEN {lo} AND {hi}")
            }
            Cond::In(a, list) => {
                let a = self.operand(a);
                let items: Vec<String> = list.iter().map(|o| self.operand(o)).collect();
                format!("{a} IN ({})", items.join(", "))
            }
            Cond::AttributeExists(p) => format!("attribute_exists({})", self.path(p)),
            Cond::AttributeNotExists(p) => format!("attribute_not_exists({})", self.path(p)),
            Cond::AttributeType(p, t) => {
                let p = self.path(p);
                let v = self.value(&AttributeValue::S(t.clone()));
                format!("attribute_type({p}, {v})")
            }
            Cond::BeginsWith(a, b) => {
                let a = self.operand(a);
                let b = self.operand(b);
                format!("begins_with({a}, {b})")
            }
            Cond::Contains(a, b) => {
                let a = self.operand(a);
                let b = self.operand(b);
                format!("contains({a}, {b})")
            }
            Cond::Not(x) => {
                let inner = self.cond(x);
                match **x {
                    Cond::And(..) | Cond::Or(..) => format!("NOT ({inner})"),
                    _ => format!("NOT {inner}"),
                }
            }
            // AND and OR parse left-associative, AND binding tighter: parenthesize exactly
            // where the tree differs from that.
            Cond::And(x, y) => {
                let l = self.cond(x);
                let r = self.cond(y);
                let l = if matches!(**x, Cond::Or(..)) {
                    format!("({l})")
                } else {
                    l
                };
                let r = if matches!(**y, Cond::Or(..) | Cond::And(..)) {
                    format!("({r})")
                } else {
                    r
                };
                format!("{l} AND {r}")
            }
            Cond::Or(x, y) => {
                let l = self.cond(x);
                let r = self.cond(y);
                let r = if matches!(**y, Cond::Or(..)) {
                    format!("({r})")
                } else {
                    r
                };
                format!("{l} OR {r}")
            }
        }
    }

    fn upd_operand(&mut self, o: &UpdOperand) -> String {
        match o {
            UpdOperand::Path(p) => self.path(p),
            UpdOperand::Value(v) => self.value(v),
            UpdOperand::IfNotExists(p, v) => {
                let p = self.path(p);
                let v = self.upd_operand(v);
                format!("if_not_exists({p}, {v})")
            }
            UpdOperand::ListAppend(a, b) => {
                let a = self.upd_operand(a);
                let b = self.upd_operand(b);
                format!("list_append({a}, {b})")
            }
        }
    }
}

/// Print a condition.
pub fn print_condition(c: &Condition) -> Printed {
    let mut p = Printer::default();
    p.out.expr = p.cond(c.cond());
    p.out
}

/// Print an update as `SET .. REMOVE .. ADD .. DELETE ..` (empty sections omitted).
pub fn print_update(u: &Update) -> Printed {
    let mut p = Printer::default();
    let mut sections = Vec::new();
    if !u.set.is_empty() {
        let mut acts = Vec::new();
        for (path, v) in &u.set {
            let target = p.path(path);
            let rhs = match v {
                SetValue::Operand(o) => p.upd_operand(o),
                SetValue::Plus(a, b) => {
                    let a = p.upd_operand(a);
                    let b = p.upd_operand(b);
                    format!("{a} + {b}")
                }
                SetValue::Minus(a, b) => {
                    let a = p.upd_operand(a);
                    let b = p.upd_operand(b);
                    format!("{a} - {b}")
                }
            };
            acts.push(format!("{target} = {rhs}"));
        }
        sections.push(format!("SET {}", acts.join(", ")));
    }
    if !u.remove.is_empty() {
        let acts: Vec<String> = u.remove.iter().map(|x| p.path(x)).collect();
        sections.push(format!("REMOVE {}", acts.join(", ")));
    }
    for (kw, list) in [("ADD", &u.add), ("DELETE", &u.delete)] {
        if !list.is_empty() {
            let acts: Vec<String> = list
                .iter()
                .map(|(path, v)| {
                    let t = p.path(path);
                    let v = p.value(v);
                    format!("{t} {v}")
                })
                .collect();
            sections.push(format!("{kw} {}", acts.join(", ")));
        }
    }
    p.out.expr = sections.join(" ");
    p.out
}
