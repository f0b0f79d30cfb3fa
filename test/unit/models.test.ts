/**
 * The two models: full-model gradients vs finite differences, native vs cpu agreement, determinism (toy
 * sizes), thresholds, model files (round trip, tampering, truncation) and cancellation. Learning on real
 * hdfs-dev data is test/e2e/models-training.test.ts.
 */
import { expect } from 'chai';
import * as fs from 'fs';
import * as path from 'path';
import * as tf from '@tensorflow/tfjs-core';
import { probeNative, useBackend } from '../../lib/backend';
import { DeepSentryError } from '../../lib/errors';
import { collectWindows, Detector } from '../../lib/models/detector';
import { DEFAULT_TEMPERATURE, resolvePipelineConfig } from '../../lib/pipeline/config';
import { loadModelDir, saveModelDir } from '../../lib/models/files';
import { TextAutoencoder } from '../../lib/models/text';
import { fitThreshold, GAP_POSITION } from '../../lib/models/threshold';
import { checkGrads } from '../support/grad-check';
import { tempDir } from '../support/tmp';
import { skipBecause } from '../support/skip';
import { fitGpd, gpdLogLikelihood, spotCalibrate } from '../../lib/models/spot';
import { mulberry32 } from '../../lib/backend/reference';

const hasNative = probeNative().binding !== null;
const backends: Array<'native' | 'cpu'> = hasNative ? ['native', 'cpu'] : ['cpu'];

/** Worst relative error of tf.variableGrads against central differences on a few entries per variable. */

const toySeqs = [
  [3, 4, 5],
  [6, 7],
  [3, 8, 9, 4],
  [5],
].map((s) => Int32Array.from(s));
const tinyText = { vocabSize: 10, embeddingDim: 4, hiddenSize: 5, latentDim: 3, wordDropout: 0, latentNoise: 0, seed: 7 };
const toyVectors = Float32Array.from({ length: 9 * 4 }, (_, i) => Math.sin(i * 1.3) + (i % 4 === 0 ? 0.5 : 0));
const toySessions = [[2, 3, 4, 5, 2, 3], [4, 5, 6, 7], [2, 2, 3, 7, 6, 5, 4, 8]];

describe('models: gradients against finite differences (small sizes)', () => {
  before(() => useBackend('cpu'));

  for (const bidirectional of [false, true]) {
    it(`text autoencoder, ${bidirectional ? 'bidirectional' : 'unidirectional'} encoder: every parameter`, () => {
      const m = new TextAutoencoder({ ...tinyText, bidirectional });
      const err = checkGrads(() => tf.tidy(() => m.loss(toySeqs)), [...m.params.vars.values()], 1e-2, 3);
      expect(err).to.be.below(2e-2);
      m.dispose();
    });
  }

  for (const objective of ['softmax', 'regression'] as const) {
    it(`detector, ${objective} objective: every parameter`, () => {
      const d = new Detector({ vectorDim: 4, window: 4, hiddenSize: 3, objective, distance: 'euclidean', seed: 3 });
      const ctx = d.prepare(toyVectors, toySessions);
      const err = checkGrads(() => tf.tidy(() => d.loss(ctx)), [...d.params.vars.values()], 1e-2, 3);
      ctx.dispose();
      expect(err).to.be.below(2e-2);
      d.dispose();
    });
  }
});

