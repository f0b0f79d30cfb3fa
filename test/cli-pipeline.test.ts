/**
 * `deepsentry train`, `score` and `run` as a user runs them: child processes, real files, exit codes 0/1/2,
 * messages on stderr without a stack trace, --json on stdout, atomic model writes under SIGINT, and score's
 * memory staying flat on a large input.
 */
import { expect } from 'chai';
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { BGL_LOG, HDFS_LABELS, ROOT, cli, hdfsBlocks, hdfsSlice, tinyConfigFile, trainedModel, workDir } from './pipeline-fixtures';
import { requireData } from './support/data';

function noStack(stderr: string): void {
  expect(stderr).to.match(/^deepsentry: /m);
  expect(stderr).not.to.match(/\n\s+at /);
}

describe('deepsentry train / score / run (CLI)', function () {
  this.timeout(300000);
  before(function () {
    requireData(this);
  });

  it('train writes a model directory; score writes sessions.csv and lines.csv; --json is machine-readable', () => {
    const model = path.join(workDir(), 'cli-model');
    const t = cli(['train', hdfsSlice(6000), '--out', model, '--config', tinyConfigFile(), '--json']);
    expect(t.code, t.stderr).to.equal(0);
    const tj = JSON.parse(t.stdout);
    expect(tj.model).to.equal(path.resolve(model));
    expect(tj.threshold.value).to.be.a('number');
    expect(fs.existsSync(path.join(model, 'model.json'))).to.equal(true);
    const out = path.join(workDir(), 'cli-scores');
    const s = cli(['score', '--model', model, hdfsSlice(3000), '--out', out]);
    expect(s.code, s.stderr).to.equal(0);
    expect(s.stdout).to.match(/scored .* sessions, \d+ anomalous at threshold/);
    expect(fs.readFileSync(path.join(out, 'sessions.csv'), 'utf8')).to.match(/^session,score,anomaly,lines,first_ts,last_ts,top_line,message,expected,window,reason\nblk_/);
    expect(fs.readFileSync(path.join(out, 'lines.csv'), 'utf8')).to.match(/^line_no,session,score,anomaly\n\d+,blk_/);
  });

  it('train --normal-labels trains only on the sessions labelled normal and model.json says so; a wrong file is exit 1 naming it', () => {
    const log = hdfsBlocks(20000);
    const blocks = new Set(fs.readFileSync(log, 'utf8').match(/blk_-?\d+/g) ?? []);
    const normal = fs
      .readFileSync(HDFS_LABELS, 'utf8')
      .split('\n')
      .filter((l) => l.endsWith(',Normal') && blocks.has(l.split(',')[0])).length;
    expect(normal).to.be.within(100, blocks.size - 1); // the slice holds anomalous blocks too
    const model = path.join(workDir(), 'cli-normal-only');
    const t = cli(['train', log, '--out', model, '--config', tinyConfigFile(), '--normal-labels', HDFS_LABELS, '--json']);
    expect(t.code, t.stderr).to.equal(0);
    const training = JSON.parse(t.stdout).training;
    expect(training).to.deep.equal({ mode: 'normal-only', normalLabels: HDFS_LABELS, keysKept: normal, keysLeftOut: blocks.size - normal });
    const json = JSON.parse(fs.readFileSync(path.join(model, 'model.json'), 'utf8'));
    expect(json.metrics.training.mode).to.equal('normal-only');
    expect(json.thresholds.session).to.include({ method: 'mean-std', param: 5 }); // threshold.normalOnlyK
    const bad = cli(['train', log, '--out', path.join(workDir(), 'cli-normal-bad'), '--config', tinyConfigFile(), '--normal-labels', path.join(workDir(), 'nope.csv')]);
    expect(bad.code).to.equal(1);
    expect(bad.stderr).to.match(/--normal-labels file .*nope\.csv does not exist/);
    noStack(bad.stderr);
  });

  it('stage commands over one working directory: prepare, train-text, encode, train-detector, then score', () => {
    const dir = path.join(workDir(), 'stages');
    const cfg = tinyConfigFile();
    expect(cli(['prepare', hdfsSlice(6000), '--out', dir, '--quiet']).code).to.equal(0);
    const detectorFirst = cli(['train-detector', dir, '--config', cfg]);
    expect(detectorFirst.code).to.equal(1);
    expect(detectorFirst.stderr).to.match(/train-text/);
    for (const stage of ['train-text', 'encode', 'train-detector']) {
      const r = cli([stage, dir, '--config', cfg, '--json']);
      expect(r.code, `${stage}: ${r.stderr}`).to.equal(0);
    }
    // re-running one stage alone works
    expect(cli(['encode', dir, '--quiet']).code).to.equal(0);
    const out = path.join(workDir(), 'stages-scores');
    const s = cli(['score', '--model', path.join(dir, 'model'), hdfsSlice(3000), '--out', out, '--quiet']);
    expect(s.code, s.stderr).to.equal(0);
    expect(fs.existsSync(path.join(out, 'sessions.csv'))).to.equal(true);
  });

  it('deepsentry live --model DIR scores stdin with the trained model and alerts as NDJSON', async () => {
    const model = await trainedModel();
    const input = fs.readFileSync(hdfsSlice(3000), 'utf8');
    const r = spawnSync(process.execPath, ['--import', 'tsx', '-e', "require('./lib/cli/main').main(process.argv.slice(1)).then((c) => { process.exitCode = c; })", '--', 'live', '-', '--model', model, '--json'], {
      cwd: ROOT,
      encoding: 'utf8',
      input,
      env: { ...process.env, FORCE_COLOR: '0' },
    });
    expect(r.status, r.stderr).to.equal(0);
    expect(r.stderr).to.match(/scorer bilstm/);
    expect(r.stderr).to.match(/stopped: \d+ lines, \d+ events/);
    const alerts = r.stdout.trim().split('\n').filter(Boolean).map((l) => JSON.parse(l));
    for (const a of alerts) {
      expect(a.score).to.be.at.least(a.threshold);
      expect(a.window.length).to.be.greaterThan(0);
    }
  });

  it('usage errors exit 2', () => {
    const r = cli(['score', hdfsSlice(3000), '--out', path.join(workDir(), 'x')]);
    expect(r.code).to.equal(2);
    expect(r.stderr).to.match(/model/);
    const f = cli(['run', '--out', path.join(workDir(), 'x'), '--train-fraction', '1.5']);
    expect(f.code).to.equal(2);
  });

  it('a missing or corrupt model, an empty log, a foreign format, labels matching nothing: exit 1 with a clear message', async () => {
    const model = await trainedModel();
    const missing = cli(['score', '--model', path.join(workDir(), 'nope'), hdfsSlice(3000), '--out', path.join(workDir(), 'e0')]);
    expect(missing.code).to.equal(1);
    expect(missing.stderr).to.match(/model\.json: not found/);
    noStack(missing.stderr);

    const corrupt = path.join(workDir(), 'corrupt-model');
    fs.cpSync(model, corrupt, { recursive: true });
    const shard = fs.readdirSync(corrupt).find((f) => f.endsWith('.bin'))!;
    const b = fs.readFileSync(path.join(corrupt, shard));
    fs.writeFileSync(path.join(corrupt, shard), b.subarray(0, b.length - 8));
    const c = cli(['score', '--model', corrupt, hdfsSlice(3000), '--out', path.join(workDir(), 'e1')]);
    expect(c.code).to.equal(1);
    expect(c.stderr).to.match(/checksum mismatch/);
    noStack(c.stderr);

    const empty = path.join(workDir(), 'empty-cli.log');
    fs.writeFileSync(empty, '');
    const e = cli(['score', '--model', model, empty, '--out', path.join(workDir(), 'e2')]);
    expect(e.code).to.equal(1);
    expect(e.stderr).to.match(/empty/);
    noStack(e.stderr);
    const et = cli(['train', empty, '--out', path.join(workDir(), 'e2m')]);
    expect(et.code).to.equal(1);
    expect(et.stderr).to.match(/empty/);

    const foreign = cli(['score', '--model', model, BGL_LOG, '--out', path.join(workDir(), 'e3')]);
    expect(foreign.code).to.equal(1);
    expect(foreign.stderr).to.match(/different format/);
    noStack(foreign.stderr);

    const labels = path.join(workDir(), 'other-labels.csv');
    fs.writeFileSync(labels, 'BlockId,Label\nblk_1,Normal\nblk_2,Anomaly\n');
    const l = cli(['run', hdfsBlocks(8000), '--labels', labels, '--out', path.join(workDir(), 'e4'), '--config', tinyConfigFile()]);
    expect(l.code).to.equal(1);
    expect(l.stderr).to.match(/matches none of the|no labelled session|label/);
    noStack(l.stderr);
  });

  it('run with labels prints the summary table and writes metrics.json and report.html', () => {
    const out = path.join(workDir(), 'cli-run');
    const r = cli(['run', hdfsBlocks(20000), '--labels', HDFS_LABELS, '--out', out, '--config', tinyConfigFile()]);
    expect(r.code, r.stderr).to.equal(0);
    expect(r.stdout).to.match(/trained on \d+ sessions, scored \d+/);
    expect(r.stdout).to.match(/ROC-AUC\s+0\.\d{4}/);
    expect(r.stdout).to.match(/saved threshold/);
    for (const f of ['metrics.json', 'report.html', 'sessions.csv', 'lines.csv', 'model/model.json']) expect(fs.existsSync(path.join(out, f)), f).to.equal(true);
    // progress goes to stderr as plain lines (not a TTY)
    expect(r.stderr).to.match(/deepsentry: train-text: /);
    expect(r.stderr).to.match(/text epoch 1\/\d+ loss/);
  });

  it('run with no log uses the embedded sample (data/sample) with its labels and prints the summary table', () => {
    const out = path.join(workDir(), 'cli-sample');
    const r = cli(['run', '--out', out, '--config', tinyConfigFile()]);
    expect(r.code, r.stderr).to.equal(0);
    expect(r.stderr).to.include(path.join('data', 'sample', 'HDFS.log.gz'));
    expect(r.stdout).to.match(/trained on 2575 sessions, scored 2575/);
    expect(r.stdout).to.match(/ROC-AUC\s+0\.\d{4}/);
  });

  it('an interrupted train (SIGINT) leaves no model and no temporary directory behind', async () => {
    const out = path.join(workDir(), 'interrupted', 'model');
    fs.mkdirSync(path.dirname(out), { recursive: true });
    const child = spawn(process.execPath, ['--import', 'tsx', '-e', "require('./lib/cli/main').main(process.argv.slice(1)).then((c) => { process.exitCode = c; })", '--', 'train', hdfsSlice(6000), '--out', out], { cwd: ROOT, env: { ...process.env, FORCE_COLOR: '0' } });
    let stderr = '';
    let sent = false;
    child.stderr.on('data', (d) => {
      stderr += String(d);
      if (!sent && /text epoch 1\//.test(stderr)) {
        sent = true;
        child.kill('SIGINT');
      }
    });
    const code = await new Promise<number | null>((resolve) => child.on('exit', (c) => resolve(c)));
    expect(sent, stderr).to.equal(true);
    expect(code).to.equal(1);
    expect(stderr).to.match(/cancelled/);
    expect(fs.existsSync(out)).to.equal(false);
    expect(fs.readdirSync(path.dirname(out))).to.deep.equal([]);
  });

  it('score streams: memory stays flat on a large input (capped heap)', async function () {
    // A model whose sessions close after 60 s of log time without a line, so the scorer holds only the open
    // ones; a 24 MB synthetic HDFS-like log through a 96 MB heap would not fit if it were buffered.
    const cfg = path.join(workDir(), 'idle.json');
    fs.writeFileSync(cfg, JSON.stringify({ ...JSON.parse(fs.readFileSync(tinyConfigFile(), 'utf8')), logs: { session: { idleTimeoutMs: 60000 } } }));
    const model = path.join(workDir(), 'idle-model');
    const big = path.join(workDir(), 'big.log');
    const g = spawnSync(process.execPath, ['--import', 'tsx', 'scripts/gen-hdfs-like.ts', big, '24'], { cwd: ROOT, encoding: 'utf8' });
    expect(g.status, g.stderr).to.equal(0);
    const t = cli(['train', hdfsSlice(6000), '--out', model, '--config', cfg, '--quiet']);
    expect(t.code, t.stderr).to.equal(0);
    const out = path.join(workDir(), 'big-scores');
    const r = spawnSync(process.execPath, ['--max-old-space-size=96', '--import', 'tsx', '-e', "require('./lib/cli/main').main(process.argv.slice(1)).then((c) => { process.exitCode = c; })", '--', 'score', '--model', model, big, '--out', out, '--json'], { cwd: ROOT, encoding: 'utf8' });
    expect(r.status, r.stderr.slice(-2000)).to.equal(0);
    const j = JSON.parse(r.stdout);
    expect(j.lines).to.be.greaterThan(100000);
    expect(j.sessions).to.be.greaterThan(5000);
  });
});
