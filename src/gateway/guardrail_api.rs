//! The policy check endpoint for LLM gateways (docs/policies.md, *LLM gateways*): an LLM
//! gateway calls it as an external guardrail before a prompt goes to a model and after the
//! completion comes back, and the caller's organization's `guardrail` rules decide — the same
//! rules, actions and decisions as on MCP calls, so one set of policies governs models and tools.
//!
//! Two wire shapes, one evaluation:
//! - `POST /guardrails/portkey` — Portkey's webhook guardrail: `{request: {json, text},
//!   response: {json, text}, eventType}` in; `{verdict, transformedData?: {request | response:
//!   {json}}}` out.
//! - `POST /guardrails/litellm/beta/litellm_basic_guardrail_api` — LiteLLM's Generic Guardrail
//!   API (its `api_base` is `{gateway}/guardrails/litellm`): `{texts, input_type, ...}` in;
//!   `{action: NONE | GUARDRAIL_INTERVENED | BLOCKED, texts?, blocked_reason?}` out.
//!
//! The caller authenticates as an agent does on `/mcp` (`policy::authenticate`: a gateway API
//! key, an OIDC token, or the gateway's own OAuth token), as a bearer or in `x-api-key`. Only policies whose scope names no
//! server, tool or virtual server apply (a prompt is not a call to a tool); prompts and requests
//! are the `arguments` phase, completions and responses the `results` phase. Each check is one
//! event (endpoint `guardrail`, method `guardrail/check`) with its decisions, never the texts.
use std::rc::Rc;

use serde_json::{json, Value};

use crate::http::{Headers, HttpRequest, HttpResponse, Method};
use crate::mcp::error::codes;
use crate::mcp::transport;
use crate::observe::{Event, Outcome, Probe, TraceContext};
use crate::policy::{self, AuthError, Principal};
use crate::rules::{self, CallTarget, Phase, PolicySet, Verdict};
use crate::store::{PolicyRecord, StoreError};

use super::policies::{document, OrgPolicies};
use super::{record, Services};

pub const PORTKEY_PATH: &str = "/guardrails/portkey";
/// LiteLLM appends `/beta/litellm_basic_guardrail_api` to the configured `api_base`.
pub const LITELLM_BASE: &str = "/guardrails/litellm";
pub const LITELLM_PATH: &str = "/guardrails/litellm/beta/litellm_basic_guardrail_api";
/// `Event::endpoint` and `Event::method` of a check.
pub const ENDPOINT: &str = "guardrail";
pub const METHOD: &str = "guardrail/check";
/// Where LiteLLM puts the `api_key` of a guardrail's settings.
pub const API_KEY_HEADER: &str = "x-api-key";
/// Largest request body (a whole chat request or completion): the MCP message limit.
pub const MAX_BODY_BYTES: usize = transport::MAX_BODY_BYTES;

/// Which LLM gateway's wire shape a request speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavor {
    Portkey,
    Litellm,
}

impl Flavor {
    /// The flavor served at `path` (a trailing slash is tolerated).
    pub fn from_path(path: &str) -> Option<Self> {
        match path.trim_end_matches('/') {
            PORTKEY_PATH => Some(Self::Portkey),
            LITELLM_PATH => Some(Self::Litellm),
            _ => None,
        }
    }

    /// The caller as events name it (`Event::client_name`).
    pub fn name(self) -> &'static str {
        match self {
            Self::Portkey => "portkey",
            Self::Litellm => "litellm",
        }
    }
}

/// Serves one check and records its event.
pub async fn handle(svc: &Services<'_>, req: &HttpRequest, flavor: Flavor) -> HttpResponse {
    let probe = start(svc, req, flavor);
    let svc = &svc.with_probe(probe.clone());
    let resp = match check(svc, req, flavor).await {
        Ok(r) => r,
        Err(refusal) => {
            if let Refusal::Store(e) = &refusal {
                tracing::error!(error = %e, "policies could not be read; guardrail check refused");
            }
            probe.outcome(refusal.outcome());
            refusal.response()
        }
    };
    record::finish(probe, resp)
}

