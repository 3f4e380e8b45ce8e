//! Opaque, tamper-proof pagination cursors for lists the gateway builds itself. A cursor is a
//! keyset position — the sort key of the last item returned — bound to the list it belongs to
//! and signed with HMAC-SHA256 under a gateway secret. A key rather than an offset, so items
//! added or removed mid-walk shift nothing: the next page starts after the last key returned,
//! never repeating an item and never skipping one that existed when the walk began.
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// Bytes of the MAC kept in a cursor (128 bits).
const TAG_BYTES: usize = 16;

/// Signs `(list, last key)` into a cursor.
pub fn encode(key: &[u8], list: &str, last: &str) -> String {
    let payload = format!("{list}\n{last}");
    let tag = mac(key, &payload);
    format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(payload.as_bytes()),
        URL_SAFE_NO_PAD.encode(tag)
    )
}

/// The last key in a cursor made by `encode` for the same list and key; `None` if it was
/// forged, altered, or belongs to another list.
pub fn decode(key: &[u8], list: &str, cursor: &str) -> Option<String> {
    let (p, t) = cursor.split_once('.')?;
    let payload = String::from_utf8(URL_SAFE_NO_PAD.decode(p).ok()?).ok()?;
    let tag = URL_SAFE_NO_PAD.decode(t).ok()?;
    if tag.len() != TAG_BYTES {
        return None;
    }
    let mut m = Hmac::<Sha256>::new_from_slice(key).ok()?;
    m.update(payload.as_bytes());
    m.verify_truncated_left(&tag).ok()?;
    // Lists names never contain a newline, so the first one ends the list name.
    let (l, last) = payload.split_once('\n')?;
    (l == list).then(|| last.to_string())
}

/// One page of `items` (sorted by `key`, ascending, keys unique): the items after `after`
/// (all when `None`), at most `size` of them, and the key to continue after when more remain.
pub fn page<'a, T>(
    items: &'a [T],
    key: impl for<'x> Fn(&'x T) -> &'x str,
    after: Option<&str>,
    size: usize,
) -> (&'a [T], Option<String>) {
    let start = match after {
        None => 0,
        Some(a) => items.partition_point(|i| key(i) <= a),
    };
    let end = (start + size.max(1)).min(items.len());
    let slice = &items[start..end];
    let next = (end < items.len())
        .then(|| slice.last().map(|i| key(i).to_string()))
        .flatten();
    (slice, next)
}

fn mac(key: &[u8], payload: &str) -> Vec<u8> {
    let mut m = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key length");
    m.update(payload.as_bytes());
    m.finalize().into_bytes()[..TAG_BYTES].to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_tampering() {
        let c = encode(b"k", "tools/list:all", "py__echo");
        assert_eq!(decode(b"k", "tools/list:all", &c).as_deref(), Some("py__echo"));
        assert_eq!(decode(b"other", "tools/list:all", &c), None);
        assert_eq!(decode(b"k", "prompts/list:all", &c), None);
        let (p, t) = c.split_once('.').unwrap();
        let forged_payload = URL_SAFE_NO_PAD.encode(b"tools/list:all\na");
        assert_eq!(decode(b"k", "tools/list:all", &format!("{forged_payload}.{t}")), None);
        assert_eq!(decode(b"k", "tools/list:all", p), None);
        assert_eq!(decode(b"k", "tools/list:all", "garbage"), None);
        assert_eq!(decode(b"k", "tools/list:all", &format!("{p}.")), None);
    }

    #[test]
    #[allow(clippy::ptr_arg)] // the key function of a Vec<String>
    fn keyset_pages_survive_insertions_mid_walk() {
        let mut items: Vec<String> = ["b", "d", "f", "h"].iter().map(|s| s.to_string()).collect();
        fn k(s: &String) -> &str {
            s
        }
        let (p1, next) = page(&items, k, None, 2);
        assert_eq!(p1, ["b", "d"]);
        // Items added before and after the position mid-walk: none repeated, none skipped.
        items.extend(["a".to_string(), "c".to_string(), "e".to_string()]);
        items.sort();
        let (p2, next) = page(&items, k, next.as_deref(), 2);
        assert_eq!(p2, ["e", "f"]);
        let (p3, next) = page(&items, k, next.as_deref(), 2);
        assert_eq!(p3, ["h"]);
        assert_eq!(next, None);
        // A position whose item was removed still continues after it.
        let (p, _) = page(&items, k, Some("ee"), 10);
        assert_eq!(p, ["f", "h"]);
    }
}
