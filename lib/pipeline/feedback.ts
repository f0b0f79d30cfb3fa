/**
 * False-alarm feedback (DeepLog's online update): sessions an operator marks as normal are learnt by the model,
 * which is then saved as a new version of itself.
 *
 *   1. the log the sessions came from is read and cut into sessions with the model's own log configuration
 *      (the code `deepsentry score` uses), and every session is scored (before);
 *   2. the detector counts the marked sessions' messages as seen once more (Detector.learnTargets: a message it
 *      never predicted becomes a class, rarities are recomputed) and is fine-tuned from its current weights on
 *      the marked sessions (each repeated `weight` times) mixed with a replay of normal sessions, a few epochs,
 *      seeded. The replay: the model does not store the windows it was trained on (only the message table),
 *      so it replays the same log's sessions that it scores below its threshold — what it already judges
 *      normal, in the same log — so that learning the marked sessions does not move the rest;
 *   3. a count relation a marked session violates accepts that session's exact counts (CountModel.accept);
 *   4. every session is scored again (after). The threshold stays as saved: it was fitted on held-back
 *      training sessions, and feedback brings no new held-back data to refit it on.
 *
 * The text model and the count-based sequence model (scoring.sequence, off by default) are not changed: a
 * marked session's message never seen in training keeps its novelty term (the text model's reconstruction
 * error), which the result reports.
 */
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { DeepSentryError } from '../errors';
import { IssueLog } from '../logs/issues';
import { LogProcessor, openLogInput } from '../logs/pipeline';
import { MODEL_JSON } from '../models/files';
import { subSeed } from '../models/params';
import { shuffle, type TrainResult } from '../models/train';
import { countMessages } from '../models/counts';
import { FIRST_ID, type DeepSentry } from './model';
import { sessionEnded, type PipelineReporter } from './train';

/** Options of learnNormal. */
export interface FeedbackOptions {
  /** the log the marked sessions came from (plain or gzip) */
  log: string;
  /** session keys to learn as normal */
  sessions: readonly string[];
  /** where the keys came from (recorded in model.json) */
  source?: string;
  /** fine-tuning epochs (default 10) */
  epochs?: number;
  /** fine-tuning learning rate (default 3e-3, under the detector training rate of 1e-2) */
  learningRate?: number;
  /** each marked session counts as this many sessions in the fine-tuning (default 2000: windows are weighted by how often they occur, and a replay of thousands of sessions repeats its common windows thousands of times) */
  weight?: number;
  /** at most this many replayed sessions, a seeded sample when the log has more (default 20000) */
  replay?: number;
  /** seed of the replay sample and the fine-tuning's shuffling (default the model's) */
  seed?: number;
  reporter?: PipelineReporter;
  signal?: AbortSignal;
  acceptTruncated?: boolean;
}

/** The defaults of FeedbackOptions (measured on hdfs-dev, README "False-alarm feedback"). */
export const FEEDBACK_DEFAULTS = { epochs: 10, learningRate: 3e-3, weight: 2000, replay: 20000 } as const;

/** A model's place in its feedback history (model.json metrics.lineage). */
export interface ModelLineage {
  /** 1 for a trained model, +1 per feedback */
  version: number;
  /** the model this one was made from: its version and model.json content checksum */
  parent: { version: number; contentSha256: string | null } | null;
  /** every feedback applied, oldest first */
  feedback: Array<{ version: number; log: string; source: string | null; sessions: string[]; replaySessions: number; epochs: number; learningRate: number; weight: number; seed: number }>;
}

/** One marked session's scores. */
export interface FeedbackSession {
  session: string;
  before: number;
  after: number;
  /** messages of the session the model never saw in training (their novelty term stays) */
  unseenMessages: number;
}

/** What learnNormal did. */
export interface FeedbackResult {
  log: string;
  threshold: number;
  lineage: ModelLineage;
  sessions: FeedbackSession[];
  /** sessions of the log (keys) at or above the threshold, before and after */
  flaggedBefore: number;
  flaggedAfter: number;
  /** other sessions of the log no longer flagged, and the ones newly flagged */
  cleared: Array<{ session: string; before: number; after: number }>;
  raised: Array<{ session: string; before: number; after: number }>;
  replaySessions: number;
  /** messages the detector now predicts that it never predicted before */
  newTargets: number;
  countRelationsChanged: number;
  fineTune: TrainResult;
}

interface LogSession {
  key: string;
  ids: number[];
  ended: boolean;
}

