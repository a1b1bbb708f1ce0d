// A platform: a gateway on loopback in front of a pool of `cicada serve` instances, run by one policy over
// one strategy, with a host and a per-instance memory limit. `cicada platform` serves one until it is
// stopped; `cicada replay` starts one per policy × strategy and drives it with a trace.
import { existsSync } from "node:fs";
import { mkdtemp, readdir, rm, stat } from "node:fs/promises";
import { join } from "node:path";
import { CicadaError } from "../../errors.js";
import { openBundle } from "../../format/bundle.js";
import type { Manifest } from "../../format/manifest.js";
import type { StrategyName } from "../../config.js";
import { Dispatcher } from "./gateway-dispatch.js";
import { createGateway, gatewayBudget } from "./gateway.js";
import { InstancePool } from "./instance-pool.js";
import { httpOrigin } from "../function/listening-line.js";
import { listen, type NodeServer } from "../function/node-adapter.js";
import { createPolicy, DEFAULT_POLICY_CONFIG, type PolicyConfig } from "./policies.js";
import type { PolicyName } from "../../workload/replay-runs.js";
import { MemoryLedger } from "./pool-memory.js";

/** Options of {@link startPlatform}; the CLI documents each flag. */
export interface PlatformOptions {
  bundles: string[];
  instances: number;
  policy: PolicyName;
  strategy: StrategyName;
  policyConfig?: Partial<PolicyConfig>;
  hostMemoryBytes?: number;
  instanceMemoryBytes?: number;
  maxQueue: number;
  timeoutMs: number;
  maxBodyBytes: number;
  /**
   * Bytes all request bodies still arriving at the gateway may hold together (--max-receiving-bytes: 503
   * E_SERVER_BUSY past it; at least `maxBodyBytes`). Default: RECEIVING_BODIES (4) × `maxBodyBytes`.
   */
  maxReceivingBytes?: number;
  /** Stage worker threads per instance. */
  workers?: number;
  /** Cache root of the instances (not shared-weights, whose cache is on tmpfs). */
  cacheRoot?: string;
  host?: string;
  port?: number;
  log?: (line: string) => void;
}

/** A running platform. */
export interface Platform {
  readonly url: string;
  /** The address the gateway listens on (as its socket reports it) and its port. */
  readonly host: string;
  readonly port: number;
  readonly pool: InstancePool;
  readonly dispatcher: Dispatcher;
  readonly ledger: MemoryLedger;
  readonly models: ReadonlyMap<string, Manifest>;
  /** Where the instances' cache of derived forms is (on tmpfs for shared-weights). */
  readonly cacheRoot: string | undefined;
  close(): Promise<void>;
}

/** Bytes of the regular files under `dir`. */
async function treeBytes(dir: string): Promise<number> {
  let total = 0;
  for (const e of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (e.isFile()) total += (await stat(join(e.parentPath, e.name))).size;
  }
  return total;
}

/** The manifests of `bundles` by model name; a name served twice is refused. */
async function manifestsOf(bundles: string[]): Promise<Map<string, Manifest>> {
  const models = new Map<string, Manifest>();
  for (const dir of bundles) {
    const { manifest } = await openBundle(dir);
    if (models.has(manifest.model.name)) {
      throw new CicadaError("E_USAGE", `two bundles serve the model name '${manifest.model.name}' (${dir})`);
    }
    models.set(manifest.model.name, manifest);
  }
  return models;
}

/** Starts the pool, then the gateway; resolves once the gateway listens. */
export async function startPlatform(o: PlatformOptions): Promise<Platform> {
  gatewayBudget(o.maxBodyBytes, o.maxReceivingBytes); // E_USAGE now, before any instance starts
  const models = await manifestsOf(o.bundles);
  const config = { ...DEFAULT_POLICY_CONFIG, ...o.policyConfig };
  const policy = createPolicy(o.policy, o.strategy, config);
  let shm: string | undefined;
  if (policy.sharedWeights) {
    if (!existsSync("/dev/shm"))
      throw new CicadaError("E_USAGE", "--policy shared-weights needs a tmpfs at /dev/shm");
    shm = await mkdtemp("/dev/shm/cicada-shared-");
  }
  const cacheRoot = shm ?? o.cacheRoot;
  const weightBytes = (name: string) =>
    models.get(name)?.stages.reduce((sum, s) => sum + s.weights.length, 0) ?? 0;
  const ledger = new MemoryLedger(
    {
      ...(o.hostMemoryBytes !== undefined ? { hostBytes: o.hostMemoryBytes } : {}),
      ...(o.instanceMemoryBytes !== undefined ? { instanceBytes: o.instanceMemoryBytes } : {}),
    },
    // Until a load was seen: weights plus as much again (onnxruntime's copies, activations, arenas).
    (name) => 2 * weightBytes(name),
  );
  let pool: InstancePool | undefined;
  let dispatcher: Dispatcher | undefined;
  let server: NodeServer | undefined;
  const close = async () => {
    dispatcher?.close();
    await server?.close(Math.min(o.timeoutMs, 30_000));
    await pool?.close();
    if (shm) await rm(shm, { recursive: true, force: true });
  };
  try {
    pool = await InstancePool.start({
      bundles: o.bundles,
      instances: o.instances,
      strategy: o.strategy,
      stateless: policy.statelessInstances,
      ...(cacheRoot ? { cacheRoot } : {}),
      ...(o.workers ? { workers: o.workers } : {}),
      serveArgs: [
        "--timeout-ms",
        String(o.timeoutMs),
        "--max-body-bytes",
        String(o.maxBodyBytes),
        "--max-queue",
        "4",
      ],
      ledger,
      ...(o.log ? { log: o.log } : {}),
    });
    if (shm) ledger.pinnedBytes = await treeBytes(shm);
    dispatcher = new Dispatcher(pool, policy, ledger, config, {
      maxQueue: o.maxQueue,
      timeoutMs: o.timeoutMs,
      ...(o.log ? { log: o.log } : {}),
    });
    const handle = createGateway({
      pool,
      dispatcher,
      ledger,
      models,
      maxBodyBytes: o.maxBodyBytes,
      ...(o.maxReceivingBytes !== undefined ? { maxReceivingBytes: o.maxReceivingBytes } : {}),
      describe: {
        policy: o.policy,
        strategy: o.strategy,
        policyConfig: config,
        cacheRoot: cacheRoot ?? null,
        limits: ledger.limits,
      },
    });
    server = await listen(handle, {
      host: o.host ?? "127.0.0.1",
      port: o.port ?? 0,
      ...(o.log ? { log: o.log } : {}),
    });
  } catch (e) {
    await close();
    throw e;
  }
  const url = httpOrigin(server.host, server.port);
  return { url, host: server.host, port: server.port, pool, dispatcher, ledger, models, cacheRoot, close };
}
