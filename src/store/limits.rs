//! Rate limits and quotas: exact counters, durable across isolates.
//!
//! A counter is named by a key (`{org}:{policy_id}:{rule_index}:{per}:{subject}`, built by the
//! policies code; the store treats it as opaque except for the organization before the first
//! `:`, which scopes listings). `take` counts one use against a limit within a window and says
//! whether it is allowed — exactly: a backend serializes the takes of one key (the platform's
//! keeps each key in its own Durable Object, docs/storage.md), so with limit `n` exactly `n`
//! of any number of concurrent takes are allowed.
//!
//! Windows (`Window`), all in UTC:
//! - `Fixed { seconds }`: consecutive windows aligned to multiples of `seconds` since the Unix
//!   epoch. At most `limit` takes per window; a burst may put `limit` takes at the end of one
//!   window and `limit` more at the start of the next.
//! - `Sliding { seconds }`: a sliding log: the time of every allowed take within the last
//!   `seconds` is kept, and a take is allowed while fewer than `limit` lie in `(now - seconds,
//!   now]`. Exact for any interval of that length, at the cost of one timestamp per allowed
//!   take, so its limit is bounded by `MAX_SLIDING_LIMIT`.
//! - `Day` and `Month`: calendar periods (a fixed window from 00:00 UTC, from the 1st 00:00 UTC).
//!
//! A refused take counts nothing. `Take::Refused::retry_after_ms` is how long until a take
//! would be allowed if nobody else took meanwhile: the end of the current window (fixed and
//! calendar windows), or the moment the oldest counted take leaves the window (sliding: enough
//! of them to free one unit). It is a hint, never a reservation: another caller may take the
//! unit first.
use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::StoreResult;

/// The largest limit of a sliding window (its log keeps one timestamp per allowed take).
pub const MAX_SLIDING_LIMIT: u64 = 1000;
/// The longest fixed or sliding window: 366 days.
pub const MAX_WINDOW_SECONDS: u64 = 366 * 24 * 3600;
/// The most keys one `peek` may name, and the largest page of `list`.
pub const MAX_PEEK: usize = 100;

const DAY_MS: u64 = 24 * 3600 * 1000;

/// The period a limit counts over (see the module documentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Window {
    Fixed { seconds: u64 },
    Sliding { seconds: u64 },
    Day,
    Month,
}

impl Window {
    /// Whether `limit` over this window is one a backend accepts (policies validate it when
    /// they are written; `take` refuses an invalid one as a backend error).
    pub fn check(&self, limit: u64) -> Result<(), &'static str> {
        match *self {
            Window::Fixed { seconds } | Window::Sliding { seconds } if seconds == 0 => {
                Err("a window lasts at least one second")
            }
            Window::Fixed { seconds } | Window::Sliding { seconds } if seconds > MAX_WINDOW_SECONDS => {
                Err("a window lasts at most 366 days")
            }
            Window::Sliding { .. } if limit > MAX_SLIDING_LIMIT => Err("a sliding window's limit is at most 1000"),
            _ => Ok(()),
        }
    }

    /// The fixed (or calendar) window holding `now_ms`: `[start, end)`; `None` for a sliding one.
    pub fn bounds(&self, now_ms: u64) -> Option<(u64, u64)> {
        match *self {
            Window::Fixed { seconds } => {
                let len = seconds.max(1) * 1000;
                let start = now_ms - now_ms % len;
                Some((start, start + len))
            }
            Window::Day => {
                let start = now_ms - now_ms % DAY_MS;
                Some((start, start + DAY_MS))
            }
            Window::Month => Some(month_bounds(now_ms)),
            Window::Sliding { .. } => None,
        }
    }
}

/// The calendar month (UTC) holding `now_ms`.
fn month_bounds(now_ms: u64) -> (u64, u64) {
    use chrono::Datelike;
    let day = chrono::DateTime::from_timestamp_millis(now_ms as i64)
        .unwrap_or_default()
        .date_naive();
    let first = |y: i32, m: u32| {
        chrono::NaiveDate::from_ymd_opt(y, m, 1)
            .and_then(|d| d.and_hms_opt(0, 0, 0))
            .map(|t| t.and_utc().timestamp_millis().max(0) as u64)
            .unwrap_or(0)
    };
    let (y, m) = (day.year(), day.month());
    let next = if m == 12 { first(y + 1, 1) } else { first(y, m + 1) };
    (first(y, m), next)
}

/// What a take answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Take {
    /// Counted; `remaining` more takes fit in the window now.
    Allowed { remaining: u64 },
    /// Not counted; try again in `retry_after_ms` (a hint, see the module documentation).
    Refused { retry_after_ms: u64 },
}

/// A counter as admins see it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CounterState {
    pub key: String,
    /// The limit and window of the last take.
    pub limit: u64,
    pub window: Window,
    /// Takes counted in the current window (sliding: within the last `seconds`).
    pub used: u64,
    pub remaining: u64,
    /// When the count falls: the end of the fixed window, or when the oldest counted take
    /// leaves a sliding one.
    pub resets_at_ms: u64,
}

