/**
 * False-alarm feedback (DeepLog's online update): sessions an operator marks as normal are learnt by the model,
 * which is then saved as a new version of itself.
 *
 *   1. the log the sessions came from is read and cut into sessions with the model's own log configuration
 *      (the code `deepsentry score` uses), and every session is scored (before);
 *   2. the detector counts the marked sessions' messages as seen `seen` more times each (Detector.learnTargets:
 *      a message it never predicted becomes a class, rarities are recomputed) and is fine-tuned from its current weights on
 *      the marked sessions (each repeated `weight` times) mixed with a replay of normal sessions, a few epochs,
 *      seeded. The replay: the model does not store the windows it was trained on (only the message table),
 *      so it replays the same log's sessions that it scores below its threshold — what it already judges
 *      normal, in the same log — so that learning the marked sessions does not move the rest;
 *   3. a count relation a marked session violates accepts that session's exact counts (CountModel.accept),
 *      and those of the key's sessions the count horizon judges with it (lib/models/counts.ts countChains;
 *      from a log with times — the live buffer keeps none, so there each session counts alone);
 *   4. the marked keys' compositions (lines per message of all their sessions) join the model's memory of
 *      sessions known normal (lib/models/known_normal.ts): `deepsentry score` gives a key with exactly those
 *      counts 0, whatever its lines score;
 *   5. every session is scored again (after; a key known normal by the memory, before or after, counts 0, as
 *      in sessions.csv). The threshold stays as saved: it was fitted on held-back
 *      training sessions, and feedback brings no new held-back data to refit it on.
 *
 * A marked session's messages never seen in training become known messages of the model (ScoringModel.acceptMessages):
 * they lose their novelty term (the text model's reconstruction error, which otherwise keeps every session that
 * holds them flagged whatever the detector learns) and are saved with it. A message that many of the log's
 * sessions hold and the model never saw is not learnt this way by default: `deepsentry score` sets it aside
 * (common_new.ts), and feedback reads the log as score does (FeedbackOptions.setAsideNew). With that off, this is
 * how a model follows a log whose software changed: training on the later half of hdfs-dev and scoring the
 * earlier half, where a third of the blocks hold read messages the later half never has, marking the 5
 * highest-scoring false alarms normal clears 1,284–1,295 of the other 1,299 (F1 0.12 → 0.92–0.98), against
 * 138–140 with the novelty term kept (bench/results/accuracy-feedback.md). The text model and the count-based
 * sequence model (scoring.sequence, off by default) are not changed.
 *
 * The live monitor (`POST /feedback`, lib/live/server.ts) has no whole log to read: its scorer keeps the
 * sessions it scored recently in a RecentSessions buffer (below), and `learnRecent` runs steps 2–4 on a copy
 * of the model with that buffer as the log, so the monitor keeps scoring with the model it has until the copy
 * is saved and swapped in.
 */
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { DeepSentryError, describeValue } from '../errors';
import { IssueLog } from '../logs/issues';
import { LogProcessor, openLogInput } from '../logs/pipeline';
import { MODEL_JSON } from '../models/files';
import { subSeed } from '../models/params';
import { shuffle, type TrainResult } from '../models/train';
import { countChains, countHorizon, countMessages } from '../models/counts';
import type { SessionInput } from '../models/scoring';
import { KeyCompositions, KnownNormal } from '../models/known_normal';
import type { DeepSentry } from './model';
import { RECENT_DEFAULTS, RecentSessions } from '../live/recent_sessions';
import { lineageOf, type ModelLineage } from '../models/lineage';
import { sessionEnded } from '../logs/sessions';
import type { PipelineReporter } from './train';
import { commonNew } from './common_new';

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
  /**
   * each message of a marked session counts as seen this many more times in the frequencies behind the
   * detector's rarity term (default 100). At the default temperature the rarity of a message weighs as much as
   * the sequence: with 1, a marked re-replication (its `Transmitted block` rare in training) stayed flagged
   * whatever the fine-tuning did; measured on hdfs-dev (README "False-alarm feedback"): 10 and 100 clear the
   * same false alarms, 100 loses only the anomalies whose flagged segment is a marked one's, 2000 raises new
   * false alarms.
   */
  seen?: number;
  /** at most this many replayed sessions, a seeded sample when the log has more (default 20000) */
  replay?: number;
  /** seed of the replay sample and the fine-tuning's shuffling (default the model's) */
  seed?: number;
  reporter?: PipelineReporter;
  signal?: AbortSignal;
  acceptTruncated?: boolean;
  /**
   * read the log as `deepsentry score` scores it (ScoreLogOptions.setAsideNew, default true): the lines of the
   * messages the model never saw that many of its sessions hold are left out of every session, so they are not
   * learnt from the few marked sessions that hold them (which would make them known, no longer set aside, and
   * rare) and the scores before and after are score's
   */
  setAsideNew?: boolean;
}

