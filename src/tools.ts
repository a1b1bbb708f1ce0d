// `cicada-node/tools`: what prepares models and checks runs, off the cold-start path: the importer (ONNX
// model → bundle), the model zoo, the reference runners (plain onnxruntime, eager and stage by stage) and
// the Gantt chart of a trace. Kept out of the main entry because the importer and the zoo load the ONNX
// protobuf schema and graph code that a function loading a bundle never needs.
export { importModel, type ImportOptions } from "./importer/import-model.js";
export { ZOO, findZooModel, generateZooModel } from "./zoo/registry.js";
export { runEager, runSequential, type ProbeTensor } from "./runtime/reference-runner.js";
export { ganttSvg } from "./report/gantt.js";
