/**
 * Caller-provided output arrays of the LSTM training calls (`into`, lib/backend/binding.ts TrainingInto): the
 * training workspace of lstmForward / bilstmForward and the weight gradients of lstmBackward / bilstmBackward
 * written into arrays the caller hands back. Arrays full of garbage give bit for bit what new arrays give, step
 * after step (a training loop reusing them); the results are the given arrays; the async forms write them back;
 * and the boundary refuses wrong lengths and types, `into` without training, and every overlap with another
 * array of the call, naming both. The native tfjs backend's LSTM kernels hand a disposed training forward's
 * workspace to the next forward of its shape (lib/backend/kernels/kernel_util.ts spareWorkspace): the same
 * gradients, bit for bit.
 */
import { expect } from 'chai';
import * as tf from '@tensorflow/tfjs-core';
import { fusedBiLstm, fusedLstm, useBackend } from '../../lib/backend';
import { keepWorkspace, releaseWorkspace, spareWorkspace } from '../../lib/backend/kernels/kernel_util';
import { DeepSentryError } from '../../lib/errors';
import type { NativeBinding } from '../../lib/backend/binding';
import { firstDifference, lstmProblem, mixedLengths, nativeOrSkip, randF32, randWeights, rngFor } from '../support/native-helpers';

const D = { batch: 5, steps: 4, inputSize: 7, hiddenSize: 9 };

function garbage(n: number): Float32Array {
  return new Float32Array(n).fill(Number.NaN);
}

