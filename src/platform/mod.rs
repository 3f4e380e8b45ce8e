//! The only module that touches the Workers runtime (`worker::`).
use worker::*;

#[event(fetch)]
async fn fetch(req: Request, _env: Env, _ctx: Context) -> Result<Response> {
    match req.path().as_str() {
        "/healthz" => Response::ok("ok"),
        _ => Response::error("not found", 404),
    }
}

#[durable_object]
pub struct McpSession {
    state: State,
}

impl DurableObject for McpSession {
    fn new(state: State, _env: Env) -> Self {
        Self { state }
    }

    async fn fetch(&self, _req: Request) -> Result<Response> {
        let _ = &self.state;
        Response::ok("session")
    }
}
