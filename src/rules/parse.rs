//! Reading a policy document: every field checked, unknown fields and bad values refused with
//! the path of the offending value (`rules[0].detect[1]: unknown detector "foo"`), regexes
//! compiled (and size-bounded) once, and the limits below enforced.
use regex::{Regex, RegexBuilder};
use serde::{Deserialize, Deserializer};
use serde_json::{Map, Value};

use super::model::*;
use super::RuleError;
use crate::store::records::SubjectKind;

/// Longest policy name (characters).
pub const MAX_NAME_LEN: usize = 100;
/// Most rules in one policy.
pub const MAX_RULES: usize = 32;
/// Longest subject id in a scope.
pub const MAX_ID_LEN: usize = 128;
/// Longest server or tool glob.
pub const MAX_GLOB_LEN: usize = 128;
/// Longest virtual-server slug (as the admin API allows for slugs).
pub const MAX_SLUG_LEN: usize = 32;
/// Most regexes in one guardrail.
pub const MAX_PATTERNS: usize = 32;
/// Longest regex source (bytes).
pub const MAX_PATTERN_LEN: usize = 1024;
/// Compiled size bound of one admin regex (regex's `size_limit`).
pub const REGEX_SIZE_LIMIT: usize = 256 * 1024;
/// Lazy-DFA cache bound of one admin regex (regex's `dfa_size_limit`).
pub const REGEX_DFA_SIZE_LIMIT: usize = 1024 * 1024;
/// Most deny words in one guardrail.
pub const MAX_DENY_WORDS: usize = 256;
/// Longest deny word or phrase (characters).
pub const MAX_DENY_WORD_LEN: usize = 100;
/// Compiled size bound of a guardrail's one deny-word regex.
pub const DENY_REGEX_SIZE_LIMIT: usize = 4 * 1024 * 1024;
/// Deepest nesting of `all` / `any` / `not`.
pub const MAX_COND_DEPTH: usize = 8;
/// Most condition nodes in one block rule.
pub const MAX_COND_NODES: usize = 64;
/// Most values in an `in` list.
pub const MAX_IN_VALUES: usize = 100;
/// Largest `equals` / `in` value (bytes of its JSON text).
pub const MAX_VALUE_BYTES: usize = 1024;
/// Longest JSON pointer.
pub const MAX_POINTER_LEN: usize = 256;
/// Largest `limit` of a rate limit or quota.
pub const MAX_LIMIT: u64 = 1_000_000_000;
/// Longest rate-limit window (a day; longer spans are quotas).
pub const MAX_WINDOW_S: u64 = 86_400;

/// Reads and validates a policy document (the admin API's body, or what storage kept).
pub fn parse_policy(v: &Value) -> Result<PolicySpec, RuleError> {
    let m = object(v, "")?;
    known(m, "", &["name", "scope", "mode", "rules"])?;
    let name = text(required(m, "", "name")?, "name", MAX_NAME_LEN)?.to_string();
    let scope = match m.get("scope") {
        Some(s) => scope(s, "scope")?,
        None => Scope::default(),
    };
    let mode = match m.get("mode") {
        None => Mode::Enforce,
        Some(v) => match v.as_str() {
            Some("enforce") => Mode::Enforce,
            Some("monitor") => Mode::Monitor,
            _ => return Err(err("mode", "must be \"enforce\" or \"monitor\"")),
        },
    };
    let list = array(required(m, "", "rules")?, "rules", MAX_RULES)?;
    if list.is_empty() {
        return Err(err("rules", "must hold at least one rule"));
    }
    let rules = list
        .iter()
        .enumerate()
        .map(|(i, r)| rule(r, &index("rules", i)))
        .collect::<Result<_, _>>()?;
    Ok(PolicySpec {
        name,
        scope,
        mode,
        rules,
    })
}

/// Stored policies read back through the same checks.
impl<'de> Deserialize<'de> for PolicySpec {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = Value::deserialize(d)?;
        parse_policy(&v).map_err(serde::de::Error::custom)
    }
}

