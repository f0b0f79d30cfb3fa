/**
 * WorkerScorer: runs any LineScorer in a worker thread, so parsing and scoring never block the event loop
 * that serves HTTP, reads files and sends alerts. The scorer is built inside the worker by a factory
 * exported from a module (`module` + `exportName`, called as `factory(modelDir, options)`), because a
 * scorer object itself cannot cross threads.
 *
 * Calls are messages `{id, method, args}` answered by `{id, result, stats}` or `{id, error}`; the monitor
 * never has two calls in flight, but the proxy does not rely on it. Errors keep their DeepSentryError code.
 *
 * For the model scorer the lines cross parsed: this thread parses, keys and masks them (a ParsedEncoder, the
 * encoding `deepsentry score`'s reader thread sends) and the worker runs the sessions and the model, so a
 * line's work is split between the two threads instead of all of it waiting on the worker's. The texts cross
 * too: the worker keeps sessions' last lines (alert windows, checkpoints). Masking, the largest part of the
 * parsing, goes to whichever thread is less busy (WorkerScorer.balance).
 */
import { isAscii } from 'node:buffer';
import * as path from 'node:path';
import { performance, type EventLoopUtilization } from 'node:perf_hooks';
import { Worker } from 'node:worker_threads';
import { compileCacheRoot } from '../compile_cache';
import { DeepSentryError, type DeepSentryErrorCode } from '../errors';
import type { LogConfig } from '../logs/config';
import { configuredFormat } from '../logs/formats';
import type { FeedbackSummary } from '../pipeline/feedback';
import { ParsedEncoder, parsedTransfer, type ParsedLines } from './parsed_lines';
import type { EventContext, FeedbackRequest, LineScorer, RawLine, ScoredEvent, ScorerOptions, ScorerStats } from './types';

/** Which factory to run in the worker, with what. */
export interface WorkerScorerSpec {
  /** Absolute path of the module exporting the factory (.ts under tsx, .js when compiled). */
  module: string;
  /** Name of the exported factory `(modelDir, options) => Promise<LineScorer>`. */
  exportName: string;
  modelDir: string;
  /** Structured-cloneable options for the factory. */
  options: ScorerOptions & Record<string, unknown>;
}

interface Reply {
  id: number;
  result?: unknown;
  /** the result is PackedEvents */
  events?: boolean;
  stats?: ScorerStats;
  error?: { message: string; code?: DeepSentryErrorCode; stack?: string };
}

const ENTRY = path.join(__dirname, `worker-entry${path.extname(__filename)}`);

/**
 * Lines parsed in this thread per slice (see WorkerScorer.sendLines): ~1–2 ms of work, so a 2048-line batch holds
 * the event loop for that long at a time instead of ~10–30 ms.
 */
const SLICE_LINES = 256;

/** Lines on their way to the worker (WorkerScorer.sendLines): cancelled (prepared lines not used) before posted, they are not. */
interface SendJob {
  state: 'pending' | 'posted' | 'cancelled';
  /** settles once posted, cancelled or failed */
  done: Promise<void>;
  /** why they could not be packed */
  error?: unknown;
}

/** Lines packed for the worker: texts and numbers (packLines), and their parse (null: the worker parses them). */
interface Packed {
  texts: PackedLineTexts;
  num: Float64Array;
  chunk: ParsedLines | null;
}

/** How often the masking is rebalanced between the main thread and the worker (WorkerScorer.balance), ms. */
const BALANCE_MS = 50;

/**
 * A worker thread running `entry` (an absolute path: .ts under tsx, .js when compiled) with `workerData`.
 * Workers do not inherit require hooks: under tsx (tests, `npx tsx`) the worker registers tsx itself, and when
 * this thread loads modules through the compile cache (the CLI turns it on: lib/compile_cache.ts) so does the
 * worker, whose modules (tfjs and the model's, in live's scorer) are most of its start.
 */
