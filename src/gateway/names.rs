//! Namespacing on the aggregated endpoint: tools and prompts are exposed as `{slug}__{name}`,
//! resources as `{slug}+{uri}`. Slugs are `[a-z0-9-]`, so the first `__` (or `+`) splits
//! without ambiguity.
use crate::crypto;

/// Separator between server slug and tool/prompt name.
pub const SEP: &str = "__";
/// Longest tool name many model APIs accept.
pub const MAX_TOOL_NAME: usize = 64;
/// Hex digits of the hash that makes a shortened name unique.
const SHORT_HASH_HEX: usize = 8;

/// The exposed name of `tool` of server `slug`. Names that would exceed 64 characters keep as
/// much of the tool name as fits and end in `_` + the first 8 hex digits of SHA-256(tool name):
/// deterministic, so the same tool always has the same name.
pub fn exposed(slug: &str, tool: &str) -> String {
    let full = format!("{slug}{SEP}{tool}");
    if full.len() <= MAX_TOOL_NAME {
        return full;
    }
    let hash = &crypto::sha256_hex(tool.as_bytes())[..SHORT_HASH_HEX];
    let room = MAX_TOOL_NAME.saturating_sub(slug.len() + SEP.len() + 1 + SHORT_HASH_HEX);
    let mut cut = room.min(tool.len());
    while !tool.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{slug}{SEP}{}_{hash}", &tool[..cut])
}

/// Splits an exposed tool or prompt name into `(slug, rest)`.
pub fn split(name: &str) -> Option<(&str, &str)> {
    name.split_once(SEP).filter(|(s, r)| !s.is_empty() && !r.is_empty())
}

/// The exposed URI of a resource (or URI template) of server `slug`.
pub fn resource_uri(slug: &str, uri: &str) -> String {
    format!("{slug}+{uri}")
}

/// Splits an exposed resource URI into `(slug, original uri)`.
pub fn split_uri(uri: &str) -> Option<(&str, &str)> {
    uri.split_once('+').filter(|(s, r)| {
        !s.is_empty()
            && !r.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_names_stay_long_names_shrink_deterministically() {
        assert_eq!(exposed("github", "create_issue"), "github__create_issue");
        let long = "a_really_long_tool_name_that_goes_on_and_on_and_on_forever_and_ever";
        let a = exposed("github", long);
        assert_eq!(a.len(), MAX_TOOL_NAME);
        assert_eq!(a, exposed("github", long));
        assert_ne!(a, exposed("github", &format!("{long}2")));
        assert_eq!(split(&a).unwrap().0, "github");
        let slug32 = "s".repeat(32);
        assert!(exposed(&slug32, long).len() <= MAX_TOOL_NAME);
        assert!(exposed("x", &"é".repeat(40)).len() <= MAX_TOOL_NAME);
    }

    #[test]
    fn splitting() {
        assert_eq!(split("py__echo"), Some(("py", "echo")));
        assert_eq!(split("py__a__b"), Some(("py", "a__b")));
        assert_eq!(split("echo"), None);
        assert_eq!(
            split_uri(&resource_uri("py", "demo://greeting")),
            Some(("py", "demo://greeting"))
        );
        assert_eq!(split_uri("HTTP+x"), None);
        assert_eq!(split_uri("nouri"), None);
    }
}
