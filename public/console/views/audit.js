// Audit: the organization's trail, filterable, each row linked to its trace id, and whether the
// hash chain verifies.
import { h, replace, table, badge, when, notice } from "../dom.js";
import { api, qs } from "../api.js";

const FILTERS = [
  ["server", "Server"],
  ["tool", "Tool"],
  ["principal", "Principal"],
  ["outcome", "Outcome"],
  ["kind", "Kind"],
  ["trace_id", "Trace id"],
];

function traceOf(e) {
  return e.trace_id || (e.trace && e.trace.trace_id) || "";
}

export default async function audit(main, ctx, [query = ""]) {
  const params = Object.fromEntries(new URLSearchParams(query));
  const [list, verify] = await Promise.all([
    api("GET", `/audit${qs({ ...params, org: ctx.org, limit: 100 })}`),
    api("GET", `/audit/verify${qs({ org: ctx.org })}`),
  ]);
  const chain = verify.ok
    ? notice(`Chain verified: ${verify.checked} records, none altered.`, "ok")
    : notice(`Chain broken at record ${verify.first_broken?.seq}: ${verify.first_broken?.reason}`, "error");
  const link = (t) => (t ? h("a", { href: `#/audit/${encodeURIComponent(`trace_id=${t}`)}`, title: "All records of this trace" }, h("code", {}, t.slice(0, 8)), "…") : "—");
  const form = h(
    "form",
    {
      class: "filters",
      onsubmit: (e) => {
        e.preventDefault();
        const p = new URLSearchParams();
        for (const [n] of FILTERS) if (e.target.elements[n].value) p.set(n, e.target.elements[n].value);
        ctx.go(`#/audit/${encodeURIComponent(p.toString())}`);
      },
    },
    FILTERS.map(([n, label]) => [h("label", { for: `f-${n}` }, label), h("input", { id: `f-${n}`, name: n, value: params[n] || "" })]),
    h("button", { type: "submit" }, "Filter"),
  );
  replace(
    main,
    h("h1", {}, "Audit trail"),
    chain,
    form,
    table(
      "Audit records, newest first",
      ["Time", "Kind", "Principal", "Server / tool", "Outcome", "Latency", "Trace"],
      list.events.map((e) => [
        when(e.time_ms),
        e.kind,
        h("code", {}, e.principal_id || "—"),
        h("span", { class: "wrap" }, e.server || "", e.tool ? ` / ${e.tool}` : e.admin ? `${e.admin.method || ""} ${e.admin.path || ""}` : ""),
        badge(e.outcome, e.outcome === "ok" ? "ok" : e.outcome === "denied" ? "warn" : e.outcome === "error" ? "bad" : ""),
        e.latency_ms !== undefined ? `${Math.round(e.latency_ms)} ms` : "—",
        link(traceOf(e)),
      ]),
      "No records match.",
    ),
  );
}
