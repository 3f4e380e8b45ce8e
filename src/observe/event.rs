//! The event: one per MCP request (every endpoint, both eras, refused ones too) and one per
//! admin write. Every sink takes this one shape (docs/observability.md documents each field);
//! no field ever holds a secret or a bearer token.
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::trace::TraceContext;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// A request on `/mcp`, `/mcp/{slug}` or `/mcp/v/{slug}`.
    #[default]
    Mcp,
    /// A write through the admin API.
    Admin,
}

/// How the caller authenticated (`None`: it did not, e.g. a bad key).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthKind {
    ApiKey,
    Oidc,
    Oauth,
    AdminToken,
}

/// How a request ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Outcome {
    /// A result (for `tools/call`: one without `isError`), or an accepted notification.
    Ok,
    /// A `tools/call` result with `isError: true`.
    ToolError,
    /// A JSON-RPC error answered to the client (by the upstream or the gateway).
    RpcError { code: i64 },
    /// Refused by authentication, authorization or a policy: the upstream never saw it.
    Denied { code: i64 },
    /// The upstream failed (connection, HTTP status, malformed answer).
    UpstreamError { reason: String },
    /// An upstream deadline passed.
    Timeout,
    /// The client went away (or cancelled) before the answer.
    Cancelled,
}

impl Outcome {
    /// The short name (`ok`, `tool_error`, …), as stored in indexed columns and data points.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::ToolError => "tool_error",
            Self::RpcError { .. } => "rpc_error",
            Self::Denied { .. } => "denied",
            Self::UpstreamError { .. } => "upstream_error",
            Self::Timeout => "timeout",
            Self::Cancelled => "cancelled",
        }
    }

    /// Counts as an error in usage figures (denials are counted apart).
    pub fn is_error(&self) -> bool {
        !matches!(self, Self::Ok | Self::Denied { .. })
    }
}

/// One exchange with an upstream made for the request (a CLIENT span in OpenTelemetry terms);
/// `/mcp` may make several for one request (e.g. a fan-out).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UpstreamCall {
    pub server: String,
    /// `host` and `port` of the upstream URL (never its path or query, which may carry secrets).
    pub address: String,
    pub port: u16,
    /// The span id this exchange used (sent upstream as the parent in `traceparent`).
    pub span_id: String,
    pub started_ms: u64,
    pub duration_ms: f64,
    /// HTTP status of the upstream's answer, if one came.
    pub status: Option<u16>,
    /// `None` when the exchange succeeded; else why not (`timeout`, `status 502`, …).
    pub error: Option<String>,
}

/// A decision a policy took about the call (`rules` makes them; docs/policies.md). Never holds
/// the text a guardrail found.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Decision {
    pub policy_id: String,
    /// The rule's path in its policy (`rules[0]`).
    pub rule: String,
    /// `redact`, `hash`, `block`, `flag` (guardrails), `deny`, `require_approval` (blocks),
    /// `rate_limited`, …
    pub action: String,
    /// `enforce` or `monitor` (recorded only, nothing changed).
    pub mode: String,
    /// Human-readable summary (`detector=email count=2`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// Guardrails: `arguments` or `results`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<String>,
    /// Guardrails: what found it (`email`, `pattern`, `deny_word`, …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detector: Option<String>,
    /// Guardrails: how many findings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<u32>,
}

/// What an admin write changed. `before`/`after` are the object's admin-API representations with
/// every secret-bearing field removed (see `redact_secrets`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AdminChange {
    /// `POST`, `PATCH`, `PUT` or `DELETE`.
    pub http_method: String,
    /// The admin path written (`/admin/v1/servers/py`).
    pub path: String,
    pub status: u16,
    pub before: Option<Value>,
    pub after: Option<Value>,
}