export function startWorker(entry: string, workerData: unknown): Worker {
  const setup: string[] = [];
  if (entry.endsWith('.ts') || __filename.endsWith('.ts')) setup.push(`require(${JSON.stringify(require.resolve('tsx/cjs'))});`);
  const root = compileCacheRoot();
  const cache = root !== null ? JSON.stringify(require.resolve('../compile_cache')) : null;
  if (cache !== null) setup.push(`require(${cache}).enableCompileCache(${JSON.stringify(root)});`);
  const run = `require(${JSON.stringify(entry)});${cache !== null ? ` require(${cache}).writeCompileCache();` : ''}`;
  return setup.length > 0 ? new Worker(`${setup.join(' ')} ${run}`, { eval: true, workerData }) : new Worker(entry, { workerData });
}

export class WorkerScorer implements LineScorer {
  readonly name: string;
  readonly savedThreshold?: number;
  private readonly worker: Worker;
  private nextId = 1;
  private readonly calls = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  private lastStats: ScorerStats = { openSessions: 0, evictedSessions: 0, unparsedLines: 0 };
  private dead: Error | null = null;
  /** the lines of the last prepare(), the id the worker keeps them under, and whether they went parsed */
  private prepared: { id: number; lines: RawLine[]; parsed: boolean; job: SendJob } | null = null;
  /** messages of lines waiting to be packed and posted (sendLines): the last one's promise, and how many */
  private sendTail: Promise<void> = Promise.resolve();
  private sending = 0;
  /** the worker's session names by index (see packEvents) */
  private readonly sessionNames: string[] = [];
  /**
   * Parses, keys and masks the lines in this thread for a scorer that takes them so (ModelScorer.scoreParsed;
   * null: the worker parses them): the worker then only runs the sessions and the model, and the work of a
   * line is shared by the two threads. It must see every line the scorer scores, in order, and its clock
   * must be the scorer's: a batch it did not encode (a line carrying a stream clock, prepared lines not used)
   * turns it off for good, and the scorer parses from then on.
   */
  private encoder: ParsedEncoder | null = null;
  /** the two threads' event-loop utilisation when the encoder's share of the masking was last set (see balance) */
  private elu: { at: number; main: EventLoopUtilization; worker: EventLoopUtilization } | null = null;
  /** The worker's scorer's model version (updated by swapModel), when it has one. */
  modelVersion?: number;
  /**
   * With the encoder on, 2048 lines per call (parsed here a slice at a time, see sendLines): when a call's lines
   * were parsed in one go, 4096 held this thread's event loop for 45–61 ms at p99 in a flood (`bench/live.ts
   * --long 4`, load 1.0–1.3), 2048 for 28 ms at the same throughput, 1024 for 19 ms at 135k lines/s; sliced,
   * 4096 is no faster than 2048 (3 alternating runs each, load 4–5).
   */
  readonly batchLines?: number;
  /** Present when the worker's scorer learns from feedback (see LineScorer.feedback). */
  readonly feedback?: (req: FeedbackRequest) => Promise<FeedbackSummary>;
  readonly swapModel?: () => Promise<number>;

  private constructor(worker: Worker, name: string, savedThreshold: number | undefined, feedback: boolean, parsedInput: LogConfig | null) {
    this.worker = worker;
    if (parsedInput !== null) {
      this.encoder = new ParsedEncoder(parsedInput, { format: configuredFormat(parsedInput), name: '<stream>', issues: null, withMessages: false, leaveMasking: 0.5 });
      this.batchLines = 2048;
    }
    this.name = name;
    if (savedThreshold !== undefined) this.savedThreshold = savedThreshold;
    if (feedback) {
      // The worker runs `feedback` beside its other calls (scoring goes on meanwhile), `swapModel` in turn.
      this.feedback = (req) => this.call('feedback', [req]);
      this.swapModel = async () => (this.modelVersion = await this.call<number>('swapModel', []));
    }
    worker.on('message', (m: Reply) => this.reply(m));
    worker.on('error', (err) => this.die(err));
    worker.on('exit', (code) => this.die(new DeepSentryError('DS_MODEL', `the scorer worker exited (code ${code})`)));
  }

