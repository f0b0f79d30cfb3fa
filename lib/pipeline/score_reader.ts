/**
 * `deepsentry score`'s reader thread: a worker reads the log file (lib/logs: its line policy and issues),
 * parses, keys and masks every line with the model scorer's own policy (what ModelScorer.scoreLine does before
 * it touches a session: see ParsedLines), and hands the main thread chunks of lines as typed arrays, with the
 * session keys and masked texts it has not sent before (the rest as indices: a string crosses once). The main thread scores them (ModelScorer.scoreParsed)
 * while the worker reads on: on two cores, reading, parsing and masking (a third of score's CPU on HDFS) run
 * beside the session loop, the detector and the output. The chunks are the in-thread path's (CHUNK_LINES lines
 * of each read batch), so the scorer's calls, and every output, are the same.
 */
import { promises as fsp } from 'node:fs';
import type { Worker } from 'node:worker_threads';
import * as path from 'node:path';
import { DeepSentryError, type DeepSentryErrorCode } from '../errors';
import type { LogConfig } from '../logs/config';
import { IssueLog, type IssueKind, type LogIssue } from '../logs/issues';
import type { ReadStats } from '../logs/lines';
import { openLogInput, type ParseStats } from '../logs/pipeline';
import { ParsedEncoder, parsedTransfer, type ParsedLines } from '../live/parsed_lines';
import { startWorker } from '../live/worker';

/** Lines per scorer call (a call's events live until the next one: see scoreLog). */
export const CHUNK_LINES = 2048;

/** What the reader thread is given. */
export interface ReaderSpec {
  /** the log file, and its name in messages */
  file: string;
  name: string;
  /** the model's log configuration (format, masking, sessions, line policy) */
  logConfig: LogConfig;
  acceptTruncated: boolean;
  /** send each line's message as parsed (lines.csv --with-text) */
  withMessages: boolean;
  /** at most this many session keys (and masked texts) remembered on both sides (default: ParsedEncoder's; tests make it small) */
  keysMax?: number;
}

/** What the reader thread found once the input ended: read counters, issues (reading and parsing), parse counters. */
export interface ReaderDone {
  stats: ReadStats;
  issues: { counts: Record<IssueKind, number>; first: LogIssue[] };
  parseStats: ParseStats;
}

/**
 * At most this many chunks (~2 MB for HDFS) wait for the main thread: enough to ride out its slow moments (the
 * detector on the first chunks' new windows) without the reader waiting, and memory stays bounded.
 */
const AHEAD = 16;

/**
 * Reads, parses, keys and masks `spec.file` into chunks, each handed to `emit` (which resolves when the
 * reader may go on). Runs in the reader thread; what scoreLine does per line, with the same functions (ParsedEncoder).
 */
export async function produceParsed(spec: ReaderSpec, emit: (c: ParsedLines, transfer: ArrayBuffer[]) => Promise<void>): Promise<ReaderDone> {
  const config = spec.logConfig;
  const issues = new IssueLog(false, config.reportFirst);
  const input = await openLogInput(spec.file, config, issues, spec.name, { acceptTruncated: spec.acceptTruncated });
  const encoder = new ParsedEncoder(config, { format: input.format, name: input.name, issues, withMessages: spec.withMessages, ...(spec.keysMax !== undefined ? { keysMax: spec.keysMax } : {}) });
  for await (const batch of input.batches) {
    for (let from = 0; from < batch.lines.length; from += CHUNK_LINES) {
      const c = encoder.encode(batch.lines, batch.lineNos, from, Math.min(CHUNK_LINES, batch.lines.length - from));
      await emit(c, parsedTransfer(c));
    }
  }
  return { stats: input.stats, issues: { counts: issues.counts, first: issues.first }, parseStats: encoder.parseStats };
}

/**
 * Logs from this size on are read, parsed and masked in a reader thread: below it, the thread's start (its own
 * modules and JIT warm-up) costs about what it saves.
 */
export const READER_THREAD_BYTES = 4 << 20;

/** The size of a file, or -1 when it cannot be read (the reading reports why). */
async function fileSize(file: string): Promise<number> {
  try {
    return (await fsp.stat(file)).size;
  } catch {
    return -1;
  }
}

