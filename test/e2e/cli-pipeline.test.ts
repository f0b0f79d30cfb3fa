/**
 * `deepsentry train`, `score` and `run` as a user runs them: child processes, real files, exit codes 0/1/2,
 * messages on stderr without a stack trace, --json on stdout, atomic model writes under SIGINT, and score's
 * memory staying flat on a large input.
 */
import { expect } from 'chai';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { DRIFT_MESSAGE, driftLog, hdfsBlocks, hdfsSlice, tinyConfigFile, trainedModel } from '../support/pipeline-fixtures';
import { SET_ASIDE_NEEDS_FILE } from '../../lib/pipeline/score';
import { BGL_LOG, HDFS_DEV_LABELS, requireData } from '../support/data';
import { writeHdfsLike } from '../../scripts/gen-hdfs-like';
import { runCli, startCli } from '../support/cli';
import { workDir } from '../support/tmp';

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
    const t = runCli(['train', hdfsSlice(6000), '--out', model, '--config', tinyConfigFile(), '--json']);
    expect(t.code, t.stderr).to.equal(0);
    const tj = JSON.parse(t.stdout);
    expect(tj.model).to.equal(path.resolve(model));
    expect(tj.threshold.value).to.be.a('number');
    expect(fs.existsSync(path.join(model, 'model.json'))).to.equal(true);
    const out = path.join(workDir(), 'cli-scores');
    const s = runCli(['score', '--model', model, hdfsSlice(3000), '--out', out]);
    expect(s.code, s.stderr).to.equal(0);
    expect(s.stdout).to.match(/scored .* sessions, \d+ anomalous at threshold/);
    expect(fs.readFileSync(path.join(out, 'sessions.csv'), 'utf8')).to.match(/^session,score,anomaly,lines,first_ts,last_ts,top_line,message,expected,window,reason\nblk_/);
    expect(fs.readFileSync(path.join(out, 'lines.csv'), 'utf8')).to.match(/^line_no,session,score,anomaly\n\d+,blk_/);
  });

  it('train --normal-labels trains only on the sessions labelled normal and model.json says so; a wrong file is exit 1 naming it', () => {
    const log = hdfsBlocks(20000);
    const blocks = new Set(fs.readFileSync(log, 'utf8').match(/blk_-?\d+/g) ?? []);
    const normal = fs
      .readFileSync(HDFS_DEV_LABELS, 'utf8')
      .split('\n')
      .filter((l) => l.endsWith(',Normal') && blocks.has(l.split(',')[0])).length;
    expect(normal).to.be.within(100, blocks.size - 1); // the slice holds anomalous blocks too
    const model = path.join(workDir(), 'cli-normal-only');
    const t = runCli(['train', log, '--out', model, '--config', tinyConfigFile(), '--normal-labels', HDFS_DEV_LABELS, '--json']);
    expect(t.code, t.stderr).to.equal(0);
    const training = JSON.parse(t.stdout).training;
    expect(training).to.deep.equal({ mode: 'normal-only', normalLabels: HDFS_DEV_LABELS, keysKept: normal, keysLeftOut: blocks.size - normal });
    const json = JSON.parse(fs.readFileSync(path.join(model, 'model.json'), 'utf8'));
    // the compositions of the normal blocks, remembered (many blocks share one)
    expect(JSON.parse(t.stdout).knownNormal).to.equal(json.extra.knownNormal.keys.length).and.be.within(1, normal);
    expect(json.metrics.training.mode).to.equal('normal-only');
    expect(json.thresholds.session).to.include({ method: 'mean-std', param: 5 }); // threshold.normalOnlyK
    const bad = runCli(['train', log, '--out', path.join(workDir(), 'cli-normal-bad'), '--config', tinyConfigFile(), '--normal-labels', path.join(workDir(), 'nope.csv')]);
    expect(bad.code).to.equal(1);
    expect(bad.stderr).to.match(/--normal-labels file .*nope\.csv does not exist/);
    noStack(bad.stderr);
  });

  it('stage commands over one working directory: prepare, train-text, encode, train-detector, then score', () => {
    const dir = path.join(workDir(), 'stages');
    const cfg = tinyConfigFile();
    expect(runCli(['prepare', hdfsSlice(6000), '--out', dir, '--quiet']).code).to.equal(0);
    const detectorFirst = runCli(['train-detector', dir, '--config', cfg]);
    expect(detectorFirst.code).to.equal(1);
    expect(detectorFirst.stderr).to.match(/train-text/);
    for (const stage of ['train-text', 'encode', 'train-detector']) {
      const r = runCli([stage, dir, '--config', cfg, '--json']);
      expect(r.code, `${stage}: ${r.stderr}`).to.equal(0);
    }
    // re-running one stage alone: its earlier output (and the model derived from it) needs --force
    const again = runCli(['encode', dir, '--quiet']);
    expect(again.code).to.equal(1);
    expect(again.stderr).to.match(/holds an earlier run's output \(vectors\/, model\//);
    expect(runCli(['encode', dir, '--quiet', '--force']).code).to.equal(0);
    expect(runCli(['train-detector', dir, '--config', cfg, '--quiet']).code).to.equal(0);
    const out = path.join(workDir(), 'stages-scores');
    const s = runCli(['score', '--model', path.join(dir, 'model'), hdfsSlice(3000), '--out', out, '--quiet']);
    expect(s.code, s.stderr).to.equal(0);
    expect(fs.existsSync(path.join(out, 'sessions.csv'))).to.equal(true);
  });

  it('deepsentry live --model DIR scores stdin with the trained model and alerts as NDJSON', async () => {
    const model = await trainedModel();
    const input = fs.readFileSync(hdfsSlice(3000), 'utf8');
    const r = runCli(['live', '-', '--model', model, '--json'], { input });
    expect(r.code, r.stderr).to.equal(0);
    expect(r.stderr).to.match(/scorer bilstm/);
    expect(r.stderr).to.match(/stopped: \d+ lines, \d+ events/);
    const alerts = r.stdout.trim().split('\n').filter(Boolean).map((l) => JSON.parse(l));
    for (const a of alerts) {
      expect(a.score).to.be.at.least(a.threshold);
      expect(a.window.length).to.be.greaterThan(0);
    }
  });

  it('run says each warning once, though it reads the log twice (to train, to score)', () => {
    const zk = path.join(__dirname, '..', '..', 'data', 'loghub', 'Zookeeper_2k.log.gz');
    const r = runCli(['run', zk, '--out', path.join(workDir(), 'run-zk'), '--config', tinyConfigFile(), '--force', '--format', '<Date> <Time> - <Level>  \\[<Node>:<Component>@<Id>\\] - <Content>']);
    expect(r.code, r.stderr).to.equal(0);
    // the sample is cut from several stretches of the original log: 1,245 lines are earlier than one before them
    expect(r.stderr.match(/1245 out of order/g) ?? []).to.have.length(1);
  });

  it('score --json lists the messages set aside (--set-aside-new, the default); --no-set-aside-new scores them; on stdin none is set aside and it says why', async () => {
    const model = await trainedModel();
    const d = driftLog();
    const out = path.join(workDir(), 'cli-set-aside');
    const a = runCli(['score', '--model', model, d.file, '--out', out, '--json', '--force']);
    expect(a.code, a.stderr).to.equal(0);
    const ja = JSON.parse(a.stdout);
    expect(ja.setAside).to.deep.equal([{ message: DRIFT_MESSAGE, sessions: d.blocks }]);
    expect(ja.warnings.some((w: string) => w.includes(`"${DRIFT_MESSAGE}"`) && w.includes('set aside'))).to.equal(true);
    // lines.csv: a row per parsed line (one block each here), those set aside without a score
    const rows = fs.readFileSync(path.join(out, 'lines.csv'), 'utf8').trimEnd().split('\n').slice(1);
    expect(rows.length).to.equal(ja.parsed);
    expect(rows.filter((r) => /^\d+,blk_-?\d+,,0$/.test(r)).length).to.equal(d.blocks);
    // in words on stderr (without --json), the flag that scores them
    const words = runCli(['score', '--model', model, d.file, '--out', path.join(workDir(), 'cli-set-aside-words'), '--force']);
    expect(words.code, words.stderr).to.equal(0);
    expect(words.stderr).to.include(`"${DRIFT_MESSAGE}"`).and.to.include('set aside (--set-aside-new)').and.to.include('pass --no-set-aside-new');
    // --no-set-aside-new: every line scored, the message named as common and new
    const off = runCli(['score', '--model', model, d.file, '--out', path.join(workDir(), 'cli-set-aside-off'), '--no-set-aside-new', '--json', '--force']);
    expect(off.code, off.stderr).to.equal(0);
    const jo = JSON.parse(off.stdout);
    expect([jo.setAside, jo.commonNewMessages.map((c: { message: string }) => c.message)]).to.deep.equal([[], [DRIFT_MESSAGE]]);
    expect(fs.readFileSync(path.join(workDir(), 'cli-set-aside-off', 'lines.csv'), 'utf8')).not.to.match(/,,0\n/);
    // on stdin: scored once, the warnings on stderr naming the flag
    const b = runCli(['score', '--model', model, '-', '--out', path.join(workDir(), 'cli-set-aside-stdin'), '--force'], { input: fs.readFileSync(d.file) });
    expect(b.code, b.stderr).to.equal(0);
    expect(b.stdout).to.match(/scored <stream>: /).and.not.to.match(/set aside/);
    expect(b.stderr).to.include(`"${DRIFT_MESSAGE}"`).and.to.include(SET_ASIDE_NEEDS_FILE.replace('setAsideNew', '--set-aside-new'));
  });

  it('deepsentry live --set-aside MESSAGE alerts as on the log without its lines; with --scorer novelty it is a usage error', async () => {
    const model = await trainedModel();
    const d = driftLog();
    const alerts = (r: { code: number | null; stdout: string; stderr: string }) => {
      expect(r.code, r.stderr).to.equal(0);
      return r.stdout.trim().split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>);
    };
    const set = alerts(runCli(['live', '-', '--model', model, '--json', '--set-aside', DRIFT_MESSAGE, '--set-aside', 'a message the log does not hold'], { input: fs.readFileSync(d.file) }));
    const without = alerts(runCli(['live', '-', '--model', model, '--json'], { input: fs.readFileSync(d.blanked) }));
    const view = (a: Record<string, unknown>) => [a.session, a.lineNo, a.score, a.isSessionEnd];
    expect(set.length).to.be.greaterThan(0);
    expect(set.map(view)).to.deep.equal(without.map(view));
    const bad = runCli(['live', '-', '--scorer', 'novelty', '--set-aside', DRIFT_MESSAGE], { input: '' });
    expect(bad.code).to.equal(2);
    expect(bad.stderr).to.match(/--set-aside/);
    // no message, or an empty one: a usage error, not a silent no-op
    for (const args of [['--set-aside'], ['--set-aside', ''], ['--set-aside', DRIFT_MESSAGE, '--set-aside', ' ']]) {
      const none = runCli(['live', '-', '--model', model, ...args], { input: '' });
      expect(none.code, args.join(' ')).to.equal(2);
      expect(none.stderr).to.match(/--set-aside needs a masked message/);
    }
  });

  it('usage errors exit 2', () => {
    const r = runCli(['score', hdfsSlice(3000), '--out', path.join(workDir(), 'x')]);
    expect(r.code).to.equal(2);
    expect(r.stderr).to.match(/model/);
    const f = runCli(['run', '--out', path.join(workDir(), 'x'), '--train-fraction', '1.5']);
    expect(f.code).to.equal(2);
  });

  it('a missing or corrupt model, an empty log, a foreign format, labels matching nothing: exit 1 with a clear message', async () => {
    const model = await trainedModel();
    const missing = runCli(['score', '--model', path.join(workDir(), 'nope'), hdfsSlice(3000), '--out', path.join(workDir(), 'e0')]);
    expect(missing.code).to.equal(1);
    expect(missing.stderr).to.match(/model\.json: not found/);
    noStack(missing.stderr);

    const corrupt = path.join(workDir(), 'corrupt-model');
    fs.cpSync(model, corrupt, { recursive: true });
    const shard = fs.readdirSync(corrupt).find((f) => f.endsWith('.bin'))!;
    const b = fs.readFileSync(path.join(corrupt, shard));
    fs.writeFileSync(path.join(corrupt, shard), b.subarray(0, b.length - 8));
    const c = runCli(['score', '--model', corrupt, hdfsSlice(3000), '--out', path.join(workDir(), 'e1')]);
    expect(c.code).to.equal(1);
    expect(c.stderr).to.match(/checksum mismatch/);
    noStack(c.stderr);

    const empty = path.join(workDir(), 'empty-cli.log');
    fs.writeFileSync(empty, '');
    const e = runCli(['score', '--model', model, empty, '--out', path.join(workDir(), 'e2')]);
    expect(e.code).to.equal(1);
    expect(e.stderr).to.match(/empty/);
    noStack(e.stderr);
    const et = runCli(['train', empty, '--out', path.join(workDir(), 'e2m')]);
    expect(et.code).to.equal(1);
    expect(et.stderr).to.match(/empty/);

    const foreign = runCli(['score', '--model', model, BGL_LOG, '--out', path.join(workDir(), 'e3')]);
    expect(foreign.code).to.equal(1);
    expect(foreign.stderr).to.match(/different format/);
    noStack(foreign.stderr);

    const labels = path.join(workDir(), 'other-labels.csv');
    fs.writeFileSync(labels, 'BlockId,Label\nblk_1,Normal\nblk_2,Anomaly\n');
    const l = runCli(['run', hdfsBlocks(8000), '--labels', labels, '--out', path.join(workDir(), 'e4'), '--config', tinyConfigFile()]);
    expect(l.code).to.equal(1);
    expect(l.stderr).to.match(/matches none of the|no labelled session|label/);
    noStack(l.stderr);
  });

  it('run with labels prints the summary table and writes metrics.json and report.html', () => {
    const out = path.join(workDir(), 'cli-run');
    const r = runCli(['run', hdfsBlocks(20000), '--labels', HDFS_DEV_LABELS, '--out', out, '--config', tinyConfigFile()]);
    expect(r.code, r.stderr).to.equal(0);
    expect(r.stdout).to.match(/trained on \d+ sessions, scored \d+/);
    expect(r.stdout).to.match(/ROC-AUC\s+0\.\d{4}/);
    expect(r.stdout).to.match(/saved threshold/);
    for (const f of ['metrics.json', 'report.html', 'sessions.csv', 'lines.csv', 'model/model.json']) expect(fs.existsSync(path.join(out, f)), f).to.equal(true);
    // progress goes to stderr as plain lines (not a TTY): a line per stage start and end, no epoch lines
    // (those need --verbose), after one calm line saying what computes
    expect(r.stderr).to.match(/^deepsentry: (CPU kernels|pure TypeScript kernels)/);
    expect(r.stderr).to.match(/deepsentry: train-text: /);
    expect(r.stderr).to.match(/deepsentry: train-detector done in /);
    expect(r.stderr).not.to.match(/epoch \d+\//);
    expect(r.stderr).not.to.match(/CUDA not used|cudaError/);
  });

  it('run with no log uses the embedded sample (data/sample) with its labels and prints the summary table', () => {
    const out = path.join(workDir(), 'cli-sample');
    const r = runCli(['run', '--out', out, '--config', tinyConfigFile()]);
    expect(r.code, r.stderr).to.equal(0);
    expect(r.stderr).to.include(path.join('data', 'sample', 'HDFS.log.gz'));
    expect(r.stdout).to.match(/trained on 2575 sessions, scored 2575/);
    expect(r.stdout).to.match(/ROC-AUC\s+0\.\d{4}/);
  });

  it('an interrupted train (SIGINT) leaves no model and no temporary directory behind', async () => {
    // --verbose: a line per epoch, so the signal arrives while the text model trains
    const out = path.join(workDir(), 'interrupted', 'model');
    fs.mkdirSync(path.dirname(out), { recursive: true });
    const run = startCli(['train', hdfsSlice(6000), '--out', out, '--verbose']);
    let sent = false;
    run.child.stderr!.on('data', () => {
      if (!sent && /text epoch 1\//.test(run.err())) {
        sent = true;
        run.child.kill('SIGINT');
      }
    });
    const code = await run.exit;
    expect(sent, run.err()).to.equal(true);
    expect(code).to.equal(1);
    expect(run.err()).to.match(/cancelled/);
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
    await writeHdfsLike(big, 24 * 1024 * 1024);
    const t = runCli(['train', hdfsSlice(6000), '--out', model, '--config', cfg, '--quiet']);
    expect(t.code, t.stderr).to.equal(0);
    const out = path.join(workDir(), 'big-scores');
    const r = runCli(['score', '--model', model, big, '--out', out, '--json'], { nodeArgs: ['--max-old-space-size=96'] });
    expect(r.code, r.stderr.slice(-2000)).to.equal(0);
    const j = JSON.parse(r.stdout);
    expect(j.lines).to.be.greaterThan(100000);
    expect(j.sessions).to.be.greaterThan(5000);
  });
});
