//! Parsing the authentication parameters of a request (Authorization header or presigned query)
//! into typed values. Every failure is an `AuthError` carrying DynamoDB's wording; nothing here
//! panics on arbitrary bytes.

use std::borrow::Cow;

use hyper::header::{HeaderName, AUTHORIZATION, DATE};
use hyper::HeaderMap;
use time::{Date, Month, OffsetDateTime, PrimitiveDateTime, Time};

use super::canonical::{decode_component, format_amz_date, query_pairs};
use super::AuthError;

// SigV4 header names (lowercase, as in the canonical request).
pub(super) const X_AMZ_DATE: &str = "x-amz-date";
pub(super) const X_AMZ_SECURITY_TOKEN: &str = "x-amz-security-token";
pub(super) const X_AMZ_CONTENT_SHA256: &str = "x-amz-content-sha256";
// The same names as header-map keys: a lookup by `HeaderName` skips parsing the name.
pub(super) const H_X_AMZ_DATE: HeaderName = HeaderName::from_static(X_AMZ_DATE);
pub(super) const H_X_AMZ_SECURITY_TOKEN: HeaderName = HeaderName::from_static(X_AMZ_SECURITY_TOKEN);
pub(super) const H_X_AMZ_CONTENT_SHA256: HeaderName = HeaderName::from_static(X_AMZ_CONTENT_SHA256);

// SigV4 presigned URL parameters (AWS General Reference, "Add the signing information to the
// query string"); matched case-sensitively, as AWS does.
pub(super) const Q_ALGORITHM: &str = "X-Amz-Algorithm";
pub(super) const Q_CREDENTIAL: &str = "X-Amz-Credential";
pub(super) const Q_DATE: &str = "X-Amz-Date";
pub(super) const Q_EXPIRES: &str = "X-Amz-Expires";
pub(super) const Q_SIGNED_HEADERS: &str = "X-Amz-SignedHeaders";
pub(super) const Q_SIGNATURE: &str = "X-Amz-Signature";
pub(super) const Q_SECURITY_TOKEN: &str = "X-Amz-Security-Token";

// SigV4 presigned URLs: X-Amz-Expires is at most 7 days (604800 seconds).
pub(super) const MAX_EXPIRES_SECS: u32 = 604_800;

/// Where the request time came from; decides whether `x-amz-date` must be signed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum DateSource {
    XAmzDate,
    DateHeader,
    Query,
}

/// The request time, both parsed and in the ISO 8601 basic form used in the string to sign.
#[derive(Clone, Debug)]
pub(super) struct RequestTime {
    pub at: OffsetDateTime,
    pub amz: String,
    pub source: DateSource,
}

/// How the request carries its signature.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Form {
    Header,
    /// Presigned URL; `expires` is X-Amz-Expires in seconds, when given.
    Presigned {
        expires: Option<u32>,
    },
}

/// The authentication parameters of a request, before any check against keys or config.
/// Borrowed from the Authorization header; owned when decoded from a presigned query.
#[derive(Debug)]
pub(super) struct AuthParams<'a> {
    pub form: Form,
    pub algorithm: Cow<'a, str>,
    pub credential: Cow<'a, str>,
    pub signed_headers: Cow<'a, str>,
    pub signature: Cow<'a, str>,
    pub time: RequestTime,
    /// The security token sent with the request (header values joined by `,`, or the query
    /// parameter), if any.
    pub security_token: Option<Vec<u8>>,
}

