/**
 * Reads a scores directory (what `deepsentry score` writes):
 * - `sessions.csv`: `session,score,anomaly,lines,first_ts,last_ts` (anomaly 0/1 at the model's saved threshold),
 *   optionally `top_line,message,expected,window,reason` explaining flagged sessions (lib/pipeline/score.ts);
 * - `lines.csv` (optional): `line_no,session,score,anomaly` (line_no 1-based in the scored log; session empty
 *   when the line belongs to no session; score empty, anomaly 0, for a line set aside unscored: read as score
 *   -Infinity, below every threshold).
 * Scores are kept in typed arrays so a multi-million-line lines.csv fits comfortably in memory.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { DeepSentryError } from '../errors';
import { assertReadableFile, openCsv, parseNumberField } from './csv';

/** The sessions of a scores directory, in file order. */
export interface SessionScores {
  file: string;
  ids: string[];
  scores: Float64Array;
  /** the model's decision at its saved threshold (0/1) */
  anomaly: Uint8Array;
  /** line count per session (-1 when the column is absent) */
  lines: Int32Array;
  firstTs: string[];
  lastTs: string[];
  /**
   * why a flagged session scored high, when sessions.csv has the explanation columns (lib/pipeline/score.ts):
   * its top line, message, expected message, window and violated count relation; null for the others
   */
  explanation: Array<SessionWhy | null>;
  /** session id → index */
  index: Map<string, number>;
}

/** The explanation columns of one session row. */
export interface SessionWhy {
  topLine: string;
  message: string;
  expected: string;
  window: string;
  reason: string;
}

/** The lines of a scores directory, in file order. */
export interface LineScores {
  file: string;
  lineNo: Float64Array;
  /** index into SessionScores, -1 when the line has no session */
  session: Int32Array;
  scores: Float64Array;
  anomaly: Uint8Array;
  count: number;
}

/** A typed array that doubles as it fills. */
class Growable<T extends Float64Array | Int32Array | Uint8Array> {
  length = 0;
  constructor(public data: T, private readonly make: (n: number) => T) {}
  push(v: number): void {
    if (this.length === this.data.length) {
      const bigger = this.make(this.data.length * 2);
      bigger.set(this.data);
      this.data = bigger;
    }
    this.data[this.length++] = v;
  }
  done(): T {
    return this.data.subarray(0, this.length) as T;
  }
}

function parseFlag(v: string, file: string, lineNo: number): number {
  const s = v.trim();
  if (s === '0' || s === 'false') return 0;
  if (s === '1' || s === 'true') return 1;
  throw new DeepSentryError('DS_PARSE', `${file}:${lineNo}: column anomaly must be 0 or 1 but is ${JSON.stringify(v)}`);
}

