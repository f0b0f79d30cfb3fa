/**
 * `deepsentry eval` as a user runs it: a child process, real files, exit codes 0 / 1 / 2, the message on stderr
 * (no stack trace), --json on stdout.
 */
import { expect } from 'chai';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { EvalArgs } from '../../lib/cli/commands/eval';
import { runEval } from '../../lib/cli/commands/eval-impl';
import { DeepSentryError } from '../../lib/errors';
import { saveModelDir } from '../../lib/models/files';
import type { MetricsFile } from '../../lib/eval';
import { hdfsBaselineScores } from '../support/eval-fixtures';
import { BGL_LOG, HDFS_DEV_LABELS, HDFS_DEV_LOG } from '../support/data';
import { runCli } from '../support/cli';
import { tempDir } from '../support/tmp';

describe('deepsentry eval (CLI)', function () {
  this.timeout(60000);
  const work = tempDir('cli');
  let scores: string;
  before(() => {
    scores = hdfsBaselineScores();
  });
  after(() => fs.rmSync(work, { recursive: true, force: true }));

  it('writes metrics.json, SVGs and report.html and prints the summary table', () => {
    const out = path.join(work, 'ok');
    const r = runCli(['eval', scores, '--labels', HDFS_DEV_LABELS, '--log', HDFS_DEV_LOG, '--out', out]);
    expect(r.code, r.stderr).to.equal(0);
    expect(r.stdout).to.match(/^\s+session\s+line\n/);
    expect(r.stdout).to.match(/ROC-AUC\s+0\.\d{4}\s+0\.\d{4}/);
    expect(r.stdout).to.match(/saved threshold\s+[\d.]+/);
    expect(r.stdout).to.include(path.join(out, 'report.html'));
    for (const f of ['metrics.json', 'report.html', 'session-roc.svg', 'session-pr.svg', 'session-scores.svg', 'line-roc.svg', 'line-pr.svg', 'line-scores.svg']) {
      expect(fs.existsSync(path.join(out, f)), f).to.equal(true);
    }
    const m = JSON.parse(fs.readFileSync(path.join(out, 'metrics.json'), 'utf8')) as MetricsFile;
    expect(m.session.items).to.equal(5150);
    expect(r.stdout).to.include(m.session.rocAuc!.toFixed(4));
  });

  it('--json prints one object with the metrics; --threshold is applied', () => {
    const r = runCli(['eval', scores, '--labels', HDFS_DEV_LABELS, '--out', path.join(work, 'json'), '--threshold', '2.5', '--json']);
    expect(r.code, r.stderr).to.equal(0);
    const o = JSON.parse(r.stdout) as { metrics: MetricsFile; files: { report: string }; warnings: string[] };
    expect(o.metrics.session.saved).to.include({ threshold: 2.5, source: 'option' });
    expect(o.files.report).to.equal(path.join(work, 'json', 'report.html'));
    expect(o.warnings).to.deep.equal([]);
  });

  it('per-line labels with --label-field; --model reads the saved threshold', async () => {
    // a tiny scores dir over the first lines of BGL: labels come from the log's first field
    const d = path.join(work, 'bgl-scores');
    fs.mkdirSync(d);
    const lines = fs.readFileSync(BGL_LOG, 'utf8').split('\n').slice(0, 200);
    fs.writeFileSync(path.join(d, 'lines.csv'), 'line_no,session,score,anomaly\n' + lines.map((l, i) => `${i + 1},${l.split(' ')[3]},${(i * 7919) % 101},0`).join('\n') + '\n');
    const nodes = [...new Set(lines.map((l) => l.split(' ')[3]))];
    fs.writeFileSync(path.join(d, 'sessions.csv'), 'session,score,anomaly,lines,first_ts,last_ts\n' + nodes.map((n, i) => `${n},${i},0,1,,`).join('\n') + '\n');
    const model = path.join(work, 'model');
    // a real model directory as lib/models writes it (no weights needed to hold a threshold)
    await saveModelDir(model, { config: { window: 10 }, vocabulary: [], thresholds: { session: { method: 'percentile', param: 99, value: 50 } }, metrics: {}, dataHash: 'test' }, []);
    const r = runCli(['eval', d, '--labels', BGL_LOG, '--label-field', '1', '--model', model, '--out', path.join(work, 'bgl'), '--json']);
    expect(r.code, r.stderr).to.equal(0);
    const o = JSON.parse(r.stdout) as { metrics: MetricsFile };
    expect(o.metrics.inputs.labelKind).to.equal('line');
    expect(o.metrics.line).to.include({ items: 200 });
    expect(o.metrics.line!.saved).to.include({ threshold: 50, source: 'model' });
  });

  it('failures are DeepSentryErrors with a clear message naming the file (in process: runEval, what the handler runs)', async () => {
    const base = { json: false, quiet: true, backend: 'auto' as const, seed: 42, beta: 2, top: 10, out: path.join(work, 'fail') };
    const cases: [Partial<EvalArgs>, string, RegExp][] = [
      [{ scores: path.join(work, 'missing'), labels: HDFS_DEV_LABELS }, 'DS_IO', /scores directory .*missing does not exist/],
      [{ scores, labels: path.join(work, 'nolabels.csv') }, 'DS_IO', /label file .*nolabels\.csv does not exist/],
      [{ scores, labels: BGL_LOG }, 'DS_PARSE', /BGL_2k\.log:1: .*BlockId,Label header/],
      [{ scores, labels: HDFS_DEV_LABELS, model: path.join(work, 'nomodel') }, 'DS_MODEL', /model directory .*nomodel does not exist/],
      [{ scores, labels: HDFS_DEV_LABELS, log: path.join(work, 'nolog.log') }, 'DS_IO', /log file .*nolog\.log does not exist/],
    ];
    const other = path.join(work, 'other.csv');
    fs.writeFileSync(other, 'BlockId,Label\nblk_1,Normal\nblk_2,Anomaly\n');
    cases.push([{ scores, labels: other }, 'DS_INVALID_ARGUMENT', /labels in .*other\.csv match none of the 5150 sessions/]);
    const bad = path.join(work, 'bad.csv');
    fs.writeFileSync(bad, 'BlockId,Label\nblk_1,Normal\nblk_2\n');
    cases.push([{ scores, labels: bad }, 'DS_PARSE', /bad\.csv:3: expected 2 fields/]);
    const badScores = path.join(work, 'bad-scores');
    fs.mkdirSync(badScores);
    fs.writeFileSync(path.join(badScores, 'sessions.csv'), 'session,score,anomaly\nblk_1,0.1,0\nblk_2,oops,1\n');
    cases.push([{ scores: badScores, labels: HDFS_DEV_LABELS }, 'DS_PARSE', /bad-scores\/sessions\.csv:3: column score must be a number but is "oops"/]);
    const corrupt = path.join(work, 'corrupt-model');
    fs.mkdirSync(corrupt);
    fs.writeFileSync(path.join(corrupt, 'model.json'), '{"thresholds": ');
    cases.push([{ scores, labels: HDFS_DEV_LABELS, model: corrupt }, 'DS_MODEL', /corrupt-model\/model\.json: not valid JSON/]);
    const nothr = path.join(work, 'no-threshold-model');
    await saveModelDir(nothr, { config: {}, vocabulary: [], thresholds: {}, metrics: {}, dataHash: 'x' }, []);
    cases.push([{ scores, labels: HDFS_DEV_LABELS, model: nothr }, 'DS_MODEL', /no-threshold-model\/model\.json has no saved session threshold.*--threshold/]);
    for (const [args, code, re] of cases) {
      try {
        await runEval({ ...base, ...args } as EvalArgs);
        expect.fail(`no error for ${JSON.stringify(args)}`);
      } catch (err) {
        expect(err, String(err)).to.be.instanceOf(DeepSentryError);
        expect((err as DeepSentryError).code).to.equal(code);
        expect((err as Error).message).to.match(re);
      }
    }
  });

  it('a failure exits 1 with the message and no stack trace; with --json the error is JSON on stdout', () => {
    const other = path.join(work, 'other2.csv');
    fs.writeFileSync(other, 'BlockId,Label\nnode-1,Normal\nnode-2,Anomaly\n');
    const r = runCli(['eval', scores, '--labels', other, '--out', path.join(work, 'fail')]);
    expect(r.code).to.equal(1);
    expect(r.stderr).to.match(/^deepsentry: labels in .*other2\.csv match none of the 5150 sessions/);
    expect(r.stderr, 'no stack trace').to.not.match(/\n\s+at /);
    const j = runCli(['eval', scores, '--labels', other, '--out', path.join(work, 'fail'), '--json']);
    expect(j.code).to.equal(1);
    expect(JSON.parse(j.stdout).error.code).to.equal('DS_INVALID_ARGUMENT');
  });

  it('usage errors exit 2', () => {
    const r = runCli(['eval', scores, '--out', path.join(work, 'u')]); // no --labels
    expect(r.code).to.equal(2);
    expect(r.stderr).to.match(/Missing required argument: labels/);
  });
});
