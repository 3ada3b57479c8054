//! AWS Signature Version 4: verification of incoming requests (Authorization header and
//! presigned query forms) and a small signer for our own clients.
//!
//! The checks run in the order DynamoDB runs them, so that a client sees the same error type
//! and message it would see from AWS: parameters present -> date format -> clock skew -> Host
//! signed -> algorithm -> credential shape -> credential scope -> access key known -> payload
//! hash -> signature -> session token.

mod canonical;
mod parse;
mod signer;
#[cfg(test)]
mod tests;

use std::fmt;

use ring::hmac;
use subtle::ConstantTimeEq;
use time::OffsetDateTime;

#[cfg(test)]
use canonical::signing_key;
use canonical::{
    canonical_query, canonical_request, canonical_uri, format_amz_date, scope, sha256_hex,
    signing_key_bytes, string_to_sign, HeaderValues, ALGORITHM, TERMINATOR, UNSIGNED_PAYLOAD,
};
use parse::{
    auth_params, parse_signature, AuthParams, Credential, DateSource, Form, SignedHeaders,
    H_X_AMZ_CONTENT_SHA256, Q_SIGNATURE, X_AMZ_SECURITY_TOKEN,
};
pub use signer::{presign, sign};

/// The raw request as received; the path and query are exactly as on the wire (not decoded).
pub struct RequestParts<'a> {
    pub method: &'a str,
    pub path: &'a str,
    pub query: Option<&'a str>,
    pub headers: &'a hyper::HeaderMap,
    pub body: &'a [u8],
}

/// What the verifier needs to know about an access key. `secret` is the secret access key.
pub struct KeyMaterial {
    pub secret: zeroize::Zeroizing<String>,
    pub session_token: Option<String>,
}

impl fmt::Debug for KeyMaterial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyMaterial")
            .field("secret", &"[redacted]")
            .field(
                "session_token",
                &self.session_token.as_ref().map(|_| "[redacted]"),
            )
            .finish()
    }
}

/// Finds the key material of an access key id; `None` for unknown (or inactive) keys.
pub trait KeyLookup {
    fn lookup(&self, access_key_id: &str) -> Option<KeyMaterial>;
}

/// A request whose signature checked out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verified {
    pub access_key_id: String,
    pub region: String,
    pub service: String,
    pub signed_at: OffsetDateTime,
    pub presigned: bool,
}

/// What the server accepts.
#[derive(Clone, Copy, Debug)]
pub struct VerifyConfig<'a> {
    pub region: &'a str,
    pub service: &'a str,
    /// Allowed distance between the request time and `now`, either way (AWS: 15 minutes).
    pub max_skew: std::time::Duration,
}

/// Authentication failures, with DynamoDB's error types and messages. DynamoDB answers all
/// four with HTTP 400. Messages never contain a secret or a derived key.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum AuthError {
    /// No Authorization header (of the AWS4 scheme) and no presigned query parameters.
    #[error("{0}")]
    MissingAuthenticationToken(String),
    /// The authentication parameters are malformed or incomplete.
    #[error("{0}")]
    IncompleteSignature(String),
    /// Unknown access key, or a session token that does not belong to it.
    #[error("{0}")]
    UnrecognizedClient(String),
    /// Wrong signature, expired or out-of-scope credential, payload hash mismatch.
    #[error("{0}")]
    InvalidSignature(String),
}

impl AuthError {
    /// The error type name DynamoDB puts in `__type` (after `com.amazon.coral.service#`).
    pub fn aws_type(&self) -> &'static str {
        match self {
            AuthError::MissingAuthenticationToken(_) => "MissingAuthenticationTokenException",
            AuthError::IncompleteSignature(_) => "IncompleteSignatureException",
            AuthError::UnrecognizedClient(_) => "UnrecognizedClientException",
            AuthError::InvalidSignature(_) => "InvalidSignatureException",
        }
    }

    /// The message, as DynamoDB would word it.
    pub fn message(&self) -> &str {
        match self {
            AuthError::MissingAuthenticationToken(m)
            | AuthError::IncompleteSignature(m)
            | AuthError::UnrecognizedClient(m)
            | AuthError::InvalidSignature(m) => m,
        }
    }
}

// DynamoDB's messages, word for word.
const MSG_UNRECOGNIZED: &str = "The security token included in the request is invalid.";
const MSG_SIGNATURE_MISMATCH: &str = "The request signature we calculated does not match the \
     signature you provided. Check your AWS Secret Access Key and signing method. Consult the \
     service documentation for details.";

fn unrecognized() -> AuthError {
    AuthError::UnrecognizedClient(MSG_UNRECOGNIZED.to_owned())
}

