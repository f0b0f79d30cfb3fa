/**
 * The addon's Adam (native/src/adam.h, `adamUpdate`) against a float64 reference of the same formula, in both
 * conventions it serves (tfjs' bias correction; Kingma & Ba's efficient form with gradient scaling), on sizes
 * around the vector widths and across the thread pool's chunking; 1 and 2 threads bit-identical; lib's Adam
 * on the native backend bit-identical to its TypeScript loop on `cpu`; and the in-place contract's refusals.
 * `adamUpdateMany` (many arrays in one call) bit-identical to adamUpdate of each, and its own refusals.
 */
import { expect } from 'chai';
import * as tf from '@tensorflow/tfjs-core';
import { DeepSentryError } from '../../lib/errors';
import type { NativeBinding } from '../../lib/backend/binding';
import { useBackend } from '../../lib/backend';
import { Adam } from '../../lib/models/adam';
import { maxRelErr, nativeOrSkip, randF32, rngFor } from '../support/native-helpers';

interface Hyper {
  alpha: number;
  beta1: number;
  beta2: number;
  epsilon: number;
  vScale: number;
  gradScale: number;
}

/** The formula of AdamUpdateArgs in float64. */
function reference(w: Float64Array, g: ArrayLike<number>, m: Float64Array, v: Float64Array, h: Hyper): void {
  for (let i = 0; i < w.length; i++) {
    const gi = g[i] * h.gradScale;
    m[i] = h.beta1 * m[i] + (1 - h.beta1) * gi;
    v[i] = h.beta2 * v[i] + (1 - h.beta2) * gi * gi;
    w[i] -= (h.alpha * m[i]) / (Math.sqrt(v[i]) * h.vScale + h.epsilon);
  }
}

/** Hyper-parameters of step t (1-based) in one of the two conventions. */
function stepHyper(t: number, tfjsConvention: boolean): Hyper {
  const lr = 0.01, beta1 = 0.9, beta2 = 0.999, epsilon = 1e-7;
  const c1 = 1 - beta1 ** t, c2 = 1 - beta2 ** t;
  return tfjsConvention
    ? { alpha: lr / c1, beta1, beta2, epsilon, vScale: 1 / Math.sqrt(c2), gradScale: 1 }
    : { alpha: (lr * Math.sqrt(c2)) / c1, beta1, beta2, epsilon, vScale: 1, gradScale: 0.37 };
}

async function runSteps(native: NativeBinding, size: number, seed: number, steps: number, tfjsConvention: boolean, async = false) {
  const rng = rngFor(seed);
  const w = randF32(rng, size);
  const m = new Float32Array(size);
  const v = new Float32Array(size);
  const wr = Float64Array.from(w), mr = new Float64Array(size), vr = new Float64Array(size);
  for (let t = 1; t <= steps; t++) {
    // some exact zeros: v stays 0 there and ε alone keeps the division defined
    const g = randF32(rng, size).map((x, i) => (i % 11 === 5 ? 0 : x));
    const h = stepHyper(t, tfjsConvention);
    const args = { size, weights: w, gradients: g, m, v, ...h };
    const out = async ? await native.adamUpdateAsync(args) : native.adamUpdate(args);
    expect(out).to.equal(w);
    reference(wr, g, mr, vr, h);
  }
  return { w, m, v, wr, mr, vr };
}

