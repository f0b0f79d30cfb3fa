/**
 * The tfjs backend: fused ops against the float64 reference, gradients against finite differences, the
 * native backend against the cpu one, native BatchMatMul against tfjs-backend-cpu, backend selection and
 * bad-input errors.
 */
import { expect } from 'chai';
import * as tf from '@tensorflow/tfjs-core';
import { fusedBiLstm, fusedLstm, probeNative, softmaxCrossEntropy, useBackend, vectorDistance } from '../../lib/backend';
import { lstmForwardRef, mulberry32 } from '../../lib/backend/reference';
import { DeepSentryError } from '../../lib/errors';
import { checkGrads } from '../support/grad-check';
import { skipBecause } from '../support/skip';

const hasNative = probeNative().binding !== null;
const nativeSkip = `native addon not built (${probeNative().error})`;

function rand(shape: number[], seed: number, scale = 0.5): tf.Tensor {
  const r = mulberry32(seed);
  const n = shape.reduce((a, b) => a * b, 1);
  return tf.tensor(Float32Array.from({ length: n }, () => (r() * 2 - 1) * scale), shape);
}

function lstmWeights(I: number, H: number, seed: number) {
  return {
    kernel: tf.variable(rand([I, 4 * H], seed)) as unknown as tf.Tensor2D,
    recurrentKernel: tf.variable(rand([H, 4 * H], seed + 1)) as unknown as tf.Tensor2D,
    bias: tf.variable(rand([4 * H], seed + 2, 0.1)) as unknown as tf.Tensor1D,
  };
}

/** Central finite differences on a few entries of each variable; returns the worst relative error. */

function expectError(fn: () => unknown, code: string, text?: RegExp): void {
  try {
    fn();
  } catch (e) {
    expect(e).to.be.instanceOf(DeepSentryError);
    expect((e as DeepSentryError).code).to.equal(code);
    if (text) expect((e as Error).message).to.match(text);
    return;
  }
  expect.fail(`expected a ${code} error`);
}