/// Parses `YYYYMMDDTHHMMSSZ`.
pub(super) fn parse_amz_date(s: &str) -> Option<OffsetDateTime> {
    let b = s.as_bytes();
    if b.len() != 16 || b.get(8) != Some(&b'T') || b.get(15) != Some(&b'Z') {
        return None;
    }
    let num = |from: usize, to: usize| -> Option<u32> {
        let digits = b.get(from..to)?;
        digits.iter().try_fold(0u32, |acc, &d| {
            d.is_ascii_digit().then(|| acc * 10 + u32::from(d - b'0'))
        })
    };
    let year = i32::try_from(num(0, 4)?).ok()?;
    let month = Month::try_from(u8::try_from(num(4, 6)?).ok()?).ok()?;
    let day = u8::try_from(num(6, 8)?).ok()?;
    let hour = u8::try_from(num(9, 11)?).ok()?;
    let minute = u8::try_from(num(11, 13)?).ok()?;
    let second = u8::try_from(num(13, 15)?).ok()?;
    let date = Date::from_calendar_date(year, month, day).ok()?;
    let time = Time::from_hms(hour, minute, second).ok()?;
    Some(PrimitiveDateTime::new(date, time).assume_utc())
}

/// Parses an HTTP `Date` header (IMF-fixdate, RFC 9110 5.6.7), e.g.
/// `Sun, 06 Nov 1994 08:49:37 GMT`; the ISO basic form is accepted too.
pub(super) fn parse_http_date(s: &str) -> Option<OffsetDateTime> {
    if let Some(t) = parse_amz_date(s) {
        return Some(t);
    }
    let format = time::macros::format_description!(
        "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
    );
    PrimitiveDateTime::parse(s, &format)
        .ok()
        .map(PrimitiveDateTime::assume_utc)
}

/// The request time from a date header's text: `YYYYMMDDTHHMMSSZ` is already the form the
/// string to sign uses, so it is kept as sent; an HTTP date (`Date` only) is reformatted.
fn request_time(date: &str, source: DateSource) -> Option<RequestTime> {
    if let Some(at) = parse_amz_date(date) {
        // parse_amz_date accepts only the fixed-width form with a valid date and time, whose
        // formatting gives back the same 16 characters.
        return Some(RequestTime {
            at,
            amz: date.to_owned(),
            source,
        });
    }
    if source != DateSource::DateHeader {
        return None;
    }
    let at = parse_http_date(date)?;
    Some(RequestTime {
        amz: format_amz_date(at),
        at,
        source,
    })
}

/// All values of a header joined by `,` (as the canonical request joins them), or `None`.
fn joined_header(headers: &HeaderMap, name: &HeaderName) -> Option<Vec<u8>> {
    let mut out: Option<Vec<u8>> = None;
    for value in headers.get_all(name) {
        match out.as_mut() {
            None => out = Some(value.as_bytes().to_vec()),
            Some(buf) => {
                buf.push(b',');
                buf.extend_from_slice(value.as_bytes());
            }
        }
    }
    out
}

fn lossy(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn date_format_error(got: &str) -> AuthError {
    AuthError::IncompleteSignature(format!(
        "Date must be in ISO-8601 'basic format'. Got '{got}'. See http://en.wikipedia.org/wiki/ISO_8601"
    ))
}

/// Reads the authentication parameters from the Authorization header or, when there is none,
/// from the presigned query parameters.
pub(super) fn auth_params<'a>(
    headers: &'a HeaderMap,
    query: Option<&str>,
) -> Result<AuthParams<'a>, AuthError> {
    let mut authorization = headers.get_all(AUTHORIZATION).iter();
    match (authorization.next(), authorization.next()) {
        (None, _) => presigned_params(query),
        (Some(_), Some(_)) => Err(AuthError::IncompleteSignature(
            "Found multiple 'Authorization' headers.".to_owned(),
        )),
        (Some(value), None) => header_params(headers, query, value.as_bytes()),
    }
}

