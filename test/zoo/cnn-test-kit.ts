// Shared check of the tiny CNN zoo models: tiny, written to disk reproducibly from the seed, and running
// in onnxruntime with finite, input-dependent logits.
import assert from "node:assert/strict";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createSession, releaseSession, runSession } from "../../src/runtime/ort-adapter.js";
import { SeededRandom } from "../../src/util/seeded-random.js";
import { writeZooModel } from "../../src/zoo/model-writer.js";
import type { ZooModel } from "../../src/zoo/zoo-model.js";

function randomImage(seed: number, dims: number[]): Float32Array {
  const data = new Float32Array(dims.reduce((a, b) => a * b, 1));
  new SeededRandom(seed, "test-image").fillUniform(data, 0, 1);
  return data;
}

/** Writes `tiny` three times (seeds 7, 7, 8), runs it and checks size, reproducibility and the logits. */
export async function checkTinyCnn(tiny: ZooModel, inputDims: number[], classes: number): Promise<void> {
  const graph = tiny.build();
  assert.ok(graph.weightBytes() < 1 << 20, `${graph.weightBytes()} bytes`);
  const dir = await mkdtemp(join(tmpdir(), `cicada-${tiny.name}-`));
  try {
    const a = await writeZooModel(graph, join(dir, "a"), { seed: 7 });
    const b = await writeZooModel(tiny.build(), join(dir, "b"), { seed: 7 });
    const c = await writeZooModel(tiny.build(), join(dir, "c"), { seed: 8 });
    assert.deepEqual(await readFile(a.modelPath), await readFile(b.modelPath));
    assert.deepEqual(await readFile(a.dataPath), await readFile(b.dataPath));
    assert.notDeepEqual(await readFile(a.dataPath), await readFile(c.dataPath));

    const dims = tiny.exampleInputs[0]!.dims;
    assert.deepEqual(dims, inputDims);
    const run = async (modelPath: string, seed: number) => {
      const session = await createSession(modelPath, { intraOpNumThreads: 1 });
      try {
        const out = await runSession(session, {
          input: { dtype: "float32", dims, data: randomImage(seed, dims) },
        });
        return out.logits!;
      } finally {
        await releaseSession(session);
      }
    };
    const first = await run(a.modelPath, 1);
    assert.deepEqual(first.dims, [1, classes]);
    assert.ok(
      [...first.data].every((v) => Number.isFinite(Number(v))),
      "finite logits",
    );
    assert.ok(
      [...first.data].some((v) => Number(v) !== 0),
      "non-zero logits",
    );
    assert.notDeepEqual(first.data, (await run(a.modelPath, 2)).data, "output depends on the input");
    assert.deepEqual(first.data, (await run(b.modelPath, 1)).data, "same seed, same output");
    assert.notDeepEqual(first.data, (await run(c.modelPath, 1)).data, "different seed, different output");
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
