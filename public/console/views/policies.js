// Policies: the organization's policies with their mode (writers switch monitor / enforce), and
// the dry-run form that evaluates a call without making it.
import { h, replace, announce, table, badge, notice, json } from "../dom.js";
import { api, qs } from "../api.js";

export default async function policies(main, ctx) {
  const { policies: list } = await api("GET", `/policies${qs({ org: ctx.org })}`);
  const msg = h("div", { "aria-live": "polite" });
  const toggle = (p) => {
    const next = p.mode === "enforce" ? "monitor" : "enforce";
    return h(
      "button",
      {
        type: "button",
        class: "small",
        "aria-label": `Switch to ${next}: ${p.name}`,
        onclick: async (e) => {
          e.target.disabled = true;
          try {
            await api("PATCH", `/policies/${encodeURIComponent(p.id)}`, { mode: next });
            await policies(main, ctx);
            announce(main, `${p.name} now in ${next} mode.`);
          } catch (err) {
            replace(msg, notice(err.message, "error"));
            e.target.disabled = false;
          }
        },
      },
      `Switch to ${next}`,
    );
  };
  const result = h("div", { "aria-live": "polite" });
  const dryRun = async (e) => {
    e.preventDefault();
    const f = e.target.elements;
    try {
      const body = { principal: f.principal.value, server: f.server.value, tool: f.tool.value };
      if (f.arguments.value.trim()) body.arguments = JSON.parse(f.arguments.value);
      const r = await api("POST", "/policies/test", body);
      const o = r.call.outcome;
      const word = typeof o === "string" ? o : o.outcome;
      const why = o && o.policy_id ? ` (${o.policy_id} ${o.rule})` : "";
      replace(result, h("h3", {}, `Outcome: ${String(word).replace(/_/g, " ")}${why}`), json(r));
    } catch (err) {
      replace(result, notice(err.message, "error"));
    }
  };
  const field = (id, label, el) => [h("label", { for: id }, label), el];
  replace(
    main,
    h("h1", {}, "Policies"),
    msg,
    table(
      "Policies",
      ["Name", "Organization", "Mode", "Scope", "Rules", ctx.canWrite ? "Actions" : ""],
      list.map((p) => [
        p.name,
        p.org,
        badge(p.mode, p.mode === "enforce" ? "ok" : "info"),
        h("code", {}, JSON.stringify(p.scope)),
        (p.rules || []).map((r) => r.type || r.kind || Object.keys(r)[0]).join(", "),
        ctx.canWrite ? toggle(p) : null,
      ]),
      "No policies.",
    ),
    ctx.canWrite
      ? h(
          "form",
          { class: "card", onsubmit: dryRun },
          h("h2", {}, "Dry run"),
          h("p", { class: "muted" }, "Evaluates a call against the policies: nothing is called, counted or held."),
          field("dr-principal", "Principal id", h("input", { id: "dr-principal", name: "principal", required: true })),
          field("dr-server", "Server", h("input", { id: "dr-server", name: "server", required: true })),
          field("dr-tool", "Tool", h("input", { id: "dr-tool", name: "tool", required: true })),
          field("dr-arguments", "Arguments (JSON)", h("textarea", { id: "dr-arguments", name: "arguments", rows: 3 })),
          h("button", { type: "submit" }, "Evaluate"),
          result,
        )
      : null,
  );
}
