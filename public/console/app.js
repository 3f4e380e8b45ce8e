// The console's shell: who is signed in, the sign-in forms, the navigation and the router that
// shows one view at a time (#/registry, #/servers/{slug}, …).
import { h, replace, notice } from "./dom.js";
import { api, session, setCsrf } from "./api.js";
import registry from "./views/registry.js";
import server from "./views/server.js";
import usage from "./views/usage.js";
import audit from "./views/audit.js";
import approvals from "./views/approvals.js";
import access from "./views/access.js";
import policies from "./views/policies.js";
import keys from "./views/keys.js";

const VIEWS = [
  ["registry", "Registry", registry],
  ["usage", "Usage", usage],
  ["audit", "Audit", audit],
  ["approvals", "Approvals", approvals],
  ["access", "Access", access],
  ["policies", "Policies", policies],
  ["keys", "Keys", keys],
];

const main = document.getElementById("main");
const nav = document.getElementById("nav");
const who = document.getElementById("who");

/** What every view is given: the signed-in admin and the organization in view. */
const ctx = { me: null, org: "", orgs: [], go: (hash) => (location.hash = hash) };

async function start() {
  let me;
  try {
    me = await session("GET");
  } catch (e) {
    return signIn(e.data || {}, e.status === 403 ? e.message : "");
  }
  ctx.me = me;
  setCsrf(me.csrf_token);
  ctx.canWrite = !!me.may_write;
  ctx.canDecide = me.super_admin || (me.deciding_orgs || []).length > 0;
  ctx.orgs = me.orgs || [];
  if (me.super_admin) {
    try {
      ctx.orgs = (await api("GET", "/orgs")).orgs.map((o) => o.id);
    } catch {
      ctx.orgs = [];
    }
  }
  ctx.org = ctx.orgs[0] || "";
  header();
  window.addEventListener("hashchange", route);
  route();
}

function header() {
  const me = ctx.me;
  const roles = me.super_admin ? "bootstrap admin" : me.roles.map((r) => `${r.role.replace("_", " ")} of ${r.org_id}`).join(", ");
  const orgSelect =
    ctx.orgs.length > 1
      ? h(
          "label",
          { class: "org" },
          "Organization ",
          h(
            "select",
            {
              id: "org",
              onchange: (e) => {
                ctx.org = e.target.value;
                route();
              },
            },
            ctx.orgs.map((o) => h("option", { value: o }, o)),
          ),
        )
      : null;
  replace(
    who,
    orgSelect,
    h("span", { class: "me" }, me.name || me.principal_id, me.super_admin ? null : h("span", { class: "muted" }, ` (${roles})`)),
    h("button", { type: "button", class: "link", onclick: signOut }, "Sign out"),
  );
  nav.hidden = false;
}

async function signOut() {
  try {
    await session("DELETE");
  } finally {
    location.hash = "";
    location.reload();
  }
}

function route() {
  const [name, ...rest] = location.hash.replace(/^#\/?/, "").split("/");
  const found = VIEWS.find(([n]) => n === name);
  const view = name === "servers" && rest[0] ? server : found ? found[2] : registry;
  const current = name === "servers" ? "registry" : found ? name : "registry";
  replace(
    nav,
    h(
      "ul",
      {},
      VIEWS.map(([n, label]) =>
        h("li", {}, h("a", { href: `#/${n}`, "aria-current": n === current ? "page" : false }, label)),
      ),
    ),
  );
  replace(main, h("p", { class: "muted" }, "Loading…"));
  Promise.resolve(view(main, ctx, rest.map(decodeURIComponent))).catch((e) => {
    replace(main, h("h1", {}, "Something went wrong"), notice(e.message, "error"));
  });
}

/** The sign-in page: the organization's identity provider, and in local development a key. */
function signIn(info, refused) {
  nav.hidden = true;
  replace(who);
  const keyForm = info.key_paste
    ? h(
        "form",
        { id: "key-form", class: "card", onsubmit: keyLogin },
        h("h2", {}, "Sign in with an admin key"),
        h("p", { class: "muted" }, "Local development only: the bootstrap ADMIN_TOKEN, or the API key of a principal holding an admin role."),
        h("label", { for: "key" }, "Admin key"),
        h("input", { id: "key", name: "key", type: "password", autocomplete: "off", required: true }),
        h("button", { type: "submit" }, "Sign in"),
        h("div", { id: "key-result", "aria-live": "polite" }),
      )
    : null;
  replace(
    main,
    h("h1", {}, "Sign in to the console"),
    refused ? notice(refused, "error") : null,
    h(
      "div",
      { class: "cards" },
      h(
        "form",
        {
          class: "card",
          // A navigation, not a form submission: the CSP's form-action 'self' would also govern
          // the redirect on to the identity provider.
          onsubmit: (e) => {
            e.preventDefault();
            location.assign(`/console/login?org=${encodeURIComponent(e.target.elements.org.value.trim())}`);
          },
        },
        h("h2", {}, "Sign in with your organization"),
        h("p", { class: "muted" }, "Through your organization's identity provider (OpenID Connect)."),
        h("label", { for: "org-id" }, "Organization id"),
        h("input", { id: "org-id", name: "org", placeholder: "org_…", autocomplete: "organization" }),
        h("button", { type: "submit" }, "Continue"),
      ),
      keyForm,
    ),
  );
}

async function keyLogin(e) {
  e.preventDefault();
  const out = document.getElementById("key-result");
  try {
    await session("POST", { key: document.getElementById("key").value });
    location.reload();
  } catch (err) {
    replace(out, notice(err.message, "error"));
  }
}

start();