describe('backend: fused ops on the cpu backend', () => {
  before(() => useBackend('cpu'));

  it('FusedLstm matches the float64 reference (lengths, reverse, initial state)', () => {
    const B = 3, T = 4, I = 5, H = 3;
    const x = rand([B, T, I], 1) as tf.Tensor3D;
    const w = lstmWeights(I, H, 10);
    const h0 = rand([B, H], 20) as tf.Tensor2D;
    const c0 = rand([B, H], 21) as tf.Tensor2D;
    for (const reverse of [false, true]) {
      const r = fusedLstm(x, w, { h0, c0, lengths: [4, 2, 0], reverse });
      const ref = lstmForwardRef({
        batch: B, steps: T, inputSize: I, hiddenSize: H, x: x.dataSync(),
        weights: { kernel: w.kernel.dataSync(), recurrentKernel: w.recurrentKernel.dataSync(), bias: w.bias.dataSync() },
        h0: h0.dataSync(), c0: c0.dataSync(), lengths: [4, 2, 0], reverse,
      });
      const y = r.y.dataSync();
      ref.y.forEach((v, i) => expect(y[i]).to.be.closeTo(v, 1e-6));
      expect(Array.from(r.h.dataSync().slice(2 * H))).to.deep.equal(Array.from(h0.dataSync().slice(2 * H))); // length 0 keeps h0
    }
  });

  it('gradients of FusedLstm / FusedBiLstm (all inputs) match finite differences', () => {
    const B = 2, T = 3, I = 4, H = 3;
    const x = tf.variable(rand([B, T, I], 2)) as unknown as tf.Tensor3D;
    const h0 = tf.variable(rand([B, H], 3)) as unknown as tf.Tensor2D;
    const c0 = tf.variable(rand([B, H], 4)) as unknown as tf.Tensor2D;
    const w = lstmWeights(I, H, 30);
    const fw = lstmWeights(H, H, 40);
    const bw = lstmWeights(H, H, 50);
    const probe = rand([B, T, 2 * H], 60);
    const f = () =>
      tf.tidy(() => {
        const a = fusedLstm(x, w, { h0, c0, lengths: [3, 2], reverse: true });
        const b = fusedBiLstm(a.y, fw, bw, { lengths: [3, 2] });
        return tf.sum(tf.add(tf.sum(tf.mul(b.y, probe)), tf.add(tf.sum(tf.mul(b.hBw, 2)), tf.sum(tf.mul(a.c, b.cFw))))) as tf.Scalar;
      });
    const vars = [x, h0, c0, w.kernel, w.recurrentKernel, w.bias, fw.kernel, fw.recurrentKernel, bw.kernel, bw.bias] as unknown as tf.Variable[];
    expect(checkGrads(f, vars)).to.be.below(2e-2);
  });

  it('gradients of softmax cross-entropy, vector distances and the standard ops match finite differences', () => {
    const logits = tf.variable(rand([4, 5], 70, 2));
    const a = tf.variable(rand([4, 6], 71));
    const b = tf.variable(rand([4, 6], 72));
    const emb = tf.variable(rand([7, 3], 73));
    const m = tf.variable(rand([3, 6], 74));
    const labels = tf.tensor1d([0, 4, 2, 2], 'int32');
    const idx = tf.tensor2d([[1, 6], [1, 0]], [2, 2], 'int32');
    for (const metric of ['squared', 'euclidean', 'cosine'] as const) {
      const f = () =>
        tf.tidy(() => {
          const ce = softmaxCrossEntropy(logits as tf.Tensor2D, labels, tf.tensor1d([1, 0.5, 0, 2]));
          const e = tf.reshape(tf.gather(emb, idx), [4, 3]); // gather gradient (repeated index 1)
          const proj = tf.tanh(tf.matMul(e, m)); // BatchMatMul + Tanh
          const d = vectorDistance(tf.add(a, proj) as tf.Tensor2D, tf.sigmoid(b) as tf.Tensor2D, metric);
          const cat = tf.concat([d, ce]);
          return tf.add(tf.mean(tf.square(cat)), tf.sum(tf.div(d, tf.add(ce, 3)))) as tf.Scalar;
        });
      expect(checkGrads(f, [logits, a, b, emb, m])).to.be.below(2e-2);
    }
  });

  it('bad input is a DeepSentryError naming the argument', () => {
    const x = tf.zeros([2, 3, 4]) as tf.Tensor3D;
    const w = lstmWeights(4, 2, 80);
    expectError(() => fusedLstm(x, { ...w, kernel: tf.zeros([5, 8]) as tf.Tensor2D }), 'DS_SHAPE_MISMATCH', /kernel/);
    expectError(() => fusedLstm(x, w, { lengths: [1, 9] }), 'DS_OUT_OF_RANGE', /lengths\[1\] = 9/);
    expectError(() => fusedLstm(x, w, { h0: tf.zeros([2, 3]) as tf.Tensor2D }), 'DS_SHAPE_MISMATCH', /h0/);
    expectError(() => fusedLstm(tf.zeros([2, 3]) as unknown as tf.Tensor3D, w), 'DS_INVALID_ARGUMENT', /x/);
    expectError(() => softmaxCrossEntropy(tf.zeros([2, 3]) as tf.Tensor2D, tf.tensor1d([0, 3], 'int32')), 'DS_OUT_OF_RANGE', /labels\[1\] = 3/);
    expectError(() => vectorDistance(tf.zeros([2, 3]) as tf.Tensor2D, tf.zeros([2, 3]) as tf.Tensor2D, 'manhattan' as never), 'DS_INVALID_ARGUMENT', /metric/);
  });
});

describe('backend: selection', () => {
  it('cpu is always available and says so; unknown choices are rejected', () => {
    const s = useBackend('cpu');
    expect(s.backend).to.equal('cpu');
    expect(tf.getBackend()).to.equal('cpu');
    expect(s.reason).to.match(/TypeScript/);
    expectError(() => useBackend('gpu' as never), 'DS_INVALID_ARGUMENT', /backend/);
  });

  it('auto picks native when the addon loads, else cpu, and says why', () => {
    const s = useBackend('auto');
    expect(s.backend).to.equal(hasNative ? 'native' : 'cpu');
    expect(s.reason.length).to.be.greaterThan(10);
    useBackend('cpu');
  });

  it('cuda fails with a clear reason (no CUDA kernels in the tfjs backend / no device)', () => {
    expectError(() => useBackend('cuda'), hasNative ? 'DS_UNSUPPORTED' : 'DS_NATIVE_UNAVAILABLE', /cuda|addon/i);
    useBackend('cpu');
  });
});