/** The defaults of FeedbackOptions (measured on hdfs-dev, README "False-alarm feedback"). */
export const FEEDBACK_DEFAULTS = { epochs: 10, learningRate: 3e-3, weight: 2000, seen: 100, replay: 20000 } as const;


/** One marked session's scores. */
export interface FeedbackSession {
  session: string;
  before: number;
  after: number;
  /** messages of the session the model had never seen: learnt now as normal messages */
  newMessages: number;
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
  /**
   * other flagged sessions with a flagged segment that is, message for message, a flagged segment of marked
   * session `as`: learning `as` clears that segment in them too (they stay flagged only by another segment)
   */
  identical: Array<{ session: string; as: string }>;
  /** other sessions of the log no longer flagged, and the ones newly flagged */
  cleared: Array<{ session: string; before: number; after: number }>;
  raised: Array<{ session: string; before: number; after: number }>;
  replaySessions: number;
  /** messages the detector now predicts that it never predicted before */
  newTargets: number;
  /** messages never seen in training (nor accepted before) that the marked sessions brought: now known messages */
  acceptedMessages: number;
  /** the messages left out of the log's sessions as `deepsentry score` sets them aside (FeedbackOptions.setAsideNew) */
  setAside: Array<{ message: string; sessions: number }>;
  countRelationsChanged: number;
  /** compositions of the marked keys the model now knows normal that it did not before (lib/models/known_normal.ts) */
  knownCompositions: number;
  fineTune: TrainResult;
}

interface LogSession {
  key: string;
  ids: number[];
  ended: boolean;
  /** its first and last line's time (null: not known — the live buffer keeps none — or the lines have none) */
  firstTs: number | null;
  lastTs: number | null;
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
      out.push({ key: s.key, ids, ended: sessionEnded(s.reason, idle, s.lastTs), firstTs: s.firstTs, lastTs: s.lastTs });
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
  return parseFeedbackText(text, `feedback file ${file}`);
}