fn scope(v: &Value, path: &str) -> Result<Scope, RuleError> {
    let m = object(v, path)?;
    known(m, path, &["subject", "server", "tool", "virtual_server"])?;
    let subject = match m.get("subject") {
        None => None,
        Some(s) => {
            let p = child(path, "subject");
            let sm = object(s, &p)?;
            known(sm, &p, &["kind", "id"])?;
            let kind = match required(sm, &p, "kind")?.as_str() {
                Some("org") => SubjectKind::Org,
                Some("workspace") => SubjectKind::Workspace,
                Some("team") => SubjectKind::Team,
                Some("user") => SubjectKind::User,
                Some("agent") => SubjectKind::Agent,
                _ => {
                    return Err(err(
                        &child(&p, "kind"),
                        "must be one of workspace, team, user, agent, org",
                    ))
                }
            };
            let id = text(required(sm, &p, "id")?, &child(&p, "id"), MAX_ID_LEN)?.to_string();
            Some(Subject { kind, id })
        }
    };
    let server = match m.get("server") {
        None => None,
        Some(s) => {
            let p = child(path, "server");
            let g = text(s, &p, MAX_GLOB_LEN)?;
            if !g
                .bytes()
                .all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'-' | b'*' | b'?'))
            {
                return Err(err(&p, "must be a server slug or glob ([a-z0-9-], * and ?)"));
            }
            Some(Glob::new(g))
        }
    };
    let tool = match m.get("tool") {
        None => None,
        Some(t) => Some(Glob::new(text(t, &child(path, "tool"), MAX_GLOB_LEN)?)),
    };
    let virtual_server = match m.get("virtual_server") {
        None => None,
        Some(s) => {
            let p = child(path, "virtual_server");
            let slug = text(s, &p, MAX_SLUG_LEN)?;
            if !slug.bytes().all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'-')) {
                return Err(err(&p, "must be a virtual-server slug ([a-z0-9-])"));
            }
            Some(slug.to_string())
        }
    };
    Ok(Scope {
        subject,
        server,
        tool,
        virtual_server,
    })
}

fn rule(v: &Value, path: &str) -> Result<Rule, RuleError> {
    let m = object(v, path)?;
    let kind = required(m, path, "kind")?;
    match kind.as_str() {
        Some("guardrail") => {
            known(m, path, &["kind", "on", "detect", "patterns", "deny_words", "action"])?;
            guardrail(m, path).map(Rule::Guardrail)
        }
        Some("block") => {
            known(m, path, &["kind", "when", "action"])?;
            let when = cond(required(m, path, "when")?, &child(path, "when"), 1, &mut 0)?;
            let action = match required(m, path, "action")?.as_str() {
                Some("deny") => BlockAction::Deny,
                Some("require_approval") => BlockAction::RequireApproval,
                _ => return Err(err(&child(path, "action"), "must be \"deny\" or \"require_approval\"")),
            };
            Ok(Rule::Block(Block { when, action }))
        }
        Some("rate_limit") => {
            known(m, path, &["kind", "per", "limit", "window_s"])?;
            Ok(Rule::RateLimit(RateLimit {
                per: per(m, path)?,
                limit: positive(m, path, "limit", MAX_LIMIT)?,
                window_s: positive(m, path, "window_s", MAX_WINDOW_S)?,
            }))
        }
        Some("quota") => {
            known(m, path, &["kind", "per", "limit", "period"])?;
            let period = match required(m, path, "period")?.as_str() {
                Some("day") => Period::Day,
                Some("month") => Period::Month,
                _ => return Err(err(&child(path, "period"), "must be \"day\" or \"month\"")),
            };
            Ok(Rule::Quota(Quota {
                per: per(m, path)?,
                limit: positive(m, path, "limit", MAX_LIMIT)?,
                period,
            }))
        }
        Some(other) => Err(err(
            &child(path, "kind"),
            format!("unknown kind \"{other}\" (expected guardrail, block, rate_limit or quota)"),
        )),
        None => Err(err(&child(path, "kind"), "must be a string")),
    }
}

