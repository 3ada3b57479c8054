//! The IAM policy engine: parse + validate -> compiled policy; evaluate -> decision.
pub mod context; // request -> global condition keys
pub mod eval;
pub mod membership; // users in groups, sessions of roles (casbin RBAC)
pub mod policy;
pub mod table_policy; // a table's stored, compiled resource-based policy
pub mod targets; // operation inputs -> (action, resource, keys)

mod condition; //  condition operators: compiled values, evaluation
mod json; //       order- and duplicate-preserving JSON tree for validation
mod values; //     exact decimals, ISO 8601 / epoch instants, CIDR blocks
mod variables; //  context keys and policy variables
mod wildcard; //   `*`/`?` patterns and component-wise ARN patterns

#[cfg(test)]
mod tests;