describe('models: native and cpu backends agree on loss and gradients', function () {
  before(function () {
    if (!hasNative) skipBecause(this, `native addon not built (${probeNative().error})`);
  });
  after(() => useBackend('cpu'));

  function lossAndGrads(make: () => { vars: tf.Variable[]; loss: () => tf.Scalar; dispose: () => void }, backend: 'native' | 'cpu') {
    useBackend(backend);
    const m = make();
    const { value, grads } = tf.variableGrads(m.loss, m.vars);
    const out = { value: value.dataSync()[0], grads: m.vars.map((v) => grads[v.name].dataSync().slice()) };
    m.dispose();
    return out;
  }

  it('text autoencoder (bidirectional; its encoding through the fused encoder too) and detector', () => {
    const makers = [
      () => {
        const m = new TextAutoencoder({ ...tinyText, bidirectional: true, hiddenSize: 8, latentDim: 6 });
        return { vars: [...m.params.vars.values()], loss: () => m.loss(toySeqs), dispose: () => m.dispose() };
      },
      () => {
        const d = new Detector({ vectorDim: 4, window: 4, hiddenSize: 6, seed: 3 });
        const ctx = d.prepare(toyVectors, toySessions);
        return { vars: [...d.params.vars.values()], loss: () => d.loss(ctx), dispose: () => (ctx.dispose(), d.dispose()) };
      },
    ];
    // Encoding: the addon's fused encoder (native) and the tfjs ops (cpu) give the same vectors.
    const m = new TextAutoencoder({ ...tinyText, bidirectional: true, hiddenSize: 8, latentDim: 6 });
    const seqs = [...toySeqs, toySeqs[0]];
    useBackend('native');
    const vn = m.encode(seqs);
    useBackend('cpu');
    const vc = m.encode(seqs);
    vc.forEach((v, i) => expect(vn[i]).to.be.closeTo(v, 1e-5));
    expect(Array.from(vn.slice(4 * 6))).to.deep.equal(Array.from(vn.slice(0, 6))); // identical message, identical vector
    m.dispose();
    for (const make of makers) {
      const n = lossAndGrads(make, 'native');
      const c = lossAndGrads(make, 'cpu');
      expect(n.value).to.be.closeTo(c.value, 1e-4 * Math.max(1, Math.abs(c.value)));
      n.grads.forEach((g, i) => g.forEach((v, j) => expect(v).to.be.closeTo(c.grads[i][j], 1e-4 + 1e-3 * Math.abs(c.grads[i][j]))));
    }
  });
});

describe('models: SPOT (peaks over threshold)', () => {
  // inverse-CDF samples of GPD(γ, σ) from a seeded uniform
  const gpd = (g: number, sg: number, n: number, seed: number) => {
    const r = mulberry32(seed);
    return Array.from({ length: n }, () => {
      const u = 1 - r();
      return g === 0 ? -sg * Math.log(u) : (sg / g) * (Math.pow(u, -g) - 1);
    });
  };
  it('fitGpd recovers γ and σ by maximum likelihood (heavy, exponential and bounded tails)', () => {
    for (const [g, sg] of [[0.3, 2], [0, 1], [-0.2, 1.5]]) {
      const f = fitGpd(gpd(g, sg, 5000, 3));
      expect(f.gamma, `γ of GPD(${g}, ${sg})`).to.be.closeTo(g, 0.05);
      expect(f.sigma, `σ of GPD(${g}, ${sg})`).to.be.closeTo(sg, 0.1 * sg);
      // a maximum: nudging the parameters lowers the likelihood
      const ys = gpd(g, sg, 5000, 3);
      for (const [dg, ds] of [[0.01, 0], [-0.01, 0], [0, 0.01], [0, -0.01]]) expect(gpdLogLikelihood(ys, f.gamma + dg, f.sigma * (1 + ds))).to.be.below(f.logLikelihood);
    }
    expect(() => fitGpd([1, 0, 2])).to.throw(DeepSentryError, /peak 1/);
  });
  it('spot: the risk-q quantile of exponential scores is near −ln q; fitThreshold keeps the fit', () => {
    const xs = gpd(0, 1, 20000, 4);
    const st = spotCalibrate(xs, 1e-3, 0.98);
    expect(st.peaks.length).to.equal(399);
    expect(st.z).to.be.closeTo(-Math.log(1e-3), 0.35);
    const th = fitThreshold(xs, { method: 'spot', risk: 1e-3, level: 0.98 });
    expect(th.value).to.equal(st.z);
    expect(th.spot?.gamma).to.equal(st.gamma);
    expect(th.warning).to.equal(undefined);
    // too few peaks: the largest score, with a warning
    const few = fitThreshold([1, 2, 3, 4, 5, 6], { method: 'spot', risk: 1e-3, level: 0.9 });
    expect(few.value).to.equal(6);
    expect(few.warning).to.match(/above the SPOT level/);
    expect(() => fitThreshold(xs, { method: 'spot', risk: 0, level: 0.9 })).to.throw(DeepSentryError, /risk/);
  });
});

