/**
 * Training from a prepared-data directory (lib/logs/prepared.ts), no labels:
 *
 *   1. the training sessions (all, or the ones `select` keeps), in time order (first line);
 *   2. the vocabulary and the distinct masked messages of those sessions (lines per message counted);
 *   3. the text autoencoder on the distinct messages → one vector per message (the message-vector table);
 *   4. the detector on the earlier sessions; the LAST `threshold.holdout` of the session keys (in time order
 *      of their first line, with all their segments when an idle timeout splits a key) are held back;
 *   5. the held-back keys are scored (max over their segments, as sessions.csv scores them) and the threshold
 *      is fitted on their scores: unlabelled data the detector has not seen, as a user without labels would
 *      have it (config threshold.method).
 */
import { DeepSentryError } from '../errors';
import { resolveLogConfig, type LogConfig } from '../logs/config';
import { sessionEnded } from '../logs/sessions';
import { readPreparedManifest, readPreparedMessages, readPreparedSessions, type PreparedManifest, type PreparedMessage, type PreparedSession } from '../logs/prepared';
import { Vocabulary } from '../logs/vocabulary';
import { Detector, END_MESSAGE, PAD_MESSAGE } from '../models/detector';
import { sha256Hex } from '../models/files';
import { TextAutoencoder } from '../models/text';
import { fitThreshold } from '../models/threshold';
import type { TrainProgress, TrainResult } from '../models/train';
import { thresholdSpec, trainOptionsOf, type PipelineConfig } from './config';
import { DeepSentry, FIRST_ID, ensureBackend } from './model';
import { currentBackend } from '../backend/select';
import { SequenceModel } from '../models/sequence';
import { CountModel, countChains, countHorizon, countMessages } from '../models/counts';
import { KnownNormal } from '../models/known_normal';
import type { ScoringModel } from '../models/scoring';

/** Whether a closed session's end is scored: lib/logs/sessions.ts, shared with the live scorer and the API. */
export { sessionEnded };

/** A message pair is tried for a count relation when both occur together in at least this many sessions. */
export const COUNT_MIN_SESSIONS = 20;

/**
 * The sessions the detector trains on: all but the `trim` share that the count-based sequence model (fitted on
 * all of them) finds the most surprising (each session's largest surprise + rarity over its lines and end). It
 * costs one pass of the n-gram model, not a second detector training. Equal scores at the cut: the later
 * sessions are left out first (deterministic).
 */
function trimmed<S>(sessions: S[], seq: SequenceModel, ids: (s: S) => Int32Array, ended: (s: S) => boolean, trim: number): S[] {
  const drop = Math.floor(sessions.length * trim);
  if (drop <= 0) return sessions;
  const score = sessions.map((s) => {
    const x = ids(s);
    const n = x.length + (ended(s) ? 1 : 0);
    let a = PAD_MESSAGE;
    let b = PAD_MESSAGE;
    let mx = -Infinity;
    for (let t = 0; t < n; t++) {
      const m = t < x.length ? x[t] : END_MESSAGE;
      mx = Math.max(mx, seq.surprise(a, b, m) + seq.rarity(m));
      a = b;
      b = m;
    }
    return mx;
  });
  const order = sessions.map((_, i) => i).sort((i, j) => score[j] - score[i] || j - i);
  const out = new Set(order.slice(0, drop));
  return sessions.filter((_, i) => !out.has(i));
}

/** Receives what the pipeline is doing (the CLI draws progress bars or prints lines from it). */
export interface PipelineReporter {
  /** a stage starts (`prepare`, `train-text`, `encode`, `train-detector`, `threshold`, `score`, `eval`) */
  stage?(name: string, detail: string): void;
  /** a training step or epoch ended */
  progress?(p: TrainProgress): void;
  /** a stage ended, with its wall time and the items it processed */
  stageDone?(name: string, seconds: number, items: number, unit: string): void;
  /** something the operator should know about the result (the CLI prints it on stderr) */
  warn?(message: string): void;
}

/** How a model was trained (model.json metrics.training). */
export interface TrainingRecord {
  /** `unlabelled`: every session of the log (the default); `normal-only`: only sessions labelled normal */
  mode: 'unlabelled' | 'normal-only';
  /** normal-only: the label file */
  normalLabels?: string;
  /** normal-only: sessions (keys) of the training data labelled normal, and the ones left out (anomalous or unlabelled) */
  keysKept?: number;
  keysLeftOut?: number;
}

/** Options of the training functions. */
export interface TrainPipelineOptions {
  config: PipelineConfig;
  /** keep only these sessions for training (default all) */
  select?: (s: PreparedSession) => boolean;
  /** how the sessions were chosen, recorded in model.json (default: unlabelled, all of them) */
  training?: TrainingRecord;
  signal?: AbortSignal;
  reporter?: PipelineReporter;
}


