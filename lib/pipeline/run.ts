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
import { dataWarnings, SHORTER_SESSIONS, type PipelineConfig, type TrainingData } from './config';
import { describeModel } from './describe';
import { DeepSentry } from './model';
import { SCORE_FILES, scoreLog, type ScoreSummary } from './score';
import { EVALUATION_FILES } from '../eval/files';
import { inputWarnings } from '../logs/issues';
import { createOutputDir } from '../outdir';
import { groupByKey, loadSessions, modelLogConfig, trainFromPrepared, type PipelineReporter, type TrainingRecord } from './train';

/** Options shared by trainModel and runPipeline. */
export interface PipelineOptions {
  config: PipelineConfig;
  reporter?: PipelineReporter;
  /** cancels training (SIGINT/SIGTERM in the CLI): nothing is written */
  signal?: AbortSignal;
  /** where the temporary working directory goes (default the OS temp directory) */
  tmpDir?: string;
  /** replace an earlier run's output at the output location (lib/outdir.ts); default: refuse it */
  force?: boolean;
  /** a truncated or corrupt gzip log: train on the lines before the damage (a warning) instead of failing */
  acceptTruncated?: boolean;
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
  if (!fs.existsSync(file)) throw new DeepSentryError('DS_IO', `normalLabels file ${file} does not exist`);
  const { labels } = await loadSessionLabels(file);
  const keys = new Set(candidates.filter((k) => labels.get(k) === false));
  if (keys.size === 0) {
    throw new DeepSentryError('DS_INVALID_ARGUMENT', `normalLabels ${file} labels none of the ${candidates.length} training sessions normal (keys like ${JSON.stringify(candidates[0] ?? '')}): is it the label file of this log?`);
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

/**
 * The logs exist and are readable as logs: a regular file (not empty), or — for a command that reads each
 * log once — a pipe or FIFO (`train <(zcat x.gz)`). `readsTwice`: the command reads the log again after
 * training (run), which a pipe cannot give.
 */
function checkInputs(logs: string[], readsTwice = false): void {
  if (logs.length === 0) throw new DeepSentryError('DS_INVALID_ARGUMENT', 'Expected at least one log file but received none');
  for (const l of logs) {
    let st: fs.Stats;
    try {
      st = fs.statSync(l);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      throw new DeepSentryError('DS_IO', code === 'ENOENT' ? `log file ${l} does not exist` : `Cannot read log file ${l}: ${(e as Error).message}`, { cause: e });
    }
    if (st.isDirectory()) throw new DeepSentryError('DS_IO', `${l} is a directory, not a log file`);
    if (st.isFile()) {
      if (st.size === 0) throw new DeepSentryError('DS_PARSE', `${l} is empty: no log line to train on`);
    } else if (readsTwice) {
      throw new DeepSentryError('DS_IO', `${l} is not a regular file (a pipe or device): this command reads the log twice (to train, then to score), so write it to a file first`);
    } else if (!st.isFIFO() && !st.isCharacterDevice() && !st.isSocket()) {
      throw new DeepSentryError('DS_IO', `${l} is not a file`);
    }
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
  const s = await prepareLogs(logs, dir, o.config.logs, o.acceptTruncated ? { acceptTruncated: true } : {});
  rep.stageDone?.('prepare', Number(process.hrtime.bigint() - t0) / 1e9, s.lines, 'lines');
  return s;
}

/** Result of trainModel. */
export interface TrainSummary {
  model: DeepSentry;
  outDir: string;
  prepare: PrepareSummary;
  timings: StageTiming[];
  /** what the operator should know: a damaged gzip log accepted, lines skipped, too little data for a meaningful
   * model, with advice (inputWarnings, dataWarnings); also in model.json's metrics.warnings */
  warnings: string[];
  /** the files of the earlier model that was replaced (force) */
  replaced: string[];
}

/** A threshold fitted on held-back sessions needs at least two session keys: one to train on, one to hold back. */
function requireSessions(n: number, what: string): void {
  if (n < 2) {
    throw new DeepSentryError(
      'DS_INVALID_ARGUMENT',
      `${what} ${n} session${n === 1 ? '' : 's'} to train on: at least 2 are needed (the threshold is fitted on sessions held back from training), and a useful model needs hundreds; give a longer log or cut shorter sessions (${SHORTER_SESSIONS})`,
    );
  }
}

/** Records the input and data warnings on the model (saved in model.json) and returns them. */
function warnAboutData(model: DeepSentry, config: PipelineConfig, prepared: PrepareSummary): string[] {
  const warnings = [...inputWarnings(prepared.issues), ...dataWarnings((model.metrics as { data: TrainingData }).data, config)];
  model.metrics.warnings = warnings;
  return warnings;
}

/** `deepsentry train`: all training stages on every session of `logs`, no labels; one model directory. */
export async function trainModel(logs: string[], outDir: string, o: PipelineOptions): Promise<TrainSummary> {
  checkInputs(logs);
  const out = await createOutputDir(outDir, { kind: 'model', inputs: logs, ...(o.force ? { force: true } : {}) });
  const timings: StageTiming[] = [];
  const rep = recording(o.reporter, timings);
  return withWorkDir(o, async (work) => {
    const prepare = await prepareTimed(logs, work, o, rep);
    const keys = groupByKey(await loadSessions(work)).map((g) => g[0].key);
    requireSessions(keys.length, `${logs.join(', ')} has`);
    const normal = o.normalLabels === undefined ? null : await normalOnlySelection(o.normalLabels, keys);
    const model = await trainFromPrepared(work, {
      config: o.config,
      reporter: rep,
      ...(normal ? { select: (s: { key: string }) => normal.keys.has(s.key), training: normal.record } : {}),
      ...(o.signal ? { signal: o.signal } : {}),
    });
    if (o.signal?.aborted) throw new DeepSentryError('DS_CANCELLED', 'training was cancelled; no model was written');
    const warnings = warnAboutData(model, o.config, prepare);
    await model.save(outDir);
    model.directory = path.resolve(outDir);
    return { model, outDir, prepare, timings, warnings, replaced: out.earlier };
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
  /** lines.csv gets a text column (scoreLog's withText) */
  withText?: boolean;
  /** score the later sessions again without the messages never seen that many of them hold (scoreLog's setAsideNew, default true) */
  setAsideNew?: boolean;
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
  /** an earlier run's output that force replaced */
  replaced: string[];
  /** too little data for a meaningful model, with advice (dataWarnings), and what was wrong with the input */
  warnings: string[];
}

/**
 * `deepsentry run`: sessions in time order (first line); the first `run.trainFraction` train (no labels), the
 * rest are scored into `outDir` (sessions.csv, lines.csv) and, with labels, evaluated there (metrics.json,
 * report.html, charts) through lib/eval's runEvaluation.
 */
export async function runPipeline(log: string, outDir: string, o: RunOptions): Promise<RunSummary> {
  checkInputs([log], true);
  if (o.labels !== undefined && !fs.existsSync(o.labels)) throw new DeepSentryError('DS_IO', `label file ${o.labels} does not exist`);
  // Every output location, before any work: the folder (scores, evaluation, and model/ unless elsewhere).
  const modelDir = o.modelDir ?? path.join(outDir, 'model');
  const modelInside = o.modelDir === undefined;
  const force = o.force ? { force: true } : {};
  const inputs = [log, ...(o.labels !== undefined ? [o.labels] : [])];
  const out = await createOutputDir(outDir, { writes: [...(modelInside ? ['model/'] : []), ...Object.values(SCORE_FILES), ...EVALUATION_FILES], inputs, ...force });
  const outModel = modelInside ? null : await createOutputDir(modelDir, { kind: 'model', inputs, option: 'the model directory option', ...force });
  const t0 = process.hrtime.bigint();
  const timings: StageTiming[] = [];
  const rep = recording(o.reporter, timings);
  return withWorkDir(o, async (work) => {
    const prepared = await prepareTimed([log], work, o, rep);
    // Split by session key (a key's segments, when an idle timeout splits it, stay on one side), keys in time
    // order of their first line.
    const keys = groupByKey(await loadSessions(work)).map((g) => g[0].key);
    if (keys.length < 3) throw new DeepSentryError('DS_INVALID_ARGUMENT', `${log} has ${keys.length} session(s): run needs at least three (two to train on, one to score); give a longer log or cut shorter sessions (${SHORTER_SESSIONS})`);
    const nTrain = Math.min(keys.length - 1, Math.max(1, Math.round(keys.length * o.config.run.trainFraction)));
    requireSessions(nTrain, `the first ${o.config.run.trainFraction} of ${log} (run.trainFraction) has`);
    const trainKeys = new Set(keys.slice(0, nTrain));
    const testKeys = new Set(keys.slice(nTrain));
    const normal = o.normalLabels === undefined ? null : await normalOnlySelection(o.normalLabels, [...trainKeys]);
    const keep = normal ? normal.keys : trainKeys;
    const model = await trainFromPrepared(work, { config: o.config, select: (s) => keep.has(s.key), reporter: rep, ...(normal ? { training: normal.record } : {}), ...(o.signal ? { signal: o.signal } : {}) });
    const warnings = warnAboutData(model, o.config, prepared);
    await model.save(modelDir);
    rep.stage?.('score', `${testKeys.size} sessions`);
    const score = await scoreLog(model, log, outDir, {
      selectKey: (k) => testKeys.has(k),
      withText: o.withText === true,
      ...(o.setAsideNew !== undefined ? { setAsideNew: o.setAsideNew } : {}),
      reporter: rep,
      outputChecked: true,
      ...(o.acceptTruncated ? { acceptTruncated: true } : {}),
      ...(o.signal ? { signal: o.signal } : {}),
    });
    let evaluation: RunEvaluationResult | null = null;
    const inLog = o.labels === undefined ? await labelsInLog(log, work, prepared) : null;
    if (o.labels !== undefined || inLog !== null) {
      rep.stage?.('eval', o.labels ?? `${log} (the labels its ${prepared.formats[0]} lines carry)`);
      const te = process.hrtime.bigint();
      evaluation = await runEvaluation({
        scoresDir: outDir,
        ...(o.labels !== undefined ? { labelsFile: o.labels } : { labels: inLog as LineLabels }),
        outDir,
        outputChecked: true,
        logFile: log,
        threshold: model.threshold,
        thresholdSource: 'model',
        dataset: {
          split: `sessions in time order of their first line: the first ${nTrain} trained the model (no labels), the last ${testKeys.size} were scored and are evaluated here`,
        },
        modelConfig: describeModel({ directory: modelDir, config: model.config, thresholds: model.thresholds, metrics: model.metrics, logConfig: model.logConfig, knownNormal: model.knownNormal?.toJSON() }),
        // run reads the log twice (to train, to score): a warning on the input comes from both reads
        warnings: [...new Set([...warnings, ...score.warnings])],
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
      replaced: [...out.removed, ...(outModel?.earlier ?? []).map((f) => path.join(modelDir, f))],
      warnings,
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
