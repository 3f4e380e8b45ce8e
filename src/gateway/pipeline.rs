//! The hook points of the one request pipeline, applied where every client request meets its
//! upstream (`forward`): `before_call` may refuse it (the upstream never sees it) and the answer
//! passes `after_result`. The hooks themselves are a platform choice (`context::CallHooks`);
//! policies implement them. The record step is the request's event (`record`).
use std::rc::Rc;

use serde_json::Value;

use crate::context::{Call, CallHooks};
use crate::mcp::jsonrpc::RequestId;

use super::relay::Transform;
use super::upstream::Upstream;

/// The call a client request makes, as the hooks see it; `None` for notifications and responses
/// (nothing is called) and for a permit that names no agent (the gateway's own catalog reads).
pub fn call_of(up: &Upstream<'_>, id: Option<&RequestId>, method: &str, msg: &Value) -> Option<Rc<Call>> {
    id?;
    let agent = up.permit.principal()?;
    let params = msg.get("params").cloned().unwrap_or(Value::Null);
    let name = params
        .get("name")
        .or_else(|| params.get("uri"))
        .and_then(Value::as_str)
        .map(str::to_string);
    Some(Rc::new(Call {
        principal_id: agent.identity.principal_id.clone(),
        org_id: agent.identity.org_id.clone(),
        key_id: agent.key_id.clone(),
        server: up.slug.to_string(),
        method: method.to_string(),
        name,
        params,
        trace: up.trace.as_ref().map(|t| t.trace_id.clone()),
        started_ms: up.opened_ms,
    }))
}

/// One call's passage through the after-result hook.
#[derive(Clone)]
pub struct Tracked {
    hooks: Rc<dyn CallHooks>,
    call: Rc<Call>,
}

impl Tracked {
    pub fn new(hooks: Rc<dyn CallHooks>, call: Rc<Call>) -> Self {
        Self { hooks, call }
    }

    pub fn call(&self) -> &Call {
        &self.call
    }

    /// Wraps the transform of the messages relayed to the client: the answer (the response to
    /// the call, after era translation and id mapping) passes `after_result`.
    pub fn wrap(&self, mut inner: Transform) -> Transform {
        let me = self.clone();
        Box::new(move |m| {
            let m = inner(m)?;
            if !is_response(&m) {
                return Some(m);
            }
            Some(me.hooks.after_result(&me.call, m))
        })
    }
}

pub fn is_response(m: &Value) -> bool {
    m.get("method").is_none() && (m.get("result").is_some() || m.get("error").is_some())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    struct Mark;
    impl CallHooks for Mark {
        fn after_result(&self, _: &Call, mut msg: Value) -> Value {
            msg["seen"] = json!(true);
            msg
        }
    }

    fn call() -> Rc<Call> {
        Rc::new(Call {
            principal_id: "p".into(),
            org_id: "o".into(),
            key_id: "k".into(),
            server: "s".into(),
            method: "tools/call".into(),
            name: Some("echo".into()),
            params: json!({}),
            trace: None,
            started_ms: 0,
        })
    }

    #[test]
    fn only_the_answer_passes_after_result() {
        let t = Tracked::new(Rc::new(Mark), call());
        let mut tf = t.wrap(Box::new(Some));
        let progress = json!({"jsonrpc":"2.0","method":"notifications/progress","params":{}});
        assert_eq!(tf(progress.clone()), Some(progress));
        let out = tf(json!({"jsonrpc":"2.0","id":1,"error":{"code":-32602,"message":"x"}})).unwrap();
        assert_eq!(out["seen"], json!(true));
    }
}
