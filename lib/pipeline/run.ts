/**
 * The day-to-day entry points over the stages: `trainModel` (prepare → text model → encode → detector →
 * threshold → one model directory) and `runPipeline` (train on the earlier sessions, score the later ones,
 * evaluate when labels are given). Both work in a temporary working directory that is removed at the end,
 * and write their outputs atomically, so an interrupted run leaves no half-written model.
 */
import * as fs from 'node:fs';
import { promises as fsp } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { DeepSentryError } from '../errors';
import { configuredFormat } from '../logs/formats';
import { prepareLogs, readPreparedLines, readPreparedManifest, type PrepareSummary } from '../logs/prepared';
import { lineLabelsFromFormat, loadSessionLabels, type LineLabels } from '../eval/labels';
import { runEvaluation, type RunEvaluationResult } from '../eval/run';
import type { PipelineConfig } from './config';
import { DeepSentry } from './model';
import { scoreLog, type ScoreSummary } from './score';
import { groupByKey, loadSessions, modelLogConfig, trainFromPrepared, type PipelineReporter, type TrainingRecord } from './train';

/** Options shared by trainModel and runPipeline. */
export interface PipelineOptions {
  config: PipelineConfig;
  reporter?: PipelineReporter;
  /** cancels training (SIGINT/SIGTERM in the CLI): nothing is written */
  signal?: AbortSignal;
  /** where the temporary working directory goes (default the OS temp directory) */
  tmpDir?: string;
  /**
   * normal-only training: a loghub BlockId,Label file; only the sessions it labels normal are trained on
   * (DeepLog's and LogAnomaly's protocol), the rest (anomalous or absent from the file) are left out
   */
  normalLabels?: string;
}

/**
 * The training-session filter of `--normal-labels FILE`: keys labelled normal in FILE, among `candidates` (every
 * key when null). Errors name the file: missing, malformed (lib/eval's loadSessionLabels), or labelling none of
 * the log's sessions normal.
 */
export async function normalOnlySelection(file: string, candidates: readonly string[]): Promise<{ keys: Set<string>; record: TrainingRecord }> {
  if (!fs.existsSync(file)) throw new DeepSentryError('DS_IO', `--normal-labels file ${file} does not exist`);
  const { labels } = await loadSessionLabels(file);
  const keys = new Set(candidates.filter((k) => labels.get(k) === false));
  if (keys.size === 0) {
    throw new DeepSentryError('DS_INVALID_ARGUMENT', `--normal-labels ${file} labels none of the ${candidates.length} training sessions normal (keys like ${JSON.stringify(candidates[0] ?? '')}): is it the label file of this log?`);
  }
  return { keys, record: { mode: 'normal-only', normalLabels: file, keysKept: keys.size, keysLeftOut: candidates.length - keys.size } };
}

/** Wall time and throughput of one stage. */
export interface StageTiming {
  stage: string;
  seconds: number;
  items: number;
  unit: string;
}

async function withWorkDir<T>(o: PipelineOptions, f: (dir: string) => Promise<T>): Promise<T> {
  const dir = await fsp.mkdtemp(path.join(o.tmpDir ?? os.tmpdir(), 'deepsentry-work-'));
  try {
    return await f(dir);
  } finally {
    await fsp.rm(dir, { recursive: true, force: true }).catch(() => undefined);
  }
}

function checkInputs(logs: string[]): void {
  if (logs.length === 0) throw new DeepSentryError('DS_INVALID_ARGUMENT', 'Expected at least one log file but received none');
  for (const l of logs) {
    let st: fs.Stats;
    try {
      st = fs.statSync(l);
    } catch {
      throw new DeepSentryError('DS_IO', `log file ${l} does not exist`);
    }
    if (!st.isFile()) throw new DeepSentryError('DS_IO', `${l} is not a file`);
    if (st.size === 0) throw new DeepSentryError('DS_PARSE', `${l} is empty: no log line to train on`);
  }
}

