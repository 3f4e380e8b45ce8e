//! The compiled policy set and its verdicts. Precedence (docs/policies.md, *Precedence*):
//! every applicable policy runs, in the set's order; block conditions are evaluated on the
//! arguments as the client sent them, before any guardrail rewrites them; guardrails then run
//! one after another, each on what the previous left; the outcome is the strictest of the
//! enforce-mode ones (deny over require_approval over proceed, the first found on a tie);
//! monitor-mode policies change nothing and only add decisions (and limits marked `monitor`).
use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;

use super::cond::{holds, Facts};
use super::detect::{Kind, KINDS};
use super::guard::{Apply, Counts};
use super::model::{BlockAction, GuardAction, Mode, Per, Phase, PolicySpec, Rule};
use super::scope::{org_applies, scope_matches};
use super::{CallTarget, LimitCheck, Outcome, Verdict, Window};
use crate::observe::Decision;
use crate::store::records::{Identity, SubjectKind};

/// A stored policy as the set takes it: its id, its organization (empty: platform-wide) and
/// its document.
#[derive(Debug, Clone, PartialEq)]
pub struct PolicyInput {
    pub id: String,
    pub org_id: String,
    pub spec: PolicySpec,
}

impl From<(String, String, PolicySpec)> for PolicyInput {
    fn from((id, org_id, spec): (String, String, PolicySpec)) -> Self {
        Self { id, org_id, spec }
    }
}

#[derive(Debug)]
struct Compiled {
    input: PolicyInput,
    /// The hash-action key of this policy's organization.
    hash_key: [u8; 32],
}

/// Every policy of the deployment, compiled once (regexes and globs are compiled when parsed;
/// the deny-word regexes too), shared by all calls until the policies change.
#[derive(Debug, Default)]
pub struct PolicySet {
    policies: Vec<Compiled>,
}

impl PolicySet {
    /// `hash_key` keys the tokens of `hash` guardrails; each organization gets its own key
    /// derived from it, so one value gives different tokens in different organizations.
    pub fn compile<P: Into<PolicyInput>>(policies: impl IntoIterator<Item = P>, hash_key: [u8; 32]) -> Self {
        let policies = policies
            .into_iter()
            .map(|p| {
                let input = p.into();
                let hash_key = org_key(&hash_key, &input.org_id);
                Compiled { input, hash_key }
            })
            .collect();
        Self { policies }
    }

    pub fn len(&self) -> usize {
        self.policies.len()
    }

    pub fn is_empty(&self) -> bool {
        self.policies.is_empty()
    }

    /// The policies that apply to this caller and call: its organization's (and platform-wide
    /// ones) whose scope matches.
    pub fn applicable<'a>(&'a self, who: &'a Identity, target: &CallTarget<'a>) -> Applicable<'a> {
        let policies = self
            .policies
            .iter()
            .filter(|p| org_applies(&p.input.org_id, who) && scope_matches(&p.input.spec.scope, who, target))
            .collect();
        Applicable {
            policies,
            who,
            target: *target,
        }
    }
}

fn org_key(key: &[u8; 32], org_id: &str) -> [u8; 32] {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(b"mcp-gateway rules hash\0");
    mac.update(org_id.as_bytes());
    mac.finalize().into_bytes().into()
}

/// The policies that apply to one call, ready to check its arguments and its result.
#[derive(Debug)]
pub struct Applicable<'a> {
    policies: Vec<&'a Compiled>,
    who: &'a Identity,
    target: CallTarget<'a>,
}

