/**
 * Joins a scores directory with labels and computes the metrics at session and line level.
 *
 * Label joins:
 * - session labels (BlockId,Label): a session's label is its row; a line inherits its session's label (HDFS
 *   labels are per block: every line naming the block shares it);
 * - line labels (BGL style): a line's label is the label of that line number; a session is anomalous when
 *   any of its labelled lines is.
 * Items without a label are left out and counted in `coverage`; labels that match nothing at all are an error.
 */
import { DeepSentryError, invalidParameterError } from '../errors';
import type { Labels } from './labels';
import {
  averagePrecision,
  bestF1Threshold,
  confusionAt,
  confusionOf,
  rates,
  rocAuc,
  sweep,
  type Sweep,
} from './metrics';
import { hasLineScores, readLineScores, readSessionScores, type LineScores, type SessionScores, type SessionWhy } from './scores';
import {
  METRICS_SCHEMA,
  type Coverage,
  type LevelMetrics,
  type MetricsFile,
  type ScoreValue,
  type ThresholdMetrics,
  type ThresholdSource,
} from './types';

/** Options of {@link evaluate}. */
export interface EvaluateOptions {
  /** the directory holding sessions.csv (and optionally lines.csv) */
  scoresDir: string;
  labels: Labels;
  /**
   * The threshold to judge the model at (`score >= threshold`). Omitted: the model's own decisions, i.e. the
   * `anomaly` columns the scorer wrote at its saved threshold.
   */
  threshold?: number;
  /** where `threshold` came from (default 'option') */
  thresholdSource?: Extract<ThresholdSource, 'model' | 'option'>;
  /** beta of the F-beta score (default DEFAULT_BETA) */
  beta?: number;
  /** how many top-scoring sessions to keep for the report (default 10) */
  top?: number;
  /** how many false alarms and how many missed anomalies to list in the report, highest score first (default 20 each) */
  errors?: number;
  /** the most lines kept per top session (the highest-scoring ones; default 40) */
  linesPerSession?: number;
}

/** F2 by default: a missed anomaly usually costs an operator more than a false alarm. */
export const DEFAULT_BETA = 2;

/** The scores and labels of one level, kept for the charts. */
export interface LevelData {
  scores: Float64Array;
  /** 1 = anomalous */
  labels: Uint8Array;
  sweep: Sweep;
}

/** A scored line of a top session. */
export interface TopLine {
  lineNo: number;
  score: number;
  anomaly: boolean;
  /** the line's label, null when unlabelled */
  label: boolean | null;
  /** the raw text, filled in when the log is available */
  text?: string;
}

/** One of the highest-scoring sessions, for the report. */
export interface TopSession {
  rank: number;
  session: string;
  score: number;
  /** the model's decision */
  anomaly: boolean;
  /** ground truth, null when unlabelled */
  label: boolean | null;
  lines: number;
  firstTs: string;
  lastTs: string;
  /** its lines (at most linesPerSession, the highest-scoring, in line order); empty without lines.csv */
  topLines: TopLine[];
  /** how many lines lines.csv has for the session */
  linesInScores: number;
  /** why the model flagged it (sessions.csv's explanation columns), null when absent */
  why: SessionWhy | null;
}

/** Everything an evaluation produced: metrics.json's contents plus what the charts and report need. */
export interface EvaluationResult {
  metrics: MetricsFile;
  session: LevelData;
  line: LevelData | null;
  top: TopSession[];
  /** labelled normal but flagged at the saved threshold (the model's decisions), highest score first */
  falseAlarms: TopSession[];
  /** labelled anomalous but not flagged, highest score first (the nearest misses lead) */
  missed: TopSession[];
}

/** A score as metrics.json stores it (JSON has no Infinity: ±Infinity become strings). */
export function toScoreValue(x: number): ScoreValue {
  if (x === Infinity) return 'Infinity';
  if (x === -Infinity) return '-Infinity';
  return x;
}

/** The inverse of {@link toScoreValue}. */
export function fromScoreValue(x: ScoreValue): number {
  return x === 'Infinity' ? Infinity : x === '-Infinity' ? -Infinity : x;
}

/** The threshold a 0/1 decision column implies, if it is consistent with one `score >= t` rule. */
function impliedThreshold(scores: Float64Array, decisions: Uint8Array): number | null {
  let minFlagged = Infinity;
  let maxUnflagged = -Infinity;
  let flagged = 0;
  for (let i = 0; i < scores.length; i++) {
    if (decisions[i]) {
      flagged++;
      if (scores[i]! < minFlagged) minFlagged = scores[i]!;
    } else if (scores[i]! > maxUnflagged) maxUnflagged = scores[i]!;
  }
  if (flagged === 0) return null;
  return maxUnflagged < minFlagged ? minFlagged : null;
}

function thresholdMetrics(threshold: number | null, source: ThresholdSource, confusion: ThresholdMetrics['confusion'], beta: number): ThresholdMetrics {
  return { threshold: threshold === null ? null : toScoreValue(threshold), source, confusion, ...rates(confusion, beta) };
}

