//! The upstream HTTP client: `worker::Fetch` under an AbortController, bounded by the deadlines
//! of `gateway::deadline` — the response headers raced against a timer, then the body (streamed
//! SSE, or a JSON body read whole) guarded by the same idle and total deadlines. On expiry the
//! upstream request is aborted, so its connection is closed, not left to run.
use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use async_trait::async_trait;
use futures_util::future::{select, Either, LocalBoxFuture};
use futures_util::StreamExt;
use worker::{AbortController, Delay, Fetch, Headers, Method as WMethod, Request, RequestInit};

use crate::gateway::upstream::{self, HttpClient, OutboundRequest, UpstreamError, MAX_UPSTREAM_BODY_BYTES};
use crate::http::{Body, HttpResponse, Method};
use crate::outbound::deadline::{self, Bounds, Clock, Timer};

pub struct FetchClient;

/// The Workers clock: `Date.now()` and timers.
struct WorkerClock;

impl Clock for WorkerClock {
    fn now_ms(&self) -> u64 {
        worker::Date::now().as_millis()
    }

    fn sleep(&self, ms: u64) -> LocalBoxFuture<'static, ()> {
        Box::pin(Delay::from(Duration::from_millis(ms)))
    }
}

/// The fetch's `AbortController`, shared by whoever may abort it (aborting consumes it).
#[derive(Clone)]
struct Aborter(Rc<RefCell<Option<AbortController>>>);

impl Aborter {
    fn abort(&self) {
        if let Some(c) = self.0.borrow_mut().take() {
            c.abort();
        }
    }
}

/// Aborts the fetch when dropped, unless disarmed first.
struct AbortOnDrop(Option<Aborter>);

impl AbortOnDrop {
    fn disarm(mut self) {
        self.0 = None;
    }
}

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        if let Some(a) = self.0.take() {
            a.abort();
        }
    }
}

fn method(m: Method) -> WMethod {
    match m {
        Method::Get => WMethod::Get,
        Method::Put => WMethod::Put,
        Method::Patch => WMethod::Patch,
        Method::Delete => WMethod::Delete,
        Method::Options => WMethod::Options,
        Method::Post | Method::Other => WMethod::Post,
    }
}

/// A fetch failure, told apart: a connection that dropped under the request may be retried.
fn failed(e: impl ToString) -> UpstreamError {
    let text = e.to_string();
    if upstream::is_connection_lost(&text) {
        UpstreamError::ConnectionLost(text)
    } else {
        UpstreamError::Unreachable(text)
    }
}

#[async_trait(?Send)]
impl HttpClient for FetchClient {
    async fn send(&self, req: OutboundRequest) -> Result<HttpResponse, UpstreamError> {
        let bounds = Bounds::whole(req.timeout_ms);
        self.send_bounded(req, bounds).await
    }

    async fn send_bounded(&self, req: OutboundRequest, bounds: Bounds) -> Result<HttpResponse, UpstreamError> {
        let clock: Rc<dyn Clock> = Rc::new(WorkerClock);
        let mut timer = Timer::start(bounds, clock.now_ms());
        let headers = Headers::new();
        for (k, v) in req.headers.iter() {
            headers
                .set(k, v)
                .map_err(|e| UpstreamError::Unreachable(format!("bad header {k}: {e}")))?;
        }
        let mut init = RequestInit::new();
        // Redirects are never followed: every destination the gateway fetches has passed its
        // URL rules (docs/tenancy.md), and a redirect would lead around them. A 3xx comes back
        // as the answer and fails as an unexpected status.
        init.with_method(method(req.method))
            .with_headers(headers)
            .with_redirect(worker::RequestRedirect::Manual);
        if let Some(b) = &req.body {
            init.with_body(Some(js_sys::Uint8Array::from(b.as_slice()).into()));
        }
        let request = Request::new_with_init(&req.url, &init).map_err(|e| UpstreamError::Unreachable(e.to_string()))?;
        let controller = AbortController::default();
        let signal = controller.signal();
        let controller = Aborter(Rc::new(RefCell::new(Some(controller))));
        let fetch = Fetch::Request(request);
        let sending = Box::pin(fetch.send_with_signal(&signal));
        let (left, ms) = timer.remaining(clock.now_ms());
        // Whoever stops waiting for the headers (a cancelled client request drops this future)
        // closes the upstream request too, rather than leaving it to run.
        let waiting = AbortOnDrop(Some(controller.clone()));
        let mut resp = match select(sending, clock.sleep(left)).await {
            Either::Left((Ok(r), _)) => r,
            Either::Left((Err(e), _)) => return Err(failed(e)),
            Either::Right(_) => return Err(UpstreamError::Timeout(ms)),
        };
        waiting.disarm();
        // The response headers are progress.
        timer.progress(clock.now_ms());
        let status = resp.status_code();
        let headers = crate::http::Headers(resp.headers().entries().collect());
        let is_sse = headers
            .get("content-type")
            .is_some_and(|c| c.starts_with("text/event-stream"));
        let stream = match resp.stream() {
            Ok(s) => s.map(|r| r.map_err(|e| e.to_string())).boxed_local(),
            // No body at all (204, HEAD-like answers).
            Err(_) => {
                return Ok(HttpResponse {
                    status,
                    headers,
                    body: Body::Empty,
                })
            }
        };
        let abort: Box<dyn FnOnce()> = Box::new(move || controller.abort());
        let mut body = deadline::guard(stream, timer, is_sse, clock, abort);
        if is_sse {
            return Ok(HttpResponse {
                status,
                headers,
                body: Body::Stream(body),
            });
        }
        // A JSON (or other) body is read whole, within the same deadlines and a size bound.
        let mut bytes = Vec::new();
        while let Some(chunk) = body.next().await {
            bytes.extend(chunk.map_err(UpstreamError::from_stream)?);
            if bytes.len() > MAX_UPSTREAM_BODY_BYTES {
                return Err(UpstreamError::Garbage("response too large".into()));
            }
        }
        Ok(HttpResponse {
            status,
            headers,
            body: Body::Bytes(bytes),
        })
    }
}
