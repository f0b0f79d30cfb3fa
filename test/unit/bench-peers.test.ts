/**
 * The opt-in peers of `npm run bench` (bench/peers/onnx.ts, bench/peers/torch.ts) and the rounds that
 * interleave them with native: how --peers and --rounds parse, where onnxruntime-node and a python3 with
 * torch are looked for and the reason given when they are missing, the rotation of the rounds and the pooling
 * of their samples. Where onnxruntime-node / torch are installed, each computes the same function as native at
 * tiny shapes (the ONNX graphs written by bench/peers/onnx.ts, torch's outputs and gradients); elsewhere those
 * cases are skipped. No timing assertion.
 */
import { expect } from 'chai';
import * as path from 'path';
import { DeepSentryError } from '../../lib/errors';
import { parseOptions, poolRounds, rotation } from '../../bench/index';
import { NativeW1, NativeW2 } from '../../bench/native';
import { defaultPeersDir, loadOnnxRuntime, locateOnnxRuntime, OrtW1, OrtW2Encoder } from '../../bench/peers/onnx';
import { findTorchPython, pythonCandidates, torchEnv, TorchPeer } from '../../bench/peers/torch';
import { initW1Params, initW2Params, makeW1Batch, makeW2Batch, type NamedArrays, type W1Shape, type W2Shape } from '../../bench/workloads';
import { nativeOrSkip } from '../support/native-helpers';
import { skipBecause } from '../support/skip';

const W1_TINY: W1Shape = { batch: 3, steps: 4, input: 5, hidden: 7, out: 6 };
const W2_TINY: W2Shape = { batch: 3, steps: 5, vocab: 11, embedding: 4, hidden: 6 };

