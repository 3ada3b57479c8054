//! The one error type of the key store and the server, named after AWS KMS's exceptions.
//!
//! Messages never contain key material; they name keys by ARN, as AWS does.

/// An AWS KMS error. `aws_type()` gives the `__type` the JSON protocol returns.
#[derive(Debug, thiserror::Error)]
pub enum KmsError {
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Disabled(String),
    #[error("{0}")]
    InvalidState(String),
    #[error("{0}")]
    InvalidCiphertext(String),
    #[error("{0}")]
    IncorrectKey(String),
    #[error("{0}")]
    Validation(String),
    #[error("{0}")]
    AlreadyExists(String),
    #[error("{0}")]
    InvalidAliasName(String),
    #[error("{0}")]
    InvalidArn(String),
    #[error("{0}")]
    InvalidMarker(String),
    #[error("{0}")]
    LimitExceeded(String),
    #[error("{0}")]
    UnsupportedOperation(String),
    #[error("{0}")]
    DryRun(String),
    #[error("{0}")]
    Throttling(String),
    #[error("{0}")]
    DependencyTimeout(String),
    #[error("{0}")]
    KeyUnavailable(String),
    #[error("{0}")]
    Internal(String),
    /// Protocol-level errors of the server (the library never produces these).
    #[error("{0}")]
    Serialization(String),
    #[error("{0}")]
    UnknownOperation(String),
    #[error("{0}")]
    MissingAuthenticationToken(String),
    #[error("{0}")]
    UnrecognizedClient(String),
    #[error("{0}")]
    InvalidSignature(String),
    #[error("{0}")]
    AccessDenied(String),
    #[error("{0}")]
    IncompleteSignature(String),
    #[error("{0}")]
    InvalidKeyUsage(String),
    #[error("{0}")]
    MalformedPolicyDocument(String),
    /// An error planted by fault injection, under any of the names in [`INJECTABLE_ERRORS`].
    #[error("{message}")]
    Injected {
        aws_type: &'static str,
        message: String,
    },
    /// State-file or seed-file trouble while opening a store (never returned by an operation).
    #[error("{0}")]
    Storage(String),
}

/// Error names that fault injection may plant, with the HTTP status AWS uses for each.
/// (AWS KMS API reference: DependencyTimeoutException, KMSInternalException and
/// KeyUnavailableException are 500; every other KMS exception is 400.)
pub const INJECTABLE_ERRORS: &[(&str, u16)] = &[
    ("ThrottlingException", 400),
    ("KMSInternalException", 500),
    ("DependencyTimeoutException", 500),
    ("KeyUnavailableException", 500),
    ("ServiceUnavailableException", 503),
    ("InternalFailure", 500),
    ("LimitExceededException", 400),
    ("AccessDeniedException", 400),
    ("NotFoundException", 400),
    ("DisabledException", 400),
    ("KMSInvalidStateException", 400),
    ("InvalidCiphertextException", 400),
    ("IncorrectKeyException", 400),
    ("ValidationException", 400),
];

impl KmsError {
    /// The `__type` of this error in the KMS JSON protocol.
    pub fn aws_type(&self) -> &'static str {
        match self {
            KmsError::NotFound(_) => "NotFoundException",
            KmsError::Disabled(_) => "DisabledException",
            KmsError::InvalidState(_) => "KMSInvalidStateException",
            KmsError::InvalidCiphertext(_) => "InvalidCiphertextException",
            KmsError::IncorrectKey(_) => "IncorrectKeyException",
            KmsError::Validation(_) => "ValidationException",
            KmsError::AlreadyExists(_) => "AlreadyExistsException",
            KmsError::InvalidAliasName(_) => "InvalidAliasNameException",
            KmsError::InvalidArn(_) => "InvalidArnException",
            KmsError::InvalidMarker(_) => "InvalidMarkerException",
            KmsError::LimitExceeded(_) => "LimitExceededException",
            KmsError::UnsupportedOperation(_) => "UnsupportedOperationException",
            KmsError::DryRun(_) => "DryRunOperationException",
            KmsError::Throttling(_) => "ThrottlingException",
            KmsError::DependencyTimeout(_) => "DependencyTimeoutException",
            KmsError::KeyUnavailable(_) => "KeyUnavailableException",
            KmsError::Internal(_) | KmsError::Storage(_) => "KMSInternalException",
            KmsError::Serialization(_) => "SerializationException",
            KmsError::UnknownOperation(_) => "UnknownOperationException",
            KmsError::MissingAuthenticationToken(_) => "MissingAuthenticationTokenException",
            KmsError::UnrecognizedClient(_) => "UnrecognizedClientException",
            KmsError::InvalidSignature(_) => "InvalidSignatureException",
            KmsError::AccessDenied(_) => "AccessDeniedException",
            KmsError::IncompleteSignature(_) => "IncompleteSignatureException",
            KmsError::InvalidKeyUsage(_) => "InvalidKeyUsageException",
            KmsError::MalformedPolicyDocument(_) => "MalformedPolicyDocumentException",
            KmsError::Injected { aws_type, .. } => aws_type,
        }
    }

    /// The HTTP status the server answers with (AWS: server faults 500, client errors 400).
    pub fn http_status(&self) -> u16 {
        match self {
            KmsError::DependencyTimeout(_)
            | KmsError::KeyUnavailable(_)
            | KmsError::Internal(_)
            | KmsError::Storage(_) => 500,
            KmsError::MissingAuthenticationToken(_)
            | KmsError::UnrecognizedClient(_)
            | KmsError::InvalidSignature(_)
            | KmsError::AccessDenied(_) => 400,
            KmsError::Injected { aws_type, .. } => INJECTABLE_ERRORS
                .iter()
                .find(|(name, _)| name == aws_type)
                .map_or(400, |(_, status)| *status),
            _ => 400,
        }
    }

    /// True for errors a client should retry (throttling and server-side faults).
    pub fn is_retryable(&self) -> bool {
        matches!(self.aws_type(), "ThrottlingException") || self.http_status() >= 500
    }

    /// Builds an injected error from its AWS name; `None` for names not in [`INJECTABLE_ERRORS`].
    pub fn injected(aws_type: &str, message: &str) -> Option<KmsError> {
        INJECTABLE_ERRORS
            .iter()
            .find(|(name, _)| *name == aws_type)
            .map(|(name, _)| KmsError::Injected {
                aws_type: name,
                message: message.to_string(),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_statuses() {
        assert_eq!(
            KmsError::InvalidState("x".into()).aws_type(),
            "KMSInvalidStateException"
        );
        assert_eq!(KmsError::Internal("x".into()).http_status(), 500);
        assert_eq!(KmsError::NotFound("x".into()).http_status(), 400);
        let t = KmsError::injected("ThrottlingException", "slow down").unwrap();
        assert_eq!(t.aws_type(), "ThrottlingException");
        assert!(t.is_retryable());
        assert_eq!(
            KmsError::injected("KMSInternalException", "boom")
                .unwrap()
                .http_status(),
            500
        );
        assert!(KmsError::injected("NoSuchThing", "x").is_none());
        assert!(!KmsError::Disabled("x".into()).is_retryable());
    }
}
