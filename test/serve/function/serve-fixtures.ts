// What the server tests share: tiny zoo models imported as bundles in a temp dir, inference requests in
// the protocol's JSON and binary forms built from host tensors, the eager reference to compare with, and
// seeded random choices for fuzzing.
import assert from "node:assert/strict";
import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { importModel } from "../../../src/importer/import-model.js";
import { similarity } from "../../../src/metrics/similarity.js";
import type { HostTensor } from "../../../src/runtime/host-tensor.js";
import type { Parameters } from "../../../src/serve/function/protocol-schemas.js";
import { inferRequestBody } from "../../../src/serve/function/tensor-codec.js";
import { SeededRandom } from "../../../src/util/seeded-random.js";
import { generateZooModel } from "../../../src/zoo/registry.js";
import { rawExchange } from "./server-process.js";

/** A temp dir with bundles of the named tiny zoo models (`name` → bundle dir) and a cache root. */
export async function tinyBundles(
  prefix: string,
  models: Record<string, number>,
): Promise<{ root: string; cache: string; bundles: Record<string, string> }> {
  const root = await mkdtemp(join(tmpdir(), `cicada-${prefix}-`));
  const bundles: Record<string, string> = {};
  for (const [name, stages] of Object.entries(models)) {
    const model = await generateZooModel(name, join(root, name), { seed: 11 });
    await importModel(model.modelPath, join(root, `${name}.bundle`), { stages });
    bundles[name] = join(root, `${name}.bundle`);
  }
  return { root, cache: join(root, "cache"), bundles };
}

/** A JSON inference request for `feeds` (INT64 as numbers), with an `id` and `parameters` if given. */
export function jsonRequest(
  feeds: Record<string, HostTensor>,
  extra: { id?: string; parameters?: Parameters } = {},
): string {
  return inferRequestBody(feeds, extra).body.toString();
}

/** A binary-extension request for `feeds`: the JSON header and the raw bytes, and the header's length. */
export function binaryRequest(
  feeds: Record<string, HostTensor>,
  parameters: Parameters = {},
): { body: Buffer; headerLength: number } {
  const { body, headerLength } = inferRequestBody(feeds, { binary: true, parameters });
  return { body, headerLength: headerLength! };
}

/** An infer response's JSON part. */
export interface InferJson {
  model_name: string;
  model_version: string;
  id?: string;
  parameters: Record<string, string | number | boolean | null>;
  outputs: {
    name: string;
    datatype: string;
    shape: number[];
    data?: number[];
    parameters?: { binary_data_size: number };
  }[];
}

/** Asserts `actual` equals the eager reference: cosine >= 0.99999 and a small max abs difference. */
export function assertMatchesEager(actual: ArrayLike<number>, expected: HostTensor, what: string): void {
  const s = similarity(actual, expected.data);
  assert.ok(s.cosine >= 0.99999, `${what}: cosine ${s.cosine}`);
  assert.ok(s.maxAbsDiff < 1e-4, `${what}: max abs diff ${s.maxAbsDiff}`);
}

/** Seeded random choices (fuzzers): integers, picks, bytes and random JSON values. */
export class SeededChoices {
  private readonly r: SeededRandom;
  constructor(seed: number, stream: string) {
    this.r = new SeededRandom(seed, stream);
  }
  next(): number {
    return this.r.next();
  }
  int(n: number): number {
    return Math.floor(this.next() * n);
  }
  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)]!;
  }
  chance(p: number): boolean {
    return this.next() < p;
  }
  bytes(n: number): Buffer {
    return Buffer.from(Array.from({ length: n }, () => this.int(256)));
  }
  /** A random JSON value, at most `depth` deep. */
  junk(depth = 3): unknown {
    const kind = this.int(depth > 0 ? 9 : 7);
    if (kind === 0) return null;
    if (kind === 1) return this.chance(0.5);
    if (kind === 2) return this.pick([0, -1, 1.5, 2 ** 53, -(2 ** 63), 1e308, 3, 12288]);
    if (kind === 3) return this.pick(["", "NaN", "x".repeat(this.int(300)), "FP32", "input", "../"]);
    if (kind === 4) return [];
    if (kind === 5) return {};
    if (kind === 6) return this.bytes(this.int(20)).toString("latin1");
    if (kind === 7) return Array.from({ length: this.int(4) }, () => this.junk(depth - 1));
    return Object.fromEntries(
      Array.from({ length: this.int(4) }, () => [
        this.pick(["a", "name", "shape", "__proto__"]),
        this.junk(depth - 1),
      ]),
    );
  }
}

/**
 * With `held` bytes of bodies being received and a budget of `budget` bytes: a further declared body of
 * `size` bytes is refused 503 E_SERVER_BUSY from its headers, and a chunked one once its streamed bytes
 * pass the room left; `head(framing)` is the request head with that framing header. Shared by the
 * function server's and the gateway's receiving-budget tests.
 */
export async function assertBusyRefusals(
  port: number,
  head: (framing: string) => string,
  held: number,
  size: number,
  budget: number,
): Promise<void> {
  const declared = await rawExchange(port, [head(`Content-Length: ${size}`)], { timeoutMs: 10_000 });
  assert.equal(declared.status, 503, declared.body.toString());
  assert.equal(declared.headers["retry-after"], "1");
  assert.equal(declared.headers["x-cicada-error"], "E_SERVER_BUSY");
  const refusal = JSON.parse(declared.body.toString()) as { error: string; code: string };
  assert.equal(refusal.code, "E_SERVER_BUSY");
  assert.match(
    refusal.error,
    new RegExp(
      `receiving ${held} bytes .*declared ${size} bytes .*budget of ${budget} bytes \\(--max-receiving-bytes\\); retry later`,
    ),
  );
  // Chunked: no length to judge from, so it is refused once the bytes it streamed pass the room left.
  const chunk = Buffer.alloc(64 * 1024, 0x20);
  const chunks = Array.from({ length: 16 }, () =>
    Buffer.concat([Buffer.from(`${chunk.length.toString(16)}\r\n`), chunk, Buffer.from("\r\n")]),
  );
  const chunked = await rawExchange(port, [head("Transfer-Encoding: chunked"), ...chunks], {
    gapMs: 20,
    timeoutMs: 10_000,
  });
  assert.equal(chunked.status, 503, chunked.body.toString());
  assert.equal(chunked.headers["retry-after"], "1");
  const streamed = JSON.parse(chunked.body.toString()) as { error: string; code: string };
  assert.equal(streamed.code, "E_SERVER_BUSY");
  assert.match(streamed.error, /this body, \d+ bytes so far, would take \d+ more/);
}
