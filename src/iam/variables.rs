//! Condition context keys and policy variables (`${aws:username}`, `${key, 'default'}`, `${*}`).
//!
//! Keys are compiled once: their canonical AWS spelling is looked up so that the common case
//! (the request context spelled as AWS spells it) is one hash lookup, and keys that describe the
//! principal remember how to derive their value from [`PrincipalInfo`](super::eval::PrincipalInfo)
//! when the context does not carry them, and the transport's and clock's keys how to read them
//! from the request's [`RequestFacts`](super::context::RequestFacts).

/// How a principal-describing or global key is derived when the context does not carry it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Derived {
    None,
    Username,
    UserId,
    PrincipalArn,
    PrincipalAccount,
    PrincipalType,
    PrincipalTag(Box<str>),
    /// A key from the transport or the clock ([`RequestFacts`](super::context::RequestFacts)).
    Global(GlobalKey),
}

/// The global condition keys every request has, apart from the principal's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum GlobalKey {
    SourceIp,
    CurrentTime,
    EpochTime,
    SecureTransport,
    RequestedRegion,
}

/// A condition key as compiled from a policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ContextKey {
    /// AWS's spelling for known keys, else the policy's spelling.
    pub canonical: Box<str>,
    pub derived: Derived,
    /// [`key_hash`] of the name: context lookups compare hashes before names.
    pub hash: u64,
}

/// FNV-1a over the ASCII-lowercased key name (key names are case-insensitive).
pub(crate) fn key_hash(name: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in name.bytes() {
        h ^= u64::from(b.to_ascii_lowercase());
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

// AWS global condition keys and the DynamoDB service keys, in AWS's spelling.
// Source: IAM User Guide "AWS global condition context keys" and the Service Authorization
// Reference for Amazon DynamoDB.
const KNOWN_KEYS: &[&str] = &[
    "aws:CalledVia",
    "aws:CalledViaFirst",
    "aws:CalledViaLast",
    "aws:CurrentTime",
    "aws:EpochTime",
    "aws:MultiFactorAuthAge",
    "aws:MultiFactorAuthPresent",
    "aws:PrincipalAccount",
    "aws:PrincipalArn",
    "aws:PrincipalIsAWSService",
    "aws:PrincipalOrgID",
    "aws:PrincipalOrgPaths",
    "aws:PrincipalServiceName",
    "aws:PrincipalType",
    "aws:Referer",
    "aws:RequestedRegion",
    "aws:ResourceAccount",
    "aws:SecureTransport",
    "aws:SourceAccount",
    "aws:SourceArn",
    "aws:SourceIp",
    "aws:SourceVpc",
    "aws:SourceVpce",
    "aws:TagKeys",
    "aws:TokenIssueTime",
    "aws:UserAgent",
    "aws:userid",
    "aws:username",
    "aws:ViaAWSService",
    "dynamodb:Attributes",
    "dynamodb:EnclosingOperation",
    "dynamodb:FullTableScan",
    "dynamodb:LeadingKeys",
    "dynamodb:ReturnConsumedCapacity",
    "dynamodb:ReturnValues",
    "dynamodb:Select",
];

const TAG_PREFIXES: &[&str] = &["aws:PrincipalTag/", "aws:ResourceTag/", "aws:RequestTag/"];

impl ContextKey {
    pub(crate) fn new(name: &str) -> ContextKey {
        let mut canonical: Box<str> = name.into();
        for k in KNOWN_KEYS {
            if k.eq_ignore_ascii_case(name) {
                canonical = (*k).into();
                break;
            }
        }
        let mut tag: Option<&str> = None;
        for p in TAG_PREFIXES {
            if let (Some(head), Some(rest)) = (name.get(..p.len()), name.get(p.len()..)) {
                if head.eq_ignore_ascii_case(p) {
                    canonical = format!("{p}{rest}").into();
                    if p.starts_with("aws:PrincipalTag") {
                        tag = Some(rest);
                    }
                }
            }
        }
        let derived = match (&*canonical, tag) {
            (_, Some(t)) => Derived::PrincipalTag(t.into()),
            ("aws:username", _) => Derived::Username,
            ("aws:userid", _) => Derived::UserId,
            ("aws:PrincipalArn", _) => Derived::PrincipalArn,
            ("aws:PrincipalAccount", _) => Derived::PrincipalAccount,
            ("aws:PrincipalType", _) => Derived::PrincipalType,
            ("aws:SourceIp", _) => Derived::Global(GlobalKey::SourceIp),
            ("aws:CurrentTime", _) => Derived::Global(GlobalKey::CurrentTime),
            ("aws:EpochTime", _) => Derived::Global(GlobalKey::EpochTime),
            ("aws:SecureTransport", _) => Derived::Global(GlobalKey::SecureTransport),
            ("aws:RequestedRegion", _) => Derived::Global(GlobalKey::RequestedRegion),
            _ => Derived::None,
        };
        let hash = key_hash(&canonical);
        ContextKey {
            canonical,
            derived,
            hash,
        }
    }

    /// Syntactic check: `vendor:name` with a non-empty vendor and name.
    pub(crate) fn is_well_formed(name: &str) -> bool {
        match name.split_once(':') {
            Some((v, n)) => {
                !v.is_empty()
                    && !n.is_empty()
                    && v.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                    && !name.chars().any(char::is_whitespace)
            }
            None => false,
        }
    }
}

/// A policy variable reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct VarRef {
    pub key: ContextKey,
    pub default: Option<Box<str>>,
}

/// One piece of a compiled string pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Piece {
    Lit(Box<str>),
    Var(VarRef),
    /// `*`: any run of characters (wildcard mode only)
    Star,
    /// `?`: exactly one character (wildcard mode only)
    One,
}