describe('native Adam (adamUpdate)', function () {
  let native: NativeBinding;
  before(function () {
    native = nativeOrSkip(this);
  });
  after(() => native?.setThreads(2));

  for (const size of [1, 3, 7, 15, 16, 17, 33, 1000, 70_001]) {
    for (const tfjsConvention of [true, false]) {
      it(`matches the float64 reference over 6 steps: size ${size}, ${tfjsConvention ? "tfjs' bias correction" : 'efficient form + gradient scale'}`, async () => {
        const r = await runSteps(native, size, size * 7 + (tfjsConvention ? 1 : 0), 6, tfjsConvention);
        // float32 storage of moments and weights against float64 throughout
        expect(maxRelErr(r.m, r.mr), 'm').to.be.below(1e-5);
        expect(maxRelErr(r.v, r.vr), 'v').to.be.below(1e-5);
        expect(maxRelErr(r.w, r.wr), 'w').to.be.below(1e-5);
        // and the weights did move (a no-op kernel would leave them where they started)
        const start = randF32(rngFor(size * 7 + (tfjsConvention ? 1 : 0)), size);
        let moved = 0;
        for (let i = 0; i < size; i++) moved = Math.max(moved, Math.abs(r.w[i] - start[i]));
        expect(moved).to.be.above(1e-3);
      });
    }
  }

  it('gives bit-identical results on 1 and 2 threads (the pool splits 70,001 elements into chunks)', async () => {
    native.setThreads(1);
    const one = await runSteps(native, 70_001, 5, 3, true);
    native.setThreads(2);
    const two = await runSteps(native, 70_001, 5, 3, true);
    expect(Buffer.from(one.w.buffer).equals(Buffer.from(two.w.buffer))).to.equal(true);
    expect(Buffer.from(one.v.buffer).equals(Buffer.from(two.v.buffer))).to.equal(true);
  });

  it('the async variant updates the same way and resolves to the weights', async () => {
    const a = await runSteps(native, 500, 9, 3, true);
    const b = await runSteps(native, 500, 9, 3, true, true);
    expect(Buffer.from(b.w.buffer).equals(Buffer.from(a.w.buffer))).to.equal(true);
    expect(Buffer.from(b.m.buffer).equals(Buffer.from(a.m.buffer))).to.equal(true);
  });

  it('refuses overlapping arrays, a zero ε and bad hyper-parameters, naming them', () => {
    const n = 8;
    const buf = new Float32Array(4 * n);
    const base = { size: n, weights: buf.subarray(0, n), gradients: buf.subarray(n, 2 * n), m: buf.subarray(2 * n, 3 * n), v: buf.subarray(3 * n), alpha: 0.1, beta1: 0.9, beta2: 0.999, epsilon: 1e-7 };
    expect(() => native.adamUpdate(base)).not.to.throw(); // adjacent views of one buffer are fine
    const cases: [Record<string, unknown>, RegExp][] = [
      [{ m: base.weights }, /weights and m share memory/],
      [{ v: buf.subarray(n - 1, 2 * n - 1) }, /share memory/],
      [{ gradients: buf.subarray(2 * n + 3, 3 * n + 3) }, /gradients and m share memory/],
      [{ epsilon: 0 }, /epsilon/],
      [{ beta1: 1.5 }, /beta1/],
      [{ alpha: NaN }, /alpha/],
      [{ gradScale: -1 }, /gradScale/],
      [{ weights: new Float32Array(n + 1) }, /weights/],
    ];
    for (const [change, re] of cases) {
      let err: unknown = null;
      try {
        native.adamUpdate({ ...base, ...change } as never);
      } catch (e) {
        err = e;
      }
      expect(err, JSON.stringify(Object.keys(change))).to.be.instanceOf(DeepSentryError);
      expect((err as Error).message).to.match(/^adamUpdate: /).and.to.match(re);
    }
  });
});

