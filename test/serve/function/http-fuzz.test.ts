// An HTTP fuzzer against a real `cicada serve` process over raw sockets on loopback: malformed and hostile
// requests (broken JSON, wrong types, huge, negative and fractional shapes, deep nesting, numbers past a
// double, wrong datatypes, binary-extension headers lying about sizes, truncated bodies, bad
// Content-Length, unknown methods and paths, path traversal in model names, oversized bodies, random
// bytes). After each: a response with a coded JSON error from the table (or a closed connection, where the
// framing itself is broken), never a 500 without a code, never a hang, the process alive; every
// CHECK_EVERY requests a valid request still gets the first valid answer. Seeded and bounded:
// CICADA_FUZZ_SEED and CICADA_FUZZ_REQUESTS (default 400) reproduce or lengthen a run.
import { after, test } from "node:test";
import assert from "node:assert/strict";
import { rm } from "node:fs/promises";
import { ERROR_CODES } from "../../../src/errors.js";
import { openBundle } from "../../../src/format/bundle.js";
import { randomInputs } from "../../../src/runtime/model-inputs.js";
import { http, rawExchange, startServer, stopAll, type RawReply } from "./server-process.js";
import { binaryRequest, jsonRequest, SeededChoices, tinyBundles, type InferJson } from "./serve-fixtures.js";

const SEED = Number(process.env.CICADA_FUZZ_SEED ?? 20261213);
const REQUESTS = Number(process.env.CICADA_FUZZ_REQUESTS ?? 400);
const CHECK_EVERY = 25;
const MAX_BODY = 1_000_000;
const MODEL = "tiny-resnet";
const INFER = `/v2/models/${MODEL}/infer`;

const fx = await tinyBundles("fuzz", { [MODEL]: 2 });
after(async () => {
  await stopAll();
  await rm(fx.root, { recursive: true, force: true });
});
const { manifest } = await openBundle(fx.bundles[MODEL]!);
const feeds = randomInputs(manifest.inputs, 3);
const VALID = jsonRequest(feeds);
type Input = Record<string, unknown>;
const VALID_INPUT = (JSON.parse(VALID) as { inputs: Input[] }).inputs[0]!;
const DATA = VALID_INPUT.data as number[];
const BINARY = binaryRequest(feeds);

/**
 * One hostile request: raw bytes in parts; `framing`: the HTTP framing itself is broken (a close is
 * fine); `end`: half-close after the last part. Only the kinds in MAY_PASS can (rarely) be valid.
 */
interface Case {
  kind: string;
  parts: (string | Buffer)[];
  framing?: boolean;
  end?: boolean;
}

/** An infer body with the input's fields replaced; `raw` tokens replace "@RAW@" verbatim (1e400, …). */
function inferBody(input: Partial<Input>, extra: Record<string, unknown> = {}, raw?: string): string {
  const text = JSON.stringify({ ...extra, inputs: [{ ...VALID_INPUT, ...input }] });
  return raw === undefined ? text : text.replaceAll('"@RAW@"', raw);
}

const post = (body: string | Buffer, headers: Record<string, string | number> = {}) =>
  http("POST", INFER, body, headers);

/** `data` nested `levels` deeper than it is (as text: no recursion here either). */
const wrapped = (levels: number) =>
  inferBody({ data: "@RAW@" }, {}, `${"[".repeat(levels)}${JSON.stringify(DATA)}${"]".repeat(levels)}`);

