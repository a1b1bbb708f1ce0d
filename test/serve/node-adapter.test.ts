// The node:http adapter on loopback with plain handlers (the adapter takes any Request → Response
// function): bodies reach the handler as streams, an unread small body keeps the connection alive, and
// close() lets in-flight requests finish within its grace period, then cuts the rest.
import { test } from "node:test";
import assert from "node:assert/strict";
import { Agent, request } from "node:http";
import { isCicadaError } from "../../src/errors.js";
import { listen } from "../../src/serve/node-adapter.js";

function post(
  port: number,
  body: string,
  agent: Agent,
): Promise<{ status: number; text: string; reused: boolean }> {
  return new Promise((resolve, reject) => {
    const req = request({ port, host: "127.0.0.1", path: "/x?q=1", method: "POST", agent }, (res) => {
      let text = "";
      res.on("data", (d: Buffer) => (text += d.toString()));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, text, reused: req.reusedSocket }));
    });
    req.on("error", reject);
    req.end(body);
  });
}

test("requests arrive as WHATWG Requests; an unread small body keeps the connection alive", async () => {
  const seen: string[] = [];
  const server = await listen(
    async (r) => {
      seen.push(`${r.method} ${new URL(r.url).pathname}${new URL(r.url).search}`);
      if (r.headers.get("x-read") === null && seen.length === 1)
        return new Response("refused", { status: 404 });
      return new Response(`echo ${await r.text()}`);
    },
    { host: "127.0.0.1", port: 0 },
  );
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  try {
    const first = await post(server.port, "a small body the handler never reads", agent);
    assert.deepEqual([first.status, first.text], [404, "refused"]);
    const second = await post(server.port, "hello", agent);
    assert.deepEqual([second.status, second.text, second.reused], [200, "echo hello", true]);
    assert.deepEqual(seen, ["POST /x?q=1", "POST /x?q=1"]);
  } finally {
    agent.destroy();
    await server.close(1000);
  }
});

test("close() waits for the request in flight, then stops; a request past the grace period is cut", async () => {
  let release = () => {};
  const held = new Promise<void>((r) => (release = r));
  const server = await listen(
    async (r) => {
      if ((await r.text()) === "slow") await held;
      return new Response("done");
    },
    { host: "127.0.0.1", port: 0 },
  );
  const agent = new Agent();
  const inFlight = post(server.port, "slow", agent);
  while (server.inFlight === 0) await new Promise((r) => setTimeout(r, 5));
  const closing = server.close(10_000);
  release();
  assert.deepEqual((await inFlight).text, "done");
  assert.equal(await closing, true);

  const stuck = await listen(() => new Promise<Response>(() => {}), { host: "127.0.0.1", port: 0 });
  const never = post(stuck.port, "x", agent);
  while (stuck.inFlight === 0) await new Promise((r) => setTimeout(r, 5));
  assert.equal(await stuck.close(50), false);
  await assert.rejects(never, /socket hang up|ECONNRESET/);
  agent.destroy();
});

test("a port in use is refused with E_USAGE", async () => {
  const first = await listen(() => Promise.resolve(new Response("")), { host: "127.0.0.1", port: 0 });
  try {
    await assert.rejects(
      listen(() => Promise.resolve(new Response("")), { host: "127.0.0.1", port: first.port }),
      (e) => isCicadaError(e, "E_USAGE") && /address is in use/.test(e.message),
    );
  } finally {
    await first.close(100);
  }
});