describe('models: determinism, thresholds, files, cancellation', () => {
  before(() => useBackend('cpu'));
  let tmp: string;
  beforeEach(() => (tmp = tempDir('models')));
  afterEach(() => fs.rmSync(tmp, { recursive: true, force: true }));

  for (const backend of backends) {
    it(`same seed → bit-identical weights (${backend})`, async () => {
      useBackend(backend);
      const run = async (seed: number) => {
        const m = new TextAutoencoder({ ...tinyText, wordDropout: 0.3, latentNoise: 0.1, seed });
        await m.fit(toySeqs, { epochs: 3, batchSize: 2, seed });
        const d = new Detector({ vectorDim: 4, window: 4, hiddenSize: 3, seed });
        await d.fit(toyVectors, toySessions, { epochs: 2, batchSize: 4, validationSplit: 0.2, seed });
        const w = [...m.weights(), ...d.weights()];
        m.dispose();
        d.dispose();
        return w;
      };
      const a = await run(11);
      const b = await run(11);
      const c = await run(12);
      a.forEach((w, i) => expect(Buffer.from(w.values.buffer).equals(Buffer.from(b[i].values.buffer)), w.name).to.equal(true));
      expect(a.some((w, i) => !Buffer.from(w.values.buffer).equals(Buffer.from(c[i].values.buffer)))).to.equal(true);
      useBackend('cpu');
    });
  }

  it('detector temperature: T = 1 scores as without it, rank does not change, nll tends to ln K; fitTemperature finds the minimum of the mean nll', async () => {
    const d = new Detector({ vectorDim: 4, window: 4, hiddenSize: 3, seed: 5 });
    await d.fit(toyVectors, toySessions, { epochs: 8, batchSize: 4, validationSplit: 0, seed: 5 });
    const ws = collectWindows(toySessions, 4);
    const n = ws.counts.length;
    const at = (t: number | undefined) => {
      (d.config as { temperature?: number }).temperature = t;
      return d.scoreWindows(toyVectors, ws.ids, n);
    };
    const plain = at(undefined);
    const one = at(1);
    expect(Array.from(one.surprise)).to.deep.equal(Array.from(plain.surprise));
    const hot = at(3);
    expect(Array.from(hot.rank)).to.deep.equal(Array.from(plain.rank));
    expect(Array.from(hot.nll)).to.not.deep.equal(Array.from(plain.nll));
    // every target of these windows is known: a flat softmax gives each of the K known messages 1/K
    const K = d.known.length / d.featureDim;
    for (const v of at(1e7).nll) expect(v).to.be.closeTo(Math.log(K), 1e-4);
    const meanNll = (t: number) => {
      const s = at(t).nll;
      let sum = 0;
      let c = 0;
      for (let i = 0; i < n; i++) (sum += ws.counts[i] * s[i]), (c += ws.counts[i]);
      return sum / c;
    };
    const T = d.fitTemperature(toyVectors, toySessions);
    expect(T).to.be.within(0.25, 16);
    const best = meanNll(T);
    for (const f of [0.8, 0.95, 1.05, 1.25]) expect(meanNll(T * f), `T × ${f}`).to.be.at.least(best - 1e-5);
    d.dispose();
  });

  it('a temperature that is not a positive number is refused, in the detector and in the configuration', () => {
    for (const t of [0, -1, Number.NaN, Number.POSITIVE_INFINITY]) {
      expect(() => new Detector({ vectorDim: 4, window: 4, hiddenSize: 3, temperature: t }), String(t)).to.throw(DeepSentryError, /temperature/);
      expect(() => resolvePipelineConfig({ detector: { model: { temperature: t } } }), String(t)).to.throw(DeepSentryError, /detector\.model\.temperature/);
    }
    expect(resolvePipelineConfig({}).detector.model.temperature).to.equal(DEFAULT_TEMPERATURE);
  });

  it('thresholds: percentile, mean + kσ, median + k·MAD', () => {
    const s = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10];
    expect(fitThreshold(s, { method: 'percentile', percentile: 50 }).value).to.be.closeTo(5.5, 1e-12);
    expect(fitThreshold(s, { method: 'percentile', percentile: 90 }).value).to.be.closeTo(9.1, 1e-12);
    expect(fitThreshold(s, { method: 'mean-std', k: 2 }).value).to.be.closeTo(5.5 + 2 * Math.sqrt(8.25), 1e-12);
    expect(fitThreshold(s, { method: 'mad', k: 3 }).value).to.be.closeTo(5.5 + 3 * 1.4826 * 2.5, 1e-9);
    expect(() => fitThreshold([], { method: 'percentile', percentile: 99 })).to.throw(DeepSentryError, /zero scores/);
    expect(() => fitThreshold([1, NaN], { method: 'mad', k: 3 })).to.throw(DeepSentryError, /not finite/);
    // fewer than MIN_THRESHOLD_SCORES held-back scores: the fit says so
    expect(fitThreshold(s, { method: 'mean-std', k: 3 }).warning).to.match(/fitted on 10 held-back sessions/);
    expect(fitThreshold(Array.from({ length: 300 }, (_, i) => i), { method: 'mean-std', k: 3 }).warning).to.equal(undefined);
  });

  it('thresholds: the gap lift goes a third of the way into the widest band of the held-back tail, and only into a real one', () => {
    const rnd = mulberry32(11);
    const normal = (m: number, s: number) => m + s * Math.sqrt(-2 * Math.log(1 - rnd())) * Math.cos(2 * Math.PI * rnd());
    // a bulk, a group of normal sessions in its tail (a message whose rate changed) and the anomalies, as in
    // hdfs-dev's held-back scores: mean + 2σ lands below the group, the lift above it
    const bulk = Array.from({ length: 500 }, () => normal(5, 1));
    const group = Array.from({ length: 12 }, () => 10.5 + 0.05 * rnd());
    const anomalies = Array.from({ length: 15 }, () => 16 + 2 * rnd());
    const held = [...bulk, ...group, ...anomalies];
    const plain = fitThreshold(held, { method: 'mean-std', k: 2 });
    const lifted = fitThreshold(held, { method: 'mean-std', k: 2, gap: true });
    expect(plain.value).to.be.below(10.5);
    expect(plain.gap).to.equal(undefined);
    expect(lifted.gap?.lower).to.equal(Math.max(...group));
    expect(lifted.gap?.upper).to.equal(Math.min(...anomalies));
    expect(lifted.gap?.above).to.equal(15);
    expect(lifted.gap?.base).to.equal(plain.value);
    expect(GAP_POSITION).to.equal(1 / 3);
    expect(lifted.value).to.equal(Math.max(...group) + (Math.min(...anomalies) - Math.max(...group)) / 3);
    // the same data under any method: the lift never lowers a value
    for (const spec of [{ method: 'percentile', percentile: 99.9 }, { method: 'mad', k: 3 }, { method: 'spot', risk: 1e-3, level: 0.9 }] as const) {
      const base = fitThreshold(held, spec).value;
      expect(fitThreshold(held, { ...spec, gap: true }).value, spec.method).to.equal(Math.max(base, lifted.value));
    }
    // no lift: a tail without a separate group, one or two extreme scores alone, a band narrower than 2σ
    const smooth = Array.from({ length: 400 }, (_, i) => i / 40);
    expect(fitThreshold(smooth, { method: 'mean-std', k: 3, gap: true }).gap).to.equal(undefined);
    const twoFar = [...bulk, 40, 41];
    expect(fitThreshold(twoFar, { method: 'mean-std', k: 1, gap: true }).gap).to.equal(undefined);
    const narrow = [...bulk, ...Array.from({ length: 10 }, (_, i) => 10 + i * 0.1)];
    expect(fitThreshold(narrow, { method: 'mean-std', k: 0, gap: true }).gap).to.equal(undefined);
    // random held-back sets against a brute-force search over every pair of scores with none between them
    for (let t = 0; t < 200; t++) {
      const n = 20 + Math.floor(rnd() * 300);
      const xs = Array.from({ length: n }, () => (rnd() < 0.05 ? normal(14, 2) : normal(5, 1 + rnd())));
      const k = rnd() * 4;
      const f = fitThreshold(xs, { method: 'mean-std', k, gap: true });
      const base = fitThreshold(xs, { method: 'mean-std', k }).value;
      const sorted = [...xs].sort((a, b) => a - b);
      const from = sorted[Math.floor(0.9 * n)];
      const std = f.stats.std;
      let best: { lower: number; upper: number; above: number } | null = null;
      for (const lo of xs) {
        for (const hi of xs) {
          if (!(hi > lo) || lo < from || xs.some((x) => x > lo && x < hi)) continue;
          const above = xs.filter((x) => x >= hi).length;
          if (above < 3 || hi - lo < 2 * std) continue;
          if (best === null || hi - lo > best.upper - best.lower) best = { lower: lo, upper: hi, above };
        }
      }
      const at = (b: { lower: number; upper: number }) => b.lower + (b.upper - b.lower) / 3;
      const want = best !== null && at(best) > base ? best : null;
      expect(f.gap === undefined ? null : { lower: f.gap.lower, upper: f.gap.upper, above: f.gap.above }, `set ${t}`).to.deep.equal(want);
      expect(f.value, `set ${t}`).to.be.closeTo(want === null ? base : at(want), 1e-12);
    }

  });

  it('a model directory round-trips and a reloaded model scores exactly as before', async () => {
    const m = new TextAutoencoder({ ...tinyText, seed: 3 });
    await m.fit(toySeqs, { epochs: 2 });
    const d = new Detector({ vectorDim: 3, window: 4, hiddenSize: 4, seed: 3 });
    const vec = new Float32Array(9 * 3);
    vec.set(m.encode(toySeqs.concat(toySeqs.slice(0, 3)).slice(0, 7)), 2 * 3);
    await d.fit(vec, toySessions, { epochs: 2 });
    const before = d.scoreSessions(vec, toySessions).sessionScores;
    const dir = path.join(tmp, 'model');
    const config = { text: m.config, detector: d.config };
    await saveModelDir(dir, { config, vocabulary: { tokens: [] }, thresholds: { session: 1.5 }, metrics: {}, dataHash: 'abc' }, [...m.weights(), ...d.weights()]);
    const { json, weights } = await loadModelDir(dir);
    expect(json.thresholds).to.deep.equal({ session: 1.5 });
    const m2 = TextAutoencoder.fromWeights((json.config as typeof config).text, weights);
    const d2 = Detector.fromWeights((json.config as typeof config).detector, weights);
    expect(Array.from(m2.encode(toySeqs))).to.deep.equal(Array.from(m.encode(toySeqs)));
    expect(Array.from(d2.scoreSessions(vec, toySessions).sessionScores)).to.deep.equal(Array.from(before));
    // Saving again replaces the directory atomically and leaves no temporary directories behind.
    await saveModelDir(dir, { config, vocabulary: {}, thresholds: {}, metrics: {}, dataHash: 'def' }, [...m.weights(), ...d.weights()]);
    expect(fs.readdirSync(tmp)).to.deep.equal(['model']);
    for (const x of [m, m2, d, d2]) x.dispose();
  });

  it('a truncated, tampered, missing or foreign model file is a DS_MODEL error naming the file', async () => {
    const w = [{ name: 'x', shape: [2, 3], values: Float32Array.from([1, 2, 3, 4, 5, 6]) }];
    const dir = path.join(tmp, 'm');
    const expectModelError = async (pattern: RegExp) => {
      try {
        await loadModelDir(dir);
      } catch (e) {
        expect((e as DeepSentryError).code).to.equal('DS_MODEL');
        expect((e as Error).message).to.match(pattern);
        return;
      }
      expect.fail('expected DS_MODEL');
    };
    await saveModelDir(dir, { config: {}, vocabulary: {}, thresholds: { t: 1 }, metrics: {}, dataHash: 'h' }, w);
    expect((await loadModelDir(dir)).weights[0].values).to.deep.equal(w[0].values);
    const shard = path.join(dir, 'group1-shard1of1.bin');
    const good = fs.readFileSync(shard);
    fs.writeFileSync(shard, good.subarray(0, 20));
    await expectModelError(/group1-shard1of1\.bin.*(truncated|corrupt)/);
    const flipped = Buffer.from(good);
    flipped[3] ^= 1;
    fs.writeFileSync(shard, flipped);
    await expectModelError(/group1-shard1of1\.bin/);
    fs.writeFileSync(shard, good);
    const jsonPath = path.join(dir, 'model.json');
    const text = fs.readFileSync(jsonPath, 'utf8');
    fs.writeFileSync(jsonPath, text.replace('"t": 1', '"t": 2'));
    await expectModelError(/model\.json.*modified/);
    fs.writeFileSync(jsonPath, text.slice(0, text.length / 2));
    await expectModelError(/model\.json.*not valid JSON/);
    fs.writeFileSync(jsonPath, JSON.stringify({ format: 'something-else' }));
    await expectModelError(/not a DeepSentry model/);
    fs.rmSync(jsonPath);
    await expectModelError(/model\.json.*not found/);
  });

  it('training is cancellable through an AbortSignal (DS_CANCELLED)', async () => {
    const m = new TextAutoencoder({ ...tinyText });
    const ac = new AbortController();
    let steps = 0;
    try {
      await m.fit(toySeqs, {
        epochs: 100,
        batchSize: 1,
        signal: ac.signal,
        onProgress: (p) => {
          steps++;
          expect(p.model).to.equal('text');
          expect(p.itemsPerSecond).to.be.greaterThan(0);
          if (steps === 3) ac.abort();
        },
      });
      expect.fail('expected cancellation');
    } catch (e) {
      expect((e as DeepSentryError).code).to.equal('DS_CANCELLED');
    }
    expect(steps).to.equal(3);
    m.dispose();
  });

  it('bad arguments are DeepSentryErrors naming them', async () => {
    expect(() => new TextAutoencoder({ vocabSize: 2 })).to.throw(DeepSentryError, /vocabSize/);
    expect(() => new Detector({ vectorDim: 4, window: 1 })).to.throw(DeepSentryError, /window/);
    expect(() => new Detector({ vectorDim: 4, distance: 'l7' as never })).to.throw(DeepSentryError, /distance/);
    const m = new TextAutoencoder({ ...tinyText });
    expect(() => m.encode([Int32Array.from([3, 99])])).to.throw(DeepSentryError, /token id 99 at position 1 of sequence 0/);
    let err: unknown = null;
    await m.fit(toySeqs, { epochs: 0 }).catch((e) => (err = e));
    expect((err as DeepSentryError).message).to.match(/epochs/);
    const d = new Detector({ vectorDim: 4, window: 3 });
    expect(() => d.prepare(toyVectors, [[2, 3, 40]])).to.throw(DeepSentryError, /message id 40/);
    m.dispose();
    d.dispose();
  });
});

