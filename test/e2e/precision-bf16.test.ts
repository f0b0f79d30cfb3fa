/**
 * The bf16 tier's end-to-end contract on the real hdfs-dev log: scored with `precision: 'bf16'`, a trained model
 * takes the same anomaly decision as with fp32 on at least 99.9 % of sessions, and its session ROC-AUC against the
 * labels is within 0.001 of fp32's. Training with `precision: 'bf16'` (mixed precision: bf16 forward products,
 * float32 LSTM backward, weights and Adam state) gives a model that meets the same bar against an fp32-trained one.
 */
import { expect } from 'chai';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { DeepSentry, scoreLog, trainModel } from '../../lib/pipeline';
import { loadNative } from '../../lib/backend/native';
import { useBackend } from '../../lib/backend/select';
import type { Precision } from '../../lib/backend/binding';
import { rocAuc, sweep } from '../../lib/eval/metrics';
import { HDFS_DEV_LABELS, HDFS_DEV_LOG, requireData } from '../support/data';
import { hdfsSlice, tinyConfig, trainedModel } from '../support/pipeline-fixtures';
import { nativeOrSkip } from '../support/native-helpers';
import { workDir } from '../support/tmp';

function labelsOf(file: string): Map<string, number> {
  const m = new Map<string, number>();
  for (const line of fs.readFileSync(file, 'utf8').split('\n').slice(1)) {
    const [k, v] = line.trim().split(',');
    if (k) m.set(k, v === 'Anomaly' ? 1 : 0);
  }
  return m;
}

interface Scored {
  score: Map<string, number>;
  anomaly: Map<string, boolean>;
  auc: number;
}

/** Scores the whole hdfs-dev log with `modelDir` at `precision` (sessions.csv: session, score, anomaly, …). */
async function scoreAt(modelDir: string, precision: Precision, labels: Map<string, number>): Promise<Scored> {
  const model = await DeepSentry.load(modelDir, { backend: 'native', precision });
  const out = path.join(workDir(), `bf16-score-${path.basename(modelDir)}-${precision}`);
  await scoreLog(model, HDFS_DEV_LOG, out, { lines: false, force: true });
  const rows = fs.readFileSync(path.join(out, 'sessions.csv'), 'utf8').trim().split('\n').slice(1).map((l) => l.split(','));
  const score = new Map(rows.map((r) => [r[0], Number(r[1])]));
  const anomaly = new Map(rows.map((r) => [r[0], r[2] === 'true' || r[2] === '1']));
  const keys = [...score.keys()];
  const auc = rocAuc(sweep(keys.map((k) => score.get(k)!), keys.map((k) => labels.get(k) ?? 0)))!;
  return { score, anomaly, auc };
}

function compare(fp: Scored, bf: Scored): { sessions: number; same: number; aucDelta: number } {
  expect([...bf.score.keys()].sort()).to.deep.equal([...fp.score.keys()].sort());
  let same = 0;
  for (const [k, a] of fp.anomaly) if (bf.anomaly.get(k) === a) same++;
  return { sessions: fp.anomaly.size, same, aucDelta: Math.abs(bf.auc - fp.auc) };
}

describe('bf16 precision tier on hdfs-dev: same decisions, same ROC-AUC', function () {
  this.timeout(300000);
  let labels: Map<string, number>;
  before(function () {
    requireData(this);
    nativeOrSkip(this);
    useBackend('native'); // the fixture model trains on the native kernels in fp32
    labels = labelsOf(HDFS_DEV_LABELS);
  });
  after(() => {
    useBackend('native');
  });

  it('scoring: ≥ 99.9 % of sessions get the fp32 decision, ROC-AUC within 0.001 (and bf16 really ran)', async () => {
    const dir = await trainedModel();
    const fp = await scoreAt(dir, 'fp32', labels);
    const bf = await scoreAt(dir, 'bf16', labels);
    expect(loadNative()!.capabilities().precision).to.equal('bf16');
    const c = compare(fp, bf);
    console.log(`      fp32 vs bf16 scoring: ${c.same} of ${c.sessions} same decision, ROC-AUC ${fp.auc.toFixed(5)} vs ${bf.auc.toFixed(5)}`);
    expect(c.sessions).to.be.greaterThan(5000);
    expect(c.same / c.sessions, `${c.sessions - c.same} of ${c.sessions} sessions decided differently`).to.be.at.least(0.999);
    expect(c.aucDelta, `ROC-AUC fp32 ${fp.auc}, bf16 ${bf.auc}`).to.be.at.most(0.001);
    let differs = 0;
    for (const [k, s] of fp.score) if (bf.score.get(k) !== s) differs++;
    expect(differs, 'no score changed: the bf16 tier did not run').to.be.greaterThan(0);
  });

  it('mixed-precision training (precision bf16): the model meets the same bar against the fp32-trained one', async () => {
    const dir = await trainedModel();
    const bfDir = path.join(workDir(), 'model-bf16');
    useBackend('native', { precision: 'bf16' });
    await trainModel([hdfsSlice(20000)], bfDir, { config: tinyConfig(), force: true });
    useBackend('native');
    const shard = (d: string) => fs.readFileSync(path.join(d, 'group1-shard1of1.bin'));
    expect(shard(bfDir).equals(shard(dir)), 'bf16 training gave the fp32 weights: the tier did not run').to.equal(false);
    const fp = await scoreAt(dir, 'fp32', labels);
    const bf = await scoreAt(bfDir, 'fp32', labels);
    const c = compare(fp, bf);
    console.log(`      fp32-trained vs bf16-trained: ${c.same} of ${c.sessions} same decision, ROC-AUC ${fp.auc.toFixed(5)} vs ${bf.auc.toFixed(5)}`);
    expect(c.same / c.sessions, `${c.sessions - c.same} of ${c.sessions} sessions decided differently`).to.be.at.least(0.999);
    expect(c.aucDelta, `ROC-AUC fp32-trained ${fp.auc}, bf16-trained ${bf.auc}`).to.be.at.most(0.001);
  });
});