/// The event of a check, as far as the request's arrival tells.
fn start(svc: &Services<'_>, req: &HttpRequest, flavor: Flavor) -> Rc<Probe> {
    let h = &req.headers;
    let base = Event {
        trace: Some(TraceContext::join(
            h.get("traceparent"),
            h.get("tracestate"),
            h.get("baggage"),
        )),
        client_address: h.get(record::CLIENT_ADDRESS_HEADER).map(str::to_string),
        client_name: Some(flavor.name().to_string()),
        endpoint: ENDPOINT.into(),
        method: Some(METHOD.into()),
        http_method: req.method.as_str().to_string(),
        bytes_in: req.body.len() as u64,
        ..Event::default()
    };
    Probe::start(svc.events.clone(), svc.clock(), base)
}

/// Why a check was not evaluated.
#[derive(Debug)]
enum Refusal {
    MethodNotAllowed,
    Origin,
    Auth(AuthError),
    TooLarge,
    MediaType,
    BadRequest(String),
    Store(StoreError),
}

impl Refusal {
    fn response(&self) -> HttpResponse {
        let (status, message) = match self {
            Self::MethodNotAllowed => (405, "only POST is served here".to_string()),
            Self::Origin => (403, "origin not allowed".into()),
            Self::Auth(AuthError::Store(_) | AuthError::Provider(_)) => (503, "authentication is unavailable".into()),
            Self::Auth(_) => (401, "a valid gateway API key or token is required".into()),
            Self::TooLarge => (413, format!("request body exceeds {MAX_BODY_BYTES} bytes")),
            Self::MediaType => (415, "Content-Type must be application/json".into()),
            Self::BadRequest(m) => (400, m.clone()),
            Self::Store(_) => (503, "policies are unavailable".into()),
        };
        let resp = HttpResponse::json(status, &json!({ "error": message }));
        match self {
            Self::MethodNotAllowed => resp.with_header("allow", "POST"),
            Self::Auth(e) if status == 401 => {
                let error = if matches!(e, AuthError::Missing) {
                    ""
                } else {
                    ", error=\"invalid_token\""
                };
                resp.with_header("www-authenticate", format!("Bearer{error}"))
            }
            _ => resp,
        }
    }

    fn outcome(&self) -> Outcome {
        match self {
            Self::Auth(AuthError::Store(_) | AuthError::Provider(_)) | Self::Store(_) => Outcome::RpcError {
                code: codes::INTERNAL_ERROR,
            },
            Self::Auth(_) => Outcome::Denied {
                code: codes::UNAUTHORIZED,
            },
            Self::Origin => Outcome::Denied {
                code: codes::INVALID_REQUEST,
            },
            _ => Outcome::RpcError {
                code: codes::INVALID_REQUEST,
            },
        }
    }
}

