//! Policies at run time (docs/policies.md): each organization's compiled policy set, kept in the
//! isolate snapshot, and the pipeline hooks that apply it to every call — block rules, human
//! approval, rate limits and quotas, then guardrails on the arguments before the upstream sees
//! them and on the answer before the client does. Every decision goes into the request's event.
use std::rc::Rc;

use futures_util::future::LocalBoxFuture;
use serde_json::{json, Value};

use crate::context::{Admitted, AnswerFilter, Call, CallHooks};
use crate::mcp::error::{codes, RpcError};
use crate::observe::{Decision, Probe};
use crate::rules::{self, CallTarget, LimitCheck, Mode, Outcome, Period, PolicySet, Verdict};
use crate::snapshot::Keeper;
use crate::store::approvals::{ApprovalBinding, Approvals, NewApproval, PENDING_TTL_MS};
use crate::store::limits::{self, Counters, Take};
use crate::store::{Policies, PolicyRecord, StoreError};

/// The methods whose `params.arguments` guardrails and block rules read.
const ARGUMENT_METHODS: &[&str] = &["tools/call", "prompts/get"];
/// Where approvers find a held call (the admin API; `{origin}{APPROVALS_PATH}{id}`).
const APPROVALS_PATH: &str = "/admin/v1/approvals/";

/// The policy document of a stored record, as the admin API accepted it.
pub fn document(r: &PolicyRecord) -> Value {
    json!({ "name": r.name, "scope": r.scope, "mode": r.mode, "rules": r.rules })
}

/// Compiles an organization's stored policies. A record that no longer parses (altered in
/// storage by hand) makes the whole set refuse every call (`Err`): policies fail closed.
pub fn compile(records: &[PolicyRecord], hash_key: [u8; 32]) -> Result<PolicySet, String> {
    let mut inputs = Vec::with_capacity(records.len());
    for r in records {
        match rules::parse_policy(&document(r)) {
            Ok(spec) => inputs.push((r.id.clone(), r.org_id.clone(), spec)),
            Err(e) => return Err(format!("stored policy {} does not parse: {e}", r.id)),
        }
    }
    Ok(PolicySet::compile(inputs, hash_key))
}

/// An organization's compiled policies, or why they cannot be applied.
pub type OrgPolicies = Result<PolicySet, String>;

/// The organization's compiled set, from the snapshot's derived values when it is there (one
/// compilation per organization per snapshot version).
pub async fn org_policies(
    store: &dyn Policies,
    keeper: Option<&Rc<Keeper>>,
    hash_key: [u8; 32],
    org_id: &str,
) -> Result<Rc<OrgPolicies>, StoreError> {
    let key = format!("policies\n{org_id}");
    if let Some(k) = keeper {
        if let Some(set) = k.derived::<OrgPolicies>(&key).await {
            return Ok(set);
        }
    }
    let epoch = keeper.map(|k| k.snapshot.epoch());
    let records = store.list_policies(org_id).await?;
    let set = Rc::new(compile(&records, hash_key));
    if let (Some(k), Some(e)) = (keeper, epoch) {
        let weight = set.as_ref().as_ref().map(|s| s.len()).unwrap_or(1);
        k.keep_derived(e, key, set.clone(), weight);
    }
    Ok(set)
}

/// The pipeline hooks that apply policies (the platform installs them; `context::CallHooks`).
pub struct PolicyHooks {
    /// Policies and catalogs (tool annotations), served from the snapshot.
    pub store: Rc<dyn crate::store::Store>,
    pub keeper: Option<Rc<Keeper>>,
    pub counters: Rc<dyn Counters>,
    pub approvals: Rc<dyn Approvals>,
    /// Keys `hash` guardrails (`Config::policy_hash_key`).
    pub hash_key: [u8; 32],
    pub now_ms: Rc<dyn Fn() -> u64>,
    /// The gateway's public origin, for approval links (`""`: links are paths).
    pub origin: String,
}

impl CallHooks for PolicyHooks {
    fn before_call<'a>(
        &'a self,
        call: &'a Call,
        probe: Option<&'a Rc<Probe>>,
    ) -> LocalBoxFuture<'a, Result<Admitted, RpcError>> {
        Box::pin(self.admit(call, probe))
    }
}

/// The tool a call names, in its server's own name (`None` for prompts and resources: tool
/// scopes and conditions never match them).
fn tool_of(call: &Call) -> Option<&str> {
    (call.method == "tools/call").then_some(call.name.as_deref()).flatten()
}

