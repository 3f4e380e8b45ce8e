// Approvals queue: tool calls held for a person's decision, with approve / deny for those who
// decide (org admins, approvers, the bootstrap admin).
import { h, replace, announce, table, badge, when, notice, json } from "../dom.js";
import { api, qs } from "../api.js";

const STATUSES = ["pending", "approved", "denied", "expired", "consumed"];

export default async function approvals(main, ctx, [status = "pending"]) {
  const list = await api("GET", `/approvals${qs({ status, org: ctx.org })}`);
  const msg = h("div", { "aria-live": "polite" });
  const decide = (a, verb) =>
    h(
      "button",
      {
        type: "button",
        class: verb === "deny" ? "small danger" : "small",
        "aria-label": `${verb === "approve" ? "Approve" : "Deny"} the call of ${a.tool} by ${a.principal_id}`,
        onclick: async (e) => {
          e.target.disabled = true;
          try {
            await api("POST", `/approvals/${encodeURIComponent(a.id)}/${verb}`);
            await approvals(main, ctx, [status]);
            announce(main, `Call of ${a.tool} ${verb === "approve" ? "approved: the agent's retry will go through" : "denied"}.`);
          } catch (err) {
            replace(msg, notice(err.message, "error"));
            e.target.disabled = false;
          }
        },
      },
      verb === "approve" ? "Approve" : "Deny",
    );
  const rows = list.approvals.map((a) => [
    when(a.created_at_ms),
    h("code", {}, a.principal_id),
    [h("code", {}, a.server), " / ", h("code", {}, a.tool)],
    a.arguments ? json(a.arguments) : h("span", { class: "muted" }, "not shown"),
    a.rule || a.policy_id || "—",
    badge(a.status, a.status === "pending" ? "warn" : a.status === "approved" ? "ok" : ""),
    a.status === "pending" ? when(a.expires_at_ms) : a.decided_by ? `by ${a.decided_by}` : "—",
    a.status === "pending" && ctx.canDecide ? [decide(a, "approve"), " ", decide(a, "deny")] : null,
  ]);
  replace(
    main,
    h("h1", {}, "Approvals"),
    h(
      "form",
      { class: "filters", onsubmit: (e) => (e.preventDefault(), ctx.go(`#/approvals/${e.target.status.value}`)) },
      h("label", { for: "status" }, "Status"),
      h("select", { id: "status", name: "status" }, STATUSES.map((s) => h("option", { value: s, selected: s === status }, s))),
      h("button", { type: "submit" }, "Show"),
    ),
    msg,
    table(
      `Approval requests (${status})`,
      ["Asked", "Caller", "Server / tool", "Arguments", "Rule", "Status", status === "pending" ? "Expires" : "Decided", ctx.canDecide ? "Decision" : ""],
      rows,
      `No ${status} approval requests.`,
    ),
  );
}