/// Verifies the SigV4 signature of `req` as of `now`.
pub fn verify(
    req: &RequestParts<'_>,
    cfg: &VerifyConfig<'_>,
    now: OffsetDateTime,
    keys: &dyn KeyLookup,
) -> Result<Verified, AuthError> {
    let params = auth_params(req.headers, req.query)?;
    check_time(&params, cfg, now)?;

    let signed = SignedHeaders::parse(&params.signed_headers)?;
    if !signed.contains("host") {
        return Err(AuthError::InvalidSignature(
            "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization.".to_owned(),
        ));
    }
    if params.time.source == DateSource::XAmzDate && !signed.contains(parse::X_AMZ_DATE) {
        return Err(AuthError::InvalidSignature(
            "'X-Amz-Date' must be a 'SignedHeader' in the AWS Authorization.".to_owned(),
        ));
    }
    if params.algorithm != ALGORITHM {
        return Err(AuthError::IncompleteSignature(format!(
            "Unsupported AWS 'algorithm': '{}' (only {ALGORITHM} for now). ",
            params.algorithm
        )));
    }
    let credential = Credential::parse(&params.credential)?;
    check_scope(&credential, &params, cfg)?;

    let key = keys
        .lookup(credential.access_key_id)
        .ok_or_else(unrecognized)?;

    let presigned = matches!(params.form, Form::Presigned { .. });
    let payload_hashes = payload_hashes(req, presigned)?;

    let canonical_uri = canonical_uri(req.path);
    let canonical_query = canonical_query(req.query, presigned.then_some(Q_SIGNATURE));
    let headers: Vec<HeaderValues<'_>> = signed
        .names()
        .iter()
        .map(|name| HeaderValues {
            name,
            values: req
                .headers
                .get_all(name.as_ref())
                .iter()
                .map(|v| v.as_bytes())
                .collect(),
        })
        .collect();
    let scope = scope(credential.date, credential.region, credential.service);
    let signing_key = cached_signing_key(&params.credential, &credential, &key.secret);
    let provided = parse_signature(&params.signature);
    let mut matched = false;
    for payload_hash in payload_hashes.iter().flatten() {
        let canonical = canonical_request(
            req.method,
            &canonical_uri,
            &canonical_query,
            &headers,
            payload_hash,
        );
        let sts = string_to_sign(&params.time.amz, &scope, &canonical);
        if let Some(provided) = provided.as_ref() {
            // ring::hmac::verify compares in constant time.
            matched |= hmac::verify(&signing_key, sts.as_bytes(), provided).is_ok();
        }
    }
    if !matched {
        return Err(AuthError::InvalidSignature(
            MSG_SIGNATURE_MISMATCH.to_owned(),
        ));
    }

    check_session_token(&key, &params, &signed)?;

    Ok(Verified {
        access_key_id: credential.access_key_id.to_owned(),
        region: credential.region.to_owned(),
        service: credential.service.to_owned(),
        signed_at: params.time.at,
        presigned,
    })
}

// Derived keys kept per thread. A key appears only after its access key was found and its
// scope (region, service, a date within the skew window) checked, so a real credential fills
// at most a few entries; past this bound the cache starts over rather than tracking age.
const SIGNING_KEY_CACHE_ENTRIES: usize = 64;

/// A cached `kSigning` and the digest of the secret it was derived from: an access key whose
/// secret changed (re-imported under the same id) misses instead of using the old key.
struct CachedSigningKey {
    secret_digest: [u8; 32],
    k_signing: zeroize::Zeroizing<[u8; 32]>,
}

impl fmt::Debug for CachedSigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CachedSigningKey([redacted])")
    }
}

thread_local! {
    // Per thread (the runtime's few workers), so that a lookup takes no lock: the derivation
    // it saves is four HMACs, about a tenth of a verification. Keyed by the Credential
    // string as sent (`id/date/region/service/aws4_request`), checked against the config
    // before any lookup.
    static SIGNING_KEYS: std::cell::RefCell<std::collections::HashMap<String, CachedSigningKey>> =
        std::cell::RefCell::new(std::collections::HashMap::new());
}

fn secret_digest(secret: &str) -> [u8; 32] {
    let d = ring::digest::digest(&ring::digest::SHA256, secret.as_bytes());
    let mut out = [0u8; 32];
    for (o, b) in out.iter_mut().zip(d.as_ref()) {
        *o = *b;
    }
    out
}

/// The HMAC key of `kSigning` for this credential scope, derived once per thread and day.
fn cached_signing_key(raw_credential: &str, c: &Credential<'_>, secret: &str) -> hmac::Key {
    let digest = secret_digest(secret);
    SIGNING_KEYS.with(|cell| {
        let mut cache = cell.borrow_mut();
        if let Some(hit) = cache.get(raw_credential) {
            if bool::from(hit.secret_digest.ct_eq(&digest)) {
                return hmac::Key::new(hmac::HMAC_SHA256, &hit.k_signing[..]);
            }
        }
        let k_signing = signing_key_bytes(secret, c.date, c.region, c.service);
        let key = hmac::Key::new(hmac::HMAC_SHA256, &k_signing[..]);
        if cache.len() >= SIGNING_KEY_CACHE_ENTRIES {
            cache.clear();
        }
        cache.insert(
            raw_credential.to_owned(),
            CachedSigningKey {
                secret_digest: digest,
                k_signing,
            },
        );
        key
    })
}

