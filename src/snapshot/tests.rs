//! Native tests of the snapshot's rules: freshness, revalidation, epochs and bounds. Calls
//! through the real endpoint over a counting store are in `e2e_tests/snapshot.rs`.
use std::rc::Rc;

use super::*;

#[test]
fn the_freshness_rule() {
    assert_eq!(freshness(None, 0), Freshness::Expired);
    assert_eq!(freshness(Some(100), 100), Freshness::Fresh);
    assert_eq!(freshness(Some(100), 100 + SOFT_MS - 1), Freshness::Fresh);
    assert_eq!(freshness(Some(100), 100 + SOFT_MS), Freshness::Stale);
    assert_eq!(freshness(Some(100), 100 + HARD_MS - 1), Freshness::Stale);
    assert_eq!(freshness(Some(100), 100 + HARD_MS), Freshness::Expired);
    // A clock that went backwards is not an age.
    assert_eq!(freshness(Some(100), 50), Freshness::Fresh);
    const { assert!(SOFT_MS < HARD_MS && HARD_MS < MAX_AGE_MS) };
}

#[test]
fn one_background_revalidation_per_stale_window() {
    let s = Snapshot::new();
    assert_eq!(s.plan(0), Plan::RevalidateFirst, "never validated");
    s.validated(7, 0);
    assert_eq!(s.plan(SOFT_MS - 1), Plan::Serve);
    assert_eq!(s.plan(SOFT_MS), Plan::ServeAndRevalidate);
    assert_eq!(s.plan(SOFT_MS + 1), Plan::Serve, "one is already running");
    assert_eq!(
        s.plan(HARD_MS),
        Plan::RevalidateFirst,
        "past the bound, nobody is served stale"
    );
    s.validated(7, SOFT_MS);
    assert_eq!(s.plan(SOFT_MS + 1), Plan::Serve);
    s.revalidation_failed();
    assert_eq!(s.plan(SOFT_MS + 1), Plan::RevalidateFirst);
    assert!(s.lookup(|_| Some(())).is_none(), "nothing is served while unvalidated");
}

fn keep_server(s: &Snapshot, slug: &str) {
    s.keep(s.epoch(), |t| t.servers.insert(slug.into(), None));
}

fn has_server(s: &Snapshot, slug: &str) -> bool {
    s.lookup(|t| t.servers.get(slug).map(|_| ())).is_some()
}

#[test]
fn a_new_version_empties_the_snapshot_and_an_old_one_does_not() {
    let s = Snapshot::new();
    s.validated(3, 0);
    keep_server(&s, "a");
    s.validated(3, 10);
    assert!(has_server(&s, "a"), "same version: kept");
    s.validated(2, 20);
    assert!(has_server(&s, "a"), "an older version read says nothing new");
    s.validated(4, 30);
    assert!(!has_server(&s, "a"), "another isolate wrote");
    assert_eq!(s.version(), Some(4));
    keep_server(&s, "b");
    s.validated(4, 30 + MAX_AGE_MS);
    assert!(!has_server(&s, "b"), "rebuilt after MAX_AGE_MS whatever the version");
}

#[test]
fn a_read_that_began_before_a_write_is_not_kept() {
    let s = Snapshot::new();
    s.validated(1, 0);
    let epoch = s.epoch();
    // A write in this isolate lands while the read is in flight.
    s.after_write(Some(2), 5);
    s.keep(epoch, |t| t.servers.insert("a".into(), None));
    assert!(!has_server(&s, "a"));
    assert_eq!((s.version(), s.validated_at_ms()), (Some(2), Some(5)));
    // Likewise when a revalidation finds another isolate's write.
    let epoch = s.epoch();
    s.validated(3, 6);
    s.keep(epoch, |t| t.servers.insert("a".into(), None));
    assert!(!has_server(&s, "a"));
    // A failed bump leaves the snapshot unvalidated: the next read asks storage.
    s.after_write(None, 7);
    assert_eq!(s.plan(7), Plan::RevalidateFirst);
}

#[test]
fn a_moved_catalog_generation_forces_revalidation() {
    let s = Snapshot::new();
    s.validated(1, 0);
    s.saw_generation(5);
    assert_eq!(s.plan(1), Plan::Serve, "the first generation seen is no change");
    s.saw_generation(6);
    assert_eq!(s.plan(1), Plan::RevalidateFirst);
}

#[test]
fn tables_are_bounded() {
    let mut t = Tables::default();
    for i in 0..(MAX_SERVERS * 2 + 3) {
        t.servers.insert(format!("s{i}"), None);
        assert!(t.servers.len() <= MAX_SERVERS);
    }
    for i in 0..(MAX_DERIVED * 2) {
        t.keep_derived(format!("d{i}"), Rc::new(i), 1);
        assert!(t.derived.len() <= MAX_DERIVED);
    }
    // Derived values are bounded by weight too: a few heavy views, never more than the cap.
    let heavy = MAX_DERIVED_WEIGHT / 3 + 1;
    for i in 0..10 {
        t.keep_derived(format!("h{i}"), Rc::new(i), heavy);
        assert!(t.derived_weight <= MAX_DERIVED_WEIGHT && t.derived.get(&format!("h{i}")).is_some());
    }
    t.keep_derived("huge".into(), Rc::new(0), MAX_DERIVED_WEIGHT + 1);
    assert!(
        t.derived.get("huge").is_none(),
        "heavier than the whole budget: not kept"
    );
}
