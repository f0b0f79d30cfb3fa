/**
 * addon.BiLstmDense (native/src/binding_predict.cpp): the detector's forward in one call gives exactly the numbers
 * of the separate calls it replaces — bilstmForward's final states, matMul, the bias added row by row and the
 * per-window MSE of a JavaScript loop — at both precision tiers and every SIMD level, for one window, one step,
 * odd sizes and padded batches; writes into given arrays; owns a copy of its weights; and refuses bad arguments
 * with a DeepSentryError naming them.
 */
import { expect } from 'chai';
import type { BiLstmDenseOptions, NativeBinding, Precision } from '../../lib/backend/binding';
import { DeepSentryError } from '../../lib/errors';
import { initW1Params, makeW1Batch, L1_REFERENCE, W1_REFERENCE } from '../../bench/workloads';
import { mixedLengths, nativeOrSkip, randF32, randWeights, rngFor, type Rng } from '../support/native-helpers';

interface Problem {
  opts: BiLstmDenseOptions;
  batch: number;
  steps: number;
  x: Float32Array;
  target: Float32Array;
  lengths?: Int32Array;
}

function problem(rng: Rng, B: number, T: number, I: number, H: number, N: number, lengths: boolean): Problem {
  return {
    opts: {
      inputSize: I,
      hiddenSize: H,
      outputSize: N,
      forward: randWeights(rng, I, H),
      backward: randWeights(rng, I, H),
      dense: { kernel: randF32(rng, 2 * H * N, 0.5), bias: randF32(rng, N, 0.5) },
    },
    batch: B,
    steps: T,
    x: randF32(rng, B * T * I),
    target: randF32(rng, B * N),
    lengths: lengths ? mixedLengths(rng, B, T) : undefined,
  };
}

/** The separate calls BiLstmDense replaces (bench/native.ts before it): bilstmForward, matMul, bias, MSE loop. */
function separateCalls(nb: NativeBinding, p: Problem): { pred: Float32Array; scores: Float32Array } {
  const { inputSize: I, hiddenSize: H, outputSize: N } = p.opts;
  const B = p.batch;
  const r = nb.bilstmForward({ batch: B, steps: p.steps, inputSize: I, hiddenSize: H, x: p.x, forward: p.opts.forward, backward: p.opts.backward, lengths: p.lengths });
  const summary = new Float32Array(B * 2 * H);
  for (let b = 0; b < B; b++) {
    summary.set(r.hFw.subarray(b * H, (b + 1) * H), b * 2 * H);
    summary.set(r.hBw.subarray(b * H, (b + 1) * H), b * 2 * H + H);
  }
  const pred = nb.matMul({ a: summary, b: p.opts.dense.kernel, m: B, k: 2 * H, n: N });
  for (let i = 0; i < pred.length; i++) pred[i] += p.opts.dense.bias[i % N];
  const scores = new Float32Array(B);
  for (let b = 0; b < B; b++) {
    let sum = 0;
    for (let j = 0; j < N; j++) {
      const d = pred[b * N + j] - p.target[b * N + j];
      sum += d * d;
    }
    scores[b] = sum / N;
  }
  return { pred, scores };
}

function at<T>(nb: NativeBinding, precision: Precision, f: () => T): T {
  nb.setPrecision(precision);
  try {
    return f();
  } finally {
    nb.setPrecision('fp32');
  }
}

function expectCode(f: () => unknown, code: string, message: RegExp): void {
  try {
    f();
  } catch (e) {
    expect(e, String(e)).to.be.instanceOf(DeepSentryError);
    expect((e as DeepSentryError).code, String(e)).to.equal(code);
    expect((e as Error).message).to.match(message);
    return;
  }
  expect.fail(`expected a ${code} error matching ${message}`);
}

