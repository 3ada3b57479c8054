//! The `aws` provider: AWS KMS (or anything speaking its JSON protocol: kms-mock, moto's
//! server) through `aws-sdk-kms`. Region and endpoint come from `[kms]`, credentials from the
//! standard AWS chain of the server process (environment, shared config/credentials files,
//! web identity, container and instance metadata), unless given explicitly (tests).
//!
//! Error mapping is the point of this file: a key that is disabled, pending deletion, missing
//! or denied is a revocation (the table becomes inaccessible); throttling, 5xx, timeouts and
//! connection failures are an outage (serve from cache, then fail retryably).

use std::time::Duration;

use aws_sdk_kms::config::retry::RetryConfig;
use aws_sdk_kms::config::timeout::TimeoutConfig;
use aws_sdk_kms::config::{BehaviorVersion, Region};
use aws_sdk_kms::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_kms::primitives::Blob;
use aws_sdk_kms::types::{DataKeySpec, KeyState as AwsKeyState};
use zeroize::Zeroizing;

pub use aws_sdk_kms::config::Credentials;

use super::{BoxFuture, EncryptionContext, GeneratedKey, KeyInfo, KeyState, KmsError, KmsProvider};
use crate::config::KmsConfig;
use crate::crypto::Key32;

/// Connection set-up to a KMS endpoint; a KMS that cannot accept a TCP/TLS connection in
/// this time is treated as down (the caller serves from cache).
const CONNECT_TIMEOUT: Duration = Duration::from_millis(1500);
/// One HTTP attempt. KMS's cryptographic operations answer in milliseconds (AWS KMS
/// quotas page: latency is "typically under 10 ms" in region); 2 s is far beyond a healthy call.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(2);
/// All attempts of one operation together, retries and back-off included.
const OPERATION_TIMEOUT: Duration = Duration::from_secs(6);
/// The SDK's standard retry mode retries only transient errors (throttling, 5xx, timeouts,
/// I/O); AWS's default for it is 3 attempts (AWS SDKs reference guide, "Retry behavior").
const MAX_ATTEMPTS: u32 = 3;
const INITIAL_BACKOFF: Duration = Duration::from_millis(200);
const MAX_BACKOFF: Duration = Duration::from_secs(2);
/// AES_256 data keys: 32 bytes (KMS API reference, GenerateDataKey KeySpec).
const DATA_KEY_BYTES: usize = 32;

/// Start-up refusal when `provider = "aws"` has no default key: sealdb creates no KMS key of
/// its own there, and its catalog key must be wrapped under some key.
pub const NEEDS_DEFAULT_KEY: &str =
    "kms.provider = \"aws\" needs a default key: set [kms] default_key \
     (or SEALDB_KMS_DEFAULT_KEY) to a KMS key id, ARN or alias; it wraps sealdb's catalog key \
     and the keys of tables that name none";

/// How to reach the KMS. `AwsKmsSettings::from_config` is what the server uses.
#[derive(Clone)]
pub struct AwsKmsSettings {
    pub region: String,
    /// `None`: AWS's endpoint for the region.
    pub endpoint_url: Option<String>,
    /// `None`: the standard AWS credential chain of this process.
    pub credentials: Option<Credentials>,
    pub connect_timeout: Duration,
    pub attempt_timeout: Duration,
    pub operation_timeout: Duration,
    pub max_attempts: u32,
    pub initial_backoff: Duration,
}

impl std::fmt::Debug for AwsKmsSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AwsKmsSettings")
            .field("region", &self.region)
            .field("endpoint_url", &self.endpoint_url)
            .field(
                "credentials",
                &self.credentials.as_ref().map(|_| "[explicit]"),
            )
            .field("connect_timeout", &self.connect_timeout)
            .field("attempt_timeout", &self.attempt_timeout)
            .field("operation_timeout", &self.operation_timeout)
            .field("max_attempts", &self.max_attempts)
            .finish()
    }
}

impl AwsKmsSettings {
    pub fn new(region: impl Into<String>) -> AwsKmsSettings {
        AwsKmsSettings {
            region: region.into(),
            endpoint_url: None,
            credentials: None,
            connect_timeout: CONNECT_TIMEOUT,
            attempt_timeout: ATTEMPT_TIMEOUT,
            operation_timeout: OPERATION_TIMEOUT,
            max_attempts: MAX_ATTEMPTS,
            initial_backoff: INITIAL_BACKOFF,
        }
    }

