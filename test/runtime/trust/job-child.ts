// Test helper for the trust suites: the child end of supervisor.ts. A child script sets itself up (e.g.
// creates one runtime), then calls `serveJobs` with a handler; each job's result goes back over the IPC
// channel, and the handler names its phases so that a crash or hang is reported with where it happened.

/** Messages a child sends to its supervisor. */
export type ChildMessage =
  | { type: "ready" }
  | { type: "phase"; id: string; phase: string }
  | { type: "result"; id: string; result: unknown };

/** Messages a supervisor sends to its child. */
type ParentMessage = { type: "job"; job: { id: string } } | { type: "exit" };

/**
 * Answers jobs until told to exit. `handle` gets the job and a function announcing its current phase;
 * whatever it returns (or the error it throws, as `{ thrown }`) is the job's result. `close` runs before
 * the process exits.
 */
export function serveJobs<J extends { id: string }>(
  handle: (job: J, phase: (name: string) => void) => Promise<unknown>,
  close: () => Promise<void> = async () => {},
): void {
  const send = (m: ChildMessage) => process.send!(m);
  let queue: Promise<void> = Promise.resolve();
  process.on("message", (m: ParentMessage) => {
    if (m.type === "exit") {
      queue = queue.then(async () => {
        await close().catch(() => {});
        process.exit(0);
      });
      return;
    }
    const job = m.job as J;
    queue = queue.then(async () => {
      let result: unknown;
      try {
        result = await handle(job, (phase) => send({ type: "phase", id: job.id, phase }));
      } catch (e) {
        result = { thrown: describeError(e) };
      }
      send({ type: "result", id: job.id, result });
    });
  });
  process.on("disconnect", () => process.exit(0));
  send({ type: "ready" });
}

/** An error as a result: its code (when it is a CicadaError or a Node error) and message. */
export interface ErrorFacts {
  name: string;
  code?: string;
  message: string;
}

/** The facts of a thrown value. */
export function describeError(e: unknown): ErrorFacts {
  if (e instanceof Error) {
    const code = (e as { code?: unknown }).code;
    return {
      name: e.name,
      ...(typeof code === "string" ? { code } : {}),
      message: e.message.split("\n").slice(0, 4).join(" | ").slice(0, 600),
    };
  }
  return { name: typeof e, message: String(e).slice(0, 600) };
}
