// What this CPU is, as it bears on what onnxruntime's optimiser saves (MiniLoader's cache key) and on what
// a benchmark records about the machine: its model name and instruction-set flags, read once.
import { readFileSync } from "node:fs";

/** Instruction-set flags that change the kernels and layouts onnxruntime's optimiser picks. */
export const ISA_FLAGS = [
  "sse4_1",
  "sse4_2",
  "avx",
  "avx2",
  "fma",
  "f16c",
  "avx512f",
  "avx512bw",
  "avx512vl",
  "avx512_vnni",
  "avx_vnni",
  "avx512_bf16",
  "amx_tile",
  "amx_bf16",
  "amx_int8",
  "neon",
  "asimd",
  "sve",
];

/** This CPU's model name and the {@link ISA_FLAGS} it has (empty when /proc/cpuinfo cannot be read). */
export function cpuInfo(): { model: string; flags: string[] } {
  let text = "";
  try {
    text = readFileSync("/proc/cpuinfo", "utf8");
  } catch {
    return { model: "", flags: [] };
  }
  const model = /model name\s*:\s*(.*)/.exec(text)?.[1]?.trim() ?? "";
  const flags = new Set((/(?:flags|Features)\s*:\s*(.*)/.exec(text)?.[1] ?? "").split(/\s+/));
  return { model, flags: ISA_FLAGS.filter((f) => flags.has(f)) };
}

let signature: string | undefined;

/** The CPU's model name and ISA flags, as they bear on optimised graphs (read once per process). */
export function cpuSignature(): string {
  signature ??= (() => {
    const { model, flags } = cpuInfo();
    return `${process.arch}|${model}|${flags.join(",")}`;
  })();
  return signature;
}