    /// `[kms] region` (else the server's own region) and `[kms] endpoint_url`. The region is
    /// always explicit so that start-up never probes instance metadata for it.
    pub fn from_config(kms: &KmsConfig, server_region: &str) -> AwsKmsSettings {
        let region = kms
            .region
            .clone()
            .filter(|r| !r.trim().is_empty())
            .unwrap_or_else(|| server_region.to_string());
        let mut s = AwsKmsSettings::new(region);
        s.endpoint_url = kms.endpoint_url.clone().filter(|u| !u.trim().is_empty());
        s
    }

    pub fn endpoint_url(mut self, url: impl Into<String>) -> AwsKmsSettings {
        self.endpoint_url = Some(url.into());
        self
    }

    pub fn credentials(mut self, credentials: Credentials) -> AwsKmsSettings {
        self.credentials = Some(credentials);
        self
    }
}

pub struct AwsKms {
    client: aws_sdk_kms::Client,
}

/// rustls with ring: the SDK's default HTTPS client would pull in aws-lc.
fn http_client() -> aws_sdk_kms::config::SharedHttpClient {
    aws_smithy_http_client::Builder::new()
        .tls_provider(aws_smithy_http_client::tls::Provider::Rustls(
            aws_smithy_http_client::tls::rustls_provider::CryptoMode::Ring,
        ))
        .build_https()
}

impl AwsKms {
    /// Builds the client; no network call happens here (credentials resolve on first use).
    pub async fn new(settings: AwsKmsSettings) -> AwsKms {
        let mut loader = aws_config::defaults(BehaviorVersion::latest())
            .http_client(http_client())
            .region(Region::new(settings.region.clone()))
            .timeout_config(
                TimeoutConfig::builder()
                    .connect_timeout(settings.connect_timeout)
                    .operation_attempt_timeout(settings.attempt_timeout)
                    .operation_timeout(settings.operation_timeout)
                    .build(),
            )
            .retry_config(
                RetryConfig::standard()
                    .with_max_attempts(settings.max_attempts.max(1))
                    .with_initial_backoff(settings.initial_backoff)
                    .with_max_backoff(MAX_BACKOFF),
            );
        if let Some(url) = &settings.endpoint_url {
            loader = loader.endpoint_url(url.clone());
        }
        if let Some(c) = settings.credentials {
            loader = loader.credentials_provider(c);
        }
        let sdk = loader.load().await;
        AwsKms {
            client: aws_sdk_kms::Client::new(&sdk),
        }
    }

    /// The underlying client (operator tooling and tests create keys with it).
    pub fn client(&self) -> &aws_sdk_kms::Client {
        &self.client
    }
}

/// What an AWS error code (and HTTP status) means for a table's key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    NotFound,
    Disabled,
    InvalidState,
    InvalidCiphertext,
    AccessDenied,
    Unavailable,
    Other,
}

fn classify(code: Option<&str>, status: Option<u16>) -> Kind {
    match code.unwrap_or("") {
        "NotFoundException" => Kind::NotFound,
        "DisabledException" => Kind::Disabled,
        "KMSInvalidStateException" => Kind::InvalidState,
        "InvalidCiphertextException" | "IncorrectKeyException" => Kind::InvalidCiphertext,
        "AccessDeniedException" => Kind::AccessDenied,
        "ThrottlingException"
        | "Throttling"
        | "ThrottledException"
        | "TooManyRequestsException"
        | "RequestLimitExceeded"
        | "KMSInternalException"
        | "InternalFailure"
        | "ServiceUnavailable"
        | "ServiceUnavailableException"
        | "DependencyTimeoutException"
        | "RequestTimeout"
        | "RequestTimeoutException"
        | "KeyUnavailableException" => Kind::Unavailable,
        // The server's own credentials are rejected (expired session, rotated access key):
        // the key was not revoked, so tables must not be declared inaccessible for it.
        "UnrecognizedClientException"
        | "InvalidSignatureException"
        | "IncompleteSignature"
        | "MissingAuthenticationToken"
        | "ExpiredTokenException"
        | "ExpiredToken"
        | "InvalidClientTokenId"
        | "SignatureDoesNotMatch" => Kind::Unavailable,
        _ => match status {
            Some(s) if s == 429 || s >= 500 => Kind::Unavailable,
            _ => Kind::Other,
        },
    }
}

