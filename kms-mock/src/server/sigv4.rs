//! AWS Signature Version 4 (header form) for the KMS server: parsing always, verification
//! when the server is started with `--verify-signatures`.
//!
//! Spec: AWS General Reference, "Create a signed AWS API request" (canonical request, string
//! to sign, signing key derivation). Kept self-contained: sealdb depends on kms-mock, not the
//! other way round.

use std::collections::HashMap;
use std::time::{SystemTime, UNIX_EPOCH};

use ring::digest::{digest, SHA256};
use ring::hmac;
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use crate::error::KmsError;

const ALGORITHM: &str = "AWS4-HMAC-SHA256";
/// Allowed clock skew between client and server: 15 minutes (AWS SigV4 documentation).
const MAX_SKEW_SECS: i64 = 15 * 60;
const SERVICE: &str = "kms";

/// Access key id -> secret, from `--access-key ID:SECRET`. Debug hides the secrets.
#[derive(Default, Clone)]
pub struct Credentials(HashMap<String, Zeroizing<String>>);

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.0.keys()).finish()
    }
}

impl Credentials {
    pub fn insert(&mut self, access_key_id: &str, secret: &str) {
        self.0.insert(
            access_key_id.to_string(),
            Zeroizing::new(secret.to_string()),
        );
    }