const GENERATORS: Record<string, (r: SeededChoices) => Case> = {
  "json-malformed": (r) => {
    const at = r.int(VALID.length);
    const bytes = Buffer.from(VALID);
    const body = r.pick([
      () => bytes.subarray(0, at),
      () => Buffer.concat([bytes.subarray(0, at), r.bytes(1 + r.int(4)), bytes.subarray(at)]),
      () => Buffer.concat([bytes.subarray(0, at), bytes.subarray(at + 1 + r.int(20))]),
      () => Buffer.from(VALID.replace(/[{}]/g, () => (r.chance(0.3) ? "" : "}"))),
      () => Buffer.concat([Buffer.from([0xff, 0xfe]), bytes]),
    ])();
    return { kind: "json-malformed", parts: [post(body)] };
  },
  "json-types": (r) => {
    const field = r.pick([
      "name",
      "shape",
      "datatype",
      "data",
      "parameters",
      "inputs",
      "outputs",
      "id",
      "root",
    ]);
    const v = r.junk();
    if (field === "root") return { kind: "json-types", parts: [post(JSON.stringify(v))] };
    if (["inputs", "outputs", "id", "parameters"].includes(field) && r.chance(0.5))
      return { kind: "json-types", parts: [post(JSON.stringify({ inputs: [VALID_INPUT], [field]: v }))] };
    return { kind: "json-types", parts: [post(inferBody({ [field]: v }))] };
  },
  shape: (r) => {
    const shape = r.pick<unknown>([
      [1e9, 1e9],
      [-1, 3, 64, 64],
      [1.5, 3, 64, 64],
      [2 ** 53, 1],
      [],
      new Array(40).fill(1),
      [0, 3, 64, 64],
      [1, 3, 64, 64, 1],
      ["1", 3, 64, 64],
      [1, 3, 64, 32],
      [12288],
      [2 ** 28 + 1],
      [2 ** 31, 0],
      null,
      "1,3,64,64",
    ]);
    const data = r.pick<unknown>([DATA, [], [1, 2, 3]]);
    return { kind: "shape", parts: [post(inferBody({ shape, data }))] };
  },
  nesting: (r) => {
    const rows = (n: number) =>
      Array.from({ length: DATA.length / n }, (_, i) => DATA.slice(i * n, i * n + n));
    const body = r.pick([
      () => inferBody({ data: [[rows(64)]] }), // [1,1,192,64]: right count, wrong shape
      () => inferBody({ data: [rows(4096)] }), // [1,3,4096]
      () => inferBody({ data: [rows(64).slice(1)] }), // ragged, short
      () => wrapped(1 + r.int(3)),
      () => wrapped(r.pick([60, 70, 10_000, 100_000])),
      () => inferBody({}, { parameters: "@RAW@" }, `${'{"a":'.repeat(5000)}1${"}".repeat(5000)}`),
      () => inferBody({}, { id: "@RAW@" }, `${"[".repeat(20_000)}${"]".repeat(20_000)}`),
    ])();
    return { kind: "nesting", parts: [post(body)] };
  },
  values: (r) => {
    const token = r.pick(["1e400", "-1e400", "1e39", '"nan"', "null", "true", "{}", "[]", '"1"', "1e999999"]);
    const data: unknown[] = DATA.slice();
    for (let k = 0; k <= r.int(3); k++) data[r.int(data.length)] = "@RAW@";
    return { kind: "values", parts: [post(inferBody({ data }, {}, token))] };
  },
  dtype: (r) => {
    const datatype = r.pick<unknown>([
      "INT64",
      "FP16",
      "BF16",
      "BYTES",
      "BOOL",
      "UINT8",
      "FP64",
      "fp32",
      "",
      "FP32 ",
      32,
    ]);
    const data = r.chance(0.5) ? DATA : DATA.map((v) => (v > 0 ? 1 : 0));
    return { kind: "dtype", parts: [post(inferBody({ datatype, data }))] };
  },
  binary: (r) => {
    const { body, headerLength } = BINARY;
    const head = body.subarray(0, headerLength).toString();
    const bytes = body.subarray(headerLength);
    const lie = r.int(4);
    if (lie === 0) {
      const ihcl = r.pick<string | number>([
        -1,
        0,
        headerLength - 1,
        headerLength + 1,
        2 ** 60,
        "abc",
        "1e2",
        " ",
        body.length + 1,
      ]);
      return { kind: "binary", parts: [post(body, { "Inference-Header-Content-Length": ihcl })] };
    }
    if (lie === 1) {
      const size = r.pick<unknown>([bytes.length + 1, bytes.length - 4, 0, -4, "x", 1e20, 1.5]);
      const lied = Buffer.from(
        head.replace(/"binary_data_size":\d+/, `"binary_data_size":${JSON.stringify(size)}`),
      );
      return {
        kind: "binary",
        parts: [post(Buffer.concat([lied, bytes]), { "Inference-Header-Content-Length": lied.length })],
      };
    }
    if (lie === 2) {
      const cut = Buffer.concat([Buffer.from(head), bytes.subarray(0, r.int(bytes.length))]);
      return { kind: "binary", parts: [post(cut, { "Inference-Header-Content-Length": headerLength })] };
    }
    return {
      kind: "binary",
      parts: [
        post(Buffer.concat([Buffer.from(head), bytes, r.bytes(1 + r.int(64))]), {
          "Inference-Header-Content-Length": headerLength,
        }),
      ],
    };
  },
  truncated: (r) => {
    const full = post(r.chance(0.5) ? VALID : BINARY.body);
    const cut = full.subarray(0, r.int(full.length));
    return { kind: "truncated", parts: [cut], framing: true, end: r.chance(0.9) };
  },
  "content-length": (r) => {
    const body = Buffer.from(VALID);
    const headers = r.pick<Record<string, string | number>>([
      { "Content-Length": "abc" },
      { "Content-Length": -1 },
      { "Content-Length": "1e3" },
      { "Content-Length": "" },
      { "Content-Length": `${body.length}, ${body.length + 1}` },
      { "Content-Length": body.length, "Transfer-Encoding": "chunked" },
      { "Content-Length": 2 ** 40 },
      { "Content-Length": body.length - 10 },
    ]);
    return {
      kind: "content-length",
      parts: [http("POST", INFER, body, headers, false)],
      framing: true,
      end: true,
    };
  },
  method: (r) => {
    const method = r.pick([
      "TRACE",
      "TRACK",
      "PATCH",
      "PUT",
      "DELETE",
      "OPTIONS",
      "FOO",
      "get",
      "CONNECT",
      "PROPFIND",
      "X".repeat(300),
    ]);
    const path = r.pick([INFER, "/v2", "/v2/health/live", `/v2/models/${MODEL}`, "/nowhere", "*"]);
    return {
      kind: "method",
      parts: [http(method, path, r.chance(0.3) ? VALID : "")],
      framing: method.length > 100,
    };
  },
  path: (r) => {
    const path = r.pick([
      "/v2/models/..%2F..%2Fetc/infer",
      "/v2/models/../../etc/passwd",
      "/v2/models/%2e%2e/infer",
      `/v2/models/${MODEL}%00/infer`,
      "/v2/repository/models/..%2F..%2Fetc%2Fpasswd/load",
      "/v2/models/%E0%A4%A/infer",
      `/v2/models/${MODEL}/versions/..%2F1/infer`,
      `/v2/models/${"a".repeat(8000)}/infer`,
      `/${r.bytes(20).toString("hex")}`,
      `/v2/models/${MODEL}/infer/extra`,
      "//v2//models",
    ]);
    return { kind: "path", parts: [http(r.pick(["GET", "POST"]), path, r.chance(0.5) ? VALID : "")] };
  },
  oversized: (r) => {
    if (r.chance(0.5)) {
      return {
        kind: "oversized",
        parts: [http("POST", INFER, "", { "Content-Length": 2_000_000 }, false), r.bytes(1000)],
        framing: true,
        end: true,
      };
    }
    const chunk = Buffer.alloc(64 * 1024, 0x20);
    const framed = Buffer.concat([
      Buffer.from(`${chunk.length.toString(16)}\r\n`),
      chunk,
      Buffer.from("\r\n"),
    ]);
    const head = http("POST", INFER, "", { "Transfer-Encoding": "chunked" }, false);
    return { kind: "oversized", parts: [head, ...new Array<Buffer>(20).fill(framed)], framing: true };
  },
  random: (r) => {
    const mode = r.int(3);
    if (mode === 0) return { kind: "random", parts: [r.bytes(1 + r.int(3000))], framing: true, end: true };
    if (mode === 1) {
      return {
        kind: "random",
        parts: [
          Buffer.concat([
            Buffer.from(`POST ${INFER} HTTP/1.1\r\n`),
            r.bytes(1 + r.int(500)),
            Buffer.from("\r\n\r\n"),
          ]),
        ],
        framing: true,
        end: true,
      };
    }
    return { kind: "random", parts: [post(r.bytes(1 + r.int(5000)))] };
  },
  repository: (r) => {
    const path = r.pick([
      "/v2/repository/index",
      `/v2/repository/models/${MODEL}/load`,
      "/v2/repository/models/nope/unload",
    ]);
    const body = r.pick([
      () => JSON.stringify(r.junk()),
      () => JSON.stringify({ parameters: { strategy: r.junk(0) } }),
      () => r.bytes(r.int(200)),
    ])();
    return { kind: "repository", parts: [http("POST", path, body)] };
  },
  headers: (r) => {
    const headers = r.pick<Record<string, string | number>>([
      { "X-Big": "x".repeat(20_000) },
      Object.fromEntries(Array.from({ length: 3000 }, (_, i) => [`X-${i}`, "y"])),
      { "Content-Type": r.bytes(10).toString("hex") },
      { Expect: "teapot" },
      { "Inference-Header-Content-Length": VALID.length },
      { "Transfer-Encoding": "gzip" },
    ]);
    return { kind: "headers", parts: [post(VALID, headers)], framing: true, end: true };
  },
};

