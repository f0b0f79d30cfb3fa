/**
 * Batch scoring of a log with a trained model, streaming, through the one engine every scoring path uses: lib/logs
 * reads the input (its line policy: BOM, CRLF, blank, invalid UTF-8, NUL and over-long lines) and the live model
 * scorer (lib/live/model_scorer.ts, with batch scoring's rule for which ends are scored: censorEnds) parses with
 * the model's own log configuration (format, masking, sessions), scores each line by its window as it comes
 * (distinct windows of a chunk in one detector call) and each session's end, so the scores are those of the
 * in-process API and of `deepsentry live` on the same lines. A file of READER_THREAD_BYTES and more is read,
 * parsed and masked in a reader thread (score_reader.ts) while this thread scores, with the same functions and
 * the same scorer calls: the same outputs. A session's rows go out when it closes, to
 * `sessions.csv` (`session,score,anomaly,lines,first_ts,last_ts,top_line,message,expected,window,reason`: the last five explain a
 * flagged session — the line number of its highest-scoring line (empty when that was its end), that line's masked
 * message, the message the detector expected there, the messages before it that the detector read (joined by
 * ` ⏎ `), and the count relation it violated; empty for sessions below the threshold) and `lines.csv`
 * (`line_no,session,score,anomaly`, one row per line and session it belongs to, in session-closing order).
 * Memory holds the open sessions (their rows until they close) and the distinct messages, never the whole input. `anomaly` is 1 when score ≥ the model's saved threshold.
 *
 * With an idle timeout (logs.session.idleTimeoutMs, the pipeline default) a key's lines are split into
 * segments at quiet gaps ≥ the timeout, each scored as the live monitor would (start padding, its own end
 * event unless the input stopped less than a timeout after it: see sessionEnded); sessions.csv keeps one row
 * per key (score = max over its segments), written when the input ends, so memory also holds one small
 * record per key seen.
 *
 * With setAsideNew, a file whose sessions often hold a message the model never saw (commonNewMessages: a
 * change of the log, not an anomaly) is scored again with the lines of those messages set aside: they are in
 * no session and no score (the scorer's setAside), and lines.csv still has a row for each, with an empty score
 * and anomaly 0, among its session's rows (or, when its key has no scored session, at the end: the key's row
 * in sessions.csv is then unscored, -Infinity with 0 lines).
 */
import { createWriteStream, promises as fsp } from 'node:fs';
import * as path from 'node:path';
import type { Readable } from 'node:stream';
import { KeyCompositions } from '../models/known_normal';
import { COMMON_NEW_SHARE, commonNew } from './common_new';
import { DeepSentryError } from '../errors';
import { inputWarnings, IssueLog, ISSUE_KINDS } from '../logs/issues';
import type { ReadStats } from '../logs/lines';
import { openLogInput } from '../logs/pipeline';
import { ModelScorer, type ModelEvent } from '../live/model_scorer';
import type { RawLine } from '../live/types';
import type { ClosedSession } from '../logs/sessions';
import type { DeepSentry } from './model';
import type { PipelineReporter } from './train';
import { endStream, writeWithBackpressure } from '../streams';
import { createOutputDir, type OutputDirState } from '../outdir';
import { EVALUATION_FILES } from '../eval/files';
import { mark } from '../marks';
import { CHUNK_LINES, readsAs, startScoreReader, type ReaderDone, type ScoreReader } from './score_reader';

export { READER_THREAD_BYTES } from './score_reader';

