//! Checks of `Counters`: exact counting per window, retry hints, listing by organization, and
//! exactness under concurrency. Every check works at times from `base_ms` on (the platform
//! passes the real clock, so the Durable Objects' expiry alarms lie ahead) on keys of its own
//! organization (`org_sc_lim_{check}_{base}`), so checks share one backend in any order.
use futures_util::future::join_all;

use super::{ensure, same, LimitStores, Outcome};
use crate::store::limits::{Take, Window, MAX_SLIDING_LIMIT};

const MINUTE: u64 = 60_000;
const DAY: u64 = 24 * 60 * MINUTE;

fn org(check: &str, s: &LimitStores<'_>) -> String {
    format!("org_sc_lim_{check}_{}", s.base_ms)
}

/// The start of the first `len`-aligned window after `base`.
fn aligned(base: u64, len: u64) -> u64 {
    (base / len + 1) * len
}

pub async fn counters_fixed_window_counts_exactly(s: &LimitStores<'_>) -> Outcome {
    let c = s.counters;
    let key = format!("{}:pol_1:0:principal:agt_1", org("fixed", s));
    let w = Window::Fixed { seconds: 60 };
    let t = aligned(s.base_ms, MINUTE);
    for (i, at) in [t, t + 1, t + 30_000].into_iter().enumerate() {
        same!(
            c.take(&key, 3, w, at).await?,
            Take::Allowed {
                remaining: 2 - i as u64
            },
            "take {i} of 3"
        );
    }
    same!(
        c.take(&key, 3, w, t + 40_000).await?,
        Take::Refused { retry_after_ms: 20_000 },
        "a take over the limit waits for the window's end"
    );
    // A refused take counts nothing.
    let st = c.peek(std::slice::from_ref(&key), t + 41_000).await?;
    same!(st.len(), 1, "peek of a live counter");
    same!(
        (st[0].used, st[0].remaining, st[0].limit),
        (3, 0, 3),
        "the counter's figures"
    );
    same!(st[0].resets_at_ms, t + MINUTE, "when it resets");
    same!(st[0].window, w, "the counter's window");
    same!(
        c.take(&key, 3, w, t + MINUTE).await?,
        Take::Allowed { remaining: 2 },
        "the next window starts afresh"
    );
    // A higher limit applies to what is counted.
    same!(
        c.take(&key, 5, w, t + MINUTE + 1).await?,
        Take::Allowed { remaining: 3 },
        "a raised limit"
    );
    Ok(())
}

pub async fn counters_sliding_window_is_a_log(s: &LimitStores<'_>) -> Outcome {
    let c = s.counters;
    let key = format!("{}:pol_1:0:principal:agt_1", org("sliding", s));
    let w = Window::Sliding { seconds: 10 };
    let t = s.base_ms;
    same!(c.take(&key, 2, w, t).await?, Take::Allowed { remaining: 1 }, "first");
    same!(
        c.take(&key, 2, w, t + 4_000).await?,
        Take::Allowed { remaining: 0 },
        "second"
    );
    same!(
        c.take(&key, 2, w, t + 6_000).await?,
        Take::Refused { retry_after_ms: 4_000 },
        "full: until the first take is 10 s old"
    );
    same!(
        c.take(&key, 2, w, t + 10_000).await?,
        Take::Allowed { remaining: 0 },
        "the first take left the window"
    );
    same!(
        c.take(&key, 2, w, t + 13_999).await?,
        Take::Refused { retry_after_ms: 1 },
        "the second leaves at 14 s"
    );
    let st = c.peek(std::slice::from_ref(&key), t + 12_000).await?;
    same!(
        st.first().map(|x| (x.used, x.resets_at_ms)),
        Some((2, t + 14_000)),
        "a sliding counter's figures"
    );
    ensure!(
        c.take(&key, MAX_SLIDING_LIMIT + 1, w, t + 20_000).await.is_err(),
        "a sliding limit over MAX_SLIDING_LIMIT is refused"
    );
    ensure!(
        c.take(&key, 1, Window::Fixed { seconds: 0 }, t + 20_000).await.is_err(),
        "a window of 0 s is refused"
    );
    Ok(())
}

