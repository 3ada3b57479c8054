//! Key material, random ids and the AES-256-GCM primitive shared by blobs and the state file.

use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};
use ring::rand::{SecureRandom, SystemRandom};
use zeroize::Zeroizing;

use crate::error::KmsError;

/// AES-256 key length in bytes (FIPS 197).
pub const MATERIAL_LEN: usize = 32;
/// AES-GCM tag length in bytes (NIST SP 800-38D, as used by ring's AES_256_GCM).
pub const TAG_LEN: usize = 16;
/// AES-GCM nonce length in bytes (96-bit IV, NIST SP 800-38D recommendation).
pub const IV_LEN: usize = NONCE_LEN;

/// 256 bits of symmetric key material. Zeroized on drop; Debug never shows the bytes.
#[derive(Clone)]
pub struct KeyMaterial(Zeroizing<[u8; MATERIAL_LEN]>);

impl std::fmt::Debug for KeyMaterial {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KeyMaterial([redacted])")
    }
}

impl KeyMaterial {
    pub fn random(rng: &SystemRandom) -> Result<KeyMaterial, KmsError> {
        let mut bytes = Zeroizing::new([0u8; MATERIAL_LEN]);
        rng.fill(bytes.as_mut())
            .map_err(|_| KmsError::Internal("random number generator failed".into()))?;
        Ok(KeyMaterial(bytes))
    }

    /// From exactly 32 bytes; the caller's buffer is left for it to zeroize.
    pub fn from_slice(bytes: &[u8]) -> Option<KeyMaterial> {
        if bytes.len() != MATERIAL_LEN {
            return None;
        }
        let mut out = Zeroizing::new([0u8; MATERIAL_LEN]);
        out.copy_from_slice(bytes);
        Some(KeyMaterial(out))
    }

    pub fn expose(&self) -> &[u8; MATERIAL_LEN] {
        &self.0
    }

    /// Constant-time equality (seeding compares known keys with stored ones).
    pub fn ct_eq(&self, other: &KeyMaterial) -> bool {
        use subtle::ConstantTimeEq;
        self.0.as_slice().ct_eq(other.0.as_slice()).into()
    }

    fn aead(&self) -> Result<LessSafeKey, KmsError> {
        UnboundKey::new(&AES_256_GCM, self.0.as_slice())
            .map(LessSafeKey::new)
            .map_err(|_| KmsError::Internal("bad AES key length".into()))
    }

    /// Seals `plaintext` with a fresh random IV; returns `iv | ciphertext | tag`.
    pub fn seal(
        &self,
        rng: &SystemRandom,
        aad: &[u8],
        plaintext: &[u8],
    ) -> Result<Vec<u8>, KmsError> {
        let mut iv = [0u8; IV_LEN];
        rng.fill(&mut iv)
            .map_err(|_| KmsError::Internal("random number generator failed".into()))?;
        let mut out = Vec::with_capacity(IV_LEN + plaintext.len() + TAG_LEN);
        out.extend_from_slice(&iv);
        let mut body = plaintext.to_vec();
        let tag = self
            .aead()?
            .seal_in_place_separate_tag(Nonce::assume_unique_for_key(iv), Aad::from(aad), &mut body)
            .map_err(|_| KmsError::Internal("encryption failed".into()))?;
        out.extend_from_slice(&body);
        out.extend_from_slice(tag.as_ref());
        // `body` held only ciphertext after sealing; nothing secret is left behind.
        Ok(out)
    }

    /// Opens `iv | ciphertext | tag`; `None` when the tag does not verify.
    pub fn open(&self, aad: &[u8], sealed: &[u8]) -> Result<Option<Zeroizing<Vec<u8>>>, KmsError> {
        let Some((iv, body)) = split_at_checked(sealed, IV_LEN) else {
            return Ok(None);
        };
        if body.len() < TAG_LEN {
            return Ok(None);
        }
        let nonce = match Nonce::try_assume_unique_for_key(iv) {
            Ok(n) => n,
            Err(_) => return Ok(None),
        };
        let mut buf = Zeroizing::new(body.to_vec());
        let key = self.aead()?;
        match key.open_in_place(nonce, Aad::from(aad), buf.as_mut_slice()) {
            Ok(plain) => {
                let len = plain.len();
                buf.truncate(len);
                Ok(Some(buf))
            }
            Err(_) => Ok(None),
        }
    }
}

