//! The policy document as the admin API accepts it (docs/policies.md): plain data that
//! serializes back to the JSON it was parsed from. Globs and regexes are compiled when parsed
//! (`Glob`, `Pattern`, `DenyWords`), so a value of these types is valid by construction.
use regex::Regex;
use serde::{Serialize, Serializer};
use serde_json::{Number, Value};
use wildmatch::WildMatch;

use crate::store::records::SubjectKind;

/// One policy: a name, what it applies to, enforce or only record, and its rules.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PolicySpec {
    pub name: String,
    pub scope: Scope,
    pub mode: Mode,
    pub rules: Vec<Rule>,
}

/// What a policy applies to; every field given must match, an absent one matches everything.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Scope {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subject: Option<Subject>,
    /// Server slug or glob (`*`, `?`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server: Option<Glob>,
    /// Tool name or glob (the server's own tool name).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tool: Option<Glob>,
    /// Virtual-server slug: only calls made through that virtual server.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub virtual_server: Option<String>,
}

/// A caller or group of callers (as in grants).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Subject {
    pub kind: SubjectKind,
    pub id: String,
}

/// `enforce` acts (rewrites, refuses, limits); `monitor` only records what it would have done.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    #[default]
    Enforce,
    Monitor,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Enforce => "enforce",
            Self::Monitor => "monitor",
        }
    }
}

/// One rule of a policy, tagged by `kind`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Rule {
    Guardrail(Guardrail),
    Block(Block),
    RateLimit(RateLimit),
    Quota(Quota),
}

impl Rule {
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Guardrail(_) => "guardrail",
            Self::Block(_) => "block",
            Self::RateLimit(_) => "rate_limit",
            Self::Quota(_) => "quota",
        }
    }
}

/// Where a guardrail looks: a call's arguments (an LLM prompt) or its result (a completion).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Phase {
    Arguments,
    Results,
}

impl Phase {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Arguments => "arguments",
            Self::Results => "results",
        }
    }
}

/// Finds sensitive or hostile text and acts on each finding.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Guardrail {
    pub on: Vec<Phase>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub detect: Vec<Detector>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub patterns: Vec<Pattern>,
    #[serde(skip_serializing_if = "DenyWords::is_empty")]
    pub deny_words: DenyWords,
    pub action: GuardAction,
}

/// The built-in detectors (docs/policies.md, *Detectors*, says exactly what each finds).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Detector {
    Email,
    Phone,
    CreditCard,
    Iban,
    UsSsn,
    IpAddress,
    Secret,
    PromptInjection,
}

impl Detector {
    pub const ALL: [Detector; 8] = [
        Self::Email,
        Self::Phone,
        Self::CreditCard,
        Self::Iban,
        Self::UsSsn,
        Self::IpAddress,
        Self::Secret,
        Self::PromptInjection,
    ];

    /// The name in policy documents and decisions (`credit_card`).
    pub fn name(self) -> &'static str {
        match self {
            Self::Email => "email",
            Self::Phone => "phone",
            Self::CreditCard => "credit_card",
            Self::Iban => "iban",
            Self::UsSsn => "us_ssn",
            Self::IpAddress => "ip_address",
            Self::Secret => "secret",
            Self::PromptInjection => "prompt_injection",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|d| d.name() == name)
    }
}

/// What a guardrail does with its findings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum GuardAction {
    /// Each finding becomes a typed placeholder (`[EMAIL]`).
    Redact,
    /// Each finding becomes a keyed, stable token (`[EMAIL:3f2a9c1b]`).
    Hash,
    /// The call (or its result) is refused.
    Block,
    /// Nothing changes; the findings are recorded.
    Flag,
}

impl GuardAction {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Redact => "redact",
            Self::Hash => "hash",
            Self::Block => "block",
            Self::Flag => "flag",
        }
    }
}

/// Refuses a call, or holds it for approval, when `when` holds.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Block {
    pub when: Cond,
    pub action: BlockAction,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BlockAction {
    Deny,
    RequireApproval,
}