/**
 * The reader thread on `spec.file` when it is to be read in one — `thread`, or by default a file of
 * READER_THREAD_BYTES and more — else null (scoreLog reads it in the scoring thread).
 */
export async function startScoreReader(spec: ReaderSpec, thread?: boolean): Promise<ScoreReader | null> {
  return (thread ?? (await fileSize(spec.file)) >= READER_THREAD_BYTES) ? new ScoreReader(spec) : null;
}

/** Whether a reader thread started on `spec` reads what `want` asks for (the same file, configuration and options). */
export function readsAs(spec: ReaderSpec, want: ReaderSpec): boolean {
  const key = (r: ReaderSpec) => JSON.stringify([r.file, r.name, r.logConfig, r.acceptTruncated, r.withMessages]);
  return key(spec) === key(want);
}

/** Messages from the reader thread. */
type FromReader = { chunk: ParsedLines } | { done: ReaderDone } | { error: { message: string; code?: DeepSentryErrorCode } };

const ENTRY = path.join(__dirname, `score_reader_entry${path.extname(__filename)}`);

/**
 * The main thread's side: starts the reader thread on `spec` and yields its chunks in order; `done` holds its
 * counters and issues once the iteration has ended. An error in the reader (an unreadable or damaged file,
 * a bad configuration) is thrown here as it was thrown there (a DeepSentryError keeps its code). `close`
 * stops the thread (the iteration's end does too).
 */
export class ScoreReader {
  done: ReaderDone | null = null;
  /** ms the consumer waited for a chunk, the first one apart (the reader thread was behind the scoring) */
  waitedMs = 0;
  private readonly worker: Worker;
  private readonly queue: FromReader[] = [];
  private wake: (() => void) | null = null;
  private failure: Error | null = null;

  constructor(readonly spec: ReaderSpec) {
    this.worker = startWorker(ENTRY, spec);
    this.worker.on('message', (m: FromReader) => this.push(m));
    this.worker.on('error', (e) => this.fail(e));
    this.worker.on('exit', (code) => {
      if (this.done === null) this.fail(new DeepSentryError('DS_IO', `the reader thread of ${spec.name} stopped (exit code ${code}) before the end of the input`));
    });
  }

  private push(m: FromReader): void {
    this.queue.push(m);
    this.wake?.();
  }

  private fail(e: Error): void {
    if (this.failure === null) this.failure = e;
    this.wake?.();
  }

  async *chunks(): AsyncGenerator<ParsedLines> {
    let chunks = 0;
    try {
      for (;;) {
        const m = this.queue.shift();
        if (m === undefined) {
          if (this.failure !== null) throw this.failure;
          const t0 = performance.now();
          await new Promise<void>((resolve) => (this.wake = resolve));
          this.wake = null;
          if (chunks > 0) this.waitedMs += performance.now() - t0;
          continue;
        }
        if ('error' in m) throw m.error.code ? new DeepSentryError(m.error.code, m.error.message) : new Error(m.error.message);
        if ('done' in m) {
          this.done = m.done;
          return;
        }
        chunks++;
        yield m.chunk;
        this.worker.postMessage('next');
      }
    } finally {
      await this.close();
    }
  }

  async close(): Promise<void> {
    await this.worker.terminate();
  }
}

/** The reader thread's side (score_reader_entry.ts): produces the chunks, at most AHEAD of the main thread. */
export async function runReader(spec: ReaderSpec, port: { postMessage(m: FromReader, transfer?: ArrayBuffer[]): void; on(ev: 'message', f: () => void): void }): Promise<void> {
  let ahead = 0;
  let resume: (() => void) | null = null;
  port.on('message', () => {
    ahead--;
    resume?.();
  });
  try {
    const done = await produceParsed(spec, async (chunk, transfer) => {
      port.postMessage({ chunk }, transfer);
      ahead++;
      while (ahead >= AHEAD) {
        await new Promise<void>((r) => (resume = r));
        resume = null;
      }
    });
    port.postMessage({ done });
  } catch (e) {
    port.postMessage({ error: { message: (e as Error)?.message ?? String(e), ...(e instanceof DeepSentryError ? { code: e.code } : {}) } });
  }
}