pub async fn counters_calendar_periods_are_utc(s: &LimitStores<'_>) -> Outcome {
    let c = s.counters;
    let o = org("calendar", s);
    let day_key = format!("{o}:pol_1:0:org:{o}");
    // Noon of a day ahead, and noon of the 1st of a month ahead.
    let t = aligned(s.base_ms, DAY) + DAY / 2;
    let midnight = t + DAY / 2;
    same!(
        c.take(&day_key, 1, Window::Day, t).await?,
        Take::Allowed { remaining: 0 },
        "day"
    );
    same!(
        c.take(&day_key, 1, Window::Day, t + 1).await?,
        Take::Refused {
            retry_after_ms: midnight - t - 1
        },
        "the day's quota is used until 00:00 UTC"
    );
    same!(
        c.take(&day_key, 1, Window::Day, midnight).await?,
        Take::Allowed { remaining: 0 },
        "a new day"
    );
    let month_key = format!("{o}:pol_1:1:org:{o}");
    let (_, first) = Window::Month.bounds(s.base_ms).expect("a calendar window");
    let t = first + DAY / 2;
    let (_, next_month) = Window::Month.bounds(t).expect("a calendar window");
    same!(
        c.take(&month_key, 2, Window::Month, t).await?,
        Take::Allowed { remaining: 1 },
        "month 1"
    );
    same!(
        c.take(&month_key, 2, Window::Month, t + DAY).await?,
        Take::Allowed { remaining: 0 },
        "month 2"
    );
    same!(
        c.take(&month_key, 2, Window::Month, t + 2 * DAY).await?,
        Take::Refused {
            retry_after_ms: next_month - t - 2 * DAY
        },
        "the month's quota is used until the 1st, 00:00 UTC"
    );
    same!(
        c.take(&month_key, 2, Window::Month, next_month).await?,
        Take::Allowed { remaining: 1 },
        "a new month"
    );
    Ok(())
}

pub async fn counters_concurrent_takes_are_exact(s: &LimitStores<'_>) -> Outcome {
    let c = s.counters;
    let key = format!("{}:pol_1:0:principal:agt_1", org("concurrent", s));
    let w = Window::Fixed { seconds: 3600 };
    let t = s.base_ms;
    let takes = join_all((0..50).map(|_| c.take(&key, 10, w, t))).await;
    let mut remaining = Vec::new();
    for r in takes {
        if let Take::Allowed { remaining: n } = r? {
            remaining.push(n);
        }
    }
    remaining.sort_unstable();
    same!(
        remaining,
        (0..10).collect::<Vec<u64>>(),
        "50 concurrent takes with limit 10: exactly 10 allowed, each seeing its own remainder"
    );
    let st = c.peek(std::slice::from_ref(&key), t).await?;
    same!(st.first().map(|x| x.used), Some(10), "the count after the burst");
    Ok(())
}

pub async fn counters_listed_by_organization_prefix(s: &LimitStores<'_>) -> Outcome {
    let c = s.counters;
    let o = org("list", s);
    let other = org("list_other", s);
    let w = Window::Fixed { seconds: 600 };
    let t = s.base_ms;
    let key = |org: &str, who: &str| format!("{org}:pol_1:0:principal:{who}");
    for who in ["usr_c", "usr_a", "usr_b"] {
        c.take(&key(&o, who), 5, w, t).await?;
    }
    c.take(&key(&o, "usr_a"), 5, w, t).await?;
    c.take(&key(&other, "usr_a"), 5, w, t).await?;
    // A counter whose window passed is not listed.
    c.take(&key(&o, "usr_old"), 5, Window::Fixed { seconds: 1 }, t).await?;
    let prefix = format!("{o}:");
    let now = t + 2_000;
    let listed = c.list(&prefix, None, 10, now).await?;
    same!(
        listed.iter().map(|x| (x.key.clone(), x.used)).collect::<Vec<_>>(),
        vec![(key(&o, "usr_a"), 2), (key(&o, "usr_b"), 1), (key(&o, "usr_c"), 1)],
        "an organization's live counters, by key"
    );
    let page = c.list(&prefix, Some(&key(&o, "usr_a")), 1, now).await?;
    same!(
        page.iter().map(|x| x.key.clone()).collect::<Vec<_>>(),
        vec![key(&o, "usr_b")],
        "a keyset page after usr_a, of one"
    );
    let narrow = c.list(&format!("{o}:pol_2:"), None, 10, now).await?;
    ensure!(narrow.is_empty(), "a prefix nothing matches lists nothing: {narrow:?}");
    let peeked = c
        .peek(&[key(&o, "usr_b"), key(&o, "usr_never"), key(&other, "usr_a")], now)
        .await?;
    same!(
        peeked.iter().map(|x| x.key.clone()).collect::<Vec<_>>(),
        vec![key(&o, "usr_b"), key(&other, "usr_a")],
        "peek: live keys in the order given, unknown ones left out"
    );
    Ok(())
}
