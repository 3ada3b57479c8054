//! The one wire error type. Every module has its own `thiserror` enum; they are all mapped to
//! [`ApiError`] here, and [`ApiError`] is mapped to `__type` + HTTP status in exactly one place
//! ([`ApiError::wire`]).

use crate::protocol::attr::Item;

/// Namespace of every `__type` we emit; clients read the part after `#`.
pub const ERROR_NAMESPACE: &str = "com.amazonaws.dynamodb.v20120810#";

/// Why a transaction member was cancelled (TransactionCanceledException.CancellationReasons).
#[derive(Debug, Clone)]
pub struct CancellationReason {
    pub code: &'static str,
    pub message: Option<String>,
    pub item: Option<Item>,
}

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    Validation(String),
    #[error("{0}")]
    Serialization(String),
    #[error("{0}")]
    UnknownOperation(String),
    #[error("{0}")]
    NotImplemented(String),
    #[error("{0}")]
    MissingAuthenticationToken(String),
    #[error("{0}")]
    IncompleteSignature(String),
    #[error("{0}")]
    UnrecognizedClient(String),
    #[error("{0}")]
    InvalidSignature(String),
    /// A role session's token has passed its expiry.
    #[error("{0}")]
    ExpiredToken(String),
    /// DynamoDB's PolicyNotFoundException (resource-based policies).
    #[error("{0}")]
    PolicyNotFound(String),
    #[error("{0}")]
    AccessDenied(String),
    #[error("{0}")]
    ResourceNotFound(String),
    #[error("{0}")]
    ResourceInUse(String),
    #[error("{0}")]
    LimitExceeded(String),
    /// IAM's DeleteConflictException (admin API): the user, group or role still has access
    /// keys, policies or members attached.
    #[error("{0}")]
    DeleteConflict(String),
    #[error("The conditional request failed")]
    ConditionalCheckFailed { item: Option<Item> },
    /// DynamoDB's message lists the reason codes in request order.
    #[error("Transaction cancelled, please refer cancellation reasons for specific reasons [{}]",
        reasons.iter().map(|r| r.code).collect::<Vec<_>>().join(", "))]
    TransactionCanceled { reasons: Vec<CancellationReason> },
    #[error("{0}")]
    TransactionConflict(String),
    #[error("{0}")]
    IdempotentParameterMismatch(String),
    #[error("{0}")]
    ItemCollectionSizeLimitExceeded(String),
    #[error("Request size exceeded the maximum of {0} bytes")]
    RequestTooLarge(usize),
    /// The table's KMS key is disabled, pending deletion or otherwise unusable.
    #[error("{0}")]
    KmsAccessDenied(String),
    /// A sealed record failed authentication or did not match its storage key. Never carries
    /// details beyond this fixed text: the audit log records where it happened.
    #[error("Internal server error: integrity check failed")]
    Integrity,
    /// A transient failure (KMS unreachable beyond the staleness bound, storage busy): retryable.
    #[error("{0}")]
    ServiceUnavailable(String),
    #[error("Internal server error")]
    Internal(String),
}

impl ApiError {
    pub fn validation(msg: impl Into<String>) -> Self {
        ApiError::Validation(msg.into())
    }

    /// `__type` name and HTTP status: the single mapping to the wire.
    pub fn wire(&self) -> (&'static str, u16) {
        use ApiError::*;
        match self {
            Validation(_) => ("ValidationException", 400),
            Serialization(_) => ("SerializationException", 400),
            UnknownOperation(_) => ("UnknownOperationException", 400),
            NotImplemented(_) => ("UnknownOperationException", 400),
            MissingAuthenticationToken(_) => ("MissingAuthenticationTokenException", 400),
            IncompleteSignature(_) => ("IncompleteSignatureException", 400),
            UnrecognizedClient(_) => ("UnrecognizedClientException", 400),
            InvalidSignature(_) => ("InvalidSignatureException", 400),
            ExpiredToken(_) => ("ExpiredTokenException", 400),
            PolicyNotFound(_) => ("PolicyNotFoundException", 400),
            AccessDenied(_) => ("AccessDeniedException", 400),
            ResourceNotFound(_) => ("ResourceNotFoundException", 400),
            ResourceInUse(_) => ("ResourceInUseException", 400),
            LimitExceeded(_) => ("LimitExceededException", 400),
            // IAM: DeleteConflictException is HTTP 409.
            DeleteConflict(_) => ("DeleteConflictException", 409),
            ConditionalCheckFailed { .. } => ("ConditionalCheckFailedException", 400),
            TransactionCanceled { .. } => ("TransactionCanceledException", 400),
            TransactionConflict(_) => ("TransactionConflictException", 400),
            IdempotentParameterMismatch(_) => ("IdempotentParameterMismatchException", 400),
            ItemCollectionSizeLimitExceeded(_) => ("ItemCollectionSizeLimitExceededException", 400),
            RequestTooLarge(_) => ("RequestEntityTooLarge", 413),
            KmsAccessDenied(_) => ("KMSAccessDeniedException", 400),
            Integrity => ("InternalServerError", 500),
            ServiceUnavailable(_) => ("ServiceUnavailable", 503),
            Internal(_) => ("InternalServerError", 500),
        }
    }

