//! The Workers Analytics Engine sink: one data point per event on the `USAGE` dataset, laid out
//! by `observe::analytics`. `writeDataPoint` is synchronous and does no I/O the response waits
//! for (the runtime sends points after the request), so nothing is awaited here.
use std::rc::Rc;

use worker::{AnalyticsEngineDataPointBuilder, AnalyticsEngineDataset, Env};

use crate::observe::analytics::DataPoint;
use crate::observe::{Event, EventSink};

/// Binding name (wrangler.toml `analytics_engine_datasets`).
pub const USAGE_BINDING: &str = "USAGE";

pub struct AnalyticsSink(AnalyticsEngineDataset);

/// The sink, when the deployment binds a `USAGE` dataset. It holds nothing of a request, so one
/// serves the isolate.
pub fn sink(env: &Env) -> Option<Rc<dyn EventSink>> {
    let dataset = env.analytics_engine(USAGE_BINDING).ok()?;
    Some(Rc::new(AnalyticsSink(dataset)))
}

impl EventSink for AnalyticsSink {
    fn emit_shared(&self, event: &Rc<Event>) {
        let p = DataPoint::from_event(event);
        let written = AnalyticsEngineDataPointBuilder::new()
            .indexes([p.index.as_str()])
            .blobs(p.blobs)
            .doubles(p.doubles)
            .write_to(&self.0);
        // A dropped data point costs a count in the usage figures, never the request.
        if let Err(e) = written {
            tracing::warn!(error = %e, "analytics engine data point not written");
        }
    }
}