    /// Parses `ID:SECRET`.
    pub fn insert_pair(&mut self, pair: &str) -> Result<(), String> {
        match pair.split_once(':') {
            Some((id, secret)) if !id.is_empty() && !secret.is_empty() => {
                self.insert(id, secret);
                Ok(())
            }
            _ => Err("expected ACCESS_KEY_ID:SECRET".into()),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    fn get(&self, id: &str) -> Option<&Zeroizing<String>> {
        self.0.get(id)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthHeader {
    pub access_key_id: String,
    pub date: String,
    pub region: String,
    pub service: String,
    pub signed_headers: Vec<String>,
    pub signature: String,
}

fn incomplete(msg: &str) -> KmsError {
    KmsError::IncompleteSignature(msg.to_string())
}

/// Parses `AWS4-HMAC-SHA256 Credential=AKID/DATE/REGION/SERVICE/aws4_request,
/// SignedHeaders=a;b, Signature=HEX`.
pub fn parse_authorization(value: &str) -> Result<AuthHeader, KmsError> {
    let rest = value
        .strip_prefix(ALGORITHM)
        .filter(|r| r.starts_with(' '))
        .ok_or_else(|| {
            incomplete("Authorization header must use the AWS4-HMAC-SHA256 algorithm")
        })?;
    let (mut credential, mut signed, mut signature) = (None, None, None);
    for part in rest.split(',') {
        let part = part.trim();
        if let Some(v) = part.strip_prefix("Credential=") {
            credential = Some(v);
        } else if let Some(v) = part.strip_prefix("SignedHeaders=") {
            signed = Some(v);
        } else if let Some(v) = part.strip_prefix("Signature=") {
            signature = Some(v);
        }
    }
    let credential = credential
        .ok_or_else(|| incomplete("Authorization header requires 'Credential' parameter."))?;
    let signed = signed
        .ok_or_else(|| incomplete("Authorization header requires 'SignedHeaders' parameter."))?;
    let signature = signature
        .ok_or_else(|| incomplete("Authorization header requires 'Signature' parameter."))?;
    let scope: Vec<&str> = credential.split('/').collect();
    let [akid, date, region, service, terminator] = scope.as_slice() else {
        return Err(incomplete(
            "Credential must have the form ACCESS_KEY/DATE/REGION/SERVICE/aws4_request",
        ));
    };
    if akid.is_empty()
        || date.len() != 8
        || !date.bytes().all(|b| b.is_ascii_digit())
        || region.is_empty()
        || *terminator != "aws4_request"
    {
        return Err(incomplete(
            "Credential must have the form ACCESS_KEY/DATE/REGION/SERVICE/aws4_request",
        ));
    }
    if signature.len() != 64 || !signature.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(incomplete("Signature must be 64 hex characters"));
    }
    let signed_headers: Vec<String> = signed.split(';').map(|h| h.to_ascii_lowercase()).collect();
    if signed_headers.iter().any(|h| h.is_empty()) {
        return Err(incomplete("SignedHeaders must not be empty"));
    }
    Ok(AuthHeader {
        access_key_id: akid.to_string(),
        date: date.to_string(),
        region: region.to_string(),
        service: service.to_string(),
        signed_headers,
        signature: signature.to_ascii_lowercase(),
    })
}

/// RFC 3986 unreserved characters stay; everything else is %XX (upper-case hex), as SigV4 requires.
fn uri_encode(s: &str, keep_slash: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric()
            || matches!(b, b'-' | b'_' | b'.' | b'~')
            || (keep_slash && b == b'/')
        {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes.get(i).copied().unwrap_or(0);
        if b == b'%' {
            let hex = bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok());
            if let Some(v) = hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(if b == b'+' { b' ' } else { b });
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn canonical_query(query: &str) -> String {
    let mut pairs: Vec<(String, String)> = query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (
                uri_encode(&percent_decode(k), false),
                uri_encode(&percent_decode(v), false),
            )
        })
        .collect();
    pairs.sort();
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&")
}

fn canonical_uri(path: &str) -> String {
    if path.is_empty() {
        return "/".into();
    }
    // Non-S3 services: each segment as received (already encoded once) is encoded again.
    uri_encode(path, true)
}

fn collapse_spaces(v: &str) -> String {
    v.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Parses `YYYYMMDDTHHMMSSZ` into epoch seconds.
fn parse_amz_date(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() != 16 || b.get(8) != Some(&b'T') || b.get(15) != Some(&b'Z') {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> { s.get(r)?.parse::<i64>().ok() };
    let (y, mo, d) = (num(0..4)?, num(4..6)?, num(6..8)?);
    let (h, mi, se) = (num(9..11)?, num(11..13)?, num(13..15)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || se > 60 {
        return None;
    }
    // Days from civil (Howard Hinnant's algorithm), proleptic Gregorian calendar.
    let y = if mo <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (mo + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(days * 86_400 + h * 3600 + mi * 60 + se)
}

/// The parts of a request that SigV4 covers.
pub struct SignedRequest<'a> {
    pub method: &'a str,
    pub path: &'a str,
    pub query: &'a str,
    pub headers: &'a hyper::HeaderMap,
    pub body: &'a [u8],
}

fn header_values(headers: &hyper::HeaderMap, name: &str) -> Option<String> {
    let vals: Vec<String> = headers
        .get_all(name)
        .iter()
        .map(|v| collapse_spaces(&String::from_utf8_lossy(v.as_bytes())))
        .collect();
    if vals.is_empty() {
        None
    } else {
        Some(vals.join(","))
    }
}

/// Verifies the signature of `req` with the secret of `auth.access_key_id`.
pub fn verify(
    req: &SignedRequest<'_>,
    auth: &AuthHeader,
    creds: &Credentials,
    region: &str,
    now: SystemTime,
) -> Result<(), KmsError> {
    let secret = creds.get(&auth.access_key_id).ok_or_else(|| {
        KmsError::UnrecognizedClient(
            "The security token included in the request is invalid.".into(),
        )
    })?;
    if auth.service != SERVICE || auth.region != region {
        return Err(KmsError::InvalidSignature(format!(
            "Credential should be scoped to a valid region and service ('{region}', '{SERVICE}'), not ('{}', '{}').",
            auth.region, auth.service
        )));
    }
    for required in ["host", "x-amz-date"] {
        if !auth.signed_headers.iter().any(|h| h == required) {
            return Err(KmsError::InvalidSignature(format!(
                "'{required}' must be a signed header."
            )));
        }
    }
    let amz_date = header_values(req.headers, "x-amz-date")
        .ok_or_else(|| incomplete("Authorization requires the X-Amz-Date header."))?;
    let signed_at = parse_amz_date(&amz_date)
        .ok_or_else(|| KmsError::InvalidSignature(format!("Invalid X-Amz-Date {amz_date}")))?;
    if amz_date.get(0..8) != Some(auth.date.as_str()) {
        return Err(KmsError::InvalidSignature(
            "Credential date does not match X-Amz-Date.".into(),
        ));
    }
    let now_secs = now
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0);
    if (now_secs - signed_at).abs() > MAX_SKEW_SECS {
        return Err(KmsError::InvalidSignature(format!(
            "Signature expired: {amz_date} is outside the 15 minute window around the server time."
        )));
    }

    let mut canonical_headers = String::new();
    for name in &auth.signed_headers {
        let value = header_values(req.headers, name).ok_or_else(|| {
            KmsError::InvalidSignature(format!("Signed header {name} is missing from the request."))
        })?;
        canonical_headers.push_str(&format!("{name}:{value}\n"));
    }
    let payload_hash = match header_values(req.headers, "x-amz-content-sha256") {
        Some(h) => h,
        None => hex::encode(digest(&SHA256, req.body)),
    };
    let canonical_request = format!(
        "{}\n{}\n{}\n{}\n{}\n{}",
        req.method,
        canonical_uri(req.path),
        canonical_query(req.query),
        canonical_headers,
        auth.signed_headers.join(";"),
        payload_hash
    );
    let scope = format!(
        "{}/{}/{}/aws4_request",
        auth.date, auth.region, auth.service
    );
    let string_to_sign = format!(
        "{ALGORITHM}\n{amz_date}\n{scope}\n{}",
        hex::encode(digest(&SHA256, canonical_request.as_bytes()))
    );
    let expected = signature(
        secret,
        &auth.date,
        &auth.region,
        &auth.service,
        &string_to_sign,
    );
    let given = hex::decode(&auth.signature).map_err(|_| incomplete("Signature must be hex"))?;
    if expected.as_slice().ct_eq(given.as_slice()).into() {
        Ok(())
    } else {
        Err(KmsError::InvalidSignature(
            "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.".into(),
        ))
    }
}

fn signature(
    secret: &str,
    date: &str,
    region: &str,
    service: &str,
    string_to_sign: &str,
) -> Vec<u8> {
    let mac = |key: &[u8], data: &str| -> hmac::Tag {
        hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, key), data.as_bytes())
    };
    let k_secret = Zeroizing::new(format!("AWS4{secret}"));
    let k_date = mac(k_secret.as_bytes(), date);
    let k_region = mac(k_date.as_ref(), region);
    let k_service = mac(k_region.as_ref(), service);
    let k_signing = mac(k_service.as_ref(), "aws4_request");
    mac(k_signing.as_ref(), string_to_sign).as_ref().to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_a_header() {
        let h = parse_authorization(
            "AWS4-HMAC-SHA256 Credential=AKID/20240101/us-east-1/kms/aws4_request, SignedHeaders=host;x-amz-date, Signature=0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
        )
        .unwrap();
        assert_eq!(h.access_key_id, "AKID");
        assert_eq!(h.region, "us-east-1");
        assert_eq!(h.signed_headers, vec!["host", "x-amz-date"]);
        assert!(parse_authorization("Basic abc").is_err());
        assert!(parse_authorization("AWS4-HMAC-SHA256 Credential=AKID/2024/us-east-1/kms/aws4_request, SignedHeaders=host, Signature=00").is_err());
    }

    #[test]
    fn amz_date() {
        assert_eq!(parse_amz_date("19700101T000000Z"), Some(0));
        assert_eq!(parse_amz_date("20150830T123600Z"), Some(1_440_938_160));
        assert_eq!(parse_amz_date("20150830T123600"), None);
    }

    #[test]
    fn aws_documented_signing_key_example() {
        // AWS General Reference SigV4 example: secret wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY,
        // 20150830/us-east-1/iam; the documented string to sign and signature.
        let sts = "AWS4-HMAC-SHA256\n20150830T123600Z\n20150830/us-east-1/iam/aws4_request\nf536975d06c0309214f805bb90ccff089219ecd68b2577efef23edd43b7e1a59";
        let sig = signature(
            "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
            "20150830",
            "us-east-1",
            "iam",
            sts,
        );
        assert_eq!(
            hex::encode(sig),
            "5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7"
        );
    }

    proptest! {
        #[test]
        fn parse_never_panics(s in ".{0,200}") {
            let _ = parse_authorization(&s);
            let _ = parse_amz_date(&s);
            let _ = canonical_query(&s);
        }
    }
}