/// "15 min." or "90 sec.", as in AWS's skew messages.
fn describe_duration(secs: u64) -> String {
    if secs.is_multiple_of(60) {
        format!("{} min.", secs / 60)
    } else {
        format!("{secs} sec.")
    }
}

fn check_time(
    params: &AuthParams<'_>,
    cfg: &VerifyConfig<'_>,
    now: OffsetDateTime,
) -> Result<(), AuthError> {
    let signed_at = params.time.at;
    let skew = time::Duration::try_from(cfg.max_skew).unwrap_or(time::Duration::MAX);
    if let Some(limit) = now.checked_add(skew) {
        if signed_at > limit {
            return Err(AuthError::InvalidSignature(format!(
                "Signature not yet current: {} is still later than {} ({} + {})",
                params.time.amz,
                format_amz_date(limit),
                format_amz_date(now),
                describe_duration(cfg.max_skew.as_secs())
            )));
        }
    }
    // A presigned URL is valid for X-Amz-Expires seconds; without it, like a header signature,
    // for the skew window.
    let (window, window_secs) = match params.form {
        Form::Presigned {
            expires: Some(secs),
        } => (time::Duration::seconds(i64::from(secs)), u64::from(secs)),
        _ => (skew, cfg.max_skew.as_secs()),
    };
    if let Some(limit) = now.checked_sub(window) {
        if signed_at < limit {
            return Err(AuthError::InvalidSignature(format!(
                "Signature expired: {} is now earlier than {} ({} - {})",
                params.time.amz,
                format_amz_date(limit),
                format_amz_date(now),
                describe_duration(window_secs)
            )));
        }
    }
    Ok(())
}

fn check_scope(
    credential: &Credential<'_>,
    params: &AuthParams<'_>,
    cfg: &VerifyConfig<'_>,
) -> Result<(), AuthError> {
    let mut msg = String::new();
    if credential.region != cfg.region {
        msg.push_str(&format!(
            "Credential should be scoped to a valid region, not '{}'. ",
            credential.region
        ));
    }
    if credential.service != cfg.service {
        msg.push_str(&format!(
            "Credential should be scoped to correct service: '{}'. ",
            cfg.service
        ));
    }
    if credential.terminator != TERMINATOR {
        msg.push_str(&format!(
            "Credential should be scoped with a valid terminator: '{TERMINATOR}', not '{}'. ",
            credential.terminator
        ));
    }
    let request_day = params.time.amz.get(..8).unwrap_or_default();
    if credential.date != request_day {
        msg.push_str(&format!(
            "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '{}' != '{request_day}', from '{}'.",
            credential.date, params.time.amz
        ));
    }
    if msg.is_empty() {
        Ok(())
    } else {
        Err(AuthError::InvalidSignature(msg))
    }
}

/// The payload hashes a valid signature may have used: the `x-amz-content-sha256` header when
/// present (checked against the body), else the body's hash; a presigned request without the
/// header may also have signed `UNSIGNED-PAYLOAD`.
fn payload_hashes(
    req: &RequestParts<'_>,
    presigned: bool,
) -> Result<[Option<String>; 2], AuthError> {
    let mut declared = req.headers.get_all(&H_X_AMZ_CONTENT_SHA256).iter();
    match (declared.next(), declared.next()) {
        (None, _) => {
            let body = Some(sha256_hex(req.body));
            let unsigned = presigned.then(|| UNSIGNED_PAYLOAD.to_owned());
            Ok([body, unsigned])
        }
        (Some(value), None) => {
            let value = value.as_bytes();
            if value == UNSIGNED_PAYLOAD.as_bytes() {
                return if presigned {
                    Ok([Some(UNSIGNED_PAYLOAD.to_owned()), None])
                } else {
                    Err(AuthError::InvalidSignature(
                        "'x-amz-content-sha256' may be UNSIGNED-PAYLOAD only in a presigned request."
                            .to_owned(),
                    ))
                };
            }
            let computed = sha256_hex(req.body);
            if value != computed.as_bytes() {
                return Err(content_sha_mismatch());
            }
            Ok([Some(computed), None])
        }
        (Some(_), Some(_)) => Err(content_sha_mismatch()),
    }
}

fn content_sha_mismatch() -> AuthError {
    AuthError::InvalidSignature(
        "The provided 'x-amz-content-sha256' header does not match what was computed.".to_owned(),
    )
}

fn check_session_token(
    key: &KeyMaterial,
    params: &AuthParams<'_>,
    signed: &SignedHeaders<'_>,
) -> Result<(), AuthError> {
    match (&key.session_token, &params.security_token) {
        (None, None) => Ok(()),
        (Some(expected), Some(sent)) => {
            // Every query parameter of a presigned request is signed; a header must be listed.
            let covered = match params.form {
                Form::Presigned { .. } => true,
                Form::Header => signed.contains(X_AMZ_SECURITY_TOKEN),
            };
            if covered && bool::from(expected.as_bytes().ct_eq(sent)) {
                Ok(())
            } else {
                Err(unrecognized())
            }
        }
        _ => Err(unrecognized()),
    }
}
