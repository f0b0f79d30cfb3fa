/**
 * The N-API boundary refuses bad input with a DeepSentryError and never crashes. A seeded fuzzer takes a valid
 * argument object for each entry point and breaks it — a required field removed, a dimension NaN / ±Infinity /
 * negative / zero / fractional / a string / huge, an array of the wrong type or length or detached, a flag that
 * is not a boolean, lengths and token ids out of range, nested objects replaced — one to three faults at a
 * time, and calls the sync and the async variant. Each call must throw (reject) a DeepSentryError with one of
 * the boundary's codes and a message naming the function; the process surviving a few hundred such calls is
 * the other half of the test. Also: async jobs keep their inputs alive through garbage collection, work on
 * their own copies of every array (one detached and freed while a job runs cannot crash it or change its
 * result; one updated in place rejects the job and nothing is written), and an addon with no error class
 * still throws errors with a code. Arrays freed before an async job starts are checked in a child process, so
 * a crash is observed rather than suffered: test/e2e/native-boundary-child.test.ts.
 */
import { expect } from 'chai';
import * as v8 from 'v8';
import * as vm from 'vm';
import { Worker } from 'worker_threads';
import { DeepSentryError } from '../../lib/errors';
import { nativeStatus } from '../../lib/backend/native';
import type { NativeBinding } from '../../lib/backend/binding';
import { entryPoints, INDEX_BOUND, type Args, type EntryPoint, type Kind } from '../support/native-entry-points';
import { firstDifference, lstmProblem, nativeOrSkip, randInt, randWeights, rngFor, type Rng } from '../support/native-helpers';

const BOUNDARY_CODES = ['DS_INVALID_ARGUMENT', 'DS_SHAPE_MISMATCH', 'DS_OUT_OF_RANGE'];

function detached(a: Float32Array | Int32Array): Float32Array | Int32Array {
  // (a may itself be detached already: then a fresh array of the same type stands in)
  const copy = a.buffer.byteLength === 0 ? new (a.constructor as Float32ArrayConstructor)(1) : a.slice();
  structuredClone(copy.buffer, { transfer: [copy.buffer] });
  return copy;
}

const pick = <T>(rng: Rng, xs: readonly T[]): T => xs[Math.floor(rng() * xs.length)];

/**
 * Breaks field `f` of `args` (always into something invalid); returns a description. `single`: this is the
 * only fault, so a dimension may be shifted by one (with other faults, dim+1 and an array of length+1 could
 * cancel out into a valid call).
 */
