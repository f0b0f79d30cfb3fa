/**
 * Smoke test of the benchmark harness (bench/), so that `npm run bench` cannot rot between runs: every native
 * workload function runs once at tiny shapes (outputs of the right size, finite), the same tiny workloads on
 * the tfjs-cpu peer and the fused ops on the deepsentry tfjs backend compute the same numbers (outputs, loss,
 * gradients, and the parameters after Adam steps),
 * the tfjs-layers peer (bench/peers/layers.ts) likewise, on tfjs-cpu and tfjs-wasm,
 * the FLOP formulas match a count done by hand, the timing wrapper calls a function exactly once per sample,
 * and bad options are refused with a clear error. No timing assertion anywhere.
 */
import { expect } from 'chai';
import * as tf from '@tensorflow/tfjs-core';
import { DeepSentryError } from '../../lib/errors';
import { parseOptions } from '../../bench/index';
import { NativeW1, NativeW2 } from '../../bench/native';
import { LayersW1, LayersW2 } from '../../bench/peers/layers';
import { TfjsW1, TfjsW2, useTfjsBackend } from '../../bench/peers/tfjs';
import { timeFunction } from '../../bench/timing';
import {
  initW1Params,
  initW2Params,
  makeW1Batch,
  makeW2Batch,
  W1_PARAM_NAMES,
  W1_REFERENCE,
  w1ForwardFlops,
  W2_PARAM_NAMES,
  W2_REFERENCE,
  w2EncodeFlops,
  type NamedArrays,
  type W1Shape,
  type W2Shape,
} from '../../bench/workloads';
import { nativeOrSkip } from '../support/native-helpers';

// not multiples of any SIMD width, so the kernels' tails run too
const W1_TINY: W1Shape = { batch: 3, steps: 4, input: 5, hidden: 7, out: 6 };
const W2_TINY: W2Shape = { batch: 3, steps: 5, vocab: 11, embedding: 4, hidden: 6 };

function expectFinite(what: string, a: Float32Array, length: number): void {
  expect(a.length, `${what} length`).to.equal(length);
  const bad = a.findIndex((v) => !Number.isFinite(v));
  expect(bad, `${what}[${bad}] = ${a[bad]}`).to.equal(-1);
}

function expectClose(what: string, got: Float32Array, want: Float32Array, tol: number): void {
  expect(got.length, `${what} length`).to.equal(want.length);
  let scale = 0;
  let diff = 0;
  for (let i = 0; i < want.length; i++) {
    scale = Math.max(scale, Math.abs(want[i]));
    diff = Math.max(diff, Math.abs(got[i] - want[i]));
  }
  expect(diff / Math.max(scale, 1e-6), `${what}: max |Δ| ${diff} (scale ${scale})`).to.be.below(tol);
}

function expectGradsClose(got: NamedArrays, want: NamedArrays): void {
  for (const [name, g] of got) {
    const w = want.find(([n]) => n === name);
    expect(w, `gradient ${name}`).to.not.equal(undefined);
    expectClose(`gradient ${name}`, g, (w as [string, Float32Array])[1], 1e-4);
  }
}