async fn check(svc: &Services<'_>, req: &HttpRequest, flavor: Flavor) -> Result<HttpResponse, Refusal> {
    if req.method != Method::Post {
        return Err(Refusal::MethodNotAllowed);
    }
    transport::check_origin(&req.headers, svc.config.origins()).map_err(|_| Refusal::Origin)?;
    let audience = policy::auth::Audience {
        origin: svc.origin,
        resource: None,
    };
    let principal = policy::authenticate(&svc.auth(), &credentials(&req.headers), audience)
        .await
        .map_err(Refusal::Auth)?;
    svc.note(|p| record::principal(p, &principal));
    if req.body.len() > MAX_BODY_BYTES {
        return Err(Refusal::TooLarge);
    }
    if !is_json(req.headers.get("content-type")) {
        return Err(Refusal::MediaType);
    }
    let body: Value =
        serde_json::from_slice(&req.body).map_err(|e| Refusal::BadRequest(format!("request body is not JSON: {e}")))?;
    let mut subject = match flavor {
        Flavor::Portkey => Subject::portkey(body),
        Flavor::Litellm => Subject::litellm(body),
    }
    .map_err(Refusal::BadRequest)?;
    let set = model_policies(svc, &principal.identity.org_id)
        .await
        .map_err(Refusal::Store)?;
    let judged = judge(&set, &principal, &mut subject);
    if let Some(p) = &svc.probe {
        p.update(|e| e.decisions.extend_from_slice(&judged.decisions));
        p.outcome(match judged.blocked {
            Some(_) => Outcome::Denied {
                code: codes::POLICY_DENIED,
            },
            None => Outcome::Ok,
        });
    }
    Ok(match flavor {
        Flavor::Portkey => subject.portkey_answer(&judged),
        Flavor::Litellm => subject.litellm_answer(&judged),
    })
}

/// The request's credentials: its `Authorization` header or, without one, its `x-api-key`
/// presented as a bearer (LiteLLM sends its guardrail's `api_key` setting as `x-api-key`).
fn credentials(headers: &Headers) -> Headers {
    match (headers.get("authorization"), headers.get(API_KEY_HEADER)) {
        (None, Some(key)) => headers.clone().with("authorization", format!("Bearer {}", key.trim())),
        _ => headers.clone(),
    }
}

fn is_json(content_type: Option<&str>) -> bool {
    content_type
        .unwrap_or("")
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .eq_ignore_ascii_case("application/json")
}

/// What a check decided.
#[derive(Debug, Default)]
struct Judged {
    decisions: Vec<crate::observe::Decision>,
    /// Why the texts are refused (`None`: they pass, perhaps rewritten).
    blocked: Option<String>,
    /// Some text was rewritten (redacted or hashed).
    rewritten: bool,
}

/// Evaluates the applicable policies on the subject's texts, rewriting them in place.
fn judge(set: &OrgPolicies, principal: &Principal, subject: &mut Subject) -> Judged {
    let policies = match set {
        Ok(p) => p,
        Err(e) => {
            // A stored policy that no longer parses: policies fail closed.
            tracing::error!(error = %e, org = %principal.identity.org_id, "policies could not be compiled; texts refused");
            return Judged {
                blocked: Some("policies are unavailable; the content was refused".into()),
                ..Judged::default()
            };
        }
    };
    let applicable = policies.applicable(&principal.identity, &CallTarget::default());
    if applicable.is_empty() || subject.texts.is_empty() {
        return Judged::default();
    }
    let before = subject.texts.clone();
    let Verdict { decisions, outcome, .. } = applicable.scan_texts(&mut subject.texts, subject.phase);
    let blocked = match outcome {
        rules::Outcome::Deny { policy_id, rule } => Some(format!("blocked by policy {policy_id} ({rule})")),
        _ => None,
    };
    let rewritten = subject.texts != before;
    // Texts the gateway can read but not give back (Portkey's `text` without a `json` that holds
    // it): a required rewrite that cannot be applied refuses them instead.
    let blocked = blocked.or_else(|| {
        (rewritten && !subject.writable)
            .then(|| "content must be redacted, but the request carries it only as text".to_string())
    });
    Judged {
        decisions,
        blocked,
        rewritten,
    }
}

/// The texts of one check: where they are in the request body (JSON pointers into `doc`), the
/// phase, and whether rewritten texts can be written back.
struct Subject {
    doc: Value,
    phase: Phase,
    pointers: Vec<String>,
    texts: Vec<String>,
    writable: bool,
}

impl Subject {
    fn new(doc: Value, phase: Phase, pointers: Vec<String>, writable: bool) -> Self {
        let texts = pointers
            .iter()
            .map(|p| doc.pointer(p).and_then(Value::as_str).unwrap_or("").to_string())
            .collect();
        Self {
            doc,
            phase,
            pointers,
            texts,
            writable,
        }
    }

