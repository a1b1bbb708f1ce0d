// Test helper of the bundle fuzzer: the catalogue's edits of stage graphs. Hostile ones name files outside
// the bundle from places onnxruntime would resolve by itself (an initializer's external location, a
// Constant node's value, an initializer inside an If branch) or empty the stage's weight range so that no
// data table is given; they re-sign the graph so that containment, not the checksum, is what is tested.
// Corrupting ones (an op changed, an inline float's exponent flipped) are not re-signed; re-signed graph and
// weight changes make a legitimately different model, judged against the bundle's own stages (sequential).
import { readFileSync, writeFileSync } from "node:fs";
import { join, relative } from "node:path";
import {
  AttributeType,
  DataType,
  type ModelProto,
  type TensorProto,
} from "../../../src/format/onnx-types.js";
import type { EditSpec } from "./fuzz-edits.js";
import {
  canary,
  crcOf,
  editStageGraph,
  flipInlineFloat,
  readManifestJson,
  relocateExternal,
  writeManifestJson,
  type Json,
  type MutationContext,
} from "./fuzz-files.js";

const manifest = (ctx: MutationContext, edit: (m: Json) => void) => {
  const m = readManifestJson(ctx.bundle);
  edit(m);
  writeManifestJson(ctx.bundle, m);
};

/** Renames every node of `op` in a model to `to`. */
const changeOp = (op: string, to: string) => (model: ModelProto) => {
  for (const n of model.graph?.node ?? []) if (n.opType === op) n.opType = to;
};

/** A float tensor of stage width (32) whose data is 128 bytes at `location`. */
const externalTensor = (name: string, location: string): TensorProto => ({
  name,
  dims: [32],
  dataType: DataType.FLOAT,
  dataLocation: 1,
  externalData: [
    { key: "location", value: location },
    { key: "offset", value: "0" },
    { key: "length", value: "128" },
  ],
});

/** Renames the producer of stage 1's output to `<out>_pre` and returns the output's name. */
function detachOutput(m: ModelProto): string {
  const g = m.graph!;
  const out = g.output![0]!.name!;
  for (const n of g.node ?? []) n.output = (n.output ?? []).map((o) => (o === out ? `${out}_pre` : o));
  return out;
}

/** Stage 1's output plus a Constant whose value is external data at `location`. */
function addExternalConstant(c: MutationContext, location: string): void {
  editStageGraph(c.bundle, 1, true, (m) => {
    const out = detachOutput(m);
    m.graph!.node!.push(
      {
        name: "leak",
        opType: "Constant",
        output: ["leak"],
        attribute: [{ name: "value", type: AttributeType.TENSOR, t: externalTensor("", location) }],
      },
      { name: "leak_add", opType: "Add", input: [`${out}_pre`, "leak"], output: [out] },
    );
  });
}

/** Stage 1's output through If(true) { output + initializer in external data at `location` } else { output }. */
function addExternalInBranch(c: MutationContext, location: string): void {
  editStageGraph(c.bundle, 1, true, (m) => {
    const out = detachOutput(m);
    const pre = `${out}_pre`;
    const vi = (name: string) => ({ name, type: { tensorType: { elemType: DataType.FLOAT } } });
    m.graph!.node!.push(
      {
        name: "yes",
        opType: "Constant",
        output: ["yes"],
        attribute: [
          {
            name: "value",
            type: AttributeType.TENSOR,
            t: { dims: [], dataType: DataType.BOOL, int32Data: [1] },
          },
        ],
      },
      {
        name: "leak_if",
        opType: "If",
        input: ["yes"],
        output: [out],
        attribute: [
          {
            name: "then_branch",
            type: AttributeType.GRAPH,
            g: {
              name: "then",
              initializer: [externalTensor("leak", location)],
              node: [{ name: "then_add", opType: "Add", input: [pre, "leak"], output: ["then_out"] }],
              output: [vi("then_out")],
            },
          },
          {
            name: "else_branch",
            type: AttributeType.GRAPH,
            g: {
              name: "else",
              node: [{ name: "else_id", opType: "Identity", input: [pre], output: ["else_out"] }],
              output: [vi("else_out")],
            },
          },
        ],
      },
    );
  });
}