/**
 * Groups sessions (segments, when an idle timeout splits a key's lines) by key, keys in order of their first
 * segment (the input order must be time order, as loadSessions returns it).
 */
export function groupByKey<S extends { key: string }>(sessions: readonly S[]): S[][] {
  const byKey = new Map<string, S[]>();
  for (const s of sessions) {
    const g = byKey.get(s.key);
    if (g) g.push(s);
    else byKey.set(s.key, [s]);
  }
  return [...byKey.values()];
}

/** Orders sessions by their first line's time (sessions without timestamps keep their id order, last). */
export function byTime(a: PreparedSession, b: PreparedSession): number {
  const ta = a.firstTs ?? Infinity;
  const tb = b.firstTs ?? Infinity;
  if (ta !== tb) return ta < tb ? -1 : 1;
  const ra = a.rows[0] ?? 0;
  const rb = b.rows[0] ?? 0;
  return ra !== rb ? ra - rb : a.id - b.id;
}

/** The lib/logs configuration a model parses with: the prepared one, with format and session mode fixed. */
export function modelLogConfig(m: PreparedManifest): LogConfig {
  const c = m.config;
  const format = c.format === 'auto' ? (m.inputs[0]?.format ?? 'auto') : c.format;
  return resolveLogConfig({ ...c, format, session: { ...c.session, mode: m.sessionMode ?? c.session.mode } } as unknown as Record<string, unknown>);
}

/** Sessions of a prepared directory (optionally filtered), in time order. */
export async function loadSessions(dir: string, select?: (s: PreparedSession) => boolean): Promise<PreparedSession[]> {
  const out: PreparedSession[] = [];
  for await (const s of readPreparedSessions(dir)) if (!select || select(s)) out.push(s);
  return out.sort(byTime);
}

function timed<T>(r: PipelineReporter | undefined, name: string, detail: string, items: (v: T) => [number, string], f: () => Promise<T>): Promise<T> {
  r?.stage?.(name, detail);
  const t0 = process.hrtime.bigint();
  return f().then((v) => {
    const [n, unit] = items(v);
    r?.stageDone?.(name, Number(process.hrtime.bigint() - t0) / 1e9, n, unit);
    return v;
  });
}

/** What the text stage produces (`deepsentry train-text` keeps it in <workdir>/text-model). */
export interface TextStage {
  logConfig: LogConfig;
  vocabulary: Vocabulary;
  text: TextAutoencoder;
  /** the distinct messages of the training sessions, in prepared-id order: model id FIRST_ID + i */
  messages: PreparedMessage[];
  /** lines per message among the training sessions */
  counts: number[];
  textResult: TrainResult;
}

/** Token ids of the stage's messages (an empty message reads as one <unk>). */
function sequencesOf(st: Pick<TextStage, 'vocabulary' | 'messages'>): Int32Array[] {
  return st.messages.map((m) => {
    const ids = st.vocabulary.encode(m.tokens);
    return ids.length > 0 ? ids : Int32Array.of(2);
  });
}

/** The training sessions of a prepared directory (all, or the selected ones), checked to be non-empty. */
export async function trainingSessions(dir: string, select?: (s: PreparedSession) => boolean): Promise<{ manifest: PreparedManifest; sessions: PreparedSession[] }> {
  const manifest = await readPreparedManifest(dir);
  const sessions = await loadSessions(dir, select);
  if (sessions.length === 0) {
    const lc = modelLogConfig(manifest);
    throw new DeepSentryError('DS_INVALID_ARGUMENT', `no sessions to train on in ${manifest.inputs.map((i) => i.name).join(', ')} (${manifest.summary.parsed} lines parsed of ${manifest.summary.lines}): is the log empty, or does the session key (${lc.session.keyPattern}) match nothing?`);
  }
  return { manifest, sessions };
}

