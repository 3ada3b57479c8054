//! The DynamoDB JSON protocol: operations, typed inputs, attribute values.
pub mod attr;
pub mod input;
pub mod input_items;
pub mod operation;
pub use operation::{AdminOp, KeysOp, Operation};
