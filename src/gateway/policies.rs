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
        // The arguments as the client sent them (`None`: a method without arguments).
        let sent = ARGUMENT_METHODS
            .contains(&call.method.as_str())
            .then(|| call.params.get("arguments").unwrap_or(&Value::Null));
        let mut args = sent.cloned().unwrap_or(Value::Null);
        let verdict = applicable.check_call(&mut args);
        note(probe, &verdict.decisions);
        match &verdict.outcome {
            Outcome::Deny { policy_id, rule } => {
                return Err(denied(policy_id, rule, "the call was blocked by a policy"))
            }
            Outcome::RequireApproval { policy_id, rule } => {
                self.approval(call, probe, sent, policy_id, rule).await?;
            }
            Outcome::Proceed => {}
        }
        self.count(call, probe, &verdict.limits).await?;
        let filter = answer_filter(set.clone(), call, annotations, probe.cloned());
        Ok(Admitted {
            arguments: sent
                .is_some_and(|sent| verdict.rewrote && args != *sent)
                .then_some(args),
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

#[cfg(test)]
mod tests {
    use std::cell::Cell;

    use futures_executor::block_on;

    use super::*;
    use crate::store::limits_memory::{MemoryApprovals, MemoryCounters};
    use crate::store::memory::MemoryStore;
    use crate::store::{Identity, Policies};

    struct Fixture {
        store: Rc<MemoryStore>,
        hooks: PolicyHooks,
        approvals: Rc<MemoryApprovals>,
        now: Rc<Cell<u64>>,
    }

    fn fixture() -> Fixture {
        let store = Rc::new(MemoryStore::with_defaults());
        let approvals = Rc::new(MemoryApprovals::new());
        let now = Rc::new(Cell::new(1_767_225_600_000));
        let clock = now.clone();
        let hooks = PolicyHooks {
            store: store.clone(),
            keeper: None,
            counters: Rc::new(MemoryCounters::new()),
            approvals: approvals.clone(),
            hash_key: [9; 32],
            now_ms: Rc::new(move || clock.get()),
            origin: "https://gw.test".into(),
        };
        Fixture {
            store,
            hooks,
            approvals,
            now,
        }
    }

    fn add(f: &Fixture, id: &str, org: &str, doc: Value) {
        let spec = rules::parse_policy(&doc).expect("valid policy");
        let doc = serde_json::to_value(&spec).unwrap();
        block_on(f.store.create_policy(&PolicyRecord {
            id: id.into(),
            org_id: org.into(),
            name: spec.name.clone(),
            mode: spec.mode.as_str().into(),
            scope: doc["scope"].clone(),
            rules: doc["rules"].clone(),
            created_at: "t".into(),
            updated_at: "t".into(),
        }))
        .unwrap();
    }

    fn call(org: &str, tool: &str, args: Value) -> Call {
        Call {
            principal_id: "agt_a".into(),
            org_id: org.into(),
            key_id: "key_a".into(),
            identity: Identity {
                principal_id: "agt_a".into(),
                kind: "agent".into(),
                org_id: org.into(),
                workspace_ids: vec![],
                team_ids: vec!["team_x".into()],
            },
            server: "crm".into(),
            virtual_server: None,
            method: "tools/call".into(),
            name: Some(tool.into()),
            params: json!({ "name": tool, "arguments": args }),
            trace: None,
            started_ms: 0,
            url_elicitation: false,
        }
    }

    fn redact_pii() -> Value {
        json!({"name": "pii", "scope": {"server": "crm"}, "rules": [
            {"kind": "guardrail", "on": ["arguments", "results"], "detect": ["email"], "action": "redact"}]})
    }

    #[test]
    fn no_policy_admits_the_call_untouched() {
        let f = fixture();
        add(&f, "pol_other", "org_other", redact_pii());
        let a = block_on(
            f.hooks
                .before_call(&call("org_default", "note", json!({"t": "a@b.example"})), None),
        )
        .unwrap();
        assert!(
            a.arguments.is_none() && a.answer.is_none(),
            "another org's policy never applies"
        );
    }

    #[test]
    fn guardrails_rewrite_arguments_and_filter_the_answer() {
        let f = fixture();
        add(&f, "pol_pii", "org_default", redact_pii());
        let a = block_on(
            f.hooks
                .before_call(&call("org_default", "note", json!({"t": "to a@b.example"})), None),
        )
        .unwrap();
        assert_eq!(a.arguments, Some(json!({"t": "to [EMAIL]"})));
        let answer = (a.answer.expect("a filter"))(json!({"jsonrpc": "2.0", "id": 1, "result": {
            "content": [{"type": "text", "text": "c@d.example"}]}}));
        assert_eq!(answer["result"]["content"][0]["text"], "[EMAIL]");
        let err = json!({"jsonrpc": "2.0", "id": 1, "error": {"code": -1, "message": "c@d.example"}});
        assert_eq!((f.hooks_filter())(err.clone()), err, "errors pass untouched");
    }

    impl Fixture {
        fn hooks_filter(&self) -> AnswerFilter {
            block_on(self.hooks.before_call(&call("org_default", "note", json!({})), None))
                .unwrap()
                .answer
                .unwrap()
        }
    }

    #[test]
    fn blocks_refuse_and_limits_count_exactly() {
        let f = fixture();
        add(
            &f,
            "pol_block",
            "org_default",
            json!({"name": "b", "rules": [
            {"kind": "block", "when": {"arg": "/path", "matches": "^/etc/"}, "action": "deny"}]}),
        );
        add(
            &f,
            "pol_rate",
            "org_default",
            json!({"name": "r", "rules": [
            {"kind": "rate_limit", "per": "principal", "limit": 2, "window_s": 60}]}),
        );
        let e = block_on(
            f.hooks
                .before_call(&call("org_default", "rm", json!({"path": "/etc/x"})), None),
        )
        .err()
        .unwrap();
        assert_eq!(
            (e.code, e.data.unwrap()["policy_id"].clone()),
            (codes::POLICY_DENIED, json!("pol_block"))
        );
        for _ in 0..2 {
            assert!(block_on(
                f.hooks
                    .before_call(&call("org_default", "rm", json!({"path": "/tmp"})), None)
            )
            .is_ok());
        }
        let e = block_on(
            f.hooks
                .before_call(&call("org_default", "rm", json!({"path": "/tmp"})), None),
        )
        .err()
        .unwrap();
        assert_eq!(e.code, codes::RATE_LIMITED);
        assert!(e.data.unwrap()["retry_after_ms"].as_u64().unwrap() > 0);
        // The refused block was not counted: two calls went through, the third was refused.
    }

    #[test]
    fn approval_is_bound_to_the_exact_call_and_single_use() {
        let f = fixture();
        add(
            &f,
            "pol_hold",
            "org_default",
            json!({"name": "h", "rules": [
            {"kind": "block", "when": {"tool": "delete_*"}, "action": "require_approval"}]}),
        );
        let c = call("org_default", "delete_file", json!({"path": "/a"}));
        let e = block_on(f.hooks.before_call(&c, None)).err().unwrap();
        assert_eq!(e.code, codes::APPROVAL_REQUIRED);
        let id = e.data.as_ref().unwrap()["approval_id"].as_str().unwrap().to_string();
        assert_eq!(
            e.data.unwrap()["url"],
            json!(format!("https://gw.test/admin/v1/approvals/{id}"))
        );
        block_on(f.approvals.decide("org_default", &id, true, "usr_boss", f.now.get())).unwrap();
        let other = call("org_default", "delete_file", json!({"path": "/b"}));
        assert_eq!(
            block_on(f.hooks.before_call(&other, None)).err().unwrap().code,
            codes::APPROVAL_REQUIRED
        );
        assert!(block_on(f.hooks.before_call(&c, None)).is_ok(), "approved: proceeds");
        assert_eq!(
            block_on(f.hooks.before_call(&c, None)).err().unwrap().code,
            codes::APPROVAL_REQUIRED,
            "once"
        );
        let mut legacy = c.clone();
        legacy.url_elicitation = true;
        let e = block_on(f.hooks.before_call(&legacy, None)).err().unwrap();
        assert_eq!(e.code, codes::URL_ELICITATION_REQUIRED);
        assert_eq!(e.data.unwrap()["elicitations"][0]["mode"], "url");
    }

    #[test]
    fn a_stored_policy_that_no_longer_parses_fails_closed() {
        let f = fixture();
        block_on(f.store.create_policy(&PolicyRecord {
            id: "pol_bad".into(),
            org_id: "org_default".into(),
            name: "bad".into(),
            mode: "enforce".into(),
            scope: json!({}),
            rules: json!([{"kind": "nonsense"}]),
            created_at: "t".into(),
            updated_at: "t".into(),
        }))
        .unwrap();
        let e = block_on(f.hooks.before_call(&call("org_default", "x", json!({})), None))
            .err()
            .unwrap();
        assert_eq!(e.code, codes::POLICY_DENIED);
    }
}
