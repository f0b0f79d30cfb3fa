/**
 * The live-monitoring API (what lib/index.ts re-exports for services that embed DeepSentry, and what
 * `deepsentry live` is built from). See the README section "Live monitoring".
 */
export type { Alert, EndReason, EventContext, JudgedEvent, LineScorer, RawLine, ScoredEvent, ScorerFactory, ScorerOptions, ScorerStats } from './types';
export { eventId, type FeedbackRequest } from './types';
export { LiveMonitor, type InputLine, type MonitorOptions, type MonitorSnapshot, type SecondBucket } from './monitor';
export { monitorStream, type MonitorStreamOptions } from './stream';
export { LiveThreshold, type ThresholdMode, type ThresholdOptions, type ThresholdSnapshot } from './thresholds';
export { createScorer, checkModelDir, type EngineOptions } from './engine';
export { NoveltyScorer, createNoveltyScorer, type NoveltyScorerOptions } from './novelty';
export { WorkerScorer, type WorkerScorerSpec } from './worker';
export { FileFollower, TailLine, type FileCursor, type FollowOptions, type TailNotice } from './tail';
export { LineSplitter, type SourceLine } from './lines';
export { TextSink, NdjsonFileSink, WebhookSink, formatAlert, type AlertSink, type WebhookOptions } from './sinks';
export { StateStore, type Checkpoint } from './state';
export { LiveServer, parseListen, type MonitorService, type ServerOptions } from './server';
export { MonitorMetrics } from './metrics';
