// Latency of inference over HTTP, as a client of `cicada serve` sees it, next to the same work in-process:
// cold requests in a fresh instance (the first request of a new process: runtime up, model not loaded) and
// in a warm one (after an unload: the reload scenario), warm requests with JSON and with binary tensors,
// and the in-process cold start and warm run of the same strategy. The difference is the cost of the
// protocol (parsing, serialising, the loopback round trip). Strategies interleave round by round.
import { openBundle } from "../format/bundle.js";
import { now } from "../metrics/trace.js";
import { similarity } from "../metrics/similarity.js";
import { loadModel, prepareModel, type LoadedModel } from "../runtime/load-model.js";
import { randomInputs } from "../runtime/model-inputs.js";
import { ORT_VERSION } from "../runtime/ort-adapter.js";
import { runEager } from "../runtime/reference-runner.js";
import { createRuntime } from "../runtime/runtime.js";
import type { StrategyName } from "../config.js";
import { inferRequestBody } from "../serve/function/tensor-codec.js";
import { spawnServe, type ServeProcess } from "../serve/function/serve-process.js";
import { describeMachine, type Machine } from "../metrics/machine.js";
import { rotation, summarize, type Summary } from "../metrics/stats.js";

/** What one measurement was. */
export const SAMPLE_KINDS = [
  "fresh-cold",
  "reload-cold",
  "warm-json",
  "warm-binary",
  "inproc-cold",
  "inproc-warm",
] as const;
export type SampleKind = (typeof SAMPLE_KINDS)[number];

/** One timed request: client-side latency, and what the server said of it. */
export interface ServeSample {
  strategy: StrategyName;
  round: number;
  kind: SampleKind;
  /** Request sent → response body read (in-process: load + run, or run). */
  ms: number;
  /** `cicada_latency_ms`: request received → response body ready, on the server. */
  serverMs: number | null;
  loadMs: number | null;
  cold: boolean;
}

/** Options of {@link measureServeLatency}. */
export interface ServeLatencyOptions {
  bundleDir: string;
  strategies: StrategyName[];
  /** Counted rounds (one more, first, is a warm-up). */
  repeat: number;
  /** Warm requests per encoding per round. */
  warm: number;
  seed: number;
  cacheRoot?: string;
  onProgress?: (line: string) => void;
}

/** Per strategy: a summary per kind, and the HTTP overheads (medians). */
export interface ServeLatencyResult {
  strategy: StrategyName;
  kinds: Record<SampleKind, Summary>;
  /** Warm binary request over HTTP minus warm in-process run, ms. */
  httpOverheadWarmMs: number;
  /** Reload-cold request over HTTP minus in-process cold start, ms. */
  httpOverheadColdMs: number;
  /** Client-side minus server-side latency of warm binary requests: the loopback round trip, ms. */
  wireWarmMs: number;
}

export interface ServeLatencySummary {
  model: string;
  stages: number;
  weightBytes: number;
  machine: Machine;
  repeat: number;
  warm: number;
  /** Lowest cosine similarity of any HTTP answer against eager on the original model. */
  minCosineVsEager: number;
  results: ServeLatencyResult[];
  samples: ServeSample[];
}