describe('backend: native (deepsentry) against cpu', function () {
  before(function () {
    if (!hasNative) skipBecause(this, nativeSkip);
  });
  after(() => useBackend('cpu'));

  it('runs every tfjs-backend-cpu kernel, and matMul natively (cpu fallback for uncovered broadcasts)', () => {
    useBackend('native');
    expect(tf.getBackend()).to.equal('deepsentry');
    const cases: Array<[number[], number[], boolean, boolean]> = [
      [[5, 7], [7, 3], false, false],
      [[7, 5], [7, 3], true, false],
      [[5, 7], [3, 7], false, true],
      [[2, 5, 7], [7, 3], false, false],
      [[2, 5, 7], [2, 3, 7], false, true],
      [[1, 5, 7], [4, 7, 3], false, false],
      [[3, 2, 5, 7], [2, 7, 3], false, false], // broadcast the addon does not cover: cpu fallback
    ];
    for (const [sa, sb, ta, tb] of cases) {
      useBackend('native');
      const a = rand(sa, 90);
      const b = rand(sb, 91);
      const n = tf.matMul(a, b, ta, tb);
      const nv = n.dataSync().slice();
      useBackend('cpu');
      const c = tf.matMul(a, b, ta, tb);
      expect(n.shape).to.deep.equal(c.shape);
      c.dataSync().forEach((v, i) => expect(nv[i]).to.be.closeTo(v, 1e-5));
    }
  });

  it('fused ops: forward and gradients agree with the cpu backend within float tolerance', () => {
    const B = 3, T = 5, I = 4, H = 6;
    const x = tf.variable(rand([B, T, I], 100)) as unknown as tf.Tensor3D;
    const w = lstmWeights(I, H, 110);
    const fw = lstmWeights(H, H, 120);
    const bw = lstmWeights(H, H, 130);
    const probe = rand([B, T, 2 * H], 140);
    const vars = [x, w.kernel, w.recurrentKernel, w.bias, fw.kernel, fw.recurrentKernel, fw.bias, bw.kernel, bw.recurrentKernel, bw.bias] as unknown as tf.Variable[];
    const run = (backend: 'native' | 'cpu') => {
      useBackend(backend);
      const { value, grads } = tf.variableGrads(() => {
        const a = fusedLstm(x, w, { lengths: [5, 3, 1] });
        const b = fusedBiLstm(a.y, fw, bw, { lengths: [5, 3, 1] });
        return tf.add(tf.sum(tf.mul(b.y, probe)), tf.sum(tf.mul(b.hFw, b.cBw))) as tf.Scalar;
      }, vars);
      return { value: value.dataSync()[0], grads: vars.map((v) => grads[v.name].dataSync().slice()) };
    };
    const n = run('native');
    const c = run('cpu');
    expect(n.value).to.be.closeTo(c.value, 1e-4 * Math.max(1, Math.abs(c.value)));
    n.grads.forEach((g, i) => g.forEach((v, j) => expect(v).to.be.closeTo(c.grads[i][j], 2e-4)));
  });

  it('fusedBiLstm with inputGradients: false: the same weight gradients, bit for bit; the gradient of x is an error', () => {
    const B = 4, T = 5, I = 7, H = 6;
    const x = rand([B, T, I], 200) as tf.Tensor3D;
    const fw = lstmWeights(I, H, 210);
    const bw = lstmWeights(I, H, 220);
    const probe = rand([B, T, 2 * H], 230);
    const vars = [fw.kernel, fw.recurrentKernel, fw.bias, bw.kernel, bw.recurrentKernel, bw.bias] as unknown as tf.Variable[];
    for (const backend of ['native', 'cpu'] as const) {
      useBackend(backend);
      const grads = (inputGradients?: boolean) => {
        const { grads: g } = tf.variableGrads(() => {
          const r = fusedBiLstm(x, fw, bw, { lengths: [5, 2, 4, 0], inputGradients });
          return tf.add(tf.sum(tf.mul(r.y, probe)), tf.sum(tf.mul(r.hFw, r.cBw))) as tf.Scalar;
        }, vars);
        return vars.map((v) => g[v.name].dataSync() as Float32Array);
      };
      const all = grads();
      const weightsOnly = grads(false);
      all.forEach((g, i) => expect(Buffer.from(weightsOnly[i].buffer).equals(Buffer.from(g.buffer)), `${backend} ${vars[i].name}`).to.equal(true));
      const f = (xs: tf.Tensor) => tf.sum(fusedBiLstm(xs as tf.Tensor3D, fw, bw, { inputGradients: false }).y);
      expect(() => tf.grad(f)(x), backend).to.throw(DeepSentryError, /gradient of x was asked for.*inputGradients: false/);
      expect(tf.grad((xs: tf.Tensor) => tf.sum(fusedBiLstm(xs as tf.Tensor3D, fw, bw).y))(x).shape, backend).to.deep.equal([B, T, I]);
    }
    useBackend('cpu');
  });
});
