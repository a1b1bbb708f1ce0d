// The harness's side of a benchmark instance (fresh-instance.ts is the instance's side): a child process
// started outside any clock, requests sent over its IPC channel and matched to their replies by id
// (src/util/rpc.ts), every waiting request failed with the instance's stderr when it exits; and which
// instance serves a cold start in each scenario (reload: one long-lived instance per strategy; fresh: a
// new one per cold start, as a platform starts an instance and then routes the request to it).
import { spawn, type ChildProcess } from "node:child_process";
import { fileURLToPath } from "node:url";
import type { StrategyName } from "../config.js";
import { CicadaError, ERROR_CODES, type ErrorCode } from "../errors.js";
import { loaderArgs, ownModule } from "../util/own-entry.js";
import { RpcCalls } from "../util/rpc.js";
import type { Scenario } from "./cold-start-types.js";
import type {
  InstanceEnvelope,
  InstanceMessage,
  InstanceRequest,
  InstanceResults,
} from "./fresh-instance.js";

const ENTRY = ownModule("bench/fresh-instance");

/** A running instance process and its request channel. */
export class Instance {
  /** The instance's pid and onnxruntime version, once it is ready. */
  pid = 0;
  ortVersion = "";
  /** Requests awaiting their reply, by id; each remembers its kind. */
  private readonly calls = new RpcCalls<InstanceRequest["kind"]>();
  private stderrTail = "";
  private exited = false;
  private readonly ready: Promise<void>;

  private constructor(private readonly child: ChildProcess) {
    child.stderr!.on(
      "data",
      (d: Buffer) => (this.stderrTail = (this.stderrTail + d.toString()).slice(-4000)),
    );
    this.ready = new Promise<void>((resolve, reject) => {
      child.on("message", (m: InstanceMessage) => {
        if (m.kind === "ready") {
          this.pid = m.pid;
          this.ortVersion = m.ortVersion;
          resolve();
          return;
        }
        const call = this.calls.take(m.id);
        if (!call) return;
        if (m.ok) call.resolve(m.result);
        else {
          const code: ErrorCode = m.error.code && m.error.code in ERROR_CODES ? m.error.code : "E_RUNTIME";
          call.reject(new CicadaError(code, m.error.message));
        }
      });
      child.once("error", reject);
      child.once("exit", (code, signal) => {
        this.exited = true;
        const error = new CicadaError(
          "E_RUNTIME",
          `a benchmark instance (pid ${child.pid}) exited (${signal ?? `code ${code}`}); its stderr ended with:\n${this.stderrTail}`,
        );
        reject(error);
        this.calls.failAll(() => error);
      });
    });
  }

  /** Starts an instance and waits until its runtime is up (the cost of a platform starting it). */
  static async spawn(): Promise<Instance> {
    // The instance runs its TypeScript through tsx's loader when the harness itself does.
    const child = spawn(process.execPath, [...loaderArgs(), "--expose-gc", fileURLToPath(ENTRY)], {
      stdio: ["ignore", "ignore", "pipe", "ipc"],
      serialization: "advanced",
    });
    const instance = new Instance(child);
    await instance.ready;
    return instance;
  }

  /** Sends one request and waits for its result. */
  request<K extends InstanceRequest["kind"]>(
    request: Extract<InstanceRequest, { kind: K }>,
  ): Promise<InstanceResults[K]> {
    if (this.exited) {
      return Promise.reject(new CicadaError("E_RUNTIME", `benchmark instance ${this.pid} has exited`));
    }
    return this.calls.call<InstanceResults[K]>(request.kind, (id) => {
      const envelope: InstanceEnvelope = { id, request };
      this.child.send(envelope);
    });
  }

  /** Lets the instance finish and exit (it closes its runtime on disconnect); kills it after 10 s. */
  async close(): Promise<void> {
    if (this.exited) return;
    const exited = new Promise<void>((resolve) => this.child.once("exit", () => resolve()));
    this.child.disconnect();
    const timer = setTimeout(() => this.child.kill("SIGKILL"), 10_000);
    await exited;
    clearTimeout(timer);
  }
}

/** Starts one instance per strategy, all at once (outside any clock); none is left running on failure. */
export async function spawnInstances(
  strategies: readonly StrategyName[],
): Promise<Map<StrategyName, Instance>> {
  const started = await Promise.allSettled(strategies.map(() => Instance.spawn()));
  const failed = started.find((s) => s.status === "rejected");
  if (failed) {
    await Promise.all(started.flatMap((s) => (s.status === "fulfilled" ? [s.value.close()] : [])));
    throw failed.reason;
  }
  return new Map(strategies.map((s, i) => [s, (started[i] as PromiseFulfilledResult<Instance>).value]));
}

/** Runs `work` with an instance: the long-lived one (reload) or a new one closed afterwards (fresh). */
export type WithInstance = <T>(
  strategy: StrategyName,
  work: (instance: Instance) => Promise<T>,
) => Promise<T>;

/** The instances of one benchmark run: how a cold start gets its instance, and how they all stop. */
export interface ScenarioInstances {
  withInstance: WithInstance;
  /** Closes the instances still running (reload's); none is left behind. */
  close(): Promise<void>;
}

/**
 * The instances `scenario` runs cold starts in: `reload` starts one per strategy now (all at once, outside
 * any clock) and serves every cold start of that strategy with it; `fresh` starts one per cold start and
 * closes it afterwards.
 */
export async function scenarioInstances(
  scenario: Scenario,
  strategies: readonly StrategyName[],
  onProgress?: (line: string) => void,
): Promise<ScenarioInstances> {
  if (scenario === "reload") {
    onProgress?.(`starting ${strategies.length} instances (one per strategy)`);
    const instances = await spawnInstances(strategies);
    return {
      withInstance: (s, work) => work(instances.get(s)!),
      close: async () => void (await Promise.all([...instances.values()].map((i) => i.close()))),
    };
  }
  return {
    withInstance: async (_s, work) => {
      const instance = await Instance.spawn();
      try {
        return await work(instance);
      } finally {
        await instance.close();
      }
    },
    close: () => Promise.resolve(),
  };
}
