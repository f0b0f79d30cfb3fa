/**
 * The end-to-end pipeline: configuration, training, scoring, the trained model in memory (`DeepSentry`) and
 * its live scorer. The CLI's train/score/run commands are thin layers over these functions.
 */
export {
  AUTO_SPLIT,
  DEFAULT_IDLE_TIMEOUT_MS,
  applyFlags,
  checkPipelineConfig,
  defaultPipelineConfig,
  logConfigOf,
  resolvePipelineConfig,
  thresholdSpec,
  trainOptionsOf,
  type ConfigFlags,
  type PipelineConfig,
  type TrainSettings,
} from './config';
export { DeepSentry, FIRST_ID, ensureBackend, type LoadOptions, type ModelExtra, type ModelThresholds, type ScoreLinesResult, type SessionInput, type SessionScoresOut } from './model';
export { byTime, encodeStage, groupByKey, loadSessions, modelLogConfig, sessionEnded, trainDetectorStage, trainFromPrepared, trainingSessions, trainTextStage, type PipelineReporter, type TextStage, type TrainPipelineOptions } from './train';
export { HIGH_FLAG_RATE, scoreLog, scoreWarnings, SET_ASIDE_NEEDS_FILE, type ScoreLogOptions, type ScoreSummary } from './score';
export { runTextStage, runEncodeStage, runDetectorStage, loadTextStage, TEXT_MODEL_DIR, VECTORS_DIR, MODEL_DIR } from './stages';
export { runPipeline, trainModel, type PipelineOptions, type RunOptions, type RunSummary, type StageTiming, type TrainSummary } from './run';
export { createModelScorer, MODEL_SCORER_MODULE } from './model';
export { ModelScorer, liveSessionKeyer, type ModelScorerOptions } from '../live/model_scorer';
export { ScoringSession, type ClosedSessionScore, type LineScore, type ScoringSessionOptions, type ScoringUpdate, type SessionEnd } from './session';
export { FEEDBACK_DEFAULTS, learnNormal, readFeedbackFile, type FeedbackOptions, type FeedbackResult, type FeedbackSession } from './feedback';
export { lineageOf, type ModelLineage } from '../models/lineage';
