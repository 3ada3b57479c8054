//! DynamoDB expressions: ConditionExpression, FilterExpression, KeyConditionExpression,
//! UpdateExpression and ProjectionExpression share one lexer and one parser. Each string is
//! parsed once into an AST with every `#name` and `:value` placeholder already resolved, so
//! evaluation on a decrypted item never looks at the request again.
//!
//! - [`lexer`]: bytes -> tokens (with spans, for DynamoDB's `near: "..."` syntax messages).
//! - [`parse`]: tokens -> AST, with DynamoDB's validation (reserved words, placeholders,
//!   operand types, redundant parentheses, overlapping paths, limits).
//! - [`names`]: which placeholders a request used ([`Usage`]).
//! - [`eval`]: conditions on an item. [`update`]: applying an UpdateExpression.
//! - [`path`]: document paths (`a.b[2].c`): get, set, remove, project.
//! - [`legacy`]: Expected, AttributeUpdates, AttributesToGet, KeyConditions, QueryFilter and
//!   ScanFilter translated into the same AST.
//! - [`print`]: AST -> expression text (used by the round-trip property test and by tools).

mod ast;
mod eval;
mod legacy;
mod lexer;
mod names;
mod parse;
mod parse_call;
mod parse_update;
mod path;
mod print;
mod reserved;
mod update;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_eval;
#[cfg(test)]
mod tests_prop;

use std::collections::HashMap;
use std::fmt;

use crate::protocol::attr::AttributeValue;

pub use ast::{CmpOp, Cond, Operand, Path, PathElem, SetValue, UpdOperand};
pub use eval::{compare_values, values_equal};
pub use legacy::{
    attribute_updates_to_update, attributes_to_get_to_projection, expected_to_condition,
    filter_to_condition, key_conditions_to_key_condition, AttributeValueUpdate,
    Condition as LegacyCondition, ConditionalOperator, ExpectedAttributeValue,
};
pub use names::Usage;
pub use parse::{
    parse_condition, parse_filter, parse_key_condition, parse_projection, parse_update, Condition,
    KeyCondition, Projection, SortCondition, Update,
};
pub use path::{get as get_path, project};
pub use print::{print_condition, print_update, Printed};
pub use reserved::is_reserved;
pub use update::UpdateEffects;

// DynamoDB limit: "The maximum length of any expression string is 4 KB" (Developer Guide,
// Constraints: Expression parameters).
pub const MAX_EXPRESSION_BYTES: usize = 4096;
// DynamoDB limit: "The maximum number of operators or functions allowed in an UpdateExpression
// is 300" (Developer Guide, Constraints: Expression parameters). We apply it to every kind.
pub const MAX_OPERATORS: usize = 300;
// DynamoDB limit: "The maximum number of operands for the IN comparator is 100" (Developer
// Guide, Constraints: Expression parameters).
pub const MAX_IN_OPERANDS: usize = 100;
// DynamoDB limit: nested attributes up to 32 levels deep (Developer Guide, Constraints); a
// document path longer than that can never address anything.
pub const MAX_PATH_DEPTH: usize = 32;
// Our limit: nesting of parentheses and NOT in one expression. The parser recurses once per
// level; 100 levels stay far below a 2 MB thread stack and above any real expression.
pub const MAX_NESTING: usize = 100;

/// The request parameter an expression came from; it prefixes DynamoDB's messages
/// ("Invalid ConditionExpression: ...").
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ExprKind {
    Condition,
    Filter,
    KeyCondition,
    Update,
    Projection,
}

impl fmt::Display for ExprKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ExprKind::Condition => "ConditionExpression",
            ExprKind::Filter => "FilterExpression",
            ExprKind::KeyCondition => "KeyConditionExpression",
            ExprKind::Update => "UpdateExpression",
            ExprKind::Projection => "ProjectionExpression",
        })
    }
}

/// The request's ExpressionAttributeNames / ExpressionAttributeValues.
#[derive(Clone, Copy, Debug, Default)]
pub struct ExprContext<'a> {
    pub names: Option<&'a HashMap<String, String>>,
    pub values: Option<&'a HashMap<String, AttributeValue>>,
}

/// Expression errors. Every variant is a DynamoDB ValidationException and its Display text is
/// DynamoDB's message.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ExprError {
    /// A parse-time problem of one expression: "Invalid UpdateExpression: Syntax error; ...".
    #[error("Invalid {kind}: {detail}")]
    Invalid { kind: ExprKind, detail: String },
    /// The payload is the comma-separated list of unused keys.
    #[error("Value provided in ExpressionAttributeNames unused in expressions: keys: {{{0}}}")]
    UnusedNames(String),
    #[error("Value provided in ExpressionAttributeValues unused in expressions: keys: {{{0}}}")]
    UnusedValues(String),
    #[error("The provided expression refers to an attribute that does not exist in the item")]
    MissingAttribute,
    #[error("An operand in the update expression has an incorrect data type")]
    IncorrectOperandType,
    #[error("The document path provided in the update expression is invalid for update")]
    InvalidUpdatePath,
    /// Number arithmetic failed (overflow, too many digits); the payload is the AttrError text.
    #[error("{0}")]
    Number(String),
    /// Legacy parameter problems: "One or more parameter values were invalid: ...".
    #[error("One or more parameter values were invalid: {0}")]
    InvalidParameter(String),
    /// Query key condition shape problems, with DynamoDB's text verbatim.
    #[error("{0}")]
    KeyCondition(String),
}

impl ExprError {
    pub(crate) fn invalid(kind: ExprKind, detail: impl Into<String>) -> Self {
        ExprError::Invalid {
            kind,
            detail: detail.into(),
        }
    }
}
