//! Typed condition values: exact decimals, instants (ISO 8601 or epoch), CIDR blocks.
//! Parsers borrow their input and never allocate, so context values are parsed per request
//! without cost proportional to anything but the value.

use std::cmp::Ordering;
use std::net::IpAddr;

/// An exact decimal number `[+-]digits[.digits]`, borrowed from its text.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Decimal<'s> {
    neg: bool,
    int: &'s str,  // no leading zeros
    frac: &'s str, // no trailing zeros
}

impl<'s> Decimal<'s> {
    pub(crate) fn parse(s: &'s str) -> Option<Decimal<'s>> {
        let t = s.trim();
        let (neg, body) = match t.as_bytes().first() {
            Some(b'-') => (true, t.get(1..)?),
            Some(b'+') => (false, t.get(1..)?),
            _ => (false, t),
        };
        let (int, frac) = match body.split_once('.') {
            Some((i, f)) => (i, f),
            None => (body, ""),
        };
        if int.is_empty() && frac.is_empty() {
            return None;
        }
        if !int.bytes().all(|b| b.is_ascii_digit()) || !frac.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let int = int.trim_start_matches('0');
        let frac = frac.trim_end_matches('0');
        let neg = neg && !(int.is_empty() && frac.is_empty());
        Some(Decimal { neg, int, frac })
    }

    fn cmp_magnitude(&self, o: &Decimal<'_>) -> Ordering {
        self.int
            .len()
            .cmp(&o.int.len())
            .then_with(|| self.int.cmp(o.int))
            // trailing zeros are stripped, so lexicographic order is numeric order
            .then_with(|| self.frac.cmp(o.frac))
    }

    pub(crate) fn compare(&self, o: &Decimal<'_>) -> Ordering {
        match (self.neg, o.neg) {
            (false, true) => Ordering::Greater,
            (true, false) => Ordering::Less,
            (false, false) => self.cmp_magnitude(o),
            (true, true) => o.cmp_magnitude(self),
        }
    }
}

/// Nanoseconds since the Unix epoch.
pub(crate) type Instant = i128;

/// Parses an ISO 8601 date/time (`2024-01-31`, `2024-01-31T10:00Z`, `...T10:00:00.5+02:00`)
/// or epoch seconds (`1700000000`), the forms AWS accepts for Date operators.
pub(crate) fn parse_instant(s: &str) -> Option<Instant> {
    let s = s.trim();
    // An all-digit value is epoch seconds ("2024-01-31" has dashes, so it is never ambiguous).
    if !s.is_empty() && s.len() <= 30 && s.bytes().all(|b| b.is_ascii_digit()) {
        let secs: i128 = s.parse().ok()?;
        return secs.checked_mul(1_000_000_000);
    }
    parse_iso(s)
}

fn num(s: &str, range: std::ops::Range<usize>) -> Option<u32> {
    let t = s.get(range)?;
    if t.bytes().all(|b| b.is_ascii_digit()) {
        t.parse().ok()
    } else {
        None
    }
}

fn parse_iso(s: &str) -> Option<Instant> {
    let b = s.as_bytes();
    if b.len() < 10 || b.get(4) != Some(&b'-') || b.get(7) != Some(&b'-') {
        return None;
    }
    let year = num(s, 0..4)? as i32;
    let month = time::Month::try_from(u8::try_from(num(s, 5..7)?).ok()?).ok()?;
    let day = u8::try_from(num(s, 8..10)?).ok()?;
    let date = time::Date::from_calendar_date(year, month, day).ok()?;
    let days = i128::from(date.to_julian_day()) - 2_440_588; // Julian day of 1970-01-01
    let mut nanos: i128 = days * 86_400 * 1_000_000_000;
    let rest = s.get(10..)?;
    if rest.is_empty() {
        return Some(nanos);
    }
    let rest = rest.strip_prefix(['T', 't'])?;
    let h = num(rest, 0..2)?;
    if rest.get(2..3)? != ":" {
        return None;
    }
    let mi = num(rest, 3..5)?;
    let mut i = 5;
    let mut sec = 0;
    let mut frac_nanos: i128 = 0;
    if rest.get(5..6) == Some(":") {
        sec = num(rest, 6..8)?;
        i = 8;
        if rest.get(8..9) == Some(".") {
            let digits: &str = rest.get(9..)?;
            let n = digits.bytes().take_while(u8::is_ascii_digit).count();
            if n == 0 {
                return None;
            }
            let mut scale: i128 = 100_000_000;
            for d in digits.bytes().take(n) {
                frac_nanos += i128::from(d - b'0') * scale;
                scale /= 10;
            }
            i = 9 + n;
        }
    }
    if h > 24 || mi > 59 || sec > 60 {
        return None;
    }
    nanos += (i128::from(h) * 3600 + i128::from(mi) * 60 + i128::from(sec)) * 1_000_000_000;
    nanos += frac_nanos;
    let zone = rest.get(i..)?;
    let offset_secs: i128 = match zone {
        "" | "Z" | "z" => 0,
        _ => {
            let sign: i128 = match zone.as_bytes().first()? {
                b'+' => 1,
                b'-' => -1,
                _ => return None,
            };
            let z = zone.get(1..)?;
            let (oh, om) = match z.len() {
                5 if z.get(2..3) == Some(":") => (num(z, 0..2)?, num(z, 3..5)?),
                4 => (num(z, 0..2)?, num(z, 2..4)?),
                2 => (num(z, 0..2)?, 0),
                _ => return None,
            };
            sign * (i128::from(oh) * 3600 + i128::from(om) * 60)
        }
    };
    Some(nanos - offset_secs * 1_000_000_000)
}

/// An IPv4 or IPv6 CIDR block (a bare address is a /32 or /128).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Cidr {
    addr: IpAddr,
    prefix: u8,
}

