//! The built-in detectors: for each, the regexes that find candidates and the check that keeps
//! the real ones (`checks`). Compiled once per isolate. docs/policies.md, *Detectors*, lists
//! exactly what each one finds; keep the two in step.
use std::sync::OnceLock;

use regex::{Regex, RegexSet};

use super::checks::{self, Check};
use super::model::Detector;

/// What found a span.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Detector(Detector),
    Pattern,
    DenyWord,
}

/// How many kinds there are (`Kind::index` is below it).
pub(crate) const KINDS: usize = Detector::ALL.len() + 2;

impl Kind {
    /// The placeholder's word (`[EMAIL]`).
    pub(crate) fn label(self) -> &'static str {
        match self {
            Self::Detector(d) => match d {
                Detector::Email => "EMAIL",
                Detector::Phone => "PHONE",
                Detector::CreditCard => "CREDIT_CARD",
                Detector::Iban => "IBAN",
                Detector::UsSsn => "US_SSN",
                Detector::IpAddress => "IP_ADDRESS",
                Detector::Secret => "SECRET",
                Detector::PromptInjection => "PROMPT_INJECTION",
            },
            Self::Pattern => "PATTERN",
            Self::DenyWord => "DENY_WORD",
        }
    }

    /// The name in decisions (`email`, `pattern`, `deny_word`).
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Detector(d) => d.name(),
            Self::Pattern => "pattern",
            Self::DenyWord => "deny_word",
        }
    }

    pub(crate) fn index(self) -> usize {
        match self {
            Self::Detector(d) => d as usize,
            Self::Pattern => Detector::ALL.len(),
            Self::DenyWord => Detector::ALL.len() + 1,
        }
    }

    pub(crate) fn from_index(i: usize) -> Self {
        match i.checked_sub(Detector::ALL.len()) {
            None => Self::Detector(Detector::ALL[i]),
            Some(0) => Self::Pattern,
            Some(_) => Self::DenyWord,
        }
    }
}

/// One finding: a byte span of the text and what found it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Span {
    pub start: usize,
    pub end: usize,
    pub kind: Kind,
}

/// One regex of a detector: its source, the capture group that is the finding (0: the whole
/// match) and the check a candidate must pass.
struct Matcher {
    detector: Detector,
    source: &'static str,
    group: usize,
    check: Check,
}

// ASCII word boundaries (`(?-u:\b)`) keep the lazy DFA on non-ASCII text.
const EMAIL: &str = r"[A-Za-z0-9._%+-]+@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.[A-Za-z]{2,24}(?-u:\b)";
const PHONE_INTL: &str = r"\+[1-9][0-9]{0,2}(?:[ .-]?\(?[0-9]{1,4}\)?)(?:[ .-]?[0-9]{2,4}){2,5}";
const PHONE_NATIONAL: &str = r"(?:\([0-9]{3}\)[ .-]?|(?-u:\b)[0-9]{3}[ .-])[0-9]{3}[ .-][0-9]{4}(?-u:\b)";
const CARD: &str =
    r"(?-u:\b)(?:[0-9]{13,19}|[0-9]{4}(?:[ -][0-9]{4}){2}[ -][0-9]{1,7}|[0-9]{4}[ -][0-9]{6}[ -][0-9]{4,5})(?-u:\b)";
const IBAN: &str = r"(?-u:\b)[A-Z]{2}[0-9]{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,3})?(?-u:\b)";
const US_SSN: &str = r"(?-u:\b)[0-9]{3}-[0-9]{2}-[0-9]{4}(?-u:\b)";
const IPV4: &str = r"(?-u:\b)(?:[0-9]{1,3}\.){3}[0-9]{1,3}(?-u:\b)";
const IPV6: &str = r"(?:[0-9A-Fa-f]{0,4}:){2,7}(?:(?:[0-9]{1,3}\.){3}[0-9]{1,3}|[0-9A-Fa-f]{1,4})?";
const AWS_KEY_ID: &str = r"(?-u:\b)(?:AKIA|ASIA|ABIA|ACCA)[0-9A-Z]{16}(?-u:\b)";
const GITHUB_TOKEN: &str = r"(?-u:\b)(?:gh[pousr]_[A-Za-z0-9]{36,251}|github_pat_[A-Za-z0-9_]{22,255})(?-u:\b)";
const SLACK_TOKEN: &str = r"(?-u:\b)xox[abposr]-[A-Za-z0-9-]{10,250}";
const PEM_KEY: &str =
    r"-----BEGIN [A-Z0-9 ]{0,40}PRIVATE KEY-----(?s:.)*?(?:-----END [A-Z0-9 ]{0,40}PRIVATE KEY-----|\z)";