/// One recorded request. Strings are empty and options `None` where a fact is unknown (e.g. no
/// principal for a request refused at authentication).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Event {
    pub id: String,
    pub kind: EventKind,
    /// Milliseconds since the Unix epoch when the request arrived.
    pub time_ms: u64,
    pub trace: Option<TraceContext>,
    // --- who ---
    /// The organization whose audit chain the event joins (`""`: platform-wide, e.g. a request
    /// that never authenticated or a super-admin write).
    pub org_id: String,
    pub workspace_ids: Vec<String>,
    pub team_ids: Vec<String>,
    pub principal_id: String,
    /// `user` or `agent` (empty when unauthenticated).
    pub principal_kind: String,
    pub key_id: String,
    pub auth_kind: Option<AuthKind>,
    // --- client and protocol ---
    pub client_name: Option<String>,
    pub client_version: Option<String>,
    pub client_address: Option<String>,
    /// `modern` (2026-07-28, stateless) or `legacy` (session era).
    pub era: Option<String>,
    pub protocol_version: Option<String>,
    pub session_id: Option<String>,
    // --- what ---
    /// `server` (`/mcp/{slug}`), `all` (`/mcp`), `virtual` (`/mcp/v/{slug}`), `admin`.
    pub endpoint: String,
    /// The server slug (`/mcp/{slug}`, or the server a `/mcp` call was routed to).
    pub server: Option<String>,
    pub virtual_server: Option<String>,
    /// The JSON-RPC method (`None` for a GET stream or a DELETE).
    pub method: Option<String>,
    pub http_method: String,
    pub jsonrpc_id: Option<String>,
    pub tool: Option<String>,
    pub prompt: Option<String>,
    pub resource: Option<String>,
    /// The arguments as captured (`capture`), already passed through redaction.
    pub arguments: Option<Value>,
    pub capture: super::CaptureMode,
    // --- how it ended ---
    #[serde(flatten)]
    pub outcome: OutcomeField,
    pub latency_ms: f64,
    /// Time spent in upstream exchanges (sum of `upstreams[].duration_ms`).
    pub upstream_ms: f64,
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub upstreams: Vec<UpstreamCall>,
    pub decisions: Vec<Decision>,
    /// The admin write, for `kind = admin`.
    pub admin: Option<AdminChange>,
}

impl Event {
    /// The tool, prompt or resource the request names, if any (what audit columns, usage and
    /// data points call its target).
    pub fn subject(&self) -> Option<&String> {
        self.tool.as_ref().or(self.prompt.as_ref()).or(self.resource.as_ref())
    }
}

/// `Outcome` as a field of `Event` (flattened to `outcome`, `code`, `reason`), defaulting to
/// `Cancelled`: an event that was never told how it ended was abandoned.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutcomeField(pub Outcome);

impl Default for OutcomeField {
    fn default() -> Self {
        Self(Outcome::Cancelled)
    }
}

/// Field names whose values are secrets wherever they appear in an admin document (keys as
/// issued, credentials, client secrets, tokens): removed from `before`/`after`.
const SECRET_FIELDS: &[&str] = &[
    "key",
    "api_key",
    "secret",
    "client_secret",
    "token",
    "access_token",
    "refresh_token",
    "password",
    "value",
    "values",
    "credentials",
    "authorization",
    "headers",
];

/// Removes every secret-bearing field (by name, at any depth) from an admin document.
pub fn redact_secrets(v: &mut Value) {
    match v {
        Value::Object(m) => {
            m.retain(|k, _| !SECRET_FIELDS.contains(&k.to_ascii_lowercase().as_str()));
            m.values_mut().for_each(redact_secrets);
        }
        Value::Array(a) => a.iter_mut().for_each(redact_secrets),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn outcome_flattens_and_secrets_are_removed() {
        let ev = Event {
            outcome: OutcomeField(Outcome::RpcError { code: -32602 }),
            ..Event::default()
        };
        let v = serde_json::to_value(&ev).unwrap();
        assert_eq!(v["outcome"], "rpc_error");
        assert_eq!(v["code"], -32602);
        let back: Event = serde_json::from_value(v).unwrap();
        assert_eq!(back, ev);

        let mut doc = json!({"name": "k", "key": "mcpgw_x", "nested": [{"client_secret": "s", "ok": 1}]});
        redact_secrets(&mut doc);
        assert_eq!(doc, json!({"name": "k", "nested": [{"ok": 1}]}));
    }
}
