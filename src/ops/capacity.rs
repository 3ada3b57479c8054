//! ReturnConsumedCapacity: DynamoDB's capacity-unit arithmetic and response shape.
//!
//! - writes: one WCU per started KB of the larger of the old and the new item (min 1);
//! - reads: one RCU per started 4 KB (min 1), half for eventually consistent reads; Query and
//!   Scan round the SUM of the item sizes they evaluated, batch and transactional reads each item;
//! - transactions cost double (prepare + commit) on both sides.

use std::collections::BTreeMap;

use serde_json::{json, Value};

use crate::error::ApiError;

/// DynamoDB: one write unit per 1 KB.
pub const WRITE_UNIT_BYTES: usize = 1024;
/// DynamoDB: one read unit per 4 KB.
pub const READ_UNIT_BYTES: usize = 4096;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    None,
    Total,
    Indexes,
}

/// Parses ReturnConsumedCapacity with DynamoDB's enum message.
pub fn mode(v: &Option<String>) -> Result<Mode, ApiError> {
    match v.as_deref() {
        None | Some("NONE") => Ok(Mode::None),
        Some("TOTAL") => Ok(Mode::Total),
        Some("INDEXES") => Ok(Mode::Indexes),
        Some(other) => Err(ApiError::validation(format!(
            "1 validation error detected: Value '{other}' at 'returnConsumedCapacity' failed to satisfy constraint: Member must satisfy enum value set: [INDEXES, TOTAL, NONE]"
        ))),
    }
}

/// Write units of one item write (sizes of the old and new item; 0 when absent).
pub fn write_units(old: usize, new: usize) -> f64 {
    old.max(new).div_ceil(WRITE_UNIT_BYTES).max(1) as f64
}

/// Read units of `bytes` read in one unit of accounting (one item, or a Query/Scan page).
pub fn read_units(bytes: usize, consistent: bool) -> f64 {
    let u = bytes.div_ceil(READ_UNIT_BYTES).max(1) as f64;
    if consistent {
        u
    } else {
        u / 2.0
    }
}

/// Units per kind, for one table.
#[derive(Clone, Copy, Debug, Default)]
pub struct Units {
    pub read: f64,
    pub write: f64,
}

/// Consumed capacity of one table in a response, or None when not asked for.
pub fn one(table: &str, mode: Mode, units: Units) -> Option<Value> {
    let total = units.read + units.write;
    match mode {
        Mode::None => None,
        Mode::Total => Some(shape(table, total, units, false)),
        Mode::Indexes => Some(shape(table, total, units, true)),
    }
}

fn shape(table: &str, total: f64, units: Units, indexes: bool) -> Value {
    let mut v = json!({"TableName": table, "CapacityUnits": total});
    if units.read > 0.0 {
        v["ReadCapacityUnits"] = json!(units.read);
    }
    if units.write > 0.0 {
        v["WriteCapacityUnits"] = json!(units.write);
    }
    if indexes {
        let mut t = json!({"CapacityUnits": total});
        if units.read > 0.0 {
            t["ReadCapacityUnits"] = json!(units.read);
        }
        if units.write > 0.0 {
            t["WriteCapacityUnits"] = json!(units.write);
        }
        v["Table"] = t;
    }
    v
}

/// Per-table totals of a multi-table operation (batches, transactions), in table-name order.
#[derive(Default)]
pub struct PerTable(BTreeMap<String, Units>);

impl PerTable {
    pub fn read(&mut self, table: &str, units: f64) {
        self.0.entry(table.to_string()).or_default().read += units;
    }

    pub fn write(&mut self, table: &str, units: f64) {
        self.0.entry(table.to_string()).or_default().write += units;
    }

    /// The `ConsumedCapacity` list, or None when not asked for.
    pub fn list(&self, mode: Mode) -> Option<Value> {
        if mode == Mode::None {
            return None;
        }
        Some(Value::Array(
            self.0
                .iter()
                .filter_map(|(t, u)| one(t, mode, *u))
                .collect(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dynamodb_arithmetic() {
        assert_eq!(write_units(0, 0), 1.0);
        assert_eq!(write_units(1024, 10), 1.0);
        assert_eq!(write_units(1025, 10), 2.0);
        assert_eq!(write_units(10, 3000), 3.0);
        assert_eq!(read_units(0, false), 0.5);
        assert_eq!(read_units(4096, true), 1.0);
        assert_eq!(read_units(4097, true), 2.0);
        assert_eq!(read_units(4097, false), 1.0);
        assert!(mode(&Some("bogus".into())).is_err());
        let v = one(
            "t",
            Mode::Indexes,
            Units {
                read: 0.0,
                write: 2.0,
            },
        )
        .unwrap();
        assert_eq!(v["Table"]["CapacityUnits"], json!(2.0));
        assert!(one("t", Mode::None, Units::default()).is_none());
    }
}
