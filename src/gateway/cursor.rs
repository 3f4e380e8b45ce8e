//! Opaque, tamper-proof pagination cursors for lists the gateway builds itself: an offset bound
//! to the list it belongs to, signed with HMAC-SHA256 under a gateway secret.
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// Bytes of the MAC kept in a cursor (128 bits).
const TAG_BYTES: usize = 16;

/// Signs `(list, offset)` into a cursor.
pub fn encode(key: &[u8], list: &str, offset: usize) -> String {
    let payload = format!("{offset}:{list}");
    let tag = mac(key, &payload);
    format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(payload.as_bytes()),
        URL_SAFE_NO_PAD.encode(tag)
    )
}

/// The offset in a cursor made by `encode` for the same list and key; `None` if it was forged,
/// altered, or belongs to another list.
pub fn decode(key: &[u8], list: &str, cursor: &str) -> Option<usize> {
    let (p, t) = cursor.split_once('.')?;
    let payload = String::from_utf8(URL_SAFE_NO_PAD.decode(p).ok()?).ok()?;
    let tag = URL_SAFE_NO_PAD.decode(t).ok()?;
    let mut m = Hmac::<Sha256>::new_from_slice(key).ok()?;
    m.update(payload.as_bytes());
    m.verify_truncated_left(&tag).ok()?;
    if tag.len() != TAG_BYTES {
        return None;
    }
    let (offset, l) = payload.split_once(':')?;
    (l == list).then(|| offset.parse().ok()).flatten()
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
        let c = encode(b"k", "tools/list:all", 40);
        assert_eq!(decode(b"k", "tools/list:all", &c), Some(40));
        assert_eq!(decode(b"other", "tools/list:all", &c), None);
        assert_eq!(decode(b"k", "prompts/list:all", &c), None);
        let (p, t) = c.split_once('.').unwrap();
        let forged_payload = URL_SAFE_NO_PAD.encode(b"0:tools/list:all");
        assert_eq!(decode(b"k", "tools/list:all", &format!("{forged_payload}.{t}")), None);
        assert_eq!(decode(b"k", "tools/list:all", p), None);
        assert_eq!(decode(b"k", "tools/list:all", "garbage"), None);
        assert_eq!(decode(b"k", "tools/list:all", &format!("{p}.")), None);
    }
}