fn header_params<'a>(
    headers: &HeaderMap,
    query: Option<&str>,
    raw: &'a [u8],
) -> Result<AuthParams<'a>, AuthError> {
    // DynamoDB answers an Authorization header of another scheme as if it were absent.
    if !raw.trim_ascii_start().starts_with(b"AWS4-") {
        return Err(missing_token());
    }
    let Ok(auth) = std::str::from_utf8(raw) else {
        return Err(AuthError::IncompleteSignature(format!(
            "Authorization header contains invalid characters. Authorization={}",
            lossy(raw)
        )));
    };
    if has_presign_params(query) {
        return Err(AuthError::IncompleteSignature(
            "Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter, \
             Signature query string parameter or the Authorization header should be specified"
                .to_owned(),
        ));
    }
    let mut tokens = ascii_tokens(auth);
    let algorithm = tokens.next().unwrap_or_default();
    let (mut credential, mut signed_headers, mut signature) = (None, None, None);
    for token in tokens {
        let Some((key, value)) = token.split_once('=') else {
            return Err(AuthError::IncompleteSignature(format!(
                "'{token}' not a valid key=value pair (missing equal-sign) in Authorization header: '{auth}'."
            )));
        };
        let slot = match key {
            "Credential" => &mut credential,
            "SignedHeaders" => &mut signed_headers,
            "Signature" => &mut signature,
            _ => continue,
        };
        if slot.is_none() {
            *slot = Some(value);
        }
    }
    let date = match joined_header(headers, &H_X_AMZ_DATE) {
        Some(v) => Some((v, DateSource::XAmzDate)),
        None => joined_header(headers, &DATE).map(|v| (v, DateSource::DateHeader)),
    };

    let mut msg = String::new();
    if credential.is_none_or(str::is_empty) {
        msg.push_str("Authorization header requires 'Credential' parameter. ");
    }
    if signature.is_none_or(str::is_empty) {
        msg.push_str("Authorization header requires 'Signature' parameter. ");
    }
    // An empty SignedHeaders is well-formed here; it fails the Host check later.
    if signed_headers.is_none() {
        msg.push_str("Authorization header requires 'SignedHeaders' parameter. ");
    }
    if date.is_none() {
        msg.push_str(
            "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header. ",
        );
    }
    let (Some(credential), Some(signature), Some(signed_headers), Some((date, source))) =
        (credential, signature, signed_headers, date)
    else {
        return Err(AuthError::IncompleteSignature(format!(
            "{msg}Authorization={auth}"
        )));
    };
    if !msg.is_empty() {
        return Err(AuthError::IncompleteSignature(format!(
            "{msg}Authorization={auth}"
        )));
    }

    let date_str = std::str::from_utf8(&date).map_err(|_| date_format_error(&lossy(&date)))?;
    let time = request_time(date_str, source).ok_or_else(|| date_format_error(date_str))?;

    Ok(AuthParams {
        form: Form::Header,
        algorithm: Cow::Borrowed(algorithm),
        credential: Cow::Borrowed(credential),
        signed_headers: Cow::Borrowed(signed_headers),
        signature: Cow::Borrowed(signature),
        time,
        security_token: joined_header(headers, &H_X_AMZ_SECURITY_TOKEN),
    })
}

/// The non-empty runs of `s` between commas and ASCII whitespace (the Authorization header's
/// separators), found byte by byte: the separators are ASCII, so every cut is a char boundary.
pub(super) fn ascii_tokens(s: &str) -> impl Iterator<Item = &str> {
    let bytes = s.as_bytes();
    let is_sep = |b: u8| b == b',' || b.is_ascii_whitespace();
    let mut i = 0;
    std::iter::from_fn(move || {
        while bytes.get(i).is_some_and(|b| is_sep(*b)) {
            i += 1;
        }
        let start = i;
        while bytes.get(i).is_some_and(|b| !is_sep(*b)) {
            i += 1;
        }
        s.get(start..i).filter(|t| !t.is_empty())
    })
}

fn missing_token() -> AuthError {
    AuthError::MissingAuthenticationToken("Request is missing Authentication Token".to_owned())
}

/// The parameters whose presence makes a request a presigned one, in AWS's reporting order.
const PRESIGN_REQUIRED: [&str; 5] = [
    Q_ALGORITHM,
    Q_CREDENTIAL,
    Q_SIGNATURE,
    Q_SIGNED_HEADERS,
    Q_DATE,
];

