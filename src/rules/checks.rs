//! What a detector's regex cannot say: checksums (Luhn, IBAN mod-97), number ranges (IPv4
//! octets, SSN areas), address syntax (IPv6) and the characters around a candidate. Each check
//! takes the text and a candidate's byte span and gives the span to keep, or `None`.
use std::net::Ipv6Addr;

use super::guard::{placeholder_ends_at, placeholder_starts_at};

pub(crate) type Check = fn(&str, usize, usize) -> Option<(usize, usize)>;

/// No further check.
pub(crate) fn any(_: &str, s: usize, e: usize) -> Option<(usize, usize)> {
    Some((s, e))
}

/// The character before `s`; a placeholder the gateway wrote reads as a letter, because it
/// stands for a finding that was glued to this one, so a second pass sees what the first did.
fn before(text: &str, s: usize) -> Option<char> {
    let c = text[..s].chars().next_back();
    if c == Some(']') && placeholder_ends_at(text, s) {
        return Some('x');
    }
    c
}

/// The character after `e` (a placeholder reads as a letter, see `before`).
fn after(text: &str, e: usize) -> Option<char> {
    let c = text[e..].chars().next();
    if c == Some('[') && placeholder_starts_at(text, e) {
        return Some('x');
    }
    c
}

/// `.` followed by a digit right after the span: the candidate is part of a longer dotted number.
fn dotted_on(text: &str, e: usize) -> bool {
    let rest = &text.as_bytes()[e..];
    rest.len() >= 2 && rest[0] == b'.' && rest[1].is_ascii_digit()
}

fn digits(s: &str) -> Vec<u8> {
    s.bytes().filter(u8::is_ascii_digit).map(|b| b - b'0').collect()
}

/// The Luhn checksum of a digit string (card numbers).
pub(crate) fn luhn(digits: &[u8]) -> bool {
    let sum: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &d)| {
            let d = u32::from(d);
            if i % 2 == 1 {
                let x = d * 2;
                if x > 9 {
                    x - 9
                } else {
                    x
                }
            } else {
                d
            }
        })
        .sum();
    sum.is_multiple_of(10)
}

/// A payment card number: 13–19 digits, a major network's first digit (2–6), not one digit
/// repeated, Luhn-valid, and not the fraction or middle of a dotted number.
pub(crate) fn card(text: &str, s: usize, e: usize) -> Option<(usize, usize)> {
    if before(text, s) == Some('.') || dotted_on(text, e) {
        return None;
    }
    let d = digits(&text[s..e]);
    let ok = (13..=19).contains(&d.len()) && (2..=6).contains(&d[0]) && d.iter().any(|&x| x != d[0]) && luhn(&d);
    ok.then_some((s, e))
}

/// IBAN mod-97 (ISO 13616): the first four characters moved to the end, letters as 10..35,
/// the number mod 97 is 1.
pub(crate) fn iban_valid(compact: &str) -> bool {
    let b = compact.as_bytes();
    if !(15..=34).contains(&b.len())
        || !b[..2].iter().all(u8::is_ascii_uppercase)
        || !b[2..4].iter().all(u8::is_ascii_digit)
    {
        return false;
    }
    let mut rem: u32 = 0;
    for &c in b[4..].iter().chain(&b[..4]) {
        let v = match c {
            b'0'..=b'9' => u32::from(c - b'0'),
            b'A'..=b'Z' => u32::from(c - b'A') + 10,
            _ => return false,
        };
        rem = if v >= 10 {
            (rem * 100 + v) % 97
        } else {
            (rem * 10 + v) % 97
        };
    }
    rem == 1
}

/// An IBAN, spaced in groups or not. A candidate that ran into a following word is shortened
/// at its spaces until the checksum holds.
pub(crate) fn iban(text: &str, s: usize, e: usize) -> Option<(usize, usize)> {
    let mut end = e;
    loop {
        let compact: String = text[s..end].chars().filter(|c| *c != ' ').collect();
        if iban_valid(&compact) {
            return Some((s, end));
        }
        end = s + text[s..end].rfind(' ')?;
    }
}

/// A US social security number `AAA-GG-SSSS`: area not 000, 666 or 9xx; group not 00; serial
/// not 0000.
pub(crate) fn us_ssn(text: &str, s: usize, e: usize) -> Option<(usize, usize)> {
    let t = &text[s..e];
    let (area, group, serial) = (&t[0..3], &t[4..6], &t[7..11]);
    let ok = area != "000" && area != "666" && !area.starts_with('9') && group != "00" && serial != "0000";
    (ok && !dotted_on(text, e)).then_some((s, e))
}