/// Splits `text` into pieces. `vars`: policy variables are recognised (Version 2012-10-17).
/// `wild`: `*` and `?` are wildcards (Action, Resource, *Like operators); otherwise literal.
pub(crate) fn parse_pieces(text: &str, vars: bool, wild: bool) -> Vec<Piece> {
    let mut out: Vec<Piece> = Vec::new();
    let mut lit = String::new();
    let mut rest = text;
    while let Some(c) = rest.chars().next() {
        if vars && rest.starts_with("${") {
            if let Some((piece, used)) = parse_variable(rest) {
                match piece {
                    Piece::Lit(s) => lit.push_str(&s),
                    other => {
                        flush(&mut lit, &mut out);
                        out.push(other);
                    }
                }
                rest = rest.get(used..).unwrap_or("");
                continue;
            }
        }
        match c {
            '*' if wild => {
                flush(&mut lit, &mut out);
                // consecutive stars are equivalent to one
                if out.last() != Some(&Piece::Star) {
                    out.push(Piece::Star);
                }
            }
            '?' if wild => {
                flush(&mut lit, &mut out);
                out.push(Piece::One);
            }
            _ => lit.push(c),
        }
        rest = rest.get(c.len_utf8()..).unwrap_or("");
    }
    flush(&mut lit, &mut out);
    out
}

fn flush(lit: &mut String, out: &mut Vec<Piece>) {
    if !lit.is_empty() {
        out.push(Piece::Lit(std::mem::take(lit).into()));
    }
}

/// Parses `${...}` at the start of `s`; returns the piece and the bytes consumed, or None when
/// the text is not a variable (then it is literal text, as IAM treats it).
fn parse_variable(s: &str) -> Option<(Piece, usize)> {
    let body_end = s.find('}')?;
    let body = s.get(2..body_end)?;
    let used = body_end + 1;
    match body {
        "*" | "?" | "$" => return Some((Piece::Lit(body.into()), used)),
        _ => {}
    }
    let (key, default) = match body.split_once(',') {
        Some((k, d)) => {
            let d = d.trim();
            let inner = d.strip_prefix('\'')?.strip_suffix('\'')?;
            (k.trim(), Some(inner.into()))
        }
        None => (body.trim(), None),
    };
    if !ContextKey::is_well_formed(key) {
        return None;
    }
    Some((
        Piece::Var(VarRef {
            key: ContextKey::new(key),
            default,
        }),
        used,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variables_and_escapes() {
        let p = parse_pieces("a/${aws:username}/${*}x${?}${$}*", true, true);
        assert_eq!(p.len(), 4);
        assert_eq!(p[0], Piece::Lit("a/".into()));
        assert!(matches!(&p[1], Piece::Var(v) if &*v.key.canonical == "aws:username"));
        assert_eq!(p[2], Piece::Lit("/*x?$".into()));
        assert_eq!(p[3], Piece::Star);
    }

    #[test]
    fn default_values_and_literal_when_disabled() {
        let p = parse_pieces("${aws:PrincipalTag/team, 'none'}", true, false);
        match &p[..] {
            [Piece::Var(v)] => {
                assert_eq!(v.default.as_deref(), Some("none"));
                assert_eq!(v.key.derived, Derived::PrincipalTag("team".into()));
            }
            other => panic!("unexpected {other:?}"),
        }
        let lit = parse_pieces("${aws:username}", false, true);
        assert_eq!(lit, vec![Piece::Lit("${aws:username}".into())]);
        // unterminated or malformed: literal text
        assert_eq!(
            parse_pieces("${aws:username", true, false),
            vec![Piece::Lit("${aws:username".into())]
        );
    }

    #[test]
    fn canonical_spelling() {
        assert_eq!(&*ContextKey::new("AWS:SOURCEIP").canonical, "aws:SourceIp");
        assert_eq!(
            &*ContextKey::new("aws:principaltag/Dept").canonical,
            "aws:PrincipalTag/Dept"
        );
        assert_eq!(&*ContextKey::new("foo:Bar").canonical, "foo:Bar");
    }
}
