//! IAM wildcard matching (`*`, `?`) over compiled patterns that may hold policy variables,
//! and ARN patterns matched component by component.
//!
//! Matching never allocates unless a single pattern holds more than [`INLINE_VARS`] variables.

use super::variables::{parse_pieces, ContextKey, Piece};

/// Variables resolved on the stack per pattern before falling back to a heap buffer.
const INLINE_VARS: usize = 8;

/// Case handling of a comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fold {
    /// ARNs and string conditions: case-sensitive.
    Exact,
    /// Action names: ASCII case-insensitive (the pattern is stored lowercased).
    Ascii,
    /// `StringEqualsIgnoreCase`: Unicode lowercase comparison.
    Unicode,
}

/// Result of matching a pattern that may hold variables.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Tri {
    Match,
    NoMatch,
    /// A variable had no value and no default: the pattern matches nothing.
    Unresolved,
}

/// A compiled string pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Pattern {
    pieces: Box<[Piece]>,
    vars: usize,
}

enum Seg<'x> {
    Lit(&'x str),
    Star,
    One,
}

impl Pattern {
    pub(crate) fn new(text: &str, vars: bool, wild: bool) -> Pattern {
        Pattern::from_pieces(parse_pieces(text, vars, wild))
    }

    fn from_pieces(pieces: Vec<Piece>) -> Pattern {
        let vars = pieces.iter().filter(|p| matches!(p, Piece::Var(_))).count();
        Pattern {
            pieces: pieces.into_boxed_slice(),
            vars,
        }
    }

    pub(crate) fn lowercase(mut self) -> Pattern {
        for p in self.pieces.iter_mut() {
            if let Piece::Lit(s) = p {
                *s = s.to_lowercase().into();
            }
        }
        self
    }

    /// The literal text when the pattern has no wildcard and no variable.
    pub(crate) fn as_literal(&self) -> Option<&str> {
        match &self.pieces[..] {
            [] => Some(""),
            [Piece::Lit(s)] => Some(s),
            _ => None,
        }
    }

    /// Keys of the variables this pattern references.
    pub(crate) fn var_keys(&self) -> impl Iterator<Item = &ContextKey> {
        self.pieces.iter().filter_map(|p| match p {
            Piece::Var(v) => Some(&v.key),
            _ => None,
        })
    }

    pub(crate) fn matches<'x>(
        &'x self,
        subject: &str,
        fold: Fold,
        resolve: &mut dyn FnMut(&'x ContextKey) -> Option<&'x str>,
    ) -> Tri {
        if self.vars == 0 {
            return to_tri(match (&self.pieces[..], fold) {
                ([], _) => subject.is_empty(),
                ([Piece::Star], _) => true,
                ([Piece::Lit(l)], Fold::Exact) => **l == *subject,
                ([Piece::Lit(l)], Fold::Ascii) => l.eq_ignore_ascii_case(subject),
                ([Piece::Lit(l), Piece::Star], Fold::Exact) => subject.starts_with(&**l),
                ([Piece::Star, Piece::Lit(l)], Fold::Exact) => subject.ends_with(&**l),
                _ => glob(&self.pieces, &[], subject, fold),
            });
        }
        let mut inline: [&'x str; INLINE_VARS] = [""; INLINE_VARS];
        let mut heap: Vec<&'x str> = Vec::new();
        let vals: &mut [&'x str] = if self.vars <= INLINE_VARS {
            inline.get_mut(..self.vars).unwrap_or(&mut [])
        } else {
            heap.resize(self.vars, "");
            &mut heap
        };
        let mut i = 0;
        for p in self.pieces.iter() {
            if let Piece::Var(v) = p {
                let val = match resolve(&v.key) {
                    Some(s) => s,
                    None => match &v.default {
                        Some(d) => d,
                        None => return Tri::Unresolved,
                    },
                };
                if let Some(slot) = vals.get_mut(i) {
                    *slot = val;
                }
                i += 1;
            }
        }
        to_tri(glob(&self.pieces, vals, subject, fold))
    }
}

fn to_tri(b: bool) -> Tri {
    if b {
        Tri::Match
    } else {
        Tri::NoMatch
    }
}

fn seg<'x>(
    pieces: &'x [Piece],
    vals: &[&'x str],
    var_index: &[usize],
    i: usize,
) -> Option<Seg<'x>> {
    match pieces.get(i)? {
        Piece::Lit(s) => Some(Seg::Lit(s)),
        Piece::Var(_) => Some(Seg::Lit(
            var_index
                .get(i)
                .and_then(|vi| vals.get(*vi))
                .copied()
                .unwrap_or(""),
        )),
        Piece::Star => Some(Seg::Star),
        Piece::One => Some(Seg::One),
    }
}

fn chars_eq(p: char, s: char, fold: Fold) -> bool {
    match fold {
        Fold::Exact => p == s,
        Fold::Ascii => p.eq_ignore_ascii_case(&s),
        Fold::Unicode => p == s || p.to_lowercase().eq(s.to_lowercase()),
    }
}

