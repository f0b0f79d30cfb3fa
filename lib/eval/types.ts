/**
 * The schema of `metrics.json`, the machine-readable result of `deepsentry eval` (and of `run` with labels).
 * These types are the documentation: every field is written on every run (null where a value is undefined,
 * e.g. ROC-AUC with only one class present). JSON has no Infinity, so a score or threshold that is infinite is
 * written as the string "Infinity" / "-Infinity" (see {@link ScoreValue}).
 */
import type { ConfusionMatrix, Rates } from './metrics';

/** The `schema` field's value; bumped on any incompatible change. */
export const METRICS_SCHEMA = 'deepsentry.metrics/1' as const;

/** A score or threshold: a finite number, or the string "Infinity" / "-Infinity". */
export type ScoreValue = number | 'Infinity' | '-Infinity';

/** Where a threshold came from. */
export type ThresholdSource =
  /** the model's own decisions: the `anomaly` column the scorer wrote at the saved threshold */
  | 'anomaly-column'
  /** read from the model directory's model.json */
  | 'model'
  /** given on the command line / in the options */
  | 'option'
  /** the distinct score that maximises F1 on these labels (an upper bound, not a deployable threshold) */
  | 'best-f1';

/** Metrics of one binary decision (`score >= threshold` → anomalous). */
export interface ThresholdMetrics extends Rates {
  /**
   * The threshold. With source 'anomaly-column' it is the lowest flagged score when the column is consistent
   * with a single `score >= t` rule, else null (the model decided some other way).
   */
  threshold: ScoreValue | null;
  source: ThresholdSource;
  confusion: ConfusionMatrix;
}

/** All metrics at one level (sessions, or lines). */
export interface LevelMetrics {
  level: 'session' | 'line';
  /** labelled items evaluated */
  items: number;
  anomalies: number;
  normals: number;
  /** anomalies / items: the AP of a random ranking, the baseline of the PR curve */
  anomalyRate: number;
  /** lowest and highest score among the evaluated items */
  scoreRange: { min: ScoreValue; max: ScoreValue } | null;
  /** number of distinct scores = number of thresholds the sweep visited */
  distinctScores: number;
  rocAuc: number | null;
  /** PR-AUC as sklearn's step-wise average precision */
  averagePrecision: number | null;
  /** at the model's saved threshold (or the one given); null when lines carry no decisions and none was given */
  saved: ThresholdMetrics | null;
  /** at the best-F1 threshold; null when there is no anomaly */
  best: ThresholdMetrics | null;
}

/** How well the labels covered the scores. */
export interface Coverage {
  sessionsScored: number;
  /** sessions with a label (the ones evaluated) */
  sessionsLabelled: number;
  /** session labels naming no scored session (normal when only part of a log was scored, e.g. `run`) */
  labelsWithoutSession: number;
  linesScored: number;
  linesLabelled: number;
}

/** The contents of metrics.json. */
export interface MetricsFile {
  schema: typeof METRICS_SCHEMA;
  /** ISO 8601 time of the evaluation */
  createdAt: string;
  inputs: {
    scoresDir: string;
    labelsFile: string;
    /** 'session': a BlockId,Label file; 'line': a label field of each log line (BGL style) */
    labelKind: 'session' | 'line';
    /** whether lines.csv was present (line-level metrics need it) */
    lineScores: boolean;
  };
  /** The decision rule every threshold in this file uses. */
  rule: 'score >= threshold';
  /** The beta of every `fBeta` in this file. */
  beta: number;
  coverage: Coverage;
  session: LevelMetrics;
  /** null when the scores directory has no lines.csv */
  line: LevelMetrics | null;
}
