import { expect } from 'chai';
import { mulberry32 } from '../../lib/backend/reference';
import {
  averagePrecision,
  bestF1Threshold,
  confusionAt,
  confusionOf,
  fBetaScore,
  prCurve,
  rates,
  rocAuc,
  rocCurve,
  sweep,
} from '../../lib/eval/metrics';
import { bruteAp, bruteAuc, bruteConfusion } from '../support/brute-metrics';

function randomCase(seed: number) {
  const rnd = mulberry32(seed);
  const n = 2 + Math.floor(rnd() * 300);
  // few distinct levels → many ties; a shift for anomalies so AUC is not ~0.5 only
  const levels = 1 + Math.floor(rnd() * 12);
  const scores: number[] = [];
  const labels: number[] = [];
  for (let i = 0; i < n; i++) {
    const y = rnd() < 0.2 ? 1 : 0;
    const base = rnd() < 0.5 ? Math.floor(rnd() * levels) / levels : rnd();
    scores.push(base + (y ? 0.3 * rnd() : 0) - 0.5); // negative scores too
    labels.push(y);
  }
  if (!labels.includes(1)) labels[0] = 1;
  if (!labels.includes(0)) labels[n - 1] = 0;
  return { scores, labels };
}

describe('eval metrics', () => {
  it('matches scikit-learn on its documented examples', () => {
    // sklearn docs: roc_auc_score([0,0,1,1],[0.1,0.4,0.35,0.8]) = 0.75; average_precision_score = 0.8333…
    const s = sweep([0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1]);
    expect(rocAuc(s)).to.be.closeTo(0.75, 1e-12);
    expect(averagePrecision(s)).to.be.closeTo(0.8333333333333333, 1e-12);
  });

  it('ROC-AUC and AP equal brute-force definitions on 200 random cases with ties', () => {
    for (let seed = 1; seed <= 200; seed++) {
      const { scores, labels } = randomCase(seed);
      const s = sweep(scores, labels);
      expect(rocAuc(s), `seed ${seed} AUC`).to.be.closeTo(bruteAuc(scores, labels), 1e-12);
      expect(averagePrecision(s), `seed ${seed} AP`).to.be.closeTo(bruteAp(scores, labels), 1e-12);
    }
  });

  it('all tied scores: AUC 0.5 and AP = the anomaly rate (everything switches together)', () => {
    const s = sweep([3, 3, 3, 3, 3], [1, 0, 0, 1, 0]);
    expect(s.thresholds.length).to.equal(1);
    expect(rocAuc(s)).to.equal(0.5);
    expect(averagePrecision(s)).to.be.closeTo(0.4, 1e-15);
    expect(confusionAt(s, 3)).to.deep.equal({ tp: 2, fp: 3, tn: 0, fn: 0 });
    expect(confusionAt(s, 3.0000001)).to.deep.equal({ tp: 0, fp: 0, tn: 3, fn: 2 });
  });

  it('confusion at any threshold equals a brute-force count, including between and beyond scores', () => {
    for (let seed = 1; seed <= 50; seed++) {
      const { scores, labels } = randomCase(seed);
      const s = sweep(scores, labels);
      const rnd = mulberry32(seed + 1000);
      const probes = [...scores, -Infinity, Infinity, ...Array.from({ length: 20 }, () => rnd() * 2 - 1)];
      for (const t of probes) expect(confusionAt(s, t), `seed ${seed} t ${t}`).to.deep.equal(bruteConfusion(scores.map((x) => x >= t), labels));
    }
  });

  it('sweeps the real score range: fractional scores in a tiny range are not truncated or binned', () => {
    const scores = [1e-9, 2e-9, 3e-9, 4e-9, 1.5e-9];
    const labels = [0, 0, 1, 1, 0];
    const s = sweep(scores, labels);
    expect(Array.from(s.thresholds)).to.deep.equal([4e-9, 3e-9, 2e-9, 1.5e-9, 1e-9]);
    expect(rocAuc(s)).to.equal(1);
    const best = bestF1Threshold(s)!;
    expect(best.threshold).to.equal(3e-9);
    expect(best.confusion).to.deep.equal({ tp: 2, fp: 0, tn: 3, fn: 0 });
  });

  it('best F1 threshold equals the brute-force maximum over all distinct scores', () => {
    for (let seed = 1; seed <= 50; seed++) {
      const { scores, labels } = randomCase(seed);
      const s = sweep(scores, labels);
      let bestF1 = -1;
      let bestT = NaN;
      for (const t of [...new Set(scores)].sort((a, b) => b - a)) {
        const r = rates(bruteConfusion(scores.map((x) => x >= t), labels), 1);
        if (r.f1 > bestF1) {
          bestF1 = r.f1;
          bestT = t;
        }
      }
      const b = bestF1Threshold(s)!;
      expect(b.threshold, `seed ${seed}`).to.equal(bestT);
      expect(rates(b.confusion, 1).f1).to.be.closeTo(bestF1, 1e-12);
    }
  });

  it('rates: TPR is recall, zero division gives 0, F-beta weights recall', () => {
    const r = rates({ tp: 3, fp: 1, tn: 5, fn: 3 }, 2);
    expect(r.precision).to.equal(0.75);
    expect(r.recall).to.equal(0.5);
    expect(r.f1).to.be.closeTo(0.6, 1e-15);
    expect(r.fBeta).to.be.closeTo((5 * 0.75 * 0.5) / (4 * 0.75 + 0.5), 1e-15);
    expect(r.fpr).to.be.closeTo(1 / 6, 1e-15);
    expect(rates({ tp: 0, fp: 0, tn: 4, fn: 2 }, 1)).to.include({ precision: 0, recall: 0, f1: 0 });
    expect(fBetaScore(0, 0, 1)).to.equal(0);
    expect(() => rates({ tp: 0, fp: 0, tn: 0, fn: 0 }, 0)).to.throw(/beta/);
  });

  it('curves: ROC starts at (0,0) and ends at (1,1); TPR equals the PR recall', () => {
    const { scores, labels } = randomCase(7);
    const s = sweep(scores, labels);
    const roc = rocCurve(s);
    const pr = prCurve(s);
    expect([roc.fpr[0], roc.tpr[0]]).to.deep.equal([0, 0]);
    expect([roc.fpr[roc.fpr.length - 1], roc.tpr[roc.tpr.length - 1]]).to.deep.equal([1, 1]);
    expect(Array.from(roc.tpr.subarray(1))).to.deep.equal(Array.from(pr.recall));
  });

  it('undefined metrics are null, not NaN, with one class only', () => {
    const s = sweep([1, 2, 3], [0, 0, 0]);
    expect(rocAuc(s)).to.equal(null);
    expect(averagePrecision(s)).to.equal(null);
    expect(bestF1Threshold(s)).to.equal(null);
    expect(rocAuc(sweep([1, 2], [1, 1]))).to.equal(null);
  });

  it('rejects NaN scores and mismatched lengths with a clear error', () => {
    expect(() => sweep([1, NaN], [0, 1], 'session level')).to.throw(/session level: score 1 is NaN/);
    expect(() => sweep([1, 2], [0])).to.throw(/2 scores but 1 labels/);
    expect(() => confusionOf([1], [1, 0])).to.throw(/1 predictions but 2 labels/);
  });

  it('handles infinite scores (e.g. a never-seen message) in the ranking', () => {
    const s = sweep([Infinity, 1, 2, Infinity], [1, 0, 0, 1]);
    expect(rocAuc(s)).to.equal(1);
    expect(confusionAt(s, Infinity)).to.deep.equal({ tp: 2, fp: 0, tn: 2, fn: 0 });
  });
});