/** readFeedbackFile's parser on text already read; `label` names it in errors (`feedback file FILE`, `the body`). */
export function parseFeedbackText(text: string, label: string): string[] {
  const lines = text.split(/\r?\n/);
  const first = lines.findIndex((l) => l.trim() !== '' && !l.trim().startsWith('#'));
  if (first < 0) throw new DeepSentryError('DS_INVALID_ARGUMENT', `${label} is empty: it should hold alerts (NDJSON), a sessions.csv or session ids, one per line`);
  const bad = (n: number, what: string) => new DeepSentryError('DS_INVALID_ARGUMENT', `${label} line ${n + 1}: ${what}`);
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
    if (keys.length === 0) throw new DeepSentryError('DS_INVALID_ARGUMENT', `${label}: no row of this sessions.csv is flagged (anomaly = 1): nothing to learn`);
  } else {
    for (const l of lines) {
      const k = l.replace(/#.*$/, '').trim();
      if (k !== '') keys.push(k);
    }
    if (/[,\t{]/.test(keys[0])) throw bad(first, `${JSON.stringify(keys[0].slice(0, 60))} is neither an alert (JSON), a sessions.csv header nor a session id`);
  }
  return [...new Set(keys)];
}

/**
 * The sessions a `POST /feedback` body marks as normal: a JSON object `{"sessions": ["id", …]}`, or what
 * `--normal` takes (alerts NDJSON, a sessions.csv, session ids one per line: parseFeedbackText). A body that
 * is one JSON object with a `sessions` field is the former; any other body the latter.
 */
export function parseFeedbackBody(text: string): string[] {
  const t = text.trim();
  if (t.startsWith('{') && t.endsWith('}')) {
    let o: unknown;
    try {
      o = JSON.parse(t);
    } catch {
      o = null; // NDJSON of several alerts: one object per line
    }
    if (o !== null && typeof o === 'object' && 'sessions' in o) {
      const extra = Object.keys(o).filter((k) => k !== 'sessions');
      if (extra.length > 0) throw new DeepSentryError('DS_INVALID_ARGUMENT', `the body has unknown field(s) ${extra.map((k) => JSON.stringify(k)).join(', ')}: it takes {"sessions": ["id", …]}`);
      const ks = (o as { sessions: unknown }).sessions;
      if (!Array.isArray(ks)) throw new DeepSentryError('DS_INVALID_ARGUMENT', `the body's "sessions" is ${describeValue(ks)}, not an array of session ids`);
      const i = ks.findIndex((k) => typeof k !== 'string' || k === '');
      if (i >= 0) throw new DeepSentryError('DS_INVALID_ARGUMENT', `the body's sessions[${i}] is ${describeValue(ks[i])}, not a session id (a non-empty string)`);
      if (ks.length === 0) throw new DeepSentryError('DS_INVALID_ARGUMENT', 'the body\'s "sessions" is empty: nothing to learn');
      return [...new Set(ks as string[])];
    }
  }
  return parseFeedbackText(text, 'the body');
}

/**
 * model.scoreSessions's session scores, 1000 sessions at a time with a turn of the event loop between: a live
 * monitor scoring in the main thread (`--no-worker`) answers HTTP and reads its input meanwhile.
 */
async function sessionScores(model: DeepSentry, inputs: readonly SessionInput[]): Promise<Float32Array> {
  const out = new Float32Array(inputs.length);
  for (let i = 0; i < inputs.length; i += 1000) {
    out.set(model.scoreSessions(inputs.slice(i, i + 1000)).sessionScores, i);
    await new Promise((r) => setImmediate(r));
  }
  return out;
}

/**
 * Per-key scores (max over a key's segments), keys in order of their first segment; 0 for a key the model's
 * memory knows normal (as `deepsentry score` gives it: every segment ended, the composition remembered).
 */
function perKey(model: DeepSentry, sessions: readonly LogSession[], scores: Float32Array): Map<string, number> {
  const m = new Map<string, number>();
  sessions.forEach((s, i) => m.set(s.key, Math.max(m.get(s.key) ?? -Infinity, scores[i])));
  const memory = model.config.scoring.knownNormal ? model.knownNormal : null;
  if (memory !== null && memory.size > 0) {
    const c = compositions(model, sessions);
    for (const key of m.keys()) if (c.known(memory, key)) m.set(key, 0);
  }
  return m;
}

/** The keys' compositions, as `deepsentry score` adds them up (a key with a segment that did not end: incomplete). */
function compositions(model: DeepSentry, sessions: readonly LogSession[]): KeyCompositions {
  const out = new KeyCompositions();
  for (const s of sessions) {
    if (!s.ended) out.incomplete(s.key);
    else out.add(s.key, [...countMessages(s.ids)].map(([id, n]) => [model.messageText(id) ?? `#${id}`, n] as const));
  }
  return out;
}


/**
 * Learns `o.sessions` (keys of `o.log`) as normal: changes `model` in memory and records a new version in
 * model.metrics.lineage; the caller saves it (DeepSentry.save writes atomically). A key the log does not hold
 * is a DS_INVALID_ARGUMENT naming it and the log.
 */
export async function learnNormal(model: DeepSentry, o: FeedbackOptions): Promise<FeedbackResult> {
  checkFeedbackOptions(o);
  o.reporter?.stage?.('feedback', `reading ${o.log}`);
  const read = await readSessions(model, o.log, o);
  const { sessions: all, setAside } = o.setAsideNew === false ? { sessions: read, setAside: [] } : setAsideCommonNew(model, read);
  const r = await learnSessions(model, all, o, path.resolve(o.log), (missing, keys) =>
    new DeepSentryError(
      'DS_INVALID_ARGUMENT',
      `${o.source ?? 'feedback'}: ${missing.length} of ${keys.length} sessions are not in ${o.log} (cut with the model's session settings): ${listKeys(missing)} (is the log option the log the sessions came from?)`,
    ),
  );
  r.setAside = setAside;
  return r;
}

/**
 * The log's sessions without the lines of the messages `deepsentry score` would set aside in it (common_new.ts:
 * never seen by the model, held by COMMON_NEW_SHARE of the keys or more), and those messages. A
 * session left with no line is dropped, as score leaves it unscored.
 */
function setAsideCommonNew(model: DeepSentry, sessions: LogSession[]): { sessions: LogSession[]; setAside: Array<{ message: string; sessions: number }> } {
  const newIn = new Map<string, Set<string>>();
  const keys = new Set<string>();
  for (const s of sessions) {
    keys.add(s.key);
    for (const id of s.ids) {
      if (model.knows(id)) continue;
      const m = model.messageText(id) as string;
      let ks = newIn.get(m);
      if (ks === undefined) newIn.set(m, (ks = new Set()));
      ks.add(s.key);
    }
  }
  const setAside = commonNew(newIn, keys.size);
  if (setAside.length === 0) return { sessions, setAside };
  const aside = new Set(setAside.map((c) => model.messageId(c.message)));
  const kept = sessions.map((s) => ({ ...s, ids: s.ids.filter((id) => !aside.has(id)) })).filter((s) => s.ids.length > 0);
  return { sessions: kept, setAside };
}

/** At most five keys, for an error message. */
function listKeys(keys: readonly string[]): string {
  return `${keys.slice(0, 5).join(', ')}${keys.length > 5 ? ', …' : ''}`;
}

function checkFeedbackOptions(o: Omit<FeedbackOptions, 'log'>): void {
  const weight = o.weight ?? FEEDBACK_DEFAULTS.weight;
  const maxReplay = o.replay ?? FEEDBACK_DEFAULTS.replay;
  if (!(Number.isInteger(weight) && weight >= 1)) throw new DeepSentryError('DS_INVALID_ARGUMENT', `Expected a positive integer for the feedback weight but received ${String(weight)}`);
  const seen = o.seen ?? FEEDBACK_DEFAULTS.seen;
  if (!(Number.isInteger(seen) && seen >= 1)) throw new DeepSentryError('DS_INVALID_ARGUMENT', `Expected a positive integer for the feedback's seen count but received ${String(seen)}`);
  if (!(Number.isInteger(maxReplay) && maxReplay >= 0)) throw new DeepSentryError('DS_INVALID_ARGUMENT', `Expected a non-negative integer for the replay size but received ${String(maxReplay)}`);
  if (new Set(o.sessions).size === 0) throw new DeepSentryError('DS_INVALID_ARGUMENT', `feedback: no session to learn${o.source ? ` in ${o.source}` : ''}`);
}

/**
 * Steps 2–4 of the module comment on sessions already cut (`all`, the log or the live buffer, named `from` in
 * the lineage); `unknown` is the error for marked keys that `all` does not hold.
 */
async function learnSessions(
  model: DeepSentry,
  all: readonly LogSession[],
  o: Omit<FeedbackOptions, 'log'>,
  from: string,
  unknown: (missing: string[], keys: string[]) => Error,
): Promise<FeedbackResult> {
  const epochs = o.epochs ?? FEEDBACK_DEFAULTS.epochs;
  const learningRate = o.learningRate ?? FEEDBACK_DEFAULTS.learningRate;
  const weight = o.weight ?? FEEDBACK_DEFAULTS.weight;
  const seen = o.seen ?? FEEDBACK_DEFAULTS.seen;
  const maxReplay = o.replay ?? FEEDBACK_DEFAULTS.replay;
  const seed = o.seed ?? model.config.seed;
  const keys = [...new Set(o.sessions)];
  const t = model.threshold;
  const marked = new Set(keys);
  const present = new Set(all.map((s) => s.key));
  const missing = keys.filter((k) => !present.has(k));
  if (missing.length > 0) throw unknown(missing, keys);
  // Count relations judge a key's sessions within the count horizon together, as `score` does (sessions
  // without times, from the live buffer, each on its own).
  const { judges } = countChains(all, countHorizon(model.config.scoring.countTimeoutMs, model.logConfig.session.idleTimeoutMs, model.logConfig.session.mode), (s) => s.ended);
  const chainIds = (c: LogSession[]) => c.flatMap((s) => s.ids);
  const inputs: SessionInput[] = all.map((s) => ({ messageIds: s.ids, ended: s.ended, countIds: judges.has(s) ? chainIds(judges.get(s) as LogSession[]) : null }));
  const segBefore = await sessionScores(model, inputs);
  const before = perKey(model, all, segBefore);
  // Flagged segments of other sessions that are a marked session's flagged segment, message for message:
  // whatever scores segments scores them alike, so learning the marked one clears them too (see `identical`).
  const sig = (s: LogSession) => `${s.ids.join(',')}${s.ended ? ',end' : ''}`;
  const markedFlags = new Map<string, string>();
  all.forEach((s, i) => {
    if (marked.has(s.key) && segBefore[i] >= t) markedFlags.set(sig(s), s.key);
  });
  const identical = new Map<string, string>();
  all.forEach((s, i) => {
    const as = segBefore[i] >= t && !marked.has(s.key) ? markedFlags.get(sig(s)) : undefined;
    if (as !== undefined && !identical.has(s.key)) identical.set(s.key, as);
  });

  const mine = all.filter((s) => marked.has(s.key));
  const normal = all.filter((s) => !marked.has(s.key) && (before.get(s.key) as number) < t);
  const replay = normal.length > maxReplay ? shuffle(normal.slice(), subSeed(seed, 'feedback-replay')).slice(0, maxReplay) : normal;
  const newOf = (k: string) => new Set(mine.filter((s) => s.key === k).flatMap((s) => s.ids.filter((id) => !model.knows(id)))).size;
  const newMessages = new Map(keys.map((k) => [k, newOf(k)]));
  let acceptedMessages = 0;
  for (const s of mine) acceptedMessages += model.acceptMessages(s.ids);
  const table = model.messageTable();
  const newTargets = model.detector.learnTargets(table, mine.map((s) => s.ids), mine.map((s) => s.ended), seen);
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
  if (model.countModel) {
    for (const s of mine) {
      if (!s.ended) continue;
      for (const r of model.countModel.accept(countMessages(s.ids))) relations.add(r);
      const chain = judges.get(s);
      if (chain && chain.length > 1) for (const r of model.countModel.accept(countMessages(chainIds(chain)))) relations.add(r);
    }
  }
  const memory = (model.knownNormal ??= new KnownNormal());
  const known = memory.size;
  for (const [, c] of compositions(model, mine).complete()) memory.add(c, 'feedback');
  const after = perKey(model, all, await sessionScores(model, inputs));

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
    feedback: [...prev.feedback, { version: prev.version + 1, log: from, source: o.source ?? null, sessions: keys, replaySessions: replay.length, epochs, learningRate, weight, seen, seed }],
  };
  model.metrics.lineage = lineage;

  const changed = (k: string) => ({ session: k, before: before.get(k) as number, after: after.get(k) as number });
  const others = [...before.keys()].filter((k) => !marked.has(k));
  let flaggedBefore = 0;
  let flaggedAfter = 0;
  for (const k of before.keys()) {
    if ((before.get(k) as number) >= t) flaggedBefore++;
    if ((after.get(k) as number) >= t) flaggedAfter++;
  }
  return {
    log: from,
    threshold: t,
    lineage,
    sessions: keys.map((k) => ({ ...changed(k), newMessages: newMessages.get(k) as number })),
    flaggedBefore,
    flaggedAfter,
    identical: [...identical].map(([session, as]) => ({ session, as })),
    cleared: others.filter((k) => (before.get(k) as number) >= t && (after.get(k) as number) < t).map(changed),
    raised: others.filter((k) => (before.get(k) as number) < t && (after.get(k) as number) >= t).map(changed),
    replaySessions: replay.length,
    newTargets,
    acceptedMessages,
    setAside: [],
    countRelationsChanged: relations.size,
    knownCompositions: memory.size - known,
    fineTune,
  };
}