  /** Starts the worker and builds the scorer in it. */
  static async start(spec: WorkerScorerSpec): Promise<WorkerScorer> {
    const worker = startWorker(ENTRY, spec);
    const init = await new Promise<Reply>((resolve, reject) => {
      const onMsg = (m: Reply) => {
        worker.off('error', onErr);
        resolve(m);
      };
      const onErr = (e: Error) => reject(e);
      worker.once('message', onMsg);
      worker.once('error', onErr);
    });
    if (init.error) {
      await worker.terminate();
      throw toError(init.error);
    }
    const r = init.result as { name: string; savedThreshold?: number; modelVersion?: number; feedback: boolean; parsedInput: LogConfig | null };
    const s = new WorkerScorer(worker, r.name, r.savedThreshold, r.feedback, r.parsedInput);
    if (r.modelVersion !== undefined) s.modelVersion = r.modelVersion;
    if (init.stats) s.lastStats = init.stats;
    return s;
  }

  private reply(m: Reply): void {
    // Events are unpacked as they arrive, in the order the worker packed them (their session names are indices
    // into the names of the answers before); an answer no call waits for any more still adds its names.
    const result = m.events ? unpackEvents(m.result as PackedEvents, this.sessionNames) : m.result;
    const c = this.calls.get(m.id);
    if (!c) return;
    this.calls.delete(m.id);
    if (m.stats) this.lastStats = m.stats;
    if (m.error) c.reject(toError(m.error));
    else c.resolve(result);
  }

  private die(err: Error): void {
    if (this.dead) return;
    this.dead = err;
    for (const c of this.calls.values()) c.reject(err);
    this.calls.clear();
  }

  private call<T>(method: string, args: unknown[], transfer: ArrayBuffer[] = []): Promise<T> {
    if (this.dead) return Promise.reject(this.dead);
    const id = this.nextId++;
    const answer = this.expect<T>(id);
    this.worker.postMessage({ id, method, args }, transfer);
    return answer;
  }

  /** The answer to call `id`, once posted. */
  private expect<T>(id: number): Promise<T> {
    if (this.dead) return Promise.reject(this.dead);
    return new Promise<T>((resolve, reject) => this.calls.set(id, { resolve: resolve as (v: unknown) => void, reject }));
  }

  /** Fails call `id` before it was posted (its lines could not be packed). */
  private settle(id: number, err: Error): void {
    const c = this.calls.get(id);
    if (!c) return;
    this.calls.delete(id);
    c.reject(err);
  }

