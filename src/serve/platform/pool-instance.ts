// One instance of the pool (PoolInstance): a `cicada serve` child process as the platform sees it, its
// lifecycle and the models it holds, and the one way the platform talks to it (`request`), which never
// hangs: a reply, a timeout, or — as soon as the process exits — an error naming the instance. Under
// serve/platform/ "instance" always means such a process; what runs inside it (runtime, models, protocol
// core) is its FunctionInstance (serve/function/function-instance.ts), and a reading of its memory is a
// ProcessMemory (metrics/proc-memory.ts).
import type { ChildProcess } from "node:child_process";
import { Agent } from "node:http";
import { createInterface } from "node:readline";
import { CicadaError } from "../../errors.js";
import { now } from "../../metrics/trace.js";
import { exchange } from "../../util/http-exchange.js";
import type { InstanceState, InstanceView, ModelSlotView } from "./policies.js";
import { parseListeningLine, type ListeningLine } from "../function/listening-line.js";

/**
 * The lifecycle: the legal moves out of each state. cold → loading → warm → busy → idle is the path of a
 * pre-loaded model; a request on a cold instance goes cold → busy (it loads as it runs). busy → cold: a
 * stateless instance disposed the model; → cold elsewhere: every model was unloaded; loading → cold/idle:
 * a load failed. evicted is final (the process exited); a replacement is a new instance.
 */
export const INSTANCE_TRANSITIONS: Readonly<Record<InstanceState, readonly InstanceState[]>> = {
  cold: ["loading", "busy", "evicted"],
  loading: ["warm", "idle", "cold", "busy", "evicted"],
  warm: ["busy", "loading", "cold", "evicted"],
  busy: ["idle", "cold", "evicted"],
  idle: ["busy", "loading", "cold", "evicted"],
  evicted: [],
};

/** How an instance process ended. */
export interface ExitInfo {
  code: number | null;
  signal: NodeJS.Signals | null;
  at: number;
}

/** A reply of an instance, read whole. */
export interface InstanceReply {
  status: number;
  headers: Headers;
  body: Uint8Array;
}

/** A model on an instance. */
export interface ModelSlot extends ModelSlotView {
  state: "loading" | "ready";
  lastUsed: number;
}

/** An instance process of the pool: its state, its models and the HTTP client to it. */
export class PoolInstance implements InstanceView {
  state: InstanceState = "cold";
  /** Every state entered, with when and why. */
  readonly history: { state: InstanceState; at: number; reason?: string }[];
  /** Milliseconds spent in each state so far (the current one up to its last transition). */
  readonly timeIn: Record<InstanceState, number> = {
    cold: 0,
    loading: 0,
    warm: 0,
    busy: 0,
    idle: 0,
    evicted: 0,
  };
  readonly models = new Map<string, ModelSlot>();
  lastUsed = now();
  /** Requests served and, of those, cold ones. */
  served = 0;
  coldServed = 0;
  /** Set when the platform stops the instance on purpose; `replace`: start another in its place. */
  stopping = false;
  replace = false;
  private readonly inFlight = new Set<AbortController>();
  private readonly agent = new Agent({ keepAlive: true });
  private exitInfo: ExitInfo | undefined;

  constructor(
    readonly id: string,
    readonly child: ChildProcess,
    readonly url: string,
    readonly exited: Promise<ExitInfo>,
  ) {
    this.history = [{ state: "cold", at: now() }];
    void exited.then((info) => {
      this.exitInfo = info;
      for (const c of this.inFlight) c.abort(this.diedError());
      this.agent.destroy();
    });
  }

  get pid(): number {
    return this.child.pid!;
  }

  /** Moves to `to`; refuses an illegal move (a bug in the platform, never a user error). */
  transition(to: InstanceState, reason?: string): void {
    if (!INSTANCE_TRANSITIONS[this.state].includes(to)) {
      throw new CicadaError(
        "E_RUNTIME",
        `instance ${this.id}: illegal lifecycle move ${this.state} -> ${to}`,
      );
    }
    const t = now();
    this.timeIn[this.state] += t - this.history[this.history.length - 1]!.at;
    this.state = to;
    this.history.push(reason ? { state: to, at: t, reason } : { state: to, at: t });
  }

  private diedError(): CicadaError {
    const how = this.exitInfo?.signal ?? `exit code ${this.exitInfo?.code}`;
    return new CicadaError("E_INSTANCE_DIED", `instance ${this.id} (pid ${this.pid}) exited (${how})`);
  }

  /**
   * Sends a request and reads the whole reply. Rejects with E_INSTANCE_DIED if the process exits or the
   * connection fails first, E_TIMEOUT after `timeoutMs`.
   */
  async request(
    method: string,
    path: string,
    init: { headers?: Record<string, string>; body?: Uint8Array },
    timeoutMs: number,
  ): Promise<InstanceReply> {
    if (this.exitInfo) throw this.diedError();
    const control = new AbortController();
    this.inFlight.add(control);
    const timer = setTimeout(
      () =>
        control.abort(
          new CicadaError(
            "E_TIMEOUT",
            `instance ${this.id} did not answer ${method} ${path} within ${timeoutMs} ms`,
          ),
        ),
      timeoutMs,
    );
    try {
      const r = await exchange(`${this.url}${path}`, {
        method,
        ...init,
        agent: this.agent,
        signal: control.signal,
      });
      const headers = new Headers();
      for (let i = 0; i < r.rawHeaders.length; i += 2) headers.append(r.rawHeaders[i]!, r.rawHeaders[i + 1]!);
      return { status: r.status, headers, body: r.body };
    } catch (e) {
      if (control.signal.aborted && control.signal.reason instanceof CicadaError) throw control.signal.reason;
      const cause = (e as Error).message;
      throw new CicadaError(
        "E_INSTANCE_DIED",
        `instance ${this.id} (pid ${this.pid}): the connection failed during ${method} ${path}: ${cause}`,
        { cause: e },
      );
    } finally {
      clearTimeout(timer);
      this.inFlight.delete(control);
    }
  }

  /** Resolves with the instance's `listening` line; rejects if it exits or stays silent for `timeoutMs`. */
  static awaitListening(child: ChildProcess, exited: Promise<ExitInfo>, timeoutMs: number) {
    return new Promise<ListeningLine>((resolve, reject) => {
      const lines = createInterface({ input: child.stdout! });
      const timer = setTimeout(
        () => finish(new Error(`no listening line within ${timeoutMs} ms`)),
        timeoutMs,
      );
      const finish = (error?: Error, value?: ListeningLine) => {
        clearTimeout(timer);
        lines.close();
        if (error) reject(error);
        else resolve(value!);
      };
      lines.on("line", (line) => {
        try {
          finish(undefined, parseListeningLine(line));
        } catch (e) {
          finish(e as Error);
        }
      });
      void exited.then((info) =>
        finish(new Error(`it exited before listening (${info.signal ?? `exit code ${info.code}`})`)),
      );
    });
  }
}