describe('bench: workloads, formulas, options', () => {
  it('counts W1 and W2 FLOPs as the formulas printed say (by hand for the reference shapes)', () => {
    // 2 directions · B·T·(2·(I+H)·4H + 17·H) + Dense 2·B·2H·out + bias B·out + MSE 3·B·out
    const lstm = 256 * 10 * (2 * 256 * 512 + 17 * 128);
    expect(w1ForwardFlops(W1_REFERENCE)).to.equal(2 * lstm + 2 * 256 * 256 * 128 + 256 * 128 + 3 * 256 * 128);
    expect(w1ForwardFlops(W1_REFERENCE)).to.equal(1_370_226_688);
    expect(w2EncodeFlops(W2_REFERENCE)).to.equal(128 * 24 * (2 * 192 * 512 + 17 * 128));
  });

  it('parses --quick, --filter prefixes, --peers, and refuses unknown values with DS_INVALID_ARGUMENT', () => {
    const o = parseOptions(['--quick', '--filter', 'w1,l1', '--peers', 'wasm', '--no-save']);
    expect(o.quick).to.equal(true);
    expect(o.workloads).to.deep.equal(['w1-forward', 'w1-train', 'l1']);
    expect(o.logs).to.equal(false);
    expect(o.peers).to.deep.equal(['tfjs-wasm']);
    expect(o.save).to.equal(false);
    const all = parseOptions([]);
    expect(all.workloads).to.have.length(5);
    expect(all.logs).to.equal(true);
    expect(all.peers).to.deep.equal(['onnxruntime', 'torch', 'native-tfjs', 'tfjs-wasm', 'tfjs-cpu', 'layers-wasm']);
    expect(parseOptions(['--peers', 'layers-cpu,wasm']).peers).to.deep.equal(['tfjs-wasm', 'layers-cpu']);
    expect(parseOptions(['--peers', 'cpu,native-tfjs']).peers).to.deep.equal(['native-tfjs', 'tfjs-cpu']);
    expect(parseOptions(['--peers', 'none']).peers).to.deep.equal([]);
    for (const [args, mention] of [
      [['--filter', 'w3'], '"w3" matches no workload'],
      [['--peers', 'gpu'], '"gpu" is not a peer'],
      [['--fast'], "'--fast'"],
    ] as const) {
      let caught: unknown = null;
      try {
        parseOptions([...args]);
      } catch (err) {
        caught = err;
      }
      expect(caught).to.be.instanceOf(DeepSentryError);
      expect((caught as DeepSentryError).code).to.equal('DS_INVALID_ARGUMENT');
      expect((caught as DeepSentryError).message).to.contain(mention);
    }
  });

  it('times a function with benchmark.js: one call per slow sample, errors rethrown', async () => {
    let calls = 0;
    const t = await timeFunction('spin', () => {
      calls++;
      const end = Date.now() + 60; // slower than benchmark.js' 50 ms minimum cycle: one call per sample
      while (Date.now() < end);
    }, { minSamples: 2, maxTime: 0 });
    expect(t.samples).to.have.length(2);
    expect(calls).to.equal(2);
    expect(t.calls).to.equal(2);
    expect(t.median).to.be.above(0);
    let caught: unknown = null;
    try {
      await timeFunction('boom', () => {
        throw new Error('boom');
      }, { minSamples: 1, maxTime: 0 });
    } catch (err) {
      caught = err;
    }
    expect((caught as Error).message).to.equal('boom');
  });

  it('times a function returning a promise until it settles; a rejection is rethrown', async () => {
    let settled = 0;
    const t = await timeFunction('wait', () => new Promise<void>((resolve) => setTimeout(() => {
      settled++;
      resolve();
    }, 60)), { minSamples: 2, maxTime: 0 });
    expect(t.samples).to.have.length(2);
    expect(settled).to.equal(2); // each sample waited for its call's promise
    const caught = await timeFunction('reject', () => Promise.reject(new Error('async boom')), { minSamples: 1, maxTime: 0 }).then(() => null, (e: unknown) => e);
    expect((caught as Error).message).to.equal('async boom');
  });
});