/** Options of scoreLog. */
export interface ScoreLogOptions {
  /**
   * score only sessions whose key passes (run: the sessions after the training part); the lines of other keys
   * are parsed (they move the session clock) but open no session, so they take no place among logs.session.maxOpen
   */
  selectKey?: (key: string) => boolean;
  /** write lines.csv too (default true) */
  lines?: boolean;
  /** lines.csv gets a `text` column: the line's message as parsed (default false: the file stays small) */
  withText?: boolean;
  reporter?: PipelineReporter;
  signal?: AbortSignal;
  /** replace an earlier run's output in outDir (lib/outdir.ts); default: refuse it */
  force?: boolean;
  /** the caller has checked outDir already (checkScoreOutput; runPipeline, which writes more into it) */
  outputChecked?: boolean;
  /** a truncated or corrupt gzip log: keep the lines before the damage (a warning) instead of failing */
  acceptTruncated?: boolean;
  /**
   * read, parse and mask a file in a reader thread beside the scoring (score_reader.ts), or in this thread;
   * default: in a thread for files of READER_THREAD_BYTES and more (a stream is always read here). Same outputs.
   */
  readerThread?: boolean;
  /**
   * the reader thread, already started on `source` (a path) with this model's log configuration and these
   * options (startScoreReader), or null to read `source` in this thread: `deepsentry score` starts it before it
   * loads the model, so that reading overlaps the loading. scoreLog reads it to its end, or closes it when it fails.
   */
  reader?: ScoreReader | null;
  /**
   * When the log holds messages the model never saw that a large share of the sessions hold (commonNewMessages)
   * and `source` is a file: score it again with those messages set aside (ModelScorerOptions.setAside: their
   * lines are left out of their sessions and not scored, lines.csv lists them without a score), and write that
   * second pass's outputs. Default true; false scores them as any line (every session holding one scores as
   * new). Why on: a message that a large share of the sessions hold is a change of the log (a new version
   * writing a new message), not an anomaly, and scoring it flags every session it is in: on hdfs-dev with the
   * model of the later half, 1,300 of the earlier half's 2,575 blocks (F1 0.13), and 0.975 with them set aside
   * (README "Accuracy"). The change itself is reported (the warning and `setAside`), and the rest of each
   * session is still scored, so an incident that writes a new message and breaks what the model knows is
   * still flagged.
   */
  setAsideNew?: boolean;
}

/** The files scoreLog writes into its directory. */
export const SCORE_FILES = { sessions: 'sessions.csv', lines: 'lines.csv' } as const;

/** What scoreLog did. */
export interface ScoreSummary {
  input: string;
  /** physical lines read, lines parsed, lines not parsed (bad or foreign lines) */
  lines: number;
  parsed: number;
  unparsed: number;
  sessions: number;
  anomalies: number;
  threshold: number;
  /** messages the model had never seen */
  newMessages: number;
  /**
   * messages the model had never seen (nor accepted by feedback) that at least COMMON_NEW_SHARE of the scored
   * sessions hold, most common first (at most 5): what changed in the log since training (see scoreWarnings)
   */
  commonNewMessages: Array<{ message: string; sessions: number }>;
  /**
   * the messages set aside (setAsideNew): every message the model never saw that at least COMMON_NEW_SHARE of
   * the sessions held on a first pass, with how many sessions held them, most common first; [] when none.
   * Their lines are in no session and have no score; the other fields describe the pass without them.
   */
  setAside: Array<{ message: string; sessions: number }>;
  files: { sessions: string; lines: string | null };
  seconds: number;
  /** what the operator should know about the result (see scoreWarnings; a damaged gzip input accepted) */
  warnings: string[];
  /** an earlier run's files that force removed from the output directory */
  replaced: string[];
}

/** Above this share of flagged sessions the result says more about the model than about the log. */
export const HIGH_FLAG_RATE = 0.2;
export { COMMON_NEW_SHARE };

/**
 * Warnings on a scoring result. Anomalies are rare by definition (a few percent of sessions in the public
 * datasets); when more than HIGH_FLAG_RATE of at least 20 sessions are flagged, the scored log differs from
 * what the model was trained on — new message types, another system, another format version — and the flags
 * are mostly that difference (measured: `run` on the 2,000-line BGL sample flags 73 % of the later sessions;
 * 77 distinct masked messages of the later half never occur in the earlier one).
 */
