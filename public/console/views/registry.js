// Registry: every server the admin sees, with its owner, era, status, tool count, use figures, an
// idle badge and sync errors in plain words; writers may sync a server.
import { h, replace, announce, table, badge, ago, notice } from "../dom.js";
import { api } from "../api.js";

/** Sync errors as a person reads them. */
export function plainError(err) {
  if (!err) return "";
  const e = String(err);
  if (/timed? ?out|deadline/i.test(e)) return `The server did not answer in time (${e}).`;
  if (/connect|refused|unreachable|dns/i.test(e)) return `The gateway could not reach the server (${e}).`;
  if (/401|403|unauthori[sz]ed|forbidden/i.test(e)) return `The server refused the gateway's credentials (${e}).`;
  if (/waiting for a user/i.test(e)) return "Waiting for a user to connect an account before the catalog can be read.";
  return `The last sync failed: ${e}`;
}

export default async function registry(main, ctx) {
  const { servers } = await api("GET", "/servers");
  const msg = h("div", { "aria-live": "polite" });
  const rows = servers.map((s) => {
    const idle = !s.calls_7d;
    const status = [badge(s.status, s.status === "active" ? "ok" : "warn")];
    if (s.quarantined_count) status.push(" ", badge(`${s.quarantined_count} quarantined`, "warn"));
    const sync = ctx.canWrite
      ? h(
          "button",
          {
            type: "button",
            class: "small",
            "aria-label": `Sync ${s.slug}`,
            onclick: async (e) => {
              e.target.disabled = true;
              try {
                await api("POST", `/servers/${encodeURIComponent(s.slug)}/sync`);
                await registry(main, ctx);
                announce(main, `${s.slug} synced.`);
              } catch (err) {
                replace(msg, notice(`${s.slug}: ${plainError(err.message)}`, "error"));
                e.target.disabled = false;
              }
            },
          },
          "Sync",
        )
      : null;
    return [
      h("a", { href: `#/servers/${encodeURIComponent(s.slug)}` }, s.name || s.slug, h("span", { class: "muted" }, ` ${s.slug}`)),
      s.org_id || "platform",
      [s.era || "—", s.legacy_version ? ` + ${s.legacy_version}` : ""],
      status,
      String(s.tool_count ?? "—"),
      ago(s.last_used_at),
      [String(s.calls_7d ?? 0), idle ? [" ", badge("idle", "idle")] : ""],
      s.last_sync_error ? h("span", { class: "error-text" }, plainError(s.last_sync_error)) : "OK",
      sync,
    ];
  });
  replace(
    main,
    h("h1", {}, "Registry"),
    h("p", { class: "muted" }, "Servers you can see. A server with no calls in 7 days is marked idle."),
    msg,
    table(
      "Registered servers",
      ["Server", "Owner", "Era", "Status", "Tools", "Last used", "Calls (7 d)", "Sync and health", ctx.canWrite ? "Actions" : ""],
      rows,
      "No servers are registered yet.",
    ),
  );
}