fn has_presign_params(query: Option<&str>) -> bool {
    query.is_some_and(|q| {
        query_pairs(q).any(|(name, _)| {
            decode_component(name).is_some_and(|n| PRESIGN_REQUIRED.contains(&n.as_str()))
        })
    })
}

fn presigned_params(query: Option<&str>) -> Result<AuthParams<'static>, AuthError> {
    const ALL: [&str; 7] = [
        Q_ALGORITHM,
        Q_CREDENTIAL,
        Q_SIGNATURE,
        Q_SIGNED_HEADERS,
        Q_DATE,
        Q_EXPIRES,
        Q_SECURITY_TOKEN,
    ];
    let mut found: [Option<String>; 7] = Default::default();
    for (raw_name, raw_value) in query_pairs(query.unwrap_or_default()) {
        let Some(name) = decode_component(raw_name) else {
            continue;
        };
        let Some(index) = ALL.iter().position(|p| *p == name) else {
            continue;
        };
        let Some(value) = decode_component(raw_value) else {
            return Err(AuthError::IncompleteSignature(format!(
                "Query-string parameter '{name}' is not valid UTF-8. Re-examine the query-string parameters."
            )));
        };
        let Some(slot) = found.get_mut(index) else {
            continue;
        };
        if slot.is_some() {
            return Err(AuthError::IncompleteSignature(format!(
                "Query-string parameter '{name}' must appear only once. Re-examine the query-string parameters."
            )));
        }
        *slot = Some(value);
    }
    let [algorithm, credential, signature, signed_headers, date, expires, token] = found;
    let present = [
        algorithm.is_some(),
        credential.is_some(),
        signature.is_some(),
        signed_headers.is_some(),
        date.is_some(),
    ];
    if !present.contains(&true) {
        return Err(missing_token());
    }
    let (Some(algorithm), Some(credential), Some(signature), Some(signed_headers), Some(date)) =
        (algorithm, credential, signature, signed_headers, date)
    else {
        let mut msg = String::new();
        for (name, present) in PRESIGN_REQUIRED.iter().zip(present) {
            if !present {
                msg.push_str(&format!(
                    "AWS query-string parameters must include '{name}'. "
                ));
            }
        }
        msg.push_str("Re-examine the query-string parameters.");
        return Err(AuthError::IncompleteSignature(msg));
    };
    let expires = expires.map(|e| parse_expires(&e)).transpose()?;
    let time = request_time(&date, DateSource::Query).ok_or_else(|| date_format_error(&date))?;
    // Only the query parameter counts as the token of a presigned request: a header would not
    // be covered by the signature unless listed, and AWS's presigners put it in the query.
    Ok(AuthParams {
        form: Form::Presigned { expires },
        algorithm: Cow::Owned(algorithm),
        credential: Cow::Owned(credential),
        signed_headers: Cow::Owned(signed_headers),
        signature: Cow::Owned(signature),
        time,
        security_token: token.map(String::into_bytes),
    })
}

fn parse_expires(raw: &str) -> Result<u32, AuthError> {
    if raw.starts_with('-') {
        return Err(AuthError::IncompleteSignature(
            "X-Amz-Expires must be non-negative".to_owned(),
        ));
    }
    if raw.is_empty() || !raw.bytes().all(|b| b.is_ascii_digit()) {
        return Err(AuthError::IncompleteSignature(
            "X-Amz-Expires should be a number".to_owned(),
        ));
    }
    match raw.parse::<u32>() {
        Ok(0) => Err(AuthError::IncompleteSignature(
            "X-Amz-Expires must be greater than 0".to_owned(),
        )),
        Ok(secs) if secs <= MAX_EXPIRES_SECS => Ok(secs),
        _ => Err(AuthError::IncompleteSignature(format!(
            "X-Amz-Expires must be less than a week (in seconds); that is, the given X-Amz-Expires must be less than {MAX_EXPIRES_SECS} seconds"
        ))),
    }
}