function levelMetrics(
  level: 'session' | 'line',
  data: LevelData,
  decisions: Uint8Array | null,
  threshold: number | undefined,
  source: ThresholdSource,
  beta: number,
): LevelMetrics {
  const s = data.sweep;
  let saved: ThresholdMetrics | null = null;
  if (threshold !== undefined) saved = thresholdMetrics(threshold, source, confusionAt(s, threshold), beta);
  else if (decisions) saved = thresholdMetrics(impliedThreshold(data.scores, decisions), 'anomaly-column', confusionOf(decisions, data.labels), beta);
  const b = bestF1Threshold(s);
  const n = data.scores.length;
  return {
    level,
    items: n,
    anomalies: s.positives,
    normals: s.negatives,
    anomalyRate: n === 0 ? 0 : s.positives / n,
    scoreRange: n === 0 ? null : { min: toScoreValue(s.thresholds[s.thresholds.length - 1]!), max: toScoreValue(s.thresholds[0]!) },
    distinctScores: s.thresholds.length,
    rocAuc: rocAuc(s),
    averagePrecision: averagePrecision(s),
    saved,
    best: b ? thresholdMetrics(b.threshold, 'best-f1', b.confusion, beta) : null,
  };
}

/** Shows a few ids so a mismatch between label ids and session ids is obvious. */
function examples(ids: Iterable<string>, n = 3): string {
  const out: string[] = [];
  for (const id of ids) {
    out.push(JSON.stringify(id.length > 40 ? id.slice(0, 40) + '…' : id));
    if (out.length === n) break;
  }
  return out.join(', ');
}

/** Evaluates a scores directory against labels. */
export async function evaluate(options: EvaluateOptions): Promise<EvaluationResult> {
  const beta = options.beta ?? DEFAULT_BETA;
  if (!(beta > 0) || !Number.isFinite(beta)) throw invalidParameterError('beta', 'a positive finite number', options.beta);
  const top = options.top ?? 10;
  if (!Number.isInteger(top) || top < 0) throw invalidParameterError('top', 'a non-negative integer', options.top);
  const nErrors = options.errors ?? 20;
  if (!Number.isInteger(nErrors) || nErrors < 0) throw invalidParameterError('errors', 'a non-negative integer', options.errors);
  const perSession = options.linesPerSession ?? 40;
  if (!Number.isInteger(perSession) || perSession < 1) throw invalidParameterError('linesPerSession', 'a positive integer', options.linesPerSession);
  if (options.threshold !== undefined && Number.isNaN(options.threshold)) throw invalidParameterError('threshold', 'a number', options.threshold);

  const labels = options.labels;
  const sessions = await readSessionScores(options.scoresDir);
  const withLines = hasLineScores(options.scoresDir);
  const lines = withLines ? await readLineScores(options.scoresDir, sessions) : null;
  if (labels.kind === 'line' && !lines) {
    throw new DeepSentryError('DS_IO', `per-line labels need ${options.scoresDir}/lines.csv (line numbers tie lines to labels) but it does not exist`);
  }

  // Session labels: 1/0, -1 = unlabelled.
  const nS = sessions.ids.length;
  const sLabel = new Int8Array(nS).fill(-1);
  let labelsWithoutSession = 0;
  if (labels.kind === 'session') {
    sessions.ids.forEach((id, i) => {
      const y = labels.labels.get(id);
      if (y !== undefined) sLabel[i] = y ? 1 : 0;
    });
    for (const id of labels.labels.keys()) if (!sessions.index.has(id)) labelsWithoutSession++;
  } else {
    const l = lines!;
    for (let k = 0; k < l.count; k++) {
      const s = l.session[k]!;
      const n = l.lineNo[k]!;
      const y = n < labels.labels.length ? labels.labels[n]! : -1;
      if (s < 0 || y < 0) continue;
      if (y === 1) sLabel[s] = 1;
      else if (sLabel[s] === -1) sLabel[s] = 0;
    }
  }

  const lineLabel = (k: number): number => {
    const l = lines!;
    if (labels.kind === 'session') {
      const s = l.session[k]!;
      return s < 0 ? -1 : sLabel[s]!;
    }
    const n = l.lineNo[k]!;
    return n < labels.labels.length ? labels.labels[n]! : -1;
  };

  let sessionsLabelled = 0;
  for (let i = 0; i < nS; i++) if (sLabel[i]! >= 0) sessionsLabelled++;
  if (sessionsLabelled === 0) {
    const what = labels.kind === 'session'
      ? `label ids look like ${examples(labels.labels.keys())}; session ids look like ${examples(sessions.ids)}`
      : `labelled line numbers 1..${labels.labels.length - 1}; lines.csv line numbers from ${lines!.count ? lines!.lineNo[0] : 'none'}`;
    throw new DeepSentryError(
      'DS_INVALID_ARGUMENT',
      `labels in ${labels.file} match none of the ${nS} sessions in ${sessions.file} (${what}): are they labels for this log?`,
    );
  }

  // Session level.
  const sScores = new Float64Array(sessionsLabelled);
  const sY = new Uint8Array(sessionsLabelled);
  const sDec = new Uint8Array(sessionsLabelled);
  for (let i = 0, j = 0; i < nS; i++) {
    if (sLabel[i]! < 0) continue;
    sScores[j] = sessions.scores[i]!;
    sY[j] = sLabel[i]!;
    sDec[j] = sessions.anomaly[i]!;
    j++;
  }
  const sessionData: LevelData = { scores: sScores, labels: sY, sweep: sweep(sScores, sY, `${sessions.file} (session level)`) };
  const source: ThresholdSource = options.threshold === undefined ? 'anomaly-column' : options.thresholdSource ?? 'option';

  // Line level.
  let lineData: LevelData | null = null;
  let lineDec: Uint8Array | null = null;
  let linesLabelled = 0;
  if (lines) {
    for (let k = 0; k < lines.count; k++) if (lineLabel(k) >= 0) linesLabelled++;
    const lScores = new Float64Array(linesLabelled);
    const lY = new Uint8Array(linesLabelled);
    lineDec = new Uint8Array(linesLabelled);
    for (let k = 0, j = 0; k < lines.count; k++) {
      const y = lineLabel(k);
      if (y < 0) continue;
      lScores[j] = lines.scores[k]!;
      lY[j] = y;
      lineDec[j] = lines.anomaly[k]!;
      j++;
    }
    lineData = { scores: lScores, labels: lY, sweep: sweep(lScores, lY, `${lines.file} (line level)`) };
  }

  const coverage: Coverage = {
    sessionsScored: nS,
    sessionsLabelled,
    labelsWithoutSession,
    linesScored: lines ? lines.count : 0,
    linesLabelled,
  };
  const metrics: MetricsFile = {
    schema: METRICS_SCHEMA,
    createdAt: new Date().toISOString(),
    inputs: { scoresDir: options.scoresDir, labelsFile: labels.file, labelKind: labels.kind, lineScores: lines !== null },
    rule: 'score >= threshold',
    beta,
    coverage,
    session: levelMetrics('session', sessionData, sDec, options.threshold, source, beta),
    line: lineData ? levelMetrics('line', lineData, lineDec, options.threshold, source, beta) : null,
  };
  // The model's decision per session: at the given threshold, else the anomaly column it wrote.
  const flagged = (i: number) => (options.threshold !== undefined ? sessions.scores[i]! >= options.threshold : sessions.anomaly[i] === 1);
  const byScore = Array.from(sessions.ids.keys()).sort((a, b) => sessions.scores[b]! - sessions.scores[a]! || a - b);
  const details = (order: number[]) => sessionDetails(order, sessions, lines, sLabel, lineLabel, perSession, flagged);
  return {
    metrics,
    session: sessionData,
    line: lineData,
    top: details(byScore.slice(0, top)),
    falseAlarms: details(byScore.filter((i) => sLabel[i] === 0 && flagged(i)).slice(0, nErrors)),
    missed: details(byScore.filter((i) => sLabel[i] === 1 && !flagged(i)).slice(0, nErrors)),
  };
}

