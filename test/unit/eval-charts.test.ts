import { expect } from 'chai';
import { mulberry32 } from '../../lib/backend/reference';
import { fmtNum, niceTicks } from '../../lib/eval/charts';
import { prChartSvg, rocChartSvg, rocCurve, scoreDistributionSvg, sweep } from '../../lib/eval';

function points(svg: string): [number, number][] {
  const m = /class="ds-curve" points="([^"]+)"/.exec(svg);
  if (!m) throw new Error('no curve');
  return m[1]!.split(' ').map((p) => p.split(',').map(Number) as [number, number]);
}

function continuousCase(n: number, seed: number) {
  const rnd = mulberry32(seed);
  const scores = new Float64Array(n);
  const labels = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    labels[i] = rnd() < 0.03 ? 1 : 0;
    // log-normal-ish scores spanning several orders of magnitude, anomalies higher
    scores[i] = Math.exp(4 * (rnd() + rnd() + rnd() - 1.5) + (labels[i] ? 3 : 0));
  }
  return { scores, labels };
}

describe('eval charts', () => {
  it('thins a 200k-point ROC curve to points ≥ 0.5 px apart, keeping both ends, each kept point a real curve point', () => {
    const { scores, labels } = continuousCase(200000, 3);
    const s = sweep(scores, labels);
    expect(s.thresholds.length).to.be.greaterThan(190000);
    const svg = rocChartSvg(s, 0.9, 'line');
    const pts = points(svg);
    expect(pts.length).to.be.within(50, 3000);
    expect(svg.length).to.be.below(60000);
    // plot area: x 64..502, y 44..328 (0,0) bottom-left, (1,1) top-right
    expect(pts[0]).to.deep.equal([64, 328]);
    expect(pts[pts.length - 1]).to.deep.equal([502, 44]);
    const c = rocCurve(s);
    const onCurve = new Set<string>();
    for (let k = 0; k < c.fpr.length; k++) onCurve.add(`${Math.round((64 + c.fpr[k]! * 438) * 10) / 10},${Math.round((328 - c.tpr[k]! * 284) * 10) / 10}`);
    for (const p of pts) expect(onCurve.has(`${p[0]},${p[1]}`), `${p}`).to.equal(true);
  });

  it('PR curve is drawn as steps from recall 0 to 1', () => {
    const s = sweep([0.9, 0.8, 0.7, 0.6], [1, 0, 1, 0]);
    const pts = points(prChartSvg(s, 0.8333, 'session'));
    // precision 1 over recall 0..0.5, then precision 2/3 over 0.5..1 (the AP steps), then the tail at 0.5
    expect(pts[0]).to.deep.equal([64, 44]);
    expect(pts).to.deep.include([283, 44]);
    expect(pts).to.deep.include([502, Math.round((328 - (2 / 3) * 284) * 10) / 10]);
  });

  it('score histogram: log score axis when scores span > 3 decades, log count axis for imbalanced classes', () => {
    const { scores, labels } = continuousCase(20000, 5);
    const svg = scoreDistributionSvg(scores, labels, 'line', [{ label: 'saved threshold', threshold: 20, color: '#1a7f37' }]);
    expect(svg).to.include('anomaly score (log scale)');
    expect(svg).to.include('lines (log scale)');
    expect(svg).to.include('saved threshold (20)');
    expect((svg.match(/class="ds-bars"/g) ?? []).length).to.equal(2);
    // a long tail over < 3 decades: log scale only when most scores crowd the bottom of the range
    const tail = [...Array.from({ length: 1000 }, (_, i) => 1 + (i % 5)), 60, 80, 100];
    expect(scoreDistributionSvg(tail, tail.map((v) => (v > 50 ? 1 : 0)), 'session')).to.include('anomaly score (log scale)');
    const uniform = Array.from({ length: 1000 }, (_, i) => 1 + i / 10);
    expect(scoreDistributionSvg(uniform, uniform.map(() => 0), 'session')).to.include('>anomaly score<');
    const lin = scoreDistributionSvg([1, 2, 3, 4, 5, 6], [0, 0, 0, 1, 1, 1], 'session');
    expect(lin).to.include('>anomaly score<');
    expect(lin).to.include('>sessions<');
  });

  it('degenerate inputs still draw: one distinct score, one class, text escaped', () => {
    const svg = scoreDistributionSvg([2, 2, 2], [0, 0, 0], 'a<b>&"c"');
    expect(svg).to.include('a&lt;b&gt;&amp;&quot;c&quot;');
    expect(svg).to.not.include('NaN');
    const roc = rocChartSvg(sweep([1, 2], [0, 0]), null, 'session');
    expect(roc).to.include('AUC n/a');
    expect(roc).to.not.include('NaN');
  });

  it('ticks and numbers are readable', () => {
    expect(niceTicks(0, 1)).to.deep.equal([0, 0.2, 0.4, 0.6, 0.8, 1]);
    expect(niceTicks(1.708, 4.999)).to.deep.equal([2, 2.5, 3, 3.5, 4, 4.5]);
    expect(niceTicks(0, 97099)).to.deep.equal([0, 20000, 40000, 60000, 80000]);
    expect(niceTicks(-0.3, 0.3)).to.include(0);
    expect([fmtNum(0.000012345), fmtNum(123456), fmtNum(3.22799), fmtNum(Infinity)]).to.deep.equal(['1.23e-5', '1.23e5', '3.23', '∞']);
  });
});
