//! Authorization decision time with many grants — a native micro-benchmark of
//! `mcp_gateway::policy::access` (run by scripts/bench.sh:
//! `cargo run --release --example authz_bench`).
//!
//! Builds GRANTS (10,000) grants over SERVERS (1,000) servers `srv-0000`..`srv-0999` with a
//! deterministic PRNG: subjects spread over orgs, workspaces, teams, users and agents; mostly
//! exact slugs, some globs (`srv-01*`, `srv-0?5?`, `*`), some tool-level grants (exact tools
//! and globs like `get_*`), ~10% denies, a few virtual-server grants. One user identity
//! (an org, a workspace, two teams) is the caller; the grants that apply to it are the ones of
//! its org, workspace, teams and itself. It measures, each as the median of RUNS runs:
//!   (a) `Access::new(identity, 10,000 grants)` — filtering all grants for the identity
//!       (the grants are cloned before the timer; the call consumes them, dropping the rest);
//!   (a') `Access::new` on only the grants of its subjects — what the gateway does per request
//!       after D1's `grants_for(subject_ids)` has already selected them;
//!   (b) `server_allowed(slug)` for each of the 1,000 servers;
//!   (c) `tool_allowed(slug, tool)` for each of the 1,000 servers × 5 tools.
//! Knobs (env): AUTHZ_GRANTS (10000), AUTHZ_SERVERS (1000), AUTHZ_RUNS (15).
use std::hint::black_box;
use std::time::{Duration, Instant};

use mcp_gateway::policy::access::{Access, Effect, Grant, Identity, ResourceKind, SubjectKind};

const TOOLS: [&str; 5] = ["get_item", "list_items", "create_item", "delete_item", "search"];
const TOOL_GLOBS: [&str; 4] = ["get_*", "list_*", "*_item", "delete_*"];
const ORGS: usize = 10;
const WORKSPACES_PER_ORG: usize = 3;
const TEAMS_PER_WORKSPACE: usize = 5;
const USERS: usize = 1000;
const AGENTS: usize = 200;

fn env_usize(name: &str, dflt: usize) -> usize {
    match std::env::var(name) {
        Ok(v) if !v.is_empty() => v.parse().ok().filter(|n| *n > 0).unwrap_or_else(|| {
            eprintln!("authz_bench: {name} must be a positive integer, got {v:?}");
            std::process::exit(2)
        }),
        _ => dflt,
    }
}

/// splitmix64: deterministic, no dependency.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    /// True with probability `pct` percent.
    fn pct(&mut self, pct: u64) -> bool {
        self.next() % 100 < pct
    }
}

fn ws_id(org: usize, ws: usize) -> String {
    format!("ws_{org}_{ws}")
}
fn team_id(org: usize, ws: usize, team: usize) -> String {
    format!("team_{org}_{ws}_{team}")
}

/// The caller: a user of org 0, in workspace 0 and two of its teams.
fn caller() -> Identity {
    Identity {
        principal_id: "usr_0000".into(),
        kind: "user".into(),
        org_id: "org_0".into(),
        workspace_ids: vec![ws_id(0, 0)],
        team_ids: vec![team_id(0, 0, 0), team_id(0, 0, 1)],
    }
}

