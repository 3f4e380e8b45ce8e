// Server detail: the server's settings, its tools with their annotations, and each quarantined
// definition shown as a diff beside the approved one, with an approve button for writers.
import { h, replace, announce, table, badge, when, notice, json } from "../dom.js";
import { api } from "../api.js";
import { diffLines } from "./diff.js";
import { plainError } from "./registry.js";

/** A tool definition as stable JSON: keys sorted, empty fields left out. */
function stable(v) {
  if (Array.isArray(v)) return v.map(stable);
  if (v && typeof v === "object") {
    const out = {};
    for (const k of Object.keys(v).sort()) if (v[k] !== null && v[k] !== undefined) out[k] = stable(v[k]);
    return out;
  }
  return v;
}

/** A tool's current definition, shaped as MCP lists it (as the approved one is stored). */
function current(t) {
  return stable({
    name: t.name,
    title: t.title,
    description: t.description,
    inputSchema: t.input_schema,
    outputSchema: t.output_schema,
    annotations: t.annotations,
  });
}

function annotations(a) {
  if (!a || typeof a !== "object") return "—";
  const hints = Object.entries(a).filter(([k, v]) => k.endsWith("Hint") && v === true);
  const rest = Object.entries(a).filter(([k]) => !k.endsWith("Hint"));
  return [
    hints.map(([k]) => [badge(k.replace(/Hint$/, ""), "info"), " "]),
    rest.map(([k, v]) => h("span", { class: "muted" }, `${k}: ${JSON.stringify(v)} `)),
  ];
}

function diffView(t) {
  const before = t.approved_definition ? JSON.stringify(stable(t.approved_definition), null, 2) : "";
  const after = JSON.stringify(current(t), null, 2);
  const lines = diffLines(before, after);
  const side = (kinds, label) =>
    h(
      "figure",
      { class: "diff-side" },
      h("figcaption", {}, label),
      h(
        "pre",
        { class: "diff", tabindex: "0" },
        lines
          .filter((l) => kinds.includes(l.kind))
          .map((l) =>
            h("span", { class: `line ${l.kind}` }, l.kind === "del" ? "− " : l.kind === "add" ? "+ " : "  ", l.text, "\n"),
          ),
      ),
    );
  return h(
    "div",
    { class: "diff-pair" },
    t.approved_definition ? side(["same", "del"], "Approved definition") : h("p", { class: "muted diff-side" }, "Never approved: a new tool."),
    side(["same", "add"], "New definition (quarantined)"),
  );
}

export default async function server(main, ctx, [slug]) {
  const enc = encodeURIComponent(slug);
  const [s, { tools }] = await Promise.all([api("GET", `/servers/${enc}`), api("GET", `/servers/${enc}/tools`)]);
  const msg = h("div", { "aria-live": "polite" });
  const quarantined = tools.filter((t) => t.status !== "active");
  const approve = (t) =>
    h(
      "button",
      {
        type: "button",
        "aria-label": `Approve ${t.name}`,
        onclick: async (e) => {
          e.target.disabled = true;
          try {
            await api("POST", `/servers/${enc}/tools/${encodeURIComponent(t.name)}/approve`);
            await server(main, ctx, [slug]);
            announce(main, `${t.name} approved: it is served again.`);
          } catch (err) {
            replace(msg, notice(err.message, "error"));
            e.target.disabled = false;
          }
        },
      },
      "Approve",
    );
  replace(
    main,
    h("p", {}, h("a", { href: "#/registry" }, "← Registry")),
    h("h1", {}, s.name || s.slug),
    msg,
    h(
      "dl",
      { class: "facts" },
      [
        ["Slug", s.slug],
        ["URL", s.url],
        ["Owner", s.org_id || "platform"],
        ["Era", [s.era || "—", s.legacy_version ? ` (also ${s.legacy_version})` : ""]],
        ["Status", badge(s.status, s.status === "active" ? "ok" : "warn")],
        ["New tools", s.new_tool_policy === "quarantine" ? "held for approval" : "approved automatically"],
        ["Last synced", when(s.last_synced_at)],
        ["Sync", s.last_sync_error ? h("span", { class: "error-text" }, plainError(s.last_sync_error)) : "OK"],
      ].map(([k, v]) => [h("dt", {}, k), h("dd", {}, v)]),
    ),
    h("h2", {}, `Quarantined tools (${quarantined.length})`),
    quarantined.length
      ? quarantined.map((t) =>
          h(
            "section",
            { class: "card quarantine", "aria-label": `Quarantined tool ${t.name}` },
            h("h3", {}, t.name),
            h("p", {}, h("strong", {}, "Why it is held: "), t.quarantine_reason || "awaiting approval"),
            diffView(t),
            ctx.canWrite ? approve(t) : null,
          ),
        )
      : h("p", { class: "muted" }, "No tool is waiting for approval."),
    h("h2", {}, `Tools (${tools.length})`),
    table(
      `Tools of ${s.slug}`,
      ["Tool", "Description", "Annotations", "Status", "Who can use it"],
      tools.map((t) => [
        h("code", {}, t.name),
        t.title ? [h("strong", {}, t.title), " — ", t.description || ""] : t.description || "",
        annotations(t.annotations),
        badge(t.status, t.status === "active" ? "ok" : "warn"),
        h("a", { href: `#/access/tool/${enc}/${encodeURIComponent(t.name)}` }, "Who can use it"),
      ]),
      "The catalog is empty.",
    ),
    h("details", {}, h("summary", {}, "Server as the API returns it"), json(s)),
  );
}