    /// The texts written back into the body.
    fn rewritten_doc(&self) -> Value {
        let mut doc = self.doc.clone();
        for (p, t) in self.pointers.iter().zip(&self.texts) {
            if let Some(slot) = doc.pointer_mut(p) {
                *slot = Value::String(t.clone());
            }
        }
        doc
    }

    /// A Portkey webhook body: `eventType` `beforeRequestHook` checks `request.json` (the
    /// OpenAI-shaped request: messages, prompt, input, system, instructions),
    /// `afterRequestHook` checks `response.json` (choices, Anthropic `content`, Responses
    /// `output`). Without `eventType` (older Portkey versions), a non-empty `response` means
    /// the after-request hook. When `json` holds no text, its `text` (the last message) is
    /// checked, read-only.
    fn portkey(body: Value) -> Result<Self, String> {
        if !body.is_object() {
            return Err("the body must be a JSON object".into());
        }
        let has = |side: &str| {
            body.pointer(&format!("/{side}/json"))
                .and_then(Value::as_object)
                .is_some_and(|o| !o.is_empty())
                || body
                    .pointer(&format!("/{side}/text"))
                    .and_then(Value::as_str)
                    .is_some_and(|t| !t.is_empty())
        };
        let phase = match body.get("eventType").and_then(Value::as_str) {
            Some("beforeRequestHook") => Phase::Arguments,
            Some("afterRequestHook") => Phase::Results,
            Some(other) => return Err(format!("unknown eventType '{other}'")),
            None if has("response") => Phase::Results,
            None => Phase::Arguments,
        };
        let side = if phase == Phase::Arguments {
            "request"
        } else {
            "response"
        };
        let mut pointers = Vec::new();
        if let Some(json) = body.pointer(&format!("/{side}/json")) {
            let base = format!("/{side}/json");
            match phase {
                Phase::Arguments => request_texts(json, &base, &mut pointers),
                Phase::Results => response_texts(json, &base, &mut pointers),
            }
        }
        let writable = !pointers.is_empty();
        if pointers.is_empty() && body.pointer(&format!("/{side}/text")).is_some_and(Value::is_string) {
            pointers.push(format!("/{side}/text"));
        }
        Ok(Self::new(body, phase, pointers, writable))
    }

    /// Portkey's answer: `verdict` false when blocked; a rewritten body under
    /// `transformedData.request.json` (before the request) or `.response.json` (after it).
    /// `data` says which policies decided (Portkey shows it in its guardrail logs).
    fn portkey_answer(&self, judged: &Judged) -> HttpResponse {
        let mut answer = json!({
            "verdict": judged.blocked.is_none(),
            "data": { "decisions": judged.decisions },
        });
        if let Some(reason) = &judged.blocked {
            answer["data"]["reason"] = json!(reason);
        } else if judged.rewritten && self.writable {
            let side = if self.phase == Phase::Arguments {
                "request"
            } else {
                "response"
            };
            let doc = self.rewritten_doc();
            answer["transformedData"] = json!({ side: { "json": doc[side]["json"] } });
        }
        HttpResponse::json(200, &answer)
    }

    /// A LiteLLM Generic Guardrail API body: `texts` (what LiteLLM extracted from the request
    /// or the response), `input_type` `request` (the default) or `response`. Images, tools and
    /// structured messages are not read.
    fn litellm(body: Value) -> Result<Self, String> {
        let texts = body
            .get("texts")
            .ok_or("texts: required")?
            .as_array()
            .ok_or("texts: must be an array of strings")?;
        if !texts.iter().all(Value::is_string) {
            return Err("texts: must be an array of strings".into());
        }
        let pointers = (0..texts.len()).map(|i| format!("/texts/{i}")).collect();
        let phase = match body.get("input_type").and_then(Value::as_str) {
            None | Some("request") => Phase::Arguments,
            Some("response") => Phase::Results,
            Some(other) => return Err(format!("input_type: unknown value '{other}'")),
        };
        Ok(Self::new(body, phase, pointers, true))
    }

