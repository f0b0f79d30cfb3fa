/**
 * The addon's output-layer kernels (native/src/train_ops.h): denseSoftmaxXent (Dense + sparse softmax
 * cross-entropy, forward and gradients in one call) and scatterAddRows (the embedding gradient), against a
 * float64 reference on random shapes — one row, one input, one class, sizes that are not multiples of the SIMD
 * width, row counts around the kernel's 48-row blocks — and against central finite differences of the addon's
 * own loss; every SIMD level and 1 or 2 threads bit-identical; the async forms equal the sync ones; the
 * boundary's refusals. The tfjs op over them (denseSoftmaxCrossEntropy, native and cpu backends) is checked
 * against the composition it replaces (matMul + add + softmaxCrossEntropy).
 */
import { expect } from 'chai';
import * as tf from '@tensorflow/tfjs-core';
import { DeepSentryError } from '../../lib/errors';
import type { DenseSoftmaxXentArgs, NativeBinding } from '../../lib/backend/binding';
import { denseSoftmaxCrossEntropy, softmaxCrossEntropy, useBackend } from '../../lib/backend';
import { checkGrads } from '../support/grad-check';
import { expectCentralDifferences, maxRelErr, nativeOrSkip, randF32, randInt, rngFor, type Rng } from '../support/native-helpers';

interface Problem extends DenseSoftmaxXentArgs {
  weights: Float32Array;
  dLoss: Float32Array;
}

/** Logits of a few units (so that the softmax is neither flat nor one-hot); some rows masked (weight 0). */
function problem(rng: Rng, rows: number, inSize: number, classes: number): Problem {
  const weights = randF32(rng, rows).map((w, r) => (rows > 2 && r % 5 === 3 ? 0 : 0.2 + Math.abs(w)));
  return {
    rows,
    inSize,
    classes,
    x: randF32(rng, rows * inSize),
    kernel: randF32(rng, inSize * classes, 3 / Math.sqrt(inSize)),
    bias: randF32(rng, classes, 0.5),
    labels: Int32Array.from({ length: rows }, () => randInt(rng, 0, classes - 1)),
    weights,
    dLoss: randF32(rng, rows).map((d) => 0.5 + d),
  };
}

/** The whole computation in float64 from the same float32 inputs. */
function reference(p: Problem) {
  const { rows: N, inSize: K, classes: C } = p;
  const loss = new Float64Array(N), dx = new Float64Array(N * K), dKernel = new Float64Array(K * C), dBias = new Float64Array(C);
  for (let n = 0; n < N; n++) {
    const l = new Float64Array(C);
    for (let c = 0; c < C; c++) {
      let s = p.bias[c];
      for (let k = 0; k < K; k++) s += p.x[n * K + k] * p.kernel[k * C + c];
      l[c] = s;
    }
    let m = -Infinity;
    for (const v of l) m = Math.max(m, v);
    let sum = 0;
    for (const v of l) sum += Math.exp(v - m);
    const w = p.weights[n];
    if (w === 0) continue;
    loss[n] = w * (m + Math.log(sum) - l[p.labels[n]]);
    const scale = w * p.dLoss[n];
    for (let c = 0; c < C; c++) {
      const d = scale * (Math.exp(l[c] - m) / sum - (c === p.labels[n] ? 1 : 0));
      dBias[c] += d;
      for (let k = 0; k < K; k++) {
        dx[n * K + k] += d * p.kernel[k * C + c];
        dKernel[k * C + c] += p.x[n * K + k] * d;
      }
    }
  }
  return { loss, dx, dKernel, dBias };
}

const SHAPES: Array<[number, number, number]> = [
  [1, 1, 1],
  [1, 7, 5],
  [3, 1, 17],
  [5, 9, 33],
  [47, 13, 16],
  [48, 16, 64],
  [97, 21, 129],
  [130, 33, 300],
];