/** Stage 1: vocabulary and text autoencoder on the distinct messages of the training sessions. */
export async function trainTextStage(dir: string, manifest: PreparedManifest, sessions: PreparedSession[], o: TrainPipelineOptions): Promise<TextStage> {
  const config = o.config;
  // A library caller who has not picked a backend gets `auto` (the CLI picks it from --backend first).
  if (currentBackend() === null) ensureBackend();
  const logConfig = modelLogConfig(manifest);
  const all = await readPreparedMessages(dir);
  // Lines per prepared message among the training sessions; the model's table holds only those messages.
  const lineCounts = new Map<number, number>();
  for (const s of sessions) for (const id of s.messages) lineCounts.set(id, (lineCounts.get(id) ?? 0) + 1);
  const messages: PreparedMessage[] = all.filter((m) => lineCounts.has(m.id));
  const counts = messages.map((m) => lineCounts.get(m.id) as number);
  const tokenCounts = new Map<string, number>();
  messages.forEach((m, i) => {
    for (const t of m.tokens) tokenCounts.set(t, (tokenCounts.get(t) ?? 0) + counts[i]);
  });
  const vocabulary = Vocabulary.build(tokenCounts, logConfig.vocabulary);
  const seqs = sequencesOf({ vocabulary, messages });
  const seed = config.seed;
  const text = new TextAutoencoder({ ...config.text.model, maxTokens: logConfig.tokenizer.maxTokens, vocabSize: vocabulary.size, seed });
  const textResult = await timed(o.reporter, 'train-text', `${seqs.length} distinct messages, vocabulary ${vocabulary.size}`, (r: TrainResult) => [Math.round(r.itemsPerSecond * r.seconds), 'messages'], () =>
    text.fit(seqs, { ...trainOptionsOf(config.text.train), seed, ...(o.signal ? { signal: o.signal } : {}), ...(o.reporter?.progress ? { onProgress: o.reporter.progress } : {}) }),
  );
  return { logConfig, vocabulary, text, messages, counts, textResult };
}

/** Stage 2: the message-vector table [FIRST_ID + messages, latentDim] (rows 0 and 1 reserved). */
export async function encodeStage(st: TextStage, reporter?: PipelineReporter): Promise<Float32Array> {
  const seqs = sequencesOf(st);
  const D = st.text.config.latentDim;
  const vectors = new Float32Array((FIRST_ID + seqs.length) * D);
  await timed(reporter, 'encode', `${seqs.length} distinct messages`, () => [seqs.length, 'messages'], async () => vectors.set(st.text.encode(seqs), FIRST_ID * D));
  return vectors;
}

/**
 * Stage 3: the detector on the earlier training sessions, then the threshold on the held-back later ones;
 * returns the complete model.
 */
export async function trainDetectorStage(st: TextStage, vectors: Float32Array, manifest: PreparedManifest, sessions: PreparedSession[], o: TrainPipelineOptions): Promise<DeepSentry> {
  const config = o.config;
  if (currentBackend() === null) ensureBackend();
  const D = st.text.config.latentDim;
  if (vectors.length !== (FIRST_ID + st.messages.length) * D) {
    throw new DeepSentryError('DS_MODEL', `the message vectors (${vectors.length / D} rows) do not match the text model's ${st.messages.length} messages: run encode again`);
  }
  const toModel = new Map<number, number>();
  st.messages.forEach((m, i) => toModel.set(m.id, FIRST_ID + i));
  const ids = (s: PreparedSession) =>
    Int32Array.from(s.messages, (id) => {
      const m = toModel.get(id);
      if (m === undefined) throw new DeepSentryError('DS_MODEL', `session ${s.key} has message ${id}, which the text model was not trained on: run train-text again on this data`);
      return m;
    });
  // Held-back keys: the last ones in time order of their first line (at least one; with one key it is also
  // trained on), each with all its segments: the threshold is fitted on per-key scores, as sessions.csv has them.
  const groups = groupByKey(sessions);
  const nHold = groups.length >= 2 ? Math.max(1, Math.round(groups.length * config.threshold.holdout)) : 0;
  const fitOn = groups.slice(0, groups.length - nHold).flat();
  const heldGroups = nHold > 0 ? groups.slice(groups.length - nHold) : groups;
  const held = heldGroups.flat();
  const idle = st.logConfig.session.idleTimeoutMs;
  const ended = (s: PreparedSession) => sessionEnded(s.end, idle, s.lastTs);
  const seed = config.seed;
  const sequence = new SequenceModel().fit(fitOn.map(ids), fitOn.map(ended), st.messages.length);
  const trained = trimmed(fitOn, sequence, ids, ended, config.training.trim);
  const detector = new Detector({ ...config.detector.model, vectorDim: D, window: st.logConfig.window.size, seed });
  const detResult = await timed(o.reporter, 'train-detector', `${trained.length} sessions (${nHold} held back for the threshold${trained.length < fitOn.length ? `, ${fitOn.length - trained.length} most surprising left out` : ''})`, (r: TrainResult) => [Math.round(r.itemsPerSecond * r.seconds), 'windows'], () =>
    detector.fit(vectors, trained.map(ids), {
      ...trainOptionsOf(config.detector.train),
      seed,
      ended: trained.map(ended),
      ...(o.signal ? { signal: o.signal } : {}),
      ...(o.reporter?.progress ? { onProgress: o.reporter.progress } : {}),
    }),
  );
  if (o.signal?.aborted) throw new DeepSentryError('DS_CANCELLED', 'training was cancelled');

  const hash = sha256Hex(JSON.stringify({ messages: st.messages.map((m, i) => [m.text, st.counts[i]]), sessions: sessions.map((s) => [s.key, s.messages.length]) }));
  const placeholder = fitThreshold([0], { method: 'percentile', percentile: 100 });
  const countModel = mineCountRelations(config, st.logConfig, fitOn, ids);
  const horizon = countHorizon(config.scoring.countTimeoutMs, idle, st.logConfig.session.mode);
  const heldJudges = countChains(held, horizon, ended).judges;
  const model = new DeepSentry(config, st.logConfig, st.vocabulary, st.text, detector, st.messages.map((m) => m.text), vectors, { session: placeholder }, sequence, st.counts, {}, hash, countModel);
  const heldScores = await timed(o.reporter, 'threshold', `${heldGroups.length} held-back sessions`, () => [heldGroups.length, 'sessions'], async () => {
    const seg = model.scoreSessions(held.map((s) => ({ messageIds: ids(s), ended: ended(s), countIds: heldJudges.has(s) ? chainIds(heldJudges.get(s) as PreparedSession[], ids) : null }))).sessionScores;
    const perKey = new Float64Array(heldGroups.length);
    let i = 0;
    heldGroups.forEach((g, k) => {
      let mx = -Infinity;
      for (let j = 0; j < g.length; j++) mx = Math.max(mx, seg[i++]);
      perKey[k] = mx;
    });
    return perKey;
  });
  model.thresholds.session = fitThreshold(heldScores, thresholdSpec(config, o.training?.mode === 'normal-only'));
  model.heldBackScores = heldScores;
  // After the threshold, which is fitted on what the detector and the count relations make of the held-back
  // sessions: known normal, they would all score 0 by their own memory.
  if (o.training?.mode === 'normal-only') model.knownNormal = rememberNormal(model, groups.flat(), ids, 'normal-labels');
  Object.assign(model.metrics, {
    data: {
      inputs: manifest.inputs,
      lines: manifest.summary.parsed,
      sessions: sessions.length,
      detectorSessions: trained.length,
      trimmedSessions: fitOn.length - trained.length,
      sessionKeys: groups.length,
      heldBackSessions: nHold,
      distinctMessages: st.messages.length,
      vocabularySize: st.vocabulary.size,
    },
    text: st.textResult,
    detector: detResult,
    training: o.training ?? { mode: 'unlabelled' },
  });
  if (model.thresholds.session.warning) o.reporter?.warn?.(`threshold: ${model.thresholds.session.warning}`);
  return model;
}