/** A reporter that also records stage timings. */
function recording(r: PipelineReporter | undefined, timings: StageTiming[]): PipelineReporter {
  return {
    ...(r?.stage ? { stage: r.stage.bind(r) } : {}),
    ...(r?.progress ? { progress: r.progress.bind(r) } : {}),
    ...(r?.warn ? { warn: r.warn.bind(r) } : {}),
    stageDone: (stage, seconds, items, unit) => {
      timings.push({ stage, seconds, items, unit });
      r?.stageDone?.(stage, seconds, items, unit);
    },
  };
}

async function prepareTimed(logs: string[], dir: string, o: PipelineOptions, rep: PipelineReporter): Promise<PrepareSummary> {
  rep.stage?.('prepare', logs.join(', '));
  const t0 = process.hrtime.bigint();
  const s = await prepareLogs(logs, dir, o.config.logs);
  rep.stageDone?.('prepare', Number(process.hrtime.bigint() - t0) / 1e9, s.lines, 'lines');
  if (s.parsed === 0) {
    const first = s.issues.first[0];
    throw new DeepSentryError('DS_PARSE', `no line of ${logs.join(', ')} could be parsed (${s.lines} lines${first ? `; first: ${first.file}:${first.line}: ${first.message}` : ''}); pass --format`);
  }
  return s;
}

/** Result of trainModel. */
export interface TrainSummary {
  model: DeepSentry;
  outDir: string;
  prepare: PrepareSummary;
  timings: StageTiming[];
}

/** `deepsentry train`: all training stages on every session of `logs`, no labels; one model directory. */
export async function trainModel(logs: string[], outDir: string, o: PipelineOptions): Promise<TrainSummary> {
  checkInputs(logs);
  const timings: StageTiming[] = [];
  const rep = recording(o.reporter, timings);
  return withWorkDir(o, async (work) => {
    const prepare = await prepareTimed(logs, work, o, rep);
    const normal = o.normalLabels === undefined ? null : await normalOnlySelection(o.normalLabels, groupByKey(await loadSessions(work)).map((g) => g[0].key));
    const model = await trainFromPrepared(work, {
      config: o.config,
      reporter: rep,
      ...(normal ? { select: (s: { key: string }) => normal.keys.has(s.key), training: normal.record } : {}),
      ...(o.signal ? { signal: o.signal } : {}),
    });
    if (o.signal?.aborted) throw new DeepSentryError('DS_CANCELLED', 'training was cancelled; no model was written');
    await model.save(outDir);
    model.directory = path.resolve(outDir);
    return { model, outDir, prepare, timings };
  });
}

/** Options of runPipeline. */
export interface RunOptions extends PipelineOptions {
  /**
   * loghub BlockId,Label file: evaluate the scored sessions (labels are never used for training). Without it, a
   * log whose format parses a label per line (BGL's Label column) is evaluated against those labels.
   */
  labels?: string;
  /** keep the trained model here (default `<outDir>/model`) */
  modelDir?: string;
}

/** Result of runPipeline. */
export interface RunSummary {
  outDir: string;
  modelDir: string;
  trainSessions: number;
  testSessions: number;
  threshold: number;
  score: ScoreSummary;
  evaluation: RunEvaluationResult | null;
  timings: StageTiming[];
  seconds: number;
}

/**
 * `deepsentry run`: sessions in time order (first line); the first `run.trainFraction` train (no labels), the
 * rest are scored into `outDir` (sessions.csv, lines.csv) and, with labels, evaluated there (metrics.json,
 * report.html, charts) through lib/eval's runEvaluation.
 */