fn split_at_checked(bytes: &[u8], at: usize) -> Option<(&[u8], &[u8])> {
    if bytes.len() < at {
        None
    } else {
        Some(bytes.split_at(at))
    }
}

pub fn random_bytes(rng: &SystemRandom, n: usize) -> Result<Zeroizing<Vec<u8>>, KmsError> {
    let mut out = Zeroizing::new(vec![0u8; n]);
    rng.fill(out.as_mut_slice())
        .map_err(|_| KmsError::Internal("random number generator failed".into()))?;
    Ok(out)
}

/// A random (version 4) UUID in its canonical lower-case text form.
pub fn random_uuid(rng: &SystemRandom) -> Result<String, KmsError> {
    let mut b = [0u8; 16];
    rng.fill(&mut b)
        .map_err(|_| KmsError::Internal("random number generator failed".into()))?;
    // RFC 4122 section 4.4: version 4 in the high nibble of byte 6, variant 10 in byte 8.
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    Ok(format_uuid(&b))
}

pub fn format_uuid(b: &[u8; 16]) -> String {
    let h = hex::encode(b);
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

/// Parses the canonical 8-4-4-4-12 hex form (either case) into 16 bytes.
pub fn parse_uuid(s: &str) -> Option<[u8; 16]> {
    let bytes = s.as_bytes();
    if bytes.len() != 36 {
        return None;
    }
    let mut hexdigits = String::with_capacity(32);
    for (i, c) in s.chars().enumerate() {
        if matches!(i, 8 | 13 | 18 | 23) {
            if c != '-' {
                return None;
            }
        } else if c.is_ascii_hexdigit() {
            hexdigits.push(c.to_ascii_lowercase());
        } else {
            return None;
        }
    }
    let mut out = [0u8; 16];
    hex::decode_to_slice(&hexdigits, &mut out).ok()?;
    Some(out)
}

/// A 64-hex-character key material id (KMS's KeyMaterialId shape: length 64). Random, so
/// it says nothing about the material.
pub fn random_material_id(rng: &SystemRandom) -> Result<String, KmsError> {
    let b = random_bytes(rng, 32)?;
    Ok(hex::encode(b.as_slice()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn seal_open_round_trip_and_tamper() {
        let rng = SystemRandom::new();
        let k = KeyMaterial::random(&rng).unwrap();
        let sealed = k.seal(&rng, b"aad", b"hello").unwrap();
        assert_eq!(
            k.open(b"aad", &sealed).unwrap().unwrap().as_slice(),
            b"hello"
        );
        assert!(k.open(b"other", &sealed).unwrap().is_none());
        let mut bad = sealed.clone();
        let last = bad.len() - 1;
        bad[last] ^= 1;
        assert!(k.open(b"aad", &bad).unwrap().is_none());
        assert!(k.open(b"aad", &sealed[..10]).unwrap().is_none());
        let other = KeyMaterial::random(&rng).unwrap();
        assert!(other.open(b"aad", &sealed).unwrap().is_none());
        assert!(!k.ct_eq(&other));
        assert!(k.ct_eq(&k.clone()));
    }

    #[test]
    fn debug_is_redacted() {
        let k = KeyMaterial::from_slice(&[0xab; 32]).unwrap();
        assert_eq!(format!("{k:?}"), "KeyMaterial([redacted])");
        assert!(KeyMaterial::from_slice(&[0; 31]).is_none());
    }

    #[test]
    fn uuid_shape() {
        let rng = SystemRandom::new();
        let u = random_uuid(&rng).unwrap();
        assert_eq!(u.len(), 36);
        assert_eq!(&u[14..15], "4");
        let b = parse_uuid(&u).unwrap();
        assert_eq!(format_uuid(&b), u);
        assert!(parse_uuid("not-a-uuid").is_none());
        assert!(parse_uuid("1234abcd-12ab-34cd-56ef-1234567890ag").is_none());
        assert!(parse_uuid("1234abcd-12ab-34cd-56ef-1234567890AB").is_some());
    }

    proptest! {
        #[test]
        fn parse_uuid_never_panics(s in ".{0,40}") {
            let _ = parse_uuid(&s);
        }
    }
}