  async scoreLines(lines: RawLine[]): Promise<ScoredEvent[]> {
    const p = this.prepared;
    this.prepared = null;
    if (p && p.lines.length === lines.length && p.lines.every((l, i) => l === lines[i])) {
      // Posted once packed (its encoding may still be going on): the call goes after it.
      if (p.job.state !== 'posted') await p.job.done;
      if (p.job.error !== undefined) throw p.job.error;
      return this.call<ScoredEvent[]>('scorePrepared', [p.id]);
    }
    if (p !== null) {
      // its lines will not be scored: if they were (or are being) encoded, the encoder's clock is ahead
      if (p.job.state === 'pending') p.job.state = 'cancelled';
      if (p.parsed) this.encoder = null;
    }
    const id = this.nextId++;
    const answer = this.expect<ScoredEvent[]>(id);
    this.sendLines(id, 'scoreLinesPacked', lines);
    return answer;
  }
  /**
   * Packs `lines` and hands them to the worker, which decodes them as soon as it is free and keeps them for a
   * scoreLines call with the same lines (sent then as a reference to them). Not answered: a failure shows on
   * the call that would have used them.
   */
  prepare(lines: RawLine[]): void {
    if (this.dead || lines.length === 0) return;
    const id = this.nextId++;
    const parsed = this.encoder !== null && !lines.some((l) => l.clock !== undefined);
    this.prepared = { id, lines, parsed, job: this.sendLines(id, 'prepare', lines) };
  }
  /**
   * Posts `{id, method, args: [texts, num, chunk]}` for `lines` once they are packed (see pack), after every
   * message of lines before them, in order. Prepared lines parsed here are encoded a slice of SLICE_LINES at a
   * time, yielding to the event loop between slices, so a batch does not hold the thread (HTTP, file reads,
   * timers, alerts) for the whole of its parsing while the worker scores the batch before. The lines of a call
   * are what the worker waits for: they are parsed in one go (sliced, a backlog's larger batches raised the
   * line-to-alert p99 at 10k lines/s), and posted at once when no message waits before them.
   */
  private sendLines(id: number, method: 'prepare' | 'scoreLinesPacked', lines: RawLine[]): SendJob {
    let resolveDone!: () => void;
    const job: SendJob = { state: 'pending', done: new Promise<void>((r) => (resolveDone = r)) };
    const post = (packed: Packed) => {
      if (job.state === 'pending' && this.dead === null) {
        this.worker.postMessage({ id, method, args: [packed.texts, packed.num, packed.chunk] }, transferList(packed.texts, packed.num, packed.chunk));
        job.state = 'posted';
      }
    };
    const fail = (err: unknown) => {
      job.error = err;
      if (method === 'scoreLinesPacked') this.settle(id, err as Error);
    };
    const finish = () => {
      this.sending--;
      resolveDone();
    };
    const sliced = method === 'prepare' && lines.length > SLICE_LINES;
    this.sending++;
    if (this.sending === 1 && (!sliced || this.encoder === null)) {
      try {
        post(this.pack(lines));
      } catch (err) {
        fail(err);
      }
      finish();
      return job;
    }
    this.sendTail = this.sendTail
      .then(async () => {
        if (job.state !== 'pending') return;
        const packed = sliced ? await this.packSliced(lines, job) : this.pack(lines);
        if (packed !== null) post(packed);
      })
      .catch(fail)
      .finally(finish);
    return job;
  }
  /** Lines as they cross to the worker: packed (packLines), and parsed here when the encoder is on. */
  private pack(lines: RawLine[]): Packed {
    const encoder = this.useEncoder(lines);
    let chunk: ParsedLines | null = null;
    if (encoder !== null) {
      const c = encoder.begin(lines.length);
      encoder.addLines(c, lines, 0, lines.length);
      chunk = encoder.end(c);
    }
    return { ...packLines(lines), chunk };
  }
  /** pack, the parsing a slice at a time (see sendLines); null when the job was cancelled or the worker died meanwhile. */
  private async packSliced(lines: RawLine[], job: SendJob): Promise<Packed | null> {
    const encoder = this.useEncoder(lines);
    let chunk: ParsedLines | null = null;
    if (encoder !== null) {
      const n = lines.length;
      const c = encoder.begin(n);
      let ok = false;
      try {
        for (let from = 0; from < n; from += SLICE_LINES) {
          if (from > 0) await new Promise((r) => setImmediate(r));
          if (job.state !== 'pending' || this.dead !== null) return null;
          encoder.addLines(c, lines, from, Math.min(SLICE_LINES, n - from));
        }
        ok = true;
      } finally {
        if (!ok) encoder.abandon();
      }
      chunk = encoder.end(c);
    }
    return { ...packLines(lines), chunk };
  }
  /** The encoder for these lines, with its share of the masking set (null: the worker parses them, from now on when a line carries a clock). */
  private useEncoder(lines: RawLine[]): ParsedEncoder | null {
    if (this.encoder === null) return null;
    if (lines.some((l) => l.clock !== undefined)) {
      this.encoder = null;
      return null;
    }
    this.balance(this.encoder);
    return this.encoder;
  }
  /**
   * Moves masking (the largest part of a line's parsing) towards the thread less busy: at most every
   * BALANCE_MS, by the threads' event-loop utilisation since the last look, a tenth of the lines at a time.
   * Which thread masks a line changes no result.
   */
  private balance(encoder: ParsedEncoder): void {
    const now = performance.now();
    const e = this.elu;
    if (e !== null && now - e.at < BALANCE_MS) return;
    const main = performance.eventLoopUtilization();
    const worker = this.worker.performance.eventLoopUtilization();
    this.elu = { at: now, main, worker };
    if (e === null) return;
    const m = performance.eventLoopUtilization(main, e.main).utilization;
    const w = this.worker.performance.eventLoopUtilization(worker, e.worker).utilization;
    if (w > m + 0.05) encoder.leaveMasking = Math.max(0, encoder.leaveMasking - 0.1);
    else if (m > w + 0.05) encoder.leaveMasking = Math.min(1, encoder.leaveMasking + 0.1);
  }
  tick(nowMs: number): Promise<ScoredEvent[]> {
    return this.call<ScoredEvent[]>('tick', [nowMs]);
  }
  flush(): Promise<ScoredEvent[]> {
    return this.call<ScoredEvent[]>('flush', []);
  }
  /** Windows and expectations of events of the last call, by index (they stay in the worker until asked for). */
  context(indices: number[]): Promise<EventContext[]> {
    return this.call('context', [indices]);
  }
  stats(): ScorerStats {
    return this.lastStats;
  }
  snapshot(): Promise<unknown> {
    return this.call('snapshot', []);
  }
  async restore(state: unknown): Promise<void> {
    await this.call('restore', [state]);
    // the restored scorer's event-time clock (SessionsSnapshot.lastTs), which out-of-order lines are judged by
    if (this.encoder !== null) this.encoder.lastTs = (state as { lastTs?: number | null }).lastTs ?? null;
  }
  async close(): Promise<void> {
    if (this.dead) return;
    if (this.prepared?.job.state === 'pending') this.prepared.job.state = 'cancelled';
    this.prepared = null;
    await this.sendTail;
    if (this.dead) return;
    try {
      await this.call('close', []);
    } finally {
      this.dead = new DeepSentryError('DS_CANCELLED', 'the scorer worker was closed');
      await this.worker.terminate();
    }
  }
}

