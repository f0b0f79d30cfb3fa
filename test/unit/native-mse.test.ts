/**
 * The addon's regression head (native/src/train_ops.h dense_mse, `denseMse`): Dense + mean squared error,
 * forward and gradients in one call. Against a float64 reference on odd shapes, against central finite
 * differences of its own loss, bit for bit against the composition it replaces in the benchmark's W1
 * training step (matMul with the bias added, the squared error and its gradient in TypeScript loops, matMul
 * for dKernel and dx: bench/native.ts before denseMse); 1 or 2 threads bit-identical; the async form equal to
 * the sync one; the boundary's refusals.
 */
import { expect } from 'chai';
import { DeepSentryError } from '../../lib/errors';
import type { DenseMseArgs, NativeBinding } from '../../lib/backend/binding';
import { expectCentralDifferences, maxRelErr, nativeOrSkip, randF32, rngFor, type Rng } from '../support/native-helpers';

function problem(rng: Rng, rows: number, inSize: number, outSize: number): DenseMseArgs {
  return {
    rows,
    inSize,
    outSize,
    x: randF32(rng, rows * inSize),
    kernel: randF32(rng, inSize * outSize, 1 / Math.sqrt(inSize)),
    bias: randF32(rng, outSize, 0.5),
    target: randF32(rng, rows * outSize),
  };
}

/** The whole computation in float64 from the same float32 inputs. */
function reference(p: DenseMseArgs) {
  const { rows: R, inSize: K, outSize: N } = p;
  const scores = new Float64Array(R), dx = new Float64Array(R * K), dKernel = new Float64Array(K * N), dBias = new Float64Array(N);
  const scale = 2 / (R * N);
  for (let r = 0; r < R; r++) {
    let sum = 0;
    for (let j = 0; j < N; j++) {
      let y = p.bias[j];
      for (let k = 0; k < K; k++) y += p.x[r * K + k] * p.kernel[k * N + j];
      const d = y - p.target[r * N + j];
      sum += d * d;
      const g = scale * d;
      dBias[j] += g;
      for (let k = 0; k < K; k++) {
        dKernel[k * N + j] += p.x[r * K + k] * g;
        dx[r * K + k] += g * p.kernel[k * N + j];
      }
    }
    scores[r] = sum / N;
  }
  return { scores, dx, dKernel, dBias };
}

/** What bench/native.ts computed before denseMse: matMul, then the TypeScript loops, then two matMuls. */
function composition(nb: NativeBinding, p: DenseMseArgs) {
  const { rows: B, inSize: K, outSize: N } = p;
  const pred = nb.matMul({ a: p.x, b: p.kernel, m: B, k: K, n: N });
  for (let r = 0; r < pred.length; r += N) for (let j = 0; j < N; j++) pred[r + j] += p.bias[j];
  const diff = new Float32Array(B * N);
  const scores = new Float32Array(B);
  for (let b = 0; b < B; b++) {
    let sum = 0;
    for (let j = 0; j < N; j++) {
      const d = pred[b * N + j] - p.target[b * N + j];
      diff[b * N + j] = d;
      sum += d * d;
    }
    scores[b] = sum / N;
  }
  const scale = 2 / (B * N);
  for (let i = 0; i < diff.length; i++) diff[i] *= scale;
  const dKernel = nb.matMul({ a: p.x, b: diff, m: K, k: B, n: N, transposeA: true });
  const dBias = new Float32Array(N);
  for (let r = 0; r < diff.length; r += N) for (let j = 0; j < N; j++) dBias[j] += diff[r + j];
  const dx = nb.matMul({ a: diff, b: p.kernel, m: B, k: N, n: K, transposeB: true });
  return [scores, dx, dKernel, dBias];
}

const same = (a: Float32Array, b: Float32Array) => Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));

