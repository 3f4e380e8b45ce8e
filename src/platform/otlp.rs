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

/// What every export of the isolate shares, built once from the configuration.
pub struct Exporter {
    config: OtlpConfig,
    resource: Resource,
    /// The configured headers and the content type.
    headers: Headers,
}

/// The isolate's exporter, when an OTLP endpoint is configured.
pub fn exporter(cfg: &Config) -> Option<Rc<Exporter>> {
    let config = cfg.otlp.clone()?;
    let resource = Resource {
        service_name: config.service_name.clone(),
        service_version: env!("CARGO_PKG_VERSION").into(),
    };
    let mut headers = Headers::default();
    for (k, v) in &config.headers.0 {
        headers.set(k, v);
    }
    headers.set("content-type", "application/json");
    Some(Rc::new(Exporter {
        config,
        resource,
        headers,
    }))
}

/// One request's sink: the isolate's exporter and the request's `spawn`.
pub struct OtlpSink {
    pub exporter: Rc<Exporter>,
    pub spawn: Spawn,
}

impl EventSink for OtlpSink {
    fn emit_shared(&self, event: &Rc<Event>) {
        let (exporter, event) = (self.exporter.clone(), event.clone());
        // The spans are built beside the request too: nothing here delays the response.
        (self.spawn)(Box::pin(async move { exporter.export(&event).await }));
    }
}

impl Exporter {
    async fn export(&self, event: &Event) {
        let Some(body) = export_request(event, &self.resource) else {
            return;
        };
        let req = OutboundRequest {
            method: Method::Post,
            url: self.config.traces_url.clone(),
            headers: self.headers.clone(),
            body: Some(body.to_string().into_bytes()),
            timeout_ms: self.config.timeout_ms,
        };
        // Neither the URL nor the error text is logged: either may carry a credential.
        match FetchClient.send(req).await {
            Ok(r) if (200..300).contains(&r.status) => {}
            Ok(r) => tracing::warn!(status = r.status, "OTLP export refused"),
            Err(e) => tracing::warn!(cause = cause(&e), "OTLP export failed"),
        }
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
