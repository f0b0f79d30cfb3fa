/**
 * Faults and bad input through the CLI, as an operator meets them: output locations that hold a file or an
 * earlier run's output (checked before any work; nothing that is not DeepSentry's is ever replaced; --force
 * replaces an earlier run's files and says so), damaged gzip logs (an error naming the file and how far it
 * got, in every command; --accept-truncated keeps the readable part with a warning), a model whose weights
 * are NaN behind valid checksums, and inputs that are a directory or a FIFO.
 */
import { expect } from 'chai';
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { DeepSentryError } from '../../lib/errors';
import { saveModelDir } from '../../lib/models/files';
import { DeepSentry } from '../../lib/pipeline/model';
import { scoreLog } from '../../lib/pipeline/score';
import { damagedGzips, hdfsSlice, modelWithNaN, tinyConfigFile, trainedModel } from '../support/pipeline-fixtures';
import { HDFS_DEV_LABELS, requireData } from '../support/data';
import { runCli } from '../support/cli';
import { workDir } from '../support/tmp';

/** An exit-1 failure: one `deepsentry:` line, no stack trace, mentioning every pattern. */
function failsWith(r: { code: number | null; stderr: string }, ...patterns: RegExp[]): void {
  expect(r.code, r.stderr).to.equal(1);
  expect(r.stderr).not.to.match(/\n\s+at /);
  for (const p of patterns) expect(r.stderr).to.match(p);
}

/** Snapshot of a directory's files (name → content), to show a refused command changed nothing. */
function snapshot(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const f of fs.readdirSync(dir, { recursive: true }) as string[]) {
    const p = path.join(dir, f);
    if (fs.statSync(p).isFile()) out[f] = fs.readFileSync(p).toString('base64');
  }
  return out;
}

