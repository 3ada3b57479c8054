//! The recursive-descent parser shared by all expression kinds, and the condition grammar.
//!
//! DynamoDB reports a syntax error before any semantic one, and among semantic errors it has a
//! fixed order (redundant parentheses, unknown function, misused function, reserved word, then
//! placeholders/operands in source order). So syntax errors return immediately, and semantic
//! ones are recorded with a rank and reported once the whole string has parsed.

use super::ast::{CmpOp, Cond, Operand, Path, PathElem};
use super::lexer::{lex, Tok, Token};
use super::names::{lookup_name, lookup_value, Usage};
use super::reserved::is_reserved;
use super::{
    ExprContext, ExprError, ExprKind, MAX_EXPRESSION_BYTES, MAX_IN_OPERANDS, MAX_NESTING,
    MAX_OPERATORS, MAX_PATH_DEPTH,
};
use crate::protocol::attr::AttributeValue;

use super::parse_call::Call;
pub use super::parse_update::{
    parse_key_condition, parse_update, KeyCondition, SortCondition, Update,
};

/// A parsed ConditionExpression or FilterExpression.
#[derive(Clone, Debug, PartialEq)]
pub struct Condition {
    pub(crate) root: Cond,
}

impl Condition {
    /// Wrap a hand-built (or legacy-translated) condition tree.
    pub fn from_cond(root: Cond) -> Condition {
        Condition { root }
    }

    pub fn cond(&self) -> &Cond {
        &self.root
    }

    /// Every top-level attribute the condition reads (sorted, unique): for IAM's
    /// `dynamodb:Attributes` and for fetching only what is needed.
    pub fn top_level_attributes(&self) -> Vec<String> {
        let mut paths = Vec::new();
        super::ast::cond_paths(&self.root, &mut paths);
        super::ast::top_levels(paths)
    }
}

/// A parsed ProjectionExpression (or legacy AttributesToGet).
#[derive(Clone, Debug, PartialEq)]
pub struct Projection {
    pub(crate) paths: Vec<Path>,
}

impl Projection {
    pub fn from_paths(paths: Vec<Path>) -> Projection {
        Projection { paths }
    }

    pub fn paths(&self) -> &[Path] {
        &self.paths
    }

    pub fn top_level_attributes(&self) -> Vec<String> {
        super::ast::top_levels(&self.paths)
    }

    /// The item restricted to the projected paths (list elements keep their relative order).
    pub fn apply(&self, item: &crate::protocol::attr::Item) -> crate::protocol::attr::Item {
        super::path::project(item, &self.paths)
    }
}

/// Rank of a deferred (semantic) error: lower is reported first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Rank {
    Parens,
    UnknownFunction,
    MisusedFunction,
    Reserved,
    Semantic,
    Limit,
}

pub(crate) struct Parser<'s, 'c, 'u> {
    pub src: &'s str,
    pub toks: Vec<Token>,
    pub pos: usize,
    pub kind: ExprKind,
    pub ctx: &'c ExprContext<'c>,
    pub usage: &'u mut Usage,
    deferred: Option<(Rank, ExprError)>,
    depth: usize,
    ops: usize,
}

/// The result of parsing inside a condition: a condition, or an operand that still waits for
/// its comparator (`(a) = b`). `wrapped` is true when the node is exactly `( ... )`.
pub(crate) struct Parsed {
    node: Node,
    wrapped: bool,
}

enum Node {
    Cond(Cond),
    Op(Operand),
}

impl<'s, 'c, 'u> Parser<'s, 'c, 'u> {
    /// Checks size and emptiness, then tokenizes.
    pub fn new(
        src: &'s str,
        kind: ExprKind,
        ctx: &'c ExprContext<'c>,
        usage: &'u mut Usage,
    ) -> Result<Self, ExprError> {
        if src.len() > MAX_EXPRESSION_BYTES {
            return Err(ExprError::invalid(
                kind,
                format!(
                    "Expression size has exceeded the maximum allowed size; expression size: {}",
                    src.len()
                ),
            ));
        }
        if src.trim().is_empty() {
            return Err(ExprError::invalid(kind, "The expression can not be empty;"));
        }
        Ok(Parser {
            src,
            toks: lex(src),
            pos: 0,
            kind,
            ctx,
            usage,
            deferred: None,
            depth: 0,
            ops: 0,
        })
    }

