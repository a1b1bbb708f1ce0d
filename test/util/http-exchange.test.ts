// The one HTTP exchange of the platform: a request reset on a reused keep-alive connection (the server
// closing it as idle just then) is sent again on a new one; any other failure is not retried.
import { test } from "node:test";
import assert from "node:assert/strict";
import { Agent, createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import type { Socket } from "node:net";
import { exchange } from "../../src/util/http-exchange.js";

/** A server that resets the connection at the `resetAt`-th request on any one connection. */
async function server(resetAt: number): Promise<{ url: string; server: Server; requests: () => number }> {
  const perSocket = new WeakMap<Socket, number>();
  let requests = 0;
  const s = createServer((req, res) => {
    const n = (perSocket.get(req.socket) ?? 0) + 1;
    perSocket.set(req.socket, n);
    requests++;
    if (n === resetAt) {
      req.socket.resetAndDestroy();
      return;
    }
    req.resume();
    req.on("end", () => res.end(`ok ${n}`));
  });
  await new Promise<void>((r) => s.listen(0, "127.0.0.1", r));
  return {
    url: `http://127.0.0.1:${(s.address() as AddressInfo).port}/`,
    server: s,
    requests: () => requests,
  };
}

test("a reset on a reused connection is sent again on a new one", async () => {
  const { url, server: s, requests } = await server(2);
  const agent = new Agent({ keepAlive: true });
  try {
    const first = await exchange(url, { method: "POST", body: new Uint8Array([1]), agent });
    assert.equal(first.body.toString(), "ok 1");
    const second = await exchange(url, { method: "POST", body: new Uint8Array([2]), agent });
    assert.equal(second.status, 200);
    assert.equal(second.body.toString(), "ok 1", "answered as the first request of a new connection");
    assert.equal(requests(), 3);
  } finally {
    agent.destroy();
    s.close();
  }
});

test("a reset on a fresh connection is the caller's to handle", async () => {
  const { url, server: s, requests } = await server(1);
  const agent = new Agent({ keepAlive: true });
  try {
    await assert.rejects(
      exchange(url, { method: "POST", agent }),
      (e: NodeJS.ErrnoException) => e.code === "ECONNRESET",
    );
    assert.equal(requests(), 1, "not retried");
  } finally {
    agent.destroy();
    s.close();
  }
});
