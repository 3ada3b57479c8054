//! A table's resource-based policy as stored with the table definition: the document, its
//! revision id, and the compiled form. Compiled when stored (PutResourcePolicy) and when the
//! catalog is loaded, so the request path only follows an `Arc`.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::policy::{Policy, PolicyKind};

/// The resource-based policy of a table.
#[derive(Clone, Serialize, Deserialize)]
#[serde(try_from = "RawTablePolicy", into = "RawTablePolicy")]
pub struct TablePolicy {
    pub revision_id: String,
    pub compiled: Arc<Policy>,
}

#[derive(Clone, Serialize, Deserialize)]
struct RawTablePolicy {
    document: String,
    revision_id: String,
}

impl TablePolicy {
    /// Validates and compiles a document with the rules of a table's resource-based policy.
    pub fn compile(
        document: &str,
        revision_id: String,
    ) -> Result<TablePolicy, Vec<super::policy::PolicyProblem>> {
        let compiled = Policy::parse("resource-based policy", document, PolicyKind::Resource)?;
        Ok(TablePolicy {
            revision_id,
            compiled: Arc::new(compiled),
        })
    }

    pub fn document(&self) -> &str {
        self.compiled.source()
    }
}

impl TryFrom<RawTablePolicy> for TablePolicy {
    type Error = String;

    // A stored policy that no longer compiles stops the catalog from loading rather than
    // silently dropping its denies.
    fn try_from(raw: RawTablePolicy) -> Result<Self, Self::Error> {
        TablePolicy::compile(&raw.document, raw.revision_id).map_err(|problems| {
            let text: Vec<String> = problems.iter().map(ToString::to_string).collect();
            format!(
                "stored resource-based policy is invalid: {}",
                text.join("; ")
            )
        })
    }
}

impl From<TablePolicy> for RawTablePolicy {
    fn from(p: TablePolicy) -> Self {
        RawTablePolicy {
            document: p.compiled.source().to_owned(),
            revision_id: p.revision_id,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":"dynamodb:GetItem","Resource":"*"}]}"#;

    #[test]
    fn round_trips_through_json_and_recompiles() {
        let p = TablePolicy::compile(DOC, "1".into()).unwrap();
        let text = serde_json::to_string(&p).unwrap();
        let back: TablePolicy = serde_json::from_str(&text).unwrap();
        assert_eq!(back.document(), DOC);
        assert_eq!(back.revision_id, "1");
        assert_eq!(back.compiled.statement_count(), 1);
    }

    #[test]
    fn an_invalid_stored_document_fails_to_load() {
        let text = r#"{"document":"{\"Statement\":[]}","revision_id":"1"}"#;
        assert!(serde_json::from_str::<TablePolicy>(text).is_err());
        // an identity-style document lacks Principal: not a valid resource policy
        let no_principal = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}"#;
        assert!(TablePolicy::compile(no_principal, "1".into()).is_err());
    }
}