/// Grants biased like a real directory: the caller's own org/workspace/teams get a larger share
/// than uniform (they are the ones an admin of that org works on), the rest spread everywhere.
fn make_grants(n: usize, servers: usize, rng: &mut Rng) -> Vec<Grant> {
    (0..n)
        .map(|i| {
            let org = if rng.pct(5) { 0 } else { rng.below(ORGS) };
            let ws = rng.below(WORKSPACES_PER_ORG);
            let (subject_kind, subject_id) = match rng.below(100) {
                0..=1 => (SubjectKind::Org, format!("org_{org}")),
                2..=11 => (SubjectKind::Workspace, ws_id(org, ws)),
                12..=49 => (SubjectKind::Team, team_id(org, ws, rng.below(TEAMS_PER_WORKSPACE))),
                50..=89 => {
                    // A few grants name the caller directly.
                    let u = if rng.pct(1) && rng.pct(50) { 0 } else { rng.below(USERS) };
                    (SubjectKind::User, format!("usr_{u:04}"))
                }
                _ => (SubjectKind::Agent, format!("agt_{:04}", rng.below(AGENTS))),
            };
            let virtual_ = rng.pct(3);
            let resource = if virtual_ {
                format!("vsrv-{:02}", rng.below(50))
            } else {
                match rng.below(100) {
                    0..=89 => format!("srv-{:04}", rng.below(servers)),
                    90..=95 => format!("srv-{:02}*", rng.below(servers.div_ceil(100).max(1))), // 100 servers
                    96..=98 => format!("srv-0?{}?", rng.below(10)),                            // 100 servers
                    _ => "*".to_string(),
                }
            };
            let tool = (!virtual_ && rng.pct(30)).then(|| {
                if rng.pct(70) {
                    TOOLS[rng.below(TOOLS.len())].to_string()
                } else {
                    TOOL_GLOBS[rng.below(TOOL_GLOBS.len())].to_string()
                }
            });
            let effect = if rng.pct(10) { Effect::Deny } else { Effect::Allow };
            Grant {
                id: format!("grt_{i:05}"),
                subject_kind,
                subject_id,
                resource_kind: if virtual_ {
                    ResourceKind::Virtual
                } else {
                    ResourceKind::Server
                },
                resource,
                tool,
                effect,
                created_at: "2026-01-01T00:00:00.000Z".into(),
            }
        })
        .collect()
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn ns(d: Duration, per: usize) -> f64 {
    d.as_nanos() as f64 / per as f64
}

fn main() {
    let started = Instant::now();
    let n_grants = env_usize("AUTHZ_GRANTS", 10_000);
    let n_servers = env_usize("AUTHZ_SERVERS", 1_000);
    let runs = env_usize("AUTHZ_RUNS", 15);
    let mut rng = Rng(0x05EE_D0FA_11CE);
    let grants = make_grants(n_grants, n_servers, &mut rng);
    let slugs: Vec<String> = (0..n_servers).map(|i| format!("srv-{i:04}")).collect();
    let me = caller();

    // The grants D1's grants_for(subject_ids) would return for the caller (subject id match,
    // any kind) — the input Access::new gets in the gateway.
    let subject_ids = me.subject_ids();
    let preselected: Vec<Grant> = grants
        .iter()
        .filter(|g| subject_ids.contains(&g.subject_id))
        .cloned()
        .collect();

    // (a) Access::new over all grants; (a') over the preselected ones.
    let mut t_new = Vec::with_capacity(runs);
    let mut t_new_pre = Vec::with_capacity(runs);
    let mut access = Access::default();
    for _ in 0..runs {
        let input = grants.clone();
        let t = Instant::now();
        access = black_box(Access::new(black_box(&me), input));
        t_new.push(t.elapsed());
        let input = preselected.clone();
        let t = Instant::now();
        let a = black_box(Access::new(black_box(&me), input));
        t_new_pre.push(t.elapsed());
        assert_eq!(a, access, "the preselected grants must give the same Access");
    }
    let applicable = grants
        .iter()
        .filter(|g| Access::new(&me, [(*g).clone()]) != Access::default())
        .count();
    let applicable_server = grants
        .iter()
        .filter(|g| g.resource_kind == ResourceKind::Server && Access::new(&me, [(*g).clone()]) != Access::default())
        .collect::<Vec<_>>();
    let n_deny = applicable_server.iter().filter(|g| g.effect == Effect::Deny).count();
    let n_glob = applicable_server
        .iter()
        .filter(|g| g.resource.contains(['*', '?']))
        .count();
    let n_tool = applicable_server.iter().filter(|g| g.tool.is_some()).count();

    // (b) server_allowed over all servers; (c) tool_allowed over servers × tools.
    let mut t_server = Vec::with_capacity(runs);
    let mut t_tool = Vec::with_capacity(runs);
    let (mut servers_ok, mut tools_ok) = (0, 0);
    for _ in 0..runs {
        let t = Instant::now();
        let mut ok = 0usize;
        for s in &slugs {
            ok += black_box(access.server_allowed(black_box(s))) as usize;
        }
        t_server.push(t.elapsed());
        servers_ok = ok;
        let t = Instant::now();
        let mut ok = 0usize;
        for s in &slugs {
            for tool in TOOLS {
                ok += black_box(access.tool_allowed(black_box(s), black_box(tool))) as usize;
            }
        }
        t_tool.push(t.elapsed());
        tools_ok = ok;
    }

    let (m_new, m_new_pre, m_server, m_tool) = (
        median(t_new.clone()),
        median(t_new_pre.clone()),
        median(t_server.clone()),
        median(t_tool.clone()),
    );
    let min = |v: &[Duration]| *v.iter().min().unwrap();
    let max = |v: &[Duration]| *v.iter().max().unwrap();
    let n_tools = n_servers * TOOLS.len();

    println!("== authorization decisions (native, release profile; examples/authz_bench.rs) ==\n");
    println!(
        "grants: {n_grants} over {n_servers} servers srv-0000..srv-{:04} ({} tools each); subjects over {ORGS} orgs, {} workspaces,",
        n_servers - 1,
        TOOLS.len(),
        ORGS * WORKSPACES_PER_ORG,
    );
    println!(
        "        {} teams, {USERS} users, {AGENTS} agents; {} denies, {} globbed resources, {} tool-level, {} virtual-server grants.",
        ORGS * WORKSPACES_PER_ORG * TEAMS_PER_WORKSPACE,
        grants.iter().filter(|g| g.effect == Effect::Deny).count(),
        grants.iter().filter(|g| g.resource.contains(['*', '?'])).count(),
        grants.iter().filter(|g| g.tool.is_some()).count(),
        grants.iter().filter(|g| g.resource_kind == ResourceKind::Virtual).count(),
    );
    println!(
        "caller: user usr_0000 in org_0 / ws_0_0 / teams team_0_0_0, team_0_0_1 — {applicable} grants apply ({:.1}%):",
        100.0 * applicable as f64 / n_grants as f64
    );
    println!(
        "        {} on servers ({n_deny} denies, {n_glob} globbed resources, {n_tool} tool-level), {} on virtual servers.",
        applicable_server.len(),
        applicable - applicable_server.len()
    );
    println!(
        "outcome: {servers_ok}/{n_servers} servers allowed, {tools_ok}/{n_tools} tools allowed. Median of {runs} runs (min..max in brackets).\n"
    );
    // ns per call: (a) one call per run; (b)/(c) one sweep of `count` decisions per run.
    let row = |what: &str, count: usize, v: &[Duration], m: Duration| {
        format!(
            "{what:<58}  {count:>9}  {:>12.0}  {:>16}  {:>10.3}",
            ns(m, count),
            format!("[{:.0}..{:.0}]", ns(min(v), count), ns(max(v), count)),
            m.as_secs_f64() * 1e3,
        )
    };
    println!(
        "{:<58}  {:>9}  {:>12}  {:>16}  {:>10}",
        "measurement", "calls/run", "ns per call", "[min..max] ns", "run ms"
    );
    println!(
        "{}  {}  {}  {}  {}",
        "-".repeat(58),
        "-".repeat(9),
        "-".repeat(12),
        "-".repeat(16),
        "-".repeat(10)
    );
    println!(
        "{}",
        row(
            &format!("(a)  Access::new, filter all {n_grants} grants -> {applicable}"),
            1,
            &t_new,
            m_new
        )
    );
    println!(
        "{}",
        row(
            &format!(
                "(a') Access::new on the {} preselected (as after D1)",
                preselected.len()
            ),
            1,
            &t_new_pre,
            m_new_pre
        )
    );
    println!(
        "{}",
        row(
            "(b)  server_allowed(slug), each of the servers",
            n_servers,
            &t_server,
            m_server
        )
    );
    println!(
        "{}",
        row(
            "(c)  tool_allowed(slug, tool), servers x 5 tools",
            n_tools,
            &t_tool,
            m_tool
        )
    );
    println!(
        "\n(a) is one whole call; (b) and (c) are per decision = one sweep / decisions in it. Every decision scans the \n\
         caller's {} server grants and matches each resource (and tool) pattern with wildmatch, compiling it per check.",
        applicable_server.len()
    );
    println!("authz_bench: done in {:.2} s", started.elapsed().as_secs_f64());
}
