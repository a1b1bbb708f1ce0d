// Test helper of the bundle fuzzer: the catalogue of semantic mutations, each a named edit of a copy of the
// pristine bundle or cache with what the fuzzer expects of it. Hostile edits (paths out of the bundle,
// symlinks, devices, FIFOs, huge counts and lengths, a stage graph naming a file in the working directory)
// re-sign what they change; corruption edits (an op changed, a float's exponent flipped, ranges moved) do
// not. Every mutant must end in the reference output (or, for `sequential`, in what the mutated bundle's
// own stages compute when run one by one) or in a coded error.
import { execFileSync } from "node:child_process";
import { readFileSync, rmSync, writeFileSync } from "node:fs";
import { join, relative } from "node:path";
import { CACHE_EDITS } from "./fuzz-cache-edits.js";
import { GRAPH_EDITS } from "./fuzz-graph-edits.js";
import {
  canary,
  readManifestJson,
  resignGraph,
  symlinkOver,
  writeManifestJson,
  type Json,
  type MutationContext,
} from "./fuzz-files.js";

/** What one catalogue entry does and how its runs are judged. */
export interface EditSpec {
  what: string;
  /** Start each strategy from the pristine cache (a stale cache must not serve a changed bundle). */
  warm?: boolean;
  /** Judge against the mutated bundle's own stages run one by one (a legitimately different model). */
  expect?: "sequential";
  /** Only the strategies that read the bundle's stage graphs (eager and ort-best run the source model). */
  stagedOnly?: boolean;
  /** A cache edit: after the first load, a second load must be correct (evicted and rebuilt, or bypassed). */
  heal?: boolean;
  apply(ctx: MutationContext): void;
}

const manifest = (ctx: MutationContext, edit: (m: Json) => void) => {
  const m = readManifestJson(ctx.bundle);
  edit(m);
  writeManifestJson(ctx.bundle, m);
};

/** Stage 1's file pointed at `file`, re-signed with that file's bytes. */
const stageFileAt = (ctx: MutationContext, file: string, resignFrom?: string) =>
  manifest(ctx, (m) => {
    m.stages[1]!.file = file;
    if (resignFrom) resignGraph(m, 1, readFileSync(resignFrom));
  });

