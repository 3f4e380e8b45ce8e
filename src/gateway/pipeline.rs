//! The hook points of the one request pipeline, applied where every client request meets its
//! upstream (`forward`): `before_call` may refuse it (the upstream never sees it), rewrite its
//! arguments, and give a filter its answer passes. The hooks themselves are a platform choice
//! (`context::CallHooks`); policies implement them (`policies`). The record step is the
//! request's event (`record`).
use serde_json::Value;

use crate::context::{AnswerFilter, Call};
use crate::mcp::jsonrpc::RequestId;

use super::relay::Transform;
use super::upstream::Upstream;

/// The call a client request makes, as the hooks see it; `None` for notifications and responses
/// (nothing is called) and for a permit that names no agent (the gateway's own catalog reads).
pub fn call_of(up: &Upstream<'_>, id: Option<&RequestId>, method: &str, msg: &Value) -> Option<Call> {
    id?;
    let agent = up.permit.principal()?;
    let params = msg.get("params").cloned().unwrap_or(Value::Null);
    let name = params
        .get("name")
        .or_else(|| params.get("uri"))
        .and_then(Value::as_str)
        .map(str::to_string);
    Some(Call {
        principal_id: agent.identity.principal_id.clone(),
        org_id: agent.identity.org_id.clone(),
        key_id: agent.key_id.clone(),
        identity: agent.identity.clone(),
        server: up.slug.to_string(),
        virtual_server: up.probe.as_ref().and_then(|p| p.read(|e| e.virtual_server.clone())),
        method: method.to_string(),
        name,
        params,
        trace: up.trace.as_ref().map(|t| t.trace_id.clone()),
        started_ms: up.opened_ms,
        url_elicitation: up.url_elicitation,
    })
}

/// Wraps the transform of the messages relayed to the client: the answer (the response to the
/// call, after era translation and id mapping) passes `filter`.
pub fn wrap(filter: AnswerFilter, mut inner: Transform) -> Transform {
    Box::new(move |m| {
        let m = inner(m)?;
        if !is_response(&m) {
            return Some(m);
        }
        Some(filter(m))
    })
}

pub fn is_response(m: &Value) -> bool {
    m.get("method").is_none() && (m.get("result").is_some() || m.get("error").is_some())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::rc::Rc;

    #[test]
    fn only_the_answer_passes_the_filter() {
        let mark: AnswerFilter = Rc::new(|mut msg: Value| {
            msg["seen"] = json!(true);
            msg
        });
        let mut tf = wrap(mark, Box::new(Some));
        let progress = json!({"jsonrpc":"2.0","method":"notifications/progress","params":{}});
        assert_eq!(tf(progress.clone()), Some(progress));
        let out = tf(json!({"jsonrpc":"2.0","id":1,"error":{"code":-32602,"message":"x"}})).unwrap();
        assert_eq!(out["seen"], json!(true));
    }
}