export function scoreWarnings(s: Pick<ScoreSummary, 'sessions' | 'anomalies' | 'newMessages'> & Partial<Pick<ScoreSummary, 'commonNewMessages'>>): string[] {
  const out: string[] = [];
  const common = s.commonNewMessages ?? [];
  if (common.length > 0) {
    const pct = (n: number) => `${Math.round((100 * n) / s.sessions)} %`;
    out.push(
      `${common.length === 1 ? 'a message' : `${common.length} messages`} the model never saw in training ${common.length === 1 ? 'is' : 'are'} in ${pct(common[common.length - 1].sessions)} of the scored sessions or more: ` +
        `${common.map((c) => `"${c.message}" (${pct(c.sessions)})`).join(', ')}. The log has changed since the model was trained, and every session holding ${common.length === 1 ? 'it' : 'them'} scores as new. ` +
        `If they are normal, mark a few such sessions normal (\`deepsentry feedback --model MODEL --normal IDS --log LOG\`) or train on this log.`,
    );
  }
  if (s.sessions >= 20 && s.anomalies > HIGH_FLAG_RATE * s.sessions) {
    out.push(
      `${s.anomalies} of ${s.sessions} scored sessions (${Math.round((100 * s.anomalies) / s.sessions)} %) are above the threshold: far more than anomalies usually are. ` +
        `The log differs from the model's training data${s.newMessages > 0 ? ` (${s.newMessages} messages the model never saw)` : ''}: train on more of this kind of log.`,
    );
  }
  return out;
}

/**
 * Checks (and creates) score's output folder before any work (lib/outdir.ts): new scores make an earlier
 * run's scores and evaluation there stale (lines.csv too, when this run writes none).
 */
export function checkScoreOutput(outDir: string, o: Pick<ScoreLogOptions, 'lines' | 'force'> & { inputs: string[] }): Promise<OutputDirState> {
  return createOutputDir(outDir, {
    writes: o.lines === false ? [SCORE_FILES.sessions] : Object.values(SCORE_FILES),
    stale: [SCORE_FILES.lines, ...EVALUATION_FILES],
    inputs: o.inputs,
    ...(o.force ? { force: true } : {}),
  });
}

/**
 * A non-finite score is never written: it comes from a model that should not have loaded (lib/models/files.ts
 * refuses non-finite weights), so it is a DS_MODEL error naming the model and the session.
 */
function finiteScore(score: number, key: string, model: string | null): void {
  if (!Number.isFinite(score)) {
    throw new DeepSentryError('DS_MODEL', `the model ${model ?? '(in memory)'} scored session ${key} as ${score}: a score must be a finite number (are its weights or threshold corrupt?)`);
  }
}

/** An open session (segment) of scoreLog: its scored lines so far and its highest-scoring event. */
interface Segment {
  /** its key as a CSV field */
  field: string;
  /** its lines' scores for lines.csv (their line numbers are the closed session's rows), and with withText their messages, kept until it closes */
  scores: number[];
  texts: string[];
  max: number;
  top: ModelEvent | null;
  /** the line numbers (and with withText the messages) of its key's lines set aside since it opened, for lines.csv; null: none */
  aside: number[] | null;
  asideTexts: string[] | null;
}