describe('native BiLstmDense (the detector forward in one call)', function () {
  this.timeout(120_000);
  let nb: NativeBinding;
  before(function () {
    nb = nativeOrSkip(this);
  });
  afterEach(() => {
    nb.setPrecision('fp32');
    nb.setSimdLevel(nb.capabilities().simdSupported.at(-1) as never);
  });

  // [B, T, I, H, N, lengths]
  const SHAPES: Array<[number, number, number, number, number, boolean]> = [
    [1, 1, 1, 1, 1, false],
    [1, 10, 128, 128, 128, false], // L1
    [1, 7, 5, 3, 2, true],
    [3, 1, 9, 17, 5, false],
    [5, 4, 7, 5, 3, true], // lengths 0 and T included
    [17, 6, 33, 19, 11, true], // partial tiles everywhere
    [40, 3, 16, 32, 70, false],
    [14, 2, 3, 150, 9, false], // the Dense product over two K blocks of the bf16 kernel (2H > 256), 14 rows
  ];

  it('is bit-identical to bilstmForward + matMul + bias + the MSE loop, both tiers, every SIMD level', () => {
    const rng = rngFor(41);
    const levels = nb.capabilities().simdSupported;
    for (const [B, T, I, H, N, withLengths] of SHAPES) {
      const p = problem(rng, B, T, I, H, N, withLengths);
      const model = new nb.BiLstmDense(p.opts);
      for (const level of levels) {
        nb.setSimdLevel(level);
        for (const precision of ['fp32', 'bf16'] as Precision[]) {
          const what = `${level} ${precision} B=${B} T=${T} I=${I} H=${H} N=${N}${withLengths ? ' padded' : ''}`;
          const want = at(nb, precision, () => separateCalls(nb, p));
          const got = at(nb, precision, () => model.forward({ batch: B, steps: T, x: p.x, target: p.target, lengths: p.lengths }));
          expect(got.pred, `${what} pred`).to.deep.equal(want.pred);
          expect(got.scores, `${what} scores`).to.deep.equal(want.scores);
          // twice: the bf16 copies made by the first call give the same
          const again = at(nb, precision, () => model.forward({ batch: B, steps: T, x: p.x, lengths: p.lengths }));
          expect(again.pred, `${what} second call`).to.deep.equal(want.pred);
          expect(again.scores, 'no target: no scores').to.equal(undefined);
        }
      }
    }
  });

  it('gives the bench W1 and L1 workloads the numbers of the separate calls (one weight set, several batch sizes)', () => {
    for (const s of [W1_REFERENCE, L1_REFERENCE]) {
      const params = initW1Params(s, 5);
      const batch = makeW1Batch(s, 6);
      const p: Problem = {
        opts: { inputSize: s.input, hiddenSize: s.hidden, outputSize: s.out, ...params },
        batch: s.batch,
        steps: s.steps,
        x: batch.x,
        target: batch.target,
      };
      const model = new nb.BiLstmDense(p.opts);
      for (const precision of ['fp32', 'bf16'] as Precision[]) {
        const want = at(nb, precision, () => separateCalls(nb, p));
        const got = at(nb, precision, () => model.forward({ batch: s.batch, steps: s.steps, x: p.x, target: p.target }));
        expect(got.pred, `${precision} B=${s.batch}`).to.deep.equal(want.pred);
        expect(got.scores, `${precision} B=${s.batch}`).to.deep.equal(want.scores);
      }
    }
  });

  it('writes into given pred and scores arrays and returns them; async resolves to the same numbers', async () => {
    const rng = rngFor(7);
    const p = problem(rng, 6, 3, 4, 5, 3, true);
    const model = new nb.BiLstmDense(p.opts);
    const args = { batch: p.batch, steps: p.steps, x: p.x, target: p.target, lengths: p.lengths };
    const want = model.forward(args);
    const pred = new Float32Array(p.batch * 3).fill(NaN);
    const scores = new Float32Array(p.batch).fill(NaN);
    const got = model.forward({ ...args, pred, scores });
    expect(got.pred).to.equal(pred);
    expect(got.scores).to.equal(scores);
    expect(pred).to.deep.equal(want.pred);
    expect(scores).to.deep.equal(want.scores);
    for (const precision of ['fp32', 'bf16'] as Precision[]) {
      const sync = at(nb, precision, () => model.forward(args));
      const pending = at(nb, precision, () => model.forwardAsync(args)); // the tier of the call, not of its run
      expect((await pending).pred, precision).to.deep.equal(sync.pred);
      const into = new Float32Array(p.batch * 3);
      const viaAsync = await at(nb, precision, () => model.forwardAsync({ ...args, pred: into }));
      expect(viaAsync.pred).to.equal(into);
      expect(into, `${precision} async into pred`).to.deep.equal(sync.pred);
    }
  });

  it('owns a copy of its weights: changing the arrays afterwards changes nothing', () => {
    const rng = rngFor(9);
    const p = problem(rng, 4, 3, 5, 4, 2, false);
    const model = new nb.BiLstmDense(p.opts);
    expect([model.inputSize, model.hiddenSize, model.outputSize]).to.deep.equal([5, 4, 2]);
    const args = { batch: p.batch, steps: p.steps, x: p.x, target: p.target };
    const before = model.forward(args);
    for (const a of [p.opts.forward.kernel, p.opts.backward.recurrentKernel, p.opts.dense.kernel, p.opts.dense.bias]) a.fill(3);
    expect(model.forward(args)).to.deep.equal(before);
    expect(new nb.BiLstmDense(p.opts).forward(args).pred).not.to.deep.equal(before.pred);
  });

  it('refuses bad constructor arguments with a DeepSentryError naming them', () => {
    const rng = rngFor(3);
    const { opts } = problem(rng, 1, 1, 3, 2, 4, false);
    const make = (o: unknown) => () => new nb.BiLstmDense(o as BiLstmDenseOptions);
    expectCode(make(undefined), 'DS_INVALID_ARGUMENT', /BiLstmDense: expected .*object/);
    expectCode(make({ ...opts, hiddenSize: 0 }), 'DS_OUT_OF_RANGE', /hiddenSize .*integer in \[1/);
    expectCode(make({ ...opts, outputSize: 2.5 }), 'DS_INVALID_ARGUMENT', /outputSize/);
    expectCode(make({ ...opts, inputSize: 4 }), 'DS_SHAPE_MISMATCH', /forward\.kernel .*length 32 \(inputSize\*4\*hiddenSize\) but received Float32Array\(24\)/);
    expectCode(make({ ...opts, backward: undefined }), 'DS_INVALID_ARGUMENT', /backward .*object/);
    expectCode(make({ ...opts, backward: { ...opts.backward, bias: new Float64Array(8) } }), 'DS_INVALID_ARGUMENT', /backward\.bias .*Float64Array/);
    expectCode(make({ ...opts, dense: { kernel: opts.dense.kernel, bias: new Float32Array(3) } }), 'DS_SHAPE_MISMATCH', /dense\.bias .*length 4 \(outputSize\)/);
    expectCode(make({ ...opts, dense: { kernel: new Float32Array(15), bias: opts.dense.bias } }), 'DS_SHAPE_MISMATCH', /dense\.kernel .*2\*hiddenSize\*outputSize/);
    expectCode(make({ ...opts, hiddenSize: 2 ** 30, inputSize: 2 ** 30 }), 'DS_OUT_OF_RANGE', /inputSize\*4\*hiddenSize/);
    expect(() => (nb.BiLstmDense as unknown as (o: unknown) => unknown)(opts), 'without new').to.throw(TypeError);
  });

  it('refuses bad forward arguments with a DeepSentryError naming them (sync throws, async rejects)', async () => {
    const rng = rngFor(4);
    const p = problem(rng, 3, 2, 3, 2, 4, false);
    const model = new nb.BiLstmDense(p.opts);
    const ok = { batch: 3, steps: 2, x: p.x, target: p.target };
    const call = (a: unknown) => () => model.forward(a as never);
    expectCode(call(undefined), 'DS_INVALID_ARGUMENT', /BiLstmDense\.forward: expected .*object/);
    expectCode(call({ ...ok, batch: -1 }), 'DS_OUT_OF_RANGE', /batch/);
    expectCode(call({ ...ok, steps: '2' }), 'DS_INVALID_ARGUMENT', /steps .*string/);
    expectCode(call({ ...ok, x: new Float32Array(17) }), 'DS_SHAPE_MISMATCH', /x to be a Float32Array of length 18 \(batch\*steps\*inputSize\)/);
    expectCode(call({ ...ok, x: undefined }), 'DS_INVALID_ARGUMENT', /x .*required/);
    expectCode(call({ ...ok, target: new Float32Array(11) }), 'DS_SHAPE_MISMATCH', /target .*length 12 \(batch\*outputSize\)/);
    expectCode(call({ ...ok, lengths: new Int32Array([1, 3, 0]) }), 'DS_OUT_OF_RANGE', /lengths\[1\] = 3 is outside \[0, steps=2\]/);
    expectCode(call({ ...ok, lengths: new Float32Array(3) }), 'DS_INVALID_ARGUMENT', /lengths .*Int32Array/);
    expectCode(call({ ...ok, pred: new Float32Array(5) }), 'DS_SHAPE_MISMATCH', /pred .*length 12/);
    expectCode(call({ ...ok, target: undefined, scores: new Float32Array(3) }), 'DS_INVALID_ARGUMENT', /scores .*absent without target/);
    expectCode(call({ ...ok, batch: 2 ** 20, steps: 2 ** 12 }), 'DS_OUT_OF_RANGE', /x \(batch\*steps\*inputSize\)|MiB/);
    // outputs sharing memory with an input or with each other
    const buf = new Float32Array(64);
    const x = buf.subarray(0, 18);
    x.set(p.x);
    expectCode(call({ ...ok, x, pred: buf.subarray(10, 22) }), 'DS_INVALID_ARGUMENT', /pred and x share memory/);
    expectCode(call({ ...ok, pred: p.target }), 'DS_INVALID_ARGUMENT', /pred and target share memory/);
    expectCode(call({ ...ok, pred: buf.subarray(30, 42), scores: buf.subarray(40, 43) }), 'DS_INVALID_ARGUMENT', /scores and pred share memory/);
    // a detached input
    const gone = new Float32Array(18);
    structuredClone(gone.buffer, { transfer: [gone.buffer] });
    expectCode(call({ ...ok, x: gone }), 'DS_INVALID_ARGUMENT', /detached/);
    // async: a rejected promise, never a synchronous throw
    const rejected = await model.forwardAsync({ ...ok, x: new Float32Array(1) }).then(
      () => null,
      (e: unknown) => e,
    );
    expect(rejected).to.be.instanceOf(DeepSentryError);
    expect((rejected as DeepSentryError).code).to.equal('DS_SHAPE_MISMATCH');
    // methods called on something that is not a BiLstmDense: a TypeError, never a crash
    const proto = nb.BiLstmDense.prototype as unknown as { forward: (a: unknown) => unknown; forwardAsync: (a: unknown) => unknown };
    for (const self of [{}, Object.create(nb.BiLstmDense.prototype), 1, undefined]) {
      expect(() => proto.forward.call(self, ok)).to.throw(TypeError);
      expect(() => proto.forwardAsync.call(self, ok)).to.throw(TypeError);
    }
    // and the object still works
    expect(model.forward(ok).pred).to.deep.equal(separateCalls(nb, p).pred);
  });
});