function breakField(rng: Rng, args: Args, f: string, kind: Kind, single: boolean): string {
  const v = args[f];
  const wrongArrays = (len: number) => [
    new Float64Array(len), new Int32Array(len), new Uint8Array(len * 4), Array.from({ length: len }, () => 0.5),
    'abc', 7, {}, true,
  ];
  switch (kind) {
    case 'dim':
    case 'optdim':
    case 'bound': {
      const n = v as number;
      const bad: unknown[] = [NaN, Infinity, -Infinity, -1, 0, 2.5, String(n), 2 ** 31, 2 ** 40, 10n, null, true];
      // 2^31-1 and n+1 are within a bound's limits (no array length depends on it)
      if (kind !== 'bound') bad.push(2 ** 31 - 1);
      if (single && kind !== 'bound') bad.push(n + 1);
      const choice = kind === 'optdim' ? pick(rng, bad.filter((b) => b !== null)) : pick(rng, [...bad, undefined]);
      args[f] = choice;
      return `${f}=${String(choice)}`;
    }
    case 'num':
    case 'optnum': {
      // every one is outside every range adamUpdate accepts (alpha, ε ≤ 1e6; β ≤ 1; scales ≤ 1e12; none < 0)
      const bad: unknown[] = [NaN, Infinity, -Infinity, -1, 1e13, '0.5', 10n, true, {}];
      if (kind === 'num') bad.push(undefined);
      const choice = pick(rng, bad);
      args[f] = choice;
      return `${f}=${String(choice)}`;
    }
    case 'f32':
    case 'optf32':
    case 'i32': {
      // (an earlier fault may already have replaced the array with something else)
      const a = (ArrayBuffer.isView(v) ? v : kind === 'i32' ? new Int32Array(1) : new Float32Array(1)) as Float32Array;
      const len = a.length;
      const options: [string, unknown][] = [
        ['length+1', new (a.constructor as Float32ArrayConstructor)(len + 1)],
        ['length-1', new (a.constructor as Float32ArrayConstructor)(Math.max(0, len - 1))],
        ['empty', new (a.constructor as Float32ArrayConstructor)(0)],
        ['detached', detached(a)],
        ...wrongArrays(len).map((w): [string, unknown] => [`wrong type ${Object.prototype.toString.call(w)}`, w]),
      ];
      if (kind !== 'optf32') options.push(['missing', undefined]);
      if (kind === 'i32') options.push(['Float32Array', new Float32Array(len)]);
      const [what, value] = pick(rng, options);
      args[f] = value;
      return `${f}: ${what}`;
    }
    case 'lengths': {
      // (batch may be broken already, e.g. Infinity or 2^40: then any small array stands in)
      const b = Number(args.batch);
      const l = v instanceof Int32Array ? v.slice() : new Int32Array(Number.isInteger(b) && b >= 1 && b <= 64 ? b : 1);
      const steps = args.steps as number;
      const choice = pick(rng, ['negative', 'above steps', 'int max', 'float', 'length'] as const);
      if (choice === 'float') args[f] = Float32Array.from(l);
      else if (choice === 'length') args[f] = new Int32Array(l.length + 1);
      else {
        l[randInt(rng, 0, l.length - 1)] = choice === 'negative' ? -1 : choice === 'above steps' ? steps + 1 : 2 ** 31 - 1;
        args[f] = l;
      }
      return `lengths: ${choice}`;
    }
    case 'tokens': {
      const t = v instanceof Int32Array ? v.slice() : new Int32Array(1);
      const vocab = args.vocabSize as number;
      const choice = pick(rng, ['negative', 'vocab', 'huge', 'Float32Array', 'detached', 'missing'] as const);
      if (choice === 'Float32Array') args[f] = Float32Array.from(t);
      else if (choice === 'detached') args[f] = detached(t);
      else if (choice === 'missing') {
        args[f] = undefined; // neither x nor tokens
      } else {
        t[randInt(rng, 0, t.length - 1)] = choice === 'negative' ? -1 : choice === 'vocab' ? vocab : 2 ** 31 - 1;
        args[f] = t;
      }
      return `tokens: ${choice}`;
    }
    case 'index': {
      // (an earlier fault may have detached or replaced it)
      const t = v instanceof Int32Array && v.buffer.byteLength > 0 ? v.slice() : new Int32Array(1);
      const bound = args[INDEX_BOUND[f]] as number;
      const choice = pick(rng, ['negative', 'bound', 'huge', 'Float32Array', 'detached', 'missing'] as const);
      if (choice === 'Float32Array') args[f] = Float32Array.from(t);
      else if (choice === 'detached') args[f] = detached(t);
      else if (choice === 'missing') args[f] = undefined;
      else {
        t[randInt(rng, 0, t.length - 1)] = choice === 'negative' ? -1 : choice === 'bound' ? bound : 2 ** 31 - 1;
        args[f] = t;
      }
      return `${f}: ${choice}`;
    }
    case 'bool': {
      const choice = pick(rng, [1, 0, 'true', {}, [], NaN]);
      args[f] = choice;
      return `${f}=${JSON.stringify(choice)}`;
    }
    case 'weights':
    case 'optweights': {
      const complete = typeof v === 'object' && v !== null && ['kernel', 'recurrentKernel', 'bias'].every((k) => ArrayBuffer.isView((v as Args)[k]));
      const w = (complete ? v : randWeights(rng, 2, 3)) as unknown as Record<string, Float32Array>;
      const choice = pick(rng, ['not an object', 'kernel', 'recurrentKernel', 'bias', 'missing'] as const);
      if (choice === 'not an object') args[f] = pick(rng, [5, 'w', new Float32Array(4), [w.kernel, w.recurrentKernel, w.bias]]);
      else if (choice === 'missing') {
        if (kind === 'optweights') args[f] = { kernel: w.kernel }; // incomplete
        else args[f] = undefined;
      } else {
        const copy = { ...w };
        copy[choice] = pick(rng, [new Float32Array(w[choice].length + 1), new Float64Array(w[choice].length), detached(w[choice])]) as Float32Array;
        args[f] = copy;
      }
      return `${f}: ${choice}`;
    }
  }
}