/// The five elements of `X-Amz-Credential` / `Credential=`.
#[derive(Debug)]
pub(super) struct Credential<'a> {
    pub access_key_id: &'a str,
    pub date: &'a str,
    pub region: &'a str,
    pub service: &'a str,
    pub terminator: &'a str,
}

impl<'a> Credential<'a> {
    pub(super) fn parse(raw: &'a str) -> Result<Self, AuthError> {
        // AWS ignores trailing slashes when counting the elements.
        let trimmed = raw.trim_end_matches('/');
        let mut parts = trimmed.split('/');
        let parsed = match (
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
        ) {
            (Some(id), Some(date), Some(region), Some(service), Some(terminator), None) => {
                Some(Credential {
                    access_key_id: id,
                    date,
                    region,
                    service,
                    terminator,
                })
            }
            _ => None,
        };
        parsed.ok_or_else(|| {
            AuthError::IncompleteSignature(format!(
                "Credential must have exactly 5 slash-delimited elements, e.g. keyid/date/region/service/term, got '{raw}'"
            ))
        })
    }
}

// Up to this many signed headers, duplicates are found pairwise (no allocation).
const SHORT_LIST: usize = 16;

/// The SignedHeaders list: lowercase names, in the order given, without duplicates. Names
/// sent in lowercase (as every SDK sends them) are borrowed.
#[derive(Debug)]
pub(super) struct SignedHeaders<'a>(Vec<Cow<'a, str>>);

impl<'a> SignedHeaders<'a> {
    pub(super) fn parse(raw: &'a str) -> Result<Self, AuthError> {
        if raw.is_empty() {
            return Ok(SignedHeaders(Vec::new()));
        }
        let valid_name = |n: &str| {
            !n.is_empty()
                && n.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
        };
        let mut names: Vec<Cow<'a, str>> = Vec::with_capacity(raw.len() / 8 + 1);
        for name in raw.split(';') {
            names.push(if name.bytes().any(|b| b.is_ascii_uppercase()) {
                Cow::Owned(name.to_ascii_lowercase())
            } else {
                Cow::Borrowed(name)
            });
        }
        if !names.iter().all(|n| valid_name(n)) {
            return Err(AuthError::IncompleteSignature(format!(
                "SignedHeaders '{raw}' is not a ';'-separated list of header names."
            )));
        }
        // Each header may be signed once: a repeated name would only multiply the bytes hashed.
        // A short list (every SDK's) is checked pairwise; a long one is sorted, so that a
        // crafted list of thousands of names costs n log n, not n squared.
        let repeated = if names.len() <= SHORT_LIST {
            names
                .iter()
                .enumerate()
                .any(|(i, n)| names.get(..i).is_some_and(|before| before.contains(n)))
        } else {
            let mut sorted: Vec<&str> = names.iter().map(|n| n.as_ref()).collect();
            sorted.sort_unstable();
            sorted.windows(2).any(|w| w.first() == w.get(1))
        };
        if repeated {
            return Err(AuthError::IncompleteSignature(format!(
                "SignedHeaders '{raw}' names a header more than once."
            )));
        }
        Ok(SignedHeaders(names))
    }

    pub(super) fn contains(&self, name: &str) -> bool {
        self.0.iter().any(|n| n == name)
    }

    pub(super) fn names(&self) -> &[Cow<'a, str>] {
        &self.0
    }
}

/// A signature as sent: 64 lowercase hex digits, decoded. `None` for anything else.
pub(super) fn parse_signature(raw: &str) -> Option<[u8; 32]> {
    if raw.len() != 64 || !raw.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return None;
    }
    let mut out = [0u8; 32];
    hex::decode_to_slice(raw, &mut out).ok()?;
    Some(out)
}
