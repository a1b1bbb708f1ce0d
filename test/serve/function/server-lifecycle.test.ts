// The life of a `cicada serve` process: one listening line on stdout, refusal at start of what cannot be
// served (duplicate model names, bad flags, a port in use), and graceful shutdown on SIGTERM: no new
// connections, the request in flight finishes with the right answer, the models are disposed, exit 0.
import { after, test } from "node:test";
import assert from "node:assert/strict";
import { cp, rm } from "node:fs/promises";
import { connect } from "node:net";
import { join } from "node:path";
import { openBundle } from "../../../src/format/bundle.js";
import { randomInputs } from "../../../src/runtime/model-inputs.js";
import { runEager } from "../../../src/runtime/reference-runner.js";
import { cicada } from "../../support/cli.js";
import { openRequest, startServer, stopAll, until } from "./server-process.js";
import { assertMatchesEager, jsonRequest, tinyBundles, type InferJson } from "./serve-fixtures.js";

const fx = await tinyBundles("life", { "tiny-llama": 2 });
const bundle = fx.bundles["tiny-llama"]!;
after(async () => {
  await stopAll();
  await rm(fx.root, { recursive: true, force: true });
});

function refusesConnections(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, "127.0.0.1");
    socket.once("connect", () => {
      socket.destroy();
      resolve(false);
    });
    socket.once("error", () => resolve(true));
  });
}

test("SIGTERM: stop accepting, finish the request in flight, dispose, exit 0", async () => {
  const server = await startServer([bundle, "--cache-root", fx.cache]);
  assert.ok(server.port > 0);
  const { manifest } = await openBundle(bundle);
  const feeds = randomInputs(manifest.inputs, 8);
  const eager = (await runEager(manifest.model.source, feeds)).outputs;
  const body = Buffer.from(jsonRequest(feeds));
  const inFlight = openRequest(server.base, `/v2/models/${manifest.model.name}/infer`, {
    "content-type": "application/json",
    "content-length": body.length,
  });
  inFlight.req.write(body.subarray(0, 100));
  await until("the request to be receiving its body", async () => {
    const r = (await (await fetch(`${server.base}/v2/cicada/instance`)).json()) as { receiving: number };
    return r.receiving === 1;
  });
  server.child.kill("SIGTERM");
  await until("the listener to close", () => refusesConnections(server.port));
  inFlight.req.end(body.subarray(100));
  const res = await inFlight.response;
  assert.equal(res.status, 200, res.body.toString());
  assert.equal(res.headers.connection, "close");
  const out = JSON.parse(res.body.toString()) as InferJson;
  assert.equal(out.parameters.cicada_cold, true);
  assertMatchesEager(out.outputs[0]!.data!, eager[out.outputs[0]!.name]!, "the in-flight request");
  assert.equal(await server.exited, 0);
  assert.match(server.stderr(), /SIGTERM: draining 1 in-flight request/);
  assert.match(server.stderr(), /stopped/);
});

test("the listening line is the only stdout; what cannot be served is refused at start", async () => {
  const copy = join(fx.root, "copy.bundle");
  await cp(bundle, copy, { recursive: true });
  let r = await cicada(["serve", bundle, copy, "--port", "0", "--cache-root", fx.cache]);
  assert.equal(r.code, 2, r.stderr);
  assert.match(r.stderr, /E_USAGE: .*both hold model 'tiny-llama': served model names must be unique/);
  r = await cicada(["serve", join(fx.root, "missing"), "--port", "0"]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /E_BUNDLE_MANIFEST: .*missing/);
  r = await cicada(["serve", bundle, "--max-queue", "-1"]);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /--max-queue must be an integer >= 0, found '-1'/);
  r = await cicada(["serve", bundle, "--strategy", "fast"]);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /--strategy must be one of/);

  const server = await startServer([bundle, "--cache-root", fx.cache]);
  r = await cicada(["serve", bundle, "--port", String(server.port), "--cache-root", fx.cache]);
  assert.equal(r.code, 2, r.stderr);
  assert.match(
    r.stderr,
    new RegExp(`cannot listen on 127\\.0\\.0\\.1:${server.port}: the address is in use`),
  );
  assert.equal(r.stdout, "", "nothing on stdout when it never listened");
  assert.equal(await server.stop("SIGINT"), 0);
  assert.equal(
    server.stdout(),
    `{"event":"listening","host":"127.0.0.1","port":${server.port},"pid":${server.pid}}\n`,
  );
  assert.equal(server.pid, server.child.pid);
});