/** Report rows of the sessions `order` (indices into `sessions`), in that order, with their lines. */
function sessionDetails(
  order: number[],
  sessions: SessionScores,
  lines: LineScores | null,
  sLabel: Int8Array,
  lineLabel: (k: number) => number,
  perSession: number,
  flagged: (i: number) => boolean,
): TopSession[] {
  const rankOf = new Map<number, number>();
  order.forEach((s, r) => rankOf.set(s, r));
  const byRank: number[][] = order.map(() => []);
  if (lines) {
    for (let k = 0; k < lines.count; k++) {
      const r = rankOf.get(lines.session[k]!);
      if (r !== undefined) byRank[r]!.push(k);
    }
  }
  return order.map((s, r) => {
    const ks = byRank[r]!;
    const kept = ks.length <= perSession ? ks : [...ks].sort((a, b) => lines!.scores[b]! - lines!.scores[a]! || a - b).slice(0, perSession);
    kept.sort((a, b) => lines!.lineNo[a]! - lines!.lineNo[b]!);
    return {
      rank: r + 1,
      session: sessions.ids[s]!,
      score: sessions.scores[s]!,
      anomaly: flagged(s),
      label: sLabel[s]! < 0 ? null : sLabel[s] === 1,
      lines: sessions.lines[s]! >= 0 ? sessions.lines[s]! : ks.length,
      firstTs: sessions.firstTs[s]!,
      lastTs: sessions.lastTs[s]!,
      linesInScores: ks.length,
      why: sessions.explanation[s] ?? null,
      topLines: kept.map((k) => {
        const y = lineLabel(k);
        return { lineNo: lines!.lineNo[k]!, score: lines!.scores[k]!, anomaly: lines!.anomaly[k] === 1, label: y < 0 ? null : y === 1 };
      }),
    };
  });
}
