//! TagResource, UntagResource, ListTagsOfResource, and the tag rules CreateTable shares.
//!
//! Tags live in the table's sealed catalog record (`TableDef::tags`), so they are as private
//! as the schema and feed `aws:ResourceTag/*` (iam/context.rs) without a storage read.

use std::collections::BTreeMap;

use base64::Engine;
use serde::Deserialize;
use serde_json::{json, Value};

use super::Services;
use crate::error::ApiError;
use crate::protocol::input::{required, table_name, Tag};

/// DynamoDB: at most 50 user tags per resource (Developer Guide, "Tagging restrictions").
pub const MAX_TAGS: usize = 50;
/// DynamoDB: tag keys are 1-128 Unicode characters.
pub const MAX_TAG_KEY_CHARS: usize = 128;
/// DynamoDB: tag values are 0-256 Unicode characters.
pub const MAX_TAG_VALUE_CHARS: usize = 256;
/// Service model (ResourceArnString): ARNs are 1-1283 characters.
const MAX_ARN_LEN: usize = 1283;
/// Tags per ListTagsOfResource page. DynamoDB documents no page size; a small one keeps
/// clients honest about following NextToken.
pub const LIST_TAGS_PAGE: usize = 10;
/// AWS reserves this prefix (any case) for its own tags.
const RESERVED_PREFIX: &str = "aws:";

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct TagResourceInput {
    pub resource_arn: Option<String>,
    pub tags: Option<Vec<Tag>>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct UntagResourceInput {
    pub resource_arn: Option<String>,
    pub tag_keys: Option<Vec<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListTagsOfResourceInput {
    pub resource_arn: Option<String>,
    pub next_token: Option<String>,
}

/// DynamoDB's tag alphabet: letters, white space, numbers and `+ - = . _ : /`.
fn allowed_tag_char(c: char) -> bool {
    c.is_alphabetic()
        || c.is_whitespace()
        || c.is_numeric()
        || matches!(c, '+' | '-' | '=' | '.' | '_' | ':' | '/')
}

fn valid_key(k: &str) -> bool {
    let n = k.chars().count();
    (1..=MAX_TAG_KEY_CHARS).contains(&n) && k.chars().all(allowed_tag_char)
}

fn valid_value(v: &str) -> bool {
    v.chars().count() <= MAX_TAG_VALUE_CHARS && v.chars().all(allowed_tag_char)
}

fn reserved(k: &str) -> bool {
    k.get(..RESERVED_PREFIX.len())
        .is_some_and(|p| p.eq_ignore_ascii_case(RESERVED_PREFIX))
}

/// One tag key as DynamoDB checks it (TagResource, UntagResource, CreateTable).
fn check_key(k: &str) -> Result<(), ApiError> {
    if !valid_key(k) {
        return Err(ApiError::validation(format!(
            "The Tag Key provided is invalid, Key: {k}"
        )));
    }
    if reserved(k) {
        return Err(ApiError::validation(format!(
            "Tag Key cannot be prefixed with aws:, Key: {k}"
        )));
    }
    Ok(())
}

/// A request's tags, validated, in request order (CreateTable's Tags, TagResource's Tags).
pub fn validated_tags(tags: &[Tag]) -> Result<Vec<(String, String)>, ApiError> {
    let mut out: Vec<(String, String)> = Vec::with_capacity(tags.len());
    for t in tags {
        let Some(k) = t.key.as_deref() else {
            return Err(ApiError::validation(
                "The Tag Key provided is invalid, Key: null",
            ));
        };
        check_key(k)?;
        let Some(v) = t.value.as_deref() else {
            return Err(ApiError::validation(
                "The Tag Value provided is invalid, Value: null",
            ));
        };
        if !valid_value(v) {
            return Err(ApiError::validation(format!(
                "The Tag Value provided is invalid, Value: {v}"
            )));
        }
        if out.iter().any(|(seen, _)| seen == k) {
            return Err(ApiError::validation(format!(
                "Duplicate Tag Keys provided as input: Duplicate Tag Key found {k}"
            )));
        }
        out.push((k.to_string(), v.to_string()));
    }
    if out.len() > MAX_TAGS {
        return Err(too_many());
    }
    Ok(out)
}

fn too_many() -> ApiError {
    ApiError::validation("Number of Tags exceed the current limit for the provided ResourceArn")
}

/// The table a ResourceArn names, with DynamoDB's messages for everything else.
pub fn table_of_arn(svc: &Services, arn: Option<&str>) -> Result<String, ApiError> {
    let arn = required(arn, "resourceArn")?;
    if arn.is_empty() || arn.len() > MAX_ARN_LEN {
        return Err(ApiError::validation(format!(
            "1 validation error detected: Value '{arn}' at 'resourceArn' failed to satisfy constraint: Member must have length {}",
            if arn.is_empty() { "greater than or equal to 1" } else { "less than or equal to 1283" }
        )));
    }
    if !arn.starts_with("arn:") {
        return Err(ApiError::validation(format!(
            "One or more parameter values were invalid: ARNs must start with 'arn:': {arn}"
        )));
    }
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    let (partition, service, region, account, resource) = match parts.as_slice() {
        [_, p, s, r, a, res] => (*p, *s, *r, *a, *res),
        _ => {
            return Err(ApiError::validation(format!(
                "One or more parameter values were invalid: Provided Arn is not a DynamoDB resource arn: {arn}"
            )))
        }
    };
    if service != "dynamodb" {
        return Err(ApiError::validation(format!(
            "One or more parameter values were invalid: Provided Arn is not a DynamoDB resource arn: {arn}"
        )));
    }
    if partition != "aws" || region != svc.config.region || account != svc.config.account_id {
        return Err(ApiError::validation(format!(
            "Invalid TableArn: Invalid ResourceArn provided as input {arn}"
        )));
    }
    match resource.strip_prefix("table/") {
        Some(name) if !name.is_empty() && !name.contains('/') => Ok(name.to_string()),
        _ => Err(ApiError::validation(format!(
            "One or more parameter values were invalid: Invalid resource arn provided, only table or stream is accepted. Provided resource arn: {arn}"
        ))),
    }
}

/// A `TableName` member that may also be the table's ARN (UpdateTable, the TTL operations).
pub fn table_name_or_arn(svc: &Services, v: Option<String>) -> Result<String, ApiError> {
    match v {
        Some(s) if s.starts_with("arn:") => table_of_arn(svc, Some(&s)),
        other => table_name(other),
    }
}

fn not_found(arn: &str) -> ApiError {
    ApiError::ResourceNotFound(format!(
        "Requested resource not found: ResourceArn: {arn} not found"
    ))
}

pub async fn tag_resource(svc: &Services, input: TagResourceInput) -> Result<Value, ApiError> {
    let arn = input.resource_arn.clone().unwrap_or_default();
    let name = table_of_arn(svc, input.resource_arn.as_deref())?;
    let tags = required(input.tags, "tags")?;
    if tags.is_empty() {
        return Err(ApiError::validation(
            "Atleast one Tag needs to be provided as Input.",
        ));
    }
    let tags = validated_tags(&tags)?;
    if svc.catalog.table(&name).is_none() {
        return Err(not_found(&arn));
    }
    svc.catalog
        .update_table(&name, |def| {
            let mut next = def.tags.clone();
            next.extend(tags);
            if next.len() > MAX_TAGS {
                return Err(too_many());
            }
            def.tags = next;
            Ok::<(), ApiError>(())
        })
        .await
        .map_err(|e| missing_as(e, &arn))?;
    Ok(json!({}))
}

pub async fn untag_resource(svc: &Services, input: UntagResourceInput) -> Result<Value, ApiError> {
    let arn = input.resource_arn.clone().unwrap_or_default();
    let name = table_of_arn(svc, input.resource_arn.as_deref())?;
    let keys = required(input.tag_keys, "tagKeys")?;
    if keys.is_empty() {
        return Err(ApiError::validation(
            "Atleast one Tag Key needs to be provided as Input.",
        ));
    }
    for k in &keys {
        check_key(k)?;
    }
    if svc.catalog.table(&name).is_none() {
        return Err(not_found(&arn));
    }
    svc.catalog
        .update_table(&name, |def| {
            // Removing a key the table does not have is not an error (DynamoDB).
            for k in &keys {
                def.tags.remove(k);
            }
            Ok::<(), ApiError>(())
        })
        .await
        .map_err(|e| missing_as(e, &arn))?;
    Ok(json!({}))
}

pub async fn list_tags_of_resource(
    svc: &Services,
    input: ListTagsOfResourceInput,
) -> Result<Value, ApiError> {
    let arn = input.resource_arn.clone().unwrap_or_default();
    let name = table_of_arn(svc, input.resource_arn.as_deref())?;
    let after = match &input.next_token {
        Some(t) => Some(decode_token(t)?),
        None => None,
    };
    let entry = svc.catalog.table(&name).ok_or_else(|| not_found(&arn))?;
    let (page, next) = tag_page(&entry.def.tags, after.as_deref());
    let tags: Vec<Value> = page
        .iter()
        .map(|(k, v)| json!({"Key": k, "Value": v}))
        .collect();
    let mut out = json!({ "Tags": tags });
    if let Some(last) = next {
        out["NextToken"] = json!(encode_token(last));
    }
    Ok(out)
}

/// One page of tags after `after` (exclusive), and the key to continue after, if any remain.
fn tag_page<'a>(
    tags: &'a BTreeMap<String, String>,
    after: Option<&str>,
) -> (Vec<(&'a String, &'a String)>, Option<&'a String>) {
    use std::ops::Bound;
    let lower = match after {
        Some(a) => Bound::Excluded(a.to_string()),
        None => Bound::Unbounded,
    };
    let mut rest = tags.range::<String, _>((lower, Bound::Unbounded));
    let page: Vec<(&String, &String)> = rest.by_ref().take(LIST_TAGS_PAGE).collect();
    let next = match (rest.next(), page.last()) {
        (Some(_), Some((k, _))) => Some(*k),
        _ => None,
    };
    (page, next)
}

fn encode_token(last_key: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(last_key.as_bytes())
}

fn decode_token(t: &str) -> Result<String, ApiError> {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(t.as_bytes())
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .ok_or_else(|| ApiError::validation(format!("Invalid NextToken: {t}")))
}

/// A table dropped between the check and the update is the ARN's ResourceNotFound.
fn missing_as(e: ApiError, arn: &str) -> ApiError {
    match e {
        ApiError::ResourceNotFound(_) => not_found(arn),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn tag(k: &str, v: &str) -> Tag {
        Tag {
            key: Some(k.into()),
            value: Some(v.into()),
        }
    }

    #[test]
    fn tag_rules_follow_dynamodb() {
        assert!(validated_tags(&[tag("env", ""), tag("a b:c/d=e+f-g.h_i", "x")]).is_ok());
        let msg = |r: Result<Vec<(String, String)>, ApiError>| r.unwrap_err().to_string();
        assert_eq!(
            msg(validated_tags(&[tag("", "x")])),
            "The Tag Key provided is invalid, Key: "
        );
        assert!(msg(validated_tags(&[tag("hi!", "x")])).contains("Tag Key provided is invalid"));
        assert!(msg(validated_tags(&[tag("k", "d%g")])).contains("Tag Value provided is invalid"));
        assert!(msg(validated_tags(&[tag("AWS:x", "v")])).contains("cannot be prefixed with aws:"));
        assert!(msg(validated_tags(&[tag("k", "1"), tag("k", "2")])).contains("Duplicate Tag"));
        let k128 = "k".repeat(128);
        assert!(validated_tags(&[tag(&k128, &"v".repeat(256))]).is_ok());
        assert!(validated_tags(&[tag(&"k".repeat(129), "v")]).is_err());
        assert!(validated_tags(&[tag("k", &"v".repeat(257))]).is_err());
        // Characters, not bytes.
        assert!(validated_tags(&[tag(&"é".repeat(128), "v")]).is_ok());
        let fifty_one: Vec<Tag> = (0..51).map(|i| tag(&format!("k{i}"), "v")).collect();
        assert!(msg(validated_tags(&fifty_one)).starts_with("Number of Tags exceed"));
        let missing = Tag {
            key: Some("k".into()),
            value: None,
        };
        assert!(msg(validated_tags(&[missing])).ends_with("Value: null"));
    }

    proptest! {
        /// Following NextToken from the start visits every tag exactly once, in key order.
        #[test]
        fn paging_visits_every_tag_once(keys in proptest::collection::btree_set("[a-z:/ ]{1,8}", 0..60)) {
            let tags: BTreeMap<String, String> =
                keys.iter().map(|k| (k.clone(), format!("v{k}"))).collect();
            let mut seen = Vec::new();
            let mut after: Option<String> = None;
            loop {
                let (page, next) = tag_page(&tags, after.as_deref());
                prop_assert!(page.len() <= LIST_TAGS_PAGE);
                seen.extend(page.iter().map(|(k, _)| (*k).clone()));
                match next {
                    Some(k) => {
                        let token = encode_token(k);
                        after = Some(decode_token(&token).unwrap());
                    }
                    None => break,
                }
            }
            prop_assert_eq!(seen, keys.into_iter().collect::<Vec<_>>());
        }
    }
}
