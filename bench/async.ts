/**
 * `npx tsx bench/async.ts [--quick]` — what the *Async entry points cost over the sync ones on the W1 reference
 * shapes (bench/workloads.ts): an async call copies every array it is given on the JavaScript thread (native/
 * src/check.h, ArrayMode::kCopy) and pays the libuv round trip; a sync call reads the arrays in place. Prints
 * the median ms per call of each form, and of the JavaScript thread's share of an async call (checks, copies,
 * queueing: until the call returns its promise). Point DEEPSENTRY_NATIVE at another build to compare.
 */
import { parseArgs } from 'util';
import type { NativeBinding } from '../lib/backend/binding';
import { loadNative, nativeStatus } from '../lib/backend/native';
import { median, timeFunction, type TimingBudget } from './timing';
import { initW1Params, makeW1Batch, W1_REFERENCE, w1ParamCount } from './workloads';

interface Call {
  name: string;
  /** megabytes of arrays the call is given (what an async call copies) */
  inputMiB: number;
  sync: () => unknown;
  async: () => Promise<unknown>;
}

function calls(nb: NativeBinding): Call[] {
  const s = W1_REFERENCE;
  const p = initW1Params(s, 11);
  const batch = makeW1Batch(s, 12);
  const bi = { batch: s.batch, steps: s.steps, inputSize: s.input, hiddenSize: s.hidden, x: batch.x, forward: p.forward, backward: p.backward };
  const a = new Float32Array(s.batch * 2 * s.hidden).fill(0.5);
  const mm = { a, b: p.dense.kernel, m: s.batch, k: 2 * s.hidden, n: s.out };
  const n = w1ParamCount(s);
  const adam = { size: n, weights: new Float32Array(n), gradients: new Float32Array(n).fill(1e-3), m: new Float32Array(n), v: new Float32Array(n), alpha: 1e-3, beta1: 0.9, beta2: 0.999, epsilon: 1e-7 };
  const mib = (...arrays: Float32Array[]) => arrays.reduce((t, x) => t + x.byteLength, 0) / 2 ** 20;
  return [
    { name: 'bilstmForward (W1)', inputMiB: mib(bi.x, p.forward.kernel, p.forward.recurrentKernel, p.forward.bias, p.backward.kernel, p.backward.recurrentKernel, p.backward.bias), sync: () => nb.bilstmForward(bi), async: () => nb.bilstmForwardAsync(bi) },
    { name: 'matMul (W1 Dense)', inputMiB: mib(a, p.dense.kernel), sync: () => nb.matMul(mm), async: () => nb.matMulAsync(mm) },
    { name: `adamUpdate (${n} W1 parameters)`, inputMiB: mib(adam.weights, adam.gradients, adam.m, adam.v), sync: () => nb.adamUpdate(adam), async: () => nb.adamUpdateAsync(adam) },
  ];
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { quick: { type: 'boolean', default: false } } });
  const nb = loadNative();
  if (nb === null) throw new Error(`the native addon did not load (${nativeStatus().errors.map((e) => e.error).join('; ')})`);
  const budget: TimingBudget = values.quick ? { minSamples: 5, maxTime: 0.5 } : { minSamples: 20, maxTime: 3 };
  process.stdout.write(`addon ${nativeStatus().path}\n`);
  process.stdout.write('call                                 input MiB   sync ms  async ms  async call returns ms\n');
  for (const c of calls(nb)) {
    const sync = (await timeFunction(`${c.name} sync`, c.sync, budget)).median * 1e3;
    const returns: number[] = [];
    const timedAsync = () => {
      const t0 = process.hrtime.bigint();
      const p = c.async();
      returns.push(Number(process.hrtime.bigint() - t0) / 1e6);
      return p;
    };
    const async = (await timeFunction(`${c.name} async`, timedAsync, budget)).median * 1e3;
    process.stdout.write(`${c.name.padEnd(36)} ${c.inputMiB.toFixed(2).padStart(9)} ${sync.toFixed(3).padStart(9)} ${async.toFixed(3).padStart(9)} ${median(returns).toFixed(3).padStart(22)}\n`);
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`${(err as Error).stack ?? String(err)}\n`);
  process.exitCode = 1;
});