fn guardrail(m: &Map<String, Value>, path: &str) -> Result<Guardrail, RuleError> {
    let on_path = child(path, "on");
    let on_list = array(required(m, path, "on")?, &on_path, 2)?;
    if on_list.is_empty() {
        return Err(err(&on_path, "must name \"arguments\", \"results\" or both"));
    }
    let mut on = Vec::new();
    for (i, p) in on_list.iter().enumerate() {
        let phase = match p.as_str() {
            Some("arguments") => Phase::Arguments,
            Some("results") => Phase::Results,
            _ => return Err(err(&index(&on_path, i), "must be \"arguments\" or \"results\"")),
        };
        if on.contains(&phase) {
            return Err(err(&index(&on_path, i), "listed twice"));
        }
        on.push(phase);
    }
    let mut detect = Vec::new();
    if let Some(d) = m.get("detect") {
        let p = child(path, "detect");
        for (i, name) in array(d, &p, Detector::ALL.len())?.iter().enumerate() {
            let ip = index(&p, i);
            let name = name.as_str().ok_or_else(|| err(&ip, "must be a string"))?;
            let det = Detector::from_name(name).ok_or_else(|| err(&ip, format!("unknown detector \"{name}\"")))?;
            if detect.contains(&det) {
                return Err(err(&ip, "listed twice"));
            }
            detect.push(det);
        }
    }
    let mut patterns = Vec::new();
    if let Some(list) = m.get("patterns") {
        let p = child(path, "patterns");
        for (i, src) in array(list, &p, MAX_PATTERNS)?.iter().enumerate() {
            let ip = index(&p, i);
            let pat = pattern(src, &ip)?;
            if pat.0.is_match("") {
                return Err(err(&ip, "matches the empty string"));
            }
            patterns.push(pat);
        }
    }
    let deny_words = match m.get("deny_words") {
        None => DenyWords::default(),
        Some(list) => deny_words(list, &child(path, "deny_words"))?,
    };
    if detect.is_empty() && patterns.is_empty() && deny_words.is_empty() {
        return Err(err(path, "a guardrail needs detect, patterns or deny_words"));
    }
    let action = match required(m, path, "action")?.as_str() {
        Some("redact") => GuardAction::Redact,
        Some("hash") => GuardAction::Hash,
        Some("block") => GuardAction::Block,
        Some("flag") => GuardAction::Flag,
        _ => return Err(err(&child(path, "action"), "must be one of redact, hash, block, flag")),
    };
    Ok(Guardrail {
        on,
        detect,
        patterns,
        deny_words,
        action,
    })
}

fn deny_words(v: &Value, path: &str) -> Result<DenyWords, RuleError> {
    let mut words: Vec<String> = Vec::new();
    for (i, w) in array(v, path, MAX_DENY_WORDS)?.iter().enumerate() {
        let ip = index(path, i);
        let w = text(w, &ip, MAX_DENY_WORD_LEN)?;
        if w.trim().is_empty() {
            return Err(err(&ip, "must not be blank"));
        }
        words.push(w.to_string());
    }
    if words.is_empty() {
        return Ok(DenyWords::default());
    }
    let regex = RegexBuilder::new(&deny_regex_source(&words))
        .case_insensitive(true)
        .size_limit(DENY_REGEX_SIZE_LIMIT)
        .build()
        .map_err(|_| err(path, "too many or too long words to compile"))?;
    Ok(DenyWords {
        words,
        regex: Some(regex),
    })
}

/// One alternation of the escaped words; a word edge that is a word character must be a word
/// boundary (so `cat` does not match `concatenate`, while `c++` still matches `c++`).
fn deny_regex_source(words: &[String]) -> String {
    let is_word = |c: Option<char>| c.is_some_and(|c| c.is_alphanumeric() || c == '_');
    let alts: Vec<String> = words
        .iter()
        .map(|w| {
            let w = w.trim();
            let head = if is_word(w.chars().next()) { r"\b" } else { "" };
            let tail = if is_word(w.chars().last()) { r"\b" } else { "" };
            format!("{head}{}{tail}", regex::escape(w))
        })
        .collect();
    format!("(?:{})", alts.join("|"))
}

fn pattern(v: &Value, path: &str) -> Result<Pattern, RuleError> {
    let src = text(v, path, MAX_PATTERN_LEN)?;
    compile(src, REGEX_SIZE_LIMIT, REGEX_DFA_SIZE_LIMIT)
        .map(Pattern)
        .map_err(|e| err(path, e))
}