fn map_err<E>(op: &str, err: SdkError<E, aws_sdk_kms::config::http::HttpResponse>) -> KmsError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let kind = match &err {
        SdkError::ServiceError(se) => classify(se.err().code(), Some(se.raw().status().as_u16())),
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) => Kind::Unavailable,
        // A response that could not be parsed (a proxy's HTML error page, a truncated body).
        SdkError::ResponseError(r) => {
            let status = r.raw().status().as_u16();
            if status == 429 || status >= 500 {
                Kind::Unavailable
            } else {
                Kind::Other
            }
        }
        _ => Kind::Other,
    };
    // Error texts carry codes and messages, never request or response bodies.
    let msg = match (err.code(), err.message()) {
        (Some(c), Some(m)) => format!("{op}: {c}: {m}"),
        (Some(c), None) => format!("{op}: {c}"),
        _ => format!("{op}: {}", DisplayErrorContext(&err)),
    };
    match kind {
        Kind::NotFound => KmsError::NotFound(msg),
        Kind::Disabled => KmsError::Disabled(msg),
        Kind::InvalidState => KmsError::InvalidState(msg),
        Kind::InvalidCiphertext => KmsError::InvalidCiphertext(msg),
        Kind::AccessDenied => KmsError::AccessDenied(msg),
        Kind::Unavailable => KmsError::Unavailable(msg),
        Kind::Other => KmsError::Other(msg),
    }
}

fn state_of(s: Option<&AwsKeyState>) -> KeyState {
    match s {
        Some(AwsKeyState::Enabled) => KeyState::Enabled,
        Some(AwsKeyState::Disabled) => KeyState::Disabled,
        Some(AwsKeyState::PendingDeletion) | Some(AwsKeyState::PendingReplicaDeletion) => {
            KeyState::PendingDeletion
        }
        // PendingImport, Unavailable (disconnected custom key store), Creating, Updating.
        _ => KeyState::Unavailable,
    }
}