impl Cidr {
    pub(crate) fn parse(s: &str) -> Option<Cidr> {
        let s = s.trim();
        let (a, p) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let addr: IpAddr = a.parse().ok()?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match p {
            Some(p) if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) => p.parse().ok()?,
            Some(_) => return None,
            None => max,
        };
        if prefix > max {
            return None;
        }
        Some(Cidr { addr, prefix })
    }

    pub(crate) fn contains(&self, ip: IpAddr) -> bool {
        let ip = match (self.addr, ip) {
            (IpAddr::V4(_), IpAddr::V6(v6)) => match v6.to_ipv4_mapped() {
                Some(v4) => IpAddr::V4(v4),
                None => return false,
            },
            _ => ip,
        };
        match (self.addr, ip) {
            (IpAddr::V4(n), IpAddr::V4(a)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(n) & mask == u32::from(a) & mask
            }
            (IpAddr::V6(n), IpAddr::V6(a)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(n) & mask == u128::from(a) & mask
            }
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn cmp(a: &str, b: &str) -> Ordering {
        Decimal::parse(a)
            .unwrap()
            .compare(&Decimal::parse(b).unwrap())
    }

    #[test]
    fn decimals() {
        assert_eq!(cmp("10", "9.99"), Ordering::Greater);
        assert_eq!(cmp("0.5", "0.50"), Ordering::Equal);
        assert_eq!(cmp("-0", "0"), Ordering::Equal);
        assert_eq!(cmp("-1.5", "-1.25"), Ordering::Less);
        assert_eq!(cmp("007", "7.000"), Ordering::Equal);
        assert_eq!(cmp("0.1", "0.09"), Ordering::Greater);
        assert!(Decimal::parse("1e3").is_none());
        assert!(Decimal::parse(".").is_none());
        assert!(Decimal::parse("abc").is_none());
    }

    #[test]
    fn instants() {
        let day = parse_instant("2024-01-31").unwrap();
        assert_eq!(parse_instant("2024-01-31T00:00:00Z"), Some(day));
        assert_eq!(parse_instant("2024-01-31T02:00+02:00"), Some(day));
        assert_eq!(parse_instant("1706659200"), Some(day));
        assert_eq!(
            parse_instant("2024-01-31T00:00:00.5Z"),
            Some(day + 500_000_000)
        );
        assert!(parse_instant("2024-02-30").is_none());
        assert!(parse_instant("yesterday").is_none());
        assert!(parse_instant("2024-01-31T10").is_none());
    }

    #[test]
    fn cidrs() {
        let c = Cidr::parse("10.1.0.0/16").unwrap();
        assert!(c.contains("10.1.200.3".parse().unwrap()));
        assert!(!c.contains("10.2.0.1".parse().unwrap()));
        assert!(c.contains("::ffff:10.1.0.9".parse().unwrap()));
        let v6 = Cidr::parse("2001:db8::/32").unwrap();
        assert!(v6.contains("2001:db8:1::1".parse().unwrap()));
        assert!(!v6.contains("10.1.0.1".parse().unwrap()));
        assert!(Cidr::parse("0.0.0.0/0")
            .unwrap()
            .contains("1.2.3.4".parse().unwrap()));
        assert!(Cidr::parse("10.0.0.0/33").is_none());
        assert!(Cidr::parse("10.0.0.0/").is_none());
    }

    proptest! {
        #[test]
        fn decimal_order_matches_integers(a in -100000i64..100000, b in -100000i64..100000) {
            prop_assert_eq!(cmp(&a.to_string(), &b.to_string()), a.cmp(&b));
            let fa = format!("{}.{:03}", a / 1000, (a % 1000).abs());
            let fa = if a < 0 && a / 1000 == 0 { format!("-{fa}") } else { fa };
            let fb = format!("{}.{:03}", b / 1000, (b % 1000).abs());
            let fb = if b < 0 && b / 1000 == 0 { format!("-{fb}") } else { fb };
            prop_assert_eq!(cmp(&fa, &fb), a.cmp(&b));
        }
    }
}
