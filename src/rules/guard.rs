//! What a guardrail does to text: find spans (detectors, patterns, deny words), keep the
//! non-overlapping ones, and — when it rewrites — replace each with a typed placeholder
//! (`[EMAIL]`) or a keyed token (`[EMAIL:3f2a9c1b]`). Which strings of a JSON value are
//! scanned is `walk`'s (docs/policies.md, *What guardrails scan*).
use std::sync::OnceLock;

use hmac::{Hmac, Mac};
use regex::Regex;
use serde_json::Value;
use sha2::Sha256;

use super::checks;
use super::detect::{self, Kind, Span, KINDS};
use super::model::{Detector, GuardAction, Guardrail, Phase};

/// Hex digits of a hash token (`[EMAIL:3f2a9c1b]`: 32 bits of HMAC-SHA256).
pub const HASH_TOKEN_HEX: usize = 8;

/// Most rewriting passes over one string (see `Apply::string`); each pass only replaces text
/// outside placeholders, so the passes end anyway, and in practice after two.
pub const MAX_REWRITE_PASSES: usize = 8;

/// Keys of a result whose string values are protocol structure, never scanned or rewritten.
const STRUCTURAL_KEYS: &[&str] = &["type", "mimeType", "uri"];

/// Object keys whose string values are secrets in themselves (compared lowercase, without `_`
/// and `-`): the `secret` detector reports the whole value.
const SECRET_KEYS: &[&str] = &[
    "password",
    "passwd",
    "pwd",
    "secret",
    "clientsecret",
    "apikey",
    "accesstoken",
    "refreshtoken",
    "authorization",
    "privatekey",
    "secretkey",
    "accesskey",
];

/// Findings per kind (`Kind::index`).
pub(crate) type Counts = [u32; KINDS];

/// Bytes either side of a placeholder that a rewriting pass after the first scans again (see
/// `Apply::string`): more than any finding glued to a replaced one reaches into in practice.
pub const RESCAN_MARGIN: usize = 256;

/// Strings at least this long are scanned once per value even when they occur several times
/// (the MCP SDKs send a tool's text answer both as `content` text and in `structuredContent`).
const MEMO_MIN_BYTES: usize = 512;

/// How the guardrail treats its findings here: rewrite them (enforce-mode redact/hash) or only
/// count them.
pub(crate) struct Apply<'a> {
    pub guard: &'a Guardrail,
    pub rewrite: bool,
    pub hash_key: &'a [u8; 32],
}

/// A long string already scanned in this value: what it became and what was found in it.
struct Seen {
    original: String,
    key_is_secret: bool,
    output: Option<String>,
    counts: Counts,
}

impl Apply<'_> {
    /// Scans (and maybe rewrites) every string `walk` reaches in `v`. A long string that occurs
    /// again is given the first one's outcome without a second scan (and its findings counted
    /// again, as if scanned).
    pub(crate) fn value(&self, v: &mut Value, phase: Phase) -> Counts {
        let mut counts = [0; KINDS];
        let mut spans = Vec::new();
        let mut seen: Vec<Seen> = Vec::new();
        walk(v, phase, &mut |key, s| {
            if s.len() < MEMO_MIN_BYTES {
                self.string(s, key, &mut spans, &mut counts);
                return;
            }
            let key_is_secret = key.is_some_and(is_secret_key);
            if let Some(hit) = seen
                .iter()
                .find(|m| m.key_is_secret == key_is_secret && same(&m.original, s))
            {
                add(&mut counts, &hit.counts);
                if let Some(out) = &hit.output {
                    out.clone_into(s);
                }
                return;
            }
            let original = s.clone();
            let mut own = [0; KINDS];
            self.string(s, key, &mut spans, &mut own);
            add(&mut counts, &own);
            // Rewritten exactly when it rewrites and found something: no 20 KB comparison.
            let output = (self.rewrite && own.iter().any(|&n| n > 0)).then(|| s.clone());
            seen.push(Seen {
                original,
                key_is_secret,
                output,
                counts: own,
            });
        });
        counts
    }

    /// Scans (and maybe rewrites) each text.
    pub(crate) fn texts(&self, texts: &mut [String]) -> Counts {
        let mut counts = [0; KINDS];
        let mut spans = Vec::new();
        for t in texts {
            self.string(t, None, &mut spans, &mut counts);
        }
        counts
    }

    /// Rewriting runs again on its own output until nothing more is found (at most
    /// `MAX_REWRITE_PASSES`): a placeholder has other neighbours than the text it replaced, so
    /// a finding glued to another shows on the next pass — and a second redaction of the
    /// output then finds nothing. Only the first pass reads the whole string; the later ones
    /// read `RESCAN_MARGIN` bytes around the placeholders just written, where such a finding
    /// can be (and the whole string again if a finding there runs to a window's edge).
    fn string(&self, s: &mut String, key: Option<&str>, spans: &mut Vec<Span>, counts: &mut Counts) {
        scan(self.guard, s, key, spans);
        for pass in 1..=MAX_REWRITE_PASSES {
            if spans.is_empty() {
                return;
            }
            for sp in spans.iter() {
                counts[sp.kind.index()] += 1;
            }
            if !self.rewrite {
                return;
            }
            let (out, marks) = rewrite(s, spans, self.guard.action, self.hash_key);
            *s = out;
            if pass == MAX_REWRITE_PASSES {
                return;
            }
            rescan_near(self.guard, s, &marks, spans);
        }
    }
}