/// Compiles a regex under size bounds; the error is one line.
pub(crate) fn compile(src: &str, size: usize, dfa: usize) -> Result<Regex, String> {
    RegexBuilder::new(src)
        .size_limit(size)
        .dfa_size_limit(dfa)
        .build()
        .map_err(|e| match e {
            regex::Error::CompiledTooBig(n) => format!("regex too large (compiled size over {n} bytes)"),
            regex::Error::Syntax(s) => {
                let last = s.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("syntax error");
                format!("invalid regex: {}", last.trim().trim_start_matches("error: "))
            }
            other => format!("invalid regex: {other}"),
        })
}

fn cond(v: &Value, path: &str, depth: usize, nodes: &mut usize) -> Result<Cond, RuleError> {
    if depth > MAX_COND_DEPTH {
        return Err(err(path, format!("conditions nest deeper than {MAX_COND_DEPTH}")));
    }
    *nodes += 1;
    if *nodes > MAX_COND_NODES {
        return Err(err(
            path,
            format!("a rule may hold at most {MAX_COND_NODES} conditions"),
        ));
    }
    let m = object(v, path)?;
    if m.contains_key("arg") {
        return arg_cond(m, path).map(Cond::Arg);
    }
    const KEYS: &str = "all, any, not, tool, annotation or arg";
    let mut keys = m.keys();
    let (Some(key), None) = (keys.next(), keys.next()) else {
        return Err(err(path, format!("a condition has exactly one of {KEYS}")));
    };
    let p = child(path, key);
    let inner = &m[key];
    match key.as_str() {
        "all" | "any" => {
            let list = array(inner, &p, MAX_COND_NODES)?;
            if list.is_empty() {
                return Err(err(&p, "must hold at least one condition"));
            }
            let conds = list
                .iter()
                .enumerate()
                .map(|(i, c)| cond(c, &index(&p, i), depth + 1, nodes))
                .collect::<Result<Vec<_>, _>>()?;
            Ok(if key == "all" {
                Cond::All { all: conds }
            } else {
                Cond::Any { any: conds }
            })
        }
        "not" => Ok(Cond::Not {
            not: Box::new(cond(inner, &p, depth + 1, nodes)?),
        }),
        "tool" => Ok(Cond::Tool {
            tool: Glob::new(text(inner, &p, MAX_GLOB_LEN)?),
        }),
        "annotation" => {
            let am = object(inner, &p)?;
            known(
                am,
                &p,
                &["destructiveHint", "openWorldHint", "readOnlyHint", "idempotentHint"],
            )?;
            if am.is_empty() {
                return Err(err(&p, "must name at least one hint"));
            }
            let hint = |name: &str| -> Result<Option<bool>, RuleError> {
                am.get(name)
                    .map(|b| {
                        b.as_bool()
                            .ok_or_else(|| err(&child(&p, name), "must be true or false"))
                    })
                    .transpose()
            };
            Ok(Cond::Annotation {
                annotation: Hints {
                    destructive: hint("destructiveHint")?,
                    open_world: hint("openWorldHint")?,
                    read_only: hint("readOnlyHint")?,
                    idempotent: hint("idempotentHint")?,
                },
            })
        }
        other => Err(err(path, format!("unknown condition \"{other}\" (expected {KEYS})"))),
    }
}

fn arg_cond(m: &Map<String, Value>, path: &str) -> Result<ArgCond, RuleError> {
    known(m, path, &["arg", "equals", "in", "matches", "<", ">", "exists"])?;
    let ptr_path = child(path, "arg");
    let arg = text_or_empty(&m["arg"], &ptr_path, MAX_POINTER_LEN)?;
    if !valid_pointer(arg) {
        return Err(err(
            &ptr_path,
            "must be a JSON pointer (\"/name\", \"/list/0\"; ~0 and ~1 escapes)",
        ));
    }
    let literal = |v: &Value, p: &str| -> Result<Value, RuleError> {
        if v.to_string().len() > MAX_VALUE_BYTES {
            return Err(err(p, format!("value longer than {MAX_VALUE_BYTES} bytes")));
        }
        Ok(v.clone())
    };
    let equals = m
        .get("equals")
        .map(|v| literal(v, &child(path, "equals")))
        .transpose()?;
    let one_of = match m.get("in") {
        None => None,
        Some(v) => {
            let p = child(path, "in");
            let list = array(v, &p, MAX_IN_VALUES)?;
            Some(
                list.iter()
                    .enumerate()
                    .map(|(i, x)| literal(x, &index(&p, i)))
                    .collect::<Result<Vec<_>, _>>()?,
            )
        }
    };
    let matches = m
        .get("matches")
        .map(|v| pattern(v, &child(path, "matches")))
        .transpose()?;
    let number = |key: &str| -> Result<Option<serde_json::Number>, RuleError> {
        m.get(key)
            .map(|v| match v {
                Value::Number(n) => Ok(n.clone()),
                _ => Err(err(&child(path, key), "must be a number")),
            })
            .transpose()
    };
    let lt = number("<")?;
    let gt = number(">")?;
    let exists = m
        .get("exists")
        .map(|v| {
            v.as_bool()
                .ok_or_else(|| err(&child(path, "exists"), "must be true or false"))
        })
        .transpose()?;
    if equals.is_none() && one_of.is_none() && matches.is_none() && lt.is_none() && gt.is_none() && exists.is_none() {
        return Err(err(path, "an arg condition needs equals, in, matches, <, > or exists"));
    }
    Ok(ArgCond {
        arg: arg.to_string(),
        equals,
        one_of,
        matches,
        lt,
        gt,
        exists,
    })
}