/// Iterative wildcard match with single-point backtracking (linear in practice, no recursion).
fn glob(pieces: &[Piece], vals: &[&str], subject: &str, fold: Fold) -> bool {
    // Map piece index -> variable ordinal without allocating: computed on the fly below.
    let mut var_index_inline = [0usize; 16];
    let mut var_index_heap: Vec<usize> = Vec::new();
    let var_index: &[usize] = if vals.is_empty() {
        &[]
    } else {
        let slots: &mut [usize] = if pieces.len() <= var_index_inline.len() {
            var_index_inline.get_mut(..pieces.len()).unwrap_or(&mut [])
        } else {
            var_index_heap.resize(pieces.len(), 0);
            &mut var_index_heap
        };
        let mut n = 0;
        for (i, p) in pieces.iter().enumerate() {
            if matches!(p, Piece::Var(_)) {
                if let Some(s) = slots.get_mut(i) {
                    *s = n;
                }
                n += 1;
            }
        }
        slots
    };
    let n = pieces.len();
    // pattern cursor: (piece index, byte offset inside a literal)
    let (mut pi, mut off) = (0usize, 0usize);
    let mut s = 0usize;
    let mut star: Option<(usize, usize)> = None; // (piece index after the star, subject pos)
    loop {
        // skip exhausted literals
        while let Some(Seg::Lit(l)) = seg(pieces, vals, var_index, pi) {
            if off < l.len() {
                break;
            }
            pi += 1;
            off = 0;
        }
        let sc = match subject.get(s..).and_then(|r| r.chars().next()) {
            Some(c) => c,
            None => break,
        };
        let advanced = match seg(pieces, vals, var_index, pi) {
            Some(Seg::Lit(l)) => match l.get(off..).and_then(|r| r.chars().next()) {
                Some(pc) if chars_eq(pc, sc, fold) => {
                    off += pc.len_utf8();
                    s += sc.len_utf8();
                    true
                }
                _ => false,
            },
            Some(Seg::One) => {
                pi += 1;
                off = 0;
                s += sc.len_utf8();
                true
            }
            Some(Seg::Star) => {
                pi += 1;
                off = 0;
                star = Some((pi, s));
                true
            }
            None => false,
        };
        if advanced {
            continue;
        }
        match star {
            Some((sp, ss)) => {
                let step = subject
                    .get(ss..)
                    .and_then(|r| r.chars().next())
                    .map_or(1, char::len_utf8);
                let ns = ss + step;
                star = Some((sp, ns));
                pi = sp;
                off = 0;
                s = ns;
            }
            None => return false,
        }
    }
    // subject consumed: the rest of the pattern must match the empty string
    while pi < n {
        match seg(pieces, vals, var_index, pi) {
            Some(Seg::Star) => {}
            Some(Seg::Lit(l)) if off >= l.len() => {}
            _ => return false,
        }
        pi += 1;
        off = 0;
    }
    true
}

/// The six components of an ARN, borrowed from the subject.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ArnParts<'s> {
    parts: [&'s str; 5], // "arn", partition, service, region, account
    resource: &'s str,
}

impl<'s> ArnParts<'s> {
    pub(crate) fn split(arn: &'s str) -> Option<ArnParts<'s>> {
        let mut it = arn.splitn(6, ':');
        let parts = [it.next()?, it.next()?, it.next()?, it.next()?, it.next()?];
        let resource = it.next()?;
        Some(ArnParts { parts, resource })
    }
}

/// A compiled Resource / Arn* pattern: `*`, or six component patterns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ArnPattern {
    Any,
    Parts {
        parts: Box<[Pattern; 5]>,
        resource: Pattern,
    },
}

impl ArnPattern {
    /// Compiles an ARN pattern; None when it is neither `*` nor a six-part `arn:` pattern.
    pub(crate) fn new(text: &str, vars: bool) -> Option<ArnPattern> {
        if text == "*" {
            return Some(ArnPattern::Any);
        }
        // Split on ':' outside variables (a variable's key holds a colon itself).
        let mut comps: Vec<Vec<Piece>> = vec![Vec::new()];
        for piece in parse_pieces(text, vars, true) {
            match piece {
                Piece::Lit(s) if comps.len() < 6 => {
                    let mut first = true;
                    for chunk in s.splitn(7 - comps.len(), ':') {
                        if !first {
                            comps.push(Vec::new());
                        }
                        first = false;
                        if !chunk.is_empty() {
                            if let Some(c) = comps.last_mut() {
                                c.push(Piece::Lit(chunk.into()));
                            }
                        }
                    }
                }
                other => {
                    if let Some(c) = comps.last_mut() {
                        c.push(other);
                    }
                }
            }
        }
        if comps.len() != 6 {
            return None;
        }
        let mut it = comps.into_iter().map(Pattern::from_pieces);
        let head = [it.next()?, it.next()?, it.next()?, it.next()?, it.next()?];
        if head[0].as_literal() != Some("arn") {
            return None;
        }
        let resource = it.next()?;
        Some(ArnPattern::Parts {
            parts: Box::new(head),
            resource,
        })
    }