fn sdk_context(context: &EncryptionContext) -> std::collections::HashMap<String, String> {
    context
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// Takes the plaintext out of the SDK's blob into a zeroizing buffer, then into a Key32.
fn key_from_blob(plaintext: Option<Blob>, op: &str) -> Result<Key32, KmsError> {
    let bytes = Zeroizing::new(plaintext.map(Blob::into_inner).unwrap_or_default());
    if bytes.len() != DATA_KEY_BYTES {
        return Err(KmsError::InvalidCiphertext(format!(
            "{op}: the KMS returned a {}-byte key, expected {DATA_KEY_BYTES}",
            bytes.len()
        )));
    }
    Key32::from_slice(&bytes).map_err(|e| KmsError::Other(format!("{op}: {e}")))
}

impl KmsProvider for AwsKms {
    fn name(&self) -> &'static str {
        "aws"
    }

    fn describe_key<'a>(&'a self, key_id: &'a str) -> BoxFuture<'a, Result<KeyInfo, KmsError>> {
        Box::pin(async move {
            let out = self
                .client
                .describe_key()
                .key_id(key_id)
                .send()
                .await
                .map_err(|e| map_err("DescribeKey", e))?;
            let meta = out
                .key_metadata()
                .ok_or_else(|| KmsError::Other("DescribeKey: no KeyMetadata in answer".into()))?;
            let arn = meta
                .arn()
                .map(str::to_string)
                .ok_or_else(|| KmsError::Other("DescribeKey: no Arn in answer".into()))?;
            Ok(KeyInfo {
                arn,
                state: state_of(meta.key_state()),
            })
        })
    }

    fn generate_data_key<'a>(
        &'a self,
        key_id: &'a str,
        context: &'a EncryptionContext,
    ) -> BoxFuture<'a, Result<GeneratedKey, KmsError>> {
        Box::pin(async move {
            let mut out = self
                .client
                .generate_data_key()
                .key_id(key_id)
                .key_spec(DataKeySpec::Aes256)
                .set_encryption_context(Some(sdk_context(context)))
                .send()
                .await
                .map_err(|e| map_err("GenerateDataKey", e))?;
            let plaintext = key_from_blob(out.plaintext.take(), "GenerateDataKey")?;
            let blob = out
                .ciphertext_blob
                .take()
                .map(Blob::into_inner)
                .filter(|b| !b.is_empty())
                .ok_or_else(|| {
                    KmsError::Other("GenerateDataKey: no CiphertextBlob in answer".into())
                })?;
            // KMS answers with the key's ARN even when asked by alias.
            let key_arn = out.key_id.take().unwrap_or_else(|| key_id.to_string());
            Ok(GeneratedKey {
                plaintext,
                blob,
                key_arn,
            })
        })
    }

    fn decrypt<'a>(
        &'a self,
        key_id: &'a str,
        blob: &'a [u8],
        context: &'a EncryptionContext,
    ) -> BoxFuture<'a, Result<Key32, KmsError>> {
        Box::pin(async move {
            // KeyId pins the key: a blob wrapped under another key fails with
            // IncorrectKeyException instead of being decrypted under whatever key made it.
            let mut out = self
                .client
                .decrypt()
                .key_id(key_id)
                .ciphertext_blob(Blob::new(blob.to_vec()))
                .set_encryption_context(Some(sdk_context(context)))
                .send()
                .await
                .map_err(|e| map_err("Decrypt", e))?;
            key_from_blob(out.plaintext.take(), "Decrypt")
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn revocations_and_outages_are_told_apart() {
        let cases = [
            ("DisabledException", 400, Kind::Disabled),
            ("KMSInvalidStateException", 400, Kind::InvalidState),
            ("NotFoundException", 400, Kind::NotFound),
            ("InvalidCiphertextException", 400, Kind::InvalidCiphertext),
            ("IncorrectKeyException", 400, Kind::InvalidCiphertext),
            ("AccessDeniedException", 400, Kind::AccessDenied),
            ("ThrottlingException", 400, Kind::Unavailable),
            ("KMSInternalException", 500, Kind::Unavailable),
            ("DependencyTimeoutException", 503, Kind::Unavailable),
            ("UnrecognizedClientException", 400, Kind::Unavailable),
            ("ValidationException", 400, Kind::Other),
            ("SomethingNew", 503, Kind::Unavailable),
            ("SomethingNew", 429, Kind::Unavailable),
            ("SomethingNew", 400, Kind::Other),
        ];
        for (code, status, want) in cases {
            assert_eq!(classify(Some(code), Some(status)), want, "{code} {status}");
        }
        assert_eq!(classify(None, Some(502)), Kind::Unavailable);
        assert_eq!(classify(None, None), Kind::Other);
    }

    #[test]
    fn settings_from_config_fall_back_to_the_server_region() {
        let mut kms = KmsConfig {
            provider: "aws".into(),
            ..KmsConfig::default()
        };
        let s = AwsKmsSettings::from_config(&kms, "eu-west-1");
        assert_eq!(s.region, "eu-west-1");
        assert!(s.endpoint_url.is_none());
        kms.region = Some("ap-south-1".into());
        kms.endpoint_url = Some("http://127.0.0.1:4599".into());
        let s = AwsKmsSettings::from_config(&kms, "eu-west-1");
        assert_eq!(s.region, "ap-south-1");
        assert_eq!(s.endpoint_url.as_deref(), Some("http://127.0.0.1:4599"));
        let dbg = format!(
            "{:?}",
            s.credentials(Credentials::new("AKID", "s3cr3t", None, None, "t"))
        );
        assert!(!dbg.contains("s3cr3t"));
    }

    #[test]
    fn plaintext_of_the_wrong_length_is_refused() {
        assert!(key_from_blob(Some(Blob::new(vec![7u8; 16])), "Decrypt").is_err());
        assert!(key_from_blob(None, "Decrypt").is_err());
        assert!(key_from_blob(Some(Blob::new(vec![7u8; 32])), "Decrypt").is_ok());
    }
}
