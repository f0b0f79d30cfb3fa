/**
 * The N-API boundary refuses bad input with a DeepSentryError and never crashes. A seeded fuzzer takes a valid
 * argument object for each entry point and breaks it — a required field removed, a dimension NaN / ±Infinity /
 * negative / zero / fractional / a string / huge, an array of the wrong type or length or detached, a flag that
 * is not a boolean, lengths and token ids out of range, nested objects replaced — one to three faults at a
 * time, and calls the sync and the async variant. Each call must throw (reject) a DeepSentryError with one of
 * the boundary's codes and a message naming the function; the process surviving a few hundred such calls is
 * the other half of the test. Also: async jobs keep their inputs alive through garbage collection, a buffer
 * detached while a job runs is reported, and an addon with no error class still throws errors with a code.
 */
import { expect } from 'chai';
import * as v8 from 'v8';
import * as vm from 'vm';
import { Worker } from 'worker_threads';
import { DeepSentryError } from '../lib/errors';
import { nativeStatus } from '../lib/backend/native';
import type { NativeBinding } from '../lib/backend/binding';
import { firstDifference, lstmProblem, nativeOrSkip, randF32, randInt, randWeights, rngFor, type Rng } from './support/native-helpers';

const BOUNDARY_CODES = ['DS_INVALID_ARGUMENT', 'DS_SHAPE_MISMATCH', 'DS_OUT_OF_RANGE'];

type Args = Record<string, unknown>;
type Kind = 'dim' | 'optdim' | 'num' | 'optnum' | 'f32' | 'optf32' | 'i32' | 'bool' | 'weights' | 'optweights' | 'lengths' | 'tokens';
interface EntryPoint {
  name: keyof NativeBinding;
  /** a valid argument object (fresh arrays every time) */
  valid: (rng: Rng) => Args;
  /** the fields the fuzzer may break, by kind */
  fields: Record<string, Kind>;
}

const DIMS = { batch: 'dim', steps: 'dim', inputSize: 'dim', hiddenSize: 'dim' } as const;

function smallDims(rng: Rng) {
  return { batch: randInt(rng, 1, 3), steps: randInt(rng, 1, 4), inputSize: randInt(rng, 1, 5), hiddenSize: randInt(rng, 1, 4) };
}