    pub(crate) fn var_keys(&self) -> Vec<&ContextKey> {
        match self {
            ArnPattern::Any => Vec::new(),
            ArnPattern::Parts { parts, resource } => parts
                .iter()
                .chain(std::iter::once(resource))
                .flat_map(Pattern::var_keys)
                .collect(),
        }
    }

    pub(crate) fn matches<'x>(
        &'x self,
        subject: Option<&ArnParts<'_>>,
        resolve: &mut dyn FnMut(&'x ContextKey) -> Option<&'x str>,
    ) -> Tri {
        let (parts, resource) = match self {
            ArnPattern::Any => return Tri::Match,
            ArnPattern::Parts { parts, resource } => (parts, resource),
        };
        let subject = match subject {
            Some(s) => s,
            None => return Tri::NoMatch,
        };
        // the resource part is the most selective component: test it first
        let mut out = resource.matches(subject.resource, Fold::Exact, resolve);
        if out == Tri::Unresolved {
            return out;
        }
        for (p, s) in parts.iter().zip(subject.parts.iter()) {
            match p.matches(s, Fold::Exact, resolve) {
                Tri::Match => {}
                Tri::Unresolved => return Tri::Unresolved,
                Tri::NoMatch => out = Tri::NoMatch,
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn m(pat: &str, s: &str) -> bool {
        Pattern::new(pat, false, true).matches(s, Fold::Exact, &mut |_| None) == Tri::Match
    }

    #[test]
    fn wildcards() {
        assert!(m("*", ""));
        assert!(m("a*c", "abbbc"));
        assert!(m("a?c", "abc"));
        assert!(!m("a?c", "ac"));
        assert!(m("*b*", "abc"));
        assert!(!m("abc", "abcd"));
        assert!(m("a*b*c", "a-b-b-c"));
        assert!(m("é?", "éü"));
        assert!(!m("A*", "abc"));
    }

    #[test]
    fn ascii_fold_for_actions() {
        let p = Pattern::new("dynamodb:Get*", false, true).lowercase();
        assert_eq!(
            p.matches("DynamoDB:GetItem", Fold::Ascii, &mut |_| None),
            Tri::Match
        );
    }

    #[test]
    fn variables_are_literal_and_unresolved_fails() {
        let p = Pattern::new("home/${aws:username}/*", true, true);
        assert_eq!(
            p.matches("home/a*/x", Fold::Exact, &mut |_| Some("a*")),
            Tri::Match
        );
        assert_eq!(
            p.matches("home/ab/x", Fold::Exact, &mut |_| Some("a*")),
            Tri::NoMatch
        );
        assert_eq!(
            p.matches("home/a/x", Fold::Exact, &mut |_| None),
            Tri::Unresolved
        );
    }

    #[test]
    fn arn_components() {
        let p = ArnPattern::new("arn:aws:dynamodb:*:123:table/*", false).unwrap();
        let ok = ArnParts::split("arn:aws:dynamodb:us-east-1:123:table/t/index/i:x").unwrap();
        assert_eq!(p.matches(Some(&ok), &mut |_| None), Tri::Match);
        // a star in the region component does not span colons
        let p2 = ArnPattern::new("arn:aws:dynamodb:*:table/*", false);
        assert!(p2.is_none());
        let p3 = ArnPattern::new("arn:aws:*:123:table/t", false);
        assert!(p3.is_none());
        let bad = ArnParts::split("arn:aws:dynamodb:us-east-1:124:table/t").unwrap();
        assert_eq!(p.matches(Some(&bad), &mut |_| None), Tri::NoMatch);
        let v =
            ArnPattern::new("arn:aws:dynamodb:*:${aws:PrincipalAccount}:table/*", true).unwrap();
        assert_eq!(v.matches(Some(&ok), &mut |_| Some("123")), Tri::Match);
    }

    proptest! {
        #[test]
        fn literal_pattern_matches_itself(s in "[a-z/:*?]{0,20}") {
            // escape wildcards by using non-wildcard mode
            let p = Pattern::new(&s, false, false);
            prop_assert_eq!(p.matches(&s, Fold::Exact, &mut |_| None), Tri::Match);
        }

        #[test]
        fn star_prefix_suffix(a in "[a-c]{0,6}", b in "[a-c]{0,6}", mid in "[a-c]{0,6}") {
            let pat = format!("{a}*{b}");
            let subj = format!("{a}{mid}{b}");
            prop_assert!(m(&pat, &subj));
        }

        #[test]
        fn glob_agrees_with_reference(pat in "[ab*?]{0,8}", s in "[ab]{0,8}") {
            prop_assert_eq!(m(&pat, &s), reference(pat.as_bytes(), s.as_bytes()));
        }
    }

    fn reference(p: &[u8], s: &[u8]) -> bool {
        match (p.first(), s.first()) {
            (None, None) => true,
            (None, Some(_)) => false,
            (Some(b'*'), _) => reference(&p[1..], s) || (!s.is_empty() && reference(p, &s[1..])),
            (Some(b'?'), Some(_)) => reference(&p[1..], &s[1..]),
            (Some(c), Some(d)) if c == d => reference(&p[1..], &s[1..]),
            _ => false,
        }
    }
}
