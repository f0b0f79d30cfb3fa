/**
 * DeepSentry's models: the text autoencoder (messages → vectors, reconstruction error), the BiLSTM detector
 * (windows of vectors → line and session scores), thresholds, the shared training loop and model files.
 */
export { TextAutoencoder, DEFAULT_TEXT_CONFIG, DEFAULT_TEXT_TRAIN, TEXT_MIN_MESSAGES_FOR_VALIDATION } from './text';
export type { TextModelConfig } from './text';
export { Detector, collectWindows, DEFAULT_DETECTOR_CONFIG, DEFAULT_DETECTOR_TRAIN, SCORE_MODES, PAD_MESSAGE, END_MESSAGE } from './detector';
export type { DetectorConfig, DetectorObjective, ScoreMode, WindowWeighting, WindowSet, WindowScores, SessionScores, DetectorBatchContext } from './detector';
export { fitThreshold, percentile } from './threshold';
export type { ThresholdSpec, FittedThreshold } from './threshold';
export { runTraining, shuffle, splitItems, DEFAULT_TRAIN } from './train';
export type { TrainOptions, TrainProgress, TrainResult } from './train';
export { Adam } from './adam';
export { ParamSet, subSeed } from './params';
export type { NamedWeight, Initializer } from './params';
export { saveModelDir, loadModelDir, sha256Hex, libraryVersion, MODEL_FORMAT, MODEL_FORMAT_VERSION, MODEL_JSON } from './files';
export type { ModelContent, ModelJson, WeightsManifestEntry } from './files';