function maxAbs(a: Float32Array, b: Float32Array): number {
  expect(a.length).to.equal(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

/** torch's loss and gradients against native's: same names in the same order, within 1e-5 */
function expectSameGradients(got: { loss: number; grads: NamedArrays }, want: { loss: number; grads: NamedArrays }): void {
  expect(got.loss).to.be.closeTo(want.loss, 1e-5 * Math.abs(want.loss));
  for (const [i, [name, g]] of want.grads.entries()) {
    expect(got.grads[i][0]).to.equal(name);
    expect(maxAbs(got.grads[i][1], g), name).to.be.below(1e-5);
  }
}

function caught(fn: () => unknown): DeepSentryError {
  try {
    fn();
  } catch (err) {
    expect(err).to.be.instanceOf(DeepSentryError);
    return err as DeepSentryError;
  }
  throw new Error('expected an error');
}

describe('bench peers: options, discovery, rounds', () => {
  it('runs onnxruntime and torch by default, takes their aliases, and parses --rounds', () => {
    expect(parseOptions([]).peers.slice(0, 2)).to.deep.equal(['onnxruntime', 'torch']);
    expect(parseOptions([]).rounds).to.equal(3);
    expect(parseOptions(['--quick']).rounds).to.equal(1);
    expect(parseOptions(['--peers', 'pytorch,wasm,ort']).peers).to.deep.equal(['onnxruntime', 'torch', 'tfjs-wasm']);
    expect(parseOptions(['--rounds', '5', '--quick']).rounds).to.equal(5);
    for (const bad of ['0', '2.5', 'x', '101']) {
      const e = caught(() => parseOptions(['--rounds', bad]));
      expect(e.code).to.equal('DS_INVALID_ARGUMENT');
      expect(e.message).to.contain(`--rounds "${bad}"`);
    }
    expect(caught(() => parseOptions(['--peers', 'tensorflow'])).message).to.contain('"tensorflow" is not a peer');
  });

  it('looks for onnxruntime-node in $DEEPSENTRY_PEERS_DIR, else the default folder, then from the project', () => {
    const dir = '/opt/peers';
    const inDir = path.join(dir, 'node_modules', 'onnxruntime-node');
    const found = locateOnnxRuntime({ DEEPSENTRY_PEERS_DIR: dir }, (p) => p === path.join(inDir, 'package.json'), () => '/elsewhere');
    expect(found).to.deep.equal({ tried: [inDir], found: inDir });
    const fromProject = locateOnnxRuntime({ DEEPSENTRY_PEERS_DIR: dir }, () => false, () => '/project/node_modules/onnxruntime-node');
    expect(fromProject.found).to.equal('/project/node_modules/onnxruntime-node');
    const none = locateOnnxRuntime({}, () => false, () => null);
    expect(none.found).to.equal(null);
    expect(none.tried[0]).to.equal(path.join(defaultPeersDir(), 'node_modules', 'onnxruntime-node'));
  });

  it('finds the first python3 that imports torch, and says what each candidate lacked when none does', () => {
    expect(pythonCandidates({})).to.deep.equal(['python3', '/usr/bin/python3']);
    expect(pythonCandidates({ DEEPSENTRY_PYTHON: '/x/python' })).to.deep.equal(['/x/python']);
    const probe = (py: string) => (py === '/usr/bin/python3' ? { version: '1.13.1' } : { error: "ModuleNotFoundError: No module named 'torch'" });
    expect(findTorchPython({}, probe)).to.deep.equal({ python: '/usr/bin/python3', version: '1.13.1' });
    const none = findTorchPython({ DEEPSENTRY_PYTHON: '/x/python' }, probe);
    expect(none).to.have.property('skip').that.contains("/x/python: ModuleNotFoundError: No module named 'torch'");
    expect((none as { skip: string }).skip).to.contain('DEEPSENTRY_PYTHON');
  });

  it("runs torch's OpenMP threads passive unless the user chose a wait policy", () => {
    expect(torchEnv({ PATH: '/bin' })).to.deep.equal({ PATH: '/bin', OMP_WAIT_POLICY: 'PASSIVE' });
    expect(torchEnv({ OMP_WAIT_POLICY: 'ACTIVE' }).OMP_WAIT_POLICY).to.equal('ACTIVE');
  });

  it('rotates the order of a round and pools the rounds into one median', () => {
    expect(rotation(['a', 'b', 'c'], 0)).to.deep.equal(['a', 'b', 'c']);
    expect(rotation(['a', 'b', 'c'], 4)).to.deep.equal(['b', 'c', 'a']);
    const t = (samples: number[]) => ({ median: 0, samples, rme: samples.length, callsPerSample: 1, calls: samples.length });
    const p = poolRounds([t([1, 2, 3]), t([10]), t([4, 5])]);
    expect(p.samples).to.deep.equal([1, 2, 3, 10, 4, 5]);
    expect(p.median).to.equal(3.5);
    expect(p.calls).to.equal(6);
    expect(p.rme).to.equal(2);
  });
});

describe('bench peers: onnxruntime computes what native computes (when installed)', function () {
  this.timeout(60_000);

  it('W1 (BiLSTM, Dense, MSE) and the W2 encoder as the ONNX graphs of bench/peers/onnx.ts', async function () {
    const nb = nativeOrSkip(this);
    const loaded = loadOnnxRuntime();
    if ('skip' in loaded) skipBecause(this, loaded.skip);
    const { ort } = loaded;
    const p1 = initW1Params(W1_TINY, 3);
    const b1 = makeW1Batch(W1_TINY, 4);
    const o1 = await OrtW1.create(ort, W1_TINY, p1, b1, 1);
    const ref1 = new NativeW1(nb, W1_TINY, p1, b1).forward();
    const got1 = await o1.forward();
    expect(maxAbs(got1.pred, ref1.pred)).to.be.below(1e-5);
    expect(maxAbs(got1.scores, ref1.scores)).to.be.below(1e-5);
    // forwardInto (what the bench times): the same numbers in the arrays each keeps, rewritten by every call
    const n1 = new NativeW1(nb, W1_TINY, p1, b1);
    for (const [m, want] of [[o1, got1], [n1, ref1]] as const) {
      const into = await m.forwardInto();
      expect(into.pred).to.deep.equal(want.pred);
      expect(into.scores).to.deep.equal(want.scores);
      into.pred.fill(NaN);
      into.scores.fill(NaN);
      const again = await m.forwardInto();
      expect(again.pred).to.equal(into.pred);
      expect(again.pred).to.deep.equal(want.pred);
      expect(again.scores).to.deep.equal(want.scores);
    }
    await o1.dispose();
    const p2 = initW2Params(W2_TINY, 5);
    const b2 = makeW2Batch(W2_TINY, 6);
    const o2 = await OrtW2Encoder.create(ort, W2_TINY, p2, b2, 1);
    expect(maxAbs(await o2.encode(), new NativeW2(nb, W2_TINY, p2, b2).encode())).to.be.below(1e-5);
    await o2.dispose();
  });
});

describe('bench peers: torch computes what native computes (when installed)', function () {
  this.timeout(120_000);

  it('W1 and W2 outputs, losses and gradients from the same parameters', async function () {
    const nb = nativeOrSkip(this);
    const found = findTorchPython(process.env);
    if ('skip' in found) skipBecause(this, found.skip);
    const { peer } = await TorchPeer.start(found.python, 1);
    try {
      const p1 = initW1Params(W1_TINY, 3);
      const b1 = makeW1Batch(W1_TINY, 4);
      const n1 = new NativeW1(nb, W1_TINY, p1, b1);
      await peer.loadW1('w1', W1_TINY, p1, b1);
      expect(maxAbs(await peer.output('w1-forward'), n1.forward().pred)).to.be.below(1e-5);
      expectSameGradients(await peer.gradients('w1-train'), n1.gradients());
      const p2 = initW2Params(W2_TINY, 5);
      const b2 = makeW2Batch(W2_TINY, 6);
      const n2 = new NativeW2(nb, W2_TINY, p2, b2);
      await peer.loadW2(W2_TINY, p2, b2);
      expect(maxAbs(await peer.output('w2-encode'), n2.encode())).to.be.below(1e-5);
      expectSameGradients(await peer.gradients('w2-train'), n2.gradients());
      const t = await peer.time('w1-forward', { minSamples: 2, maxTime: 0 });
      expect(t.samples.length).to.be.at.least(2);
    } finally {
      await peer.close();
    }
  });
});