function toError(e: { message: string; code?: DeepSentryErrorCode }): Error {
  return e.code ? new DeepSentryError(e.code, e.message) : new Error(e.message);
}

// Lines and events cross the thread boundary as a few arrays instead of thousands of small objects:
// structured cloning is much cheaper that way, and the numeric arrays are transferred, not copied.

/**
 * Events as columns: num = [seq, lineNo, offset, score] per event; flags = isSessionEnd | endReason << 1;
 * sessions = each event's session as an index into the names sent so far: a name crosses once (newSessions), then
 * as its index, so an event's session costs the main thread no string of its own (see packEvents).
 */
export interface PackedEvents {
  num: Float64Array;
  flags: Uint8Array;
  sessions: Int32Array;
  /** sessions named for the first time (after a reset: in this answer or since), in order */
  newSessions: string[];
  /** the names sent before are forgotten before these (the worker's table was full) */
  sessionsReset: boolean;
}

/** At most this many session names are remembered on both sides, then both forget them and start over. */
const NAMES_MAX = 100_000;

const END_REASONS = [undefined, 'idle', 'evicted', 'flush', 'window', 'counts'] as const;

/**
 * Lines cross to the worker as the UTF-8 bytes of their texts joined by newlines (transferred, not copied) when no
 * text holds a newline or a lone surrogate, else as an array of strings. The worker decodes each line on its own: a line split out of
 * one big string would be a slice of it (V8 keeps substrings of 13 or more characters so), and a session key or a
 * line the scorer keeps — open sessions, keys waiting for their count judgement, for an hour — would keep the
 * whole batch's text alive (measured: 536 → 653 MB peak on an 8-copy hdfs-dev with the count horizon).
 */
export type PackedLineTexts = Uint8Array | string[];

/** String.prototype.isWellFormed (Node ≥ 20; not in the ES2022 typings this project compiles against). */
const isWellFormed = (t: string): boolean => (t as unknown as { isWellFormed(): boolean }).isWellFormed();

export function packLines(lines: RawLine[]): { texts: PackedLineTexts; num: Float64Array } {
  const n = lines.length;
  const num = new Float64Array(3 * n);
  let bytes = n > 0 ? n - 1 : 0; // the newlines between texts
  let plain = true; // no text holds a newline or a lone surrogate (which would not survive UTF-8)
  for (let i = 0; i < n; i++) {
    const l = lines[i]!;
    num[3 * i] = l.seq;
    num[3 * i + 1] = l.lineNo;
    num[3 * i + 2] = l.offset;
    if (plain) {
      const t = l.text;
      if (t.indexOf('\n') >= 0 || !isWellFormed(t)) plain = false;
      else bytes += Buffer.byteLength(t, 'utf8');
    }
  }
  if (!plain) return { texts: lines.map((l) => l.text), num };
  // Each text written in place (no joined copy of the batch's texts, a string large enough to be collected only
  // with the old generation). Not from Buffer's shared pool: this memory is transferred (detached here), so it
  // must be its own.
  const b = Buffer.allocUnsafeSlow(bytes);
  for (let i = 0, at = 0; i < n; i++) {
    if (i > 0) b[at++] = 10;
    at += b.write(lines[i]!.text, at, 'utf8');
  }
  return { texts: new Uint8Array(b.buffer, b.byteOffset, b.length), num };
}

