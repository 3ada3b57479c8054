//! DynamoDB numbers: exact decimals with up to 38 significant digits and a magnitude in
//! 1E-130 ..= 9.99..E+125 (Developer Guide, "Supported data types": Number).
//!
//! Representation: `coeff * 10^exp` with `coeff < 10^38` and no trailing zero digit (zero is
//! `coeff == 0, exp == 0`, never negative). That form is unique per value, so the derived
//! `Eq`/`Hash` are numeric equality ("1.0" == "1"), and 38 digits fit a `u128` (10^38 < 2^127),
//! so comparison and `+`/`-` need no big-number library.

use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;

use super::AttrError;

/// Maximum significant digits (DynamoDB: "A number can have up to 38 digits of precision").
pub const MAX_DIGITS: u32 = 38;
// DynamoDB: positive range 1E-130 to 9.9999999999999999999999999999999999999E+125, so the
// exponent of the leading digit lies in -130..=125.
const MAX_ADJ_EXP: i64 = 125;
const MIN_ADJ_EXP: i64 = -130;
// Saturation bound for parsed exponents: far outside the valid range, far from i64 limits.
const EXP_SATURATE: i64 = 1_000_000_000;

/// 10^0 ..= 10^38.
const POW10: [u128; 39] = {
    let mut t = [1u128; 39];
    let mut i = 1;
    while i < 39 {
        t[i] = t[i - 1] * 10;
        i += 1;
    }
    t
};
const LIMB: u128 = POW10[38];

fn pow10(k: u32) -> u128 {
    POW10.get(k as usize).copied().unwrap_or(LIMB)
}

/// Number of decimal digits of `c` (1 for 0).
fn digit_count(c: u128) -> u32 {
    let n = POW10.partition_point(|&p| p <= c) as u32;
    n.max(1)
}

/// A DynamoDB number. See the module docs for the representation.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Number {
    negative: bool,
    coeff: u128,
    exp: i16,
}

impl Number {
    pub const ZERO: Number = Number {
        negative: false,
        coeff: 0,
        exp: 0,
    };

    pub fn is_zero(&self) -> bool {
        self.coeff == 0
    }

    pub fn is_negative(&self) -> bool {
        self.negative
    }

    /// Number of significant digits (1 for zero).
    pub fn significant_digits(&self) -> u32 {
        digit_count(self.coeff)
    }

    /// DynamoDB's size of a number: "(1 byte per two significant digits) + (1 byte)"
    /// (Developer Guide, "DynamoDB item sizes and formats"), i.e. ceil(digits / 2) + 1, with
    /// leading and trailing zeros trimmed first and zero counted as one digit. The guide calls
    /// this approximate; it is what we charge against the 400 KB item limit.
    pub fn size(&self) -> usize {
        (self.significant_digits() as usize).div_ceil(2) + 1
    }

    /// The negated number (zero stays zero).
    pub fn neg(&self) -> Number {
        if self.is_zero() {
            *self
        } else {
            Number {
                negative: !self.negative,
                ..*self
            }
        }
    }

    /// Exact sum. More than 38 significant digits in the result gives DynamoDB's overflow
    /// message (DynamoDB reports precision loss in arithmetic as "Number overflow"); a result
    /// outside the range gives overflow/underflow.
    pub fn add(&self, o: &Number) -> Result<Number, AttrError> {
        if o.is_zero() {
            return Ok(*self);
        }
        if self.is_zero() {
            return Ok(*o);
        }
        let e = self.exp.min(o.exp);
        let sa = u32::try_from(i32::from(self.exp) - i32::from(e)).unwrap_or(u32::MAX);
        let sb = u32::try_from(i32::from(o.exp) - i32::from(e)).unwrap_or(u32::MAX);
        // With a shift of 39 or more the lowest digit of the lower operand and the leading digit
        // of the higher one are at least 39 positions apart, whatever the signs: too precise.
        if sa > MAX_DIGITS || sb > MAX_DIGITS {
            return Err(AttrError::NumberOverflow);
        }
        let a = Wide::scaled(self.coeff, sa);
        let b = Wide::scaled(o.coeff, sb);
        let (negative, mag) = if self.negative == o.negative {
            (self.negative, a.add(b))
        } else {
            match a.cmp(&b) {
                Ordering::Equal => return Ok(Number::ZERO),
                Ordering::Greater => (self.negative, a.sub(b)),
                Ordering::Less => (o.negative, b.sub(a)),
            }
        };
        let (coeff, exp) = mag.normalize(i64::from(e))?;
        Number::checked(negative, coeff, exp)
    }

    /// Exact difference; same errors as [`Number::add`].
    pub fn sub(&self, o: &Number) -> Result<Number, AttrError> {
        self.add(&o.neg())
    }

