// report.mjs — plain-text tables and number formats for the bench output.

export function table(header, rows, align = header.map((_, i) => (i === 0 ? "l" : "r"))) {
  const w = header.map((h, i) => Math.max(h.length, ...rows.map((r) => String(r[i]).length)));
  const fmt = (r) => r.map((c, i) => (align[i] === "l" ? String(c).padEnd(w[i]) : String(c).padStart(w[i]))).join("  ");
  return [fmt(header), w.map((n) => "-".repeat(n)).join("  "), ...rows.map(fmt)].join("\n");
}

const nan = (x) => x === undefined || x === null || Number.isNaN(x);
export const ms = (x, d = 2) => (nan(x) ? "n/a" : x.toFixed(d));
export const signedMs = (x) => (nan(x) ? "n/a" : `${x >= 0 ? "+" : "-"}${Math.abs(x).toFixed(2)}`);
export const ratio = (x) => (nan(x) ? "n/a" : `${x.toFixed(2)}`);
export const int = (x) => (nan(x) ? "n/a" : x.toFixed(0));
export const kib = (b) => (nan(b) ? "n/a" : `${(b / 1024).toFixed(1)} KiB`);
export const mib = (b) => (nan(b) ? "n/a" : `${(b / 1024 / 1024).toFixed(2)} MiB`);