/** The catalogue, by name. */
export const EDITS: Record<string, EditSpec> = {
  "file-relative-escape": {
    what: "stages[1].file = ../../../canary/stage-1.onnx (a valid graph outside the bundle), re-signed",
    apply: (c) => stageFileAt(c, relative(c.bundle, canary(c, "stage-1.onnx")), canary(c, "stage-1.onnx")),
  },
  "file-absolute-escape": {
    what: "stages[1].file = the absolute path of a valid graph outside the bundle, re-signed",
    apply: (c) => stageFileAt(c, canary(c, "stage-1.onnx"), canary(c, "stage-1.onnx")),
  },
  "file-etc-passwd": {
    what: "stages[1].file = ../../../../../../../../etc/passwd",
    apply: (c) => stageFileAt(c, "../../../../../../../../etc/passwd"),
  },
  "file-proc-environ": {
    what: "stages[1].file = /proc/self/environ",
    apply: (c) => stageFileAt(c, "/proc/self/environ"),
  },
  "file-dev-zero": { what: "stages[1].file = /dev/zero", apply: (c) => stageFileAt(c, "/dev/zero") },
  "file-dev-stdin": { what: "stages[1].file = /dev/stdin", apply: (c) => stageFileAt(c, "/dev/stdin") },
  "file-dot": { what: "stages[1].file = .", apply: (c) => stageFileAt(c, ".") },
  "file-directory": { what: "stages[1].file = stages", apply: (c) => stageFileAt(c, "stages") },
  "file-other-stage": {
    what: "stages[1].file = stages/002.onnx (another stage's graph), re-signed",
    apply: (c) => stageFileAt(c, "stages/002.onnx", join(c.bundle, "stages/002.onnx")),
  },
  "symlink-stage-out": {
    what: "stages/001.onnx is a symlink to a valid graph outside the bundle, re-signed",
    apply: (c) => {
      symlinkOver(join(c.bundle, "stages/001.onnx"), canary(c, "stage-1.onnx"));
      manifest(c, (m) => resignGraph(m, 1, readFileSync(canary(c, "stage-1.onnx"))));
    },
  },
  "symlink-stage-copy": {
    what: "stages/001.onnx is a symlink to an exact copy outside the bundle (correct bytes, read from outside)",
    apply: (c) => symlinkOver(join(c.bundle, "stages/001.onnx"), canary(c, "stages-copy/001.onnx")),
  },
  "symlink-stages-dir": {
    what: "stages/ is a symlink to an exact copy of it outside the bundle",
    apply: (c) => symlinkOver(join(c.bundle, "stages"), canary(c, "stages-copy")),
  },
  "symlink-weights": {
    what: "weights.safetensors is a symlink to an exact copy outside the bundle",
    apply: (c) => symlinkOver(join(c.bundle, "weights.safetensors"), canary(c, "weights-copy.safetensors")),
  },
  "fifo-stage": {
    what: "stages/001.onnx is a FIFO nobody writes to",
    apply: (c) => {
      rmSync(join(c.bundle, "stages/001.onnx"));
      execFileSync("mkfifo", [join(c.bundle, "stages/001.onnx")]);
    },
  },
  "stages-200k": {
    what: "200,000 stages (copies of stage 0, indexes renumbered)",
    apply: (c) =>
      manifest(c, (m) => {
        const s0 = m.stages[0]!;
        m.stages = Array.from({ length: 200_000 }, (_, index) => ({ ...s0, index }));
      }),
  },
  "weights-length-huge": {
    what: "stages[0].weights.length = 2^40",
    apply: (c) => manifest(c, (m) => void (m.stages[0]!.weights.length = 2 ** 40)),
  },
  "weights-offset-huge": {
    what: "stages[0].weights.offset = 2^52",
    apply: (c) => manifest(c, (m) => void (m.stages[0]!.weights.offset = 2 ** 52)),
  },
  "weights-offset-shift": {
    what: "stages[1].weights.offset moved one page (checksum kept)",
    apply: (c) =>
      manifest(c, (m) => void (m.stages[1]!.weights.offset = Number(m.stages[1]!.weights.offset) + 4096)),
  },
  "tensor-length-huge": {
    what: "stages[0].tensors[0].length = 2^40",
    apply: (c) => manifest(c, (m) => void (m.stages[0]!.tensors[0]!.length = 2 ** 40)),
  },
  "total-weight-bytes-zero": {
    what: "totalWeightBytes = 0 (the planner's input lies)",
    apply: (c) => manifest(c, (m) => void (m.totalWeightBytes = 0)),
  },
  "total-weight-bytes-huge": {
    what: "totalWeightBytes = 2^50",
    apply: (c) => manifest(c, (m) => void (m.totalWeightBytes = 2 ** 50)),
  },
  "output-missing": {
    what: "outputs[0].name = ghost (no stage produces it)",
    apply: (c) => manifest(c, (m) => void (m.outputs[0]!.name = "ghost")),
  },
  "stage-output-ghost": {
    what: "the last stage's output and the graph output renamed to ghost in the manifest only",
    apply: (c) =>
      manifest(c, (m) => {
        m.stages[m.stages.length - 1]!.outputs[0]!.name = "ghost";
        m.outputs[0]!.name = "ghost";
      }),
  },
  "last-stage-missing": {
    what: "the last stage removed from the manifest",
    apply: (c) => manifest(c, (m) => void m.stages.pop()),
  },
  "stage-duplicated": {
    what: "stage 1 listed twice (indexes renumbered)",
    apply: (c) =>
      manifest(c, (m) => {
        m.stages.splice(1, 0, { ...m.stages[1]! });
        m.stages.forEach((s, index) => (s.index = index));
      }),
  },
  "stages-swapped": {
    what: "stages 1 and 2 swapped (indexes renumbered)",
    apply: (c) =>
      manifest(c, (m) => {
        [m.stages[1], m.stages[2]] = [m.stages[2]!, m.stages[1]!];
        m.stages.forEach((s, index) => (s.index = index));
      }),
  },
  "format-version-99": {
    what: "formatVersion = 99",
    apply: (c) => manifest(c, (m) => void (m.formatVersion = 99)),
  },
  "string-10m": {
    what: "model.name of 10 million characters",
    apply: (c) =>
      manifest(c, (m) => void ((m.model as Record<string, unknown>).name = "x".repeat(10_000_000))),
  },
  "nesting-100k": {
    what: "model.family nested 100,000 arrays deep",
    apply: (c) => {
      const text = readFileSync(join(c.bundle, "manifest.json"), "utf8");
      const deep = "[".repeat(100_000) + "]".repeat(100_000);
      writeFileSync(join(c.bundle, "manifest.json"), text.replace('"family": "mlp"', `"family": ${deep}`));
    },
  },
  "input-dtype": {
    what: "inputs[0].dtype = int64 (the caller's float32 feed no longer fits)",
    apply: (c) => manifest(c, (m) => void (m.inputs[0]!.dtype = "int64")),
  },
  "stage-input-dtype": {
    what: "stages[1].inputs[0].dtype = int64 (inner plumbing only)",
    apply: (c) => manifest(c, (m) => void (m.stages[1]!.inputs[0]!.dtype = "int64")),
  },
  "file-dotdot-inside": {
    what: "stages[1].file = stages/../stages/./001.onnx (a roundabout path that stays inside)",
    apply: (c) => stageFileAt(c, "stages/../stages/./001.onnx"),
  },
  "file-nul-byte": {
    what: "stages[1].file holds a NUL byte",
    apply: (c) => stageFileAt(c, "stages/001.onnx\u0000.txt"),
  },
  "file-long-name": {
    what: "stages[1].file is 5,000 characters long",
    apply: (c) => stageFileAt(c, `stages/${"a".repeat(5000)}.onnx`),
  },
  "weights-offset-negative": {
    what: "stages[1].weights.offset = -4096",
    apply: (c) => manifest(c, (m) => void (m.stages[1]!.weights.offset = -4096)),
  },
  "source-escape": {
    what: "model.source = a valid model outside the bundle that outputs 31337 (eager and ort-best read the source)",
    apply: (c) =>
      manifest(c, (m) => void ((m.model as Record<string, unknown>).source = canary(c, "model.onnx"))),
  },
  ...GRAPH_EDITS,
  ...CACHE_EDITS,
};