const iso = (t: number | null) => (t === null ? '' : new Date(t).toISOString());
/** A CSV field: quoted when it holds a comma, quote or newline. */
const csv = (s: string) => (/[",\n\r]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s);
/** Shortest round-trip text of a float32 score (no integer truncation, no 17-digit noise). */
const num = (x: number) => (Number.isFinite(x) ? String(Math.fround(x) === x ? Number(x.toPrecision(9)) : x) : x > 0 ? 'Infinity' : '-Infinity');

/**
 * The warning on messages set aside (ScoreLogOptions.setAsideNew), their share of the `sessions` of the pass
 * that found them: in place of scoreWarnings' on common new messages, which the pass without them no longer meets.
 */
export function setAsideWarning(setAside: ReadonlyArray<{ message: string; sessions: number }>, sessions: number): string {
  const one = setAside.length === 1;
  const pct = (n: number) => `${Math.round((100 * n) / sessions)} %`;
  const shown = setAside.slice(0, 5).map((c) => `"${c.message}" (${pct(c.sessions)})`);
  if (setAside.length > 5) shown.push(`and ${setAside.length - 5} more (the result's setAside list)`);
  return (
    `${one ? 'a message' : `${setAside.length} messages`} the model never saw in training ${one ? 'is' : 'are'} in ${pct(setAside[setAside.length - 1].sessions)} of the scored sessions or more and ${one ? 'was' : 'were'} set aside (setAsideNew): ${shown.join(', ')}. ` +
    `${one ? 'Its' : 'Their'} lines were left out of their sessions and not scored (lines.csv lists them with no score): the scores say nothing about them. ` +
    `To score them anyway, set setAsideNew false; if they are normal, make them known: mark a few such sessions normal (\`deepsentry feedback --model MODEL --normal IDS --log LOG\`) or train on this log.`
  );
}

/** The warning when messages would be set aside but the input is a stream, which cannot be read twice. */
export const SET_ASIDE_NEEDS_FILE =
  'nothing was set aside: setAsideNew scores the log a second time without the messages above, and a stream (stdin) cannot be read twice. Save the log to a file and score the file to set them aside.';

/** What one pass of scoreLog over its input found (its outputs are in the .tmp files). */
interface Pass {
  stats: ReadStats;
  parsed: number;
  sessions: number;
  anomalies: number;
  issues: IssueLog;
  /** the keys holding each message the model does not know, as their sessions were judged */
  newIn: Map<string, Set<string>>;
}

/**
 * Scores `source` (a path or a byte stream) with `model` into `outDir`/sessions.csv and lines.csv.
 * Errors: an empty log, or a log of which no line parses with the model's format, is DS_PARSE naming the
 * input and the format; an unreadable input is DS_IO.
 *
 * With setAsideNew, a file holding messages the model never saw that many sessions hold (commonNewMessages)
 * is scored a second time with them set aside (ModelScorerOptions.setAside), by the same model in memory
 * and a reader thread started again on the file; the second pass's outputs replace the first's .tmp files
 * before they are renamed into place, so an error in either pass leaves no output half-written.
 */
export async function scoreLog(model: DeepSentry, source: string | Readable, outDir: string, o: ScoreLogOptions = {}): Promise<ScoreSummary> {
  const t0 = process.hrtime.bigint();
  const config = model.logConfig;
  const name = typeof source === 'string' ? source : '<stream>';
  // a reader thread started by the caller, or by this function on a large file (below); closed on failure
  let reader = o.reader ?? null;
  const outState = o.outputChecked
    ? null
    : await checkScoreOutput(outDir, { ...o, inputs: [...(typeof source === 'string' ? [source] : []), ...(model.directory ? [model.directory] : [])] }).catch(async (e: unknown) => {
        await reader?.close();
        throw e;
      });
  const sessionsFile = path.join(outDir, SCORE_FILES.sessions);
  const linesFile = o.lines === false ? null : path.join(outDir, SCORE_FILES.lines);
  const withText = linesFile !== null && o.withText === true;
  const threshold = model.threshold;
  const selectKey = o.selectKey;
  const known = model.tableSize;
  /**
   * With compositions known normal (lib/models/known_normal.ts): per key, the lines per masked message of all its
   * sessions (added up as the scorer judges them), or null once one ended unscored (an evicted or censored session
   * is in no judgement, so its lines are not counted). A key whose composition is known scores 0 in sessions.csv.
   */
  const memory = model.config.scoring.knownNormal && model.knownNormal !== null && model.knownNormal.size > 0 ? model.knownNormal : null;
  // lines.csv's `score,anomaly` of each score met: scores repeat (a line's score is its window's, and windows
  // repeat), and formatting a float32 was the most costly part of writing a row. Bounded: starts over when full.
  const tails = new Map<number, string>();
  const tail = (x: number): string => {
    let t = tails.get(x);
    if (t === undefined) {
      if (tails.size >= 100_000) tails.clear();
      t = `${num(x)},${x >= threshold ? 1 : 0}`;
      tails.set(x, t);
    }
    return t;
  };
  // The model is read outside `take`: its shape changes while it scores (the messages it meets), and a read of
  // it inside would throw take's optimised code away at each change (take's loop runs at every line).
  const modelDir = model.directory;
  /** The explanations of these top events (expected messages predicted: see take). */
  const explain = (tops: ModelEvent[]) =>
    model.explainWindows(
      tops.map((t) => {
        const expected = t.predicted ?? null;
        return t.isSessionEnd && t.counts ? { window: t.ids, expected, counts: new Map(Object.entries(t.counts).map(([m, n]) => [model.messageId(m), n])) } : { window: t.ids, expected };
      }),
    );
  const spec = typeof source === 'string' ? { file: source, name, logConfig: config, acceptTruncated: o.acceptTruncated === true, withMessages: withText } : null;

  /** One pass over the input into the .tmp files, with the lines of these messages set aside (null: none). */
  const pass = async (setAside: ReadonlySet<string> | null): Promise<Pass> => {
    const issues = new IssueLog(false, config.reportFirst);
    const open = (f: string) => {
      const ws = createWriteStream(`${f}.tmp`, { highWaterMark: 1 << 20 });
      ws.on('error', () => {}); // surfaced through writeWithBackpressure()/endStream()
      return ws;
    };
    const sOut = open(sessionsFile);
    const lOut = linesFile ? open(linesFile) : null;
    sOut.write('session,score,anomaly,lines,first_ts,last_ts,top_line,message,expected,window,reason\n');
    lOut?.write(`line_no,session,score,anomaly${withText ? ',text' : ''}\n`);
    // Per key: an idle timeout splits a key's lines into segments (sessions as the live monitor sees them), each
    // scored on its own; the key's score is the max over them. Memory: one small record per key, not per line.
    const byKey = new Map<string, { score: number; lines: number; firstTs: number | null; lastTs: number | null; why: string }>();
    /** the open segments by key */
    const segments = new Map<string, Segment>();
    const compositions = new KeyCompositions();
    /** the keys holding each message the model does not know, as their sessions are judged (commonNewMessages) */
    const newIn = new Map<string, Set<string>>();
    const onJudged = (key: string, counts: Readonly<Record<string, number>>) => {
      if (memory !== null) compositions.add(key, Object.entries(counts));
      for (const m in counts) {
        if (model.knows(model.messageId(m))) continue;
        let keys = newIn.get(m);
        if (keys === undefined) newIn.set(m, (keys = new Set()));
        keys.add(key);
      }
    };
    const isKnown = (key: string) => memory !== null && compositions.known(memory, key);
    let sessions = 0;
    let anomalies = 0;
    /** lines.csv rows of a segment's lines set aside (no score, anomaly 0), under session field `field` */
    const asideRow = (g: Segment, a: number, field: string) => `${(g.aside as number[])[a]},${field},,0${withText ? `,${csv((g.asideTexts as string[])[a])}` : ''}\n`;
    /** Folds a scorer call's events into the open segments; the segments that closed go out. */
    const take = async (scorer: ModelScorer, events: ModelEvent[]) => {
      const closed: { key: string; g: Segment; end: ModelEvent }[] = [];
      // consecutive events of one session (most lines) skip the lookup
      let lastKey = '';
      let g: Segment | null = null;
      for (const e of events) {
        if (g === null || e.session !== lastKey) {
          lastKey = e.session;
          g = segments.get(lastKey) ?? null;
          if (g === null) segments.set(lastKey, (g = { field: csv(lastKey), scores: [], texts: [], max: -Infinity, top: null, aside: null, asideTexts: null }));
        }
        if (setAside !== null && e.setAside) {
          // a line set aside: a row in lines.csv with its session's (in line order), nothing else
          if (lOut) {
            (g.aside ??= []).push(e.lineNo);
            if (withText) (g.asideTexts ??= []).push(e.message ?? '');
          }
          continue;
        }
        // The first event of the highest score explains the segment.
        if (e.score > g.max) {
          g.max = e.score;
          g.top = e;
        }
        if (!e.isSessionEnd) {
          finiteScore(e.score, e.session, modelDir);
          if (lOut) {
            g.scores.push(e.score);
            if (withText) g.texts.push(e.message ?? '');
          }
        } else {
          // An end that is not scored (evicted, or censored at the end of input) comes with score -Infinity.
          if (!e.unscored) finiteScore(e.score, e.session, modelDir);
          else if (memory !== null) compositions.incomplete(e.session);
          segments.delete(e.session);
          closed.push({ key: e.session, g, end: e });
          g = null; // a later event of this key opens a new segment
        }
      }
      if (closed.length === 0) return;
      // A flagged segment keeps why (its top event, window, expected message, count relation) for sessions.csv;
      // the expected messages of a call come from one batched prediction of the windows the scorer has not
      // predicted before (its cache: flagged windows repeat too).
      const flagged = closed.filter((c) => c.g.max >= threshold);
      const tops = flagged.map(({ g }) => g.top as ModelEvent);
      scorer.predictExpected(tops);
      const explained = explain(tops);
      const whyOf = new Map(flagged.map((c, k) => [c, explained[k]]));
      let lText = '';
      for (const c of closed) {
        const { key, g } = c;
        const score = g.max;
        const why = () => {
          const e = whyOf.get(c);
          if (!e) return ',,,,';
          const line = (g.top as ModelEvent).isSessionEnd ? '' : String((g.top as ModelEvent).lineNo);
          return [line, csv(e.message), csv(e.expected ?? ''), csv(e.window.join(' ⏎ ')), csv(e.countRelation ?? '')].join(',');
        };
        const s = c.end.closed as ClosedSession;
        const prev = byKey.get(key);
        if (prev === undefined) byKey.set(key, { score, lines: s.rows.length, firstTs: s.firstTs, lastTs: s.lastTs, why: why() });
        else {
          if (score > prev.score) {
            prev.score = score;
            prev.why = why();
          }
          prev.lines += s.rows.length;
          if (s.firstTs !== null && (prev.firstTs === null || s.firstTs < prev.firstTs)) prev.firstTs = s.firstTs;
          if (s.lastTs !== null && (prev.lastTs === null || s.lastTs > prev.lastTs)) prev.lastTs = s.lastTs;
        }
        const mid = `,${g.field},`;
        const aside = g.aside;
        if (aside !== null) {
          // the lines set aside merged in by line number (both lists are in input order)
          let a = 0;
          for (let t = 0; t < s.rows.length; t++) {
            for (; a < aside.length && aside[a] < s.rows[t]; a++) lText += asideRow(g, a, g.field);
            lText += `${s.rows[t]}${mid}${tail(g.scores[t])}${withText ? `,${csv(g.texts[t])}` : ''}\n`;
          }
          for (; a < aside.length; a++) lText += asideRow(g, a, g.field);
        } else if (withText) for (let t = 0; t < s.rows.length; t++) lText += `${s.rows[t]}${mid}${tail(g.scores[t])},${csv(g.texts[t])}\n`;
        else for (let t = 0; t < s.rows.length; t++) lText += `${s.rows[t]}${mid}${tail(g.scores[t])}\n`;
      }
      const w = lOut && lText !== '' ? writeWithBackpressure(lOut, lText) : null;
      if (w) await w;
    };
    /**
     * Lines set aside whose key has no session open at the end of input: their rows, under their key. A key
     * whose every line was set aside still gets its row in sessions.csv, unscored (-Infinity, no line scored):
     * a key is not lost, and the shares of the scored sessions (commonNewMessages) keep the first pass's count.
     */
    const writeAsideLeft = async () => {
      let lText = '';
      for (const [key, g] of segments) {
        if (g.aside === null) continue;
        if (!byKey.has(key)) byKey.set(key, { score: -Infinity, lines: 0, firstTs: null, lastTs: null, why: ',,,,' });
        for (let a = 0; a < g.aside.length; a++) lText += asideRow(g, a, g.field);
      }
      segments.clear();
      const w = lOut && lText !== '' ? writeWithBackpressure(lOut, lText) : null;
      if (w) await w;
    };
    /** sessions.csv, one row per key (max over its segments), in order of each key's first closed segment. */
    const writeSessions = async () => {
      let sText = '';
      for (const [k, g] of byKey) {
        const known = isKnown(k);
        const score = known ? 0 : g.score;
        const a = score >= threshold ? 1 : 0;
        anomalies += a;
        sessions++;
        sText += `${csv(k)},${num(score)},${a},${g.lines},${iso(g.firstTs)},${iso(g.lastTs)},${known ? ',,,,' : g.why}\n`;
        if (sText.length >= 1 << 20) {
          const w = writeWithBackpressure(sOut, sText);
          sText = '';
          if (w) await w;
        }
      }
      const w = writeWithBackpressure(sOut, sText);
      if (w) await w;
    };

    try {
      const scorerOptions = {
        idleTimeoutMs: config.session.idleTimeoutMs,
        censorEnds: true,
        countWindows: true,
        issues,
        source: name,
        withMessages: withText,
        onJudged,
        // no raw lines kept per session: nothing here reads an event's window of raw lines
        windowLines: 0,
        ...(selectKey ? { ownsKey: selectKey } : {}),
        ...(setAside !== null ? { setAside: [...setAside], setAsideEvents: true } : {}),
      };
      let scorer: ModelScorer;
      let stats: ReadStats;
      let candidates: () => number;
      if (reader !== null) {
        // Read, parsed and masked in a reader thread (score_reader.ts) while this thread scores: the same chunks
        // and scorer calls as below, so the same outputs.
        scorer = new ModelScorer(model, scorerOptions);
        let chunks = 0;
        for await (const chunk of reader.chunks()) {
          if (o.signal?.aborted) throw new DeepSentryError('DS_CANCELLED', `scoring ${name} was cancelled`);
          if (chunks++ === 0) mark('score:first-chunk');
          await take(scorer, (await scorer.scoreParsed(chunk)) as ModelEvent[]);
        }
        const done = reader.done as ReaderDone;
        for (const k of ISSUE_KINDS) issues.counts[k] += done.issues.counts[k];
        issues.first.push(...done.issues.first.slice(0, Math.max(0, issues.reportFirst - issues.first.length)));
        stats = done.stats;
        candidates = () => done.parseStats.candidates;
      } else {
        const input = await openLogInput(source, config, issues, name, { acceptTruncated: o.acceptTruncated === true });
        scorer = new ModelScorer(model, { ...scorerOptions, format: input.format, source: input.name });
        for await (const batch of input.batches) {
          if (o.signal?.aborted) throw new DeepSentryError('DS_CANCELLED', `scoring ${name} was cancelled`);
          // Scorer calls of at most CHUNK_LINES lines: a call's events live until the next call, and fewer of them
          // then outlive a young-generation collection (a whole 1 MiB read at once doubled what the GC promoted).
          // seq = the physical line number (unique and increasing): a closed session's rows are its line numbers.
          for (let from = 0; from < batch.lines.length; from += CHUNK_LINES) {
            const n = Math.min(CHUNK_LINES, batch.lines.length - from);
            const raw: RawLine[] = new Array(n);
            for (let i = 0; i < n; i++) raw[i] = { seq: batch.lineNos[from + i], lineNo: batch.lineNos[from + i], offset: 0, text: batch.lines[from + i] };
            await take(scorer, (await scorer.scoreLines(raw)) as ModelEvent[]);
          }
        }
        stats = input.stats;
        candidates = () => scorer.parseStats.candidates;
      }
      mark('score:input-end', { readerWaitMs: reader?.waitedMs ?? 0 });
      await take(scorer, (await scorer.flush()) as ModelEvent[]);
      await writeAsideLeft();
      await writeSessions();
      await endStream(sOut);
      if (lOut) await endStream(lOut);
      const parsed = scorer.parsedLines;
      if (stats.lines - stats.blank === 0) throw new DeepSentryError('DS_PARSE', `${name} is empty: no log line to score`);
      if (parsed === 0) {
        const first = issues.first[0];
        throw new DeepSentryError(
          'DS_PARSE',
          `${name}: none of its ${candidates()} lines parses as the model's format ${JSON.stringify(typeof config.format === 'string' ? config.format : config.format.type)} (a log of a different format than the one the model was trained on?)${first ? `; first: line ${first.line}: ${first.message}` : ''}`,
        );
      }
      return { stats, parsed, sessions, anomalies, issues, newIn };
    } catch (e) {
      sOut.destroy();
      lOut?.destroy();
      throw e;
    }
  };

  try {
    if (spec !== null) {
      if (o.reader === undefined) reader = await startScoreReader(spec, o.readerThread);
      else if (reader !== null && !readsAs(reader.spec, spec)) {
        throw new DeepSentryError('DS_INVALID_ARGUMENT', `the reader thread given for ${name} reads another file, or with another log configuration, acceptTruncated or withText than this scoring: start it (startScoreReader) with the same`);
      }
    } else if (reader !== null) throw new DeepSentryError('DS_INVALID_ARGUMENT', 'a reader thread reads a file: score a stream without one');
    let r = await pass(null);
    const found = commonNew(r.newIn, r.sessions);
    let setAside: Array<{ message: string; sessions: number }> = [];
    /** the warning on what was set aside (before the other warnings), or on why nothing was (after the one on common new messages) */
    let asideWarning: string[] = [];
    let streamWarning: string[] = [];
    if (o.setAsideNew !== false && found.length > 0) {
      if (spec === null) streamWarning = [SET_ASIDE_NEEDS_FILE];
      else {
        // The second pass: the file read again (a new reader thread on a large one: the first has ended), scored
        // by the same model without the lines of those messages.
        mark('score:set-aside');
        setAside = found;
        asideWarning = [setAsideWarning(found, r.sessions)];
        reader = await startScoreReader(spec, o.readerThread);
        r = await pass(new Set(found.map((c) => c.message)));
      }
    }
    await fsp.rename(`${sessionsFile}.tmp`, sessionsFile);
    if (linesFile) await fsp.rename(`${linesFile}.tmp`, linesFile);
    mark('score:written');
    const { stats, parsed, sessions, anomalies, issues } = r;
    const commonNewMessages = commonNew(r.newIn, sessions).slice(0, 5);
    // the messages set aside entered the model's table on the first pass: they are not among the new ones scored
    const newMessages = model.tableSize - known - setAside.filter((c) => model.messageId(c.message) >= known).length;
    const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
    o.reporter?.stageDone?.('score', seconds, stats.lines, 'lines');
    return {
      input: name,
      lines: stats.lines,
      parsed,
      unparsed: stats.lines - stats.blank - parsed,
      sessions,
      anomalies,
      threshold,
      newMessages,
      files: { sessions: sessionsFile, lines: linesFile },
      seconds,
      commonNewMessages,
      setAside,
      warnings: [...inputWarnings(issues), ...asideWarning, ...scoreWarnings({ sessions, anomalies, newMessages, commonNewMessages }), ...streamWarning],
      replaced: outState?.removed ?? [],
    };
  } catch (e) {
    await reader?.close();
    await fsp.rm(`${sessionsFile}.tmp`, { force: true });
    if (linesFile) await fsp.rm(`${linesFile}.tmp`, { force: true });
    if (e instanceof DeepSentryError) throw e;
    throw new DeepSentryError('DS_IO', `scoring ${name} failed: ${(e as Error).message}`, { cause: e });
  }
}