describe('native denseMse (native/src/train_ops.h dense_mse)', function () {
  let native: NativeBinding;
  before(function () {
    native = nativeOrSkip(this);
  });

  for (const [rows, inSize, outSize] of [[1, 1, 1], [3, 5, 7], [37, 19, 33], [256, 256, 128]]) {
    it(`matches the float64 reference and, bit for bit, matMul + TypeScript loops: rows ${rows}, inSize ${inSize}, outSize ${outSize}`, () => {
      const p = problem(rngFor(rows * 1000 + inSize * 10 + outSize), rows, inSize, outSize);
      const ref = reference(p);
      const f = native.denseMse(p);
      expect(f.dx).to.equal(undefined);
      expect(maxRelErr(f.scores, ref.scores), 'scores (forward only)').to.be.below(1e-5);
      const g = native.denseMse({ ...p, gradient: true });
      expect(same(g.scores, f.scores)).to.equal(true);
      expect(maxRelErr(g.dx as Float32Array, ref.dx), 'dx').to.be.below(1e-5);
      expect(maxRelErr(g.dKernel as Float32Array, ref.dKernel), 'dKernel').to.be.below(1e-5);
      expect(maxRelErr(g.dBias as Float32Array, ref.dBias), 'dBias').to.be.below(1e-5);
      const old = composition(native, p);
      [g.scores, g.dx, g.dKernel, g.dBias].forEach((a, i) => expect(same(a as Float32Array, old[i]), `array ${i}`).to.equal(true));
    });
  }

  it('gradients agree with central differences of its own loss', () => {
    const p = problem(rngFor(5), 7, 5, 11);
    const g = native.denseMse({ ...p, gradient: true });
    const loss = (q: DenseMseArgs) => native.denseMse(q).scores.reduce((a, v) => a + v, 0) / q.rows;
    expectCentralDifferences(p, loss, [['x', g.dx], ['kernel', g.dKernel], ['bias', g.dBias]]);
  });

  it('1 or 2 threads give bit-identical results; async equals sync', async () => {
    const caps = native.capabilities();
    const p = problem(rngFor(9), 150, 70, 19);
    const runs: Float32Array[][] = [];
    try {
      for (const threads of [1, 2]) {
        native.setThreads(threads);
        const g = native.denseMse({ ...p, gradient: true });
        runs.push([g.scores, g.dx, g.dKernel, g.dBias] as Float32Array[]);
      }
    } finally {
      native.setThreads(caps.threads);
    }
    runs[1].forEach((a, i) => expect(same(a, runs[0][i]), `array ${i}`).to.equal(true));
    const a = await native.denseMseAsync({ ...p, gradient: true });
    [a.scores, a.dx, a.dKernel, a.dBias].forEach((v, i) => expect(same(v as Float32Array, runs[0][i]), `async array ${i}`).to.equal(true));
  });

  it('refuses bad arguments with a DeepSentryError naming them', async () => {
    const p = problem(rngFor(3), 4, 3, 6);
    const call = (over: Record<string, unknown>) => () => native.denseMse({ ...p, gradient: true, ...over } as DenseMseArgs);
    const refused = (over: Record<string, unknown>, code: string, message: RegExp) => {
      expect(call(over)).to.throw(DeepSentryError, message);
      try {
        call(over)();
      } catch (e) {
        expect((e as DeepSentryError).code).to.equal(code);
      }
    };
    refused({ kernel: new Float32Array(17) }, 'DS_SHAPE_MISMATCH', /denseMse: expected kernel to be a Float32Array of length 18 \(inSize\*outSize\)/);
    refused({ x: new Float32Array(12), rows: 5 }, 'DS_SHAPE_MISMATCH', /x.*length 15/);
    refused({ target: new Float32Array(23) }, 'DS_SHAPE_MISMATCH', /target.*length 24 \(rows\*outSize\)/);
    refused({ bias: new Float64Array(6) }, 'DS_INVALID_ARGUMENT', /bias.*Float32Array.*Float64Array/);
    refused({ target: undefined }, 'DS_INVALID_ARGUMENT', /target.*required/);
    refused({ outSize: 0 }, 'DS_OUT_OF_RANGE', /outSize/);
    refused({ inSize: 1.5 }, 'DS_INVALID_ARGUMENT', /inSize/);
    refused({ rows: 1e6, outSize: 1e6 }, 'DS_OUT_OF_RANGE', /rows\*outSize/);
    refused({ gradient: 'yes' }, 'DS_INVALID_ARGUMENT', /gradient/);
    expect(() => (native.denseMse as (a: unknown) => unknown)(undefined)).to.throw(DeepSentryError, /denseMse: expected one argument object/);
    let rejected: unknown = null;
    await native.denseMseAsync({ ...p, target: new Float32Array(1) }).catch((e: unknown) => (rejected = e));
    expect(rejected).to.be.instanceOf(DeepSentryError);
    expect((rejected as DeepSentryError).message).to.match(/denseMseAsync: expected target/);
  });
});
