// Test helper: runs a bundle's stages one after another in onnxruntime, each session created from the
// stage's structure bytes with its weight range given as in-memory external data (as the runtime does),
// and compares the result with one session over the original model. Independent of src/runtime so that
// importer tests check the bundle format itself.
import assert from "node:assert/strict";
import { open, readFile } from "node:fs/promises";
import { join } from "node:path";
import { readManifest, WEIGHTS_FILE } from "../../src/format/manifest.js";
import type { HostTensor } from "../../src/runtime/host-tensor.js";
import { createSession, releaseSession, runSession } from "../../src/runtime/ort-adapter.js";
import { similarity } from "../../src/metrics/similarity.js";

const SESSION = { intraOpNumThreads: 1, allowSpinning: false } as const;

/** Reads `length` bytes at `offset` of `path`. */
export async function readBytes(path: string, offset: number, length: number): Promise<Buffer> {
  const h = await open(path, "r");
  try {
    const out = Buffer.alloc(length);
    await h.read(out, 0, length, offset);
    return out;
  } finally {
    await h.close();
  }
}

/** Runs every stage of the bundle in order; returns the graph outputs. */
export async function runBundle(
  bundleDir: string,
  feeds: Record<string, HostTensor>,
): Promise<Record<string, HostTensor>> {
  const manifest = await readManifest(bundleDir);
  const live = new Map(Object.entries(feeds));
  for (const stage of manifest.stages) {
    const structure = await readFile(join(bundleDir, stage.file));
    const weights = await readBytes(
      join(bundleDir, WEIGHTS_FILE),
      stage.weights.offset,
      stage.weights.length,
    );
    // NOTE: a zero-length Buffer (Buffer.alloc(0)) has a null data pointer, which onnxruntime-node rejects
    // ("Input index: 0 contains null pointers"); a stage without weights references none, so it gets none.
    const session = await createSession(structure, {
      ...SESSION,
      ...(weights.length ? { externalData: [{ path: stage.weights.location, data: weights }] } : {}),
    });
    try {
      const stageFeeds: Record<string, HostTensor> = {};
      for (const input of stage.inputs) {
        const t = live.get(input.name);
        assert.ok(t, `stage ${stage.index} needs '${input.name}', which no earlier stage produced`);
        assert.equal(t.dtype, input.dtype, `stage ${stage.index} input '${input.name}' dtype`);
        stageFeeds[input.name] = t;
      }
      const result = await runSession(session, stageFeeds);
      assert.deepEqual(
        Object.keys(result).sort(),
        stage.outputs.map((o) => o.name).sort(),
        `stage ${stage.index} outputs`,
      );
      for (const o of stage.outputs) assert.equal(result[o.name]!.dtype, o.dtype, `'${o.name}' dtype`);
      for (const [name, t] of Object.entries(result)) live.set(name, t);
    } finally {
      await releaseSession(session);
    }
  }
  return Object.fromEntries(manifest.outputs.map((o) => [o.name, live.get(o.name)!]));
}

/** Runs the original model in one session. */
export async function runWhole(
  modelPath: string,
  feeds: Record<string, HostTensor>,
): Promise<Record<string, HostTensor>> {
  const session = await createSession(modelPath, SESSION);
  try {
    return await runSession(session, feeds);
  } finally {
    await releaseSession(session);
  }
}

/** Asserts cosine >= 0.99999 and max abs diff <= `tolerance` for every output of `expected`. */
export function assertSameOutputs(
  actual: Record<string, HostTensor>,
  expected: Record<string, HostTensor>,
  tolerance = 1e-4,
): void {
  assert.deepEqual(Object.keys(actual).sort(), Object.keys(expected).sort());
  for (const [name, e] of Object.entries(expected)) {
    const a = actual[name]!;
    assert.deepEqual(a.dims, e.dims, `'${name}' dims`);
    const s = similarity(a.data, e.data);
    assert.ok(s.cosine >= 0.99999, `'${name}': cosine ${s.cosine}`);
    assert.ok(s.maxAbsDiff <= tolerance, `'${name}': max abs diff ${s.maxAbsDiff}`);
  }
}

/** Imports nothing itself: runs the bundle and the source model on `feeds` and compares them. */
export async function assertBundleMatchesModel(
  bundleDir: string,
  modelPath: string,
  feeds: Record<string, HostTensor>,
): Promise<Record<string, HostTensor>> {
  const staged = await runBundle(bundleDir, feeds);
  assertSameOutputs(staged, await runWhole(modelPath, feeds));
  return staged;
}
