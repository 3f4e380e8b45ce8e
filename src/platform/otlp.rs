//! The OpenTelemetry sink: each MCP request's spans (`observe::otlp`) POSTed in one OTLP/HTTP
//! JSON export, beside the request (`waitUntil`), bounded by the export deadline. A failed
//! export is logged and dropped: tracing never holds up or fails a call, and is not retried.
use std::rc::Rc;

use crate::config::{Config, OtlpConfig};
use crate::http::{Headers, Method};
use crate::observe::otlp::{export_request, Resource};
use crate::observe::{Event, EventSink};
use crate::outbound::{HttpClient, OutboundRequest, UpstreamError};

use super::fetch::FetchClient;
use super::Spawn;

pub struct OtlpSink {
    config: Rc<OtlpConfig>,
    spawn: Spawn,
}

/// The sink, when an OTLP endpoint is configured.
pub fn sink(cfg: &Config, spawn: &Spawn) -> Option<Rc<dyn EventSink>> {
    let config = Rc::new(cfg.otlp.clone()?);
    Some(Rc::new(OtlpSink {
        config,
        spawn: spawn.clone(),
    }))
}

impl EventSink for OtlpSink {
    fn emit(&self, event: Event) {
        let config = self.config.clone();
        // The spans are built beside the request too: nothing here delays the response.
        (self.spawn)(Box::pin(async move {
            let resource = Resource {
                service_name: config.service_name.clone(),
                service_version: env!("CARGO_PKG_VERSION").into(),
            };
            let Some(body) = export_request(&event, &resource) else {
                return;
            };
            let mut headers = Headers::default();
            for (k, v) in &config.headers.0 {
                headers.set(k, v);
            }
            headers.set("content-type", "application/json");
            let req = OutboundRequest {
                method: Method::Post,
                url: config.traces_url.clone(),
                headers,
                body: Some(body.to_string().into_bytes()),
                timeout_ms: config.timeout_ms,
            };
            // Neither the URL nor the error text is logged: either may carry a credential.
            match FetchClient.send(req).await {
                Ok(r) if (200..300).contains(&r.status) => {}
                Ok(r) => tracing::warn!(status = r.status, "OTLP export refused"),
                Err(e) => tracing::warn!(cause = cause(&e), "OTLP export failed"),
            }
        }));
    }
}

fn cause(e: &UpstreamError) -> &'static str {
    match e {
        UpstreamError::Timeout(_) => "timeout",
        UpstreamError::Status(_) => "status",
        UpstreamError::ConnectionLost(_) | UpstreamError::Unreachable(_) => "unreachable",
        _ => "invalid response",
    }
}
