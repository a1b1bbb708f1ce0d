// One serverless function instance, whatever fronts it (the Node http server of `cicada serve`, or AWS
// Lambda): the runtime started once (worker threads with onnxruntime initialised), the bundles opened and
// prepared for the strategy, the protocol core over them. All of it happens before the first request, so
// that no request's clock includes it; a request then pays only for the model's own cold start. (The
// platform's pool holds each `cicada serve` process running one of these as a PoolInstance.)
import { createRuntime, type Runtime } from "../../runtime/runtime.js";
import { DEFAULTS, type StrategyName } from "../../config.js";
import { createInferenceServer, type InferenceServer } from "./inference-protocol.js";
import { ModelHost } from "./model-host.js";
import { RECEIVING_BODIES, receivingBudgetBytes } from "./request-body.js";

/** The configuration of an instance; see {@link INSTANCE_DEFAULTS}. */
export interface InstanceOptions {
  /** Bundle directories; each serves the model its manifest names. */
  bundles: string[];
  strategy: StrategyName;
  /** Load the model for every request and dispose it after answering (the paper's setting). */
  stateless: boolean;
  /** Stage worker threads of the runtime. */
  workers: number;
  maxBodyBytes: number;
  /**
   * Bytes that request bodies still being received may hold together, server-wide (503 E_SERVER_BUSY past
   * it); at least `maxBodyBytes`. Default: {@link RECEIVING_BODIES} × `maxBodyBytes`.
   */
  maxReceivingBytes?: number;
  /** Requests per model admitted (body received) besides the one running; one more is refused with 429. */
  maxQueue: number;
  /** Per-request limit (504 past it). */
  timeoutMs: number;
  /** Cache of derived forms (default: $CICADA_CACHE or ~/.cache/cicada). */
  cacheRoot?: string;
  /** Every load's memory budget (LoadOptions.memoryBudgetBytes; default: the machine's or the instance's limit). */
  memoryBudgetBytes?: number;
  /** Progress and failures (stderr in the CLI). */
  log?: (line: string) => void;
}

/** The documented defaults of everything but the bundles. */
export const INSTANCE_DEFAULTS = {
  strategy: "cicada",
  stateless: false,
  workers: DEFAULTS.workers,
  maxBodyBytes: 64 * 1024 * 1024,
  /** RECEIVING_BODIES × the default maxBodyBytes (256 MiB); with another maxBodyBytes, 4 × that. */
  maxReceivingBytes: RECEIVING_BODIES * 64 * 1024 * 1024,
  maxQueue: 16,
  timeoutMs: 30_000,
} as const satisfies Omit<InstanceOptions, "bundles">;

/** A started instance. */
export interface FunctionInstance {
  readonly runtime: Runtime;
  readonly host: ModelHost;
  readonly server: InferenceServer;
  /** Drains the core, disposes every model (after the requests already queued), stops the runtime. */
  close(): Promise<void>;
}

/** Starts an instance: runtime, bundles opened and prepared, core. Nothing is loaded until asked. */
export async function startInstance(options: InstanceOptions): Promise<FunctionInstance> {
  // E_USAGE now, before the runtime starts, if the budget could never hold the largest body.
  const maxReceivingBytes = receivingBudgetBytes(options.maxBodyBytes, options.maxReceivingBytes);
  const runtime = await createRuntime({
    // A server's event loop must not block in onnxruntime: sessions live on the stage workers.
    executor: "workers",
    workers: options.workers,
    ...(options.cacheRoot ? { cacheRoot: options.cacheRoot } : {}),
  });
  try {
    const host = await ModelHost.open(runtime, options.bundles, {
      strategy: options.strategy,
      stateless: options.stateless,
      maxQueue: options.maxQueue,
      ...(options.memoryBudgetBytes ? { memoryBudgetBytes: options.memoryBudgetBytes } : {}),
      ...(options.log ? { log: options.log } : {}),
    });
    const server = createInferenceServer(host, {
      maxBodyBytes: options.maxBodyBytes,
      maxReceivingBytes,
      timeoutMs: options.timeoutMs,
      ...(options.log ? { log: options.log } : {}),
    });
    return {
      runtime,
      host,
      server,
      async close() {
        server.drain();
        try {
          await host.close();
        } finally {
          await runtime.close();
        }
      },
    };
  } catch (e) {
    await runtime.close();
    throw e;
  }
}
