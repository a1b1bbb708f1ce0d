// The build thread's entry (see build-thread.ts): runs the one build it was started for, posting each
// stage done, then its result or its error, and is ended by the calling thread. MiniLoader's forms are
// built by build.ts, the peers' derived forms by derived-forms.ts; both load onnxruntime here only.
import { parentPort, workerData } from "node:worker_threads";
import { sendError, type BuildJob, type BuildMessage, type MiniLoaderBuilt } from "./build-thread.js";

const job = workerData as BuildJob;
const post = (m: BuildMessage) => parentPort!.postMessage(m);

async function run(): Promise<MiniLoaderBuilt | null> {
  switch (job.kind) {
    case "miniloader": {
      const { buildMiniLoaderForms } = await import("./build.js");
      return buildMiniLoaderForms(job, (done, total) => post({ type: "progress", done, total }));
    }
    case "pisel": {
      const { buildPiselStages } = await import("../derived-forms.js");
      await buildPiselStages(job.bundleDir, job.contentKey, job.staging);
      return null;
    }
    case "ort-best": {
      const { buildOrtBestModel } = await import("../derived-forms.js");
      await buildOrtBestModel(job.source, job.staging);
      return null;
    }
  }
}

run().then(
  (result) => post({ type: "done", result }),
  (e: unknown) => post({ type: "error", error: sendError(e) }),
);