export async function runPipeline(log: string, outDir: string, o: RunOptions): Promise<RunSummary> {
  checkInputs([log]);
  if (o.labels !== undefined && !fs.existsSync(o.labels)) throw new DeepSentryError('DS_IO', `label file ${o.labels} does not exist`);
  const t0 = process.hrtime.bigint();
  const timings: StageTiming[] = [];
  const rep = recording(o.reporter, timings);
  return withWorkDir(o, async (work) => {
    const prepared = await prepareTimed([log], work, o, rep);
    // Split by session key (a key's segments, when an idle timeout splits it, stay on one side), keys in time
    // order of their first line.
    const keys = groupByKey(await loadSessions(work)).map((g) => g[0].key);
    if (keys.length < 2) throw new DeepSentryError('DS_INVALID_ARGUMENT', `${log} has ${keys.length} session(s): run needs at least two (one to train on, one to score)`);
    const nTrain = Math.min(keys.length - 1, Math.max(1, Math.round(keys.length * o.config.run.trainFraction)));
    const trainKeys = new Set(keys.slice(0, nTrain));
    const testKeys = new Set(keys.slice(nTrain));
    const normal = o.normalLabels === undefined ? null : await normalOnlySelection(o.normalLabels, [...trainKeys]);
    const keep = normal ? normal.keys : trainKeys;
    const model = await trainFromPrepared(work, { config: o.config, select: (s) => keep.has(s.key), reporter: rep, ...(normal ? { training: normal.record } : {}), ...(o.signal ? { signal: o.signal } : {}) });
    const modelDir = o.modelDir ?? path.join(outDir, 'model');
    await model.save(modelDir);
    rep.stage?.('score', `${testKeys.size} sessions`);
    const score = await scoreLog(model, log, outDir, { selectKey: (k) => testKeys.has(k), reporter: rep, ...(o.signal ? { signal: o.signal } : {}) });
    let evaluation: RunEvaluationResult | null = null;
    const inLog = o.labels === undefined ? await labelsInLog(log, work, prepared) : null;
    if (o.labels !== undefined || inLog !== null) {
      rep.stage?.('eval', o.labels ?? `${log} (the labels its ${prepared.formats[0]} lines carry)`);
      const te = process.hrtime.bigint();
      evaluation = await runEvaluation({
        scoresDir: outDir,
        ...(o.labels !== undefined ? { labelsFile: o.labels } : { labels: inLog as LineLabels }),
        outDir,
        logFile: log,
        threshold: model.threshold,
        thresholdSource: 'model',
        dataset: { trainSessions: nTrain, testSessions: testKeys.size, split: `first ${nTrain} sessions by time train, the rest are scored` },
        modelConfig: { directory: modelDir, 'saved threshold': model.threshold, ...(model.config as unknown as Record<string, unknown>) },
      });
      const m = evaluation.result.metrics;
      if (m.coverage.sessionsLabelled === 0) {
        throw new DeepSentryError('DS_PARSE', `label file ${o.labels ?? log} matches none of the ${m.coverage.sessionsScored} scored sessions (keys like ${JSON.stringify(keys[nTrain])}): is it the label file of this log?`);
      }
      rep.stageDone?.('eval', Number(process.hrtime.bigint() - te) / 1e9, m.coverage.sessionsScored, 'sessions');
    }
    return {
      outDir,
      modelDir,
      trainSessions: nTrain,
      testSessions: testKeys.size,
      threshold: model.threshold,
      score,
      evaluation,
      timings,
      seconds: Number(process.hrtime.bigint() - t0) / 1e9,
    };
  });
}

/**
 * The per-line labels the log's own format parsed (stored in lines.bin by prepare), when it has a label field
 * and at least one line carries a label; else null.
 */
async function labelsInLog(log: string, work: string, prepared: PrepareSummary): Promise<LineLabels | null> {
  const format = configuredFormat(modelLogConfig(await readPreparedManifest(work)));
  if (!format.label) return null;
  const byLine = new Int8Array(prepared.lines + 2).fill(-1);
  let labelled = 0;
  for await (const l of readPreparedLines(work)) {
    if (l.label >= 0 && l.line < byLine.length) {
      byLine[l.line] = l.label;
      labelled++;
    }
  }
  return labelled > 0 ? lineLabelsFromFormat(log, byLine, format.label.normal) : null;
}
