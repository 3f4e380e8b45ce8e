//! The gateway's own id space on the upstream sessions it multiplexes. Clients number their
//! requests from the same start, so their ids (and progress tokens) collide as soon as two of
//! them share an upstream session, or the gateway's own requests share one with a client.
//! Every request sent on a legacy upstream session therefore gets a gateway-unique id and
//! progress token; the upstream's messages are mapped back to the client's before relaying,
//! and anything that names another request's id or token is never relayed.
use std::cell::{Cell, RefCell};
use std::collections::HashMap;

use futures_util::stream::AbortHandle;
use serde_json::{json, Value};

use crate::mcp::jsonrpc::RequestId;

/// Prefix of every upstream id and progress token the gateway mints.
const ID_PREFIX: &str = "gw";

thread_local! {
    /// Random per isolate, so ids stay unique across isolates sharing one upstream session.
    static ISOLATE: RefCell<Option<String>> = const { RefCell::new(None) };
    static NEXT: Cell<u64> = const { Cell::new(0) };
}

/// A fresh gateway-unique id: `gw-{isolate}-{n}`.
pub fn fresh() -> String {
    let isolate = ISOLATE.with(|i| {
        i.borrow_mut()
            .get_or_insert_with(crate::crypto::random_token::<9>)
            .clone()
    });
    let n = NEXT.with(|c| {
        let n = c.get() + 1;
        c.set(n);
        n
    });
    format!("{ID_PREFIX}-{isolate}-{n}")
}

/// One client request as the upstream knows it.
#[derive(Debug, Clone, PartialEq)]
pub struct Mapped {
    pub client_id: RequestId,
    pub upstream_id: RequestId,
    /// `(client's token, gateway's token)` when the request asked for progress.
    progress: Option<(Value, Value)>,
}

/// Rewrites a client request's id and `_meta.progressToken` into the gateway's id space.
/// Notifications and responses pass unchanged (`None`).
pub fn outbound(mut msg: Value) -> (Value, Option<Mapped>) {
    let is_request = msg.get("method").is_some() && msg.get("id").is_some_and(|i| !i.is_null());
    if !is_request {
        return (msg, None);
    }
    let upstream_id = json!(fresh());
    let client_id = std::mem::replace(&mut msg["id"], upstream_id.clone());
    let progress = match msg.pointer_mut("/params/_meta/progressToken") {
        Some(token) => {
            let ours = json!(format!("{}-p", upstream_id.as_str().unwrap_or_default()));
            Some((std::mem::replace(token, ours.clone()), ours))
        }
        None => None,
    };
    let mapped = Mapped {
        client_id,
        upstream_id,
        progress,
    };
    (msg, Some(mapped))
}

impl Mapped {
    /// A message from the upstream's stream for this request, in the client's id space;
    /// `None` for a message that belongs to another request (it must not reach this client).
    pub fn inbound(&self, mut msg: Value) -> Option<Value> {
        let method = msg.get("method").and_then(Value::as_str).map(str::to_string);
        match method.as_deref() {
            // A response: only the one to this request.
            None => {
                if msg.get("id") != Some(&self.upstream_id) {
                    return None;
                }
                msg["id"] = self.client_id.clone();
            }
            Some("notifications/progress") => {
                let (client, ours) = self.progress.as_ref()?;
                let slot = msg.pointer_mut("/params/progressToken")?;
                if slot != ours {
                    return None;
                }
                *slot = client.clone();
            }
            Some("notifications/cancelled") => {
                if let Some(slot) = msg.pointer_mut("/params/requestId") {
                    if *slot != self.upstream_id {
                        return None;
                    }
                    *slot = self.client_id.clone();
                }
            }
            _ => {}
        }
        Some(msg)
    }

    /// `notifications/cancelled` for this request, as the upstream must receive it.
    pub fn cancelled(&self, reason: &str) -> Value {
        json!({
            "jsonrpc": "2.0",
            "method": "notifications/cancelled",
            "params": {"requestId": self.upstream_id, "reason": reason},
        })
    }
}

/// How a client's cancellation reaches a request in flight.
#[derive(Debug, Clone)]
pub enum Route {
    /// On a legacy upstream: `notifications/cancelled` naming the gateway id.
    Upstream(Mapped),
    /// On a modern upstream, where cancelling is closing the request's stream: abort it — the
    /// wait for its answer (a JSON answer arrives whole) and the relay of its stream.
    Abort(Vec<AbortHandle>),
}