describe('bench: native workloads at tiny shapes, and the tfjs-cpu peer on the same numbers', function () {
  let previousBackend = '';
  before(async () => {
    previousBackend = tf.getBackend();
    await useTfjsBackend('cpu');
  });
  after(async () => {
    if (previousBackend) await tf.setBackend(previousBackend);
  });

  it('W1 / L1: forward, gradients and Adam steps', function () {
    const nb = nativeOrSkip(this);
    for (const s of [W1_TINY, { ...W1_TINY, batch: 1 }]) {
      const params = initW1Params(s, 5);
      const batch = makeW1Batch(s, 6);
      const native = new NativeW1(nb, s, params, batch);
      const peer = new TfjsW1(s, params, batch);
      try {
        const f = native.forward();
        expectFinite('pred', f.pred, s.batch * s.out);
        expectFinite('scores', f.scores, s.batch);
        const pf = peer.forward();
        expectClose('pred vs tfjs-cpu', f.pred, pf.pred, 1e-5);
        expectClose('scores vs tfjs-cpu', f.scores, pf.scores, 1e-5);

        const g = native.gradients();
        expect(g.grads.map(([n]) => n)).to.deep.equal([...W1_PARAM_NAMES]);
        for (const [n, a] of g.grads) expect(a.every(Number.isFinite), n).to.equal(true);
        const pg = peer.gradients();
        expect(Math.abs(g.loss - pg.loss) / pg.loss).to.be.below(1e-5);
        expectGradsClose(g.grads, pg.grads);

        // the native step's Adam is tfjs' Adam: three steps later both still predict the same
        for (let k = 0; k < 3; k++) {
          const l = native.trainStep();
          const pl = peer.trainStep();
          expect(Number.isFinite(l)).to.equal(true);
          expect(Math.abs(l - pl) / pl).to.be.below(1e-4);
        }
        expectClose('pred after 3 Adam steps vs tfjs-cpu', native.forward().pred, peer.forward().pred, 1e-4);
        expect(native.forward().pred).to.not.deep.equal(f.pred); // the steps changed the parameters
      } finally {
        native.dispose();
        peer.dispose();
      }
    }
  });

  it('W2: batched encoding, loss, gradients (embedding included) and Adam steps', function () {
    const nb = nativeOrSkip(this);
    const s = W2_TINY;
    const params = initW2Params(s, 7);
    const batch = makeW2Batch(s, 8);
    const native = new NativeW2(nb, s, params, batch);
    try {
      const h = native.encode();
      expectFinite('encoder h', h, s.batch * s.hidden);
      const loss = native.lossValue();
      // untrained: close to ln(vocab), the loss of a uniform guess
      expect(loss).to.be.within(0.5 * Math.log(s.vocab), 1.5 * Math.log(s.vocab));
      const g = native.gradients();
      expect(g.grads.map(([n]) => n)).to.deep.equal([...W2_PARAM_NAMES]);
      // both peers' ways of training (or not) the embedding see the same function
      for (const mode of ['gather', 'onehot', 'frozen'] as const) {
        const peer = new TfjsW2(s, params, batch, mode);
        try {
          expectClose(`encoder h vs tfjs-cpu (${mode})`, h, peer.encode(), 1e-5);
          const pg = peer.gradients();
          expect(Math.abs(g.loss - pg.loss) / pg.loss, mode).to.be.below(1e-5);
          expect(pg.grads.map(([n]) => n).includes('embedding'), mode).to.equal(mode !== 'frozen');
          expectGradsClose(pg.grads, g.grads);
          if (mode === 'onehot') {
            for (let k = 0; k < 2; k++) {
              const l = native.trainStep();
              const pl = peer.trainStep();
              expect(Math.abs(l - pl) / pl).to.be.below(1e-4);
            }
            expectClose('encoder h after 2 Adam steps', native.encode(), peer.encode(), 1e-4);
          }
        } finally {
          peer.dispose();
        }
      }
    } finally {
      native.dispose();
    }
  });
});