const CODES = new Set(Object.keys(ERROR_CODES));
const MAY_PASS = new Set(["json-malformed", "json-types", "repository", "headers"]);

/** Checks one reply; returns its status label for the summary. */
function judge(c: Case, reply: RawReply, what: string): string {
  assert.ok(!reply.timedOut, `${what}: no answer and no close within the limit (a hang)`);
  if (reply.status === undefined) {
    assert.ok(c.framing, `${what}: the connection closed without a response`);
    return "closed";
  }
  const text = reply.body.toString();
  assert.ok(
    (reply.status >= 200 && reply.status < 300) || reply.status >= 400,
    `${what}: status ${reply.status}`,
  );
  let body: { error?: unknown; code?: unknown };
  try {
    body = JSON.parse(text) as typeof body;
  } catch {
    assert.fail(`${what}: status ${reply.status} with a body that is not JSON: ${text.slice(0, 200)}`);
  }
  assert.ok(reply.status >= 400 || MAY_PASS.has(c.kind), `${what}: accepted (${reply.status})`);
  if (reply.status >= 400) {
    assert.equal(typeof body.error, "string", `${what}: ${text.slice(0, 300)}`);
    assert.ok(
      CODES.has(body.code as string),
      `${what}: code ${String(body.code)} is not in the table: ${text.slice(0, 300)}`,
    );
    assert.equal(reply.headers["x-cicada-error"], body.code, what);
  }
  return String(reply.status);
}