thread_local! {
    /// Requests in flight on legacy sessions: `(scope, client id)` → `(server slug, route)`.
    static IN_FLIGHT: RefCell<HashMap<(String, String), (String, Route)>> = RefCell::new(HashMap::new());
}

/// Keeps a request findable by its client id (for the client's `notifications/cancelled`)
/// for as long as the guard lives: the relay of its response holds it.
pub struct InFlight {
    key: (String, String),
}

impl InFlight {
    /// Registers the client's request `client_id`, sent to `slug`, under `scope` (the client's
    /// session).
    pub fn register(scope: &str, client_id: &RequestId, slug: &str, route: Route) -> Self {
        let key = (scope.to_string(), client_id.to_string());
        IN_FLIGHT.with(|m| m.borrow_mut().insert(key.clone(), (slug.to_string(), route)));
        InFlight { key }
    }

    /// The request a client's `requestId` names in its session, if still in flight.
    pub fn find(scope: &str, client_id: &RequestId) -> Option<(String, Route)> {
        let key = (scope.to_string(), client_id.to_string());
        IN_FLIGHT.with(|m| m.borrow().get(&key).cloned())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        IN_FLIGHT.with(|m| m.borrow_mut().remove(&self.key));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(id: Value, token: Option<Value>) -> Value {
        let mut m = json!({"jsonrpc": "2.0", "id": id, "method": "tools/call", "params": {"name": "slow"}});
        if let Some(t) = token {
            m["params"]["_meta"] = json!({"progressToken": t});
        }
        m
    }

    #[test]
    fn identical_client_ids_become_distinct_upstream_ids() {
        let (a, ma) = outbound(call(json!(1), Some(json!(0))));
        let (b, mb) = outbound(call(json!(1), Some(json!(0))));
        let (ma, mb) = (ma.unwrap(), mb.unwrap());
        assert_ne!(a["id"], b["id"]);
        assert_ne!(
            a["params"]["_meta"]["progressToken"],
            b["params"]["_meta"]["progressToken"]
        );
        assert_eq!(a["params"]["name"], "slow");
        // Each request's answer and progress find their way back; the other's are dropped.
        let answer_b = json!({"jsonrpc": "2.0", "id": b["id"], "result": {"n": "b"}});
        let progress_b = json!({"jsonrpc": "2.0", "method": "notifications/progress",
            "params": {"progressToken": b["params"]["_meta"]["progressToken"], "progress": 1}});
        assert_eq!(ma.inbound(answer_b.clone()), None);
        assert_eq!(ma.inbound(progress_b.clone()), None);
        let back = mb.inbound(answer_b).unwrap();
        assert_eq!(back["id"], 1);
        assert_eq!(back["result"]["n"], "b");
        assert_eq!(mb.inbound(progress_b).unwrap()["params"]["progressToken"], 0);
    }

    #[test]
    fn requests_without_progress_and_other_messages() {
        let (m, mapped) = outbound(call(json!("x"), None));
        let mapped = mapped.unwrap();
        assert!(m["params"].get("_meta").is_none());
        let stray = json!({"jsonrpc": "2.0", "method": "notifications/progress", "params": {"progressToken": "x"}});
        assert_eq!(mapped.inbound(stray), None);
        let log = json!({"jsonrpc": "2.0", "method": "notifications/message", "params": {"level": "info"}});
        assert_eq!(mapped.inbound(log.clone()), Some(log));
        let cancel = mapped.cancelled("client went away");
        assert_eq!(cancel["params"]["requestId"], m["id"]);
        let note = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
        assert_eq!(outbound(note.clone()), (note, None));
    }

    #[test]
    fn in_flight_requests_are_found_by_session_and_client_id() {
        let (_, m) = outbound(call(json!(7), None));
        let m = m.unwrap();
        {
            let _guard = InFlight::register("session-a", &json!(7), "py", Route::Upstream(m.clone()));
            let (slug, found) = InFlight::find("session-a", &json!(7)).unwrap();
            assert!(slug == "py" && matches!(found, Route::Upstream(f) if f == m));
            assert!(InFlight::find("session-b", &json!(7)).is_none());
            assert!(InFlight::find("session-a", &json!("7")).is_none());
        }
        assert!(InFlight::find("session-a", &json!(7)).is_none());
    }

    #[test]
    fn ids_are_gateway_prefixed_and_unique() {
        let a = fresh();
        let b = fresh();
        assert!(a.starts_with("gw-") && a != b);
    }
}
