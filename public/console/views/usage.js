// Usage: calls, errors and p95 latency per day over the last 7 days, by server, tool, agent or
// team — charts of the busiest, and the week's figures in a table.
import { h, replace, table } from "../dom.js";
import { api, qs } from "../api.js";
import { lineChart } from "../chart.js";

const DAY = 86400000;
const DAYS = 7;
const GROUPS = ["server", "tool", "agent", "team"];
const TOP = 5;

function key(g, by) {
  return by === "tool" ? `${g.server}/${g.tool}` : String(g[by]);
}

export default async function usage(main, ctx, [by = "server"]) {
  if (!GROUPS.includes(by)) by = "server";
  const end = Math.ceil(Date.now() / DAY) * DAY;
  const days = Array.from({ length: DAYS }, (_, i) => end - (DAYS - i) * DAY);
  const q = (from, to) => api("GET", `/usage${qs({ from, to, group_by: by, org: ctx.org })}`);
  const [week, ...perDay] = await Promise.all([q(days[0], end), ...days.map((d) => q(d, d + DAY))]);
  const keys = week.groups
    .slice()
    .sort((a, b) => b.calls - a.calls)
    .slice(0, TOP)
    .map((g) => key(g, by));
  const labels = days.map((d) => new Date(d).toISOString().slice(5, 10));
  const series = (field) =>
    keys.map((k) => ({
      name: k,
      values: perDay.map((day) => {
        const g = day.groups.find((x) => key(x, by) === k);
        return g ? Number(g[field]) || 0 : 0;
      }),
    }));
  const form = h(
    "form",
    { class: "filters", onsubmit: (e) => (e.preventDefault(), ctx.go(`#/usage/${e.target.by.value}`)) },
    h("label", { for: "by" }, "Group by"),
    h("select", { id: "by", name: "by" }, GROUPS.map((g) => h("option", { value: g, selected: g === by }, g))),
    h("button", { type: "submit" }, "Show"),
  );
  replace(
    main,
    h("h1", {}, "Usage"),
    h("p", { class: "muted" }, `The last ${DAYS} days, by ${by}${ctx.org ? `, organization ${ctx.org}` : ""}.`),
    form,
    keys.length
      ? h(
          "div",
          { class: "charts" },
          lineChart("Calls per day", labels, series("calls")),
          lineChart("Errors per day", labels, series("errors")),
          lineChart("p95 latency per day (ms)", labels, series("p95_ms")),
        )
      : null,
    table(
      `Usage by ${by}, last ${DAYS} days`,
      [by, "Calls", "Errors", "Denied", "p50 (ms)", "p95 (ms)", "Last call"],
      week.groups.map((g) => [h("code", {}, key(g, by)), g.calls, g.errors, g.denied, Math.round(g.p50_ms), Math.round(g.p95_ms), g.last_call_at]),
      "No calls in this window.",
    ),
  );
}