    /// The JSON body. Internal details (the `Internal` payload) never reach the client.
    pub fn body(&self) -> Vec<u8> {
        let (name, _) = self.wire();
        let mut obj = serde_json::Map::new();
        obj.insert(
            "__type".into(),
            serde_json::Value::String(format!("{ERROR_NAMESPACE}{name}")),
        );
        obj.insert(
            "message".into(),
            serde_json::Value::String(self.to_string()),
        );
        match self {
            ApiError::ConditionalCheckFailed { item: Some(item) } => {
                if let Ok(v) = serde_json::to_value(item) {
                    obj.insert("Item".into(), v);
                }
            }
            ApiError::TransactionCanceled { reasons } => {
                let list: Vec<serde_json::Value> = reasons
                    .iter()
                    .map(|r| {
                        let mut m = serde_json::Map::new();
                        m.insert("Code".into(), r.code.into());
                        if let Some(msg) = &r.message {
                            m.insert("Message".into(), msg.clone().into());
                        }
                        if let Some(item) = &r.item {
                            if let Ok(v) = serde_json::to_value(item) {
                                m.insert("Item".into(), v);
                            }
                        }
                        serde_json::Value::Object(m)
                    })
                    .collect();
                obj.insert("CancellationReasons".into(), list.into());
            }
            _ => {}
        }
        serde_json::to_vec(&serde_json::Value::Object(obj)).unwrap_or_default()
    }

    /// Errors worth a line in the server log (client errors are not).
    pub fn is_server_fault(&self) -> bool {
        self.wire().1 >= 500
    }
}

impl From<crate::auth::sigv4::AuthError> for ApiError {
    fn from(e: crate::auth::sigv4::AuthError) -> Self {
        let msg = e.to_string();
        match e.aws_type() {
            "MissingAuthenticationTokenException" => ApiError::MissingAuthenticationToken(msg),
            "IncompleteSignatureException" => ApiError::IncompleteSignature(msg),
            "UnrecognizedClientException" => ApiError::UnrecognizedClient(msg),
            _ => ApiError::InvalidSignature(msg),
        }
    }
}

impl From<crate::storage::StoreError> for ApiError {
    fn from(e: crate::storage::StoreError) -> Self {
        match e {
            // RocksDB's own checksums caught a changed byte before our AEAD tag could.
            crate::storage::StoreError::Corruption(_) => ApiError::Integrity,
            other => ApiError::Internal(other.to_string()),
        }
    }
}

impl From<crate::protocol::attr::AttrError> for ApiError {
    fn from(e: crate::protocol::attr::AttrError) -> Self {
        ApiError::Validation(e.to_string())
    }
}

impl From<crate::catalog::CatalogError> for ApiError {
    fn from(e: crate::catalog::CatalogError) -> Self {
        use crate::catalog::CatalogError as C;
        match e {
            C::TableExists(_) => ApiError::ResourceInUse(e.to_string()),
            C::TableNotFound(_) => ApiError::ResourceNotFound(e.to_string()),
            C::UserNotFound(_) | C::AccessKeyNotFound(_) => {
                ApiError::ResourceNotFound(e.to_string())
            }
            C::UserExists(_) | C::AccessKeyExists(_) => ApiError::ResourceInUse(e.to_string()),
            C::Invalid(m) => ApiError::Validation(m),
            C::Conflict => ApiError::ServiceUnavailable(e.to_string()),
            C::Kms(k) => k.into(),
            C::Crypto(_) => ApiError::Integrity,
            C::Store(_) | C::Corrupt(_) => ApiError::Internal(e.to_string()),
        }
    }
}

impl From<crate::items::ItemsError> for ApiError {
    fn from(e: crate::items::ItemsError) -> Self {
        match e {
            crate::items::ItemsError::Integrity => ApiError::Integrity,
            other => ApiError::Internal(other.to_string()),
        }
    }
}

impl From<crate::kms::KmsError> for ApiError {
    fn from(e: crate::kms::KmsError) -> Self {
        if e.is_revocation() {
            ApiError::KmsAccessDenied(format!("The table's KMS key is not accessible: {e}"))
        } else {
            match e {
                crate::kms::KmsError::Unavailable(_) => {
                    ApiError::ServiceUnavailable("The KMS is not reachable; retry later".into())
                }
                other => ApiError::Internal(other.to_string()),
            }
        }
    }
}

impl From<crate::crypto::keyring::KeyringError> for ApiError {
    fn from(e: crate::crypto::keyring::KeyringError) -> Self {
        match e {
            crate::crypto::keyring::KeyringError::Kms(k) => k.into(),
            crate::crypto::keyring::KeyringError::Crypto(_) => ApiError::Integrity,
        }
    }
}

impl From<crate::expr::ExprError> for ApiError {
    fn from(e: crate::expr::ExprError) -> Self {
        ApiError::Validation(e.to_string())
    }
}