impl BlockAction {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Deny => "deny",
            Self::RequireApproval => "require_approval",
        }
    }
}

/// A condition on a call: its tool, the tool's annotations, its arguments.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Cond {
    All { all: Vec<Cond> },
    Any { any: Vec<Cond> },
    Not { not: Box<Cond> },
    Tool { tool: Glob },
    Annotation { annotation: Hints },
    Arg(ArgCond),
}

/// Annotation values a condition asks for; every one listed must hold. A tool that does not
/// state a hint has the MCP default (the pessimistic one), see `cond::hint`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Hints {
    #[serde(rename = "destructiveHint", skip_serializing_if = "Option::is_none")]
    pub destructive: Option<bool>,
    #[serde(rename = "openWorldHint", skip_serializing_if = "Option::is_none")]
    pub open_world: Option<bool>,
    #[serde(rename = "readOnlyHint", skip_serializing_if = "Option::is_none")]
    pub read_only: Option<bool>,
    #[serde(rename = "idempotentHint", skip_serializing_if = "Option::is_none")]
    pub idempotent: Option<bool>,
}

/// Tests on the argument a JSON pointer names; every test given must hold.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ArgCond {
    /// RFC 6901 pointer into the call's arguments (`/path`, `/items/0/id`).
    pub arg: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub equals: Option<Value>,
    #[serde(rename = "in", skip_serializing_if = "Option::is_none")]
    pub one_of: Option<Vec<Value>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub matches: Option<Pattern>,
    #[serde(rename = "<", skip_serializing_if = "Option::is_none")]
    pub lt: Option<Number>,
    #[serde(rename = ">", skip_serializing_if = "Option::is_none")]
    pub gt: Option<Number>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exists: Option<bool>,
}

/// At most `limit` calls per `window_s` seconds, counted per `per`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RateLimit {
    pub per: Per,
    pub limit: u64,
    pub window_s: u64,
}

/// At most `limit` calls per calendar `period` (UTC), counted per `per`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Quota {
    pub per: Per,
    pub limit: u64,
    pub period: Period,
}

/// Who shares a counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Per {
    Principal,
    Team,
    Org,
}

impl Per {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Principal => "principal",
            Self::Team => "team",
            Self::Org => "org",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Period {
    Day,
    Month,
}

/// A glob (`*` any run, `?` one character), compiled once; equal when the text is.
#[derive(Debug, Clone)]
pub struct Glob {
    text: String,
    compiled: WildMatch,
}

impl Glob {
    pub fn new(text: &str) -> Self {
        Self {
            text: text.to_string(),
            compiled: WildMatch::new(text),
        }
    }
    pub fn matches(&self, value: &str) -> bool {
        self.compiled.matches(value)
    }
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

impl PartialEq for Glob {
    fn eq(&self, other: &Self) -> bool {
        self.text == other.text
    }
}

impl Serialize for Glob {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.text)
    }
}

/// A compiled regex (size-bounded, see `parse::REGEX_SIZE_LIMIT`); equal when the source is.
#[derive(Debug, Clone)]
pub struct Pattern(pub(crate) Regex);

impl Pattern {
    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }
    pub fn regex(&self) -> &Regex {
        &self.0
    }
}

impl PartialEq for Pattern {
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Serialize for Pattern {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// Words and phrases to find (case-insensitive, whole words), with the one regex that finds
/// them all; equal when the lists are.
#[derive(Debug, Clone, Default)]
pub struct DenyWords {
    pub(crate) words: Vec<String>,
    pub(crate) regex: Option<Regex>,
}

impl DenyWords {
    pub fn words(&self) -> &[String] {
        &self.words
    }
    pub fn is_empty(&self) -> bool {
        self.words.is_empty()
    }
}

impl PartialEq for DenyWords {
    fn eq(&self, other: &Self) -> bool {
        self.words == other.words
    }
}

impl Serialize for DenyWords {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.words.serialize(s)
    }
}