/** A feedback result as JSON (what `deepsentry feedback --json` prints and `POST /feedback` answers), with its warnings. */
export interface FeedbackSummary extends Omit<FeedbackResult, 'fineTune'> {
  /** the model directory written (null: the model is only in memory) */
  model: string | null;
  fineTune: { epochs: number; loss: number; seconds: number };
  /** a marked session still flagged, other sessions newly flagged */
  warnings: string[];
}

const num = (x: number) => x.toPrecision(6);

/** The JSON form of a result; `model` is the directory written. */
export function summarizeFeedback(r: FeedbackResult, model: string | null): FeedbackSummary {
  const { fineTune, ...rest } = r;
  const warnings = r.sessions
    .filter((x) => x.after >= r.threshold)
    .map((x) => `session ${x.session} still scores ${num(x.after)} ≥ the threshold: more epochs, weight or seen (feedback options), or train again with it`);
  if (r.identical.length > 0) {
    warnings.push(`${r.identical.length} other flagged sessions have a flagged segment that is, message for message, a marked session's: no model of segments can tell them apart, so that segment is cleared in them too: ${listKeys(r.identical.map((x) => `${x.session} (as ${x.as})`))}`);
  }
  if (r.raised.length > 0) warnings.push(`${r.raised.length} other sessions of ${r.log} are now flagged that were not: ${listKeys(r.raised.map((x) => x.session))}`);
  if (r.setAside.length > 0) {
    warnings.push(
      `${r.setAside.length} messages the model never saw that many sessions of ${r.log} hold were left out of its sessions, as \`deepsentry score\` sets them aside, and stay unknown: ${r.setAside
        .slice(0, 5)
        .map((c) => `"${c.message}" (${c.sessions} sessions)`)
        .join(', ')}. To learn them from the marked sessions too, set setAsideNew false; to know them well, train on this log.`,
    );
  }
  return { model, ...rest, fineTune: { epochs: fineTune.epochs, loss: fineTune.loss, seconds: fineTune.seconds }, warnings };
}

