//! Storage-key tokens: truncated HMAC-SHA256 over typed, length-prefixed key values, so
//! storage keys reveal equality of keys within a table and nothing else.

use ring::hmac;

use super::Key32;

/// 128 bits: collisions need ~2^64 keys in one table.
pub const TOKEN_LEN: usize = 16;
pub type Token = [u8; TOKEN_LEN];

/// Domain separation between the partition token and the full-key token.
const DOMAIN_PARTITION: u8 = 1;
const DOMAIN_FULL_KEY: u8 = 2;

/// `T(pk)`: the partition token. `pk` is the canonical typed encoding of the key value.
pub fn partition_token(key: &Key32, pk: &[u8]) -> Token {
    mac(key, DOMAIN_PARTITION, &[pk])
}

/// `T(pk, sk)`: the item token (for tables without a sort key, `sk` is absent).
pub fn item_token(key: &Key32, pk: &[u8], sk: Option<&[u8]>) -> Token {
    match sk {
        Some(sk) => mac(key, DOMAIN_FULL_KEY, &[pk, sk]),
        None => mac(key, DOMAIN_FULL_KEY, &[pk]),
    }
}

fn mac(key: &Key32, domain: u8, parts: &[&[u8]]) -> Token {
    let k = hmac::Key::new(hmac::HMAC_SHA256, key.expose());
    let mut ctx = hmac::Context::with_key(&k);
    ctx.update(&[domain, parts.len() as u8]);
    for p in parts {
        ctx.update(&(p.len() as u64).to_be_bytes());
        ctx.update(p);
    }
    let tag = ctx.sign();
    let mut out = [0u8; TOKEN_LEN];
    out.copy_from_slice(&tag.as_ref()[..TOKEN_LEN]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_keyed_and_unambiguous() {
        let k1 = Key32::from_slice(&[1; 32]).unwrap();
        let k2 = Key32::from_slice(&[2; 32]).unwrap();
        assert_ne!(partition_token(&k1, b"a"), partition_token(&k2, b"a"));
        assert_eq!(partition_token(&k1, b"a"), partition_token(&k1, b"a"));
        // Length prefixes: ("ab","c") and ("a","bc") differ.
        assert_ne!(
            item_token(&k1, b"ab", Some(b"c")),
            item_token(&k1, b"a", Some(b"bc"))
        );
        // A table without sort key never collides with pk + empty sort key.
        assert_ne!(
            item_token(&k1, b"a", None),
            item_token(&k1, b"a", Some(b""))
        );
        assert_ne!(partition_token(&k1, b"a"), item_token(&k1, b"a", None));
    }
}