/**
 * The count relations of a configuration (null when scoring.counts is 0), mined on training sessions (each key's
 * in time order, as model ids by `ids`) chained by the count horizon: what the scorer judges together is what
 * they are mined on (lib/models/counts.ts countChains).
 */
export function mineCountRelations(config: PipelineConfig, logConfig: LogConfig, sessions: readonly PreparedSession[], ids: (s: PreparedSession) => Int32Array): CountModel | null {
  if (!(config.scoring.counts > 0)) return null;
  const idle = logConfig.session.idleTimeoutMs;
  const horizon = countHorizon(config.scoring.countTimeoutMs, idle, logConfig.session.mode);
  const { chains } = countChains(sessions, horizon, (s) => sessionEnded(s.end, idle, s.lastTs));
  return new CountModel(COUNT_MIN_SESSIONS, config.scoring.countConfidence).fit(chains.map((c) => countMessages(chainIds(c, ids))));
}

/**
 * The compositions of sessions known to be normal (lib/models/known_normal.ts) added to the model's memory (a new
 * one when it has none): per key, the lines per message of all its sessions, as `deepsentry score` adds them up.
 * `sessions` as model ids by `ids`.
 */
export function rememberNormal(model: ScoringModel, sessions: readonly PreparedSession[], ids: (s: PreparedSession) => ArrayLike<number>, source: string): KnownNormal {
  const memory = model.knownNormal ?? new KnownNormal();
  for (const group of groupByKey(sessions)) {
    const counts = new Map<number, number>();
    for (const s of group) countMessages(ids(s), counts);
    memory.add([...counts].map(([id, n]) => [model.messageText(id) ?? `#${id}`, n] as const), source);
  }
  return memory;
}

/** The model ids of a chain of sessions counted together, in order. */
function chainIds(c: readonly PreparedSession[], ids: (s: PreparedSession) => Int32Array): Int32Array {
  return c.length === 1 ? ids(c[0]) : Int32Array.from(c.flatMap((s) => [...ids(s)]));
}

/** Trains every model stage on the (selected) sessions of a prepared directory. */
export async function trainFromPrepared(dir: string, o: TrainPipelineOptions): Promise<DeepSentry> {
  const { manifest, sessions } = await trainingSessions(dir, o.select);
  const st = await trainTextStage(dir, manifest, sessions, o);
  const vectors = await encodeStage(st, o.reporter);
  return trainDetectorStage(st, vectors, manifest, sessions, o);
}
