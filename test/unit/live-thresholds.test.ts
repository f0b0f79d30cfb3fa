import { expect } from 'chai';
import { DeepSentryError } from '../../lib/errors';
import { mulberry32 } from '../../lib/backend/reference';
import { LiveThreshold } from '../../lib/live/thresholds';

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

  for (const mode of ['rolling', 'ewma'] as const) {
    it(`${mode}: snapshot/restore continues exactly as the uninterrupted threshold`, () => {
      const a = new LiveThreshold({ mode, window: 37, alpha: 0.05 });
      const r = mulberry32(11);
      const xs = Array.from({ length: 300 }, () => r() * 4);
      for (const x of xs.slice(0, 123)) a.observe(x);
      const b = new LiveThreshold({ mode, window: 37, alpha: 0.05 });
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
