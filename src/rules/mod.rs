//! Policies as a pure engine (docs/policies.md): the policy document the admin API accepts
//! (`model`, `parse`), which policies apply to a call (`scope`), conditions (`cond`), the
//! detectors and what guardrails do with their findings (`detect`, `checks`, `guard`), the
//! verdict on a call or result (`engine`), and the tool-poisoning scan (`poison`). No I/O, no
//! storage, no clock: rate limits and quotas come back as what must be counted, and the runtime
//! counts them.
//!
//! Use: `parse_policy` on each stored document, `PolicySet::compile` once per snapshot, then per
//! call `set.applicable(&identity, &target)` and its `check_call` / `check_result`.
mod checks;
mod cond;
mod detect;
mod engine;
mod guard;
mod model;
mod parse;
pub mod poison;
mod scope;
#[cfg(test)]
mod tests;

use serde::Serialize;

pub use engine::{Applicable, PolicyInput, PolicySet};
pub use model::{
    ArgCond, Block, BlockAction, Cond, DenyWords, Detector, Glob, GuardAction, Guardrail, Hints, Mode, Pattern, Per,
    Period, Phase, PolicySpec, Quota, RateLimit, Rule, Scope, Subject,
};
pub use parse::*;

/// What a call is made to. `server` is the slug of the server the call goes to (on `/mcp` and
/// virtual servers: the server it is routed to), `tool` the server's own tool name (not the
/// `/mcp` or virtual name), `annotations` the tool's `annotations` object as approved in the
/// catalog (`None`: unknown, every hint takes its MCP default).
#[derive(Debug, Clone, Copy, Default)]
pub struct CallTarget<'a> {
    pub server: &'a str,
    pub tool: Option<&'a str>,
    pub virtual_server: Option<&'a str>,
    pub annotations: Option<&'a serde_json::Value>,
}

/// What happens to the call (or result): the strictest outcome of the enforce-mode policies.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Outcome {
    #[default]
    Proceed,
    /// Refused; `rule` is the rule's path in its policy (`rules[0]`).
    Deny { policy_id: String, rule: String },
    /// Held until someone approves it.
    RequireApproval { policy_id: String, rule: String },
}

impl Outcome {
    fn severity(&self) -> u8 {
        match self {
            Self::Proceed => 0,
            Self::RequireApproval { .. } => 1,
            Self::Deny { .. } => 2,
        }
    }
}

/// A counter the runtime must check and bump for this call (rate limits and quotas of the
/// applicable policies). One rule may give several: `per: team` counts each team of the caller.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LimitCheck {
    pub policy_id: String,
    pub rule_index: usize,
    /// `monitor`: count and record, never refuse.
    pub mode: Mode,
    pub per: Per,
    pub window: Window,
    pub limit: u64,
    /// Who is counted: `principal:{id}`, `team:{id}` or `org:{id}`.
    pub key_suffix: String,
}

impl LimitCheck {
    /// The counter's key: `{policy_id}/{rule_index}/{key_suffix}` (the runtime adds the window
    /// bucket). Every call the rule's scope matches shares it, whatever tool it names.
    pub fn key(&self) -> String {
        format!("{}/{}/{}", self.policy_id, self.rule_index, self.key_suffix)
    }
}

/// A sliding or fixed window of `rate_limit` (`window_s`) or a calendar period of `quota` (UTC).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Window {
    Seconds(u64),
    Period(Period),
}

/// The engine's answer for a call, a result or texts: what was decided (for the event), what
/// happens, and what must be counted.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Verdict {
    pub decisions: Vec<crate::observe::Decision>,
    pub outcome: Outcome,
    pub limits: Vec<LimitCheck>,
    /// A guardrail rewrote something it scanned (redact or hash in enforce mode found text).
    pub rewrote: bool,
}

impl Verdict {
    /// Keeps the stricter outcome; on a tie the first one found stays.
    fn escalate(&mut self, outcome: Outcome) {
        if outcome.severity() > self.outcome.severity() {
            self.outcome = outcome;
        }
    }
}

/// A policy document that does not validate: `path` names the offending value
/// (`rules[0].detect[1]`), `message` what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleError {
    pub path: String,
    pub message: String,
}

impl std::fmt::Display for RuleError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.path.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.path, self.message)
        }
    }
}

impl std::error::Error for RuleError {}

/// Guardrails on plain texts (an LLM gateway's prompts, `Phase::Arguments`, or completions,
/// `Phase::Results`), with the same rules, actions and decisions as on a call.
pub fn scan_texts(applicable: &Applicable<'_>, texts: &mut [String], phase: Phase) -> Verdict {
    applicable.scan_texts(texts, phase)
}