    /// LiteLLM's answer: `BLOCKED` with a reason, `GUARDRAIL_INTERVENED` with every text
    /// (rewritten ones in place), or `NONE`.
    fn litellm_answer(&self, judged: &Judged) -> HttpResponse {
        let answer = match (&judged.blocked, judged.rewritten) {
            (Some(reason), _) => json!({ "action": "BLOCKED", "blocked_reason": reason }),
            (None, true) => json!({ "action": "GUARDRAIL_INTERVENED", "texts": self.texts }),
            (None, false) => json!({ "action": "NONE" }),
        };
        HttpResponse::json(200, &answer)
    }
}

/// The texts of an OpenAI-shaped request (and Anthropic's `system`): every message's content,
/// `prompt`, `input` (strings, or Responses API items), `system` and `instructions`.
fn request_texts(json: &Value, base: &str, out: &mut Vec<String>) {
    if let Some(messages) = json.get("messages").and_then(Value::as_array) {
        for (i, m) in messages.iter().enumerate() {
            content_texts(m.get("content"), &format!("{base}/messages/{i}/content"), out);
        }
    }
    for field in ["prompt", "input"] {
        match json.get(field) {
            Some(Value::String(_)) => out.push(format!("{base}/{field}")),
            Some(Value::Array(items)) => {
                for (i, item) in items.iter().enumerate() {
                    let at = format!("{base}/{field}/{i}");
                    match item {
                        Value::String(_) => out.push(at),
                        Value::Object(_) => content_texts(item.get("content"), &format!("{at}/content"), out),
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }
    content_texts(json.get("system"), &format!("{base}/system"), out);
    if json.get("instructions").is_some_and(Value::is_string) {
        out.push(format!("{base}/instructions"));
    }
}

/// The texts of an OpenAI-shaped response: every choice's message content (and legacy
/// completions' `text`), Anthropic's `content` blocks and the Responses API's `output` items.
fn response_texts(json: &Value, base: &str, out: &mut Vec<String>) {
    if let Some(choices) = json.get("choices").and_then(Value::as_array) {
        for (i, c) in choices.iter().enumerate() {
            let at = format!("{base}/choices/{i}");
            content_texts(c.pointer("/message/content"), &format!("{at}/message/content"), out);
            if c.get("text").is_some_and(Value::is_string) {
                out.push(format!("{at}/text"));
            }
        }
    }
    content_texts(json.get("content"), &format!("{base}/content"), out);
    if let Some(items) = json.get("output").and_then(Value::as_array) {
        for (i, item) in items.iter().enumerate() {
            content_texts(item.get("content"), &format!("{base}/output/{i}/content"), out);
        }
    }
}

/// A message content: a string, or an array of parts whose `text` is a string.
fn content_texts(content: Option<&Value>, at: &str, out: &mut Vec<String>) {
    match content {
        Some(Value::String(_)) => out.push(at.to_string()),
        Some(Value::Array(parts)) => {
            for (j, part) in parts.iter().enumerate() {
                if part.get("text").is_some_and(Value::is_string) {
                    out.push(format!("{at}/{j}/text"));
                }
            }
        }
        _ => {}
    }
}

/// The organization's policies that apply to model traffic: those whose scope names no server,
/// tool or virtual server. Compiled once per organization per snapshot version (beside the
/// full set `policies::org_policies` keeps); a stored policy that no longer parses makes the
/// set refuse everything (`Err`), as on MCP calls.
pub async fn model_policies(svc: &Services<'_>, org_id: &str) -> Result<Rc<OrgPolicies>, StoreError> {
    let key = format!("policies-models\n{org_id}");
    let keeper = svc.live.as_ref().and_then(|l| l.snapshot.clone());
    if let Some(k) = &keeper {
        if let Some(set) = k.derived::<OrgPolicies>(&key).await {
            return Ok(set);
        }
    }
    let epoch = keeper.as_ref().map(|k| k.snapshot.epoch());
    let records = if org_id.is_empty() {
        Vec::new()
    } else {
        svc.policies.list_policies(org_id).await?
    };
    let set = Rc::new(compile_for_models(&records, svc.config.policy_hash_key));
    if let (Some(k), Some(e)) = (&keeper, epoch) {
        let weight = set.as_ref().as_ref().map(PolicySet::len).unwrap_or(1);
        k.keep_derived(e, key, set.clone(), weight);
    }
    Ok(set)
}

/// Compiles the policies of `records` that apply to model traffic.
pub fn compile_for_models(records: &[PolicyRecord], hash_key: [u8; 32]) -> OrgPolicies {
    let mut inputs = Vec::new();
    for r in records {
        let spec =
            rules::parse_policy(&document(r)).map_err(|e| format!("stored policy {} does not parse: {e}", r.id))?;
        let scope = &spec.scope;
        if scope.server.is_none() && scope.tool.is_none() && scope.virtual_server.is_none() {
            inputs.push((r.id.clone(), r.org_id.clone(), spec));
        }
    }
    Ok(PolicySet::compile(inputs, hash_key))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pointers(json: Value, phase: Phase) -> Vec<String> {
        let mut out = Vec::new();
        match phase {
            Phase::Arguments => request_texts(&json, "", &mut out),
            Phase::Results => response_texts(&json, "", &mut out),
        }
        out
    }

    #[test]
    fn paths() {
        assert_eq!(Flavor::from_path("/guardrails/portkey"), Some(Flavor::Portkey));
        assert_eq!(Flavor::from_path("/guardrails/portkey/"), Some(Flavor::Portkey));
        assert_eq!(
            Flavor::from_path("/guardrails/litellm/beta/litellm_basic_guardrail_api"),
            Some(Flavor::Litellm)
        );
        assert_eq!(Flavor::from_path("/guardrails/litellm"), None);
        assert_eq!(Flavor::from_path("/guardrails"), None);
        assert!(LITELLM_PATH.starts_with(LITELLM_BASE));
    }

    #[test]
    fn request_and_response_texts_are_found_where_llm_apis_keep_them() {
        let req = json!({
            "model": "gpt-4o",
            "messages": [
                {"role": "system", "content": "be brief"},
                {"role": "user", "content": [{"type": "text", "text": "hi"}, {"type": "image_url", "image_url": {"url": "x"}}]},
                {"role": "assistant", "content": null, "tool_calls": []}
            ],
            "system": [{"type": "text", "text": "anthropic system"}],
            "instructions": "responses api"
        });
        assert_eq!(
            pointers(req, Phase::Arguments),
            [
                "/messages/0/content",
                "/messages/1/content/0/text",
                "/system/0/text",
                "/instructions"
            ]
        );
        assert_eq!(
            pointers(json!({"prompt": ["a", "b"], "input": "c"}), Phase::Arguments),
            ["/prompt/0", "/prompt/1", "/input"]
        );
        assert_eq!(
            pointers(
                json!({"input": [{"role": "user", "content": [{"type": "input_text", "text": "q"}]}]}),
                Phase::Arguments
            ),
            ["/input/0/content/0/text"]
        );
        let resp = json!({
            "choices": [{"message": {"role": "assistant", "content": "answer"}}, {"text": "legacy"}],
            "content": [{"type": "text", "text": "anthropic"}],
            "output": [{"type": "message", "content": [{"type": "output_text", "text": "responses"}]}],
            "model": "gpt-4o"
        });
        assert_eq!(
            pointers(resp, Phase::Results),
            [
                "/choices/0/message/content",
                "/choices/1/text",
                "/content/0/text",
                "/output/0/content/0/text"
            ]
        );
    }

    #[test]
    fn portkey_phase_comes_from_the_event_type_or_the_response() {
        let before = Subject::portkey(json!({"request": {"json": {"messages": [{"role": "user", "content": "a"}]}, "text": "a"}, "response": {"json": {}, "text": ""}, "eventType": "beforeRequestHook"})).unwrap();
        assert_eq!(
            (before.phase, before.texts.clone(), before.writable),
            (Phase::Arguments, vec!["a".to_string()], true)
        );
        let after = Subject::portkey(json!({"request": {"json": {}}, "response": {"json": {"choices": [{"message": {"content": "b"}}]}, "text": "b"}})).unwrap();
        assert_eq!(
            (after.phase, after.texts.clone()),
            (Phase::Results, vec!["b".to_string()])
        );
        let text_only =
            Subject::portkey(json!({"request": {"text": "only text"}, "eventType": "beforeRequestHook"})).unwrap();
        assert_eq!(
            (text_only.texts.clone(), text_only.writable),
            (vec!["only text".to_string()], false)
        );
        assert!(Subject::portkey(json!({"eventType": "duringRequestHook"})).is_err());
        assert!(Subject::portkey(json!([])).is_err());
    }

    #[test]
    fn litellm_bodies_are_checked() {
        let s = Subject::litellm(json!({"texts": ["a", "b"], "input_type": "response", "request_data": {}})).unwrap();
        assert_eq!(
            (s.phase, s.texts.clone()),
            (Phase::Results, vec!["a".to_string(), "b".to_string()])
        );
        assert_eq!(Subject::litellm(json!({"texts": []})).unwrap().phase, Phase::Arguments);
        assert!(Subject::litellm(json!({"texts": [1]})).is_err());
        assert!(Subject::litellm(json!({"input_type": "request"})).is_err());
        assert!(Subject::litellm(json!({"texts": [], "input_type": "both"})).is_err());
    }

    #[test]
    fn rewritten_texts_go_back_where_they_were() {
        let mut s = Subject::portkey(json!({
            "request": {"json": {"model": "m", "messages": [{"role": "user", "content": "mail a@b.example"}]}, "text": "mail a@b.example"},
            "eventType": "beforeRequestHook"
        }))
        .unwrap();
        s.texts[0] = "mail [EMAIL]".into();
        let judged = Judged {
            rewritten: true,
            ..Judged::default()
        };
        let answer: Value = serde_json::from_slice(s.portkey_answer(&judged).bytes().unwrap()).unwrap();
        assert_eq!(answer["verdict"], true);
        assert_eq!(
            answer["transformedData"],
            json!({"request": {"json": {"model": "m", "messages": [{"role": "user", "content": "mail [EMAIL]"}]}}})
        );
    }

    #[test]
    fn only_policies_without_a_target_apply_to_models() {
        let rec = |id: &str, scope: Value| PolicyRecord {
            id: id.into(),
            org_id: "org_a".into(),
            name: id.into(),
            scope,
            mode: "enforce".into(),
            rules: json!([{"kind": "guardrail", "on": ["arguments"], "detect": ["email"], "action": "redact"}]),
            created_at: "t".into(),
            updated_at: "t".into(),
        };
        let records = [
            rec("pol_all", json!({})),
            rec("pol_team", json!({"subject": {"kind": "team", "id": "team_x"}})),
            rec("pol_server", json!({"server": "*"})),
            rec("pol_tool", json!({"tool": "send"})),
            rec("pol_virtual", json!({"virtual_server": "ops"})),
        ];
        let set = compile_for_models(&records, [0; 32]).unwrap();
        assert_eq!(set.len(), 2);
        let mut broken = records[0].clone();
        broken.rules = json!("nonsense");
        assert!(compile_for_models(&[broken], [0; 32]).is_err());
    }
}
