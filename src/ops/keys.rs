//! Primary keys: extracting and validating them from items and `Key` maps, with DynamoDB's
//! rules and messages.

use crate::catalog::tables::{KeyAttr, TableDef};
use crate::error::ApiError;
use crate::items::ItemKey;
use crate::protocol::attr::{AttributeValue, Item, MAX_PARTITION_KEY_BYTES, MAX_SORT_KEY_BYTES};

fn check_key_value(attr: &KeyAttr, v: &AttributeValue, is_hash: bool) -> Result<(), ApiError> {
    match v {
        AttributeValue::S(s) if s.is_empty() => {
            return Err(ApiError::validation(format!(
                "One or more parameter values are not valid. The AttributeValue for a key attribute cannot contain an empty string value. Key: {}",
                attr.name
            )))
        }
        AttributeValue::B(b) if b.is_empty() => {
            return Err(ApiError::validation(format!(
                "One or more parameter values are not valid. The AttributeValue for a key attribute cannot contain an empty binary value. Key: {}",
                attr.name
            )))
        }
        _ => {}
    }
    let size = v.size();
    if is_hash && size > MAX_PARTITION_KEY_BYTES {
        // DynamoDB's message, missing space included.
        return Err(ApiError::validation(format!(
            "One or more parameter values were invalid: Size of hashkey has exceeded the maximum size limit of{MAX_PARTITION_KEY_BYTES} bytes"
        )));
    }
    if !is_hash && size > MAX_SORT_KEY_BYTES {
        return Err(ApiError::validation(format!(
            "One or more parameter values were invalid: Aggregated size of all range keys has exceeded the size limit of {MAX_SORT_KEY_BYTES} bytes"
        )));
    }
    Ok(())
}

/// The key of an item being written (PutItem): key attributes present with their types.
pub fn key_from_item(def: &TableDef, item: &Item) -> Result<ItemKey, ApiError> {
    let get = |attr: &KeyAttr, is_hash: bool| -> Result<AttributeValue, ApiError> {
        let v = item.get(&attr.name).ok_or_else(|| {
            ApiError::validation(format!(
                "One or more parameter values were invalid: Missing the key {} in the item",
                attr.name
            ))
        })?;
        if !attr.ty.matches(v) {
            return Err(ApiError::validation(format!(
                "One or more parameter values were invalid: Type mismatch for key {} expected: {} actual: {}",
                attr.name,
                attr.ty.as_str(),
                v.type_name()
            )));
        }
        check_key_value(attr, v, is_hash)?;
        Ok(v.clone())
    };
    let pk = get(&def.key_schema.hash, true)?;
    let sk = match &def.key_schema.range {
        Some(r) => Some(get(r, false)?),
        None => None,
    };
    Ok(ItemKey { pk, sk })
}

/// A `Key` parameter (GetItem, DeleteItem, ...): exactly the key attributes, nothing else.
pub fn key_from_map(def: &TableDef, key: &Item) -> Result<ItemKey, ApiError> {
    let mismatch = || ApiError::validation("The provided key element does not match the schema");
    let expected = 1 + usize::from(def.key_schema.range.is_some());
    if key.len() != expected {
        return Err(mismatch());
    }
    let get = |attr: &KeyAttr, is_hash: bool| -> Result<AttributeValue, ApiError> {
        let v = key.get(&attr.name).ok_or_else(mismatch)?;
        if !attr.ty.matches(v) {
            return Err(mismatch());
        }
        check_key_value(attr, v, is_hash)?;
        Ok(v.clone())
    };
    let pk = get(&def.key_schema.hash, true)?;
    let sk = match &def.key_schema.range {
        Some(r) => Some(get(r, false)?),
        None => None,
    };
    Ok(ItemKey { pk, sk })
}