/** Options of learnRecent: learnNormal's, without a log. */
export type RecentFeedbackOptions = Omit<FeedbackOptions, 'log' | 'acceptTruncated'> & {
  /** what the sessions were read from (recorded in the lineage), e.g. the live monitor's input */
  from: string;
};

/**
 * learnNormal for the live monitor: the marked sessions and the replay come from `recent` (the sessions its
 * scorer saw), and a copy of `model` learns them, so `model` keeps scoring meanwhile and is untouched by a
 * failure. The copy is saved atomically to `model.directory` when the model came from one (its lineage as
 * learnNormal's), and returned for the caller to swap in. A marked key the buffer does not hold, or holds
 * only in part (longer than the buffer keeps, or open since before a restart), is a DS_INVALID_ARGUMENT naming it.
 */
export async function learnRecent(model: DeepSentry, recent: RecentSessions, o: RecentFeedbackOptions): Promise<{ model: DeepSentry; summary: FeedbackSummary }> {
  checkFeedbackOptions(o);
  const held = recent.sessions();
  const keys = [...new Set(o.sessions)];
  const incomplete = new Set(held.filter((s) => s.truncated || s.partial).map((s) => s.key));
  const bad = keys.filter((k) => incomplete.has(k));
  if (bad.length > 0) {
    throw new DeepSentryError(
      'DS_INVALID_ARGUMENT',
      `${o.source ?? 'feedback'}: ${bad.length} of ${keys.length} sessions are held only in part (longer than ${RECENT_DEFAULTS.messagesPerSession} lines, or open since before the monitor restarted): ${listKeys(bad)} (learn them with \`deepsentry feedback --log\`)`,
    );
  }
  const copy = model.clone();
  try {
    const all = held.filter((s) => !incomplete.has(s.key)).map((s) => ({ key: s.key, ids: s.messages.map((m) => copy.messageId(m)), ended: s.ended, firstTs: null, lastTs: null }));
    const r = await learnSessions(copy, all, o, o.from, (missing) =>
      new DeepSentryError(
        'DS_INVALID_ARGUMENT',
        `${o.source ?? 'feedback'}: ${missing.length} of ${keys.length} sessions are not among the ${recent.size} sessions the monitor scored recently: ${listKeys(missing)}`,
      ),
    );
    if (copy.directory) await copy.save(copy.directory);
    return { model: copy, summary: summarizeFeedback(r, copy.directory) };
  } catch (e) {
    copy.dispose();
    throw e;
  }
}
