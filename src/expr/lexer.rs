//! Expression text -> tokens. Spans are byte offsets into the source so that syntax errors can
//! quote the source the way DynamoDB does (`token: "b", near: "a b"`).

/// One token kind. Keywords (AND, SET, ...) are plain identifiers: whether a word is a keyword
/// depends on where it stands, and the parser decides.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Tok {
    /// `[A-Za-z_][A-Za-z0-9_]*`
    Ident,
    /// `#[A-Za-z0-9_]+`
    Name,
    /// `:[A-Za-z0-9_]+`
    Value,
    /// `[0-9]+` (only meaningful as a list index)
    Number,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    LParen,
    RParen,
    LBracket,
    RBracket,
    Comma,
    Dot,
    Plus,
    Minus,
    /// A character that starts no token (or a lone `#`/`:`). The parser reports a syntax
    /// error when it reaches it, so errors come out in source order.
    Unknown,
    Eof,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Token {
    pub tok: Tok,
    pub start: usize,
    pub end: usize,
}

fn is_word_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// Tokenize `src`. The result always ends with one `Eof` token.
pub fn lex(src: &str) -> Vec<Token> {
    let bytes = src.as_bytes();
    let mut out = Vec::new();
    let mut i = 0usize;
    while let Some(&b) = bytes.get(i) {
        if b.is_ascii_whitespace() {
            i += 1;
            continue;
        }
        let start = i;
        let (tok, end) = match b {
            b'#' | b':' => {
                let mut j = i + 1;
                while bytes.get(j).is_some_and(|&c| is_word_byte(c)) {
                    j += 1;
                }
                if j == i + 1 {
                    (Tok::Unknown, j)
                } else {
                    (if b == b'#' { Tok::Name } else { Tok::Value }, j)
                }
            }
            b'0'..=b'9' => {
                let mut j = i + 1;
                while bytes.get(j).is_some_and(|c| c.is_ascii_digit()) {
                    j += 1;
                }
                (Tok::Number, j)
            }
            b'A'..=b'Z' | b'a'..=b'z' | b'_' => {
                let mut j = i + 1;
                while bytes.get(j).is_some_and(|&c| is_word_byte(c)) {
                    j += 1;
                }
                (Tok::Ident, j)
            }
            b'=' => (Tok::Eq, i + 1),
            b'<' => match bytes.get(i + 1) {
                Some(b'>') => (Tok::Ne, i + 2),
                Some(b'=') => (Tok::Le, i + 2),
                _ => (Tok::Lt, i + 1),
            },
            b'>' => match bytes.get(i + 1) {
                Some(b'=') => (Tok::Ge, i + 2),
                _ => (Tok::Gt, i + 1),
            },
            b'(' => (Tok::LParen, i + 1),
            b')' => (Tok::RParen, i + 1),
            b'[' => (Tok::LBracket, i + 1),
            b']' => (Tok::RBracket, i + 1),
            b',' => (Tok::Comma, i + 1),
            b'.' => (Tok::Dot, i + 1),
            b'+' => (Tok::Plus, i + 1),
            b'-' => (Tok::Minus, i + 1),
            _ => {
                // Report the whole (possibly multi-byte) character.
                let len = src
                    .get(start..)
                    .and_then(|s| s.chars().next())
                    .map_or(1, char::len_utf8);
                (Tok::Unknown, start + len)
            }
        };
        out.push(Token { tok, start, end });
        i = end;
    }
    out.push(Token {
        tok: Tok::Eof,
        start: bytes.len(),
        end: bytes.len(),
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(s: &str) -> Vec<Tok> {
        lex(s).into_iter().map(|t| t.tok).collect()
    }

    #[test]
    fn tokens() {
        assert_eq!(
            kinds("a.b[12] <> :v AND #n>=c"),
            vec![
                Tok::Ident,
                Tok::Dot,
                Tok::Ident,
                Tok::LBracket,
                Tok::Number,
                Tok::RBracket,
                Tok::Ne,
                Tok::Value,
                Tok::Ident,
                Tok::Name,
                Tok::Ge,
                Tok::Ident,
                Tok::Eof
            ]
        );
        assert_eq!(kinds("<=<>"), vec![Tok::Le, Tok::Ne, Tok::Eof]);
    }

    #[test]
    fn bad_chars() {
        let t = lex("a = é");
        assert_eq!(
            (t[2].tok.clone(), t[2].start, t[2].end),
            (Tok::Unknown, 4, 6)
        );
        let t = lex("# = a");
        assert_eq!(
            (t[0].tok.clone(), t[0].start, t[0].end),
            (Tok::Unknown, 0, 1)
        );
    }
}