describe('bench: the native-tfjs variant (fused ops on the deepsentry backend) at tiny shapes', function () {
  let previousBackend = '';
  before(function () {
    previousBackend = tf.getBackend();
  });
  after(async () => {
    if (previousBackend) await tf.setBackend(previousBackend);
  });

  it('W1 and W2 through fusedBiLstm / fusedLstm / denseSoftmaxCrossEntropy agree with the direct native calls', async function () {
    const nb = nativeOrSkip(this);
    await useTfjsBackend('deepsentry');
    const s1 = W1_TINY;
    const p1 = initW1Params(s1, 9);
    const b1 = makeW1Batch(s1, 10);
    const n1 = new NativeW1(nb, s1, p1, b1);
    const f1 = new TfjsW1(s1, p1, b1, 'fused');
    try {
      expectClose('W1 pred', f1.forward().pred, n1.forward().pred, 1e-5);
      expectGradsClose(f1.gradients().grads, n1.gradients().grads);
      expect(Math.abs(f1.trainStep() - n1.trainStep())).to.be.below(1e-5);
    } finally {
      f1.dispose();
    }
    const s2 = W2_TINY;
    const p2 = initW2Params(s2, 11);
    const b2 = makeW2Batch(s2, 12);
    const n2 = new NativeW2(nb, s2, p2, b2);
    const f2 = new TfjsW2(s2, p2, b2, 'onehot', 'fused');
    try {
      expectClose('W2 encoder h', f2.encode(), n2.encode(), 1e-5);
      const g = f2.gradients();
      const ng = n2.gradients();
      expect(Math.abs(g.loss - ng.loss) / ng.loss).to.be.below(1e-5);
      expectGradsClose(g.grads, ng.grads);
    } finally {
      f2.dispose();
    }
  });
});

describe('bench: the tfjs-layers peer at tiny shapes (cpu and wasm backends)', function () {
  let previousBackend = '';
  before(function () {
    previousBackend = tf.getBackend();
  });
  after(async () => {
    if (previousBackend) await tf.setBackend(previousBackend);
  });

  for (const backend of ['cpu', 'wasm'] as const) {
    it(`W1/L1 and W2 built from tfjs-layers on ${backend} agree with the direct native calls (outputs, gradients, Adam steps)`, async function () {
      const nb = nativeOrSkip(this);
      await useTfjsBackend(backend);
      for (const s of [W1_TINY, { ...W1_TINY, batch: 1 }]) {
        const params = initW1Params(s, 13);
        const batch = makeW1Batch(s, 14);
        const native = new NativeW1(nb, s, params, batch);
        const peer = new LayersW1(s, params, batch);
        try {
          const f = native.forward();
          const pf = peer.forward();
          expectClose('W1 pred vs layers', pf.pred, f.pred, 1e-5);
          expectClose('W1 scores vs layers', pf.scores, f.scores, 1e-5);
          const g = native.gradients();
          const pg = peer.gradients();
          expect(pg.grads.map(([n]) => n)).to.deep.equal([...W1_PARAM_NAMES]);
          expect(Math.abs(g.loss - pg.loss) / g.loss).to.be.below(1e-5);
          expectGradsClose(pg.grads, g.grads);
          for (let k = 0; k < 2; k++) expect(Math.abs(peer.trainStep() - native.trainStep()) / g.loss).to.be.below(1e-4);
          expectClose('W1 pred after 2 Adam steps', peer.forward().pred, native.forward().pred, 1e-4);
        } finally {
          native.dispose();
          peer.dispose();
        }
      }
      const s = W2_TINY;
      const params = initW2Params(s, 15);
      const batch = makeW2Batch(s, 16);
      const native = new NativeW2(nb, s, params, batch);
      // frozen as in the benchmark (wasm cannot train an Embedding); on cpu the trained embedding is checked too
      const modes = backend === 'cpu' ? [true, false] : [true];
      try {
        for (const frozen of modes) {
          const peer = new LayersW2(s, params, batch, frozen);
          try {
            expectClose(`W2 encoder h vs layers (frozen ${frozen})`, peer.encode(), native.encode(), 1e-5);
            const g = native.gradients();
            const pg = peer.gradients();
            expect(Math.abs(g.loss - pg.loss) / g.loss).to.be.below(1e-5);
            expect(Math.abs(peer.lossValue() - g.loss) / g.loss).to.be.below(1e-5);
            expect(pg.grads.map(([n]) => n)).to.deep.equal(W2_PARAM_NAMES.filter((n) => !(frozen && n === 'embedding')));
            expectGradsClose(pg.grads, g.grads);
          } finally {
            peer.dispose();
          }
        }
      } finally {
        native.dispose();
      }
    });
  }
});
