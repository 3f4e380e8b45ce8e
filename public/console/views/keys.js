// Keys: the organization's API keys; writers issue one (shown once) and revoke them.
import { h, replace, announce, table, badge, when, ago, notice } from "../dom.js";
import { api } from "../api.js";

export default async function keys(main, ctx) {
  const { api_keys } = await api("GET", "/api-keys");
  const msg = h("div", { "aria-live": "polite" });
  const revoke = (k) =>
    h(
      "button",
      {
        type: "button",
        class: "small danger",
        "aria-label": `Revoke key ${k.name}`,
        onclick: async (e) => {
          e.target.disabled = true;
          try {
            await api("DELETE", `/api-keys/${encodeURIComponent(k.id)}`);
            await keys(main, ctx);
            announce(main, `Key ${k.name} revoked: it fails from the next request on.`);
          } catch (err) {
            replace(msg, notice(err.message, "error"));
            e.target.disabled = false;
          }
        },
      },
      "Revoke",
    );
  const issue = async (e) => {
    e.preventDefault();
    const name = e.target.elements.name.value.trim();
    try {
      const k = await api("POST", "/api-keys", { name });
      await keys(main, ctx);
      main.querySelector("h1").after(
        h(
          "section",
          { class: "card secret", role: "status", "aria-label": "New key" },
          h("h2", {}, `Key ${k.name} issued`),
          h("p", {}, "Copy it now: it is shown only this once."),
          h("pre", { id: "new-key", class: "key" }, k.key),
        ),
      );
    } catch (err) {
      replace(msg, notice(err.message, "error"));
    }
  };
  replace(
    main,
    h("h1", {}, "API keys"),
    ctx.canWrite
      ? h(
          "form",
          { class: "filters", onsubmit: issue },
          h("label", { for: "key-name" }, "New key name"),
          h("input", { id: "key-name", name: "name", required: true, maxlength: 100 }),
          h("button", { type: "submit" }, "Issue key"),
        )
      : null,
    msg,
    table(
      "API keys",
      ["Name", "Prefix", "Created", "Last used", "State", ctx.canWrite ? "Actions" : ""],
      api_keys.map((k) => [
        k.name,
        h("code", {}, `${k.prefix}…`),
        when(k.created_at),
        ago(k.last_used_at),
        k.revoked_at ? badge("revoked", "") : badge("active", "ok"),
        ctx.canWrite && !k.revoked_at ? revoke(k) : null,
      ]),
      "No keys yet.",
    ),
  );
}
