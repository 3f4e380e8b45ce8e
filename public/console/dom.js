// DOM helpers of the console: elements are built with text nodes only (never innerHTML), so
// nothing an upstream or a user wrote can become markup.

/** h("a", {href: "#/x", class: "c"}, "text", child…): an element with attributes and children. */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on") && typeof v === "function") el.addEventListener(k.slice(2), v);
    else if (k === "dataset") Object.assign(el.dataset, v);
    else el.setAttribute(k, v === true ? "" : String(v));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

/** Replaces an element's children. */
export function replace(el, ...children) {
  el.replaceChildren();
  append(el, children);
}

/** A table with a caption, column headers and rows (arrays of cells); an empty note without rows. */
export function table(caption, headers, rows, empty = "Nothing here yet.") {
  if (!rows.length) return h("p", { class: "muted" }, empty);
  return h(
    "div",
    // Focusable and named: a table wider than the screen scrolls, and keyboards must reach it.
    { class: "table-wrap", tabindex: "0", role: "region", "aria-label": caption },
    h(
      "table",
      {},
      h("caption", {}, caption),
      h("thead", {}, h("tr", {}, headers.map((c) => h("th", { scope: "col" }, c)))),
      h("tbody", {}, rows.map((r) => h("tr", {}, r.map((c) => h("td", {}, c))))),
    ),
  );
}

/** A coloured label (status, idle, mode). */
export function badge(text, kind = "") {
  return h("span", { class: `badge ${kind}` }, text);
}

/** "3 h ago" for an RFC 3339 time or milliseconds; "never" for none. */
export function ago(t) {
  if (t === null || t === undefined || t === "") return "never";
  const ms = typeof t === "number" ? t : Date.parse(t);
  if (Number.isNaN(ms)) return String(t);
  const s = Math.round((Date.now() - ms) / 1000);
  const abs = Math.abs(s);
  const [n, unit] =
    abs < 60 ? [abs, "s"] : abs < 3600 ? [Math.round(abs / 60), "min"] : abs < 86400 ? [Math.round(abs / 3600), "h"] : [Math.round(abs / 86400), "d"];
  return s >= 0 ? `${n} ${unit} ago` : `in ${n} ${unit}`;
}

/** A time as the browser shows it, with the exact value in a <time> element. */
export function when(t) {
  if (t === null || t === undefined) return "—";
  const d = new Date(typeof t === "number" ? t : Date.parse(t));
  if (Number.isNaN(d.getTime())) return String(t);
  return h("time", { datetime: d.toISOString(), title: d.toISOString() }, d.toLocaleString());
}

/** A status line for the outcome of an action (announced to screen readers). */
export function notice(text, kind = "ok") {
  return h("p", { class: `notice ${kind}`, role: kind === "error" ? "alert" : "status" }, text);
}

/** Shows the outcome of an action under the view's heading. */
export function announce(main, text, kind = "ok") {
  const n = notice(text, kind);
  const h1 = main.querySelector("h1");
  if (h1) h1.after(n);
  else main.prepend(n);
}

/** Pretty JSON in a <pre>. */
export function json(v) {
  return h("pre", { class: "json", tabindex: "0" }, JSON.stringify(v, null, 2));
}
