//! The hook points of the one request pipeline, applied where every client request meets its
//! upstream (`forward`): `before_call` may refuse it (the upstream never sees it), the answer
//! passes `after_result`, and its outcome goes to `record` once. The hooks themselves are a
//! platform choice (`context::CallHooks`); policies and observability implement them.
use std::cell::Cell;
use std::rc::Rc;

use serde_json::Value;

use crate::context::{Call, CallHooks, Outcome};
use crate::mcp::jsonrpc::RequestId;
use crate::outbound::UpstreamError;

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
        trace: up.extra_headers.get("traceparent").map(str::to_string),
        started_ms: up.opened_ms,
    }))
}

/// One call's passage through the after-result and record hooks.
#[derive(Clone)]
pub struct Tracked {
    hooks: Rc<dyn CallHooks>,
    call: Rc<Call>,
    recorded: Rc<Cell<bool>>,
}

impl Tracked {
    pub fn new(hooks: Rc<dyn CallHooks>, call: Rc<Call>) -> Self {
        Self {
            hooks,
            call,
            recorded: Rc::new(Cell::new(false)),
        }
    }

    pub fn call(&self) -> &Call {
        &self.call
    }

    /// Records the outcome, once per call whatever path reports it.
    pub fn record(&self, outcome: Outcome) {
        if !self.recorded.replace(true) {
            self.hooks.record(&self.call, &outcome);
        }
    }

    /// The exchange failed before an answer reached the client.
    pub fn failed(&self, e: &UpstreamError) {
        self.record(Outcome::Failed { reason: e.to_string() });
    }

    /// Wraps the transform of the messages relayed to the client: the answer (the response to
    /// the call, after era translation and id mapping) passes `after_result` and is recorded.
    pub fn wrap(&self, mut inner: Transform) -> Transform {
        let me = self.clone();
        Box::new(move |m| {
            let m = inner(m)?;
            if !is_response(&m) {
                return Some(m);
            }
            let m = me.hooks.after_result(&me.call, m);
            let outcome = match m.get("error").and_then(|e| e.get("code")).and_then(Value::as_i64) {
                Some(code) => Outcome::Error { code },
                None => Outcome::Result,
            };
            me.record(outcome);
            Some(m)
        })
    }
}

fn is_response(m: &Value) -> bool {
    m.get("method").is_none() && (m.get("result").is_some() || m.get("error").is_some())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::cell::RefCell;

    #[derive(Default)]
    struct Log(RefCell<Vec<Outcome>>);
    impl CallHooks for Log {
        fn after_result(&self, _: &Call, mut msg: Value) -> Value {
            msg["seen"] = json!(true);
            msg
        }
        fn record(&self, _: &Call, o: &Outcome) {
            self.0.borrow_mut().push(o.clone());
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
    fn the_answer_passes_after_result_and_is_recorded_once() {
        let log = Rc::new(Log::default());
        let t = Tracked::new(log.clone(), call());
        let mut tf = t.wrap(Box::new(Some));
        let progress = json!({"jsonrpc":"2.0","method":"notifications/progress","params":{}});
        assert_eq!(tf(progress.clone()), Some(progress));
        let out = tf(json!({"jsonrpc":"2.0","id":1,"error":{"code":-32602,"message":"x"}})).unwrap();
        assert_eq!(out["seen"], json!(true));
        t.failed(&UpstreamError::Timeout(5));
        assert_eq!(*log.0.borrow(), vec![Outcome::Error { code: -32602 }]);
    }
}