describe('native denseSoftmaxXent and scatterAddRows (native/src/train_ops.h)', function () {
  let native: NativeBinding;
  before(function () {
    native = nativeOrSkip(this);
  });
  after(() => {
    const caps = native?.capabilities();
    if (caps) native.setThreads(2);
  });

  for (const [rows, inSize, classes] of SHAPES) {
    it(`matches the float64 reference: rows ${rows}, inSize ${inSize}, classes ${classes}`, () => {
      const p = problem(rngFor(rows * 1000 + inSize * 10 + classes), rows, inSize, classes);
      const ref = reference(p);
      const f = native.denseSoftmaxXent({ ...p, dLoss: undefined });
      expect(f.dx).to.equal(undefined);
      expect(maxRelErr(f.loss, ref.loss), 'loss (forward only)').to.be.below(1e-5);
      const g = native.denseSoftmaxXent({ ...p, gradient: true });
      expect(Array.from(g.loss)).to.deep.equal(Array.from(f.loss));
      expect(maxRelErr(g.dx as Float32Array, ref.dx), 'dx').to.be.below(1e-5);
      expect(maxRelErr(g.dKernel as Float32Array, ref.dKernel), 'dKernel').to.be.below(1e-5);
      expect(maxRelErr(g.dBias as Float32Array, ref.dBias), 'dBias').to.be.below(1e-5);
      // masked rows: no loss and no gradient through them
      for (let r = 0; r < rows; r++) {
        if (p.weights[r] !== 0) continue;
        expect(g.loss[r]).to.equal(0);
        for (let k = 0; k < inSize; k++) expect(g.dx![r * inSize + k]).to.equal(0);
      }
    });
  }

  it('gradients agree with central differences of its own loss', () => {
    const p = problem(rngFor(5), 7, 5, 11);
    p.weights.fill(1);
    const g = native.denseSoftmaxXent({ ...p, gradient: true });
    const total = (q: Problem) => native.denseSoftmaxXent({ ...q, dLoss: undefined }).loss.reduce((a, v, r) => a + v * p.dLoss[r], 0);
    expectCentralDifferences(p, total, [['x', g.dx], ['kernel', g.dKernel], ['bias', g.dBias]]);
  });

  it('every SIMD level and 1 or 2 threads give bit-identical results; async equals sync', async () => {
    const caps = native.capabilities();
    const p = problem(rngFor(9), 150, 19, 70);
    const runs: Float32Array[][] = [];
    try {
      for (const level of caps.simdSupported) {
        native.setSimdLevel(level);
        for (const threads of [1, 2]) {
          native.setThreads(threads);
          const g = native.denseSoftmaxXent({ ...p, gradient: true });
          const arrays = [g.loss, g.dx, g.dKernel, g.dBias] as Float32Array[];
          if (level === caps.simd) runs.push(arrays);
          else {
            // other ISAs round differently (FMA, vector widths): close, each deterministic
            const again = native.denseSoftmaxXent({ ...p, gradient: true });
            expect(Buffer.from(again.dKernel!.buffer).equals(Buffer.from(g.dKernel!.buffer)), `${level} twice`).to.equal(true);
            expect(maxRelErr(g.dKernel as Float32Array, reference(p).dKernel), `${level} dKernel`).to.be.below(1e-5);
          }
        }
      }
    } finally {
      native.setSimdLevel(caps.simd);
      native.setThreads(caps.threads);
    }
    runs.slice(1).forEach((r) => r.forEach((a, i) => expect(Buffer.from(a.buffer).equals(Buffer.from(runs[0][i].buffer)), `array ${i}`).to.equal(true)));
    const a = await native.denseSoftmaxXentAsync({ ...p, gradient: true });
    expect(Buffer.from(a.dKernel!.buffer).equals(Buffer.from(runs[0][2].buffer))).to.equal(true);
    expect(Buffer.from(a.dx!.buffer).equals(Buffer.from(runs[0][1].buffer))).to.equal(true);
  });

  it('refuses bad arguments with a DeepSentryError naming them', () => {
    const p = problem(rngFor(3), 4, 3, 6);
    const call = (over: Record<string, unknown>) => () => native.denseSoftmaxXent({ ...p, dLoss: undefined, ...over } as DenseSoftmaxXentArgs);
    expect(call({ labels: Int32Array.from([0, 1, 6, 2]) })).to.throw(DeepSentryError, /labels\[2\] = 6 is outside \[0, classes=6\)/);
    expect(call({ labels: Int32Array.from([0, -1, 2, 2]) })).to.throw(DeepSentryError, /labels\[1\] = -1/);
    expect(call({ kernel: new Float32Array(17) })).to.throw(DeepSentryError, /kernel/);
    expect(call({ x: new Float32Array(12), rows: 5 })).to.throw(DeepSentryError, /x/);
    expect(call({ weights: new Float32Array(3) })).to.throw(DeepSentryError, /weights/);
    expect(call({ dLoss: new Float32Array(4) })).to.throw(DeepSentryError, /dLoss.*gradient/);
    expect(call({ rows: 1e6, classes: 1e6 })).to.throw(DeepSentryError, /rows\*classes|logits/);
    try {
      call({ labels: Int32Array.from([0, 1, 9, 2]) })();
    } catch (e) {
      expect((e as DeepSentryError).code).to.equal('DS_OUT_OF_RANGE');
    }
  });

  it('scatterAddRows sums rows into their indices (repeats included) and refuses bad indices', async () => {
    const rng = rngFor(21);
    for (const [rows, cols, numRows] of [[1, 1, 1], [7, 3, 4], [300, 17, 50]]) {
      const x = randF32(rng, rows * cols);
      const indices = Int32Array.from({ length: rows }, () => randInt(rng, 0, numRows - 1));
      const want = new Float64Array(numRows * cols);
      for (let i = 0; i < rows; i++) for (let j = 0; j < cols; j++) want[indices[i] * cols + j] += x[i * cols + j];
      const got = native.scatterAddRows({ rows, cols, numRows, x, indices });
      expect(maxRelErr(got, want)).to.be.below(1e-6);
      const a = await native.scatterAddRowsAsync({ rows, cols, numRows, x, indices });
      expect(Buffer.from(a.buffer).equals(Buffer.from(got.buffer))).to.equal(true);
    }
    expect(() => native.scatterAddRows({ rows: 2, cols: 2, numRows: 3, x: new Float32Array(4), indices: Int32Array.from([0, 3]) })).to.throw(DeepSentryError, /indices\[1\] = 3 is outside \[0, numRows=3\)/);
    expect(() => native.scatterAddRows({ rows: 2, cols: 2, numRows: 3, x: new Float32Array(5), indices: Int32Array.from([0, 1]) })).to.throw(DeepSentryError, /x/);
  });
});

