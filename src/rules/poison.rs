//! Tool poisoning: a tool definition whose text speaks to the model instead of describing the
//! tool. `scan_tool` reads the description, the title (and `annotations.title`) and every string
//! and property name of `inputSchema` / `outputSchema` (descriptions, defaults, examples, enum
//! values; not `$schema`, `$id`, `$ref`, `pattern`, `format`, `type`) and reports the first of:
//! invisible characters; the `prompt_injection` detector's phrases; hidden-instruction markers
//! (`<IMPORTANT>`, `<SYSTEM>`) and asking to keep things from the user; telling the model to read
//! or send credential files (`~/.ssh`, `id_rsa`, `.aws/credentials`, …); URLs whose query
//! carries a placeholder for secrets or conversation data; `curl` / `wget` to a non-local host.
use std::sync::OnceLock;

use regex::Regex;
use serde_json::Value;

use super::checks;
use super::detect;

/// Deepest schema nesting read; a deeper one is itself reported (no real tool needs it).
pub const MAX_SCHEMA_DEPTH: usize = 64;

/// Schema keys whose values are syntax, not prose.
const SYNTAX_KEYS: &[&str] = &["$schema", "$id", "$ref", "pattern", "format", "type"];

const HIDDEN: &str = r"(?i)<\s*/?\s*(?:important|system|instructions?|secret|hidden|critical)\s*>|(?:do\s+not|don't|never|must\s+not)\s+(?:(?:tell|inform|notify|alert)\s+the\s+user|(?:show|reveal|mention|display)\s+(?:it|this|that|these)\s+to\s+the\s+user)|without\s+(?:telling|informing|notifying)\s+the\s+user|(?:hide|conceal)\s+(?:it|this|that)\s+from\s+the\s+user";
const CREDENTIAL_FILES: &str = r"(?i)\b(?:read|cat|open|include|send|upload|pass|provide|attach|copy|contents\s+of)\b[^\n]{0,80}?(?:~/\.ssh(?:/id_\w+|/authorized_keys|/?(?:[^\w/]|$))|\.ssh/id_\w+|\bid_(?:rsa|dsa|ecdsa|ed25519)\b|\.aws/credentials|/etc/(?:passwd|shadow)\b|\.git-credentials|\.netrc\b|\.npmrc\b|\.pypirc\b|\.kube/config|\.docker/config\.json|\bmcp\.json\b|claude_desktop_config\.json)";
const PLACEHOLDER_URL: &str = r"(?i)https?://[^\s'<>)]+[?&]([A-Za-z0-9_.-]*)=(\{\{?\s*[A-Za-z0-9_.-]+\s*\}?\}|\$\{?[A-Za-z0-9_]+\}?|<[A-Za-z0-9_ -]+>|%s)";
const FETCH_COMMAND: &str = r"(?i)\b(?:curl|wget)\b[^\n]{0,200}?https?://([A-Za-z0-9.-]+|\[[0-9A-Fa-f:]+\])";

/// Words that make a URL placeholder look like it carries secrets or the conversation.
const SENSITIVE_WORDS: &[&str] = &[
    "key",
    "token",
    "secret",
    "passw",
    "credential",
    "ssh",
    "cookie",
    "session",
    "auth",
    "env",
    "private",
    "conversation",
    "history",
    "chat",
    "context",
    "prompt",
    "memory",
];

struct Regexes {
    hidden: Regex,
    credential_files: Regex,
    placeholder_url: Regex,
    fetch_command: Regex,
}

fn regexes() -> &'static Regexes {
    static RE: OnceLock<Regexes> = OnceLock::new();
    RE.get_or_init(|| {
        let r = |s: &str| Regex::new(s).expect("poison regex");
        Regexes {
            hidden: r(HIDDEN),
            credential_files: r(CREDENTIAL_FILES),
            placeholder_url: r(PLACEHOLDER_URL),
            fetch_command: r(FETCH_COMMAND),
        }
    })
}

