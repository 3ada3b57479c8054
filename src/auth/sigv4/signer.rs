//! Client-side signing (our CLI calling the admin API, and tests), with the same
//! canonicalization as the verifier.

use ring::hmac;
use time::OffsetDateTime;

use super::canonical::{
    canonical_query, canonical_request, canonical_uri, format_amz_date, scope, sha256_hex,
    signing_key, string_to_sign, uri_encode, HeaderValues, ALGORITHM, UNSIGNED_PAYLOAD,
};
use super::parse::{
    Q_ALGORITHM, Q_CREDENTIAL, Q_DATE, Q_EXPIRES, Q_SECURITY_TOKEN, Q_SIGNATURE, Q_SIGNED_HEADERS,
    X_AMZ_CONTENT_SHA256, X_AMZ_DATE, X_AMZ_SECURITY_TOKEN,
};

/// Lowercases names, drops `authorization`, sorts by name (stably, so a repeated header keeps
/// the order of its values) and groups repeated names.
fn group_headers<'a>(
    headers: impl Iterator<Item = (&'a str, &'a str)>,
) -> Vec<(String, Vec<&'a str>)> {
    let mut all: Vec<(String, &str)> = headers
        .map(|(n, v)| (n.to_ascii_lowercase(), v))
        .filter(|(n, _)| n != "authorization")
        .collect();
    all.sort_by(|a, b| a.0.cmp(&b.0));
    let mut grouped: Vec<(String, Vec<&str>)> = Vec::new();
    for (name, value) in all {
        match grouped.last_mut() {
            Some((last, values)) if *last == name => values.push(value),
            _ => grouped.push((name, vec![value])),
        }
    }
    grouped
}

fn as_header_values<'a>(grouped: &'a [(String, Vec<&str>)]) -> Vec<HeaderValues<'a>> {
    grouped
        .iter()
        .map(|(name, values)| HeaderValues {
            name,
            values: values.iter().map(|v| v.as_bytes()).collect(),
        })
        .collect()
}

fn signed_headers_line(grouped: &[(String, Vec<&str>)]) -> String {
    grouped
        .iter()
        .map(|(n, _)| n.as_str())
        .collect::<Vec<_>>()
        .join(";")
}

/// Signs a request in the Authorization header form and returns the headers to add
/// (`authorization`, `x-amz-date`, `x-amz-content-sha256`, and `x-amz-security-token` when a
/// session token is given). `url_path` and `query` are as they will be sent on the wire. Every
/// header in `headers` is signed (it must include `host`) and must be sent unchanged.
#[allow(clippy::too_many_arguments)]
pub fn sign(
    method: &str,
    url_path: &str,
    query: Option<&str>,
    headers: &[(String, String)],
    body: &[u8],
    access_key_id: &str,
    secret: &str,
    session_token: Option<&str>,
    region: &str,
    service: &str,
    now: OffsetDateTime,
) -> Vec<(String, String)> {
    let amz_date = format_amz_date(now);
    let day = amz_date.get(..8).unwrap_or_default().to_owned();
    let payload_hash = sha256_hex(body);

    let mut added = vec![
        (X_AMZ_DATE.to_owned(), amz_date.clone()),
        (X_AMZ_CONTENT_SHA256.to_owned(), payload_hash.clone()),
    ];
    if let Some(token) = session_token {
        added.push((X_AMZ_SECURITY_TOKEN.to_owned(), token.to_owned()));
    }
    // Caller-supplied copies of the headers we set are replaced, not duplicated.
    let callers = headers
        .iter()
        .filter(|(n, _)| !added.iter().any(|(a, _)| a.eq_ignore_ascii_case(n)));
    let grouped = group_headers(
        callers
            .chain(added.iter())
            .map(|(n, v)| (n.as_str(), v.as_str())),
    );
    let signed_headers = signed_headers_line(&grouped);
    let canonical = canonical_request(
        method,
        &canonical_uri(url_path),
        &canonical_query(query, None),
        &as_header_values(&grouped),
        &payload_hash,
    );
    let scope = scope(&day, region, service);
    let sts = string_to_sign(&amz_date, &scope, &canonical);
    let key = signing_key(secret, &day, region, service);
    let signature = hex::encode(hmac::sign(&key, sts.as_bytes()));

    let mut out = vec![(
        "authorization".to_owned(),
        format!(
            "{ALGORITHM} Credential={access_key_id}/{scope}, SignedHeaders={signed_headers}, Signature={signature}"
        ),
    )];
    out.extend(added);
    out
}

/// Presigns a request: returns the complete query string to send (the original parameters plus
/// the X-Amz-* ones, X-Amz-Signature last). `body: None` signs `UNSIGNED-PAYLOAD`; `Some`
/// signs the body's hash. Every header in `headers` is signed (it must include `host`).
#[allow(clippy::too_many_arguments)]
pub fn presign(
    method: &str,
    url_path: &str,
    query: Option<&str>,
    headers: &[(String, String)],
    body: Option<&[u8]>,
    access_key_id: &str,
    secret: &str,
    session_token: Option<&str>,
    region: &str,
    service: &str,
    now: OffsetDateTime,
    expires: std::time::Duration,
) -> String {
    let amz_date = format_amz_date(now);
    let day = amz_date.get(..8).unwrap_or_default().to_owned();
    let scope = scope(&day, region, service);
    let grouped = group_headers(headers.iter().map(|(n, v)| (n.as_str(), v.as_str())));
    let signed_headers = signed_headers_line(&grouped);

    let mut full_query = query.unwrap_or_default().to_owned();
    let mut params = vec![
        (Q_ALGORITHM, ALGORITHM.to_owned()),
        (Q_CREDENTIAL, format!("{access_key_id}/{scope}")),
        (Q_DATE, amz_date.clone()),
        (Q_EXPIRES, expires.as_secs().to_string()),
        (Q_SIGNED_HEADERS, signed_headers),
    ];
    if let Some(token) = session_token {
        params.push((Q_SECURITY_TOKEN, token.to_owned()));
    }
    for (name, value) in &params {
        if !full_query.is_empty() {
            full_query.push('&');
        }
        full_query.push_str(name);
        full_query.push('=');
        full_query.push_str(&uri_encode(value));
    }
    let payload_hash = body.map_or_else(|| UNSIGNED_PAYLOAD.to_owned(), sha256_hex);
    let canonical = canonical_request(
        method,
        &canonical_uri(url_path),
        &canonical_query(Some(&full_query), None),
        &as_header_values(&grouped),
        &payload_hash,
    );
    let sts = string_to_sign(&amz_date, &scope, &canonical);
    let key = signing_key(secret, &day, region, service);
    let signature = hex::encode(hmac::sign(&key, sts.as_bytes()));
    format!("{full_query}&{Q_SIGNATURE}={signature}")
}