/// A dotted-quad IPv4 address: octets 0–255 without leading zeros, not part of a longer
/// dotted number (`1.2.3.4.5`, `v10.0.0.1.2`).
pub(crate) fn ipv4(text: &str, s: usize, e: usize) -> Option<(usize, usize)> {
    if before(text, s) == Some('.') || dotted_on(text, e) {
        return None;
    }
    let ok = text[s..e].split('.').all(|o| {
        !o.is_empty() && o.len() <= 3 && (o == "0" || !o.starts_with('0')) && o.parse::<u16>().is_ok_and(|n| n <= 255)
    });
    ok.then_some((s, e))
}

/// An IPv6 address (`std`'s parser: full, `::`-compressed, IPv4-suffixed), standing alone: not
/// glued to a word or another address part (`std::fmt`, `a::b::c` are not addresses), and with
/// at least one hex digit (`::` alone is not reported).
pub(crate) fn ipv6(text: &str, s: usize, e: usize) -> Option<(usize, usize)> {
    let t = &text[s..e];
    let glued = |c: Option<char>| c.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':' || c == '.');
    if glued(before(text, s)) || after(text, e).is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':') {
        return None;
    }
    if !t.bytes().any(|b| b.is_ascii_hexdigit()) || t.parse::<Ipv6Addr>().is_err() {
        return None;
    }
    Some((s, e))
}

/// A phone number: 8–15 digits after a `+` country code (a candidate that ran into following
/// numbers is shortened at its separators until it fits), exactly 10 in the national form; not
/// glued to letters, digits or a dotted number.
pub(crate) fn phone(text: &str, s: usize, e: usize) -> Option<(usize, usize)> {
    let glued = |c: Option<char>| c.is_some_and(|c| c.is_alphanumeric() || matches!(c, '_' | '+' | '.' | '/' | '-'));
    if glued(before(text, s)) {
        return None;
    }
    let alone =
        |end: usize| !after(text, end).is_some_and(|c| c.is_alphanumeric() || c == '_') && !dotted_on(text, end);
    if !text[s..e].starts_with('+') {
        return (digits(&text[s..e]).len() == 10 && alone(e)).then_some((s, e));
    }
    let mut end = e;
    loop {
        if (8..=15).contains(&digits(&text[s..end]).len()) && alone(end) {
            return Some((s, end));
        }
        end = s + text[s..end].rfind([' ', '.', '-'])?;
    }
}

/// An e-mail address whose local part neither starts nor ends with a dot and fits 64 bytes.
pub(crate) fn email(text: &str, s: usize, e: usize) -> Option<(usize, usize)> {
    let t = &text[s..e];
    let at = t.find('@')?;
    let lead = t[..at].bytes().take_while(|b| *b == b'.').count();
    let local = &t[lead..at];
    (!local.is_empty() && local.len() <= 64 && !local.ends_with('.')).then_some((s + lead, e))
}

/// The value of a `password=` / `token:` assignment: not a placeholder (`<token>`, `${X}`,
/// `********`) and not a plain lowercase word shorter than 16 (`token: required`).
pub(crate) fn assigned_secret(text: &str, s: usize, e: usize) -> Option<(usize, usize)> {
    let v = &text[s..e];
    let first = v.bytes().next()?;
    if matches!(first, b'<' | b'$' | b'{' | b'%' | b'[' | b'(') || v.bytes().all(|b| b == first) {
        return None;
    }
    if v.len() < 16 && v.bytes().all(|b| b.is_ascii_lowercase()) {
        return None;
    }
    Some((s, e))
}

/// Invisible characters, except where they are legitimate: one joiner (U+200C/U+200D) between
/// two emoji or two letters of scripts that use joiners (emoji sequences; Hebrew, Arabic,
/// Persian, Indic and later blocks — never between Latin letters, where it only hides words),
/// and one byte-order mark at the very start of the text.
pub(crate) fn invisible(text: &str, s: usize, e: usize) -> Option<(usize, usize)> {
    let run = &text[s..e];
    if s == 0 && run == "\u{FEFF}" {
        return None;
    }
    let joiner_only = run.chars().all(|c| c == '\u{200C}' || c == '\u{200D}') && run.chars().count() == 1;
    if joiner_only {
        let (b, a) = (before(text, s), after(text, e));
        let joined = |c: Option<char>| c.is_some_and(|c| is_emoji_part(c) || (c as u32 >= 0x0590 && c.is_alphabetic()));
        if joined(b) && joined(a) {
            return None;
        }
    }
    Some((s, e))
}

fn is_emoji_part(c: char) -> bool {
    matches!(c as u32, 0x1F000..=0x1FAFF | 0x2600..=0x27BF | 0xFE0F | 0x2300..=0x23FF | 0x2B00..=0x2BFF)
}
