// The memory of a process as Linux reports it, for whoever measures it: the benchmark's memory sampler
// (its own RSS during a cold start), a function instance (`GET /v2/cicada/instance`) and the platform's
// pool (the PSS of every instance process). RSS, RssAnon and RssFile come from /proc/<pid>/status; PSS
// from /proc/<pid>/smaps_rollup. PSS divides every shared page among the processes that map it, so the PSS
// of instances sharing weight files (onnxruntime maps them) adds up to the host's real use, where their
// RSS would count the shared pages once per instance. RssFile matters too: onnxruntime maps external
// weights, so they show up as shared page-cache pages, while RssAnon is the private memory that limits how
// many instances fit on a machine.
import { readFileSync } from "node:fs";

/** The fields of /proc/<pid>/status the project reports, in bytes. */
export interface ProcStatus {
  rssBytes: number;
  rssAnonBytes: number;
  rssFileBytes: number;
}

/** Proportional set sizes of a process, in bytes. */
export interface ProcPss {
  pssBytes: number;
  /** Private and shared anonymous memory (heap, onnxruntime's own copies), proportionally. */
  pssAnonBytes: number;
  /** File-backed pages (mapped weights, code), proportionally. */
  pssFileBytes: number;
  pssShmemBytes: number;
}

/**
 * One reading of a process's memory: what `GET /v2/cicada/instance` reports of its own process and what
 * the platform's pool samples of each instance process.
 */
export interface ProcessMemory extends ProcPss {
  pid: number;
  rssBytes: number;
  rssAnonBytes: number;
}

const STATUS_FIELDS: Record<keyof ProcStatus, string> = {
  rssBytes: "VmRSS:",
  rssAnonBytes: "RssAnon:",
  rssFileBytes: "RssFile:",
};

const PSS_FIELDS: Record<keyof ProcPss, string> = {
  pssBytes: "Pss:",
  pssAnonBytes: "Pss_Anon:",
  pssFileBytes: "Pss_File:",
  pssShmemBytes: "Pss_Shmem:",
};

/** Parses the VmRSS, RssAnon and RssFile lines ("VmRSS:\t  123 kB") of a /proc/<pid>/status text. */
export function parseProcStatus(text: string): ProcStatus {
  const out = { rssBytes: 0, rssAnonBytes: 0, rssFileBytes: 0 };
  for (const [key, label] of Object.entries(STATUS_FIELDS) as [keyof ProcStatus, string][]) {
    const m = new RegExp(`^${label}\\s+(\\d+)\\s+kB$`, "m").exec(text);
    if (!m) throw new Error(`/proc status text has no '${label} <n> kB' line`);
    out[key] = Number(m[1]) * 1024;
  }
  return out;
}

/** Reads the memory fields of process `pid` (default: this process). */
export function readProcStatus(pid: number | "self" = "self"): ProcStatus {
  return parseProcStatus(readFileSync(`/proc/${pid}/status`, "latin1"));
}

/**
 * Parses the text of /proc/<pid>/smaps_rollup ("Pss:   605 kB" lines). NOTE: Pss_Anon, Pss_File and
 * Pss_Shmem exist since Linux 5.9; on older kernels they read 0, Pss is always there.
 */
export function parseSmapsRollup(text: string): ProcPss {
  const out: ProcPss = { pssBytes: 0, pssAnonBytes: 0, pssFileBytes: 0, pssShmemBytes: 0 };
  for (const [key, label] of Object.entries(PSS_FIELDS) as [keyof ProcPss, string][]) {
    const m = new RegExp(`^${label}\\s+(\\d+)\\s+kB$`, "m").exec(text);
    if (!m && key === "pssBytes") throw new Error(`smaps_rollup text has no '${label} <n> kB' line`);
    out[key] = m ? Number(m[1]) * 1024 : 0;
  }
  return out;
}

/** A process's memory from the texts of its /proc status and smaps_rollup. */
export function processMemoryOf(pid: number, statusText: string, rollupText: string): ProcessMemory {
  const { rssBytes, rssAnonBytes } = parseProcStatus(statusText);
  return { pid, rssBytes, rssAnonBytes, ...parseSmapsRollup(rollupText) };
}

/** The memory of process `pid` (default: this one). Throws if the process does not exist. */
export function readProcessMemory(pid: number = process.pid): ProcessMemory {
  return processMemoryOf(
    pid,
    readFileSync(`/proc/${pid}/status`, "latin1"),
    readFileSync(`/proc/${pid}/smaps_rollup`, "latin1"),
  );
}
