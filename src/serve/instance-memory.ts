// The memory of an instance process, as a host must account it: RSS and RssAnon from /proc/<pid>/status,
// and PSS from /proc/<pid>/smaps_rollup. PSS divides every shared page among the processes that map it,
// so the PSS of instances sharing weight files (onnxruntime maps them) adds up to the host's real use,
// where their RSS would count the shared pages once per instance.
import { readFileSync } from "node:fs";
import { readProcStatus } from "../bench/memory-sampler.js";

/** Proportional set sizes of a process, in bytes. */
export interface ProcPss {
  pssBytes: number;
  /** Private and shared anonymous memory (heap, onnxruntime's own copies), proportionally. */
  pssAnonBytes: number;
  /** File-backed pages (mapped weights, code), proportionally. */
  pssFileBytes: number;
  pssShmemBytes: number;
}

/** What `GET /v2/cicada/instance` reports of the process's memory. */
export interface InstanceMemory extends ProcPss {
  pid: number;
  rssBytes: number;
  rssAnonBytes: number;
}

const PSS_FIELDS: Record<keyof ProcPss, string> = {
  pssBytes: "Pss:",
  pssAnonBytes: "Pss_Anon:",
  pssFileBytes: "Pss_File:",
  pssShmemBytes: "Pss_Shmem:",
};

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

/** The memory of process `pid` (default: this one). Throws if the process does not exist. */
export function readInstanceMemory(pid: number = process.pid): InstanceMemory {
  const status = readProcStatus(pid);
  const pss = parseSmapsRollup(readFileSync(`/proc/${pid}/smaps_rollup`, "latin1"));
  return { pid, rssBytes: status.rssBytes, rssAnonBytes: status.rssAnonBytes, ...pss };
}