function checkError(err: unknown, fn: string, what: string) {
  expect(err, `${fn} with ${what}: a DeepSentryError`).to.be.instanceOf(DeepSentryError);
  const e = err as DeepSentryError;
  expect(BOUNDARY_CODES, `${fn} with ${what}: code ${e.code} (${e.message})`).to.include(e.code);
  expect(e.message.startsWith(`${fn}:`), `${fn} with ${what}: message "${e.message}" names the function`).to.equal(true);
}

describe('native boundary', function () {
  let native: NativeBinding;
  let eps: EntryPoint[];
  before(function () {
    native = nativeOrSkip(this);
    eps = entryPoints(native);
  });

  it('accepts the valid arguments the fuzzer starts from (so refusals below are for the faults)', async () => {
    const rng = rngFor(1);
    for (const ep of eps) {
      for (let i = 0; i < 5; i++) {
        const args = ep.valid(rng);
        expect(() => (native[ep.name] as unknown as (a: Args) => unknown)(args), `${ep.name} valid #${i}`).not.to.throw();
        await (native[`${ep.name}Async` as keyof NativeBinding] as unknown as (a: Args) => Promise<unknown>)(args);
      }
    }
  });

  it('refuses 600 randomly broken argument objects at every entry point, sync and async, and survives', async () => {
    const rng = rngFor(20261122);
    let cases = 0;
    const seenCodes = new Set<string>();
    while (cases < 600) {
      for (const ep of eps) {
        const args = ep.valid(rng);
        const fields = Object.keys(ep.fields);
        const faults = randInt(rng, 1, 3);
        const what: string[] = [];
        for (let i = 0; i < faults; i++) {
          const f = pick(rng, fields);
          what.push(breakField(rng, args, f, ep.fields[f], faults === 1));
        }
        const desc = what.join(', ');
        const sync = native[ep.name] as unknown as (a: Args) => unknown;
        let thrown: unknown = null;
        try {
          sync(args);
        } catch (err) {
          thrown = err;
        }
        expect(thrown, `${ep.name} with ${desc} did not throw`).to.not.equal(null);
        checkError(thrown, ep.name, desc);
        seenCodes.add((thrown as DeepSentryError).code);
        const asyncName = `${ep.name}Async`;
        const asyncFn = native[asyncName as keyof NativeBinding] as unknown as (a: Args) => Promise<unknown>;
        let result: unknown;
        try {
          result = asyncFn(args);
        } catch (err) {
          expect.fail(`${asyncName} with ${desc} threw synchronously (${String(err)}); it must reject`);
        }
        expect(result, `${asyncName} returns a promise`).to.be.instanceOf(Promise);
        const rejected = await (result as Promise<unknown>).then(() => null, (e: unknown) => e);
        expect(rejected, `${asyncName} with ${desc} resolved`).to.not.equal(null);
        checkError(rejected, asyncName, desc);
        cases++;
      }
    }
    expect([...seenCodes].sort()).to.deep.equal([...BOUNDARY_CODES].sort());
  });

  it('refuses non-object arguments and names the argument', () => {
    for (const ep of eps) {
      for (const bad of [undefined, null, 42, 'x', [], new Float32Array(3), () => 0]) {
        let err: unknown = null;
        try {
          (native[ep.name] as unknown as (a: unknown) => unknown)(bad);
        } catch (e) {
          err = e;
        }
        checkError(err, ep.name, String(bad));
      }
    }
  });

  it('messages name the argument, what was expected and what was received', () => {
    const rng = rngFor(5);
    const args = eps[0].valid(rng);
    const I = args.inputSize as number, H = args.hiddenSize as number;
    const w = args.weights as Record<string, Float32Array>;
    expect(() => native.lstmForward({ ...args, weights: { ...w, kernel: new Float32Array(I * 4 * H - 1) } } as never))
      .to.throw(DeepSentryError, `lstmForward: expected weights.kernel to be a Float32Array of length ${I * 4 * H} (inputSize*4*hiddenSize) but received Float32Array(${I * 4 * H - 1})`);
    expect(() => native.lstmForward({ ...args, hiddenSize: NaN } as never))
      .to.throw(DeepSentryError, 'lstmForward: expected hiddenSize to be an integer in [1, 2147483647] but received number NaN');
    expect(() => native.lstmForward({ ...args, x: new Float64Array((args.x as Float32Array).length) as never } as never))
      .to.throw(DeepSentryError, /expected x to be a Float32Array .* but received Float64Array/);
    expect(() => native.lstmForward({ ...args, x: detached(args.x as Float32Array) as Float32Array } as never))
      .to.throw(DeepSentryError, /received detached Float32Array/);
  });

  it('refuses absurd sizes before allocating anything (DS_OUT_OF_RANGE)', () => {
    const x = new Float32Array(1);
    const w = randWeights(rngFor(1), 1, 1);
    const huge = [
      { batch: 2 ** 31 - 1, steps: 2 ** 31 - 1, inputSize: 1, hiddenSize: 1 }, // product overflows int32
      { batch: 2 ** 13, steps: 2 ** 13, inputSize: 1, hiddenSize: 4 }, // each array fits, the call (> 4 GiB) does not
      { batch: 1, steps: 1, inputSize: 1, hiddenSize: 2 ** 20 }, // recurrent kernel H*4H = 2^42
    ];
    for (const d of huge) {
      for (const training of [false, true]) {
        try {
          native.lstmForward({ ...d, x, weights: w, training });
          expect.fail(`lstmForward ${JSON.stringify(d)} did not throw`);
        } catch (e) {
          expect((e as DeepSentryError).code, String(e)).to.equal('DS_OUT_OF_RANGE');
        }
      }
    }
    expect(() => native.matMul({ a: x, b: x, m: 2 ** 15 + 1, k: 1, n: 2 ** 15 })).to.throw(DeepSentryError, /MiB/);
  });

  it('encode: x and tokens are exclusive, reverse conflicts with backwardWeights', () => {
    const rng = rngFor(9);
    const t = eps[5].valid(rng);
    const x = new Float32Array((t.batch as number) * (t.steps as number) * (t.inputSize as number));
    expect(() => native.lstmEncode({ ...t, x } as never)).to.throw(DeepSentryError, /not both/);
    const e = eps[4].valid(rng);
    expect(() => native.lstmEncode({ ...e, reverse: true } as never)).to.throw(DeepSentryError, /reverse/);
  });

  it('runtime entry points check their arguments too', () => {
    const caps = native.capabilities();
    for (const bad of ['sse', '', 3, undefined, null, 'AVX2']) {
      expect(() => native.setSimdLevel(bad as never)).to.throw(DeepSentryError).with.property('code').that.is.oneOf(['DS_INVALID_ARGUMENT', 'DS_UNSUPPORTED']);
    }
    for (const bad of [0, -1, 257, 1.5, NaN, Infinity, '2', undefined]) {
      expect(() => native.setThreads(bad as never)).to.throw(DeepSentryError).with.property('code').that.is.oneOf(['DS_INVALID_ARGUMENT', 'DS_OUT_OF_RANGE']);
    }
    for (const level of ['baseline', 'avx2', 'avx512'] as const) {
      if (caps.simdSupported.includes(level)) native.setSimdLevel(level);
      else expect(() => native.setSimdLevel(level)).to.throw(DeepSentryError).with.property('code', 'DS_UNSUPPORTED');
    }
    native.setSimdLevel(caps.simd);
    expect(() => native.setErrorClass(42 as never)).to.throw(DeepSentryError).with.property('code', 'DS_INVALID_ARGUMENT');
    expect(native.capabilities()).to.deep.equal(caps);
  });

  it('the entry points are plain functions: any `this` works', () => {
    const args = eps[0].valid(rngFor(3));
    const want = native.lstmForward(args as never).y;
    for (const self of [undefined, null, 42, {}, native]) {
      const got = (native.lstmForward as (this: unknown, a: unknown) => { y: Float32Array }).call(self, args).y;
      expect(firstDifference(got, want)).to.equal(null);
    }
  });

  it('a throwing getter or a Proxy argument: the JavaScript error wins, nothing crashes', () => {
    const args = eps[0].valid(rngFor(10)) as Record<string, unknown>;
    const boom = new Error('boom from a getter');
    const withGetter = { ...args, get hiddenSize(): number { throw boom; } };
    expect(() => native.lstmForward(withGetter as never)).to.throw(boom);
    const proxy = new Proxy(args, { get: (t, k) => (k === 'weights' ? { kernel: 1 } : Reflect.get(t, k)) });
    expect(() => native.lstmForward(proxy as never)).to.throw(DeepSentryError, /weights\.kernel/);
  });

  it('arrays on a SharedArrayBuffer (and at a byte offset) are read in place', () => {
    const d = { batch: 2, steps: 3, inputSize: 5, hiddenSize: 4 };
    const p = lstmProblem(rngFor(12), d, { lengths: true });
    const want = native.lstmForward(p).y;
    const shared = new Float32Array(new SharedArrayBuffer((p.x.length + 3) * 4), 12, p.x.length);
    shared.set(p.x);
    expect(firstDifference(native.lstmForward({ ...p, x: shared }).y, want)).to.equal(null);
  });

  it('a getter that detaches an array already checked is caught before the kernels run', () => {
    const args = eps[0].valid(rngFor(4)) as Record<string, unknown>;
    const x = args.x as Float32Array;
    const weights = args.weights;
    const tricky = { ...args, get weights() {
      structuredClone(x.buffer as ArrayBuffer, { transfer: [x.buffer as ArrayBuffer] });
      return weights;
    } };
    expect(() => native.lstmForward(tricky as never)).to.throw(DeepSentryError, /x was detached or resized while the arguments were being read/);
  });

  it('lengths and token ids changed by JavaScript after the call cannot reach the kernels', async () => {
    const d = { batch: 8, steps: 6, inputSize: 5, hiddenSize: 7 };
    const p = lstmProblem(rngFor(6), d, { lengths: true });
    const want = native.lstmForward(p).y;
    const lengths = p.lengths!.slice();
    const job = native.lstmForwardAsync({ ...p, lengths });
    lengths.fill(1_000_000); // while the job is queued or running: would be out of bounds if read
    expect(firstDifference((await job).y, want)).to.equal(null);

    const t = eps[5].valid(rngFor(8)) as Record<string, unknown>;
    const tokens = (t.tokens as Int32Array).slice();
    const wantH = native.lstmEncode({ ...t, tokens } as never).h;
    const enc = native.lstmEncodeAsync({ ...t, tokens } as never);
    tokens.fill(-5);
    expect(firstDifference((await enc).h, wantH)).to.equal(null);
  });

  it('async jobs keep their inputs and results alive through garbage collection', async () => {
    v8.setFlagsFromString('--expose-gc');
    const gc = vm.runInNewContext('gc') as () => void;
    const rng = rngFor(77);
    const d = { batch: 32, steps: 12, inputSize: 48, hiddenSize: 64 };
    const problems = Array.from({ length: 6 }, () => lstmProblem(rng, d, { lengths: true, state: true }));
    const expected = problems.map((p) => native.lstmForward(p).y);
    // The job gets copies nobody else references: only the addon's references keep them alive.
    const pending = problems.map((p) =>
      native.lstmForwardAsync({
        ...d, x: p.x.slice(), h0: p.h0!.slice(), c0: p.c0!.slice(), lengths: p.lengths!.slice(),
        weights: { kernel: p.weights.kernel.slice(), recurrentKernel: p.weights.recurrentKernel.slice(), bias: p.weights.bias.slice() },
      }));
    for (let i = 0; i < 20; i++) {
      let garbage: Float32Array[] | null = Array.from({ length: 40 }, () => new Float32Array(64 * 1024).fill(i));
      garbage = null;
      void garbage;
      gc();
    }
    const results = await Promise.all(pending);
    results.forEach((r, i) => expect(firstDifference(r.y, expected[i]), `job ${i}`).to.equal(null));
  });

  it('an input detached while an async job runs: the job computes on its own copy and resolves with the sync result', async () => {
    const p = lstmProblem(rngFor(78), { batch: 64, steps: 16, inputSize: 64, hiddenSize: 64 });
    const want = native.lstmForward(p).y;
    const job = native.lstmForwardAsync(p);
    const moved = structuredClone(p.x.buffer as ArrayBuffer, { transfer: [p.x.buffer as ArrayBuffer] });
    new Float32Array(moved).fill(NaN); // what the caller does with the memory afterwards cannot reach the job
    expect(firstDifference((await job).y, want)).to.equal(null);
  });

  it('an in-place array detached while adamUpdateAsync runs: rejected, nothing written to the others', async () => {
    const rng = rngFor(79);
    const args = eps[7].valid(rng) as { weights: Float32Array; m: Float32Array; v: Float32Array };
    const before = { weights: args.weights.slice(), v: args.v.slice() };
    const job = native.adamUpdateAsync(args as never);
    structuredClone(args.m.buffer as ArrayBuffer, { transfer: [args.m.buffer as ArrayBuffer] });
    const err = await job.then(() => null, (e: unknown) => e);
    expect(err).to.be.instanceOf(DeepSentryError);
    expect((err as DeepSentryError).code).to.equal('DS_INVALID_ARGUMENT');
    expect((err as DeepSentryError).message).to.match(/^adamUpdateAsync: m was detached or resized while the job was running; nothing was written/);
    expect(firstDifference(args.weights, before.weights)).to.equal(null);
    expect(firstDifference(args.v, before.v)).to.equal(null);
    // and when nothing is detached, the job writes all three back (the sync update, exactly)
    const again = eps[7].valid(rng) as { weights: Float32Array; m: Float32Array; v: Float32Array };
    const syncCopy = { ...again, weights: again.weights.slice(), m: again.m.slice(), v: again.v.slice() };
    native.adamUpdate(syncCopy as never);
    expect(await native.adamUpdateAsync(again as never)).to.equal(again.weights);
    for (const k of ['weights', 'm', 'v'] as const) expect(firstDifference(again[k], syncCopy[k]), k).to.equal(null);
  });

  it('terminating a worker thread with async jobs in flight does not bring the process down', async () => {
    const file = nativeStatus().path!;
    const code = `
      const a = require(${JSON.stringify(file)});
      const B = 32, T = 12, I = 48, H = 48;
      const args = { batch: B, steps: T, inputSize: I, hiddenSize: H, x: new Float32Array(B * T * I).fill(0.1),
        weights: { kernel: new Float32Array(I * 4 * H).fill(0.01), recurrentKernel: new Float32Array(H * 4 * H).fill(0.01),
          bias: new Float32Array(4 * H) } };
      for (let i = 0; i < 40; i++) a.lstmForwardAsync(args).catch(() => {});
      a.lstmForwardAsync({ batch: 0 }).catch(() => {});
      require('worker_threads').parentPort.postMessage('queued');`;
    for (let k = 0; k < 8; k++) {
      const w = new Worker(code, { eval: true });
      await new Promise((resolve, reject) => {
        w.once('message', resolve);
        w.once('error', reject);
      });
      await w.terminate();
    }
    // still alive, and the addon in this thread still works
    expect(native.capabilities().version).to.be.a('string');
  });

  it('terminating a worker thread in the middle of sync calls (and their errors) does not bring the process down', async () => {
    const file = nativeStatus().path!;
    const code = `
      const a = require(${JSON.stringify(file)});
      const B = 16, T = 10, I = 32, H = 32;
      const args = { batch: B, steps: T, inputSize: I, hiddenSize: H, x: new Float32Array(B * T * I).fill(0.1),
        weights: { kernel: new Float32Array(I * 4 * H).fill(0.01), recurrentKernel: new Float32Array(H * 4 * H).fill(0.01),
          bias: new Float32Array(4 * H) } };
      require('worker_threads').parentPort.postMessage('running');
      for (;;) { a.lstmForward(args); try { a.lstmForward({ batch: 0 }); } catch (e) {} }`;
    for (let k = 0; k < 12; k++) {
      const w = new Worker(code, { eval: true });
      await new Promise((resolve, reject) => {
        w.once('message', resolve);
        w.once('error', reject);
      });
      await new Promise((resolve) => setTimeout(resolve, 2 + (k % 5)));
      await w.terminate();
    }
    expect(native.capabilities().version).to.be.a('string');
  });

  it('loads in a worker thread (own addon data) and without setErrorClass still throws errors with a code', async () => {
    const file = nativeStatus().path!;
    const code = `
      const { parentPort } = require('worker_threads');
      const a = require(${JSON.stringify(file)});
      let out;
      try { a.lstmForward({ batch: 0 }); out = 'no error'; }
      catch (e) { out = { name: e.constructor.name, code: e.code, message: e.message }; }
      parentPort.postMessage(out);`;
    const msg = await new Promise((resolve, reject) => {
      const w = new Worker(code, { eval: true });
      w.once('message', resolve);
      w.once('error', reject);
    });
    expect(msg).to.deep.include({ name: 'Error', code: 'DS_OUT_OF_RANGE' });
  });
});