describe('native Adam over many arrays (adamUpdateMany)', function () {
  let native: NativeBinding;
  before(function () {
    native = nativeOrSkip(this);
  });
  after(() => native?.setThreads(2));

  // sizes of a model: large kernels split into chunks, small biases, one element, a size of many chunks + 1
  const SIZES = [70_001, 512, 1, 33, 65_536, 128];

  function state(seed: number) {
    const rng = rngFor(seed);
    return SIZES.map((size) => ({ size, weights: randF32(rng, size), gradients: randF32(rng, size), m: new Float32Array(size), v: new Float32Array(size) }));
  }

  it('updates every array exactly as adamUpdate of each does, on 1 and 2 threads, sync and async', async () => {
    const one = state(3);
    for (let t = 1; t <= 3; t++) for (const p of one) native.adamUpdate({ ...p, ...stepHyper(t, t !== 2) });
    for (const threads of [1, 2]) {
      native.setThreads(threads);
      for (const async of [false, true]) {
        const many = state(3);
        for (let t = 1; t <= 3; t++) {
          const args = { params: many, ...stepHyper(t, t !== 2) };
          const out = async ? await native.adamUpdateManyAsync(args) : native.adamUpdateMany(args);
          expect(out).to.equal(many);
        }
        many.forEach((p, i) => {
          for (const f of ['weights', 'm', 'v'] as const) {
            expect(Buffer.from(p[f].buffer).equals(Buffer.from(one[i][f].buffer)), `${threads} threads, async ${async}: params[${i}].${f}`).to.equal(true);
          }
        });
      }
    }
  });

  it('refuses a bad list, bad elements and arrays sharing memory across elements, naming them', async () => {
    const h = stepHyper(1, true);
    const [a, b] = state(5).slice(2, 4); // sizes 1 and 33
    const shared = new Float32Array(40); // views that overlap: a's weights, and the arrays of the cases below
    a.weights = shared.subarray(35, 36);
    const cases: [Record<string, unknown>, string, RegExp][] = [
      [{ params: a }, 'DS_INVALID_ARGUMENT', /expected params to be an array of 1 to 65536 elements but received object/],
      [{ params: [] }, 'DS_OUT_OF_RANGE', /expected params to be an array of 1 to 65536 elements but received an array of 0/],
      [{ params: [a, 7] }, 'DS_INVALID_ARGUMENT', /expected params\[1\] to be an object but received number 7/],
      [{ params: [a, { ...b, size: 34 }] }, 'DS_SHAPE_MISMATCH', /params\[1\]\.weights.*length 34/],
      [{ params: [a, { ...b, m: undefined }] }, 'DS_INVALID_ARGUMENT', /params\[1\]\.m.*required/],
      [{ params: [a, { ...b, v: shared.subarray(3, 36) }] }, 'DS_INVALID_ARGUMENT', /params\[0\]\.weights and params\[1\]\.v share memory/],
      [{ params: [a, { ...b, gradients: shared.subarray(0, 33), m: shared.subarray(2, 35) }] }, 'DS_INVALID_ARGUMENT', /params\[1\]\.gradients and params\[1\]\.m share memory/],
      [{ params: [a, b], epsilon: 0 }, 'DS_OUT_OF_RANGE', /epsilon/],
      [{ params: [a, b], beta2: 2 }, 'DS_OUT_OF_RANGE', /beta2/],
    ];
    for (const [change, code, re] of cases) {
      const before = a.weights.slice();
      let err: unknown = null;
      try {
        native.adamUpdateMany({ ...h, ...change } as never);
      } catch (e) {
        err = e;
      }
      expect(err, JSON.stringify(Object.keys(change))).to.be.instanceOf(DeepSentryError);
      expect((err as DeepSentryError).code, String(re)).to.equal(code);
      expect((err as Error).message).to.match(/^adamUpdateMany: /).and.to.match(re);
      expect(Array.from(a.weights), `nothing updated: ${String(re)}`).to.deep.equal(Array.from(before));
      let rejected: unknown = null;
      await native.adamUpdateManyAsync({ ...h, ...change } as never).catch((e: unknown) => (rejected = e));
      expect((rejected as Error).message).to.match(/^adamUpdateManyAsync: /).and.to.match(re);
    }
  });
});

describe('lib Adam: the addon on the native backend, the TypeScript loop on cpu', function () {
  before(function () {
    nativeOrSkip(this);
  });
  after(() => useBackend('cpu'));

  function train(backend: 'native' | 'cpu'): Float32Array[] {
    useBackend(backend);
    const rng = rngFor(77);
    const vars = [tf.variable(tf.tensor(randF32(rng, 300), [300]), true, 'a'), tf.variable(tf.tensor(randF32(rng, 12), [3, 4]), true, 'b')];
    const opt = new Adam(0.01);
    for (let s = 0; s < 5; s++) {
      const grads = { a: tf.tensor(randF32(rng, 300, 4), [300]), b: tf.tensor(randF32(rng, 12, 4), [3, 4]) };
      opt.apply(vars, grads, 5); // the norm exceeds 5: clipping scales every gradient
      Object.values(grads).forEach((t) => t.dispose());
    }
    const out = vars.map((v) => v.dataSync() as Float32Array).map((a) => a.slice());
    vars.forEach((v) => v.dispose());
    return out;
  }

  it('trains a few steps to the same weights, bit for bit (the kernel computes in double as the loop does)', () => {
    const a = train('native');
    const b = train('cpu');
    for (let i = 0; i < a.length; i++) expect(Buffer.from(a[i].buffer).equals(Buffer.from(b[i].buffer)), `variable ${i}`).to.equal(true);
  });
});
