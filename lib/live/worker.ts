/**
 * WorkerScorer: runs any LineScorer in a worker thread, so parsing and scoring never block the event loop
 * that serves HTTP, reads files and sends alerts. The scorer is built inside the worker by a factory
 * exported from a module (`module` + `exportName`, called as `factory(modelDir, options)`), because a
 * scorer object itself cannot cross threads.
 *
 * Calls are messages `{id, method, args}` answered by `{id, result, stats}` or `{id, error}`; the monitor
 * never has two calls in flight, but the proxy does not rely on it. Errors keep their DeepSentryError code.
 */
import * as path from 'node:path';
import { Worker } from 'node:worker_threads';
import { DeepSentryError, type DeepSentryErrorCode } from '../errors';
import type { EventContext, LineScorer, RawLine, ScoredEvent, ScorerOptions, ScorerStats } from './types';

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
  stats?: ScorerStats;
  error?: { message: string; code?: DeepSentryErrorCode; stack?: string };
}

const ENTRY = path.join(__dirname, `worker-entry${path.extname(__filename)}`);

export class WorkerScorer implements LineScorer {
  readonly name: string;
  readonly savedThreshold?: number;
  private readonly worker: Worker;
  private nextId = 1;
  private readonly calls = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  private lastStats: ScorerStats = { openSessions: 0, evictedSessions: 0, unparsedLines: 0 };
  private dead: Error | null = null;

  private constructor(worker: Worker, name: string, savedThreshold: number | undefined) {
    this.worker = worker;
    this.name = name;
    if (savedThreshold !== undefined) this.savedThreshold = savedThreshold;
    worker.on('message', (m: Reply) => this.reply(m));
    worker.on('error', (err) => this.die(err));
    worker.on('exit', (code) => this.die(new DeepSentryError('DS_MODEL', `the scorer worker exited (code ${code})`)));
  }

  /** Starts the worker and builds the scorer in it. */
  static async start(spec: WorkerScorerSpec): Promise<WorkerScorer> {
    const ts = ENTRY.endsWith('.ts');
    // Under tsx (tests, `npx tsx`) the worker must register tsx itself: workers do not inherit require hooks.
    const worker = ts
      ? new Worker(`require(${JSON.stringify(require.resolve('tsx/cjs'))}); require(${JSON.stringify(ENTRY)});`, { eval: true, workerData: spec })
      : new Worker(ENTRY, { workerData: spec });
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
    const r = init.result as { name: string; savedThreshold?: number };
    const s = new WorkerScorer(worker, r.name, r.savedThreshold);
    if (init.stats) s.lastStats = init.stats;
    return s;
  }

  private reply(m: Reply): void {
    const c = this.calls.get(m.id);
    if (!c) return;
    this.calls.delete(m.id);
    if (m.stats) this.lastStats = m.stats;
    if (m.error) c.reject(toError(m.error));
    else c.resolve(m.result);
  }

  private die(err: Error): void {
    if (this.dead) return;
    this.dead = err;
    for (const c of this.calls.values()) c.reject(err);
    this.calls.clear();
  }

  private call<T>(method: string, args: unknown[]): Promise<T> {
    if (this.dead) return Promise.reject(this.dead);
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      this.calls.set(id, { resolve: resolve as (v: unknown) => void, reject });
      this.worker.postMessage({ id, method, args });
    });
  }

  scoreLines(lines: RawLine[]): Promise<ScoredEvent[]> {
    return this.call('scoreLines', [lines]);
  }
  tick(nowMs: number): Promise<ScoredEvent[]> {
    return this.call('tick', [nowMs]);
  }
  flush(): Promise<ScoredEvent[]> {
    return this.call('flush', []);
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
  restore(state: unknown): Promise<void> {
    return this.call('restore', [state]);
  }
  async close(): Promise<void> {
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