/** The memory of packed (and parsed) lines that moves to the worker instead of being copied. */
function transferList(texts: PackedLineTexts, num: Float64Array, chunk: ParsedLines | null): ArrayBuffer[] {
  const t = texts instanceof Uint8Array ? [num.buffer as ArrayBuffer, texts.buffer as ArrayBuffer] : [num.buffer as ArrayBuffer];
  return chunk === null ? t : t.concat(parsedTransfer(chunk));
}

export function unpackLines(packed: PackedLineTexts, num: Float64Array): RawLine[] {
  const n = num.length / 3;
  const out = new Array<RawLine>(n);
  const at = (i: number, text: string): RawLine => ({ seq: num[3 * i]!, lineNo: num[3 * i + 1]!, offset: num[3 * i + 2]!, text });
  if (Array.isArray(packed)) {
    for (let i = 0; i < n; i++) out[i] = at(i, packed[i]!);
    return out;
  }
  const b = Buffer.from(packed.buffer, packed.byteOffset, packed.byteLength);
  // ASCII (most logs) decodes as latin1, the cheaper decoder, to the same text.
  const encoding = isAscii(b) ? 'latin1' : 'utf8';
  for (let i = 0, p = 0; i < n; i++) {
    let nl = b.indexOf(10, p);
    if (nl === -1) nl = b.length;
    out[i] = at(i, b.toString(encoding, p, nl));
    p = nl + 1;
  }
  return out;
}

/**
 * Events packed for the main thread. `sent` holds the session names sent so far by index (the worker's side of
 * the table; the main thread's is the `names` of unpackEvents): the answers are unpacked in the order they are packed.
 */
export function packEvents(events: ScoredEvent[], sent: Map<string, number>, namesMax = NAMES_MAX): PackedEvents {
  const n = events.length;
  const num = new Float64Array(4 * n);
  const flags = new Uint8Array(n);
  const sessions = new Int32Array(n);
  const sessionsReset = sent.size > namesMax;
  if (sessionsReset) sent.clear();
  const newSessions: string[] = [];
  for (let i = 0; i < n; i++) {
    const e = events[i]!;
    num[4 * i] = e.seq;
    num[4 * i + 1] = e.lineNo;
    num[4 * i + 2] = e.offset;
    num[4 * i + 3] = e.score;
    flags[i] = (e.isSessionEnd ? 1 : 0) | (END_REASONS.indexOf(e.endReason) << 1);
    let id = sent.get(e.session);
    if (id === undefined) {
      id = sent.size;
      sent.set(e.session, id);
      newSessions.push(e.session);
    }
    sessions[i] = id;
  }
  return { num, flags, sessions, newSessions, sessionsReset };
}

/** Events without their windows (fetched on demand through LineScorer.context); `names`: see packEvents. */
export function unpackEvents(p: PackedEvents, names: string[]): ScoredEvent[] {
  if (p.sessionsReset) names.length = 0;
  for (const s of p.newSessions) names.push(s);
  const n = p.flags.length;
  const out = new Array<ScoredEvent>(n);
  for (let i = 0; i < n; i++) {
    const f = p.flags[i]!;
    const e: ScoredEvent = { seq: p.num[4 * i]!, lineNo: p.num[4 * i + 1]!, offset: p.num[4 * i + 2]!, session: names[p.sessions[i]!]!, score: p.num[4 * i + 3]!, isSessionEnd: (f & 1) === 1, window: [] };
    const r = END_REASONS[f >> 1];
    if (r) e.endReason = r;
    out[i] = e;
  }
  return out;
}