impl PolicyHooks {
    async fn admit(&self, call: &Call, probe: Option<&Rc<Probe>>) -> Result<Admitted, RpcError> {
        let set = org_policies(&*self.store, self.keeper.as_ref(), self.hash_key, &call.org_id)
            .await
            .map_err(|e| {
                tracing::error!(error = %e, "policies could not be read; call refused");
                unavailable()
            })?;
        let set = match &*set {
            Ok(s) if s.is_empty() => return Ok(Admitted::default()),
            Ok(_) => set.clone(),
            Err(e) => {
                tracing::error!(error = %e, org = %call.org_id, "policies could not be compiled; call refused");
                return Err(unavailable());
            }
        };
        let policies = set.as_ref().as_ref().expect("checked above");
        let annotations = match tool_of(call) {
            Some(tool) => self.store.tools_of(&call.server).await.ok().and_then(|tools| {
                tools
                    .iter()
                    .find(|t| t.name == tool)
                    .and_then(|t| t.annotations.clone())
            }),
            None => None,
        };
        let target = CallTarget {
            server: &call.server,
            tool: tool_of(call),
            virtual_server: call.virtual_server.as_deref(),
            annotations: annotations.as_ref(),
        };
        let applicable = policies.applicable(&call.identity, &target);
        if applicable.is_empty() {
            return Ok(Admitted::default());
        }
        let sent = ARGUMENT_METHODS
            .contains(&call.method.as_str())
            .then(|| call.params.get("arguments").cloned().unwrap_or(Value::Null));
        let mut args = sent.clone().unwrap_or(Value::Null);
        let verdict = applicable.check_call(&mut args);
        note(probe, &verdict.decisions);
        match &verdict.outcome {
            Outcome::Deny { policy_id, rule } => {
                return Err(denied(policy_id, rule, "the call was blocked by a policy"))
            }
            Outcome::RequireApproval { policy_id, rule } => {
                self.approval(call, probe, sent.as_ref(), policy_id, rule).await?;
            }
            Outcome::Proceed => {}
        }
        self.count(call, probe, &verdict.limits).await?;
        let filter = answer_filter(set.clone(), call, annotations, probe.cloned());
        Ok(Admitted {
            arguments: (sent.is_some() && Some(&args) != sent.as_ref()).then_some(args),
            answer: Some(filter),
        })
    }

    /// A held call proceeds once, with an approval of exactly this caller, server, tool and
    /// arguments; otherwise a pending approval is opened (or found) and the client told.
    async fn approval(
        &self,
        call: &Call,
        probe: Option<&Rc<Probe>>,
        arguments: Option<&Value>,
        policy_id: &str,
        rule: &str,
    ) -> Result<(), RpcError> {
        let binding = ApprovalBinding {
            org_id: call.org_id.clone(),
            principal_id: call.principal_id.clone(),
            server: call.server.clone(),
            tool: call.name.clone().unwrap_or_default(),
            arguments_hash: arguments_hash(arguments),
        };
        let now = (self.now_ms)();
        let store_err = |e: StoreError| {
            tracing::error!(error = %e, "approvals unavailable; call refused");
            unavailable()
        };
        if let Some(used) = self.approvals.consume(&binding, now).await.map_err(store_err)? {
            note(
                probe,
                &[decision(
                    policy_id,
                    rule,
                    "approved",
                    Some(format!("approval={}", used.id)),
                )],
            );
            return Ok(());
        }
        let new = NewApproval {
            binding,
            policy_id: policy_id.to_string(),
            rule: rule_index(rule),
            // Approvers decide on what the call would do: its arguments, as the client sent them.
            arguments: arguments.cloned(),
        };
        let pending = self
            .approvals
            .request(&new, PENDING_TTL_MS, now)
            .await
            .map_err(store_err)?;
        note(
            probe,
            &[decision(
                policy_id,
                rule,
                "held",
                Some(format!("approval={}", pending.id)),
            )],
        );
        let url = format!("{}{APPROVALS_PATH}{}", self.origin, pending.id);
        let message = "This call needs a human's approval. Retry it once approved.".to_string();
        let data = json!({
            "approval_id": pending.id,
            "url": url,
            "policy_id": policy_id,
            "rule": rule,
            "expires_at_ms": pending.expires_at_ms,
        });
        if call.url_elicitation {
            // The 2025-11-25 way for clients that can open URLs: send the user there, then retry.
            let mut data = data;
            data["elicitations"] = json!([{
                "mode": "url", "elicitationId": pending.id, "url": url, "message": message,
            }]);
            return Err(RpcError::new(codes::URL_ELICITATION_REQUIRED, message, 200).with_data(data));
        }
        Err(RpcError::new(codes::APPROVAL_REQUIRED, message, 200).with_data(data))
    }