    // ---- tokens -------------------------------------------------------------------------

    pub fn cur(&self) -> &Tok {
        self.toks.get(self.pos).map_or(&Tok::Eof, |t| &t.tok)
    }

    pub fn peek_tok(&self, n: usize) -> &Tok {
        self.toks.get(self.pos + n).map_or(&Tok::Eof, |t| &t.tok)
    }

    pub fn text(&self, idx: usize) -> &'s str {
        self.toks
            .get(idx)
            .and_then(|t| self.src.get(t.start..t.end))
            .unwrap_or("")
    }

    pub fn cur_text(&self) -> &'s str {
        self.text(self.pos)
    }

    pub fn bump(&mut self) {
        if self.pos + 1 < self.toks.len() {
            self.pos += 1;
        }
    }

    /// Is the current token the keyword `kw` (case-insensitive)?
    pub fn at_kw(&self, kw: &str) -> bool {
        *self.cur() == Tok::Ident && self.cur_text().eq_ignore_ascii_case(kw)
    }

    pub fn expect(&mut self, t: Tok) -> Result<(), ExprError> {
        if *self.cur() == t {
            self.bump();
            Ok(())
        } else {
            Err(self.syntax_error())
        }
    }

    pub fn expect_eof(&self) -> Result<(), ExprError> {
        if *self.cur() == Tok::Eof {
            Ok(())
        } else {
            Err(self.syntax_error())
        }
    }

    /// DynamoDB's syntax error at the current token: the token, and the source from the
    /// previous token to the next one.
    pub fn syntax_error(&self) -> ExprError {
        let i = self.pos;
        let tok = self.toks.get(i);
        let is_eof = tok.is_none_or(|t| t.tok == Tok::Eof);
        let token = if is_eof {
            "<EOF>".to_string()
        } else {
            self.text(i).to_string()
        };
        let start = match i.checked_sub(1).and_then(|p| self.toks.get(p)) {
            Some(p) => p.start,
            None => tok.map_or(self.src.len(), |t| t.start),
        };
        let end = if is_eof {
            i.checked_sub(1)
                .and_then(|p| self.toks.get(p))
                .map_or(start, |p| p.end)
        } else {
            match self.toks.get(i + 1) {
                Some(n) if n.tok != Tok::Eof => n.end,
                _ => tok.map_or(start, |t| t.end),
            }
        };
        let near = self.src.get(start..end).unwrap_or("");
        ExprError::invalid(
            self.kind,
            format!("Syntax error; token: \"{token}\", near: \"{near}\""),
        )
    }

    // ---- bookkeeping ----------------------------------------------------------------------

    pub fn defer(&mut self, rank: Rank, detail: String) {
        let replace = match &self.deferred {
            None => true,
            Some((r, _)) => rank < *r,
        };
        if replace {
            self.deferred = Some((rank, ExprError::invalid(self.kind, detail)));
        }
    }

    pub fn count_op(&mut self) {
        self.ops = self.ops.saturating_add(1);
        if self.ops == MAX_OPERATORS + 1 {
            self.defer(
                Rank::Limit,
                format!(
                    "The expression contains too many operators or functions; maximum: {MAX_OPERATORS}"
                ),
            );
        }
    }

    pub fn enter(&mut self) -> Result<(), ExprError> {
        self.depth += 1;
        if self.depth > MAX_NESTING {
            return Err(ExprError::invalid(
                self.kind,
                format!("The expression is nested too deeply; maximum nesting: {MAX_NESTING}"),
            ));
        }
        Ok(())
    }

    pub fn leave(&mut self) {
        self.depth = self.depth.saturating_sub(1);
    }

    /// The first deferred error, if any.
    pub fn finish(self) -> Result<(), ExprError> {
        match self.deferred {
            Some((_, e)) => Err(e),
            None => Ok(()),
        }
    }

    // ---- placeholders and paths ------------------------------------------------------------

    pub fn value(&mut self) -> Result<AttributeValue, ExprError> {
        if *self.cur() != Tok::Value {
            return Err(self.syntax_error());
        }
        let key = self.cur_text();
        self.bump();
        match lookup_value(self.ctx, key) {
            Some(v) => {
                self.usage.use_value(key);
                Ok(v.clone())
            }
            None => {
                self.defer(
                    Rank::Semantic,
                    format!(
                        "An expression attribute value used in expression is not defined; attribute value: {key}"
                    ),
                );
                Ok(AttributeValue::Null)
            }
        }
    }

    fn name_elem(&mut self) -> Result<String, ExprError> {
        let text = self.cur_text();
        match self.cur() {
            Tok::Ident => {
                self.bump();
                if is_reserved(text) {
                    self.defer(
                        Rank::Reserved,
                        format!("Attribute name is a reserved keyword; reserved keyword: {text}"),
                    );
                }
                Ok(text.to_string())
            }
            Tok::Name => {
                self.bump();
                match lookup_name(self.ctx, text) {
                    Some(n) => {
                        self.usage.use_name(text);
                        Ok(n.to_string())
                    }
                    None => {
                        self.defer(
                            Rank::Semantic,
                            format!(
                                "An expression attribute name used in the document path is not defined; attribute name: {text}"
                            ),
                        );
                        Ok(text.to_string())
                    }
                }
            }
            _ => Err(self.syntax_error()),
        }
    }

    /// `name ( '.' name | '[' digits ']' )*`
    pub fn path(&mut self) -> Result<Path, ExprError> {
        let mut elems = vec![PathElem::Attr(self.name_elem()?)];
        loop {
            match self.cur() {
                Tok::Dot => {
                    self.bump();
                    elems.push(PathElem::Attr(self.name_elem()?));
                }
                Tok::LBracket => {
                    self.bump();
                    if *self.cur() != Tok::Number {
                        return Err(self.syntax_error());
                    }
                    let text = self.cur_text();
                    let idx = match text.parse::<u32>() {
                        Ok(n) => n,
                        Err(_) => {
                            self.defer(
                                Rank::Semantic,
                                format!(
                                    "List index is not within the allowable range; index: [{text}]"
                                ),
                            );
                            0
                        }
                    };
                    self.bump();
                    self.expect(Tok::RBracket)?;
                    elems.push(PathElem::Index(idx));
                }
                _ => break,
            }
        }
        if elems.len() > MAX_PATH_DEPTH {
            self.defer(
                Rank::Semantic,
                format!(
                    "The document path has too many nesting levels; nesting levels: {}",
                    elems.len()
                ),
            );
        }
        Ok(Path(elems))
    }

    /// True when the current token starts a function call (`name(`).
    pub fn at_call(&self) -> bool {
        *self.cur() == Tok::Ident && *self.peek_tok(1) == Tok::LParen
    }

    // ---- conditions -------------------------------------------------------------------------

    pub fn condition(&mut self) -> Result<Cond, ExprError> {
        let p = self.or()?;
        let c = self.need_cond(p)?;
        self.expect_eof()?;
        Ok(c)
    }

    /// An operand where a condition must stand is a syntax error at the token after it,
    /// except `size(..)`, which DynamoDB reports as a misused function.
    fn need_cond(&self, p: Parsed) -> Result<Cond, ExprError> {
        match p.node {
            Node::Cond(c) => Ok(c),
            Node::Op(Operand::Size(_)) => Err(ExprError::invalid(
                self.kind,
                "The function is not allowed to be used this way in an expression; function: size",
            )),
            Node::Op(_) => Err(self.syntax_error()),
        }
    }

    fn or(&mut self) -> Result<Parsed, ExprError> {
        let mut left = self.and()?;
        while self.at_kw("OR") {
            let l = self.need_cond(left)?;
            self.bump();
            self.count_op();
            let r = self.and()?;
            let r = self.need_cond(r)?;
            left = Parsed {
                node: Node::Cond(Cond::Or(Box::new(l), Box::new(r))),
                wrapped: false,
            };
        }
        Ok(left)
    }

    fn and(&mut self) -> Result<Parsed, ExprError> {
        let mut left = self.not()?;
        while self.at_kw("AND") {
            let l = self.need_cond(left)?;
            self.bump();
            self.count_op();
            let r = self.not()?;
            let r = self.need_cond(r)?;
            left = Parsed {
                node: Node::Cond(Cond::And(Box::new(l), Box::new(r))),
                wrapped: false,
            };
        }
        Ok(left)
    }

    fn not(&mut self) -> Result<Parsed, ExprError> {
        if self.at_kw("NOT") {
            self.bump();
            self.count_op();
            self.enter()?;
            let inner = self.not()?;
            self.leave();
            let c = self.need_cond(inner)?;
            return Ok(Parsed {
                node: Node::Cond(Cond::Not(Box::new(c))),
                wrapped: false,
            });
        }
        self.primary()
    }

    fn primary(&mut self) -> Result<Parsed, ExprError> {
        let (lhs, wrapped) = if *self.cur() == Tok::LParen {
            self.bump();
            self.enter()?;
            let inner = self.or()?;
            self.leave();
            self.expect(Tok::RParen)?;
            if inner.wrapped {
                self.defer(
                    Rank::Parens,
                    "The expression has redundant parentheses;".into(),
                );
            }
            match inner.node {
                Node::Cond(c) => {
                    return Ok(Parsed {
                        node: Node::Cond(c),
                        wrapped: true,
                    })
                }
                Node::Op(o) => (o, true),
            }
        } else if self.at_call() {
            match self.call()? {
                Call::Cond(c, name) => {
                    if self.at_comparison_tail() {
                        self.defer(
                            Rank::MisusedFunction,
                            format!(
                                "The function is not allowed to be used this way in an expression; function: {name}"
                            ),
                        );
                        // Keep parsing so that later syntax errors still win.
                        self.comparison_tail(Operand::Value(AttributeValue::Null))?;
                    }
                    return Ok(Parsed {
                        node: Node::Cond(c),
                        wrapped: false,
                    });
                }
                Call::Op(o) => (o, false),
            }
        } else {
            (self.atom()?, false)
        };
        if self.at_comparison_tail() {
            let c = self.comparison_tail(lhs)?;
            Ok(Parsed {
                node: Node::Cond(c),
                wrapped: false,
            })
        } else {
            Ok(Parsed {
                node: Node::Op(lhs),
                wrapped,
            })
        }
    }

    fn at_comparison_tail(&self) -> bool {
        matches!(
            self.cur(),
            Tok::Eq | Tok::Ne | Tok::Lt | Tok::Le | Tok::Gt | Tok::Ge
        ) || self.at_kw("BETWEEN")
            || self.at_kw("IN")
    }

    fn comparison_tail(&mut self, lhs: Operand) -> Result<Cond, ExprError> {
        let op = match self.cur() {
            Tok::Eq => Some(CmpOp::Eq),
            Tok::Ne => Some(CmpOp::Ne),
            Tok::Lt => Some(CmpOp::Lt),
            Tok::Le => Some(CmpOp::Le),
            Tok::Gt => Some(CmpOp::Gt),
            Tok::Ge => Some(CmpOp::Ge),
            _ => None,
        };
        self.count_op();
        if let Some(op) = op {
            self.bump();
            let rhs = self.operand()?;
            self.check_distinct(op.symbol(), &lhs, &rhs);
            if !matches!(op, CmpOp::Eq | CmpOp::Ne) {
                self.check_ordered(op.symbol(), &lhs);
                self.check_ordered(op.symbol(), &rhs);
            }
            return Ok(Cond::Cmp(op, lhs, rhs));
        }
        if self.at_kw("BETWEEN") {
            self.bump();
            let lo = self.operand()?;
            if !self.at_kw("AND") {
                return Err(self.syntax_error());
            }
            self.bump();
            let hi = self.operand()?;
            for o in [&lhs, &lo, &hi] {
                self.check_ordered("BETWEEN", o);
            }
            self.check_between(&lo, &hi);
            return Ok(Cond::Between(lhs, lo, hi));
        }
        // IN
        self.bump();
        self.expect(Tok::LParen)?;
        let mut list = vec![self.operand()?];
        while *self.cur() == Tok::Comma {
            self.bump();
            list.push(self.operand()?);
        }
        self.expect(Tok::RParen)?;
        if list.len() > MAX_IN_OPERANDS {
            self.defer(
                Rank::Semantic,
                format!(
                    "The IN operator is provided with too many operands; number of operands: {}",
                    list.len()
                ),
            );
        }
        Ok(Cond::In(lhs, list))
    }

    /// An operand: `(operand)`, `size(..)`, a value or a path.
    pub fn operand(&mut self) -> Result<Operand, ExprError> {
        Ok(self.operand_wrapped()?.0)
    }

    fn operand_wrapped(&mut self) -> Result<(Operand, bool), ExprError> {
        if *self.cur() == Tok::LParen {
            self.bump();
            self.enter()?;
            let (inner, wrapped) = self.operand_wrapped()?;
            self.leave();
            self.expect(Tok::RParen)?;
            if wrapped {
                self.defer(
                    Rank::Parens,
                    "The expression has redundant parentheses;".into(),
                );
            }
            return Ok((inner, true));
        }
        if self.at_call() {
            return match self.call()? {
                Call::Op(o) => Ok((o, false)),
                Call::Cond(_, name) => {
                    self.defer(
                        Rank::MisusedFunction,
                        format!(
                            "The function is not allowed to be used this way in an expression; function: {name}"
                        ),
                    );
                    Ok((Operand::Value(AttributeValue::Null), false))
                }
            };
        }
        Ok((self.atom()?, false))
    }

    fn atom(&mut self) -> Result<Operand, ExprError> {
        match self.cur() {
            Tok::Value => Ok(Operand::Value(self.value()?)),
            Tok::Ident | Tok::Name => Ok(Operand::Path(self.path()?)),
            _ => Err(self.syntax_error()),
        }
    }
}