const re = (s: string) => new RegExp(s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'));

describe('CLI output locations: checked before any work, nothing foreign replaced, --force for an earlier run', function () {
  this.timeout(300000);
  before(function () {
    requireData(this);
  });

  it('train/run/prepare/score/eval --out FILE: exit 1 before any work, the file untouched', async () => {
    const file = path.join(workDir(), 'precious.txt');
    fs.writeFileSync(file, 'not yours\n');
    const log = hdfsSlice(6000);
    const cfg = tinyConfigFile();
    const model = await trainedModel();
    const runs: [string, string[]][] = [
      ['train', ['train', log, '--out', file, '--config', cfg]],
      ['run', ['run', log, '--out', file, '--config', cfg]],
      ['prepare', ['prepare', log, '--out', file]],
      ['score', ['score', '--model', model, log, '--out', file]],
      ['eval', ['eval', workDir(), '--labels', HDFS_DEV_LABELS, '--out', file]],
      ['train --force', ['train', log, '--out', file, '--config', cfg, '--force']],
    ];
    for (const [what, args] of runs) {
      const r = runCli(args);
      failsWith(r, re(file), /exists and is not a directory/);
      // before any work: no stage started (progress goes to stderr as plain lines)
      expect(r.stderr, what).not.to.match(/deepsentry: (prepare|train-text|score): /);
      expect(fs.readFileSync(file, 'utf8'), what).to.equal('not yours\n');
    }
  });

  it('a model directory holding anything but a DeepSentry model is never replaced, not even with --force', async () => {
    const dir = path.join(workDir(), 'notes-dir');
    fs.mkdirSync(dir, { recursive: true });
    fs.writeFileSync(path.join(dir, 'notes.md'), 'mine\n');
    const r = runCli(['train', hdfsSlice(6000), '--out', dir, '--config', tinyConfigFile(), '--force']);
    failsWith(r, re(dir), /does not hold a DeepSentry model \(it holds notes\.md\)/);
    expect(fs.readdirSync(dir)).to.deep.equal(['notes.md']);
  });

  it('train --out an earlier model: refused naming it; --force replaces it and says so', async () => {
    const model = path.join(workDir(), 'retrain-model');
    fs.cpSync(await trainedModel(), model, { recursive: true });
    const before = snapshot(model);
    const r = runCli(['train', hdfsSlice(6000), '--out', model, '--config', tinyConfigFile()]);
    failsWith(r, re(model), /holds a DeepSentry model from an earlier run \(group1-shard1of1\.bin, model\.json\): pass --force/);
    expect(snapshot(model)).to.deep.equal(before);
    const f = runCli(['train', hdfsSlice(6000), '--out', model, '--config', tinyConfigFile(), '--force', '--json']);
    expect(f.code, f.stderr).to.equal(0);
    expect(JSON.parse(f.stdout).replaced).to.deep.equal(['group1-shard1of1.bin', 'model.json']);
    expect(snapshot(model)).not.to.deep.equal(before);
  });

  it("score into an earlier run's folder: refused listing what it holds; --force removes exactly the stale files, never another's", async () => {
    const model = await trainedModel();
    const out = path.join(workDir(), 'rescore');
    const first = runCli(['score', '--model', model, hdfsSlice(3000), '--out', out, '--quiet']);
    expect(first.code, first.stderr).to.equal(0);
    const ev = runCli(['eval', out, '--labels', HDFS_DEV_LABELS, '--out', out, '--quiet']);
    expect(ev.code, ev.stderr).to.equal(0);
    fs.writeFileSync(path.join(out, 'my-notes.txt'), 'keep\n');
    expect(fs.existsSync(path.join(out, 'report.html'))).to.equal(true);
    const before = snapshot(out);

    const again = runCli(['score', '--model', model, hdfsSlice(6000), '--out', out]);
    failsWith(again, re(out), /holds an earlier run's output \(sessions\.csv, lines\.csv, metrics\.json, report\.html, session-roc\.svg/, /1 other entry, which DeepSentry leaves alone/, /--force/);
    expect(snapshot(out)).to.deep.equal(before);

    const forced = runCli(['score', '--model', model, hdfsSlice(6000), '--out', out, '--force']);
    expect(forced.code, forced.stderr).to.equal(0);
    expect(forced.stderr).to.match(/--force: replaced an earlier run's output in .*rescore: sessions\.csv, lines\.csv, metrics\.json, report\.html/);
    // the new scores, no stale evaluation beside them, the operator's file untouched
    expect(fs.readdirSync(out).sort()).to.deep.equal(['lines.csv', 'my-notes.txt', 'sessions.csv']);
    expect(fs.readFileSync(path.join(out, 'my-notes.txt'), 'utf8')).to.equal('keep\n');

    // eval into the folder of the scores it reads (inputs, not an earlier output); again: --force
    expect(runCli(['eval', out, '--labels', HDFS_DEV_LABELS, '--out', out, '--quiet']).code).to.equal(0);
    failsWith(runCli(['eval', out, '--labels', HDFS_DEV_LABELS, '--out', out]), /holds an earlier run's output \(metrics\.json, report\.html/);
    const ef = runCli(['eval', out, '--labels', HDFS_DEV_LABELS, '--out', out, '--force', '--json']);
    expect(ef.code, ef.stderr).to.equal(0);
    expect(JSON.parse(ef.stdout).replaced).to.include('metrics.json');
    expect(fs.existsSync(path.join(out, 'sessions.csv'))).to.equal(true);
  });

  it("prepare into an earlier run's working directory: refused; --force also clears the stage outputs derived from it", async () => {
    const dir = path.join(workDir(), 'reprepare');
    expect(runCli(['prepare', hdfsSlice(3000), '--out', dir, '--quiet']).code).to.equal(0);
    const cfg = tinyConfigFile();
    expect(runCli(['train-text', dir, '--config', cfg, '--quiet']).code).to.equal(0);
    const r = runCli(['prepare', hdfsSlice(6000), '--out', dir]);
    failsWith(r, /holds an earlier run's output \(manifest\.json, vocab\.json, messages\.ndjson, lines\.bin, sessions\.ndjson, text-model\/\)/);
    const again = runCli(['train-text', dir, '--config', cfg]);
    failsWith(again, /holds an earlier run's output \(text-model\/; and 5 other entries/);
    const f = runCli(['prepare', hdfsSlice(6000), '--out', dir, '--force', '--json']);
    expect(f.code, f.stderr).to.equal(0);
    expect(JSON.parse(f.stdout)).to.deep.include({ lines: 6000, replaced: ['manifest.json', 'vocab.json', 'messages.ndjson', 'lines.bin', 'sessions.ndjson', 'text-model/'] });
    expect(fs.existsSync(path.join(dir, 'text-model'))).to.equal(false);
  });

  it('a stage command on a directory prepare never wrote fails naming it and creates nothing', () => {
    const dir = path.join(workDir(), 'typo-dir');
    failsWith(runCli(['encode', dir]), re(path.join(dir, 'manifest.json')), /run deepsentry prepare first/);
    expect(fs.existsSync(dir)).to.equal(false);
  });
});

describe('CLI damaged gzip logs: an error naming the file in every command; --accept-truncated keeps the readable part', function () {
  this.timeout(300000);
  before(function () {
    requireData(this);
  });

  it('score, train, prepare and run on a truncated, CRC-damaged or garbage gzip: exit 1 naming the file and how far it got', async () => {
    const model = await trainedModel();
    const gz = damagedGzips(hdfsSlice(20000));
    const cfg = tinyConfigFile();
    const o = (n: string) => path.join(workDir(), `gz-${n}`);
    const cases: [string, RegExp][] = [
      [gz.truncated, /unexpected end of file after [1-9]\d* lines/],
      [gz.crc, /incorrect data check after 1\d{4} lines/],
      [gz.garbage, /after 0 lines/],
    ];
    for (const [file, how] of cases) {
      const tag = path.basename(file);
      failsWith(runCli(['score', '--model', model, file, '--out', o(`score-${tag}`)]), re(`${file} is a damaged gzip file`), how, /--accept-truncated/);
      failsWith(runCli(['prepare', file, '--out', o(`prep-${tag}`)]), re(`${file} is a damaged gzip file`), how);
    }
    // train and run read the damage while preparing: no training starts
    for (const args of [['train', gz.crc, '--out', o('train')], ['run', gz.truncated, '--out', o('run')]]) {
      const r = runCli([...args, '--config', cfg]);
      failsWith(r, /is a damaged gzip file/);
      expect(r.stderr).not.to.match(/train-text: /);
    }
    expect(fs.existsSync(o('train'))).to.equal(false);
    // the intact gzip scores as before
    expect(runCli(['score', '--model', model, gz.whole, '--out', o('whole'), '--quiet']).code).to.equal(0);
  });

  it('--accept-truncated: score, prepare and train use the lines before the damage and say so in their warnings', async () => {
    const model = await trainedModel();
    const gz = damagedGzips(hdfsSlice(20000));
    const s = runCli(['score', '--model', model, gz.truncated, '--out', path.join(workDir(), 'gz-accept'), '--accept-truncated', '--json']);
    expect(s.code, s.stderr).to.equal(0);
    const j = JSON.parse(s.stdout);
    expect(j.lines).to.be.greaterThan(1000).and.lessThan(20000);
    expect(j.warnings.join('\n')).to.match(re(`${gz.truncated} is a damaged gzip file: only its first`));
    const p = runCli(['prepare', gz.truncated, '--out', path.join(workDir(), 'gz-accept-prep'), '--accept-truncated']);
    expect(p.code, p.stderr).to.equal(0);
    expect(p.stdout).to.match(/truncated_gzip 1/);
    expect(p.stderr).to.match(/warning: .* is a damaged gzip file: only its first \d+ lines were used/);
    // a model trained on the readable part says so, in the summary and in its own metrics
    const m = path.join(workDir(), 'gz-accept-model');
    const t = runCli(['train', gz.truncated, '--out', m, '--config', tinyConfigFile(), '--accept-truncated', '--json']);
    expect(t.code, t.stderr).to.equal(0);
    expect(JSON.parse(t.stdout).warnings.join('\n')).to.match(/is a damaged gzip file: only its first \d+ lines were used/);
    expect(JSON.parse(fs.readFileSync(path.join(m, 'model.json'), 'utf8')).metrics.warnings).to.deep.equal(JSON.parse(t.stdout).warnings);
  });
});

describe('CLI: non-finite model weights and inputs that are not log files', function () {
  this.timeout(300000);
  before(function () {
    requireData(this);
  });

  it('a model whose weights are NaN (valid checksums): score and live refuse it at load, naming the shard', async () => {
    const bad = modelWithNaN(await trainedModel(), 'nan-model');
    const s = runCli(['score', '--model', bad, hdfsSlice(3000), '--out', path.join(workDir(), 'nan-scores')]);
    failsWith(s, re(path.join(bad, 'group1-shard1of1.bin')), /holds a non-finite value \(NaN/);
    expect(fs.existsSync(path.join(workDir(), 'nan-scores', 'sessions.csv'))).to.equal(false);
    const live = runCli(['live', '-', '--model', bad], { input: fs.readFileSync(hdfsSlice(3000), 'utf8') });
    failsWith(live, re(path.join(bad, 'group1-shard1of1.bin')), /non-finite/);
  });

  it('a non-finite score is never written; a non-finite weight is never saved', async () => {
    const model = await DeepSentry.load(await trainedModel());
    // what a NaN weight would do if it got past the loader: NaN message vectors (the loader refuses them)
    (model as unknown as { vectors: Float32Array }).vectors.fill(NaN, 2 * model.text.config.latentDim);
    const out = path.join(workDir(), 'nan-score-guard');
    const err = await scoreLog(model, hdfsSlice(3000), out).then(() => null, (e: unknown) => e);
    expect(err).to.be.instanceOf(DeepSentryError);
    expect((err as DeepSentryError).code).to.equal('DS_MODEL');
    expect((err as Error).message).to.match(/scored session blk_\S+ as (NaN|-Infinity)/);
    expect(fs.readdirSync(out)).to.deep.equal([]);
    const dir = path.join(workDir(), 'nan-save');
    const e2 = await saveModelDir(dir, { config: null, vocabulary: null, thresholds: null, metrics: {}, dataHash: '' }, [{ name: 'w', shape: [2], values: Float32Array.of(1, Infinity) }]).then(() => null, (e: unknown) => e);
    expect((e2 as DeepSentryError).code).to.equal('DS_MODEL');
    expect((e2 as Error).message).to.match(/weight w holds a non-finite value \(Infinity at index 1\)/);
    expect(fs.existsSync(dir)).to.equal(false);
  });

  it('a directory as the log: every command names it; a FIFO is read like a file (run, which reads twice, says why not)', async () => {
    const model = await trainedModel();
    const dir = path.join(workDir(), 'a-log-dir');
    fs.mkdirSync(dir, { recursive: true });
    const o = (n: string) => path.join(workDir(), `dirlog-${n}`);
    failsWith(runCli(['prepare', dir, '--out', o('prep')]), re(`${dir}: it is a directory, not a log file`));
    failsWith(runCli(['score', '--model', model, dir, '--out', o('score')]), re(`${dir}: it is a directory, not a log file`));
    failsWith(runCli(['train', dir, '--out', o('train')]), re(`${dir} is a directory, not a log file`));
    failsWith(runCli(['run', dir, '--out', o('run')]), re(`${dir} is a directory, not a log file`));

    const fifo = path.join(workDir(), 'log.fifo');
    fs.rmSync(fifo, { force: true });
    expect(spawnSync('mkfifo', [fifo]).status).to.equal(0);
    const src = hdfsSlice(3000);
    const feed = () => spawn('sh', ['-c', 'cat "$1" > "$2"', 'sh', src, fifo], { stdio: 'ignore' });
    const p1 = feed();
    const p = runCli(['prepare', fifo, '--out', o('fifo-prep'), '--json']);
    expect(p.code, p.stderr).to.equal(0);
    expect(JSON.parse(p.stdout)).to.deep.include({ lines: 3000, parsed: 3000 });
    await new Promise((r) => p1.on('exit', r));
    const p2 = feed();
    const s = runCli(['score', '--model', model, fifo, '--out', o('fifo-score'), '--json']);
    expect(s.code, s.stderr).to.equal(0);
    expect(JSON.parse(s.stdout).lines).to.equal(3000);
    await new Promise((r) => p2.on('exit', r));
    failsWith(runCli(['run', fifo, '--out', o('fifo-run')]), re(`${fifo} is not a regular file`), /reads the log twice/);
  });
});
