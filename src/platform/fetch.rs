//! The upstream HTTP client: `worker::Fetch` with a timeout (an AbortController raced against a
//! timer) and bounded, typed bodies.
use std::time::Duration;

use async_trait::async_trait;
use futures_util::future::{select, Either};
use futures_util::StreamExt;
use worker::{AbortController, Delay, Fetch, Headers, Method as WMethod, Request, RequestInit};

use crate::gateway::upstream::{HttpClient, OutboundRequest, UpstreamError, MAX_UPSTREAM_BODY_BYTES};
use crate::http::{Body, ByteStream, HttpResponse, Method};

pub struct FetchClient;

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

#[async_trait(?Send)]
impl HttpClient for FetchClient {
    async fn send(&self, req: OutboundRequest) -> Result<HttpResponse, UpstreamError> {
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
        let fetch = Fetch::Request(request);
        let sending = Box::pin(fetch.send_with_signal(&signal));
        let timer = Box::pin(Delay::from(Duration::from_millis(req.timeout_ms as u64)));
        let mut resp = match select(sending, timer).await {
            Either::Left((Ok(r), _)) => r,
            Either::Left((Err(e), _)) => return Err(UpstreamError::Unreachable(e.to_string())),
            Either::Right(_) => {
                controller.abort();
                return Err(UpstreamError::Timeout(req.timeout_ms));
            }
        };
        let status = resp.status_code();
        let headers = crate::http::Headers(resp.headers().entries().collect());
        let is_sse = headers
            .get("content-type")
            .is_some_and(|c| c.starts_with("text/event-stream"));
        let body = if is_sse {
            let stream = resp.stream().map_err(|e| UpstreamError::Garbage(e.to_string()))?;
            let stream = stream.map(|r| r.map_err(|e| e.to_string())).boxed_local();
            // A response stream that goes quiet for longer than the timeout has failed; the
            // long-lived GET stream may legitimately be quiet, so it has no idle limit.
            Body::Stream(if req.method == Method::Post {
                idle_timeout(stream, req.timeout_ms)
            } else {
                stream
            })
        } else {
            let bytes = resp
                .bytes()
                .await
                .map_err(|e| UpstreamError::Unreachable(e.to_string()))?;
            if bytes.len() > MAX_UPSTREAM_BODY_BYTES {
                return Err(UpstreamError::Garbage("response too large".into()));
            }
            Body::Bytes(bytes)
        };
        Ok(HttpResponse { status, headers, body })
    }
}

/// Ends a stream with an error when no chunk arrives within `ms`.
fn idle_timeout(stream: ByteStream, ms: u32) -> ByteStream {
    futures_util::stream::unfold(Some(stream), move |st| async move {
        let mut s = st?;
        let outcome = {
            let timer = Box::pin(Delay::from(Duration::from_millis(ms as u64)));
            match select(s.next(), timer).await {
                Either::Left((item, _)) => Ok(item),
                Either::Right(_) => Err(()),
            }
        };
        match outcome {
            Ok(Some(item)) => Some((item, Some(s))),
            Ok(None) => None,
            Err(()) => Some((Err(format!("no data for {ms} ms")), None)),
        }
    })
    .boxed_local()
}