/// `a == b`, eight bytes at a time: wasm's `memcmp` compares byte by byte (a seventh of the
/// result filter's time in a profile of bench/guard.mjs, for its one 20 KB duplicate).
fn same(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    let (wa, wb) = (a.chunks_exact(8), b.chunks_exact(8));
    let tails_equal = wa.remainder() == wb.remainder();
    tails_equal
        && wa.zip(wb).all(|(x, y)| {
            u64::from_ne_bytes(x.try_into().expect("8 bytes")) == u64::from_ne_bytes(y.try_into().expect("8 bytes"))
        })
}

fn add(total: &mut Counts, more: &Counts) {
    for (t, m) in total.iter_mut().zip(more) {
        *t += m;
    }
}

/// The spans of `text` found within `RESCAN_MARGIN` bytes of the byte ranges `marks` (sorted,
/// non-overlapping). The windows around the marks are scanned on their own; a finding that
/// reaches a window's edge (other than the text's) may be cut short there, so then the whole
/// text is scanned instead.
fn rescan_near(g: &Guardrail, text: &str, marks: &[(usize, usize)], spans: &mut Vec<Span>) {
    spans.clear();
    let mut windows: Vec<(usize, usize)> = Vec::new();
    for &(s, e) in marks {
        let mut start = s.saturating_sub(RESCAN_MARGIN);
        while !text.is_char_boundary(start) {
            start -= 1;
        }
        let mut end = (e + RESCAN_MARGIN).min(text.len());
        while !text.is_char_boundary(end) {
            end += 1;
        }
        match windows.last_mut() {
            Some(last) if start <= last.1 => last.1 = end,
            _ => windows.push((start, end)),
        }
    }
    let mut found = Vec::new();
    for &(start, end) in &windows {
        scan(g, &text[start..end], None, &mut found);
        for sp in &found {
            if (sp.start == 0 && start > 0) || (sp.end == end - start && end < text.len()) {
                scan(g, text, None, spans);
                return;
            }
            spans.push(Span {
                start: sp.start + start,
                end: sp.end + start,
                kind: sp.kind,
            });
        }
    }
}

/// The spans a guardrail finds in `text` (under object key `key`), sorted and non-overlapping:
/// of overlapping spans the earliest wins, then the longest. Spans that touch a placeholder the
/// gateway wrote are not findings, so redacting twice changes nothing.
pub(crate) fn scan(g: &Guardrail, text: &str, key: Option<&str>, spans: &mut Vec<Span>) {
    spans.clear();
    detect::find(&g.detect, text, spans);
    for p in &g.patterns {
        detect::push_matches(p.regex(), 0, checks::any, Kind::Pattern, text, spans);
    }
    if let Some(re) = &g.deny_words.regex {
        detect::push_matches(re, 0, checks::any, Kind::DenyWord, text, spans);
    }
    if !text.is_empty() && g.detect.contains(&Detector::Secret) && key.is_some_and(is_secret_key) {
        spans.push(Span {
            start: 0,
            end: text.len(),
            kind: Kind::Detector(Detector::Secret),
        });
    }
    if spans.is_empty() {
        return;
    }
    if text.contains('[') {
        let marks: Vec<(usize, usize)> = placeholder().find_iter(text).map(|m| (m.start(), m.end())).collect();
        spans.retain(|sp| !marks.iter().any(|&(s, e)| sp.start < e && s < sp.end));
    }
    spans.sort_by(|a, b| a.start.cmp(&b.start).then(b.end.cmp(&a.end)));
    let mut end = 0;
    spans.retain(|sp| {
        let keep = sp.start >= end;
        if keep {
            end = sp.end;
        }
        keep
    });
}

