//! Resource URIs inside what upstreams send, rewritten into the aggregated namespace on `/mcp`
//! (`{slug}+{uri}`, as list entries are), so that every URI a client sees there can be read,
//! subscribed to or followed through `/mcp` again.
use serde_json::Value;

use super::names;

/// The notification that names one resource by URI.
const RESOURCE_UPDATED: &str = "notifications/resources/updated";

/// Namespaces the resource URIs of one upstream message of server `slug`: the `contents` of a
/// `resources/read` result, `resource_link` and embedded `resource` content in tool results and
/// prompt messages, and the URI of `notifications/resources/updated`.
pub fn namespace(slug: &str, mut msg: Value) -> Value {
    if msg.get("method").and_then(Value::as_str) == Some(RESOURCE_UPDATED) {
        rewrite(slug, msg.pointer_mut("/params/uri"));
        return msg;
    }
    let Some(result) = msg.get_mut("result") else {
        return msg;
    };
    if let Some(Value::Array(contents)) = result.get_mut("contents") {
        for c in contents {
            rewrite(slug, c.get_mut("uri"));
        }
    }
    if let Some(Value::Array(content)) = result.get_mut("content") {
        for c in content {
            content_block(slug, c);
        }
    }
    if let Some(Value::Array(messages)) = result.get_mut("messages") {
        for m in messages {
            match m.get_mut("content") {
                Some(Value::Array(blocks)) => blocks.iter_mut().for_each(|c| content_block(slug, c)),
                Some(c) => content_block(slug, c),
                None => {}
            }
        }
    }
    msg
}

/// Removes the namespace from a URI in a client message bound for `slug` (`None` if it is not
/// in `slug`'s namespace).
pub fn original<'u>(slug: &str, uri: &'u str) -> Option<&'u str> {
    names::split_uri(uri).filter(|(s, _)| *s == slug).map(|(_, u)| u)
}

fn content_block(slug: &str, c: &mut Value) {
    match c.get("type").and_then(Value::as_str) {
        Some("resource_link") => rewrite(slug, c.get_mut("uri")),
        Some("resource") => rewrite(slug, c.pointer_mut("/resource/uri")),
        _ => {}
    }
}

fn rewrite(slug: &str, slot: Option<&mut Value>) {
    if let Some(v) = slot {
        if let Some(u) = v.as_str() {
            *v = Value::String(names::resource_uri(slug, u));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_links_embedded_resources_and_updates_are_namespaced() {
        let read = namespace(
            "ev",
            json!({"jsonrpc":"2.0","id":1,"result":{"contents":[{"uri":"demo://a","text":"x"}]}}),
        );
        assert_eq!(read["result"]["contents"][0]["uri"], "ev+demo://a");
        let call = namespace(
            "ev",
            json!({"jsonrpc":"2.0","id":2,"result":{"content":[
                {"type":"text","text":"demo://not-a-link"},
                {"type":"resource_link","uri":"demo://b","name":"b"},
                {"type":"resource","resource":{"uri":"demo://c","text":"c"}}]}}),
        );
        assert_eq!(call["result"]["content"][0]["text"], "demo://not-a-link");
        assert_eq!(call["result"]["content"][1]["uri"], "ev+demo://b");
        assert_eq!(call["result"]["content"][2]["resource"]["uri"], "ev+demo://c");
        let prompt = namespace(
            "ev",
            json!({"jsonrpc":"2.0","id":3,"result":{"messages":[{"role":"user","content":{"type":"resource","resource":{"uri":"demo://d"}}}]}}),
        );
        assert_eq!(
            prompt["result"]["messages"][0]["content"]["resource"]["uri"],
            "ev+demo://d"
        );
        let note = namespace(
            "ev",
            json!({"jsonrpc":"2.0","method":"notifications/resources/updated","params":{"uri":"demo://e"}}),
        );
        assert_eq!(note["params"]["uri"], "ev+demo://e");
        assert_eq!(original("ev", "ev+demo://e"), Some("demo://e"));
        assert_eq!(original("ev", "py+demo://e"), None);
        // Errors and odd shapes pass untouched.
        let err = json!({"jsonrpc":"2.0","id":4,"error":{"code":1,"message":"x"}});
        assert_eq!(namespace("ev", err.clone()), err);
        let odd =
            json!({"jsonrpc":"2.0","id":5,"result":{"contents":"nope","content":[{"type":"resource_link","uri":7}]}});
        assert_eq!(namespace("ev", odd.clone()), odd);
    }
}
