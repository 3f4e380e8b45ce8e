//! The audit trail's plumbing on Cloudflare: the sink that puts every event on the `AUDIT`
//! queue beside the response, the queue consumer that appends each batch to D1 (where the
//! hash chain is computed, in storage order), and the daily cron that applies retention
//! (docs/observability.md, *Audit trail*; docs/storage.md).
use std::rc::Rc;

use worker::{event, Context, Env, MessageBatch, MessageExt, Queue, ScheduleContext, ScheduledEvent};

use super::{d1::D1Store, Spawn, DB_BINDING};
use crate::observe::{Event, EventSink};
use crate::store::AuditStore;

/// Queue binding (wrangler.toml `[[queues.producers]]`).
pub const AUDIT_BINDING: &str = "AUDIT";
/// Retention variable, in days (`0` keeps records forever).
pub const RETENTION_VAR: &str = "AUDIT_RETENTION_DAYS";
pub const DEFAULT_RETENTION_DAYS: u64 = 90;
const DAY_MS: u64 = 86_400_000;

/// Sends of one event before giving up, and the first pause between them (doubled each time).
const SEND_ATTEMPTS: u32 = 4;
const SEND_BACKOFF_MS: u64 = 100;
/// Largest message body sent (a queue message holds at most 128 KB): an event over it loses
/// its captured arguments, which are replaced by a note of their size.
const MAX_MESSAGE_BYTES: usize = 120 * 1024;

/// The isolate's queue, if the deployment binds it (bindings are fixed for an isolate's life,
/// like the configuration).
pub fn queue(env: &Env) -> Option<Rc<Queue>> {
    let Ok(queue) = env.queue(AUDIT_BINDING) else {
        tracing::warn!("no AUDIT queue binding: the audit trail records nothing");
        return None;
    };
    Some(Rc::new(queue))
}

/// One request's sink: puts each event on the `AUDIT` queue under `spawn` (the Worker's
/// `waitUntil`, a local task in a Durable Object), off the response path.
pub struct QueueSink {
    pub queue: Rc<Queue>,
    pub spawn: Spawn,
}

impl EventSink for QueueSink {
    fn emit_shared(&self, event: &Rc<Event>) {
        let (queue, event) = (self.queue.clone(), event.clone());
        (self.spawn)(Box::pin(async move { send(&queue, &event).await }));
    }
}

/// The event as a queue message: its JSON, without the captured arguments if too large.
fn message(event: &Event) -> String {
    let body = serde_json::to_string(event).unwrap_or_default();
    if body.len() <= MAX_MESSAGE_BYTES {
        return body;
    }
    let mut cut = event.clone();
    cut.arguments = Some(serde_json::json!({ "truncated_bytes": body.len() }));
    serde_json::to_string(&cut).unwrap_or_default()
}

async fn send(queue: &Queue, event: &Event) {
    let id = &event.id;
    let body = message(event);
    let mut pause = SEND_BACKOFF_MS;
    for attempt in 1..=SEND_ATTEMPTS {
        match queue.send(body.clone()).await {
            Ok(()) => return,
            Err(e) if attempt < SEND_ATTEMPTS => {
                tracing::warn!(event_id = %id, attempt, error = %e, "audit event not queued, retrying");
                worker::Delay::from(std::time::Duration::from_millis(pause)).await;
                pause *= 2;
            }
            // Ids only: the body stays out of the log.
            Err(e) => tracing::error!(event_id = %id, error = %e, "audit event lost: the queue refused it"),
        }
    }
}

/// The `AUDIT` queue's consumer: appends the batch (idempotent by event id, so a redelivery
/// stores nothing twice) and acknowledges it; if storage fails, the whole batch is retried
/// (after `max_retries` it goes to the dead-letter queue, never silently dropped).
#[event(queue)]
async fn consume(batch: MessageBatch<String>, env: Env, _ctx: Context) -> worker::Result<()> {
    let messages: Vec<_> = batch.raw_iter().collect();
    let mut events = Vec::new();
    let mut bad = Vec::new();
    for m in &messages {
        match m
            .body()
            .as_string()
            .and_then(|b| serde_json::from_str::<Event>(&b).ok())
        {
            Some(e) => events.push(e),
            None => bad.push(m.id()),
        }
    }
    let store = D1Store::new(env.d1(DB_BINDING)?);
    match store.append(&events).await {
        Ok(n) => {
            tracing::debug!(received = events.len(), stored = n, "audit batch appended");
            for m in &messages {
                if bad.contains(&m.id()) {
                    // Not an event: nothing could ever store it; it ends in the dead-letter queue.
                    tracing::error!(message_id = %m.id(), "audit queue message is not an event");
                    m.retry();
                } else {
                    m.ack();
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