/** Reads `<dir>/sessions.csv`. Errors (DS_IO / DS_PARSE) name the file and line. */
export async function readSessionScores(dir: string): Promise<SessionScores> {
  if (!fs.existsSync(dir)) throw new DeepSentryError('DS_IO', `scores directory ${dir} does not exist`);
  const file = path.join(dir, 'sessions.csv');
  const csv = await openCsv(file, 'sessions file', ['session', 'score', 'anomaly']);
  const c = csv.columns;
  const [iS, iScore, iA] = [c.get('session')!, c.get('score')!, c.get('anomaly')!];
  const iLines = c.get('lines');
  const iFirst = c.get('first_ts');
  const iLast = c.get('last_ts');
  const iWhy = ['top_line', 'message', 'expected', 'window', 'reason'].map((k) => c.get(k));
  const explanation: Array<SessionWhy | null> = [];
  const ids: string[] = [];
  const firstTs: string[] = [];
  const lastTs: string[] = [];
  const scores = new Growable(new Float64Array(1024), (n) => new Float64Array(n));
  const anomaly = new Growable(new Uint8Array(1024), (n) => new Uint8Array(n));
  const lines = new Growable(new Int32Array(1024), (n) => new Int32Array(n));
  const index = new Map<string, number>();
  for await (const { lineNo, fields } of csv.rows()) {
    const id = fields[iS]!;
    if (id === '') throw new DeepSentryError('DS_PARSE', `${file}:${lineNo}: empty session id`);
    if (index.has(id)) throw new DeepSentryError('DS_PARSE', `${file}:${lineNo}: session ${id} appears twice (first at row ${index.get(id)! + 2})`);
    index.set(id, ids.length);
    ids.push(id);
    scores.push(parseNumberField(fields[iScore]!, 'score', file, lineNo));
    anomaly.push(parseFlag(fields[iA]!, file, lineNo));
    if (iLines !== undefined) {
      const n = Number(fields[iLines]);
      if (!Number.isInteger(n) || n < 0) throw new DeepSentryError('DS_PARSE', `${file}:${lineNo}: column lines must be a non-negative integer but is ${JSON.stringify(fields[iLines])}`);
      lines.push(n);
    } else lines.push(-1);
    firstTs.push(iFirst !== undefined ? fields[iFirst]! : '');
    lastTs.push(iLast !== undefined ? fields[iLast]! : '');
    const [topLine, message, expected, window, reason] = iWhy.map((i) => (i !== undefined ? (fields[i] ?? '') : ''));
    explanation.push(message === '' ? null : { topLine, message, expected, window, reason });
  }
  if (ids.length === 0) throw new DeepSentryError('DS_PARSE', `${file} has no sessions (header only)`);
  return { file, ids, scores: scores.done(), anomaly: anomaly.done(), lines: lines.done(), firstTs, lastTs, explanation, index };
}

/** Whether the scores directory has a lines.csv. */
export function hasLineScores(dir: string): boolean {
  return fs.existsSync(path.join(dir, 'lines.csv'));
}

/**
 * Reads `<dir>/lines.csv`, resolving each line's session against `sessions`. A session named in lines.csv but
 * absent from sessions.csv, a bad line number or score is a DS_PARSE error naming file and line.
 */
export async function readLineScores(dir: string, sessions: SessionScores): Promise<LineScores> {
  const file = path.join(dir, 'lines.csv');
  assertReadableFile(file, 'lines file');
  const csv = await openCsv(file, 'lines file', ['line_no', 'session', 'score', 'anomaly']);
  const c = csv.columns;
  const [iN, iS, iScore, iA] = [c.get('line_no')!, c.get('session')!, c.get('score')!, c.get('anomaly')!];
  const lineNo = new Growable(new Float64Array(4096), (n) => new Float64Array(n));
  const session = new Growable(new Int32Array(4096), (n) => new Int32Array(n));
  const scores = new Growable(new Float64Array(4096), (n) => new Float64Array(n));
  const anomaly = new Growable(new Uint8Array(4096), (n) => new Uint8Array(n));
  // the hot loop of a multi-million-line file: batches of raw lines, parsed inline
  for await (const batch of csv.batches()) for (let b = 0; b < batch.lines.length; b++) {
    const ln = batch.lineNos[b]!;
    const fields = csv.parse(batch.lines[b]!, ln);
    const n = Number(fields[iN]);
    if (!Number.isInteger(n) || n < 1) throw new DeepSentryError('DS_PARSE', `${file}:${ln}: column line_no must be a positive integer but is ${JSON.stringify(fields[iN])}`);
    lineNo.push(n);
    const sid = fields[iS]!;
    if (sid === '') session.push(-1);
    else {
      const k = sessions.index.get(sid);
      if (k === undefined) throw new DeepSentryError('DS_PARSE', `${file}:${ln}: session ${sid} is not in ${sessions.file}`);
      session.push(k);
    }
    // a line set aside (`deepsentry score --set-aside-new`) has no score: never above a threshold
    const sc = fields[iScore]!;
    scores.push(sc === '' ? -Infinity : parseNumberField(sc, 'score', file, ln));
    anomaly.push(parseFlag(fields[iA]!, file, ln));
  }
  return { file, lineNo: lineNo.done(), session: session.done(), scores: scores.done(), anomaly: anomaly.done(), count: lineNo.length };
}