/** The catalogue's stage-graph edits, by name. */
export const GRAPH_EDITS: Record<string, EditSpec> = {
  "empty-range-cwd-file": {
    what: "stage 1's weight range emptied and its graph's external location set to canary.bin, a file in the working directory, re-signed",
    apply: (c) => {
      editStageGraph(c.bundle, 1, true, (model) => void relocateExternal(model, "canary.bin"));
      manifest(c, (m) => {
        const w = m.stages[1]!.weights;
        w.length = 0;
        w.checksum = crcOf(new Uint8Array(0));
        m.stages[1]!.tensors = [];
      });
    },
  },
  "location-relative-escape": {
    what: "stage 1's graph names external data ../../../canary/canary.bin, re-signed",
    apply: (c) =>
      editStageGraph(
        c.bundle,
        1,
        true,
        (m) => void relocateExternal(m, relative(c.bundle, canary(c, "canary.bin"))),
      ),
  },
  "location-absolute-escape": {
    what: "stage 1's graph names external data by the absolute path of a file outside the bundle, re-signed",
    apply: (c) => editStageGraph(c.bundle, 1, true, (m) => void relocateExternal(m, canary(c, "canary.bin"))),
  },
  "location-renamed-in-manifest": {
    what: "stages[1].weights.location renamed (the graph still names stage-001.weights, which the working directory holds)",
    apply: (c) => manifest(c, (m) => void (m.stages[1]!.weights.location = "renamed.weights")),
  },
  "graph-op-tampered": {
    what: "stage 1's Relu became Sigmoid, not re-signed (corruption)",
    apply: (c) => editStageGraph(c.bundle, 1, false, changeOp("Relu", "Sigmoid")),
  },
  "graph-op-resigned-warm": {
    what: "stage 1's Relu became Sigmoid, re-signed (a new model), each strategy starting from the old model's cache",
    warm: true,
    expect: "sequential",
    stagedOnly: true,
    apply: (c) => editStageGraph(c.bundle, 1, true, changeOp("Relu", "Sigmoid")),
  },
  "graph-op-resigned-fresh": {
    what: "stage 1's Relu became Sigmoid, re-signed (a new model), empty cache",
    expect: "sequential",
    stagedOnly: true,
    apply: (c) => editStageGraph(c.bundle, 1, true, changeOp("Relu", "Sigmoid")),
  },
  "weights-resigned-warm": {
    what: "a float of stage 1's weight range changed and its crc32 updated (new weights), from the old cache",
    warm: true,
    expect: "sequential",
    stagedOnly: true,
    apply: (c) => {
      const m = readManifestJson(c.bundle);
      const w = m.stages[1]!.weights;
      const path = join(c.bundle, "weights.safetensors");
      const bytes = readFileSync(path);
      const at = Number(w.offset) + 8;
      bytes.writeFloatLE(bytes.readFloatLE(at) + 0.75, at);
      writeFileSync(path, bytes);
      w.checksum = crcOf(bytes.subarray(Number(w.offset), Number(w.offset) + Number(w.length)));
      writeManifestJson(c.bundle, m);
    },
  },
  "graph-inline-float-flip": {
    what: "an exponent bit of an inline float (a bias) of stage 1's graph flipped, not re-signed",
    apply: (c) => {
      if (!flipInlineFloat(join(c.bundle, "stages/001.onnx"), c.random)) throw new Error("no inline float");
    },
  },
  "graph-output-renamed": {
    what: "stage 1's graph output renamed, re-signed (the manifest's plumbing no longer matches)",
    apply: (c) =>
      editStageGraph(c.bundle, 1, true, (m) => {
        const g = m.graph!;
        const old = g.output![0]!.name!;
        g.output![0]!.name = "renamed";
        for (const n of g.node ?? []) n.output = (n.output ?? []).map((o) => (o === old ? "renamed" : o));
      }),
  },
  "graph-external-past-range": {
    what: "stage 1's graph reads its weight 4 bytes further, past the end of its range, re-signed",
    expect: "sequential",
    stagedOnly: true,
    apply: (c) =>
      editStageGraph(c.bundle, 1, true, (m) => {
        for (const t of m.graph?.initializer ?? [])
          for (const e of t.externalData ?? []) if (e.key === "offset") e.value = String(Number(e.value) + 4);
      }),
  },
  "location-other-stage": {
    what: "stage 1's graph names stage-000.weights (another stage's location, which the working directory holds), re-signed",
    apply: (c) => editStageGraph(c.bundle, 1, true, (m) => void relocateExternal(m, "stage-000.weights")),
  },
  "constant-external-cwd": {
    what: "a Constant node whose value is external data in canary.bin (the working directory) added to stage 1's output, re-signed",
    apply: (c) => addExternalConstant(c, "canary.bin"),
  },
  "constant-external-absolute": {
    what: "a Constant node whose value is external data at an absolute path outside the bundle added to stage 1's output, re-signed",
    apply: (c) => addExternalConstant(c, canary(c, "canary.bin")),
  },
  "subgraph-external-escape": {
    what: "stage 1's output passed through an If whose branch holds an initializer in external data outside the bundle, re-signed",
    apply: (c) => addExternalInBranch(c, canary(c, "canary.bin")),
  },
};
