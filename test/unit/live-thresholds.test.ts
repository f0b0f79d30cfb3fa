import { expect } from 'chai';
import { DeepSentryError } from '../../lib/errors';
import { mulberry32 } from '../../lib/backend/reference';
import { LiveThreshold } from '../../lib/live/thresholds';
import { spotCalibrate } from '../../lib/models/spot';

describe('live thresholds', () => {
  it('fixed: the saved threshold, nothing else', () => {
    const t = new LiveThreshold({ mode: 'fixed', floor: 2.5 });
    expect(t.observe(100)).to.equal(2.5);
    expect(t.observe(0)).to.equal(2.5);
    expect(t.warmingUp).to.equal(false);
  });

  it('fixed without a saved threshold is a DS_CONFIG error', () => {
    expect(() => new LiveThreshold({ mode: 'fixed' })).to.throw(DeepSentryError).with.property('code', 'DS_CONFIG');
  });

  it('rejects bad parameters by name', () => {
    expect(() => new LiveThreshold({ mode: 'rolling', window: 1 })).to.throw(/threshold window/);
    expect(() => new LiveThreshold({ mode: 'ewma', alpha: 0 })).to.throw(/threshold alpha/);
    expect(() => new LiveThreshold({ mode: 'rolling', k: -1 })).to.throw(/threshold k/);
    expect(() => new LiveThreshold({ mode: 'nope' as 'fixed' })).to.throw(/threshold mode/);
  });

  it('rolling: mean + k·sigma of exactly the last `window` scores (brute force), after warm-up', () => {
    const W = 50;
    const t = new LiveThreshold({ mode: 'rolling', window: W, k: 2, warmup: 20 });
    const r = mulberry32(7);
    const seen: number[] = [];
    for (let i = 0; i < 400; i++) {
      const x = r() * 10 + (i > 200 ? 5 : 0); // a level shift the window must follow
      const thr = t.current();
      if (i < 20) expect(thr).to.equal(Infinity);
      else {
        const win = seen.slice(-W);
        const m = win.reduce((a, b) => a + b, 0) / win.length;
        const sd = Math.sqrt(win.reduce((a, b) => a + (b - m) ** 2, 0) / win.length);
        expect(thr).to.be.closeTo(m + 2 * sd, 1e-9);
      }
      expect(t.observe(x)).to.equal(thr);
      seen.push(x);
    }
  });

  it('the floor holds under an adaptive threshold, and applies alone during warm-up', () => {
    const t = new LiveThreshold({ mode: 'rolling', window: 10, k: 1, floor: 100 });
    expect(t.current()).to.equal(100);
    for (let i = 0; i < 30; i++) t.observe(1);
    expect(t.current()).to.equal(100);
    for (let i = 0; i < 30; i++) t.observe(1000 + i);
    expect(t.current()).to.be.greaterThan(1000);
  });

  it('ewma: matches the recurrence, warm-up defaults to 2/alpha', () => {
    const alpha = 0.1;
    const t = new LiveThreshold({ mode: 'ewma', alpha, k: 3 });
    expect(t.warmup).to.equal(20);
    const r = mulberry32(3);
    let m = 0;
    let v = 0;
    for (let i = 0; i < 200; i++) {
      const x = r();
      const thr = t.observe(x);
      if (i >= 20) expect(thr).to.be.closeTo(m + 3 * Math.sqrt(v), 1e-12);
      if (i === 0) {
        m = x;
        v = 0;
      } else {
        const d = x - m;
        m += alpha * d;
        v = (1 - alpha) * (v + alpha * d * d);
      }
    }
  });

  it('dspot: starts from the saved SPOT fit (threshold = drift mean + z − mean), flags above it, and refits on peaks', () => {
    const r = mulberry32(5);
    const calib = Array.from({ length: 2000 }, () => -Math.log(r()));
    const state = spotCalibrate(calib, 1e-3, 0.98);
    const mean = calib.reduce((a, b) => a + b, 0) / calib.length;
    const t = new LiveThreshold({ mode: 'dspot', spot: { state, mean }, depth: 10 });
    expect(t.warmingUp).to.equal(false);
    expect(t.current()).to.be.closeTo(state.z, 1e-9); // drift window filled with the calibration mean
    expect(t.risk).to.equal(1e-3);
    expect(t.level).to.equal(0.98);
    // an extreme score is flagged and learnt by nothing: the threshold does not move
    const before = t.current();
    expect(100 > t.observe(100)).to.equal(true);
    expect(t.current()).to.equal(before);
    // a level shift of the stream moves the threshold with it (the drift mean follows normal scores)
    for (let i = 0; i < 500; i++) t.observe(5 - Math.log(r()));
    expect(t.current()).to.be.within(state.z + 3, state.z + 7);
  });

  it('dspot without a saved fit warms up on `warmup` scores, then calibrates', () => {
    const r = mulberry32(9);
    const t = new LiveThreshold({ mode: 'dspot', warmup: 500, risk: 1e-3, level: 0.95, floor: 0 });
    for (let i = 0; i < 499; i++) t.observe(-Math.log(r()));
    expect(t.warmingUp).to.equal(true);
    expect(t.current()).to.equal(0);
    t.observe(-Math.log(r()));
    expect(t.warmingUp).to.equal(false);
    // exponential scores minus a running mean of ~1: the 1e-3 tail quantile is near ln(1000) − 1 above the mean
    expect(t.current()).to.be.within(4.5, 9.5);
    expect(() => new LiveThreshold({ mode: 'dspot', risk: 2 })).to.throw(/threshold risk/);
  });

  for (const mode of ['rolling', 'ewma', 'dspot'] as const) {
    it(`${mode}: snapshot/restore continues exactly as the uninterrupted threshold`, () => {
      const a = new LiveThreshold({ mode, window: 37, alpha: 0.05, warmup: 60, level: 0.9 });
      const r = mulberry32(11);
      const xs = Array.from({ length: 300 }, () => r() * 4);
      for (const x of xs.slice(0, 123)) a.observe(x);
      const b = new LiveThreshold({ mode, window: 37, alpha: 0.05, warmup: 60, level: 0.9 });
      b.restore(JSON.parse(JSON.stringify(a.snapshot())));
      for (const x of xs.slice(123)) expect(b.observe(x)).to.equal(a.observe(x)); // bit-exact: alerts must not differ
    });
  }

  it('restoring a snapshot of another mode is a DS_CONFIG error', () => {
    const a = new LiveThreshold({ mode: 'ewma' });
    const b = new LiveThreshold({ mode: 'rolling' });
    expect(() => b.restore(a.snapshot())).to.throw(DeepSentryError).with.property('code', 'DS_CONFIG');
  });

  it('a NaN score is judged but never folded into the statistics', () => {
    const t = new LiveThreshold({ mode: 'rolling', window: 5, warmup: 2 });
    t.observe(1);
    t.observe(3);
    const before = t.current();
    t.observe(NaN);
    expect(t.current()).to.equal(before);
  });
});