/** The log's sessions (segments) as model ids, cut with the model's log configuration. */
async function readSessions(model: DeepSentry, log: string, o: FeedbackOptions): Promise<LogSession[]> {
  const config = model.logConfig;
  const issues = new IssueLog(false, config.reportFirst);
  const out: LogSession[] = [];
  const toModel: number[] = [];
  const idle = config.session.idleTimeoutMs;
  const proc = new LogProcessor(config, {
    issues,
    onSession: (s) => {
      const ids = s.messageIds.map((pid) => (toModel[pid] ??= model.messageId((proc.messages.get(pid) as { text: string }).text)));
      out.push({ key: s.key, ids, ended: sessionEnded(s.reason, idle, s.lastTs) });
    },
  });
  const input = await openLogInput(log, config, issues, log, { acceptTruncated: o.acceptTruncated === true });
  for await (const batch of input.batches) {
    if (o.signal?.aborted) throw new DeepSentryError('DS_CANCELLED', `feedback: reading ${log} was cancelled`);
    proc.processBatch(batch, input.name, input.format);
  }
  proc.finish();
  if (out.length === 0) throw new DeepSentryError('DS_PARSE', `${log}: no session in it parses with the model's format and session settings (is it the log the sessions came from?)`);
  return out;
}

/**
 * The sessions a feedback file marks as normal: an alerts NDJSON (`deepsentry live`'s alerts, or any JSON
 * object per line with a `session` field), a sessions.csv (`deepsentry score`: its rows flagged anomalous,
 * anomaly = 1 — the other rows the model already judges normal; keep only the false alarms in it), or a list
 * of session ids, one per line (`#` starts a comment). Anything else is a DS_INVALID_ARGUMENT naming the file
 * and line.
 */
