// What the platform tests share: tiny zoo bundles generated into a temp dir, a platform started on them
// with small bounds, and polling for a condition with a deadline (tests never wait unbounded).
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { openBundle } from "../../../src/format/bundle.js";
import { importModel } from "../../../src/importer/import-model.js";
import { startPlatform, type Platform, type PlatformOptions } from "../../../src/serve/platform/platform.js";
import { binaryInferRequest } from "../../../src/serve/platform/replay-inputs.js";
import { generateZooModel } from "../../../src/zoo/registry.js";

/** A temp root with tiny-resnet and tiny-opt bundles; `cleanup` removes it. */
export async function tinyBundles(prefix: string) {
  const root = await mkdtemp(join(tmpdir(), prefix));
  const bundle = async (name: string, stages: number) => {
    const model = await generateZooModel(name, join(root, name), { seed: 2 });
    await importModel(model.modelPath, join(root, `${name}.bundle`), { stages });
    return join(root, `${name}.bundle`);
  };
  const resnet = await bundle("tiny-resnet", 2);
  const opt = await bundle("tiny-opt", 2);
  return { root, resnet, opt, cleanup: () => rm(root, { recursive: true, force: true }) };
}

/** Starts a platform on `bundles` with small bounds (override any option). */
export function testPlatform(
  root: string,
  bundles: string[],
  options: Partial<PlatformOptions> = {},
): Promise<Platform> {
  return startPlatform({
    bundles,
    instances: 1,
    policy: "keep-alive",
    strategy: "cicada",
    maxQueue: 8,
    timeoutMs: 20_000,
    maxBodyBytes: 16 << 20,
    workers: 1,
    cacheRoot: join(root, "cache"),
    ...options,
  });
}

/** POSTs the binary example request of the bundle's model to `url`'s infer endpoint. */
export async function infer(url: string, bundleDir: string, seed = 0): Promise<Response> {
  const { manifest } = await openBundle(bundleDir);
  const { body, headers } = binaryInferRequest(manifest, seed);
  return fetch(`${url}/v2/models/${manifest.model.name}/infer`, {
    method: "POST",
    headers,
    body,
    signal: AbortSignal.timeout(60_000),
  });
}

/** Resolves once `condition()` holds (polled every `everyMs`); rejects after `timeoutMs` naming `what`. */
export async function waitFor(
  what: string,
  condition: () => boolean,
  timeoutMs = 20_000,
  everyMs = 20,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/** True if process `pid` exists. */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