impl Applicable<'_> {
    /// No policy applies: every check proceeds with nothing to record.
    pub fn is_empty(&self) -> bool {
        self.policies.is_empty()
    }

    /// The ids of the applicable policies, in the set's order.
    pub fn policy_ids(&self) -> impl Iterator<Item = &str> {
        self.policies.iter().map(|p| p.input.id.as_str())
    }

    /// Before the call goes upstream: block rules (on the arguments as sent), the counters of
    /// rate limits and quotas, then guardrails on `arguments` (rewritten in place by
    /// enforce-mode `redact` / `hash`).
    pub fn check_call(&self, arguments: &mut Value) -> Verdict {
        let mut v = Verdict::default();
        let facts = Facts {
            tool: self.target.tool,
            annotations: self.target.annotations,
            args: arguments,
        };
        for p in &self.policies {
            let mode = p.input.spec.mode;
            for (i, rule) in p.input.spec.rules.iter().enumerate() {
                match rule {
                    Rule::Block(b) if holds(&b.when, &facts) => {
                        v.decisions.push(decision(p, i, b.action.as_str(), None));
                        if mode == Mode::Enforce {
                            let (policy_id, rule) = (p.input.id.clone(), rule_path(i));
                            v.escalate(match b.action {
                                BlockAction::Deny => Outcome::Deny { policy_id, rule },
                                BlockAction::RequireApproval => Outcome::RequireApproval { policy_id, rule },
                            });
                        }
                    }
                    Rule::RateLimit(r) => self.limits(&mut v, p, i, r.per, Window::Seconds(r.window_s), r.limit),
                    Rule::Quota(q) => self.limits(&mut v, p, i, q.per, Window::Period(q.period), q.limit),
                    _ => {}
                }
            }
        }
        self.guardrails(&mut v, Phase::Arguments, |apply| {
            apply.value(arguments, Phase::Arguments)
        });
        v
    }

    /// After the result came back: guardrails on `result` (rewritten in place by
    /// enforce-mode `redact` / `hash`; `block` refuses the result).
    pub fn check_result(&self, result: &mut Value) -> Verdict {
        let mut v = Verdict::default();
        self.guardrails(&mut v, Phase::Results, |apply| apply.value(result, Phase::Results));
        v
    }

    /// Guardrails of `phase` on plain texts (see `rules::scan_texts`).
    pub fn scan_texts(&self, texts: &mut [String], phase: Phase) -> Verdict {
        let mut v = Verdict::default();
        self.guardrails(&mut v, phase, |apply| apply.texts(texts));
        v
    }

    fn guardrails(&self, v: &mut Verdict, phase: Phase, mut run: impl FnMut(&Apply<'_>) -> Counts) {
        for p in &self.policies {
            let mode = p.input.spec.mode;
            for (i, rule) in p.input.spec.rules.iter().enumerate() {
                let Rule::Guardrail(g) = rule else { continue };
                if !g.on.contains(&phase) {
                    continue;
                }
                let apply = Apply {
                    guard: g,
                    rewrite: mode == Mode::Enforce && matches!(g.action, GuardAction::Redact | GuardAction::Hash),
                    hash_key: &p.hash_key,
                };
                let counts = run(&apply);
                let mut found = false;
                for (k, &count) in counts.iter().enumerate().take(KINDS) {
                    if count == 0 {
                        continue;
                    }
                    found = true;
                    let kind = Kind::from_index(k);
                    let mut d = decision(p, i, g.action.as_str(), Some(phase));
                    d.detail = Some(format!("detector={} count={count}", kind.name()));
                    d.detector = Some(kind.name().to_string());
                    d.count = Some(count);
                    v.decisions.push(d);
                }
                v.rewrote |= found && apply.rewrite;
                if found && g.action == GuardAction::Block && mode == Mode::Enforce {
                    v.escalate(Outcome::Deny {
                        policy_id: p.input.id.clone(),
                        rule: rule_path(i),
                    });
                }
            }
        }
    }

    /// The counters of one rate-limit or quota rule for this caller.
    fn limits(&self, v: &mut Verdict, p: &Compiled, i: usize, per: Per, window: Window, limit: u64) {
        let who = self.who;
        let keys = match per {
            Per::Principal => vec![format!("principal:{}", who.principal_id)],
            Per::Org => vec![format!("org:{}", who.org_id)],
            Per::Team => match &p.input.spec.scope.subject {
                // A policy scoped to a team counts that team only.
                Some(s) if s.kind == SubjectKind::Team => vec![format!("team:{}", s.id)],
                // A caller in no team is counted alone.
                _ if who.team_ids.is_empty() => vec![format!("principal:{}", who.principal_id)],
                _ => who.team_ids.iter().map(|t| format!("team:{t}")).collect(),
            },
        };
        v.limits.extend(keys.into_iter().map(|key_suffix| LimitCheck {
            policy_id: p.input.id.clone(),
            rule_index: i,
            mode: p.input.spec.mode,
            per,
            window,
            limit,
            key_suffix,
        }));
    }
}

fn rule_path(i: usize) -> String {
    format!("rules[{i}]")
}

fn decision(p: &Compiled, i: usize, action: &str, phase: Option<Phase>) -> Decision {
    Decision {
        policy_id: p.input.id.clone(),
        rule: rule_path(i),
        action: action.to_string(),
        mode: p.input.spec.mode.as_str().to_string(),
        detail: None,
        phase: phase.map(|ph| ph.as_str().to_string()),
        detector: None,
        count: None,
    }
}
