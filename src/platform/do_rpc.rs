//! JSON calls from the Worker to a Durable Object (the counters and approvals objects): a POST
//! of a JSON body to an internal URL, answered with a status and a JSON body. The objects are
//! reachable only through their namespace binding, so nothing here is exposed to clients.
use serde::de::DeserializeOwned;
use serde::Serialize;
use worker::{Env, Method, Request, RequestInit, Response, Result};

use crate::store::StoreError;

/// An object's answer: its status and JSON body.
pub struct Answer {
    pub status: u16,
    pub body: String,
}

impl Answer {
    /// The body as `T` (a 200 answer), else a backend error naming the call.
    pub fn json<T: DeserializeOwned>(&self, what: &str) -> Result<T, StoreError> {
        if self.status != 200 {
            return Err(StoreError::Backend(format!("{what}: {} {}", self.status, self.body)));
        }
        serde_json::from_str(&self.body).map_err(|e| StoreError::Backend(format!("{what}: {e}")))
    }
}

/// POSTs `body` as JSON to `path` on the object named `name` of namespace `binding`.
pub async fn call(
    env: &Env,
    binding: &str,
    name: &str,
    path: &str,
    body: &impl Serialize,
) -> Result<Answer, StoreError> {
    let r: Result<Answer> = async {
        let stub = env.durable_object(binding)?.id_from_name(name)?.get_stub()?;
        let mut init = RequestInit::new();
        init.with_method(Method::Post)
            .with_body(Some(serde_json::to_string(body)?.into()));
        let req = Request::new_with_init(&format!("https://object.internal{path}"), &init)?;
        let mut resp = stub.fetch_with_request(req).await?;
        Ok(Answer {
            status: resp.status_code(),
            body: resp.text().await?,
        })
    }
    .await;
    r.map_err(|e| StoreError::Backend(format!("{binding} {path}: {e}")))
}

/// The JSON body of a call, inside the object.
pub async fn body<T: DeserializeOwned>(mut req: Request) -> Result<T> {
    let text = req.text().await?;
    serde_json::from_str(&text).map_err(|e| worker::Error::RustError(format!("bad request body: {e}")))
}

/// A JSON answer with a status, inside the object.
pub fn answer(status: u16, v: &impl Serialize) -> Result<Response> {
    Ok(Response::from_json(v)?.with_status(status))
}
