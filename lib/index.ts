/**
 * DeepSentry's public API: everything the CLI can do, a Node service can do in-process.
 *
 *   import { DeepSentry, trainModel, scoreLog, runPipeline, resolvePipelineConfig } from 'deepsentry';
 *   const model = await DeepSentry.load('model-dir');
 *   const s = model.session();                 // sessions stay open across pushes (idle timeout by log time)
 *   const { lines, sessions } = await s.push(rawLines);   // lines scored now, sessions that closed now
 *   const rest = await s.end();                // end of input: the still-open sessions close (censored)
 *   const once = await model.scoreLines(rawLines);   // one-shot: the batch is the whole input
 *
 * Layers: lib/pipeline (train, score, run, the model), lib/logs (ingestion), lib/eval (metrics and reports),
 * lib/live (the live monitor; `createModelScorer` is its scorer for trained models), lib/scale (scale-out on
 * NATS JetStream: publisher and workers), lib/models (the text
 * autoencoder and detector), lib/backend (the tfjs backend and its fused ops).
 */
export * from './pipeline';
// The CLI's config-file reader and progress reporter, public since before they moved to lib/cli.
export { loadPipelineConfig } from './cli/config-file';
export { consoleReporter, type Verbosity } from './cli/progress';
export * from './logs';
export * from './eval';
export * from './live';
export * from './scale';
export { useBackend, currentBackend, probeNative, BACKEND_CHOICES, type BackendChoice, type BackendSelection } from './backend';
export { TextAutoencoder, DEFAULT_TEXT_CONFIG, DEFAULT_TEXT_TRAIN, type TextModelConfig } from './models/text';
export { Detector, DEFAULT_DETECTOR_CONFIG, DEFAULT_DETECTOR_TRAIN, type DetectorConfig, type DetectorObjective, type ScoreMode, type WindowWeighting } from './models/detector';
export { fitThreshold, type FittedThreshold, type ThresholdSpec } from './models/threshold';
export type { TrainOptions, TrainProgress, TrainResult } from './models/train';
export { saveModelDir, loadModelDir, MODEL_FORMAT, MODEL_FORMAT_VERSION, type ModelJson } from './models/files';
export { DeepSentryError, type DeepSentryErrorCode } from './errors';
