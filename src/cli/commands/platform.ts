// `cicada platform`: a gateway on loopback in front of a pool of `cicada serve` instances, run by a policy
// (stateless, keep-alive, preload, shared-weights) with memory limits, until SIGTERM or SIGINT. When it
// listens it prints one JSON line on stdout ({"event":"listening",host,port,pid}), like an instance;
// everything else goes to stderr. Also the flag and model parsing `cicada replay` shares.
import type { Command } from "commander";
import { existsSync, statSync } from "node:fs";
import { join, resolve } from "node:path";
import { ensureZooBundle } from "../../bench/model-cache.js";
import { CicadaError } from "../../errors.js";
import { openBundle } from "../../format/bundle.js";
import { MANIFEST_FILE } from "../../format/manifest.js";
import { STRATEGIES } from "../../config.js";
import { listeningLine } from "../../serve/function/listening-line.js";
import { gatewayBudget } from "../../serve/platform/gateway.js";
import { startPlatform } from "../../serve/platform/platform.js";
import { POLICIES } from "../../workload/replay-runs.js";
import { RECEIVING_BODIES } from "../../serve/function/request-body.js";
import { findZooModel } from "../../zoo/registry.js";
import { choiceFlag, intFlag, positiveFlag } from "../flags.js";

/** Splits a comma-separated flag value; E_USAGE when it names nothing or an item twice. */
export function listOf(flag: string, value: string): string[] {
  const items = value
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean);
  if (!items.length)
    throw new CicadaError("E_USAGE", `${flag} must name at least one item, found '${value}'`);
  const twice = items.find((x, i) => items.indexOf(x) !== i);
  if (twice !== undefined) throw new CicadaError("E_USAGE", `${flag} names '${twice}' twice`);
  return items;
}

/** A megabyte flag as bytes (undefined when not given). */
export function mbFlag(flag: string, value: string | undefined): number | undefined {
  return value === undefined ? undefined : Math.round(positiveFlag(flag, value) * 2 ** 20);
}

/**
 * The bundles of --models: bundle directories as given (checked now), zoo names generated and imported
 * into the cache on first use (with progress on stderr). Returns model name and bundle directory.
 */
export async function resolveModels(value: string | undefined, say: (line: string) => void) {
  if (value === undefined) throw new CicadaError("E_USAGE", "--models <list> is required");
  const out: { name: string; bundleDir: string }[] = [];
  for (const spec of listOf("--models", value)) {
    if (existsSync(spec)) {
      if (!statSync(spec).isDirectory() || !existsSync(join(spec, MANIFEST_FILE))) {
        throw new CicadaError("E_USAGE", `--models ${spec} is not a bundle directory (no ${MANIFEST_FILE})`);
      }
      const { manifest } = await openBundle(spec);
      out.push({ name: manifest.model.name, bundleDir: resolve(spec) });
      continue;
    }
    if (spec.includes("/") || spec.startsWith("."))
      throw new CicadaError("E_USAGE", `--models ${spec} does not exist`);
    findZooModel(spec);
    let phase = "";
    const { bundleDir } = await ensureZooBundle(spec, {
      onProgress: (p) => {
        if (p !== phase) say(`${spec}: ${(phase = p)}`);
      },
    });
    const { manifest } = await openBundle(bundleDir);
    out.push({ name: manifest.model.name, bundleDir });
  }
  const names = out.map((m) => m.name);
  const twice = names.find((n, i) => names.indexOf(n) !== i);
  if (twice) throw new CicadaError("E_USAGE", `--models names the model '${twice}' twice`);
  return out;
}

/** The flags `cicada platform` and `cicada replay` share, with their defaults. */
export interface PlatformFlags {
  models?: string;
  instances: string;
  ttlS: string;
  hostMemoryMb?: string;
  instanceMemoryMb?: string;
  maxQueue: string;
  timeoutMs: string;
  workers?: string;
  cacheRoot?: string;
}