/** Measures every strategy on one bundle; see the file header. */
export async function measureServeLatency(options: ServeLatencyOptions): Promise<ServeLatencySummary> {
  const { manifest } = await openBundle(options.bundleDir);
  const name = manifest.model.name;
  const feeds = randomInputs(manifest.inputs, options.seed);
  const reference = (await runEager(manifest.model.source, feeds)).outputs;
  const bodies = {
    json: inferRequestBody(feeds),
    binary: inferRequestBody(feeds, { binary: true, parameters: { binary_data_output: true } }),
  };
  const samples: ServeSample[] = [];
  let minCosine = 1;
  const progress = options.onProgress ?? (() => {});

  const request = async (server: ServeProcess, strategy: StrategyName, round: number, kind: SampleKind) => {
    const { body, headerLength } = kind === "warm-json" ? bodies.json : bodies.binary;
    const t0 = now();
    const res = await fetch(`${server.base}/v2/models/${name}/infer`, {
      method: "POST",
      headers:
        headerLength === undefined
          ? { "content-type": "application/json" }
          : {
              "content-type": "application/octet-stream",
              "inference-header-content-length": String(headerLength),
            },
      body,
    });
    const bytes = Buffer.from(await res.arrayBuffer());
    const ms = now() - t0;
    if (res.status !== 200) throw new Error(`${strategy} ${kind}: HTTP ${res.status}: ${bytes.toString()}`);
    const binaryLength = res.headers.get("inference-header-content-length");
    const jsonLength = binaryLength === null ? bytes.length : Number(binaryLength);
    const head = JSON.parse(bytes.subarray(0, jsonLength).toString()) as {
      parameters: { cicada_latency_ms: number; cicada_load_ms: number | null; cicada_cold: boolean };
      outputs: { name: string; data?: number[] }[];
    };
    const first = head.outputs[0]!;
    const values = first.data ?? new Float32Array(new Uint8Array(bytes.subarray(jsonLength)).buffer);
    minCosine = Math.min(minCosine, similarity(values, reference[first.name]!.data).cosine);
    const p = head.parameters;
    samples.push({
      strategy,
      round,
      kind,
      ms,
      serverMs: p.cicada_latency_ms,
      loadMs: p.cicada_load_ms,
      cold: p.cicada_cold,
    });
  };
  /** One in-process measurement of `work`. */
  const inProcess = async (
    strategy: StrategyName,
    round: number,
    kind: SampleKind,
    work: () => Promise<unknown>,
  ) => {
    const t0 = now();
    await work();
    samples.push({
      strategy,
      round,
      kind,
      ms: now() - t0,
      serverMs: null,
      loadMs: null,
      cold: kind === "inproc-cold",
    });
  };

  const runtime = await createRuntime(options.cacheRoot ? { cacheRoot: options.cacheRoot } : {});
  try {
    for (const s of options.strategies) await prepareModel(runtime, options.bundleDir, s);
    const args = (s: StrategyName) => [
      options.bundleDir,
      "--strategy",
      s,
      "--port",
      "0",
      "--timeout-ms",
      "600000",
      ...(options.cacheRoot ? ["--cache-root", options.cacheRoot] : []),
    ];
    for (let round = -1; round < options.repeat; round++) {
      for (const strategy of rotation(options.strategies, round + 1)) {
        progress(`${name}: round ${round < 0 ? "warm-up" : round + 1}/${options.repeat}, ${strategy}`);
        const server = await spawnServe(args(strategy));
        try {
          await request(server, strategy, round, "fresh-cold");
          for (let i = 0; i < options.warm; i++) {
            await request(server, strategy, round, "warm-binary");
            await request(server, strategy, round, "warm-json");
          }
          await fetch(`${server.base}/v2/repository/models/${name}/unload`, { method: "POST" }).then((r) =>
            r.text(),
          );
          await request(server, strategy, round, "reload-cold");
        } finally {
          await server.stop();
        }
        let model: LoadedModel | undefined;
        await inProcess(strategy, round, "inproc-cold", async () => {
          model = await loadModel(runtime, options.bundleDir, { strategy });
          await model.run(feeds);
        });
        for (let i = 0; i < options.warm; i++)
          await inProcess(strategy, round, "inproc-warm", () => model!.run(feeds));
        await model!.dispose();
      }
    }
  } finally {
    await runtime.close();
  }
  const counted = samples.filter((s) => s.round >= 0);
  const results = options.strategies.map((strategy): ServeLatencyResult => {
    const of = (kind: SampleKind) => counted.filter((s) => s.strategy === strategy && s.kind === kind);
    const kinds = Object.fromEntries(
      SAMPLE_KINDS.map((k) => [k, summarize(of(k).map((s) => s.ms))]),
    ) as Record<SampleKind, Summary>;
    const serverWarm = summarize(of("warm-binary").map((s) => s.serverMs ?? NaN)).median;
    return {
      strategy,
      kinds,
      httpOverheadWarmMs: kinds["warm-binary"].median - kinds["inproc-warm"].median,
      httpOverheadColdMs: kinds["reload-cold"].median - kinds["inproc-cold"].median,
      wireWarmMs: kinds["warm-binary"].median - serverWarm,
    };
  });
  return {
    model: name,
    stages: manifest.stages.length,
    weightBytes: manifest.totalWeightBytes,
    machine: describeMachine(ORT_VERSION),
    repeat: options.repeat,
    warm: options.warm,
    minCosineVsEager: minCosine,
    results,
    samples: counted,
  };
}
