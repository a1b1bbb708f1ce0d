// What machine a benchmark or a replay ran on. Cold-start figures depend on the CPU's vector extensions
// (onnxruntime's kernels and NCHWc layouts are ISA-specific), the core count, transparent huge pages
// (first-touch page faults) and how busy the shared machine was, so every result carries this description.
import { existsSync, readFileSync } from "node:fs";
import os from "node:os";
import { ISA_FLAGS } from "../util/cpu.js";

/** The machine a benchmark ran on. */
export interface Machine {
  cpuModel: string;
  /** Logical cores available to this process. */
  cores: number;
  /** The vector extensions that change onnxruntime's kernels (subset of /proc/cpuinfo flags). */
  cpuFeatures: string[];
  /** True on a virtual machine (the `hypervisor` CPU flag). */
  virtualized: boolean;
  totalMemoryBytes: number;
  platform: string;
  arch: string;
  kernel: string;
  nodeVersion: string;
  ortVersion: string;
  /** Transparent huge pages mode (`always`, `madvise`, `never`), if the kernel says. */
  transparentHugePages: string | null;
  /** GLIBC_TUNABLES of the benchmark (e.g. glibc.malloc.hugetlb=1), which instances inherit. */
  glibcTunables: string | null;
  /** 1-minute load average when the benchmark started: a busy shared machine shows here. */
  loadAverage1m: number;
}

/** The flags line of a /proc/cpuinfo text (x86 `flags`, Arm `Features`), as a set. */
export function cpuFlags(cpuinfo: string): Set<string> {
  const m = /^(?:flags|Features)\s*:\s*(.*)$/m.exec(cpuinfo);
  return new Set(m ? m[1]!.trim().split(/\s+/) : []);
}

/** The bracketed choice of a sysfs setting such as "always [madvise] never". */
export function selectedChoice(setting: string): string | null {
  return /\[([^\]]+)\]/.exec(setting)?.[1] ?? null;
}

function readOptional(path: string): string {
  try {
    return existsSync(path) ? readFileSync(path, "utf8") : "";
  } catch {
    return "";
  }
}

/** Describes this machine; `ortVersion` comes from an instance that loaded onnxruntime. */
export function describeMachine(ortVersion: string): Machine {
  const flags = cpuFlags(readOptional("/proc/cpuinfo"));
  return {
    cpuModel: os.cpus()[0]?.model.trim() ?? "unknown",
    cores: os.availableParallelism(),
    cpuFeatures: ISA_FLAGS.filter((f) => flags.has(f)),
    virtualized: flags.has("hypervisor"),
    totalMemoryBytes: os.totalmem(),
    platform: process.platform,
    arch: process.arch,
    kernel: os.release(),
    nodeVersion: process.versions.node,
    ortVersion,
    transparentHugePages: selectedChoice(readOptional("/sys/kernel/mm/transparent_hugepage/enabled")),
    glibcTunables: process.env.GLIBC_TUNABLES ?? null,
    loadAverage1m: os.loadavg()[0] ?? 0,
  };
}