/** Adds the shared flags to `command`. */
export function platformOptions(command: Command): Command {
  return command
    .option("--models <list>", "bundle directories or zoo model names, comma-separated (required)")
    .option("--instances <n>", "instance processes in the pool", "2")
    .option("--ttl-s <s>", "keep-alive, preload, shared-weights: unload a model idle this long (s)", "600")
    .option(
      "--host-memory-mb <m>",
      "limit on the instances' memory (Σ PSS): evict idle models LRU, else queue or refuse",
    )
    .option("--instance-memory-mb <m>", "limit on one instance's memory (PSS): evict its models, else refuse")
    .option("--max-queue <n>", "requests waiting for an instance at the gateway (429 past it)", "256")
    .option("--timeout-ms <n>", "request received → answered at the gateway (504 past it)", "60000")
    .option("--workers <n>", "stage worker threads per instance (default: cicada serve's)")
    .option(
      "--cache-root <dir>",
      "the instances' cache of derived forms (shared-weights uses tmpfs instead)",
    );
}

/** The shared flags, checked. */
export function parsePlatformFlags(f: PlatformFlags) {
  const host = mbFlag("--host-memory-mb", f.hostMemoryMb);
  const instance = mbFlag("--instance-memory-mb", f.instanceMemoryMb);
  return {
    instances: intFlag("--instances", f.instances, 1, 64),
    ttlS: positiveFlag("--ttl-s", f.ttlS),
    ...(host !== undefined ? { hostMemoryBytes: host } : {}),
    ...(instance !== undefined ? { instanceMemoryBytes: instance } : {}),
    maxQueue: intFlag("--max-queue", f.maxQueue, 0),
    timeoutMs: intFlag("--timeout-ms", f.timeoutMs, 1),
    ...(f.workers !== undefined ? { workers: intFlag("--workers", f.workers, 1, 64) } : {}),
    ...(f.cacheRoot ? { cacheRoot: f.cacheRoot } : {}),
  };
}

interface Flags extends PlatformFlags {
  policy: string;
  strategy: string;
  host: string;
  port: string;
  maxBodyBytes: string;
  maxReceivingBytes?: string;
}

const say = (line: string) => process.stderr.write(`cicada platform: ${line}\n`);

/** Registers `cicada platform`. */
export function registerPlatform(program: Command): void {
  platformOptions(
    program
      .command("platform")
      .description(
        "a gateway (Open Inference Protocol) in front of a pool of cicada serve instances, run by a policy",
      )
      .option("--policy <p>", `${POLICIES.join(", ")}`, "keep-alive")
      .option("--strategy <s>", `cold-start strategy of the instances: ${STRATEGIES.join(", ")}`, "cicada")
      .option("--host <addr>", "address of the gateway (loopback by default)", "127.0.0.1")
      .option("--port <n>", "port of the gateway (0: an ephemeral port, printed on stdout)", "8080")
      .option("--max-body-bytes <n>", "largest request body (413 past it)", String(64 << 20))
      .option(
        "--max-receiving-bytes <n>",
        `bytes all request bodies still arriving at the gateway may hold together (503 past it; default ${RECEIVING_BODIES} × --max-body-bytes)`,
      ),
  ).action(async (f: Flags) => {
    const common = parsePlatformFlags(f);
    const policy = choiceFlag("--policy", f.policy, POLICIES);
    const strategy = choiceFlag("--strategy", f.strategy, STRATEGIES);
    const port = intFlag("--port", f.port, 0, 65535);
    const maxBodyBytes = intFlag("--max-body-bytes", f.maxBodyBytes, 1);
    const maxReceivingBytes =
      f.maxReceivingBytes === undefined
        ? undefined
        : intFlag("--max-receiving-bytes", f.maxReceivingBytes, 1);
    gatewayBudget(maxBodyBytes, maxReceivingBytes); // E_USAGE before any model is generated or opened
    const models = await resolveModels(f.models, say);
    const platform = await startPlatform({
      ...common,
      bundles: models.map((m) => m.bundleDir),
      policy,
      strategy,
      policyConfig: { ttlMs: common.ttlS * 1000 },
      maxBodyBytes,
      ...(maxReceivingBytes !== undefined ? { maxReceivingBytes } : {}),
      host: f.host,
      port,
      log: say,
    });
    process.stdout.write(listeningLine(platform.host, platform.port));
    say(
      `${policy} x ${strategy}: ${common.instances} instance(s) serving ${[...platform.models.keys()].join(", ")} at ${platform.url}`,
    );
    await new Promise<void>((done) => {
      const stop = (signal: string) => {
        say(`${signal}: stopping the gateway and the instances`);
        platform.close().then(done, (e: unknown) => {
          say(`closing failed: ${(e as Error).message}`);
          done();
        });
      };
      process.once("SIGTERM", () => stop("SIGTERM"));
      process.once("SIGINT", () => stop("SIGINT"));
    });
    say("stopped");
  });
}