describe('native LSTM training calls: caller-provided outputs (into)', function () {
  let native: NativeBinding;
  before(function () {
    native = nativeOrSkip(this);
  });

  function biProblem(seed: number) {
    const rng = rngFor(seed);
    const p = lstmProblem(rng, D, { lengths: true });
    const backward = randWeights(rng, D.inputSize, D.hiddenSize);
    const args = { ...D, x: p.x, forward: p.weights, backward, lengths: mixedLengths(rng, D.batch, D.steps) };
    const dhFw = randF32(rng, D.batch * D.hiddenSize), dhBw = randF32(rng, D.batch * D.hiddenSize);
    const dy = randF32(rng, D.batch * D.steps * 2 * D.hiddenSize);
    return { args, dhFw, dhBw, dy };
  }

  it('bilstmForward / bilstmBackward write into given arrays exactly what they return in new ones, step after step', () => {
    const { args, dhFw, dhBw, dy } = biProblem(1);
    const fresh = native.bilstmForward({ ...args, training: true });
    const g = native.bilstmBackward({ ...args, y: fresh.y, workspace: fresh.workspace!, dy, dhFw, dhBw, inputGradients: false });
    const ws = garbage(fresh.workspace!.length);
    const y = garbage(fresh.y.length); // NaN past each length too: the forward zeroes y there
    const into = {
      forward: { dKernel: garbage(g.forward.dKernel.length), dRecurrentKernel: garbage(g.forward.dRecurrentKernel.length), dBias: garbage(g.forward.dBias.length) },
      backward: { dKernel: garbage(g.backward.dKernel.length), dRecurrentKernel: garbage(g.backward.dRecurrentKernel.length), dBias: garbage(g.backward.dBias.length) },
    };
    for (let step = 0; step < 2; step++) {
      const f = native.bilstmForward({ ...args, training: true, into: { workspace: ws, y } });
      expect(f.workspace).to.equal(ws);
      expect(f.y).to.equal(y);
      expect(firstDifference(ws, fresh.workspace!), `step ${step} workspace`).to.equal(null);
      expect(firstDifference(y, fresh.y), `step ${step} y`).to.equal(null);
      const r = native.bilstmBackward({ ...args, y: f.y, workspace: ws, dy, dhFw, dhBw, inputGradients: false, into });
      for (const dir of ['forward', 'backward'] as const) {
        for (const k of ['dKernel', 'dRecurrentKernel', 'dBias'] as const) {
          expect(r[dir][k]).to.equal(into[dir][k]);
          expect(firstDifference(r[dir][k], g[dir][k]), `step ${step} ${dir}.${k}`).to.equal(null);
        }
      }
      // the next step finds last step's numbers in them: garbage again for the kernels
      ws.fill(7);
      y.fill(Number.NaN);
      into.forward.dKernel.fill(-3);
    }
    // only some given: the others are new arrays
    const some = native.bilstmBackward({ ...args, y: fresh.y, workspace: fresh.workspace!, dy, dhFw, dhBw, into: { backward: { dBias: garbage(4 * D.hiddenSize) } } });
    expect(firstDifference(some.backward.dBias, g.backward.dBias)).to.equal(null);
    expect(firstDifference(some.forward.dKernel, g.forward.dKernel)).to.equal(null);
  });

  it('lstmForward / lstmBackward write into given arrays; the async forms write them back', async () => {
    const rng = rngFor(2);
    const p = lstmProblem(rng, D, { lengths: true, state: true });
    const dh = randF32(rng, D.batch * D.hiddenSize);
    const fresh = native.lstmForward({ ...p, training: true });
    const g = native.lstmBackward({ ...p, y: fresh.y, workspace: fresh.workspace!, dh });
    const ws = garbage(fresh.workspace!.length);
    const into = { dKernel: garbage(g.dKernel.length), dRecurrentKernel: garbage(g.dRecurrentKernel.length), dBias: garbage(g.dBias.length) };
    const y = garbage(fresh.y.length);
    const f = native.lstmForward({ ...p, training: true, into: { workspace: ws, y } });
    expect(f.workspace).to.equal(ws);
    expect(firstDifference(ws, fresh.workspace!)).to.equal(null);
    expect(firstDifference(y, fresh.y)).to.equal(null);
    const r = native.lstmBackward({ ...p, y: f.y, workspace: ws, dh, into });
    expect(r.dKernel).to.equal(into.dKernel);
    for (const k of ['dKernel', 'dRecurrentKernel', 'dBias'] as const) expect(firstDifference(r[k], g[k]), k).to.equal(null);
    expect(firstDifference(r.dx, g.dx)).to.equal(null);

    const wsA = garbage(ws.length);
    const fa = await native.lstmForwardAsync({ ...p, training: true, into: { workspace: wsA } });
    expect(fa.workspace).to.equal(wsA);
    expect(firstDifference(wsA, fresh.workspace!)).to.equal(null);
    const intoA = { dKernel: garbage(g.dKernel.length), dRecurrentKernel: garbage(g.dRecurrentKernel.length) };
    const ra = await native.lstmBackwardAsync({ ...p, y: fa.y, workspace: wsA, dh, into: intoA });
    expect(ra.dRecurrentKernel).to.equal(intoA.dRecurrentKernel);
    expect(firstDifference(intoA.dKernel, g.dKernel)).to.equal(null);
    expect(firstDifference(intoA.dRecurrentKernel, g.dRecurrentKernel)).to.equal(null);
    expect(firstDifference(ra.dBias, g.dBias)).to.equal(null);
  });

  it('refuses wrong lengths and types, into without training, and arrays sharing memory, naming them', async () => {
    const { args, dhFw, dhBw } = biProblem(3);
    const f = native.bilstmForward({ ...args, training: true });
    const wsLen = f.workspace!.length;
    const G = 4 * D.hiddenSize;
    const fwdCases: [Record<string, unknown>, string, RegExp][] = [
      [{ into: { workspace: new Float32Array(wsLen - 1) } }, 'DS_SHAPE_MISMATCH', new RegExp(`^bilstmForward: expected into\\.workspace to be a Float32Array of length ${wsLen} \\(the workspace bilstmForward returned with training: true\\)`)],
      [{ into: { workspace: new Float64Array(wsLen) } }, 'DS_INVALID_ARGUMENT', /into\.workspace to be a Float32Array.*Float64Array/],
      [{ into: 5 }, 'DS_INVALID_ARGUMENT', /expected into to be an object but received number 5/],
      [{ into: { workspace: garbage(wsLen) }, training: false }, 'DS_INVALID_ARGUMENT', /expected into to be absent unless training is true/],
      [{ into: { workspace: args.x } }, 'DS_SHAPE_MISMATCH', /into\.workspace/],
    ];
    // views of one buffer: the workspace over x, over a kernel, over the lengths
    const big = new Float32Array(wsLen + 4096);
    const x = big.subarray(0, args.x.length);
    x.set(args.x);
    fwdCases.push([{ x, into: { workspace: big.subarray(args.x.length - 1, args.x.length - 1 + wsLen) } }, 'DS_INVALID_ARGUMENT', /into\.workspace shares memory with x; the call writes into\.workspace, so it must not overlap any other array of the call/]);
    const kbig = new Float32Array(wsLen + args.backward.kernel.length);
    const kernel = kbig.subarray(wsLen);
    kernel.set(args.backward.kernel);
    fwdCases.push([{ backward: { ...args.backward, kernel }, into: { workspace: kbig.subarray(1, 1 + wsLen) } }, 'DS_INVALID_ARGUMENT', /into\.workspace shares memory with backward\.kernel/]);
    const lengths = new Int32Array(big.buffer, 4 * (big.length - D.batch), D.batch);
    lengths.set(args.lengths);
    fwdCases.push([{ lengths, into: { workspace: big.subarray(big.length - wsLen) } }, 'DS_INVALID_ARGUMENT', /into\.workspace shares memory with lengths/]);
    fwdCases.push([{ into: { workspace: big.subarray(0, wsLen), y: big.subarray(wsLen - 1, wsLen - 1 + f.y.length) } }, 'DS_INVALID_ARGUMENT', /into\.workspace shares memory with into\.y/]);
    fwdCases.push([{ into: { y: new Float32Array(f.y.length + 1) } }, 'DS_SHAPE_MISMATCH', /expected into\.y to be a Float32Array of length 360 \(batch\*steps\*2\*hiddenSize\)/]);
    for (const [change, code, re] of fwdCases) {
      let err: unknown = null;
      try {
        native.bilstmForward({ ...args, training: true, ...change } as never);
      } catch (e) {
        err = e;
      }
      expect(err, String(re)).to.be.instanceOf(DeepSentryError);
      expect((err as DeepSentryError).code, String(re)).to.equal(code);
      expect((err as Error).message).to.match(re);
      let rejected: unknown = null;
      await native.bilstmForwardAsync({ ...args, training: true, ...change } as never).catch((e: unknown) => (rejected = e));
      expect(rejected, `async ${String(re)}`).to.be.instanceOf(DeepSentryError);
    }

    const base = { ...args, y: f.y, workspace: f.workspace!, dhFw, dhBw, inputGradients: false };
    const two = new Float32Array(2 * G);
    const bwdCases: [Record<string, unknown>, string, RegExp][] = [
      [{ into: { forward: { dBias: new Float32Array(G + 1) } } }, 'DS_SHAPE_MISMATCH', /^bilstmBackward: expected into\.forward\.dBias to be a Float32Array of length 36 \(4\*hiddenSize\)/],
      [{ into: { backward: { dKernel: new Float32Array(3) } } }, 'DS_SHAPE_MISMATCH', /into\.backward\.dKernel.*inputSize\*4\*hiddenSize/],
      [{ into: { forward: 'no' } }, 'DS_INVALID_ARGUMENT', /expected into\.forward to be an object/],
      [{ into: { forward: { dBias: two.subarray(0, G) }, backward: { dBias: two.subarray(G - 1, 2 * G - 1) } } }, 'DS_INVALID_ARGUMENT', /into\.forward\.dBias shares memory with into\.backward\.dBias/],
      [{ into: { forward: { dBias: dhFw.subarray(0, G) } } }, 'DS_INVALID_ARGUMENT', /into\.forward\.dBias shares memory with dhFw/],
      [{ into: { backward: { dBias: f.y.subarray(0, G) } } }, 'DS_INVALID_ARGUMENT', /into\.backward\.dBias shares memory with y/],
      [{ into: { forward: { dBias: f.workspace!.subarray(5, 5 + G) } } }, 'DS_INVALID_ARGUMENT', /into\.forward\.dBias shares memory with workspace/],
    ];
    for (const [change, code, re] of bwdCases) {
      let err: unknown = null;
      try {
        native.bilstmBackward({ ...base, ...change } as never);
      } catch (e) {
        err = e;
      }
      expect(err, String(re)).to.be.instanceOf(DeepSentryError);
      expect((err as DeepSentryError).code, String(re)).to.equal(code);
      expect((err as Error).message).to.match(re);
    }
    // lstmBackward: its weight gradients over its own dh
    const rng = rngFor(4);
    const p = lstmProblem(rng, D);
    const lf = native.lstmForward({ ...p, training: true });
    const dh = randF32(rng, D.batch * D.hiddenSize);
    expect(() => native.lstmBackward({ ...p, y: lf.y, workspace: lf.workspace!, dh, into: { dBias: dh.subarray(0, G) } })).to.throw(DeepSentryError, /^lstmBackward: into\.dBias shares memory with dh/);
    expect(() => native.lstmForward({ ...p, into: { workspace: garbage(lf.workspace!.length) } })).to.throw(DeepSentryError, /^lstmForward: expected into to be absent unless training is true/);
  });

  it('the native backend reuses a disposed training forward\'s workspace for the next of its shape: the same gradients', () => {
    const B = 3, T = 4, I = 5, H = 6;
    const rng = rngFor(7);
    const t = (shape: number[]) => tf.tensor(randF32(rng, shape.reduce((a, b) => a * b, 1)), shape);
    try {
      useBackend('native');
      const x = t([B, T, I]) as tf.Tensor3D;
      const probe = t([B, T, 2 * H]);
      const weights = () => ({ kernel: tf.variable(t([I, 4 * H])) as tf.Variable<tf.Rank.R2>, recurrentKernel: tf.variable(t([H, 4 * H])) as tf.Variable<tf.Rank.R2>, bias: tf.variable(t([4 * H])) as tf.Variable<tf.Rank.R1> });
      const fw = weights(), bw = weights();
      const vars = [fw.kernel, fw.recurrentKernel, fw.bias, bw.kernel, bw.recurrentKernel, bw.bias];
      const step = (bi: boolean) => tf.tidy(() => {
        const { grads } = tf.variableGrads(() => {
          const y = bi ? fusedBiLstm(x, fw, bw, { lengths: [4, 1, 3] }).y : fusedLstm(x, fw, { lengths: [4, 1, 3] }).y;
          return tf.sum(tf.mul(y, bi ? probe : tf.slice(probe, [0, 0, 0], [B, T, H]))) as tf.Scalar;
        }, bi ? vars : vars.slice(0, 3));
        return Object.values(grads).map((g) => (g.dataSync() as Float32Array).slice());
      });
      for (const [bi, shape] of [[true, `bilstm ${B} ${T} ${I} ${H}`], [false, `lstm ${B} ${T} ${I} ${H}`]] as const) {
        const first = step(bi);
        // the first step's workspace is a spare now; made dirty and put back, the next step must write over it
        const spare = spareWorkspace(shape);
        expect(spare, shape).to.be.instanceOf(Float32Array);
        expect(spareWorkspace(shape), `${shape}: one spare`).to.equal(undefined);
        spare!.fill(Number.NaN);
        const owner = { dataId: {} } as tf.TensorInfo;
        keepWorkspace(owner, spare!, shape);
        releaseWorkspace(owner.dataId); // as the backend does when the owner's data is disposed
        for (let k = 0; k < 2; k++) {
          const again = step(bi);
          again.forEach((g, i) => expect(firstDifference(g, first[i]), `${shape} step ${k + 2} gradient ${i}`).to.equal(null));
        }
        expect(spareWorkspace(shape), `${shape}: the dirty spare was used and given back`).to.equal(spare);
      }
      vars.forEach((v) => v.dispose());
    } finally {
      useBackend('cpu');
    }
  });
});