describe('denseSoftmaxCrossEntropy (tfjs op): native and cpu backends', function () {
  before(function () {
    nativeOrSkip(this);
  });
  after(() => useBackend('cpu'));

  for (const backend of ['native', 'cpu'] as const) {
    it(`equals matMul + add + softmaxCrossEntropy, values and gradients (${backend})`, () => {
      useBackend(backend);
      const p = problem(rngFor(31), 9, 6, 13);
      const x = tf.variable(tf.tensor2d(p.x, [9, 6]), true, `x_${backend}`);
      const k = tf.variable(tf.tensor2d(p.kernel, [6, 13]), true, `k_${backend}`);
      const b = tf.variable(tf.tensor1d(p.bias), true, `b_${backend}`);
      const labels = tf.tensor1d(p.labels, 'int32');
      const w = tf.tensor1d(p.weights);
      const dl = tf.tensor1d(p.dLoss);
      const fused = () => tf.sum(tf.mul(denseSoftmaxCrossEntropy(x, k, b, labels, w), dl)) as tf.Scalar;
      const composed = () => tf.sum(tf.mul(softmaxCrossEntropy(tf.add(tf.matMul(x, k), b) as tf.Tensor2D, labels, w), dl)) as tf.Scalar;
      const gf = tf.variableGrads(fused, [x, k, b]);
      const gc = tf.variableGrads(composed, [x, k, b]);
      expect(gf.value.dataSync()[0]).to.be.closeTo(gc.value.dataSync()[0], 1e-5 * Math.abs(gc.value.dataSync()[0]));
      for (const v of [x, k, b]) expect(maxRelErr(gf.grads[v.name].dataSync(), gc.grads[v.name].dataSync()), v.name).to.be.below(1e-5);
      expect(checkGrads(fused, [x, k, b], 1e-2, 3)).to.be.below(1e-2);
      for (const t of [x, k, b, labels, w, dl]) t.dispose();
    });
  }
});