    /// Builds a number from a coefficient without trailing zeros and its exponent, checking
    /// DynamoDB's range.
    fn checked(negative: bool, coeff: u128, exp: i64) -> Result<Number, AttrError> {
        if coeff == 0 {
            return Ok(Number::ZERO);
        }
        if coeff >= LIMB {
            return Err(AttrError::NumberPrecision);
        }
        let adj = exp.saturating_add(i64::from(digit_count(coeff)) - 1);
        if adj > MAX_ADJ_EXP {
            return Err(AttrError::NumberOverflow);
        }
        if adj < MIN_ADJ_EXP {
            return Err(AttrError::NumberUnderflow);
        }
        let exp = i16::try_from(exp).map_err(|_| AttrError::NumberOverflow)?;
        Ok(Number {
            negative,
            coeff,
            exp,
        })
    }

    /// The normalized parts, for the binary codec: (negative, coefficient, exponent).
    pub(crate) fn parts(&self) -> (bool, u128, i16) {
        (self.negative, self.coeff, self.exp)
    }

    /// Inverse of [`Number::parts`] for non-zero numbers; rejects any non-canonical or
    /// out-of-range combination. Zero has exactly one encoding (the codecs' zero tag), so a
    /// signed zero coefficient is rejected here (found by the `attr_decode` fuzz target).
    pub(crate) fn from_parts(negative: bool, coeff: u128, exp: i16) -> Option<Number> {
        if coeff == 0 {
            return None;
        }
        if coeff.is_multiple_of(10) {
            return None;
        }
        Number::checked(negative, coeff, i64::from(exp)).ok()
    }

    /// Writes the normalized plain decimal form ("-12.5", "100", "0.001").
    pub(crate) fn write_plain<W: fmt::Write>(&self, w: &mut W) -> fmt::Result {
        if self.coeff == 0 {
            return w.write_str("0");
        }
        if self.negative {
            w.write_str("-")?;
        }
        let mut buf = [0u8; 39];
        let n = digit_count(self.coeff) as usize;
        let mut c = self.coeff;
        for slot in buf.iter_mut().take(n).rev() {
            *slot = b'0' + (c % 10) as u8;
            c /= 10;
        }
        let digits =
            std::str::from_utf8(buf.get(..n).unwrap_or_default()).map_err(|_| fmt::Error)?;
        let exp = i64::from(self.exp);
        if exp >= 0 {
            w.write_str(digits)?;
            write_zeros(w, exp as usize)
        } else {
            let point = n as i64 + exp;
            if point > 0 {
                let (int, frac) = digits.split_at(point as usize);
                w.write_str(int)?;
                w.write_str(".")?;
                w.write_str(frac)
            } else {
                w.write_str("0.")?;
                write_zeros(w, (-point) as usize)?;
                w.write_str(digits)
            }
        }
    }
}

fn write_zeros<W: fmt::Write>(w: &mut W, mut n: usize) -> fmt::Result {
    const ZEROS: &str = "0000000000000000000000000000000000000000000000000000000000000000";
    while n > 0 {
        let k = n.min(ZEROS.len());
        w.write_str(ZEROS.get(..k).unwrap_or_default())?;
        n -= k;
    }
    Ok(())
}

/// A non-negative integer below 2 * 10^76 as two base-10^38 limbs: exactly what the sum or
/// difference of two 38-digit coefficients aligned by at most 38 places needs.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Wide {
    hi: u128,
    lo: u128,
}

impl Wide {
    /// `c * 10^s` for `c < 10^38`, `s <= 38`.
    fn scaled(c: u128, s: u32) -> Wide {
        let split = pow10(MAX_DIGITS.saturating_sub(s));
        Wide {
            hi: c / split,
            lo: (c % split) * pow10(s),
        }
    }

    fn add(self, o: Wide) -> Wide {
        let mut lo = self.lo + o.lo;
        let mut hi = self.hi + o.hi;
        if lo >= LIMB {
            lo -= LIMB;
            hi += 1;
        }
        Wide { hi, lo }
    }

    /// `self - o` for `self >= o`.
    fn sub(self, o: Wide) -> Wide {
        if self.lo >= o.lo {
            Wide {
                hi: self.hi - o.hi,
                lo: self.lo - o.lo,
            }
        } else {
            Wide {
                hi: self.hi - o.hi - 1,
                lo: self.lo + LIMB - o.lo,
            }
        }
    }

    /// Strips trailing zeros into the exponent; errors (overflow, as DynamoDB reports it) when
    /// more than 38 significant digits remain.
    fn normalize(self, mut exp: i64) -> Result<(u128, i64), AttrError> {
        let (mut coeff, tz_exp) = if self.hi == 0 {
            (self.lo, 0)
        } else if self.lo == 0 {
            (self.hi, i64::from(MAX_DIGITS))
        } else {
            let mut tz = 0u32;
            let mut lo = self.lo;
            while lo.is_multiple_of(10) {
                lo /= 10;
                tz += 1;
            }
            if digit_count(self.hi) + MAX_DIGITS - tz > MAX_DIGITS {
                return Err(AttrError::NumberOverflow);
            }
            (self.hi * pow10(MAX_DIGITS - tz) + lo, i64::from(tz))
        };
        exp += tz_exp;
        while coeff != 0 && coeff.is_multiple_of(10) {
            coeff /= 10;
            exp += 1;
        }
        if coeff >= LIMB {
            return Err(AttrError::NumberOverflow);
        }
        Ok((coeff, exp))
    }
}