fn parse_cond_kind(
    src: &str,
    kind: ExprKind,
    ctx: &ExprContext,
    usage: &mut Usage,
) -> Result<Condition, ExprError> {
    let mut p = Parser::new(src, kind, ctx, usage)?;
    let root = p.condition()?;
    p.finish()?;
    Ok(Condition { root })
}

/// Parse a ConditionExpression.
pub fn parse_condition(
    src: &str,
    ctx: &ExprContext,
    usage: &mut Usage,
) -> Result<Condition, ExprError> {
    parse_cond_kind(src, ExprKind::Condition, ctx, usage)
}

/// Parse a FilterExpression (same grammar; messages say "FilterExpression").
pub fn parse_filter(
    src: &str,
    ctx: &ExprContext,
    usage: &mut Usage,
) -> Result<Condition, ExprError> {
    parse_cond_kind(src, ExprKind::Filter, ctx, usage)
}

/// Parse a KeyConditionExpression into a condition tree (shape checked by the caller).
pub(crate) fn parse_key_condition_tree(
    src: &str,
    ctx: &ExprContext,
    usage: &mut Usage,
) -> Result<Cond, ExprError> {
    Ok(parse_cond_kind(src, ExprKind::KeyCondition, ctx, usage)?.root)
}

/// Parse a ProjectionExpression: `path (, path)*`, no two paths overlapping.
pub fn parse_projection(
    src: &str,
    ctx: &ExprContext,
    usage: &mut Usage,
) -> Result<Projection, ExprError> {
    let mut p = Parser::new(src, ExprKind::Projection, ctx, usage)?;
    let mut paths = vec![p.path()?];
    while *p.cur() == Tok::Comma {
        p.bump();
        paths.push(p.path()?);
    }
    p.expect_eof()?;
    if let Some(detail) = overlap_error(&paths) {
        p.defer(Rank::Semantic, detail);
    }
    p.finish()?;
    Ok(Projection { paths })
}