test(`HTTP fuzz: ${REQUESTS} hostile requests (seed ${SEED}); the server stays live, coded and correct`, async () => {
  const server = await startServer([
    fx.bundles[MODEL]!,
    "--max-body-bytes",
    String(MAX_BODY),
    "--header-timeout-ms",
    "1000",
    "--body-timeout-ms",
    "1000",
    "--min-body-rate",
    "65536",
    "--cache-root",
    fx.cache,
  ]);
  const validInfer = async (): Promise<number[]> => {
    const res = await fetch(`${server.base}${INFER}`, { method: "POST", body: VALID });
    const text = await res.text();
    assert.equal(res.status, 200, text);
    return (JSON.parse(text) as InferJson).outputs[0]!.data!;
  };
  const reference = await validInfer();
  const rng = new SeededChoices(SEED, "http-fuzz");
  const kinds = Object.keys(GENERATORS);
  const byStatus = new Map<string, number>();
  const started = Date.now();
  let checks = 0;
  for (let i = 0; i < REQUESTS; i++) {
    const kind = rng.pick(kinds);
    const c = GENERATORS[kind]!(rng);
    const reply = await rawExchange(server.port, c.parts, { end: c.end ?? false, timeoutMs: 8000 });
    const what = `request ${i} (${c.kind}, seed ${SEED})`;
    const label = judge(c, reply, what);
    byStatus.set(label, (byStatus.get(label) ?? 0) + 1);
    assert.ok(server.child.exitCode === null && server.child.signalCode === null, `${what}: the server died`);
    if ((i + 1) % CHECK_EVERY === 0 || i === REQUESTS - 1) {
      const out = await validInfer();
      checks++;
      const diff = Math.max(...out.map((v, k) => Math.abs(v - reference[k]!)));
      assert.ok(diff < 1e-5, `after ${what}: a valid request's output moved by ${diff}`);
    }
  }
  assert.doesNotMatch(server.stderr(), /internal error|TypeError|RangeError/, "an uncoded failure");
  const summary = [...byStatus].sort().map(([s, n]) => `${s}×${n}`);
  const seconds = ((Date.now() - started) / 1000).toFixed(1);
  console.log(
    `http-fuzz: seed ${SEED}, ${REQUESTS} requests + ${checks} valid checks in ${seconds} s: ${summary.join(" ")}`,
  );
  assert.equal(await server.stop(), 0);
});
