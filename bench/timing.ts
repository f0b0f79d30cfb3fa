/**
 * Timing with benchmark.js, summarised by the median: benchmark.js runs cycles (each repeating the function
 * until it has taken at least minTime) until it has minSamples cycles and maxTime seconds; every cycle gives
 * one sample, the mean seconds per call of that cycle. The machine is shared, so we quote the median sample,
 * which one noisy cycle cannot move much, and keep the relative margin of error benchmark.js computes.
 */
import Benchmark from 'benchmark';
import { DeepSentryError } from '../lib/errors';

export interface TimingBudget {
  /** at least this many samples (cycles) */
  minSamples: number;
  /** then stop once this many seconds have elapsed */
  maxTime: number;
}

export interface Timing {
  /** median seconds per call over the samples */
  median: number;
  /** seconds per call of every sample, in the order taken */
  samples: number[];
  /** benchmark.js' relative margin of error of the mean, in percent */
  rme: number;
  /** calls timed per sample in the last cycle (1 for slow functions) */
  callsPerSample: number;
  /** every call made, timed or not */
  calls: number;
}

export function median(values: number[]): number {
  if (values.length === 0) return NaN;
  const s = [...values].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 === 1 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
}

/**
 * Times a function: a synchronous one, or one returning a promise (timed until it settles; calls do not
 * overlap).
 *
 * Run as a *deferred* benchmark on purpose: for a plain one, benchmark.js "pretests" the compiled loop with
 * one untimed call before every cycle, which doubles the cost of a slow peer (a 25 s tfjs-cpu training step
 * would run twice per sample). Deferred benchmarks have no pretest; the per-call cost of resolve() is well
 * under a microsecond. An error thrown by fn ends the benchmark and is rethrown here.
 */
export function timeFunction(name: string, fn: () => unknown, budget: TimingBudget): Promise<Timing> {
  let calls = 0;
  let failure: unknown = null;
  return new Promise<Timing>((resolve, reject) => {
    const bench = new Benchmark(name, {
      defer: true,
      minSamples: budget.minSamples,
      maxTime: budget.maxTime,
      initCount: 1,
      // benchmark.js first tries a decompiled copy of this function; with the closure's names out of scope it
      // throws a ReferenceError before doing anything and benchmark.js calls the function itself instead
      fn(deferred: { resolve(): void; benchmark: Benchmark }) {
        calls++;
        const fail = (err: unknown) => {
          failure = err;
          deferred.benchmark.abort();
        };
        let r: unknown;
        try {
          r = fn();
        } catch (err) {
          return fail(err);
        }
        if (r instanceof Promise) r.then(() => deferred.resolve(), fail);
        else deferred.resolve();
      },
      onComplete() {
        if (failure !== null) return reject(failure);
        if (bench.error) return reject(new DeepSentryError('DS_INVALID_ARGUMENT', `benchmark ${name} failed: ${String(bench.error)}`));
        const samples = bench.stats.sample.slice();
        resolve({ median: median(samples), samples, rme: bench.stats.rme, callsPerSample: bench.count, calls });
      },
      onAbort() {
        if (failure !== null) reject(failure);
      },
    } as Benchmark.Options);
    bench.run({ async: true });
  });
}