/// DynamoDB's overlap/conflict check between document paths, in source order: any overlap
/// (one path a prefix of another) is reported before any conflict (a list index and a map key
/// at the same position).
pub(crate) fn overlap_error(paths: &[Path]) -> Option<String> {
    let mut conflict = None;
    for (i, a) in paths.iter().enumerate() {
        for b in paths.iter().skip(i + 1) {
            if a.is_prefix_of(b) || b.is_prefix_of(a) {
                return Some(format!(
                    "Two document paths overlap with each other; must remove or rewrite one of these paths; path one: {a}, path two: {b}"
                ));
            }
            if conflict.is_none() && conflicts(a, b) {
                conflict = Some(format!(
                    "Two document paths conflict with each other; must remove or rewrite one of these paths; path one: {a}, path two: {b}"
                ));
            }
        }
    }
    conflict
}

fn conflicts(a: &Path, b: &Path) -> bool {
    for (x, y) in a.0.iter().zip(&b.0) {
        match (x, y) {
            (PathElem::Attr(p), PathElem::Attr(q)) if p == q => continue,
            (PathElem::Index(p), PathElem::Index(q)) if p == q => continue,
            (PathElem::Attr(_), PathElem::Index(_)) | (PathElem::Index(_), PathElem::Attr(_)) => {
                return true
            }
            _ => return false,
        }
    }
    false
}
