//! DescribeTable's LocalSecondaryIndexes and GlobalSecondaryIndexes.

use serde_json::{json, Value};

use super::def::{IndexDef, IndexKind, IndexStatus, ProjectionType};
use super::stats;
use crate::catalog::tables::TableDef;

fn one(def: &TableDef, idx: &IndexDef, table_arn: &str) -> Value {
    let mut ks = vec![json!({"AttributeName": idx.key_schema.hash.name, "KeyType": "HASH"})];
    if let Some(r) = &idx.key_schema.range {
        ks.push(json!({"AttributeName": r.name, "KeyType": "RANGE"}));
    }
    let mut projection = json!({"ProjectionType": idx.projection.as_str()});
    if idx.projection == ProjectionType::Include {
        projection["NonKeyAttributes"] = json!(idx.non_key_attributes);
    }
    let (items, bytes) = stats::of(&def.keyspace, idx.id).snapshot();
    let mut v = json!({
        "IndexName": idx.name,
        "KeySchema": ks,
        "Projection": projection,
        "IndexSizeBytes": bytes,
        "ItemCount": items,
        "IndexArn": format!("{table_arn}/index/{}", idx.name),
    });
    if idx.kind == IndexKind::Global {
        v["IndexStatus"] = json!(idx.status.as_str());
        if idx.status == IndexStatus::Creating {
            v["Backfilling"] = json!(idx.backfilling);
        }
        let (r, w) = idx
            .throughput
            .as_ref()
            .map(|t| (t.read, t.write))
            .unwrap_or((0, 0));
        v["ProvisionedThroughput"] = json!({
            "NumberOfDecreasesToday": 0,
            "ReadCapacityUnits": r,
            "WriteCapacityUnits": w,
        });
    }
    v
}

/// (LocalSecondaryIndexes, GlobalSecondaryIndexes), each None when the table has none.
pub fn describe(def: &TableDef, table_arn: &str) -> (Option<Value>, Option<Value>) {
    let list = |kind: IndexKind| -> Option<Value> {
        let v: Vec<Value> = def
            .indexes
            .iter()
            .filter(|i| i.kind == kind)
            .map(|i| one(def, i, table_arn))
            .collect();
        (!v.is_empty()).then_some(Value::Array(v))
    };
    (list(IndexKind::Local), list(IndexKind::Global))
}