/// RFC 6901: empty (the whole document) or `/`-separated tokens where `~` is `~0` or `~1`.
fn valid_pointer(p: &str) -> bool {
    if p.is_empty() {
        return true;
    }
    if !p.starts_with('/') {
        return false;
    }
    let b = p.as_bytes();
    b.iter()
        .enumerate()
        .all(|(i, &c)| c != b'~' || matches!(b.get(i + 1), Some(b'0') | Some(b'1')))
}

fn per(m: &Map<String, Value>, path: &str) -> Result<Per, RuleError> {
    match required(m, path, "per")?.as_str() {
        Some("principal") => Ok(Per::Principal),
        Some("team") => Ok(Per::Team),
        Some("org") => Ok(Per::Org),
        _ => Err(err(&child(path, "per"), "must be one of principal, team, org")),
    }
}

fn positive(m: &Map<String, Value>, path: &str, key: &str, max: u64) -> Result<u64, RuleError> {
    let p = child(path, key);
    match required(m, path, key)?.as_u64() {
        Some(n) if (1..=max).contains(&n) => Ok(n),
        _ => Err(err(&p, format!("must be an integer from 1 to {max}"))),
    }
}

// --- helpers: typed access with the path in every error ---

pub(crate) fn err(path: &str, message: impl Into<String>) -> RuleError {
    RuleError {
        path: path.to_string(),
        message: message.into(),
    }
}

fn child(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

fn index(path: &str, i: usize) -> String {
    format!("{path}[{i}]")
}

fn object<'v>(v: &'v Value, path: &str) -> Result<&'v Map<String, Value>, RuleError> {
    v.as_object().ok_or_else(|| err(path, "must be an object"))
}

fn known(m: &Map<String, Value>, path: &str, allowed: &[&str]) -> Result<(), RuleError> {
    match m.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(k) => Err(err(path, format!("unknown field \"{k}\""))),
        None => Ok(()),
    }
}

fn required<'v>(m: &'v Map<String, Value>, path: &str, key: &str) -> Result<&'v Value, RuleError> {
    m.get(key).ok_or_else(|| err(&child(path, key), "is required"))
}

fn array<'v>(v: &'v Value, path: &str, max: usize) -> Result<&'v Vec<Value>, RuleError> {
    let list = v.as_array().ok_or_else(|| err(path, "must be an array"))?;
    if list.len() > max {
        return Err(err(path, format!("may hold at most {max} entries")));
    }
    Ok(list)
}

/// A non-empty string of at most `max` characters without control characters.
fn text<'v>(v: &'v Value, path: &str, max: usize) -> Result<&'v str, RuleError> {
    let s = text_or_empty(v, path, max)?;
    if s.is_empty() {
        return Err(err(path, "must not be empty"));
    }
    Ok(s)
}

fn text_or_empty<'v>(v: &'v Value, path: &str, max: usize) -> Result<&'v str, RuleError> {
    let s = v.as_str().ok_or_else(|| err(path, "must be a string"))?;
    if s.chars().count() > max {
        return Err(err(path, format!("longer than {max} characters")));
    }
    if s.chars().any(char::is_control) {
        return Err(err(path, "must not contain control characters"));
    }
    Ok(s)
}