/** Valid arguments of every entry point, built through the real forward calls where backward needs them. */
function entryPoints(native: NativeBinding): EntryPoint[] {
  const lstmFwd = (rng: Rng): Args => {
    const p = lstmProblem(rng, smallDims(rng), { state: true, lengths: true });
    return { ...p };
  };
  const lstmBwd = (rng: Rng): Args => {
    const p = lstmProblem(rng, smallDims(rng), { state: true, lengths: true });
    const f = native.lstmForward({ ...p, training: true });
    const { batch: B, steps: T, hiddenSize: H } = p;
    return { ...p, y: f.y, workspace: f.workspace, dy: randF32(rng, B * T * H), dh: randF32(rng, B * H), dc: randF32(rng, B * H) };
  };
  const biFwd = (rng: Rng): Args => {
    const d = smallDims(rng);
    const p = lstmProblem(rng, d, { state: true, lengths: true });
    return { ...d, x: p.x, forward: p.weights, backward: randWeights(rng, d.inputSize, d.hiddenSize), h0Fw: p.h0, c0Fw: p.c0, h0Bw: p.h0, c0Bw: p.c0, lengths: p.lengths };
  };
  const biBwd = (rng: Rng): Args => {
    const a = biFwd(rng);
    const f = native.bilstmForward({ ...a, training: true } as never);
    const B = a.batch as number, T = a.steps as number, H = a.hiddenSize as number;
    return { ...a, y: f.y, workspace: f.workspace, dy: randF32(rng, B * T * 2 * H), dhFw: randF32(rng, B * H), dcFw: randF32(rng, B * H), dhBw: randF32(rng, B * H), dcBw: randF32(rng, B * H) };
  };
  const encX = (rng: Rng): Args => {
    const d = smallDims(rng);
    const p = lstmProblem(rng, d, { lengths: true });
    return { ...d, x: p.x, weights: p.weights, backwardWeights: randWeights(rng, d.inputSize, d.hiddenSize), lengths: p.lengths };
  };
  const encTokens = (rng: Rng): Args => {
    const d = smallDims(rng);
    const vocab = randInt(rng, 1, 9);
    const tokens = new Int32Array(d.batch * d.steps).map(() => randInt(rng, 0, vocab - 1));
    return { ...d, tokens, vocabSize: vocab, embedding: randF32(rng, vocab * d.inputSize), weights: randWeights(rng, d.inputSize, d.hiddenSize), reverse: true };
  };
  const mm = (rng: Rng): Args => {
    const m = randInt(rng, 1, 4), k = randInt(rng, 1, 4), n = randInt(rng, 1, 4);
    const batchA = randInt(rng, 1, 2), batchB = batchA === 2 && rng() < 0.5 ? 1 : batchA;
    return { m, k, n, batchA, batchB, a: randF32(rng, batchA * m * k), b: randF32(rng, batchB * k * n), transposeA: rng() < 0.5, transposeB: rng() < 0.5 };
  };
  const adam = (rng: Rng): Args => {
    const size = randInt(rng, 1, 40);
    return { size, weights: randF32(rng, size), gradients: randF32(rng, size), m: randF32(rng, size), v: randF32(rng, size).map(Math.abs), alpha: 1e-3, beta1: 0.9, beta2: 0.999, epsilon: 1e-7, vScale: 1.2, gradScale: 0.5 };
  };
  const state = { h0: 'optf32', c0: 'optf32' } as const;
  const biState = { h0Fw: 'optf32', c0Fw: 'optf32', h0Bw: 'optf32', c0Bw: 'optf32' } as const;
  return [
    { name: 'lstmForward', valid: lstmFwd, fields: { ...DIMS, x: 'f32', weights: 'weights', ...state, lengths: 'lengths', reverse: 'bool', training: 'bool' } },
    { name: 'lstmBackward', valid: lstmBwd, fields: { ...DIMS, x: 'f32', weights: 'weights', ...state, lengths: 'lengths', reverse: 'bool', y: 'f32', workspace: 'f32', dy: 'optf32', dh: 'optf32', dc: 'optf32' } },
    { name: 'bilstmForward', valid: biFwd, fields: { ...DIMS, x: 'f32', forward: 'weights', backward: 'weights', ...biState, lengths: 'lengths', training: 'bool' } },
    { name: 'bilstmBackward', valid: biBwd, fields: { ...DIMS, x: 'f32', forward: 'weights', backward: 'weights', ...biState, lengths: 'lengths', y: 'f32', workspace: 'f32', dy: 'optf32', dhFw: 'optf32', dcFw: 'optf32', dhBw: 'optf32', dcBw: 'optf32' } },
    { name: 'lstmEncode', valid: encX, fields: { ...DIMS, x: 'f32', weights: 'weights', backwardWeights: 'optweights', lengths: 'lengths' } },
    { name: 'lstmEncode', valid: encTokens, fields: { ...DIMS, tokens: 'tokens', vocabSize: 'dim', embedding: 'f32', weights: 'weights', reverse: 'bool', lengths: 'lengths' } },
    { name: 'matMul', valid: mm, fields: { m: 'dim', k: 'dim', n: 'dim', batchA: 'optdim', batchB: 'optdim', a: 'f32', b: 'f32', transposeA: 'bool', transposeB: 'bool' } },
    { name: 'adamUpdate', valid: adam, fields: { size: 'dim', weights: 'f32', gradients: 'f32', m: 'f32', v: 'f32', alpha: 'num', beta1: 'num', beta2: 'num', epsilon: 'num', vScale: 'optnum', gradScale: 'optnum' } },
  ];
}

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
    case 'optdim': {
      const n = v as number;
      const bad: unknown[] = [NaN, Infinity, -Infinity, -1, 0, 2.5, String(n), 2 ** 31, 2 ** 40, 2 ** 31 - 1, 10n, null, true];
      if (single) bad.push(n + 1);
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

  it('an input detached while an async job runs rejects the job instead of returning garbage', async () => {
    const p = lstmProblem(rngFor(78), { batch: 64, steps: 16, inputSize: 64, hiddenSize: 64 });
    const job = native.lstmForwardAsync(p);
    // Transfer (not free): the clone keeps the memory alive, so the running job still reads valid memory.
    const moved = structuredClone(p.x.buffer as ArrayBuffer, { transfer: [p.x.buffer as ArrayBuffer] });
    const err = await job.then(() => null, (e: unknown) => e);
    expect(moved.byteLength).to.be.greaterThan(0);
    expect(err).to.be.instanceOf(DeepSentryError);
    expect((err as DeepSentryError).message).to.match(/detached while the job was running/);
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
