// The checks both LLM families run on their tiny configuration: write it with writeZooModel, run it in
// onnxruntime and compare the logits with the independent reference forward pass (reference-llm.ts) for
// two sequence lengths and two batch sizes, then check causality. Kept here so that llama.test.ts and
// opt.test.ts state only what differs.
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createSession, releaseSession, runSession, type Session } from "../../src/runtime/ort-adapter.js";
import { SeededRandom } from "../../src/util/seeded-random.js";
import { writeZooModel } from "../../src/zoo/model-writer.js";
import { exampleInputMetadata, type ZooModel } from "../../src/zoo/zoo-model.js";
import { loadWeights, maxRelativeDifference, type RefWeight } from "./reference-llm.js";

/** Logits of one sequence from the reference implementation, [sequence·vocab]. */
export type ReferenceForward = (weights: Map<string, RefWeight>, ids: number[]) => Float64Array;

/** Token ids in [0, vocab), reproducible from `seed`. */
export function randomIds(seed: number, batch: number, sequence: number, vocab: number): number[][] {
  const rng = new SeededRandom(seed, "test-ids");
  return Array.from({ length: batch }, () =>
    Array.from({ length: sequence }, () => Math.floor(rng.next() * vocab)),
  );
}

/** Runs the model on a batch of equal-length sequences; returns logits dims and values. */
export async function runLogits(
  session: Session,
  ids: number[][],
): Promise<{ dims: number[]; data: Float32Array }> {
  const sequence = ids[0]!.length;
  const data = BigInt64Array.from(ids.flat().map((v) => BigInt(v)));
  const out = await runSession(session, {
    input_ids: { dtype: "int64", dims: [ids.length, sequence], data },
  });
  const logits = out.logits;
  assert.ok(logits, "the model has an output named logits");
  assert.equal(logits.dtype, "float32");
  return { dims: logits.dims, data: logits.data as Float32Array };
}

/** The reference logits of a batch, concatenated row after row. */
function referenceBatch(
  reference: ReferenceForward,
  weights: Map<string, RefWeight>,
  ids: number[][],
): Float64Array {
  const rows = ids.map((row) => reference(weights, row));
  const out = new Float64Array(rows.reduce((n, r) => n + r.length, 0));
  let at = 0;
  for (const r of rows) {
    out.set(r, at);
    at += r.length;
  }
  return out;
}

/** Largest |a − b| over the first `count` values. */
function maxAbsDifference(a: ArrayLike<number>, b: ArrayLike<number>, count: number): number {
  let d = 0;
  for (let i = 0; i < count; i++) d = Math.max(d, Math.abs(a[i]! - b[i]!));
  return d;
}

/**
 * Writes the tiny `model` to a temp dir, runs it in onnxruntime (graph optimisations off and on) and
 * asserts: logits [batch, sequence, vocab], finite, input-dependent, within 1e-4 (relative to their
 * scale) of the reference for [1, 5] and [2, 9] inputs, and causal.
 */
export async function checkTinyDecoder(
  model: ZooModel,
  vocab: number,
  reference: ReferenceForward,
): Promise<void> {
  const graph = model.build();
  assert.ok(graph.weightBytes() < 1 << 20, `${model.name} is tiny: ${graph.weightBytes()} bytes`);
  const dir = await mkdtemp(join(tmpdir(), `cicada-${model.name}-`));
  try {
    const written = await writeZooModel(graph, join(dir, "model"), {
      seed: 11,
      metadata: exampleInputMetadata(model.exampleInputs),
    });
    const weights = await loadWeights(written.modelPath);
    for (const level of ["disabled", "all"] as const) {
      const session = await createSession(written.modelPath, {
        intraOpNumThreads: 1,
        graphOptimizationLevel: level,
      });
      try {
        for (const [batch, sequence] of [
          [1, 5],
          [2, 9],
        ] as const) {
          const ids = randomIds(batch * 100 + sequence, batch, sequence, vocab);
          const got = await runLogits(session, ids);
          assert.deepEqual(got.dims, [batch, sequence, vocab]);
          assert.ok(
            got.data.every((v) => Number.isFinite(v)),
            "finite logits",
          );
          const expected = referenceBatch(reference, weights, ids);
          const rel = maxRelativeDifference(got.data, expected);
          assert.ok(
            rel < 1e-4,
            `${model.name} (${level}) [${batch}, ${sequence}]: relative difference ${rel}`,
          );
        }

        // Changing the last token leaves every earlier position's logits unchanged, and changes the last.
        const before = randomIds(7, 1, 7, vocab);
        const after = [[...before[0]!.slice(0, 6), (before[0]![6]! + 1) % vocab]];
        const a = await runLogits(session, before);
        const b = await runLogits(session, after);
        const scale = a.data.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
        assert.ok(maxAbsDifference(a.data, b.data, 6 * vocab) <= 1e-6 * scale, "earlier positions unchanged");
        const lastA = a.data.subarray(6 * vocab);
        const lastB = b.data.subarray(6 * vocab);
        assert.ok(
          maxAbsDifference(lastA, lastB, vocab) > 1e-3 * scale,
          "the changed position's logits change",
        );
      } finally {
        await releaseSession(session);
      }
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