fn is_secret_key(key: &str) -> bool {
    if key.len() > 32 {
        return false;
    }
    let k: String = key
        .chars()
        .filter(|c| *c != '_' && *c != '-')
        .map(|c| c.to_ascii_lowercase())
        .collect();
    SECRET_KEYS.contains(&k.as_str())
}

/// A placeholder or token the gateway writes (`[EMAIL]`, `[SECRET:0a1b2c3d]`).
fn placeholder() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| {
        let labels: Vec<&str> = (0..KINDS).map(|i| Kind::from_index(i).label()).collect();
        Regex::new(&format!(
            r"\[(?:{})(?::[0-9a-f]{{{HASH_TOKEN_HEX}}})?\]",
            labels.join("|")
        ))
        .expect("placeholder regex")
    })
}

/// A placeholder ends right before byte `at`.
pub(crate) fn placeholder_ends_at(text: &str, at: usize) -> bool {
    let head = &text[..at];
    head.rfind('[').is_some_and(|open| {
        placeholder()
            .find(&head[open..])
            .is_some_and(|m| m.start() == 0 && m.end() == at - open)
    })
}

/// A placeholder starts at byte `at`.
pub(crate) fn placeholder_starts_at(text: &str, at: usize) -> bool {
    placeholder().find(&text[at..]).is_some_and(|m| m.start() == 0)
}

/// `text` with each span replaced (redact: `[LABEL]`; hash: `[LABEL:token]`), and where each
/// replacement is in the new text.
fn rewrite(text: &str, spans: &[Span], action: GuardAction, key: &[u8; 32]) -> (String, Vec<(usize, usize)>) {
    let mut out = String::with_capacity(text.len() + spans.len() * 16);
    let mut marks = Vec::with_capacity(spans.len());
    let mut at = 0;
    for sp in spans {
        out.push_str(&text[at..sp.start]);
        let start = out.len();
        out.push('[');
        out.push_str(sp.kind.label());
        if action == GuardAction::Hash {
            out.push(':');
            out.push_str(&token(key, sp.kind, &text[sp.start..sp.end]));
        }
        out.push(']');
        marks.push((start, out.len()));
        at = sp.end;
    }
    out.push_str(&text[at..]);
    (out, marks)
}

/// The keyed token of a found value: HMAC-SHA256 of its normal form (card, IBAN, phone and SSN
/// numbers without separators and in upper case; e-mail addresses in lower case), first
/// `HASH_TOKEN_HEX` hex digits. The same value always gives the same token under one key.
pub(crate) fn token(key: &[u8; 32], kind: Kind, value: &str) -> String {
    let normal: String = match kind {
        Kind::Detector(Detector::CreditCard | Detector::Iban | Detector::Phone | Detector::UsSsn) => value
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || *c == '+')
            .map(|c| c.to_ascii_uppercase())
            .collect(),
        Kind::Detector(Detector::Email) => value.to_lowercase(),
        _ => value.to_string(),
    };
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(normal.as_bytes());
    let digest = mac.finalize().into_bytes();
    hex::encode(&digest[..HASH_TOKEN_HEX / 2])
}

/// Calls `f` with every string of `v` that guardrails scan, and the object key it is under
/// (array items inherit their array's key). Arguments: every string value. Results: every
/// string value except those of the keys `type`, `mimeType` and `uri`, of `blob` (base64), and
/// of `data` in an object that has a `mimeType` (image and audio content). Object keys are
/// neither scanned nor rewritten. Iterative, so no depth of nesting can exhaust the stack.
pub(crate) fn walk(v: &mut Value, phase: Phase, f: &mut impl FnMut(Option<&str>, &mut String)) {
    let mut stack: Vec<(Option<&str>, &mut Value)> = vec![(None, v)];
    while let Some((key, node)) = stack.pop() {
        match node {
            Value::String(s) => f(key, s),
            Value::Array(items) => stack.extend(items.iter_mut().map(|item| (key, item))),
            Value::Object(map) => {
                let binary = map.contains_key("mimeType");
                for (k, child) in map.iter_mut() {
                    let skip = phase == Phase::Results
                        && (STRUCTURAL_KEYS.contains(&k.as_str()) || k == "blob" || (binary && k == "data"));
                    if !skip {
                        stack.push((Some(k.as_str()), child));
                    }
                }
            }
            _ => {}
        }
    }
}