/// Why a tool definition looks poisoned (naming the field), or `None`.
pub fn scan_tool(tool: &Value) -> Option<String> {
    for field in ["description", "title"] {
        if let Some(reason) = tool
            .get(field)
            .and_then(Value::as_str)
            .and_then(|s| scan_text(s, field))
        {
            return Some(reason);
        }
    }
    if let Some(reason) = tool
        .pointer("/annotations/title")
        .and_then(Value::as_str)
        .and_then(|s| scan_text(s, "annotations.title"))
    {
        return Some(reason);
    }
    for field in ["inputSchema", "outputSchema"] {
        if let Some(schema) = tool.get(field) {
            if let Some(reason) = scan_schema(schema, field, 0) {
                return Some(reason);
            }
        }
    }
    None
}

fn scan_schema(v: &Value, path: &str, depth: usize) -> Option<String> {
    if depth > MAX_SCHEMA_DEPTH {
        return Some(format!("{path}: nested deeper than {MAX_SCHEMA_DEPTH}"));
    }
    match v {
        Value::String(s) => scan_text(s, path),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .find_map(|(i, x)| scan_schema(x, &format!("{path}[{i}]"), depth + 1)),
        Value::Object(m) => m.iter().find_map(|(k, x)| {
            let p = format!("{path}.{k}");
            if let Some(reason) = scan_name(k, &p) {
                return Some(reason);
            }
            if SYNTAX_KEYS.contains(&k.as_str()) && !x.is_object() && !x.is_array() {
                return None;
            }
            scan_schema(x, &p, depth + 1)
        }),
        _ => None,
    }
}

/// A property name: invisible characters or an instruction (`ignore_previous_instructions`).
fn scan_name(name: &str, path: &str) -> Option<String> {
    let (injection, invisible) = detect::injection_regexes();
    if has_invisible(invisible, name) {
        return Some(format!("{path}: invisible characters in a property name"));
    }
    let spaced = name.replace(['_', '-'], " ");
    injection
        .is_match(&spaced)
        .then(|| format!("{path}: instruction-like property name"))
}

fn has_invisible(invisible: &Regex, s: &str) -> bool {
    !s.is_ascii()
        && invisible
            .find_iter(s)
            .any(|m| checks::invisible(s, m.start(), m.end()).is_some())
}

fn scan_text(s: &str, path: &str) -> Option<String> {
    let (injection, invisible) = detect::injection_regexes();
    let re = regexes();
    if has_invisible(invisible, s) {
        return Some(format!("{path}: invisible characters"));
    }
    if injection.is_match(s) {
        return Some(format!("{path}: instruction-like text aimed at the model"));
    }
    if re.hidden.is_match(s) {
        return Some(format!("{path}: hidden instructions or keeping things from the user"));
    }
    if re.credential_files.is_match(s) {
        return Some(format!("{path}: asks to read or send credential files"));
    }
    for c in re.placeholder_url.captures_iter(s) {
        let text = format!("{} {}", &c[1], &c[2]).to_ascii_lowercase();
        if SENSITIVE_WORDS.iter().any(|w| text.contains(w)) {
            return Some(format!(
                "{path}: URL with a placeholder for secrets or conversation data"
            ));
        }
    }
    for c in re.fetch_command.captures_iter(s) {
        if !is_local_or_example(&c[1].to_ascii_lowercase()) {
            return Some(format!("{path}: curl/wget to an external host"));
        }
    }
    None
}

fn is_local_or_example(host: &str) -> bool {
    let host = host.trim_end_matches('.');
    host == "localhost"
        || host.ends_with(".localhost")
        || host.starts_with("127.")
        || host == "[::1]"
        || host == "0.0.0.0"
        || ["example.com", "example.org", "example.net"]
            .iter()
            .any(|d| host == *d || host.ends_with(&format!(".{d}")))
}
