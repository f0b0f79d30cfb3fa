import { expect } from 'chai';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { DeepSentryError } from '../../lib/errors';
import { evaluate, loadLineLabels, loadSessionLabels, METRICS_SCHEMA, writeEvaluation, type MetricsFile, type SessionLabels } from '../../lib/eval';
import { BASELINE_THRESHOLD, bglBaselineScores, hdfsBaselineScores, readCsvRows } from '../support/eval-fixtures';
import { bruteAp, bruteAuc, bruteConfusion } from '../support/brute-metrics';
import { BGL_LOG, HDFS_DEV_LABELS, HDFS_DEV_LOG } from '../support/data';
import { tempDir } from '../support/tmp';

async function rejects(p: Promise<unknown>, code: string, re: RegExp): Promise<void> {
  try {
    await p;
  } catch (err) {
    expect(err).to.be.instanceOf(DeepSentryError);
    expect((err as DeepSentryError).code, (err as Error).message).to.equal(code);
    expect((err as Error).message).to.match(re);
    return;
  }
  expect.fail(`expected a ${code} error matching ${re}`);
}

describe('eval on real labelled logs (baseline scores)', function () {
  let scoresDir: string;
  let labels: SessionLabels;
  const work = tempDir('evaluate');
  before(async () => {
    scoresDir = hdfsBaselineScores();
    labels = await loadSessionLabels(HDFS_DEV_LABELS);
  });
  after(() => fs.rmSync(work, { recursive: true, force: true }));

  it('HDFS session and line level: counts, and every metric equal to an independent computation from the CSVs', async () => {
    const r = await evaluate({ scoresDir, labels });
    const m = r.metrics;
    expect(m.schema).to.equal(METRICS_SCHEMA);
    expect(m.coverage).to.deep.equal({ sessionsScored: 5150, sessionsLabelled: 5150, labelsWithoutSession: 0, linesScored: 99735, linesLabelled: 99735 });
    expect([m.session.items, m.session.anomalies]).to.deep.equal([5150, 158]);
    // every line inherits its block's label: 2,636 lines belong to anomalous blocks (data README)
    expect([m.line!.items, m.line!.anomalies]).to.deep.equal([99735, 2636]);

    const rows = readCsvRows(path.join(scoresDir, 'sessions.csv'));
    const scores = rows.map((r) => Number(r[1]));
    const y = rows.map((r) => labels.labels.get(r[0]!)!);
    const flagged = rows.map((r) => r[2] === '1');
    const c = bruteConfusion(flagged, y);
    expect(m.session.saved!.confusion).to.deep.equal(c);
    expect(m.session.saved!.source).to.equal('anomaly-column');
    expect(m.session.saved!.precision).to.equal(c.tp / (c.tp + c.fp));
    expect(m.session.saved!.recall).to.equal(c.tp / (c.tp + c.fn));
    expect(m.session.rocAuc).to.be.closeTo(bruteAuc(scores, y), 1e-12);
    expect(m.session.averagePrecision).to.be.closeTo(bruteAp(scores, y), 1e-12);
    // the implied threshold is the lowest flagged score, and the best F1 is at least the saved one
    expect(m.session.saved!.threshold).to.equal(Math.min(...scores.filter((_, i) => flagged[i])));
    expect(m.session.best!.f1).to.be.at.least(m.session.saved!.f1);
    expect(scores).to.include(m.session.best!.threshold as number);
  });

  it('a given threshold is applied as score >= threshold at both levels', async () => {
    const t = BASELINE_THRESHOLD - 0.5;
    const r = await evaluate({ scoresDir, labels, threshold: t });
    const rows = readCsvRows(path.join(scoresDir, 'lines.csv'));
    const sessionOfLabel = (s: string) => labels.labels.get(s)!;
    const c = { tp: 0, fp: 0, tn: 0, fn: 0 };
    for (const r of rows) {
      const f = Number(r[2]) >= t;
      const yy = sessionOfLabel(r[1]!);
      if (f && yy) c.tp++; else if (f) c.fp++; else if (yy) c.fn++; else c.tn++;
    }
    expect(r.metrics.line!.saved!.confusion).to.deep.equal(c);
    expect(r.metrics.line!.saved!).to.include({ threshold: t, source: 'option' });
  });

  it('partial labels are counted in coverage; labels matching no session are a clear error', async () => {
    const partial = new Map([...labels.labels].slice(0, 1000));
    partial.set('blk_not_in_this_log', true);
    const r = await evaluate({ scoresDir, labels: { ...labels, labels: partial } });
    expect(r.metrics.coverage).to.include({ sessionsLabelled: 1000, labelsWithoutSession: 1 });
    expect(r.metrics.session.items).to.equal(1000);
    const other = new Map([['node-1', true], ['node-2', false]]);
    await rejects(
      evaluate({ scoresDir, labels: { kind: 'session', file: 'other.csv', labels: other, anomalies: 1 } }),
      'DS_INVALID_ARGUMENT',
      /labels in other\.csv match none of the 5150 sessions in .*sessions\.csv \(label ids look like "node-1", "node-2"; session ids look like "blk_/,
    );
  });

  it('BGL per-line labels: line level from the label field, a session is anomalous when any of its lines is', async () => {
    const dir = bglBaselineScores();
    const l = await loadLineLabels(BGL_LOG);
    const r = await evaluate({ scoresDir: dir, labels: l });
    expect(r.metrics.line).to.include({ items: 2000, anomalies: 143 });
    const lines = readCsvRows(path.join(dir, 'lines.csv'));
    const anomalousNodes = new Set(lines.filter((x) => l.labels[Number(x[0])] === 1).map((x) => x[1]));
    const nodes = new Set(lines.map((x) => x[1]));
    expect(r.metrics.session).to.include({ items: nodes.size, anomalies: anomalousNodes.size });
    expect(r.metrics.inputs.labelKind).to.equal('line');
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('per-line labels without lines.csv, and malformed scores files, are errors naming file and line', async () => {
    const d = path.join(work, 'bad');
    fs.mkdirSync(d);
    const sessions = (text: string) => fs.writeFileSync(path.join(d, 'sessions.csv'), text);
    sessions('session,score,anomaly,lines,first_ts,last_ts\nblk_1,0.5,0,3,a,b\n');
    await rejects(evaluate({ scoresDir: d, labels: await loadLineLabels(BGL_LOG) }), 'DS_IO', /per-line labels need .*lines\.csv/);
    sessions('session,score,anomaly,lines,first_ts,last_ts\nblk_1,0.5,0,3,a,b\nblk_2,abc,0,3,a,b\n');
    await rejects(evaluate({ scoresDir: d, labels }), 'DS_PARSE', /sessions\.csv:3: column score must be a number but is "abc"/);
    sessions('session,score,anomaly,lines,first_ts,last_ts\nblk_1,NaN,0,3,a,b\n');
    await rejects(evaluate({ scoresDir: d, labels }), 'DS_PARSE', /sessions\.csv:2: column score must be a number/);
    sessions('session,score,anomaly,lines,first_ts,last_ts\nblk_1,1,2,3,a,b\n');
    await rejects(evaluate({ scoresDir: d, labels }), 'DS_PARSE', /sessions\.csv:2: column anomaly must be 0 or 1/);
    sessions('session,score,anomaly,lines,first_ts,last_ts\nblk_1,1,0,3,a,b\nblk_1,2,0,3,a,b\n');
    await rejects(evaluate({ scoresDir: d, labels }), 'DS_PARSE', /sessions\.csv:3: session blk_1 appears twice/);
    sessions('session,value\n');
    await rejects(evaluate({ scoresDir: d, labels }), 'DS_PARSE', /sessions\.csv:1: sessions file header lacks columns score, anomaly/);
    sessions('session,score,anomaly,lines,first_ts,last_ts\nblk_1,1,0,3,a,b\n');
    fs.writeFileSync(path.join(d, 'lines.csv'), 'line_no,session,score,anomaly\n1,blk_1,0.5,0\n2,blk_9,0.5,0\n');
    await rejects(evaluate({ scoresDir: d, labels }), 'DS_PARSE', /lines\.csv:3: session blk_9 is not in .*sessions\.csv/);
    fs.writeFileSync(path.join(d, 'lines.csv'), 'line_no,session,score,anomaly\n0,blk_1,0.5,0\n');
    await rejects(evaluate({ scoresDir: d, labels }), 'DS_PARSE', /lines\.csv:2: column line_no must be a positive integer/);
    await rejects(evaluate({ scoresDir: path.join(work, 'nope'), labels }), 'DS_IO', /scores directory .*nope does not exist/);
    fs.mkdirSync(path.join(work, 'nosessions'));
    await rejects(evaluate({ scoresDir: path.join(work, 'nosessions'), labels }), 'DS_IO', /sessions\.csv does not exist/);
  });

  it('the report explains itself: warnings shown, inherited line labels said, false alarms and missed anomalies listed with their lines', async () => {
    const r = await evaluate({ scoresDir, labels, top: 3, errors: 4 });
    const cm = r.metrics.session.saved!.confusion;
    // every listed false alarm is a flagged normal session, every missed one an unflagged anomalous one, highest score first
    expect(r.falseAlarms).to.have.length(Math.min(4, cm.fp));
    expect(r.missed).to.have.length(Math.min(4, cm.fn));
    for (const s of r.falseAlarms) expect([s.anomaly, s.label]).to.deep.equal([true, false]);
    for (const s of r.missed) expect([s.anomaly, s.label]).to.deep.equal([false, true]);
    for (const list of [r.falseAlarms, r.missed]) expect(list.map((t) => t.score)).to.deep.equal([...list.map((t) => t.score)].sort((a, b) => b - a));
    const out = path.join(work, 'report-explains');
    const warning = '504 of 690 scored sessions (73 %) are above the threshold';
    const files = await writeEvaluation(r, out, { logFile: HDFS_DEV_LOG, warnings: [warning], modelConfig: { 'saved threshold': '11.7687: mean + 3·σ' } });
    const html = fs.readFileSync(files.report, 'utf8');
    expect(html).to.match(/<section id="warnings" class="warn"><h2>Warnings<\/h2><ul><li>504 of 690 scored sessions \(73 %\) are above the threshold<\/li><\/ul><\/section>/);
    expect(html).to.include('Line labels are <b>inherited from their session</b>');
    expect(html).to.match(new RegExp(`<h2>False alarms: ${cm.fp} normal sessions flagged \\(the 4 highest-scoring\\)</h2>`));
    expect(html).to.match(new RegExp(`<h2>Missed anomalies: ${cm.fn} anomalous sessions? not flagged`));
    for (const s of [...r.falseAlarms, ...r.missed]) {
      expect(html).to.include(`<code>${s.session}</code>`);
      expect(s.topLines.length).to.be.greaterThan(0);
      expect(s.topLines[0]!.text, 'line texts of the listed sessions').to.be.a('string');
    }
    // fields in words, not keys
    expect(html).to.include('<th>saved threshold</th>');
    expect(html).to.not.match(/<th>(trainSessions|testSessions|detector\.model\.\w+)<\/th>/);
  });

  it('infinite scores survive into metrics.json as "Infinity" (JSON has no Infinity)', async () => {
    const d = path.join(work, 'inf');
    fs.mkdirSync(d);
    fs.writeFileSync(path.join(d, 'sessions.csv'), 'session,score,anomaly,lines,first_ts,last_ts\nblk_a,Infinity,1,1,,\nblk_b,0.5,0,1,,\nblk_c,0.7,0,1,,\n');
    const lab: SessionLabels = { kind: 'session', file: 'x', labels: new Map([['blk_a', true], ['blk_b', false], ['blk_c', true]]), anomalies: 2 };
    const r = await evaluate({ scoresDir: d, labels: lab });
    const out = path.join(work, 'inf-out');
    await writeEvaluation(r, out);
    const m = JSON.parse(fs.readFileSync(path.join(out, 'metrics.json'), 'utf8')) as MetricsFile;
    expect(m.session.scoreRange).to.deep.equal({ min: 0.5, max: 'Infinity' });
    expect(m.session.saved!.threshold).to.equal('Infinity');
    expect(m.session.rocAuc).to.equal(1);
    expect(m.line).to.equal(null);
    expect(fs.readFileSync(path.join(out, 'session-scores.svg'), 'utf8')).to.match(/1 infinite score not shown/);
  });

  it('writes metrics.json, six SVGs and a self-contained report.html with the top sessions and their lines', async () => {
    const r = await evaluate({ scoresDir, labels, top: 5 });
    const out = path.join(work, 'report');
    const files = await writeEvaluation(r, out, { logFile: HDFS_DEV_LOG, dataset: { name: 'hdfs-dev' }, modelConfig: { detector: { window: 10 } } });
    expect(JSON.parse(fs.readFileSync(files.metrics, 'utf8'))).to.deep.equal(JSON.parse(JSON.stringify(r.metrics)));
    expect(files.charts.map((f) => path.basename(f))).to.deep.equal(['session-roc.svg', 'session-pr.svg', 'session-scores.svg', 'line-roc.svg', 'line-pr.svg', 'line-scores.svg']);
    for (const f of files.charts) {
      const svg = fs.readFileSync(f, 'utf8');
      expect(svg, f).to.match(/^<\?xml[^>]*>\n<svg xmlns="http:\/\/www\.w3\.org\/2000\/svg"[\s\S]*<\/svg>\n$/);
      expect(svg, f).to.match(f.includes('scores') ? /class="ds-bars" d="M/ : /class="ds-curve" points="[\d.,]+ [\d.,]+ [\d.,]+/);
    }
    const html = fs.readFileSync(files.report, 'utf8');
    expect(html).to.not.match(/<script|<link|<img|src=|href=|@import|url\(/i);
    expect(html.replace(/xmlns="http:\/\/www\.w3\.org\/2000\/svg"/g, '')).to.not.match(/https?:\/\//);
    expect(html).to.include("default-src 'none'");
    expect((html.match(/<svg /g) ?? []).length).to.equal(6);
    for (const t of r.top) expect(html).to.include(t.session);
    expect(html).to.include('detector.window');
    // the first top session's first kept line, with its text from the log
    const first = r.top[0]!.topLines[0]!;
    const text = fs.readFileSync(HDFS_DEV_LOG, 'utf8').split('\n')[first.lineNo - 1]!;
    expect(first.text).to.equal(text);
    expect(html).to.include(text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&#39;'));
    expect(r.top.map((t) => t.score)).to.deep.equal([...r.top.map((t) => t.score)].sort((a, b) => b - a));
  });
});