/// One counter's stored state: what a backend keeps per key, and the one algorithm every
/// backend applies to it (so they cannot count differently).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Counter {
    /// The window and limit of the last take (`None`: never taken).
    pub window: Option<Window>,
    pub limit: u64,
    /// Fixed and calendar windows: the start of the counted window and its count.
    #[serde(default)]
    pub start_ms: u64,
    #[serde(default)]
    pub count: u64,
    /// Sliding windows: the times of the counted takes, oldest first.
    #[serde(default)]
    pub log: Vec<u64>,
}

impl Counter {
    /// Counts one take at `now_ms` if it fits. A change of window kind or length starts the
    /// count afresh; a change of limit applies to what is already counted. Takes arriving with
    /// a clock behind the counted window's start are counted in that window (clocks of
    /// different isolates differ slightly).
    pub fn take(&mut self, limit: u64, window: Window, now_ms: u64) -> Take {
        if self.window != Some(window) {
            *self = Counter {
                window: Some(window),
                ..Counter::default()
            };
        }
        self.limit = limit;
        match window.bounds(now_ms) {
            Some((start, end)) => {
                let end = if start < self.start_ms {
                    // A clock behind: the stored window is still the current one.
                    window.bounds(self.start_ms).map_or(end, |b| b.1)
                } else {
                    if start > self.start_ms {
                        self.start_ms = start;
                        self.count = 0;
                    }
                    end
                };
                if self.count < limit {
                    self.count += 1;
                    Take::Allowed {
                        remaining: limit - self.count,
                    }
                } else {
                    Take::Refused {
                        retry_after_ms: end.saturating_sub(now_ms).max(1),
                    }
                }
            }
            None => {
                let len = window_ms(window);
                self.log.retain(|t| t + len > now_ms);
                let used = self.log.len() as u64;
                if used < limit {
                    let at = self.log.partition_point(|t| *t <= now_ms);
                    self.log.insert(at, now_ms);
                    Take::Allowed {
                        remaining: limit - used - 1,
                    }
                } else {
                    // Enough of the oldest must leave that fewer than `limit` remain (with a
                    // limit of 0, nothing ever fits: a window's length is the hint).
                    let freeing = self.log.get((used - limit) as usize).copied().unwrap_or(now_ms);
                    Take::Refused {
                        retry_after_ms: (freeing + len).saturating_sub(now_ms).max(1),
                    }
                }
            }
        }
    }

    /// The counter as of `now_ms`; `None` if it counts nothing now (never taken, or its window
    /// has passed).
    pub fn state(&self, key: &str, now_ms: u64) -> Option<CounterState> {
        let window = self.window?;
        let (used, resets_at_ms) = match window.bounds(now_ms) {
            Some((start, end)) => {
                if start > self.start_ms || self.count == 0 {
                    return None;
                }
                let end = if start < self.start_ms {
                    window.bounds(self.start_ms).map_or(end, |b| b.1)
                } else {
                    end
                };
                (self.count, end)
            }
            None => {
                let len = window_ms(window);
                let live: Vec<u64> = self.log.iter().copied().filter(|t| t + len > now_ms).collect();
                (live.len() as u64, live.first()? + len)
            }
        };
        Some(CounterState {
            key: key.to_string(),
            limit: self.limit,
            window,
            used,
            remaining: self.limit.saturating_sub(used),
            resets_at_ms,
        })
    }

    /// Until when this state may matter: after it, the counter counts nothing and its storage
    /// can go (the platform's alarm; the index of counters per organization).
    pub fn live_until_ms(&self) -> u64 {
        match self.window {
            None => 0,
            Some(w @ Window::Sliding { .. }) => self.log.last().map_or(0, |t| t + window_ms(w)),
            Some(w) => w.bounds(self.start_ms).map_or(0, |b| b.1),
        }
    }
}

fn window_ms(w: Window) -> u64 {
    match w {
        Window::Fixed { seconds } | Window::Sliding { seconds } => seconds.max(1) * 1000,
        Window::Day => DAY_MS,
        // Only fixed and sliding windows have a length of their own.
        Window::Month => 31 * DAY_MS,
    }
}

/// The organization a counter key belongs to: the text before its first `:` (all of it if none).
pub fn org_of_key(key: &str) -> &str {
    key.split_once(':').map_or(key, |(org, _)| org)
}