    /// Counts the call against every rate limit and quota that applies; an enforce-mode limit
    /// that is full refuses it (monitor-mode ones only record that they would have).
    async fn count(&self, call: &Call, probe: Option<&Rc<Probe>>, checks: &[LimitCheck]) -> Result<(), RpcError> {
        let now = (self.now_ms)();
        let mut refused: Option<(&LimitCheck, u64)> = None;
        for c in checks {
            let key = format!("{}:{}", call.org_id, c.key());
            let taken = self.counters.take(&key, c.limit, window(c), now).await.map_err(|e| {
                tracing::error!(error = %e, "rate limit counters unavailable; call refused");
                unavailable()
            })?;
            if let Take::Refused { retry_after_ms } = taken {
                let rule = format!("rules[{}]", c.rule_index);
                let mut d = decision(
                    &c.policy_id,
                    &rule,
                    "rate_limited",
                    Some(format!("per={}", c.per.as_str())),
                );
                d.mode = c.mode.as_str().to_string();
                note(probe, &[d]);
                if c.mode == Mode::Enforce && refused.is_none_or(|(_, r)| retry_after_ms > r) {
                    refused = Some((c, retry_after_ms));
                }
            }
        }
        match refused {
            None => Ok(()),
            Some((c, retry_after_ms)) => Err(
                RpcError::new(codes::RATE_LIMITED, "rate limit exceeded", 200).with_data(json!({
                    "policy_id": c.policy_id,
                    "rule": format!("rules[{}]", c.rule_index),
                    "retry_after_ms": retry_after_ms,
                })),
            ),
        }
    }
}

/// The counter window of a rate limit (sliding where the log stays small, else fixed) or quota.
fn window(c: &LimitCheck) -> limits::Window {
    match c.window {
        rules::Window::Seconds(seconds) if c.limit <= limits::MAX_SLIDING_LIMIT => limits::Window::Sliding { seconds },
        rules::Window::Seconds(seconds) => limits::Window::Fixed { seconds },
        rules::Window::Period(Period::Day) => limits::Window::Day,
        rules::Window::Period(Period::Month) => limits::Window::Month,
    }
}

/// Guardrails on the answer (a `result`; errors pass untouched): rewritten in place, or withheld
/// when an enforce-mode `block` guardrail fires.
fn answer_filter(
    set: Rc<OrgPolicies>,
    call: &Call,
    annotations: Option<Value>,
    probe: Option<Rc<Probe>>,
) -> AnswerFilter {
    let (identity, server, tool, virtual_server) = (
        call.identity.clone(),
        call.server.clone(),
        tool_of(call).map(str::to_string),
        call.virtual_server.clone(),
    );
    Rc::new(move |mut msg: Value| {
        let Ok(policies) = &*set else { return msg };
        let target = CallTarget {
            server: &server,
            tool: tool.as_deref(),
            virtual_server: virtual_server.as_deref(),
            annotations: annotations.as_ref(),
        };
        let Some(result) = msg.get_mut("result") else {
            return msg;
        };
        let verdict: Verdict = policies.applicable(&identity, &target).check_result(result);
        note(probe.as_ref(), &verdict.decisions);
        if let Outcome::Deny { policy_id, rule } = &verdict.outcome {
            let err = denied(policy_id, rule, "the result was withheld by a policy");
            let id = msg.get("id").cloned().unwrap_or(Value::Null);
            return json!({"jsonrpc": "2.0", "id": id, "error": {"code": err.code, "message": err.message, "data": err.data}});
        }
        msg
    })
}

fn note(probe: Option<&Rc<Probe>>, decisions: &[Decision]) {
    if decisions.is_empty() {
        return;
    }
    if let Some(p) = probe {
        p.update(|e| e.decisions.extend_from_slice(decisions));
    }
}

fn decision(policy_id: &str, rule: &str, action: &str, detail: Option<String>) -> Decision {
    Decision {
        policy_id: policy_id.to_string(),
        rule: rule.to_string(),
        action: action.to_string(),
        mode: Mode::Enforce.as_str().to_string(),
        detail,
        ..Decision::default()
    }
}

fn denied(policy_id: &str, rule: &str, message: &str) -> RpcError {
    RpcError::new(codes::POLICY_DENIED, message, 200).with_data(json!({ "policy_id": policy_id, "rule": rule }))
}

/// Policies that cannot be read or applied refuse the call: they fail closed.
fn unavailable() -> RpcError {
    RpcError::new(
        codes::POLICY_DENIED,
        "policies are unavailable; the call was refused",
        200,
    )
}

/// Hex SHA-256 of the arguments' canonical JSON (keys sorted): what an approval is bound to.
pub fn arguments_hash(arguments: Option<&Value>) -> String {
    crate::crypto::sha256_hex(super::catalog::canonical(arguments.unwrap_or(&Value::Null)).as_bytes())
}

fn rule_index(rule: &str) -> u32 {
    rule.trim_start_matches("rules[")
        .trim_end_matches(']')
        .parse()
        .unwrap_or(0)
}