const JWT: &str = r"(?-u:\b)eyJ[A-Za-z0-9_-]{10,}\.eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]*";
const ASSIGNMENT: &str = r#"(?i-u:\b(?:api[_-]?key|apikey|access[_-]?key|secret[_-]?key|client[_-]?secret|secret|(?:access|auth|refresh|id|bearer|session)[_-]?token|token|passwd|password|pwd))["']?[ \t]*[:=][ \t]*["']?([^\s"',;&\[\]]{8,})"#;
const BEARER: &str = r"(?i-u:\bbearer)[ \t]+([A-Za-z0-9._~+/-]{16,}=*)";
const INJECTION: &str = r"(?i-u)\b(?:(?:ignore|disregard|forget|override|skip|bypass)\s+(?:(?:all|any|the|your|my|of|these|those|every)\s+){0,3}(?:previous|prior|above|earlier|preceding|former|original|system)\s+(?:instructions?|prompts?|messages?|directions?|directives?|rules|guidelines|context|commands?)|disregard\s+(?:all\s+of\s+)?(?:the\s+|everything\s+)?(?:above|previous|prior)|forget\s+(?:everything|all)\s+(?:you|that|above)|you\s+are\s+now\s+(?:a\s+|an\s+|in\s+|the\s+|my\s+)?(?:\w+\s+){0,2}(?:mode|assistant|ai|model|chatbot|bot|persona|character|dan|jailbroken|unrestricted|unfiltered|uncensored)|(?:reveal|print|show|repeat|output|leak|display|dump|disclose|ignore|override|bypass|new|updated|change)\s+(?:me\s+)?(?:your\s+|the\s+|my\s+|its\s+)?(?:system|initial|hidden|original|secret)\s+(?:prompt|instructions?)|from\s+now\s+on,?\s+you\s+(?:will|must|are|should)|(?:do\s+not|don't|never)\s+(?:tell|inform|alert|notify)\s+the\s+user|act\s+as\s+if\s+you\s+(?:have|had)\s+no\s+(?:restrictions|rules|guidelines|limits))\b|\b(?:system\s+prompt|new\s+instructions?)\s*:|<\|(?:im_start|im_end|system|endoftext)\|>|\[/?INST\]|<<\s*/?SYS\s*>>";
/// Tag characters, zero-width characters, word joiner, byte-order mark, bidi embeddings,
/// overrides and isolates.
pub(crate) const INVISIBLE: &str =
    r"[\x{E0000}-\x{E007F}\x{200B}-\x{200D}\x{2060}\x{FEFF}\x{202A}-\x{202E}\x{2066}-\x{2069}]+";

/// How many regexes the detectors have.
const MATCHERS: usize = 17;

/// Every detector regex, in the order of `builtin().set`.
const TABLE: [Matcher; MATCHERS] = {
    use Detector::*;
    const fn m(detector: Detector, source: &'static str, group: usize, check: Check) -> Matcher {
        Matcher {
            detector,
            source,
            group,
            check,
        }
    }
    [
        m(Email, EMAIL, 0, checks::email),
        m(Phone, PHONE_INTL, 0, checks::phone),
        m(Phone, PHONE_NATIONAL, 0, checks::phone),
        m(CreditCard, CARD, 0, checks::card),
        m(Iban, IBAN, 0, checks::iban),
        m(UsSsn, US_SSN, 0, checks::us_ssn),
        m(IpAddress, IPV4, 0, checks::ipv4),
        m(IpAddress, IPV6, 0, checks::ipv6),
        m(Secret, PEM_KEY, 0, checks::any),
        m(Secret, AWS_KEY_ID, 0, checks::any),
        m(Secret, GITHUB_TOKEN, 0, checks::any),
        m(Secret, SLACK_TOKEN, 0, checks::any),
        m(Secret, JWT, 0, checks::any),
        m(Secret, ASSIGNMENT, 1, checks::assigned_secret),
        m(Secret, BEARER, 1, checks::any),
        m(PromptInjection, INJECTION, 0, checks::any),
        m(PromptInjection, INVISIBLE, 0, checks::invisible),
    ]
};

struct Builtin {
    /// The union of every matcher's regex: one pass says which of them match a text at all, and
    /// only those run on it.
    set: RegexSet,
    /// Each matcher's own regex, compiled the first time a text holds one of its matches: an
    /// isolate pays only for the detectors its traffic meets (each costs milliseconds to build
    /// in wasm, the set alone a fraction of all of them).
    regexes: [OnceLock<Regex>; MATCHERS],
}

fn builtin() -> &'static Builtin {
    static BUILTIN: OnceLock<Builtin> = OnceLock::new();
    BUILTIN.get_or_init(|| Builtin {
        set: RegexSet::new(TABLE.iter().map(|m| m.source)).expect("built-in detector set"),
        regexes: [const { OnceLock::new() }; MATCHERS],
    })
}

/// Matcher `i`'s regex.
fn regex(i: usize) -> &'static Regex {
    builtin().regexes[i].get_or_init(|| Regex::new(TABLE[i].source).expect("built-in detector regex"))
}

/// Appends what `detectors` find in `text` to `out`.
pub(crate) fn find(detectors: &[Detector], text: &str, out: &mut Vec<Span>) {
    if detectors.is_empty() || text.is_empty() {
        return;
    }
    let mut hits = [false; MATCHERS];
    if !builtin().set.matches_read_at(&mut hits, text, 0) {
        return;
    }
    for (i, m) in TABLE.iter().enumerate() {
        if hits[i] && detectors.contains(&m.detector) {
            push_matches(regex(i), m.group, m.check, Kind::Detector(m.detector), text, out);
        }
    }
}

/// Appends every non-empty match of `regex` (its group `group`) that passes `check`.
pub(crate) fn push_matches(regex: &Regex, group: usize, check: Check, kind: Kind, text: &str, out: &mut Vec<Span>) {
    if group == 0 {
        for m in regex.find_iter(text) {
            if let Some((start, end)) = check(text, m.start(), m.end()).filter(|(s, e)| e > s) {
                out.push(Span { start, end, kind });
            }
        }
    } else {
        for c in regex.captures_iter(text) {
            let Some(m) = c.get(group) else { continue };
            if let Some((start, end)) = check(text, m.start(), m.end()).filter(|(s, e)| e > s) {
                out.push(Span { start, end, kind });
            }
        }
    }
}

/// The instruction-like phrases and the invisible characters of `prompt_injection`, for the
/// tool-poisoning scan.
pub(crate) fn injection_regexes() -> (&'static Regex, &'static Regex) {
    let of = |src: &str| {
        regex(
            TABLE
                .iter()
                .position(|m| m.source == src)
                .expect("prompt_injection matcher"),
        )
    };
    (of(INJECTION), of(INVISIBLE))
}
