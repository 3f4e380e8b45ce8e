// Access: "what can this agent (or user) use?" and "who can use this tool?".
import { h, replace, table, notice } from "../dom.js";
import { api } from "../api.js";

async function principals() {
  const [agents, users] = await Promise.all([api("GET", "/agents"), api("GET", "/users")]);
  return [...(agents.agents || agents.entities || []), ...(users.users || users.entities || [])];
}

export default async function access(main, ctx, [mode, a, b]) {
  const [people, { servers }] = await Promise.all([principals(), api("GET", "/servers")]);
  const out = h("div", { "aria-live": "polite" });
  const what = h(
    "form",
    { class: "card", onsubmit: (e) => (e.preventDefault(), ctx.go(`#/access/principal/${encodeURIComponent(e.target.principal.value)}`)) },
    h("h2", {}, "What can this agent use?"),
    h("label", { for: "principal" }, "Agent or user"),
    h(
      "select",
      { id: "principal", name: "principal" },
      people.map((p) => h("option", { value: p.id, selected: mode === "principal" && p.id === a }, `${p.name} (${p.id})`)),
    ),
    h("button", { type: "submit" }, "Show access"),
  );
  const who = h(
    "form",
    {
      class: "card",
      onsubmit: (e) => {
        e.preventDefault();
        const [s, t] = e.target.tool.value.split("\u0000");
        ctx.go(`#/access/tool/${encodeURIComponent(s)}/${encodeURIComponent(t)}`);
      },
    },
    h("h2", {}, "Who can use this tool?"),
    h("label", { for: "tool" }, "Server and tool"),
    h("select", { id: "tool", name: "tool" }),
    h("button", { type: "submit" }, "Show who"),
  );
  replace(main, h("h1", {}, "Access"), h("div", { class: "cards" }, what, who), out);
  // The tool list is filled from each server's catalog.
  const select = who.querySelector("select");
  const catalogs = await Promise.all(
    servers.map((s) => api("GET", `/servers/${encodeURIComponent(s.slug)}/tools`).then((r) => [s.slug, r.tools]).catch(() => [s.slug, []])),
  );
  for (const [slug, tools] of catalogs)
    for (const t of tools)
      select.append(h("option", { value: `${slug}\u0000${t.name}`, selected: mode === "tool" && slug === a && t.name === b }, `${slug} / ${t.name}`));
  try {
    if (mode === "principal" && a) {
      const kind = a.startsWith("usr_") ? "users" : "agents";
      const r = await api("GET", `/${kind}/${encodeURIComponent(a)}/access`);
      replace(
        out,
        h("h2", {}, `What ${a} can use`),
        table(
          `Servers and tools ${a} can use`,
          ["Server", "Tools"],
          r.servers.map((s) => [h("a", { href: `#/servers/${encodeURIComponent(s.server)}` }, s.server), s.tools.length ? s.tools.join(", ") : "no tools"]),
          "Nothing: no grant reaches any server.",
        ),
        r.virtual_servers.length ? h("p", {}, `Virtual servers: ${r.virtual_servers.join(", ")}`) : null,
      );
    } else if (mode === "tool" && a && b) {
      const r = await api("GET", `/servers/${encodeURIComponent(a)}/tools/${encodeURIComponent(b)}/principals`);
      const list = r.principals || [];
      replace(
        out,
        h("h2", {}, `Who can use ${a} / ${b}`),
        table(
          `Principals who can use ${b}`,
          ["Principal", "Kind"],
          list.map((p) => [
            h("a", { href: `#/access/principal/${encodeURIComponent(p.id)}` }, h("code", {}, p.id)),
            p.kind || "—",
          ]),
          "Nobody: no grant reaches this tool.",
        ),
      );
    }
  } catch (e) {
    replace(out, notice(e.message, "error"));
  }
}