export async function readFeedbackFile(file: string): Promise<string[]> {
  let text: string;
  try {
    text = await fsp.readFile(file, 'utf8');
  } catch (e) {
    throw new DeepSentryError('DS_IO', `feedback file ${file}: cannot read it: ${(e as Error).message}`, { cause: e });
  }
  const lines = text.split(/\r?\n/);
  const first = lines.findIndex((l) => l.trim() !== '' && !l.trim().startsWith('#'));
  if (first < 0) throw new DeepSentryError('DS_INVALID_ARGUMENT', `feedback file ${file} is empty: it should hold alerts (NDJSON), a sessions.csv or session ids, one per line`);
  const bad = (n: number, what: string) => new DeepSentryError('DS_INVALID_ARGUMENT', `feedback file ${file} line ${n + 1}: ${what}`);
  const keys: string[] = [];
  const head = lines[first].trim();
  if (head.startsWith('{')) {
    lines.forEach((l, n) => {
      if (l.trim() === '') return;
      let o: unknown;
      try {
        o = JSON.parse(l);
      } catch (e) {
        throw bad(n, `not JSON (alerts are one JSON object per line): ${(e as Error).message}`);
      }
      const k = (o as { session?: unknown } | null)?.session;
      if (typeof k !== 'string' || k === '') throw bad(n, 'the alert has no "session" (a line outside any session cannot be learnt as a session)');
      keys.push(k);
    });
  } else if (/^session,score,anomaly(,|$)/.test(head)) {
    // Session keys are written by score's csv(): quoted when they hold a comma or quote.
    const field = /^(?:"((?:[^"]|"")*)"|([^,]*)),[^,]*,([^,]*)/;
    lines.slice(first + 1).forEach((l, i) => {
      if (l.trim() === '') return;
      const m = field.exec(l);
      if (!m) throw bad(first + 1 + i, 'not a sessions.csv row (session,score,anomaly,…)');
      if (m[3] === '1') keys.push(m[1] !== undefined ? m[1].replace(/""/g, '"') : (m[2] as string));
    });
    if (keys.length === 0) throw new DeepSentryError('DS_INVALID_ARGUMENT', `feedback file ${file}: no row of this sessions.csv is flagged (anomaly = 1): nothing to learn`);
  } else {
    for (const l of lines) {
      const k = l.replace(/#.*$/, '').trim();
      if (k !== '') keys.push(k);
    }
    if (/[,\t{]/.test(keys[0])) throw bad(first, `${JSON.stringify(keys[0].slice(0, 60))} is neither an alert (JSON), a sessions.csv header nor a session id`);
  }
  return [...new Set(keys)];
}

/** Per-key scores (max over a key's segments), keys in order of their first segment. */
function perKey(sessions: readonly LogSession[], scores: Float32Array): Map<string, number> {
  const m = new Map<string, number>();
  sessions.forEach((s, i) => m.set(s.key, Math.max(m.get(s.key) ?? -Infinity, scores[i])));
  return m;
}

/** The model's lineage from its metrics (a model without one is version 1, the trained one). */
export function lineageOf(model: DeepSentry): ModelLineage {
  const l = model.metrics.lineage as ModelLineage | undefined;
  return l && typeof l.version === 'number' ? l : { version: 1, parent: null, feedback: [] };
}

/**
 * Learns `o.sessions` (keys of `o.log`) as normal: changes `model` in memory and records a new version in
 * model.metrics.lineage; the caller saves it (DeepSentry.save writes atomically). A key the log does not hold
 * is a DS_INVALID_ARGUMENT naming it and the log.
 */
export async function learnNormal(model: DeepSentry, o: FeedbackOptions): Promise<FeedbackResult> {
  const epochs = o.epochs ?? FEEDBACK_DEFAULTS.epochs;
  const learningRate = o.learningRate ?? FEEDBACK_DEFAULTS.learningRate;
  const weight = o.weight ?? FEEDBACK_DEFAULTS.weight;
  const maxReplay = o.replay ?? FEEDBACK_DEFAULTS.replay;
  const seed = o.seed ?? model.config.seed;
  if (!(Number.isInteger(weight) && weight >= 1)) throw new DeepSentryError('DS_INVALID_ARGUMENT', `Expected a positive integer for the feedback weight but received ${String(weight)}`);
  if (!(Number.isInteger(maxReplay) && maxReplay >= 0)) throw new DeepSentryError('DS_INVALID_ARGUMENT', `Expected a non-negative integer for the replay size but received ${String(maxReplay)}`);
  const keys = [...new Set(o.sessions)];
  if (keys.length === 0) throw new DeepSentryError('DS_INVALID_ARGUMENT', `feedback: no session to learn${o.source ? ` in ${o.source}` : ''}`);
  const t = model.threshold;

  o.reporter?.stage?.('feedback', `reading ${o.log}`);
  const all = await readSessions(model, o.log, o);
  const marked = new Set(keys);
  const present = new Set(all.map((s) => s.key));
  const missing = keys.filter((k) => !present.has(k));
  if (missing.length > 0) {
    throw new DeepSentryError(
      'DS_INVALID_ARGUMENT',
      `${o.source ?? 'feedback'}: ${missing.length} of ${keys.length} sessions are not in ${o.log} (cut with the model's session settings): ${missing.slice(0, 5).join(', ')}${missing.length > 5 ? ', …' : ''} (is --log the log the sessions came from?)`,
    );
  }
  const inputs = all.map((s) => ({ messageIds: s.ids, ended: s.ended }));
  const before = perKey(all, model.scoreSessions(inputs).sessionScores);

  const mine = all.filter((s) => marked.has(s.key));
  const normal = all.filter((s) => !marked.has(s.key) && (before.get(s.key) as number) < t);
  const replay = normal.length > maxReplay ? shuffle(normal.slice(), subSeed(seed, 'feedback-replay')).slice(0, maxReplay) : normal;
  const table = model.messageTable();
  const newTargets = model.detector.learnTargets(table, mine.map((s) => s.ids), mine.map((s) => s.ended));
  const train = [...replay, ...mine.flatMap((s) => Array.from({ length: weight }, () => s))];
  o.reporter?.stage?.('feedback', `fine-tuning on ${mine.length} marked sessions (×${weight}) and ${replay.length} replayed`);
  const fineTune = await model.detector.fineTune(table, train.map((s) => s.ids), {
    epochs,
    learningRate,
    seed,
    ended: train.map((s) => s.ended),
    ...(o.signal ? { signal: o.signal } : {}),
    ...(o.reporter?.progress ? { onProgress: o.reporter.progress } : {}),
  });
  if (o.signal?.aborted) throw new DeepSentryError('DS_CANCELLED', 'feedback was cancelled');
  const relations = new Set<object>();
  if (model.countModel) for (const s of mine) if (s.ended) for (const r of model.countModel.accept(countMessages(s.ids))) relations.add(r);
  const after = perKey(all, model.scoreSessions(inputs).sessionScores);

  const prev = lineageOf(model);
  let parentSha: string | null = null;
  if (model.directory) {
    try {
      parentSha = String(JSON.parse(await fsp.readFile(path.join(model.directory, MODEL_JSON), 'utf8')).contentSha256);
    } catch {
      parentSha = null; // loaded from a directory since replaced: the version number still links them
    }
  }
  const lineage: ModelLineage = {
    version: prev.version + 1,
    parent: { version: prev.version, contentSha256: parentSha },
    feedback: [...prev.feedback, { version: prev.version + 1, log: path.resolve(o.log), source: o.source ?? null, sessions: keys, replaySessions: replay.length, epochs, learningRate, weight, seed }],
  };
  model.metrics.lineage = lineage;

  const known = FIRST_ID + model.knownCount;
  const changed = (k: string) => ({ session: k, before: before.get(k) as number, after: after.get(k) as number });
  const others = [...before.keys()].filter((k) => !marked.has(k));
  let flaggedBefore = 0;
  let flaggedAfter = 0;
  for (const k of before.keys()) {
    if ((before.get(k) as number) >= t) flaggedBefore++;
    if ((after.get(k) as number) >= t) flaggedAfter++;
  }
  return {
    log: o.log,
    threshold: t,
    lineage,
    sessions: keys.map((k) => ({ ...changed(k), unseenMessages: new Set(mine.filter((s) => s.key === k).flatMap((s) => s.ids.filter((id) => id >= known))).size })),
    flaggedBefore,
    flaggedAfter,
    cleared: others.filter((k) => (before.get(k) as number) >= t && (after.get(k) as number) < t).map(changed),
    raised: others.filter((k) => (before.get(k) as number) < t && (after.get(k) as number) >= t).map(changed),
    replaySessions: replay.length,
    newTargets,
    countRelationsChanged: relations.size,
    fineTune,
  };
}