impl FromStr for Number {
    type Err = AttrError;

    /// Accepts what DynamoDB accepts (Java BigDecimal syntax): optional sign, digits with at
    /// most one '.', at least one digit, optional `e`/`E` exponent with optional sign. No
    /// whitespace, no "NaN"/"Infinity", no hex.
    fn from_str(s: &str) -> Result<Number, AttrError> {
        let b = s.as_bytes();
        let (negative, mut i) = match b.first() {
            Some(b'-') => (true, 1),
            Some(b'+') => (false, 1),
            _ => (false, 0),
        };
        // Positions count mantissa digits (integer and fraction part together).
        let mut ndig: i64 = 0;
        let mut int_digits: i64 = 0;
        let mut seen_point = false;
        let mut first_nz: Option<i64> = None;
        let mut last_nz: i64 = 0;
        let mut coeff: u128 = 0;
        let mut pending_zeros: u32 = 0;
        let mut too_precise = false;
        while let Some(&c) = b.get(i) {
            match c {
                b'0'..=b'9' => {
                    let d = c - b'0';
                    if d == 0 {
                        if first_nz.is_some() {
                            pending_zeros = pending_zeros.saturating_add(1);
                        }
                    } else {
                        let first = *first_nz.get_or_insert(ndig);
                        if ndig - first + 1 > i64::from(MAX_DIGITS) {
                            too_precise = true;
                        } else {
                            coeff = coeff * pow10(pending_zeros + 1) + u128::from(d);
                        }
                        pending_zeros = 0;
                        last_nz = ndig;
                    }
                    ndig += 1;
                    if !seen_point {
                        int_digits += 1;
                    }
                }
                b'.' if !seen_point => seen_point = true,
                b'e' | b'E' => break,
                _ => return Err(AttrError::NumberInvalid),
            }
            i += 1;
        }
        if ndig == 0 {
            return Err(AttrError::NumberInvalid);
        }
        let mut e: i64 = 0;
        if b.get(i).is_some() {
            // At an 'e'/'E'.
            i += 1;
            let eneg = match b.get(i) {
                Some(b'-') => {
                    i += 1;
                    true
                }
                Some(b'+') => {
                    i += 1;
                    false
                }
                _ => false,
            };
            let start = i;
            while let Some(&c) = b.get(i) {
                if !c.is_ascii_digit() {
                    return Err(AttrError::NumberInvalid);
                }
                e = (e * 10 + i64::from(c - b'0')).min(EXP_SATURATE);
                i += 1;
            }
            if i == start {
                return Err(AttrError::NumberInvalid);
            }
            if eneg {
                e = -e;
            }
        }
        let Some(first_nz) = first_nz else {
            return Ok(Number::ZERO);
        };
        let adj = int_digits - first_nz - 1 + e;
        if adj > MAX_ADJ_EXP {
            return Err(AttrError::NumberOverflow);
        }
        if adj < MIN_ADJ_EXP {
            return Err(AttrError::NumberUnderflow);
        }
        if too_precise {
            return Err(AttrError::NumberPrecision);
        }
        Number::checked(negative, coeff, int_digits - last_nz - 1 + e)
    }
}

impl fmt::Display for Number {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.write_plain(f)
    }
}

impl fmt::Debug for Number {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Number(")?;
        self.write_plain(f)?;
        f.write_str(")")
    }
}

impl Ord for Number {
    fn cmp(&self, o: &Number) -> Ordering {
        let class = |n: &Number| match (n.is_zero(), n.negative) {
            (true, _) => 0i8,
            (false, true) => -1,
            (false, false) => 1,
        };
        let (ca, cb) = (class(self), class(o));
        if ca != cb || ca == 0 {
            return ca.cmp(&cb);
        }
        let mag = self.cmp_magnitude(o);
        if self.negative {
            mag.reverse()
        } else {
            mag
        }
    }
}

impl PartialOrd for Number {
    fn partial_cmp(&self, o: &Number) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}

impl Number {
    fn cmp_magnitude(&self, o: &Number) -> Ordering {
        let (da, db) = (digit_count(self.coeff), digit_count(o.coeff));
        let adj_a = i32::from(self.exp) + da as i32;
        let adj_b = i32::from(o.exp) + db as i32;
        adj_a.cmp(&adj_b).then_with(|| {
            // Same leading-digit position: align the shorter coefficient (stays < 10^38).
            if da < db {
                (self.coeff * pow10(db - da)).cmp(&o.coeff)
            } else {
                self.coeff.cmp(&(o.coeff * pow10(da - db)))
            }
        })
    }
}

impl From<i64> for Number {
    fn from(v: i64) -> Number {
        let mut n = Number::from(v.unsigned_abs());
        n.negative = v < 0;
        n
    }
}

impl From<u64> for Number {
    fn from(v: u64) -> Number {
        let mut coeff = u128::from(v);
        let mut exp = 0i16;
        while coeff != 0 && coeff.is_multiple_of(10) {
            coeff /= 10;
            exp += 1;
        }
        Number {
            negative: false,
            coeff,
            exp,
        }
    }
}
