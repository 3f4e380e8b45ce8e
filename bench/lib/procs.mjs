// procs.mjs — what the bench reads about processes from Linux /proc: CPU time (user + system,
// all threads, including threads that already ended), resident memory, the workerd processes
// this Node process started (Miniflare spawns one per gateway), and the load average.

import { execFileSync } from "node:child_process";
import { readFileSync, readdirSync } from "node:fs";

/** Clock ticks per second of /proc/<pid>/stat's utime and stime (usually 100: 10 ms steps). */
export const CLK_TCK = (() => {
  try {
    return Number(execFileSync("getconf", ["CLK_TCK"]).toString().trim()) || 100;
  } catch {
    return 100;
  }
})();

/** Fields of /proc/<pid>/stat that the bench uses, or null if the process is gone. */
function stat(pid) {
  let s;
  try {
    s = readFileSync(`/proc/${pid}/stat`, "utf8");
  } catch {
    return null;
  }
  // comm is in parentheses and may hold spaces: split after the last ")".
  const close = s.lastIndexOf(")");
  const comm = s.slice(s.indexOf("(") + 1, close);
  const f = s.slice(close + 2).split(" "); // f[0] is field 3 (state)
  return { comm, ppid: Number(f[1]), utime: Number(f[11]), stime: Number(f[12]) };
}

/** CPU time (user + system) a process has used so far, in ms; NaN if it is gone. */
export function cpuMs(pid) {
  const st = stat(pid);
  return st ? ((st.utime + st.stime) * 1000) / CLK_TCK : Number.NaN;
}

/** Resident set size in bytes (VmRSS); NaN if the process is gone. */
export function rssBytes(pid) {
  try {
    const m = readFileSync(`/proc/${pid}/status`, "utf8").match(/^VmRSS:\s+(\d+)\s+kB/m);
    return m ? Number(m[1]) * 1024 : Number.NaN;
  } catch {
    return Number.NaN;
  }
}

/** Every live descendant of `root` (default: this process) with its command name. */
export function descendants(root = process.pid) {
  const children = new Map();
  const comm = new Map();
  for (const d of readdirSync("/proc")) {
    if (!/^\d+$/.test(d)) continue;
    const st = stat(d);
    if (!st) continue;
    comm.set(Number(d), st.comm);
    if (!children.has(st.ppid)) children.set(st.ppid, []);
    children.get(st.ppid).push(Number(d));
  }
  const out = [];
  const todo = [...(children.get(root) ?? [])];
  while (todo.length) {
    const pid = todo.pop();
    out.push({ pid, comm: comm.get(pid) });
    todo.push(...(children.get(pid) ?? []));
  }
  return out;
}

/** The workerd processes below this one. */
export const workerdPids = () => new Set(descendants().filter((p) => p.comm === "workerd").map((p) => p.pid));

/**
 * Runs `start()` (which starts one Miniflare) and returns [its result, the pid of the one
 * workerd process that appeared meanwhile]. Start gateways one at a time for this to hold.
 */
export async function withNewWorkerd(start) {
  const before = workerdPids();
  const result = await start();
  const fresh = [...workerdPids()].filter((p) => !before.has(p));
  if (fresh.length !== 1) throw new Error(`expected one new workerd process, found ${fresh.length}`);
  return [result, fresh[0]];
}

/** "1.23 0.98 0.80" — the 1, 5 and 15 minute load averages. */
export const loadavg = () => readFileSync("/proc/loadavg", "utf8").split(" ").slice(0, 3).join(" ");
