/**
 * Inside the scorer worker (see worker.ts): builds the scorer from `workerData` and answers calls in order.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { DeepSentryError } from '../errors';
import type { LogConfig } from '../logs/config';
import type { ParsedLines } from './parsed_lines';
import type { LineScorer, RawLine, ScoredEvent } from './types';
import { packEvents, unpackLines, type PackedEvents, type PackedLineTexts, type WorkerScorerSpec } from './worker';

const port = parentPort!;
const spec = workerData as WorkerScorerSpec;

/** A scorer that takes lines parsed, keyed and masked by the main thread (ModelScorer: see WorkerScorer's encoder). */
interface ParsedInputScorer extends LineScorer {
  readonly parsedInputConfig: LogConfig | null;
  absorbParsed(c: ParsedLines): void;
  scoreAbsorbed(c: ParsedLines, lines: readonly RawLine[]): Promise<ScoredEvent[]>;
}

/** The calls answered with events (packed: PackedEvents). */
const isEvents = (method: string): boolean => method === 'scoreLines' || method === 'scoreLinesPacked' || method === 'scorePrepared' || method === 'tick' || method === 'flush';

function errorOf(err: unknown): { message: string; code?: string; stack?: string } {
  const e = err as Error;
  const out: { message: string; code?: string; stack?: string } = { message: e?.message ?? String(err) };
  if (err instanceof DeepSentryError) out.code = err.code;
  if (e?.stack) out.stack = e.stack;
  return out;
}

async function main(): Promise<void> {
  let scorer: LineScorer;
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const mod = require(spec.module) as Record<string, unknown>;
    const factory = mod[spec.exportName];
    if (typeof factory !== 'function') throw new DeepSentryError('DS_INVALID_ARGUMENT', `${spec.module} exports no function ${spec.exportName}`);
    scorer = (await (factory as (d: string, o: unknown) => Promise<LineScorer>)(spec.modelDir, spec.options)) as LineScorer;
  } catch (err) {
    port.postMessage({ id: 0, error: errorOf(err) });
    return;
  }
  const parsing = (scorer as Partial<ParsedInputScorer>).parsedInputConfig ? (scorer as ParsedInputScorer) : null;
  port.postMessage({ id: 0, result: { name: scorer.name, savedThreshold: scorer.savedThreshold, modelVersion: scorer.modelVersion, feedback: typeof scorer.feedback === 'function', parsedInput: parsing?.parsedInputConfig ?? null }, stats: scorer.stats() });
  /**
   * Lines as they came (their texts and numbers, and the main thread's parse of them or null): the chunk's new
   * keys and texts are taken in now, in arrival order, whether or not the lines are scored.
   */
  const received = (args: unknown[]): { lines: RawLine[]; chunk: ParsedLines | null } => {
    const lines = unpackLines(args[0] as PackedLineTexts, args[1] as Float64Array);
    const chunk = (args[2] ?? null) as ParsedLines | null;
    if (chunk !== null) {
      if (parsing === null) throw new DeepSentryError('DS_MODEL', `the scorer '${scorer.name}' takes no parsed lines`);
      parsing.absorbParsed(chunk);
    }
    return { lines, chunk };
  };
  const score = (r: { lines: RawLine[]; chunk: ParsedLines | null }) => (r.chunk !== null ? parsing!.scoreAbsorbed(r.chunk, r.lines) : scorer.scoreLines(r.lines));
  // Events of the last call keep their windows here; the main thread fetches the few it alerts on
  // (LineScorer.context) instead of having every event's window cloned across threads.
  let last: ScoredEvent[] = [];
  const local: Record<string, (...a: unknown[]) => unknown> = {
    // A scorer with its own context (the model scorer: one batched prediction for all the alerted events)
    // answers itself; its indices refer to the same last call.
    context: (indices: unknown) =>
      scorer.context ? scorer.context(indices as number[]) : (indices as number[]).map((i) => {
        const e = last[i];
        if (!e) throw new DeepSentryError('DS_OUT_OF_RANGE', `no event ${i} in the last scorer result (${last.length} events)`);
        return e.expected === undefined ? { window: e.window } : { window: e.window, expected: e.expected };
      }),
  };
  // the session names sent to the main thread so far, by index (see packEvents)
  const namesSent = new Map<string, number>();
  const lean = (events: ScoredEvent[]) => {
    last = events;
    return packEvents(events, namesSent);
  };
  // One call at a time, in arrival order: a scorer is not re-entrant. Except `feedback`, which trains a copy
  // of the model (yielding between steps) while the calls after it score with the model in place.
  let chain = Promise.resolve();
  // Lines of the last `prepare` (decoded while the main thread judged the previous call's events), by its id.
  let prepared: { id: number; input?: { lines: RawLine[]; chunk: ParsedLines | null }; error?: unknown } | null = null;
  port.on('message', (m: { id: number; method: string; args: unknown[] }) => {
    if (m.method === 'prepare') {
      // Not a call (no answer): in turn with the calls, so the lines are decoded when the worker is free.
      chain = chain.then(() => {
        try {
          prepared = { id: m.id, input: received(m.args) };
        } catch (err) {
          prepared = { id: m.id, error: err };
        }
      });
      return;
    }
    const run = async () => {
      try {
        let result: unknown;
        const transfer: ArrayBuffer[] = [];
        if (local[m.method]) result = await local[m.method]!(...m.args);
        else if (m.method === 'scoreLinesPacked') {
          prepared = null;
          result = lean(await score(received(m.args)));
        } else if (m.method === 'scorePrepared') {
          const p = prepared;
          prepared = null;
          if (!p || p.id !== m.args[0]) throw new DeepSentryError('DS_MODEL', `the scorer worker holds no prepared lines ${String(m.args[0])}`);
          if (!p.input) throw p.error;
          result = lean(await score(p.input));
        } else {
          const fn = (scorer as unknown as Record<string, (...a: unknown[]) => unknown>)[m.method];
          if (typeof fn !== 'function') throw new DeepSentryError('DS_INVALID_ARGUMENT', `unknown scorer method ${m.method}`);
          result = await fn.apply(scorer, m.args);
          if (isEvents(m.method)) result = lean(result as ScoredEvent[]);
        }
        const events = isEvents(m.method);
        if (events) {
          const packed = result as PackedEvents;
          transfer.push(packed.num.buffer as ArrayBuffer, packed.flags.buffer as ArrayBuffer, packed.sessions.buffer as ArrayBuffer);
        }
        port.postMessage({ id: m.id, result, events, stats: scorer.stats() }, transfer);
      } catch (err) {
        port.postMessage({ id: m.id, error: errorOf(err), stats: scorer.stats() });
      }
    };
    if (m.method === 'feedback') void run();
    else chain = chain.then(run);
  });
}

void main();
