//! Namespacing on the aggregated endpoint (`gateway::names`): for every slug the admin API
//! accepts, `{slug}__{tool}` and `{slug}+{uri}` split back into exactly what was joined, long
//! tool names shrink deterministically to at most 64 bytes, and splitting anything a client
//! sends never panics and only ever yields a (slug, name) pair that joins back to the input.
use mcp_gateway::gateway::names::{self, MAX_TOOL_NAME, SEP};
use proptest::prelude::*;

use crate::support::check;

/// Slugs are `[a-z0-9-]`; the admin API caps them at 32 bytes, and these go beyond that.
fn slug() -> impl Strategy<Value = String> {
    "[a-z0-9-]{1,48}"
}

fn is_slug(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// Tool, prompt and resource names: mostly plausible, sometimes any Unicode at all (upstreams
/// choose them, and nothing stops an upstream from choosing badly).
fn name() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-zA-Z0-9_.-]{1,80}",
        "[a-z_]{0,10}__[a-z_]{0,10}",
        prop::collection::vec(any::<char>(), 1..70).prop_map(String::from_iter),
    ]
}

/// A string a client might send as a namespaced name.
fn client_string() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::collection::vec(any::<char>(), 0..40).prop_map(String::from_iter),
        "[a-z_+:/-]{0,20}",
    ]
}

#[test]
fn tool_names_round_trip_or_shrink_deterministically() {
    check("names/exposed", (slug(), name()), |(slug, tool)| {
        let exposed = names::exposed(&slug, &tool);
        prop_assert_eq!(&exposed, &names::exposed(&slug, &tool));
        prop_assert!(exposed.len() <= MAX_TOOL_NAME, "{} bytes: {exposed}", exposed.len());
        let (s, rest) = names::split(&exposed).expect("an exposed name splits");
        prop_assert_eq!(s, slug.as_str());
        if slug.len() + SEP.len() + tool.len() <= MAX_TOOL_NAME {
            prop_assert_eq!(rest, tool.as_str());
        } else {
            // A prefix of the tool name, `_`, and 8 hex digits of its hash.
            let (prefix, hash) = rest.rsplit_once('_').expect("a shortened name ends in _hash");
            prop_assert!(tool.starts_with(prefix));
            prop_assert_eq!(hash.len(), 8);
            prop_assert!(hash.bytes().all(|b| b.is_ascii_hexdigit()));
        }
        Ok(())
    });
}

/// Different tools of one server never share an exposed name unless both were shortened and
/// their hashes collide (a 1-in-2^32 chance per pair, not reachable by generating names).
#[test]
fn different_tools_get_different_names() {
    check("names/distinct", (slug(), name(), name()), |(slug, a, b)| {
        let short = |t: &str| slug.len() + SEP.len() + t.len() <= MAX_TOOL_NAME;
        if a != b && short(&a) == short(&b) {
            prop_assert_ne!(names::exposed(&slug, &a), names::exposed(&slug, &b));
        }
        Ok(())
    });
}

#[test]
fn resource_uris_round_trip() {
    let uri = prop_oneof![
        "[a-z][a-z0-9+.-]{0,8}://[^ ]{0,30}",
        prop::collection::vec(any::<char>(), 1..40).prop_map(String::from_iter),
    ];
    check("names/resource-uri", (slug(), uri), |(slug, uri)| {
        let exposed = names::resource_uri(&slug, &uri);
        prop_assert_eq!(names::split_uri(&exposed), Some((slug.as_str(), uri.as_str())));
        Ok(())
    });
}

#[test]
fn splitting_client_input() {
    check("names/split-any", client_string(), |s| {
        if let Some((slug, rest)) = names::split(&s) {
            prop_assert!(!slug.is_empty() && !rest.is_empty() && !slug.contains(SEP));
            prop_assert_eq!(format!("{slug}{SEP}{rest}"), s.clone());
        }
        if let Some((slug, uri)) = names::split_uri(&s) {
            // Only a slug the admin API could have created ever comes out.
            prop_assert!(is_slug(slug), "{slug}");
            prop_assert!(!uri.is_empty());
            prop_assert_eq!(names::resource_uri(slug, uri), s.clone());
        }
        Ok(())
    });
}
