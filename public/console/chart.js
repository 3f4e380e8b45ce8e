// A small SVG line chart (no library): one line per series over a few labelled points, with a
// legend, described for screen readers by its label (the same figures are in a table beside it).
import { h } from "./dom.js";

const NS = "http://www.w3.org/2000/svg";
// Distinguishable colours with enough contrast on white.
const COLOURS = ["#1f5fbf", "#b3261e", "#1b7a3d", "#8a4f00", "#6a3fa0", "#00677a"];
const W = 520;
const H = 200;
const PAD = { l: 44, r: 10, t: 10, b: 28 };

function s(tag, attrs, ...children) {
  const el = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  for (const c of children) el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return el;
}

/** labels: x labels; series: [{name, values}] (numbers, same length as labels). */
export function lineChart(title, labels, series, unit = "") {
  const max = Math.max(1, ...series.flatMap((x) => x.values));
  const x = (i) => PAD.l + (labels.length < 2 ? 0 : (i * (W - PAD.l - PAD.r)) / (labels.length - 1));
  const y = (v) => H - PAD.b - (v / max) * (H - PAD.t - PAD.b);
  const svg = s("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": `${title}: chart; the table below has the figures`, class: "chart" });
  for (const f of [0, 0.5, 1]) {
    const v = max * f;
    svg.append(s("line", { x1: PAD.l, x2: W - PAD.r, y1: y(v), y2: y(v), class: "grid" }));
    svg.append(s("text", { x: PAD.l - 6, y: y(v) + 4, "text-anchor": "end", class: "axis" }, `${Math.round(v)}${unit}`));
  }
  labels.forEach((l, i) => svg.append(s("text", { x: x(i), y: H - 8, "text-anchor": "middle", class: "axis" }, l)));
  series.forEach((ser, k) => {
    const c = COLOURS[k % COLOURS.length];
    const pts = ser.values.map((v, i) => `${x(i)},${y(v)}`).join(" ");
    svg.append(s("polyline", { points: pts, fill: "none", stroke: c, "stroke-width": 2 }));
    ser.values.forEach((v, i) => svg.append(s("circle", { cx: x(i), cy: y(v), r: 3, fill: c })));
  });
  const legend = h(
    "ul",
    { class: "legend" },
    series.map((ser, k) => h("li", {}, h("span", { class: "swatch", dataset: { c: String(k % COLOURS.length) } }), ser.name)),
  );
  return h("figure", { class: "chart-box" }, h("figcaption", {}, title), svg, legend);
}
