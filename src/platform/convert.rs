//! Conversions between `worker` requests/responses and the core's platform-neutral types.
use futures_util::StreamExt;
use worker::{Headers, Request, Response, ResponseBuilder, Result};

use crate::http::{Body, HttpRequest, HttpResponse, Method};
use crate::mcp::error::{codes, RpcError};
use crate::mcp::jsonrpc;

/// Reads a request, refusing bodies over `max_body` with 413 before buffering them whole.
pub async fn request(mut req: Request, max_body: usize) -> std::result::Result<HttpRequest, HttpResponse> {
    let too_large = || {
        let e = RpcError::new(
            codes::INVALID_REQUEST,
            format!("request body exceeds {max_body} bytes"),
            413,
        );
        HttpResponse::json(413, &jsonrpc::error_response(None, &e))
    };
    let declared = req
        .headers()
        .get("content-length")
        .ok()
        .flatten()
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > max_body) {
        return Err(too_large());
    }
    let headers = crate::http::Headers(req.headers().entries().collect());
    let url = req.url().map_err(|_| HttpResponse::new(400))?;
    let mut body = Vec::new();
    if declared.is_some() {
        // A declared length (checked above) is what the runtime delivers: read it in one go,
        // which costs one promise instead of a reader and a promise per chunk.
        body = req.bytes().await.map_err(|_| HttpResponse::new(400))?;
        if body.len() > max_body {
            return Err(too_large());
        }
    } else if let Ok(mut stream) = req.stream() {
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|_| HttpResponse::new(400))?;
            body.extend_from_slice(&chunk);
            if body.len() > max_body {
                return Err(too_large());
            }
        }
    }
    Ok(HttpRequest {
        // The method as sent: `worker::Request::method` reads any method it does not know
        // (QUERY, PROPFIND, …) as GET, which would serve it as a GET.
        method: Method::parse(&req.inner().method()),
        path: url.path().to_string(),
        query: url.query().map(str::to_string),
        headers,
        body,
    })
}

/// Builds the `worker` response, streaming when the core streams.
pub fn response(resp: HttpResponse) -> Result<Response> {
    let headers = Headers::new();
    for (k, v) in resp.headers.iter() {
        headers.append(k, v)?;
    }
    let builder = ResponseBuilder::new().with_status(resp.status).with_headers(headers);
    match resp.body {
        Body::Empty => Ok(builder.empty()),
        Body::Bytes(b) => Ok(builder.fixed(b)),
        Body::Stream(s) => builder.from_stream(s.map(|r| r.map_err(worker::Error::RustError))),
    }
}