describe('models: Detector.predict through the addon (native) and through tfjs ops (cpu)', function () {
  before(function () {
    if (!hasNative) skipBecause(this, `native addon not built (${probeNative().error})`);
  });
  after(() => useBackend('cpu'));

  /** A detector with every weight seeded-random (biases included), a vector table and random windows. */
  function problem(seed: number, D: number, W: number, H: number, count: number) {
    const rand = mulberry32(seed);
    const d = new Detector({ vectorDim: D, window: W, hiddenSize: H, seed });
    randomizeWeights(d, rand);
    const rows = 6;
    const vectors = Float32Array.from({ length: rows * D }, () => rand() * 2 - 1);
    const windows = Int32Array.from({ length: count * W }, () => Math.floor(rand() * rows));
    return { d, vectors, windows };
  }
  function randomizeWeights(d: Detector, rand: () => number): void {
    d.params.restore(d.params.snapshot().map((w) => ({ ...w, values: Float32Array.from(w.values, () => rand() - 0.5) })));
  }
  /** predict on `backend`, with the names of the tfjs kernels it ran. */
  async function predictOn(backend: 'native' | 'cpu', p: ReturnType<typeof problem>, count: number, batchSize: number, precision: 'fp32' | 'bf16' = 'fp32') {
    useBackend(backend, { precision });
    const info = await tf.profile(() => {
      p.d.predict(p.vectors, p.windows, count, batchSize);
    });
    return { pred: p.d.predict(p.vectors, p.windows, count, batchSize), kernels: info.kernelNames };
  }
  const near = (a: Float32Array, b: Float32Array, tol: number) => {
    expect(a.length).to.equal(b.length);
    a.forEach((v, i) => expect(v, `entry ${i}`).to.be.closeTo(b[i], tol * (1 + Math.abs(b[i]))));
  };

  // [vectorDim, window, hidden, windows, batch size]: batch 1, one window, a last partial batch, the product's W and H
  const shapes: Array<[number, number, number, number, number]> = [
    [4, 2, 3, 1, 1],
    [5, 4, 6, 37, 8],
    [3, 3, 5, 9, 1],
    [32, 10, 64, 300, 128],
  ];
  for (const [D, W, H, count, batchSize] of shapes) {
    it(`vectorDim ${D}, window ${W}, hidden ${H}, ${count} windows in batches of ${batchSize}: the same predictions (fp32)`, async () => {
      const p = problem(D * 100 + W * 10 + H, D, W, H, count);
      const n = await predictOn('native', p, count, batchSize);
      const c = await predictOn('cpu', p, count, batchSize);
      // the native backend runs no tfjs kernel (one BiLstmDense call per batch); cpu runs the tfjs ops
      expect(n.kernels).to.deep.equal([]);
      expect(c.kernels).to.include('DsFusedBiLstm');
      near(n.pred, c.pred, 1e-5);
      p.d.dispose();
    });
  }

  it('a batch size that is not a positive integer is refused on both paths (it used to loop forever)', () => {
    const p = problem(5, 4, 3, 4, 3);
    for (const backend of ['native', 'cpu'] as const) {
      useBackend(backend);
      for (const bad of [0, -1, 1.5, NaN]) {
        expect(() => p.d.predict(p.vectors, p.windows, 3, bad), `${backend} ${bad}`).to.throw(DeepSentryError, /predict: expected a positive integer batch size/);
      }
    }
    p.d.dispose();
  });

  it('follows every write of the weights (restore, training) and the precision tier at call time', async () => {
    const p = problem(11, 6, 5, 8, 40);
    const first = await predictOn('native', p, 40, 16);
    randomizeWeights(p.d, mulberry32(12)); // restore: the addon's copy must be rebuilt
    const restored = await predictOn('native', p, 40, 16);
    near(restored.pred, (await predictOn('cpu', p, 40, 16)).pred, 1e-5);
    expect(Math.max(...restored.pred.map((v, i) => Math.abs(v - first.pred[i])))).to.be.above(1e-3);
    const sessions = [Array.from(p.windows.subarray(0, 20)).map((id) => Math.max(2, id))];
    useBackend('native');
    await p.d.fit(p.vectors, sessions, { epochs: 2, batchSize: 8, validationSplit: 0 }); // training steps write the weights
    const trained = await predictOn('native', p, 40, 16);
    near(trained.pred, (await predictOn('cpu', p, 40, 16)).pred, 1e-5);
    expect(Math.max(...trained.pred.map((v, i) => Math.abs(v - restored.pred[i])))).to.be.above(1e-4);
    // the same object, the bf16 tier: close to fp32 but not equal (its products round their operands to bf16)
    const bf16 = await predictOn('native', p, 40, 16, 'bf16');
    expect(bf16.kernels).to.deep.equal([]);
    near(bf16.pred, trained.pred, 3e-2);
    expect(bf16.pred.some((v, i) => v !== trained.pred[i])).to.equal(true);
    p.d.dispose();
  });
});