/// Exact counters for rate limits and quotas.
#[async_trait(?Send)]
pub trait Counters {
    /// Counts one use of `key` at `now_ms` if fewer than `limit` lie in the window (see the
    /// module documentation). Takes of one key are serialized: of any number of concurrent
    /// takes, exactly as many as fit are allowed. A window `Window::check` refuses is
    /// `Err(Backend)` and counts nothing.
    async fn take(&self, key: &str, limit: u64, window: Window, now_ms: u64) -> StoreResult<Take>;
    /// The current state of each key that counts something now, in the order given (keys never
    /// taken or whose window has passed are left out). At most `MAX_PEEK` keys.
    async fn peek(&self, keys: &[String], now_ms: u64) -> StoreResult<Vec<CounterState>>;
    /// The counters that count something now whose key starts with `prefix`, ordered by key,
    /// those after `after` only (a keyset page: `after` need not exist), at most `limit`
    /// (capped at `MAX_PEEK`). `prefix` starts with `{org}:`: a listing never reaches another
    /// organization's counters.
    async fn list(
        &self,
        prefix: &str,
        after: Option<&str>,
        limit: usize,
        now_ms: u64,
    ) -> StoreResult<Vec<CounterState>>;
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: u64 = 1_767_225_600_000; // 2026-01-01T00:00:00Z

    #[test]
    fn fixed_windows_reset_at_their_boundary() {
        let w = Window::Fixed { seconds: 60 };
        let mut c = Counter::default();
        assert_eq!(c.take(2, w, T0 + 10), Take::Allowed { remaining: 1 });
        assert_eq!(c.take(2, w, T0 + 20), Take::Allowed { remaining: 0 });
        assert_eq!(c.take(2, w, T0 + 30), Take::Refused { retry_after_ms: 59_970 });
        assert_eq!(c.state("k", T0 + 30).unwrap().used, 2);
        assert_eq!(c.live_until_ms(), T0 + 60_000);
        assert_eq!(c.take(2, w, T0 + 60_000), Take::Allowed { remaining: 1 });
        assert!(c.state("k", T0 + 120_000).is_none());
        // A clock a little behind counts in the current window.
        assert_eq!(c.take(2, w, T0 + 59_000), Take::Allowed { remaining: 0 });
        assert_eq!(c.take(2, w, T0 + 59_500), Take::Refused { retry_after_ms: 60_500 });
    }

    #[test]
    fn sliding_log_frees_as_takes_age() {
        let w = Window::Sliding { seconds: 10 };
        let mut c = Counter::default();
        for t in [0, 1_000, 2_000] {
            assert!(matches!(c.take(3, w, T0 + t), Take::Allowed { .. }));
        }
        assert_eq!(c.take(3, w, T0 + 5_000), Take::Refused { retry_after_ms: 5_000 });
        // The first take leaves at T0 + 10 s: one unit free.
        assert_eq!(c.take(3, w, T0 + 10_000), Take::Allowed { remaining: 0 });
        let s = c.state("k", T0 + 10_000).unwrap();
        assert_eq!((s.used, s.resets_at_ms), (3, T0 + 11_000));
        // A lower limit: enough must leave that fewer than the new limit remain (all three, the
        // newest at T0 + 20 s); with limit 2, the oldest two (the second at T0 + 12 s).
        assert_eq!(c.take(1, w, T0 + 10_500), Take::Refused { retry_after_ms: 9_500 });
        assert_eq!(c.take(2, w, T0 + 10_500), Take::Refused { retry_after_ms: 1_500 });
        assert!(c.state("k", T0 + 20_000).is_none());
    }

    #[test]
    fn calendar_periods_are_utc() {
        // 2026-02-14T12:00Z
        let now = T0 + (31 + 13) * DAY_MS + 12 * 3600 * 1000;
        assert_eq!(
            Window::Day.bounds(now),
            Some((T0 + (31 + 13) * DAY_MS, T0 + (31 + 14) * DAY_MS))
        );
        assert_eq!(
            Window::Month.bounds(now),
            Some((T0 + 31 * DAY_MS, T0 + (31 + 28) * DAY_MS))
        );
        // December rolls into the next year.
        let dec = T0 - 5 * DAY_MS;
        assert_eq!(Window::Month.bounds(dec), Some((T0 - 31 * DAY_MS, T0)));
        let mut c = Counter::default();
        assert_eq!(c.take(1, Window::Month, now), Take::Allowed { remaining: 0 });
        assert_eq!(
            c.take(1, Window::Month, now),
            Take::Refused {
                retry_after_ms: T0 + 59 * DAY_MS - now
            }
        );
    }

    #[test]
    fn a_new_window_kind_starts_afresh_and_zero_refuses() {
        let mut c = Counter::default();
        assert!(matches!(c.take(1, Window::Day, T0), Take::Allowed { .. }));
        assert!(matches!(
            c.take(1, Window::Fixed { seconds: 60 }, T0),
            Take::Allowed { .. }
        ));
        assert_eq!(
            c.take(0, Window::Sliding { seconds: 5 }, T0),
            Take::Refused { retry_after_ms: 5_000 }
        );
        assert!(Window::Sliding { seconds: 5 }.check(MAX_SLIDING_LIMIT + 1).is_err());
        assert!(Window::Fixed { seconds: 0 }.check(1).is_err());
        assert!(Window::Month.check(u64::MAX).is_ok());
        assert_eq!(org_of_key("org_a:pol_1:0:principal:usr_x"), "org_a");
    }
}
