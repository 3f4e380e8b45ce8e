//! The audit trail's plumbing on Cloudflare: the sink that puts every event on the `AUDIT`
//! queue beside the response (through the isolate's outbox, `observe::outbox`: the events of a
//! short window go in one `sendBatch`), the queue consumer that appends each batch to D1 (where
//! the hash chain is computed, in storage order), and the daily cron that applies retention
//! (docs/observability.md, *Audit trail*; docs/storage.md).
use std::rc::Rc;

use futures_util::future::LocalBoxFuture;
use wasm_bindgen::JsValue;
use worker::{
    event, Context, Env, MessageBatch, MessageExt, Queue, QueueContentType, RawMessageBuilder, ScheduleContext,
    ScheduledEvent,
};

use super::{d1::D1Store, Spawn, DB_BINDING};
use crate::observe::outbox::{BatchQueue, Outbox, LIMITS};
use crate::observe::{Event, EventSink};
use crate::store::AuditStore;

/// Queue binding (wrangler.toml `[[queues.producers]]`).
pub const AUDIT_BINDING: &str = "AUDIT";
/// Retention variable, in days (`0` keeps records forever).
pub const RETENTION_VAR: &str = "AUDIT_RETENTION_DAYS";
pub const DEFAULT_RETENTION_DAYS: u64 = 90;
const DAY_MS: u64 = 86_400_000;

/// The queue's side of the outbox: `sendBatch` of text messages (the event's JSON as it is, not
/// encoded again), and the Workers timer.
struct AuditQueue(Queue);

impl BatchQueue for AuditQueue {
    fn send_batch<'a>(&'a self, bodies: &'a [String]) -> LocalBoxFuture<'a, Result<(), String>> {
        Box::pin(async move {
            let messages: Vec<_> = bodies
                .iter()
                .map(|b| RawMessageBuilder::new(JsValue::from_str(b)).build_with_content_type(QueueContentType::Text))
                .collect();
            self.0.send_raw_batch(messages).await.map_err(|e| e.to_string())
        })
    }

    fn sleep(&self, ms: u64) -> LocalBoxFuture<'static, ()> {
        Box::pin(worker::Delay::from(std::time::Duration::from_millis(ms)))
    }
}

/// The isolate's outbox, if the deployment binds the queue (bindings are fixed for an isolate's
/// life, like the configuration).
pub fn outbox(env: &Env) -> Option<Rc<Outbox>> {
    let Ok(queue) = env.queue(AUDIT_BINDING) else {
        tracing::warn!("no AUDIT queue binding: the audit trail records nothing");
        return None;
    };
    Some(Outbox::new(Rc::new(AuditQueue(queue)), LIMITS))
}

/// One request's sink: each event joins the isolate's outbox, and its task (which lasts until
/// the event was queued) runs under the request's `spawn` (the Worker's `waitUntil`, a local
/// task in a Durable Object), off the response path.
pub struct QueueSink {
    pub outbox: Rc<Outbox>,
    pub spawn: Spawn,
}

impl EventSink for QueueSink {
    fn emit_shared(&self, event: &Rc<Event>) {
        (self.spawn)(self.outbox.add(event.clone()));
    }
}

/// The `AUDIT` queue's consumer: appends the batch (idempotent by event id, so a redelivery
/// stores nothing twice) and acknowledges it; if storage fails, the whole batch is retried
/// (after `max_retries` it goes to the dead-letter queue, never silently dropped).
#[event(queue)]
async fn consume(batch: MessageBatch<String>, env: Env, _ctx: Context) -> worker::Result<()> {
    let messages: Vec<_> = batch.raw_iter().collect();
    let mut events = Vec::new();
    // Positions of the messages that are not events.
    let mut bad = Vec::new();
    for (i, m) in messages.iter().enumerate() {
        match m
            .body()
            .as_string()
            .and_then(|b| serde_json::from_str::<Event>(&b).ok())
        {
            Some(e) => events.push(e),
            None => bad.push(i),
        }
    }
    let store = D1Store::new(env.d1(DB_BINDING)?);
    match store.append(&events).await {
        Ok(n) => {
            tracing::debug!(received = events.len(), stored = n, "audit batch appended");
            if bad.is_empty() {
                batch.ack_all();
            } else {
                for (i, m) in messages.iter().enumerate() {
                    if bad.contains(&i) {
                        // Not an event: nothing could ever store it; it ends in the dead-letter queue.
                        tracing::error!(message_id = %m.id(), "audit queue message is not an event");
                        m.retry();
                    } else {
                        m.ack();
                    }
                }
            }
        }
        Err(e) => {
            tracing::error!(error = %e, count = events.len(), "audit batch not stored, retrying");
            batch.retry_all();
        }
    }
    Ok(())
}

/// The daily cron: removes records older than the retention, keeping each chain's anchor.
#[event(scheduled)]
async fn retention(event: ScheduledEvent, env: Env, _ctx: ScheduleContext) {
    let days = match env.var(RETENTION_VAR).map(|v| v.to_string()) {
        Ok(v) => v.trim().parse::<u64>().unwrap_or_else(|_| {
            tracing::warn!(value = %v, "AUDIT_RETENTION_DAYS is not a whole number of days; using the default");
            DEFAULT_RETENTION_DAYS
        }),
        Err(_) => DEFAULT_RETENTION_DAYS,
    };
    if days == 0 {
        return;
    }
    let cutoff = (event.schedule() as u64).saturating_sub(days.saturating_mul(DAY_MS));
    let store = match env.d1(DB_BINDING) {
        Ok(db) => D1Store::new(db),
        Err(e) => return tracing::error!(error = %e, "retention: no database"),
    };
    match store.purge_audit(cutoff).await {
        Ok(n) => tracing::info!(removed = n, cutoff_ms = cutoff, "audit retention applied"),
        Err(e) => tracing::error!(error = %e, "audit retention failed; the next run retries"),
    }
}
