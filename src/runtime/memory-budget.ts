// The memory a load may use, and how a strategy keeps to it. The budget bounds the process's anonymous
// memory (what a function instance's memory limit counts; mapped weight files are page cache, which the
// kernel can drop). Before anything is allocated, a load's need is estimated from the weights a strategy
// copies into memory (measured factors, below); a load that fits runs as usual, one that fits only stage by
// stage streams ("load, run, free": each stage is loaded just before its execution and released after it),
// and one that cannot fit either way is refused with E_MEMORY_BUDGET.
import { readFileSync } from "node:fs";
import { totalmem } from "node:os";
import { CicadaError } from "../errors.js";
import type { Manifest } from "../format/manifest.js";

/**
 * Anonymous bytes a strategy holds per byte of weights it copies, at the peak of building a session.
 * NOTE: measured on vgg16 (528 MiB of weights; 2026-12-02, 2 cores): eager's peak private memory grew by
 * 1.16x its weights (onnxruntime's copy of the parsed model); pisel's by 2.95x and preload's by 3.08x (the
 * stage's bytes read, onnxruntime's parse of them and its initializers, alive together while a session is
 * built); ort-best, mini and cicada map their weights (0x: page cache, not anonymous memory).
 */
export const COPY_FACTOR = { none: 0, parse: 1.25, build: 3 } as const;

/** How a strategy's load uses memory (by-strategy.ts says it for each strategy and plan). */
export interface MemoryProfile {
  /** Anonymous bytes per weight byte copied (see {@link COPY_FACTOR}). */
  factor: number;
  /** Whether the load can go stage by stage (a pipeline plan). */
  canStream: boolean;
}

/** How a load keeps to its budget. */
export type MemoryMode = "resident" | "streaming";

let cgroup: number | undefined;

/** The byte limit of this process's memory cgroup (v2, else v1), or Infinity; read once per process. */
function cgroupLimit(): number {
  cgroup ??= readCgroupLimit();
  return cgroup;
}

function readCgroupLimit(): number {
  for (const file of ["/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"]) {
    try {
      const text = readFileSync(file, "utf8").trim();
      const bytes = Number(text);
      if (text !== "max" && Number.isFinite(bytes) && bytes > 0) return bytes;
    } catch {
      // Not this cgroup version, or not Linux.
    }
  }
  return Infinity;
}

/**
 * The default budget: what the machine or the instance's memory limit allows, the smallest of its memory,
 * its cgroup's limit and, on AWS Lambda, the function's configured memory (AWS_LAMBDA_FUNCTION_MEMORY_SIZE,
 * in MB, which Lambda enforces without a cgroup the function can read).
 */
export function defaultMemoryBudget(env: NodeJS.ProcessEnv = process.env): number {
  const lambdaMb = Number(env.AWS_LAMBDA_FUNCTION_MEMORY_SIZE);
  const lambda = Number.isFinite(lambdaMb) && lambdaMb > 0 ? lambdaMb * 1e6 : Infinity;
  return Math.min(totalmem(), cgroupLimit(), lambda);
}

/** This process's anonymous resident memory (RssAnon), or 0 where /proc does not say. */
export function anonymousBytes(): number {
  try {
    const kib = /RssAnon:\s+(\d+)\s*kB/.exec(readFileSync("/proc/self/status", "utf8"))?.[1];
    return kib === undefined ? 0 : Number(kib) * 1024;
  } catch {
    return 0;
  }
}

const MiB = 2 ** 20;
const mib = (bytes: number) => `${(bytes / MiB).toFixed(1)} MiB`;

/** Whether `bytes` more fit in the default budget next to what this process holds. */
export function fitsDefaultBudget(bytes: number): boolean {
  return anonymousBytes() + bytes <= defaultMemoryBudget();
}

/**
 * How a load of `manifest` with `profile` keeps to `budget`, given the `used` bytes the process holds
 * already: resident when all of it fits, streaming when only its largest stage does (and the strategy can
 * stream). Throws E_MEMORY_BUDGET, naming the model, the bytes needed and the budget, when neither fits.
 */
export function memoryMode(
  manifest: Manifest,
  what: string,
  strategy: string,
  profile: MemoryProfile,
  budget: number,
  used: number,
): MemoryMode {
  const whole = manifest.totalWeightBytes * profile.factor;
  if (used + whole <= budget) return "resident";
  const largest = Math.max(0, ...manifest.stages.map((s) => s.weights.length)) * profile.factor;
  if (profile.canStream && used + largest <= budget) return "streaming";
  const need = profile.canStream ? largest : whole;
  throw new CicadaError(
    "E_MEMORY_BUDGET",
    `${what}: ${strategy} needs about ${mib(used + need)} of anonymous memory (${mib(used)} in use + ${mib(need)} ` +
      `for ${profile.canStream ? "its largest stage, loaded stage by stage" : "its weights"}), more than the budget of ${mib(budget)}` +
      (profile.factor > 0 ? "; a strategy that maps its weights (cicada, mini, ort-best) needs less" : ""),
  );
}
