/**
 * Where the live monitor gets its scorer: `createScorer(modelDir, options)`.
 *
 * - `scorer: 'model'` (the default): the trained model in `modelDir`. The trained-model engine plugs in here
 *   (lib/pipeline/model.ts's `createModelScorer`: the ModelScorer of model_scorer.ts over the loaded model); a directory without a model is a DS_MODEL
 *   error that says so.
 * - `scorer: 'novelty'`: the model-free NoveltyScorer (lib/live/novelty.ts), which learns online.
 *
 * With `worker: true` (the CLI's default) the scorer is built and run in a worker thread (WorkerScorer), so
 * the event loop that reads input, serves HTTP and sends alerts never waits on scoring.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { DeepSentryError } from '../errors';
import type { BackendChoice } from '../backend/select';
import type { Precision } from '../backend/binding';
import type { LogConfigOverrides } from '../logs/config';
import { NoveltyScorer } from './novelty';
import type { LineScorer, ScorerOptions } from './types';
import { WorkerScorer } from './worker';
import { createModelScorer as createPipelineScorer } from '../pipeline/model';
import { RECENT_DEFAULTS } from './recent_sessions';

/** Options of createScorer. */
export interface EngineOptions extends ScorerOptions {
  /** Which scorer (default `model`). */
  scorer?: 'model' | 'novelty';
  /** Run it in a worker thread (default true). */
  worker?: boolean;
  /** lib/logs configuration overrides (format, masking, sessions) for scorers that parse with lib/logs. */
  logs?: LogConfigOverrides;
  /**
   * The model scorer keeps every open session and this many ended ones for feedback (LiveMonitor.feedback,
   * `POST /feedback`): default 20000 (lib/live/recent_sessions.ts RECENT_DEFAULTS); 0 keeps none.
   */
  feedbackSessions?: number;
  /**
   * Masked messages the model scorer sets aside (lib/live/model_scorer.ts ModelScorerOptions.setAside): their
   * lines are left out of their sessions, unscored — what `deepsentry score --set-aside-new` found common and new.
   */
  setAside?: string[];
  /**
   * The compute backend, threads and precision the model scorer runs with, in the thread it runs in (the
   * worker selects its own: `useBackend` of the caller's thread does not reach it). Default `auto`, fp32.
   */
  backend?: BackendChoice;
  threads?: number;
  precision?: Precision;
}

/** Builds the scorer for `modelDir` (see the module comment). Fails with DS_MODEL when there is no usable model. */
export async function createScorer(modelDir: string | undefined, options: EngineOptions = {}): Promise<LineScorer> {
  const kind = options.scorer ?? 'model';
  if (kind !== 'model' && kind !== 'novelty') throw new DeepSentryError('DS_INVALID_ARGUMENT', `Expected 'model' or 'novelty' for scorer but received ${JSON.stringify(kind)}`);
  if (kind === 'model') checkModelDir(modelDir);
  const { worker, ...rest } = options;
  if (worker === false) return createScorerInProcess(modelDir ?? '', rest);
  return WorkerScorer.start({ module: __filename, exportName: 'createScorerInProcess', modelDir: modelDir ?? '', options: rest as EngineOptions & Record<string, unknown> });
}

/** The same, in this thread (what the worker calls). */
export async function createScorerInProcess(modelDir: string, options: EngineOptions): Promise<LineScorer> {
  if ((options.scorer ?? 'model') === 'novelty') {
    if (options.setAside !== undefined && options.setAside.length > 0) throw new DeepSentryError('DS_INVALID_ARGUMENT', "setAside: only the model scorer sets messages aside (scorer 'model')");
    const o: ConstructorParameters<typeof NoveltyScorer>[0] = {};
    if (options.idleTimeoutMs !== undefined) o.idleTimeoutMs = options.idleTimeoutMs;
    if (options.maxOpenSessions !== undefined) o.maxOpenSessions = options.maxOpenSessions;
    if (options.windowLines !== undefined) o.windowLines = options.windowLines;
    if (options.logs !== undefined) o.logs = options.logs;
    return new NoveltyScorer(o);
  }
  return createModelScorer(modelDir, options);
}

/** The trained model's scorer: lib/pipeline's ModelScorer over the model directory. */
async function createModelScorer(modelDir: string, options: EngineOptions): Promise<LineScorer> {
  checkModelDir(modelDir);
  const o: ScorerOptions = {};
  if (options.idleTimeoutMs !== undefined) o.idleTimeoutMs = options.idleTimeoutMs;
  if (options.maxOpenSessions !== undefined) o.maxOpenSessions = options.maxOpenSessions;
  if (options.windowLines !== undefined) o.windowLines = options.windowLines;
  return createPipelineScorer(modelDir, {
    ...o,
    feedbackSessions: options.feedbackSessions ?? RECENT_DEFAULTS.sessions,
    ...(options.setAside !== undefined && options.setAside.length > 0 ? { setAside: options.setAside } : {}),
    ...(options.backend !== undefined ? { backend: options.backend } : {}),
    ...(options.threads !== undefined ? { threads: options.threads } : {}),
    ...(options.precision !== undefined ? { precision: options.precision } : {}),
  });
}

/** A model directory must exist and hold model.json. */
export function checkModelDir(modelDir: string | undefined): void {
  if (modelDir === undefined || modelDir === '') {
    throw new DeepSentryError('DS_MODEL', "no model directory given: pass modelDir (a directory written by `deepsentry train`), or use scorer 'novelty'");
  }
  const dir = path.resolve(modelDir);
  let st: fs.Stats;
  try {
    st = fs.statSync(dir);
  } catch {
    throw new DeepSentryError('DS_MODEL', `model directory ${dir} does not exist`);
  }
  if (!st.isDirectory()) throw new DeepSentryError('DS_MODEL', `${dir} is not a directory (expected a model directory written by \`deepsentry train\`)`);
  if (!fs.existsSync(path.join(dir, 'model.json'))) {
    throw new DeepSentryError('DS_MODEL', `${dir} holds no model: model.json is missing (train one with \`deepsentry train LOG --out ${modelDir}\`)`);
  }
}
