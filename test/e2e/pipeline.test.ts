/**
 * The pipeline in-process: config schema, a tiny model trained on a real hdfs-dev slice, save/load, batch
 * scoring, the library API (DeepSentry.load + scoreLines), the live scorer over the real model, and the
 * claim that matters: anomalous sessions score higher than normal ones.
 */
import { expect } from 'chai';
import { splitCsvLine } from '../../lib/eval/csv';
import { readSessionScores } from '../../lib/eval/scores';
import { CountModel, countChains, countHorizon, countMessages } from '../../lib/models/counts';
import { sha256Hex } from '../../lib/models/files';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { DeepSentryError } from '../../lib/errors';
import { createOutputDir } from '../../lib/outdir';
import { createModelScorer, DeepSentry, resolvePipelineConfig, scoreLog, scoreWarnings, SET_ASIDE_NEEDS_FILE, runPipeline, applyFlags, defaultPipelineConfig, trainModel, sessionEnded, DEFAULT_IDLE_TIMEOUT_MS } from '../../lib/pipeline';
import { createScorer } from '../../lib/live/engine';
import type { ModelEvent } from '../../lib/live/model_scorer';
import { sweep, rocAuc } from '../../lib/eval/metrics';
import { DRIFT_MESSAGE, driftLog, hdfsBlocks, hdfsSlice, hdfsTimeOf, tinyConfig, trainedModel, withHdfsTime } from '../support/pipeline-fixtures';
import { BGL_LOG, HDFS_DEV_LABELS, requireData } from '../support/data';
import { workDir } from '../support/tmp';

function labelsOf(file: string): Map<string, number> {
  const m = new Map<string, number>();
  for (const l of fs.readFileSync(file, 'utf8').split('\n').slice(1)) {
    const [k, v] = l.split(',');
    if (k) m.set(k, v.trim() === 'Anomaly' ? 1 : 0);
  }
  return m;
}

function readCsv(file: string): string[][] {
  return fs.readFileSync(file, 'utf8').trim().split('\n').map((l) => l.split(','));
}

describe('pipeline config', () => {
  it('fills defaults from lib/logs and lib/models and rejects unknown keys and wrong types by name', () => {
    const c = resolvePipelineConfig({ detector: { model: { hiddenSize: 32 } } });
    expect(c.detector.model.hiddenSize).to.equal(32);
    expect(c.detector.model.objective).to.equal('softmax');
    expect(c.text.model.latentDim).to.be.a('number');
    expect(() => resolvePipelineConfig({ detector: { modle: {} } })).to.throw(DeepSentryError, /Unknown option detector\.modle/);
    expect(() => resolvePipelineConfig({ text: { train: { epochs: 'ten' } } })).to.throw(DeepSentryError, /text\.train\.epochs/);
    expect(() => resolvePipelineConfig({ threshold: { method: 'magic' } })).to.throw(DeepSentryError, /threshold\.method/);
    expect(() => resolvePipelineConfig({ logs: { sesion: {} } })).to.throw(DeepSentryError, /logs\.sesion/);
    expect(() => resolvePipelineConfig({ run: { trainFraction: 1.5 } })).to.throw(DeepSentryError, /run\.trainFraction/);
  });

  it('flags override the file', () => {
    const c = applyFlags(resolvePipelineConfig({ seed: 1, run: { trainFraction: 0.3 } }), { seed: 7, trainFraction: 0.6, format: 'hdfs' });
    expect([c.seed, c.run.trainFraction, c.logs.format]).to.deep.equal([7, 0.6, 'hdfs']);
    expect(defaultPipelineConfig().run.trainFraction).to.equal(0.5);
  });
});

describe('pipeline: train, save, load, score (tiny model on real HDFS lines)', function () {
  this.timeout(300000);
  let modelDir: string;
  before(async function () {
    requireData(this);
    modelDir = await trainedModel();
  });

  it('writes one self-contained model directory that loads back and scores identically', async () => {
    const json = JSON.parse(fs.readFileSync(path.join(modelDir, 'model.json'), 'utf8'));
    expect(json.format).to.equal('deepsentry-model');
    expect(json.thresholds.session.value).to.be.a('number');
    expect(json.extra.messages.length).to.be.greaterThan(5);
    expect(json.extra.logConfig.format).to.equal('hdfs');
    expect(json.vocabulary.tokens.slice(0, 3)).to.deep.equal(['<pad>', '<eos>', '<unk>']);
    expect(json.metrics.text.epochs).to.be.greaterThan(0);
    expect(json.dataHash).to.match(/^[0-9a-f]{64}$/);
    const a = await DeepSentry.load(modelDir);
    const b = await DeepSentry.load(modelDir);
    const lines = fs.readFileSync(hdfsSlice(3000), 'utf8').split('\n').filter(Boolean);
    const ra = await a.scoreLines(lines);
    const rb = await b.scoreLines(lines);
    expect(ra.sessions.length).to.be.greaterThan(50);
    expect(ra.lines.length).to.be.at.least(lines.length);
    expect(ra.sessions.map((s) => s.score)).to.deep.equal(rb.sessions.map((s) => s.score));
    for (const s of ra.sessions) expect(s.anomaly).to.equal(s.score >= ra.threshold);
  });

  it('is deterministic given the seed: same data, same config, bit-identical weights and threshold', async () => {
    const a = path.join(workDir(), 'det-a');
    const b = path.join(workDir(), 'det-b');
    await trainModel([hdfsSlice(4000)], a, { config: tinyConfig() });
    await trainModel([hdfsSlice(4000)], b, { config: tinyConfig() });
    const ja = JSON.parse(fs.readFileSync(path.join(a, 'model.json'), 'utf8'));
    const jb = JSON.parse(fs.readFileSync(path.join(b, 'model.json'), 'utf8'));
    expect(ja.shardSha256).to.deep.equal(jb.shardSha256);
    expect(ja.thresholds).to.deep.equal(jb.thresholds);
    const c = path.join(workDir(), 'det-c');
    await trainModel([hdfsSlice(4000)], c, { config: tinyConfig({ seed: 7 }) });
    expect(JSON.parse(fs.readFileSync(path.join(c, 'model.json'), 'utf8')).shardSha256).not.to.deep.equal(ja.shardSha256);
  });

  it('score: sessions.csv and lines.csv with the documented columns, anomaly at the saved threshold', async () => {
    const model = await DeepSentry.load(modelDir);
    const out = path.join(workDir(), 'scores-api');
    const log = hdfsSlice(5000);
    const r = await scoreLog(model, log, out);
    const s = readCsv(path.join(out, 'sessions.csv'));
    const l = readCsv(path.join(out, 'lines.csv'));
    expect(s[0]).to.deep.equal(['session', 'score', 'anomaly', 'lines', 'first_ts', 'last_ts', 'top_line', 'message', 'expected', 'window', 'reason']);
    expect(l[0]).to.deep.equal(['line_no', 'session', 'score', 'anomaly']);
    expect(s.length - 1).to.equal(r.sessions);
    const lineTotal = s.slice(1).reduce((a, row) => a + Number(row[3]), 0);
    expect(l.length - 1).to.equal(lineTotal);
    for (const row of s.slice(1)) {
      expect(row[2]).to.equal(Number(row[1]) >= model.threshold ? '1' : '0');
      expect(row[4]).to.match(/^2008-11-\d\dT/);
    }
    // line numbers are physical lines of the input, each in 1..5000
    for (const row of l.slice(1, 200)) expect(Number(row[0])).to.be.within(1, 5000);
    expect(r.anomalies).to.equal(s.slice(1).filter((row) => row[2] === '1').length);
    // withText: the same rows plus each line's message (CSV-quoted), as the log has it after "Component: "
    const outT = path.join(workDir(), 'scores-api-text');
    await scoreLog(model, log, outT, { withText: true });
    const lt = fs.readFileSync(path.join(outT, 'lines.csv'), 'utf8').trimEnd().split('\n').map((x, i) => splitCsvLine(x, 'lines.csv', i + 1));
    expect(lt[0]).to.deep.equal(['line_no', 'session', 'score', 'anomaly', 'text']);
    expect(lt.map((row) => row.slice(0, 4))).to.deep.equal(l);
    const raw = fs.readFileSync(log, 'utf8').split('\n');
    for (const row of lt.slice(1)) expect(row[4]).to.equal(raw[Number(row[0]) - 1]!.replace(/^(\S+ ){4}\S+: /, ''));
  });

  it('score: lines.csv rows with text outside ASCII, quotes and commas are the UTF-8 of the rows as text', async () => {
    const model = await DeepSentry.load(modelDir);
    const head = fs.readFileSync(hdfsSlice(400), 'utf8').split('\n').filter((l) => l !== '');
    // the messages of some lines rewritten: accents, CJK, an emoji (a surrogate pair), quotes and commas, a lone surrogate (U+FFFD in the file)
    const odd = ['ünïcødé "quoted", and, commas', '日志 异常 blk_-42 😀', 'half \ud83d surrogate', '"', ''];
    const lines = head.map((l, i) => (i % 7 === 3 ? l.replace(/: .*$/, `: ${odd[i % odd.length]} blk_${i}`) : l));
    const log = path.join(workDir(), 'odd-text.log');
    fs.writeFileSync(log, lines.join('\n') + '\n');
    const out = path.join(workDir(), 'scores-odd-text');
    await scoreLog(model, log, out, { withText: true });
    const bytes = fs.readFileSync(path.join(out, 'lines.csv'));
    const rows = bytes.toString('utf8').trimEnd().split('\n').slice(1).map((x, i) => splitCsvLine(x, 'lines.csv', i + 2));
    expect(rows.length).to.be.greaterThan(lines.length);
    // the file is the rows as text, encoded as UTF-8
    const text = (row: string[]) => row.map((f) => (/[",\n\r]/.test(f) ? `"${f.replace(/"/g, '""')}"` : f)).join(',');
    const read = fs.readFileSync(log, 'utf8').split('\n');
    const asText = ['line_no,session,score,anomaly,text', ...rows.map(text)].join('\n') + '\n';
    expect(bytes.equals(Buffer.from(asText, 'utf8'))).to.equal(true);
    for (const row of rows) expect(row[4]).to.equal(read[Number(row[0]) - 1]!.replace(/^(\S+ ){4}\S+: /, ''));
    expect(rows.some((r) => r[4]!.includes('😀'))).to.equal(true);
  });

  it('score: every flagged session keeps its explanation (top line, its message, the expected message, the window)', async () => {
    const model = await DeepSentry.load(modelDir);
    const log = hdfsSlice(3000);
    const out = path.join(workDir(), 'scores-why');
    // a threshold below every score flags every session: each row must then be explained
    model.thresholds.session.value = -Infinity;
    const r = await scoreLog(model, log, out);
    expect(r.anomalies).to.equal(r.sessions);
    const ss = await readSessionScores(out);
    const raw = fs.readFileSync(log, 'utf8').split('\n');
    let lineTops = 0;
    ss.ids.forEach((id, i) => {
      const w = ss.explanation[i];
      expect(w, id).to.not.equal(null);
      expect(w!.expected, id).to.not.equal('');
      if (w!.topLine === '') expect(w!.message).to.equal('<end of session>');
      else {
        lineTops++;
        // the top line is a line of this session, and the message is its masked text
        const text = raw[Number(w!.topLine) - 1];
        expect(text, id).to.include(id);
        expect(model.masker.mask(text.replace(/^\S+ \S+ \S+ \S+ \S+: /, '')).masked).to.equal(w!.message);
      }
    });
    expect(lineTops).to.be.greaterThan(0);
    // at the saved threshold the rows below it carry no explanation
    const model2 = await DeepSentry.load(modelDir);
    const out2 = path.join(workDir(), 'scores-why-2');
    await scoreLog(model2, log, out2);
    const s2 = await readSessionScores(out2);
    s2.ids.forEach((_, i) => expect(s2.explanation[i] === null).to.equal(s2.anomaly[i] === 0));
  });

  it('idle timeout: a key split at quiet gaps scores as the live monitor sees it; one sessions.csv row per key', async () => {
    const model = await DeepSentry.load(modelDir);
    const idle = model.logConfig.session.idleTimeoutMs;
    expect(idle).to.equal(DEFAULT_IDLE_TIMEOUT_MS);
    // blk_111 writes, is quiet 25 min, then is deleted (two segments, both ended: the log goes on 6 min after);
    // blk_222 stops after allocation (ended by the timeout); blk_333 is still open when the log stops (censored).
    const log = [
      '081109 203518 35 INFO dfs.FSNamesystem: BLOCK* NameSystem.allocateBlock: /user/root/rand/_temporary/_task_200811092030_0001_m_000001_0/part-00001. blk_111',
      '081109 203518 143 INFO dfs.DataNode$DataXceiver: Receiving block blk_111 src: /10.250.19.102:54106 dest: /10.250.19.102:50010',
      '081109 203519 145 INFO dfs.DataNode$PacketResponder: PacketResponder 0 for block blk_111 terminating',
      '081109 203520 35 INFO dfs.FSNamesystem: BLOCK* NameSystem.allocateBlock: /user/root/rand/_temporary/_task_200811092030_0001_m_000002_0/part-00002. blk_222',
      '081109 203521 143 INFO dfs.DataNode$DataXceiver: Receiving block blk_222 src: /10.250.19.102:54107 dest: /10.250.19.102:50010',
      '081109 210000 19 INFO dfs.FSDataset: Deleting block blk_111 file /mnt/hadoop/dfs/data/current/subdir12/blk_111',
      '081109 210600 35 INFO dfs.FSNamesystem: BLOCK* NameSystem.allocateBlock: /user/root/rand/_temporary/_task_200811092030_0001_m_000003_0/part-00003. blk_333',
      '081109 210601 143 INFO dfs.DataNode$DataXceiver: Receiving block blk_333 src: /10.250.19.102:54108 dest: /10.250.19.102:50010',
    ];
    const file = path.join(workDir(), 'idle.log');
    fs.writeFileSync(file, log.join('\n') + '\n');
    const out = path.join(workDir(), 'idle-scores');
    await scoreLog(model, file, out);
    const s = readCsv(path.join(out, 'sessions.csv')).slice(1);
    expect(s.map((r) => [r[0], r[3]])).to.deep.equal([['blk_111', '4'], ['blk_222', '2'], ['blk_333', '2']]);
    const lineScores = readCsv(path.join(out, 'lines.csv')).slice(1);
    // The live scorer with the same timeout gives the same line scores and, with its end events, the same
    // per-key maxima: ended as batch scoring ends them (censorEnds: blk_333 is still open when the input stops,
    // its end not scored), blk_111's two segments (25 minutes apart, within the count horizon) are counted
    // together and judged at the end of input, after blk_222 (waiting since its end at 20:40).
    const live = await createModelScorer(modelDir, { idleTimeoutMs: idle, censorEnds: true });
    const ev = [...(await live.scoreLines(log.map((text, i) => ({ seq: i, lineNo: i + 1, offset: 0, text })))), ...(await live.flush())];
    await live.close();
    expect(ev.filter((e) => e.isSessionEnd).map((e) => [e.session, e.endReason])).to.deep.equal([
      ['blk_111', 'idle'],
      ['blk_222', 'idle'],
      ['blk_111', 'idle'],
      ['blk_333', 'flush'],
      ['blk_222', 'counts'],
      ['blk_111', 'counts'],
    ]);
    const f = (x: number) => Math.fround(x).toPrecision(6);
    expect(lineScores.map((r) => [r[0], f(Number(r[2]))]).sort()).to.deep.equal(ev.filter((e) => !e.isSessionEnd).map((e) => [String(e.lineNo), f(e.score)]).sort());
    const max = new Map<string, number>();
    for (const e of ev) max.set(e.session, Math.max(max.get(e.session) ?? -Infinity, e.score));
    for (const r of s) expect(f(Number(r[1])), r[0]).to.equal(f(max.get(r[0]) as number));
    // The censored key's score is the max of its lines alone (no end event).
    const l333 = lineScores.filter((r) => r[1] === 'blk_333').map((r) => Number(r[2]));
    expect(f(Number(s[2][1]))).to.equal(f(Math.max(...l333)));
  });

  it('sessionEnded: idle/window ends are events, evicted never, the end of input only without a timeout', () => {
    expect(sessionEnded('idle', 300_000, 1)).to.equal(true);
    expect(sessionEnded('window', 300_000, 1)).to.equal(true);
    expect(sessionEnded('evicted', null, 1)).to.equal(false);
    expect(sessionEnded('end', 300_000, 1)).to.equal(false);
    expect(sessionEnded('end', null, 1)).to.equal(true);
    expect(sessionEnded('end', 300_000, null)).to.equal(true);
    // a config without logs.session keeps the pipeline's timeout; an explicit null turns it off
    expect(resolvePipelineConfig({ logs: { format: 'hdfs' } }).logs.session?.idleTimeoutMs).to.equal(DEFAULT_IDLE_TIMEOUT_MS);
    expect(resolvePipelineConfig({ logs: { session: { idleTimeoutMs: null } } }).logs.session?.idleTimeoutMs).to.equal(null);
  });

  it('a different format than the model, an empty log and a missing model are clear errors', async () => {
    const model = await DeepSentry.load(modelDir);
    const empty = path.join(workDir(), 'empty.log');
    fs.writeFileSync(empty, '');
    await scoreLog(model, empty, path.join(workDir(), 'e1')).then(
      () => expect.fail('empty log scored'),
      (e) => expect(e).to.be.instanceOf(DeepSentryError).with.property('message').that.match(/empty/),
    );
    const other = path.join(workDir(), 'other.log');
    fs.writeFileSync(other, '{"msg":"hello"}\n{"msg":"world"}\n');
    await scoreLog(model, other, path.join(workDir(), 'e2')).then(
      () => expect.fail('foreign log scored'),
      (e) => expect(e).to.be.instanceOf(DeepSentryError).with.property('message').that.match(/different format/),
    );
    await DeepSentry.load(path.join(workDir(), 'no-such-model')).then(
      () => expect.fail('loaded a missing model'),
      (e) => expect(e).to.be.instanceOf(DeepSentryError).with.property('code', 'DS_MODEL'),
    );
  });

  it('the live scorer over the real model: every line scored, sessions end, expected messages on demand', async () => {
    const scorer = await createScorer(modelDir, { worker: false, idleTimeoutMs: null });
    expect(scorer.name).to.equal('bilstm');
    expect(scorer.savedThreshold).to.be.a('number');
    const lines = fs.readFileSync(hdfsSlice(3000), 'utf8').split('\n').filter(Boolean).slice(0, 500);
    const raw = lines.map((text, i) => ({ seq: i, lineNo: i + 1, offset: 0, text }));
    const ev1 = await scorer.scoreLines(raw.slice(0, 250));
    const last = ev1[ev1.length - 1];
    expect(last.window[last.window.length - 1]).to.equal(lines[last.seq]);
    expect(ev1[1].expected).to.be.a('string');
    const ev2 = await scorer.scoreLines(raw.slice(250));
    const ends = await scorer.flush();
    expect(ev1.length + ev2.length).to.be.at.least(500);
    expect(ends.length).to.be.greaterThan(10);
    expect(ends.every((e) => e.isSessionEnd && e.endReason === 'flush')).to.equal(true);
    // Same lines in one batch: the same scores (batching does not change scoring).
    const one = await createScorer(modelDir, { worker: false, idleTimeoutMs: null });
    const all = [...(await one.scoreLines(raw)), ...(await one.flush())];
    expect(all.map((e) => e.score)).to.deep.equal([...ev1, ...ev2, ...ends].map((e) => e.score));
    await scorer.close();
    await one.close();
  });

  it('the live scorer also runs in a worker thread (the CLI default) with the same scores', async () => {
    const lines = fs.readFileSync(hdfsSlice(3000), 'utf8').split('\n').filter(Boolean).slice(0, 300);
    const raw = lines.map((text, i) => ({ seq: i, lineNo: i + 1, offset: 0, text }));
    const inThread = await createScorer(modelDir, { worker: false, idleTimeoutMs: null });
    const worker = await createScorer(modelDir, { worker: true, idleTimeoutMs: null });
    try {
      const a = [...(await inThread.scoreLines(raw)), ...(await inThread.flush())];
      const b = [...(await worker.scoreLines(raw)), ...(await worker.flush())];
      expect(b.map((e) => [e.seq, e.session, e.score])).to.deep.equal(a.map((e) => [e.seq, e.session, e.score]));
    } finally {
      await inThread.close();
      await worker.close();
    }
  });
});

describe('count relations and trimmed training', function () {
  this.timeout(300000);
  it('CountModel mines a·count(i) = b·count(j) from unlabelled sessions and scores a violation as −ln P(violation)', () => {
    // 98 sessions: message 5 once, message 6 three times (one allocation, three replicas); 2 violate it
    const sessions: Map<number, number>[] = [];
    for (let k = 0; k < 98; k++) sessions.push(new Map([[5, 1], [6, 3], [7, 1 + (k % 4)]]));
    sessions.push(new Map([[5, 1], [6, 2]]), new Map([[5, 1], [6, 1]]));
    const m = new CountModel(20, 0.95).fit(sessions);
    const r = m.relations.find((x) => x.i === 5 && x.j === 6);
    expect(r).to.deep.equal({ i: 5, j: 6, a: 3, b: 1, sessions: 100, violations: 2 });
    // message 7 varies 1..4 against both: no relation holds in 95 % of the sessions
    expect(m.relations.some((x) => x.j === 7 || x.i === 7)).to.equal(false);
    expect(m.surprise(new Map([[5, 2], [6, 6]]))).to.equal(0);
    expect(m.surprise(new Map([[5, 1], [6, 2]]))).to.be.closeTo(-Math.log(3 / 102), 1e-12);
    expect(m.surprise(countMessages([5]))).to.be.closeTo(-Math.log(3 / 102), 1e-12);
    const back = CountModel.fromJSON(JSON.parse(JSON.stringify(m.toJSON())), 'test');
    expect(back.surprise(new Map([[5, 1]]))).to.equal(m.surprise(new Map([[5, 1]])));
    // breadth: the worst relation's surprise plus breadth·ln(relations broken), each relation counted once
    // whether the session holds both its messages or one; against the relations checked one by one
    const wide: Map<number, number>[] = [];
    for (let k = 0; k < 96; k++) wide.push(new Map([[1, 1], [2, 3], [3, 3], [4, 3]]));
    wide.push(new Map([[1, 1], [2, 2], [3, 3], [4, 3]]), new Map([[1, 1], [2, 3], [3, 2], [4, 2]]), new Map([[1, 1]]), new Map([[2, 1], [4, 1]]));
    const w = new CountModel(20, 0.95).fit(wide);
    expect(w.relations).to.have.length(6); // every pair of 1 … 4
    const brute = (c: Map<number, number>) => {
      const broken = w.relations.filter((r) => r.a * (c.get(r.i) ?? 0) !== r.b * (c.get(r.j) ?? 0));
      return { n: broken.length, worst: Math.max(0, ...broken.map((r) => -Math.log((r.violations + 1) / (r.sessions + 2)))) };
    };
    for (const c of [new Map([[1, 1], [2, 3], [3, 3], [4, 3]]), new Map([[1, 1], [2, 2], [3, 3], [4, 3]]), new Map([[1, 1]]), new Map([[3, 1]]), new Map([[2, 4], [3, 4], [4, 4]]), new Map([[1, 2], [2, 3], [3, 1], [9, 1]])]) {
      const { n, worst } = brute(c);
      expect(w.worstViolation(c)?.violated ?? 0, JSON.stringify([...c])).to.equal(n);
      expect(w.surprise(c)).to.be.closeTo(worst, 1e-12);
      expect(w.surprise(c, 0.5)).to.be.closeTo(n > 0 ? worst + 0.5 * Math.log(n) : 0, 1e-12);
    }
    expect(w.worstViolation(new Map([[1, 1]]))?.violated).to.equal(3); // 1 against 2, 3, 4: the other three hold (0 = 0)
    expect(() => CountModel.fromJSON({ kind: 'count-relations', minSessions: 1, confidence: 1, relations: [{ i: 1 }] }, 'm.json')).to.throw(DeepSentryError, /m\.json: a count relation is malformed/);
  });

  it('training.trim leaves the most surprising sessions out of the detector; scoring.counts saves the relations and scores the same after reload', async function () {
    requireData(this);
    const dir = path.join(workDir(), 'trim-counts');
    const r = await trainModel([hdfsBlocks(8000)], dir, { config: tinyConfig({ training: { trim: 0.1 }, scoring: { counts: 3 } }) });
    const data = (r.model.metrics as { data: { detectorSessions: number; trimmedSessions: number } }).data;
    expect(data.trimmedSessions).to.equal(Math.floor((data.detectorSessions + data.trimmedSessions) * 0.1));
    expect(data.trimmedSessions).to.be.greaterThan(0);
    const json = JSON.parse(fs.readFileSync(path.join(dir, 'model.json'), 'utf8'));
    expect(json.extra.countRelations.relations.length).to.be.greaterThan(0);
    const back = await DeepSentry.load(dir);
    const lines = fs.readFileSync(hdfsBlocks(8000), 'utf8').split('\n').filter(Boolean).slice(0, 4000);
    expect(back.countModel!.relations).to.deep.equal(r.model.countModel!.relations);
    const sb = (await back.scoreLines(lines)).sessions.map((s) => s.score);
    const sa = (await r.model.scoreLines(lines)).sessions.map((s) => s.score);
    sb.forEach((x, i) => expect(x).to.be.closeTo(sa[i], 1e-5 * Math.max(1, Math.abs(sa[i])))); // float32 rounding of the reloaded weights
    // the count surprise sits on the end event (weight scoring.counts), and only there
    const rel = back.countModel!.relations[0];
    const ids = [rel.i];
    expect(back.countSurprise(ids)).to.be.greaterThan(0);
    const on = back.scoreSessions([{ messageIds: ids, ended: true }]).lineScores[0];
    back.config.scoring.counts = 0;
    const off = back.scoreSessions([{ messageIds: ids, ended: true }]).lineScores[0];
    back.config.scoring.counts = 3;
    expect(on[0]).to.equal(off[0]);
    expect(on[1] - off[1]).to.be.closeTo(3 * back.countSurprise(ids), 1e-4);
    // a censored session (no end event) is not judged on counts it has not finished
    expect(back.scoreSessions([{ messageIds: ids, ended: false }]).lineScores[0].length).to.equal(1);
    // the live scorer puts the same count surprise on the same end event (a block allocated, received once)
    const blk = [
      '081109 203518 35 INFO dfs.FSNamesystem: BLOCK* NameSystem.allocateBlock: /user/root/rand/_temporary/_task_200811092030_0001_m_000001_0/part-00001. blk_111',
      '081109 203518 143 INFO dfs.DataNode$DataXceiver: Receiving block blk_111 src: /10.250.19.102:54106 dest: /10.250.19.102:50010',
    ];
    const msgIds = blk.map((l) => back.messageId(back.masker.mask(l.replace(/^\S+ \S+ \S+ \S+ \S+: /, '')).masked));
    expect(back.countSurprise(msgIds)).to.be.greaterThan(0);
    const batchEnd = back.scoreSessions([{ messageIds: msgIds, ended: true }]).lineScores[0][2];
    const live = await createScorer(dir, { worker: false, idleTimeoutMs: null });
    const ev = [...(await live.scoreLines(blk.map((text, i) => ({ seq: i, lineNo: i + 1, offset: 0, text })))), ...(await live.flush())];
    await live.close();
    expect(ev.filter((e) => e.isSessionEnd).map((e) => e.score)).to.deep.equal([batchEnd]);
    // countIds: a session of a chain judges the chain's counts on its end, or none (null)
    const chainEnd = back.scoreSessions([{ messageIds: [rel.j], ended: true, countIds: ids }]).lineScores[0][1];
    const noCounts = back.scoreSessions([{ messageIds: [rel.j], ended: true, countIds: null }]).lineScores[0][1];
    expect(chainEnd - noCounts).to.be.closeTo(3 * back.countSurprise(ids), 1e-4);
  });

  it('countHorizon and countChains: a key\'s sessions less than the horizon apart are counted together, judged at the last one', () => {
    expect(countHorizon(3_600_000, 300_000, 'key')).to.equal(3_600_000);
    expect(countHorizon(3_600_000, 300_000, 'auto')).to.equal(3_600_000);
    expect(countHorizon(0, 300_000, 'key')).to.equal(null);
    expect(countHorizon(300_000, 300_000, 'key')).to.equal(null); // not longer than the idle timeout
    expect(countHorizon(3_600_000, null, 'key')).to.equal(null); // sessions end with the input only
    expect(countHorizon(3_600_000, 300_000, 'time')).to.equal(null);
    expect(countHorizon(3_600_000, 300_000, 'count')).to.equal(null);
    const M = 60_000;
    const seg = (key: string, first: number, last: number, end = 'idle') => ({ key, firstTs: first * M, lastTs: last * M, end });
    const a1 = seg('a', 0, 1);
    const b1 = seg('b', 0, 2);
    const a2 = seg('a', 8, 9); // 7 minutes after a1: same chain
    const a3 = seg('a', 70, 71); // 61 minutes after a2: a new chain
    const b2 = seg('b', 30, 31, 'end'); // censored: its chain is not judged
    const c1 = seg('c', 0, 1, 'evicted');
    const c2 = seg('c', 5, 6); // after an evicted session: a new chain
    const ended = (s: { end: string }) => s.end === 'idle';
    const r = countChains([a1, b1, a2, c1, c2, b2, a3], 60 * M, ended);
    expect(r.chains).to.deep.equal([[a1, a2], [b1, b2], [c1], [c2], [a3]]);
    expect([...r.judges.entries()]).to.deep.equal([[a2, [a1, a2]], [c2, [c2]], [a3, [a3]]]);
    // without a horizon every session whose end is scored is judged on its own
    const own = countChains([a1, b1, a2, c1, c2, b2, a3], null, ended);
    expect(own.chains).to.have.length(7);
    expect([...own.judges.keys()]).to.deep.equal([a1, b1, a2, c2, a3]);
  });

  it('a model saved before count relations had a horizon, weighed how many a session breaks, or the threshold could be lifted into a gap, judges as it was trained', async function () {
    requireData(this);
    const dir = await trainedModel();
    const copy = path.join(workDir(), 'model-no-count-horizon');
    fs.rmSync(copy, { recursive: true, force: true });
    fs.cpSync(dir, copy, { recursive: true });
    const file = path.join(copy, 'model.json');
    const json = JSON.parse(fs.readFileSync(file, 'utf8'));
    delete json.config.scoring.countTimeoutMs;
    delete json.config.scoring.countBreadth;
    delete json.config.threshold.gap;
    const { contentSha256: _, ...body } = json; // as written by the version before (its own checksum)
    fs.writeFileSync(file, JSON.stringify({ ...body, contentSha256: sha256Hex(JSON.stringify(body)) }, null, 1) + '\n');
    expect((await DeepSentry.load(dir)).config.scoring.countTimeoutMs).to.equal(3_600_000);
    expect((await DeepSentry.load(copy)).config.scoring.countTimeoutMs).to.equal(0);
    expect((await DeepSentry.load(dir)).config.scoring.countBreadth).to.equal(0.5);
    expect((await DeepSentry.load(copy)).config.scoring.countBreadth).to.equal(0);
    expect((await DeepSentry.load(dir)).config.threshold.gap).to.equal(true);
    expect((await DeepSentry.load(copy)).config.threshold.gap).to.equal(false);
  });
});

describe('pipeline: run separates anomalous from normal sessions (real hdfs-dev slice)', function () {
  this.timeout(300000);
  before(function () {
    requireData(this);
  });
  it('run --normal-labels trains only on the training sessions labelled normal; the scored part is untouched', async () => {
    const out = path.join(workDir(), 'run-normal');
    const r = await runPipeline(hdfsBlocks(8000), out, { config: tinyConfig(), labels: HDFS_DEV_LABELS, normalLabels: HDFS_DEV_LABELS });
    const json = JSON.parse(fs.readFileSync(path.join(out, 'model', 'model.json'), 'utf8'));
    const t = json.metrics.training;
    expect(t.mode).to.equal('normal-only');
    expect(t.keysKept + t.keysLeftOut).to.equal(r.trainSessions);
    expect(t.keysLeftOut).to.be.greaterThan(0); // the earlier blocks hold anomalies
    expect(json.metrics.data.sessionKeys).to.equal(t.keysKept);
    expect(r.evaluation!.result.metrics.coverage.sessionsScored).to.equal(r.testSessions);
  });
  it('a normal-only model remembers its keys\' compositions: its own log scores them 0 (no anomaly among them); scoring.knownNormal false gives the detector\'s scores back', async () => {
    const log = hdfsBlocks(8000);
    const dir = path.join(workDir(), 'normal-known');
    await trainModel([log], dir, { config: tinyConfig(), normalLabels: HDFS_DEV_LABELS, force: true });
    const json = JSON.parse(fs.readFileSync(path.join(dir, 'model.json'), 'utf8'));
    expect(json.extra.knownNormal.sources).to.deep.equal(['normal-labels']);
    expect(json.extra.knownNormal.keys.length).to.be.within(1, json.metrics.training.keysKept);
    const labels = labelsOf(HDFS_DEV_LABELS);
    const model = await DeepSentry.load(dir);
    try {
      const scores = async (name: string) => {
        const out = path.join(workDir(), name);
        await scoreLog(model, log, out, { lines: false, force: true });
        const s = await readSessionScores(out);
        return new Map(s.ids.map((k, i) => [k, s.scores[i]]));
      };
      const on = await scores('normal-known-on');
      model.config.scoring.knownNormal = false;
      const off = await scores('normal-known-off');
      const normal = [...on.keys()].filter((k) => labels.get(k) === 0);
      const known = [...on.keys()].filter((k) => on.get(k) === 0);
      // Every normal key was trained on; those whose sessions all ended in the log (not cut by its end) are known.
      expect(known.length).to.be.greaterThan(0.8 * normal.length);
      for (const k of known) {
        expect(labels.get(k), k).to.equal(0);
        expect(off.get(k) as number, `${k} without the memory`).to.be.greaterThan(0);
      }
      for (const [k, s] of on) if (s !== 0) expect(off.get(k), k).to.equal(s);
      expect([...off.values()].filter((s) => s === 0)).to.deep.equal([]);
    } finally {
      model.dispose();
    }
  });
  it('session ROC-AUC on the scored part is far above chance; evaluation files are written', async () => {
    const out = path.join(workDir(), 'run');
    const r = await runPipeline(hdfsBlocks(40000), out, { config: tinyConfig(), labels: HDFS_DEV_LABELS });
    expect(r.trainSessions).to.be.greaterThan(100);
    const m = r.evaluation!.result.metrics;
    expect(fs.existsSync(path.join(out, 'metrics.json'))).to.equal(true);
    expect(fs.existsSync(path.join(out, 'report.html'))).to.equal(true);
    expect(m.session.anomalies).to.be.greaterThan(5);
    // Cross-check the AUC from sessions.csv with the labels directly.
    const labels = labelsOf(HDFS_DEV_LABELS);
    const rows = readCsv(path.join(out, 'sessions.csv')).slice(1);
    const auc = rocAuc(sweep(rows.map((x) => Number(x[1])), rows.map((x) => labels.get(x[0]) ?? 0)))!;
    expect(auc).to.be.closeTo(m.session.rocAuc!, 1e-9);
    expect(auc).to.be.greaterThan(0.8);
  });
});

describe('pipeline: run evaluates a log against the labels its own lines carry (BGL)', function () {
  this.timeout(300000);
  before(function () {
    requireData(this);
  });
  it('with no --labels, BGL lines are labelled by their Label column: counts match the raw file line by line', async () => {
    const out = path.join(workDir(), 'run-bgl');
    const r = await runPipeline(BGL_LOG, out, { config: tinyConfig() });
    expect(r.evaluation, 'evaluated without a label file').to.not.equal(null);
    const m = r.evaluation!.result.metrics;
    // Independent count: the scored lines (lines.csv line_no) whose first field is not "-" in the raw log.
    const raw = fs.readFileSync(BGL_LOG, 'utf8').split('\n');
    const scored = readCsv(path.join(out, 'lines.csv')).slice(1).map((x) => Number(x[0]));
    expect(scored.length).to.be.greaterThan(500);
    const anomalous = scored.filter((n) => raw[n - 1].split(/\s+/)[0] !== '-').length;
    expect(anomalous, 'some scored lines are alerts').to.be.greaterThan(10);
    expect(m.line!.anomalies).to.equal(anomalous);
    expect(m.coverage.linesLabelled).to.equal(scored.length);
    expect(m.session.anomalies).to.be.greaterThan(0);
    expect(fs.existsSync(path.join(out, 'report.html'))).to.equal(true);
    // the flag-rate warning follows the counts (the later half of this small sample is mostly new messages)
    expect(r.score.warnings.filter((w) => / scored sessions .* are above the threshold/.test(w)).length).to.equal(r.score.anomalies > 0.2 * r.score.sessions ? 1 : 0);
  });

  it('scoreWarnings: a flag rate above 20 % of at least 20 sessions is called out, with the new messages', () => {
    expect(scoreWarnings({ sessions: 100, anomalies: 20, newMessages: 5 })).to.deep.equal([]);
    expect(scoreWarnings({ sessions: 19, anomalies: 19, newMessages: 5 })).to.deep.equal([]);
    const w = scoreWarnings({ sessions: 100, anomalies: 21, newMessages: 7 });
    expect(w).to.have.length(1);
    expect(w[0]).to.match(/21 of 100 scored sessions \(21 %\)/).and.to.match(/7 messages the model never saw/);
  });

  it('scoreWarnings: messages never seen in training that many sessions hold are named, with their share', () => {
    expect(scoreWarnings({ sessions: 100, anomalies: 1, newMessages: 2, commonNewMessages: [] })).to.deep.equal([]);
    const w = scoreWarnings({ sessions: 200, anomalies: 1, newMessages: 2, commonNewMessages: [{ message: 'a <NUM>', sessions: 90 }, { message: 'b', sessions: 11 }] });
    expect(w).to.have.length(1);
    expect(w[0]).to.match(/^2 messages the model never saw in training are in 6 % of the scored sessions or more: "a <NUM>" \(45 %\), "b" \(6 %\)/).and.to.match(/deepsentry feedback/);
  });

  it('score names a message the model never saw that a third of the blocks hold, and not one that two blocks hold', async () => {
    const model = await DeepSentry.load(await trainedModel());
    try {
      const lines = fs.readFileSync(hdfsSlice(20000), 'utf8').split('\n').filter(Boolean);
      const blocks = [...new Set(lines.join('\n').match(/blk_-?\d+/g) ?? [])];
      const t0 = hdfsTimeOf(lines[lines.length - 1]!) + 60_000;
      const report = (b: string) => withHdfsTime(`081109 000000 1 INFO dfs.DataNode$BlockReporter: Reported block ${b} to namenode with checksum`, t0);
      const rare = (b: string) => withHdfsTime(`081109 000000 1 WARN dfs.DataNode$Disk: Disk check failed for ${b} volume`, t0);
      const extra = [...blocks.filter((_, i) => i % 3 === 0).map(report), ...blocks.slice(0, 2).map(rare)];
      // a line of another block 20 minutes on: the sessions of the lines above have ended when the input does
      const log = path.join(workDir(), 'common-new.log');
      fs.writeFileSync(log, [...lines, ...extra, withHdfsTime(lines[0]!.replace(/blk_-?\d+/g, 'blk_424242'), t0 + 20 * 60_000)].join('\n') + '\n');
      const r = await scoreLog(model, log, path.join(workDir(), 'common-new'), { lines: false, force: true, setAsideNew: false });
      expect(r.commonNewMessages.map((c) => c.message)).to.deep.equal(['Reported block <BLK> to namenode with checksum']);
      expect(r.commonNewMessages[0]!.sessions).to.equal(Math.ceil(blocks.length / 3));
      expect(r.warnings.some((w) => w.includes('"Reported block <BLK> to namenode with checksum"'))).to.equal(true);
      expect(r.warnings.some((w) => w.includes('Disk check failed'))).to.equal(false);
    } finally {
      model.dispose();
    }
  });

  it('a message set aside changes no score: the scorer with it set aside scores every other line and end as the log without its lines', async () => {
    const modelDir = await trainedModel();
    const raw = fs.readFileSync(hdfsSlice(5000), 'utf8').split('\n').filter(Boolean);
    const probe = await DeepSentry.load(modelDir);
    const masked = (l: string) => probe.masker.maskText(l.replace(/^(\S+ ){4}\S+: /, ''));
    // a message the model knows, in most blocks: setting it aside changes the windows of every other line
    const M = masked(raw.find((l) => / Receiving block /.test(l))!);
    probe.dispose();
    const lineNos = raw.flatMap((l, i) => (masked(l) === M ? [i + 1] : []));
    expect(lineNos.length).to.be.greaterThan(500);
    const run = async (lines: string[], setAside?: string[]) => {
      const s = await createModelScorer(modelDir, { censorEnds: true, ...(setAside ? { setAside, setAsideEvents: true } : {}) });
      const raws = lines.map((text, i) => ({ seq: i + 1, lineNo: i + 1, offset: 0, text }));
      const ev = [...(await s.scoreLines(raws.slice(0, 2000))), ...(await s.scoreLines(raws.slice(2000))), ...(await s.flush())] as ModelEvent[];
      const parsed = s.parsedLines;
      await s.close();
      return { ev, parsed };
    };
    const aside = await run(raw, [M]);
    // the same lines, those of M blank: the same line numbers, nothing else
    const removed = await run(raw.map((l, i) => (lineNos.includes(i + 1) ? '' : l)));
    const view = (e: ModelEvent) => [e.session, e.lineNo, e.isSessionEnd, e.endReason ?? '', e.score];
    expect(aside.ev.filter((e) => !e.setAside).map(view)).to.deep.equal(removed.ev.map(view));
    expect(removed.ev.filter((e) => e.isSessionEnd).length).to.be.greaterThan(100);
    // each line of M is an unscored event of its block, and counted as parsed
    const set = aside.ev.filter((e) => e.setAside);
    expect(set.map((e) => e.lineNo)).to.deep.equal(lineNos);
    for (const e of set) expect([e.score, e.isSessionEnd, raw[e.lineNo - 1]!.includes(e.session)]).to.deep.equal([-Infinity, false, true]);
    expect(aside.parsed).to.equal(removed.parsed + lineNos.length);
  });

  it('setAsideNew (the default): the messages never seen that many blocks hold are set aside, and score writes what the log without their lines gives', async () => {
    const modelDir = await trainedModel();
    const d = driftLog();
    const sessionsOf = (dir: string) => fs.readFileSync(path.join(dir, 'sessions.csv'));
    const linesOf = (dir: string) => readCsv(path.join(dir, 'lines.csv')).slice(1);
    const outs: string[] = [];
    for (const readerThread of [false, true]) {
      const out = path.join(workDir(), `set-aside-${readerThread}`);
      const rem = path.join(workDir(), `set-aside-removed-${readerThread}`);
      // the default on one read, named on the other
      const r = await scoreLog(await DeepSentry.load(modelDir), d.file, out, { ...(readerThread ? { setAsideNew: true } : {}), readerThread, force: true });
      const without = await scoreLog(await DeepSentry.load(modelDir), d.blanked, rem, { readerThread, force: true });
      expect(r.setAside).to.deep.equal([{ message: DRIFT_MESSAGE, sessions: d.blocks }]);
      // the pass without them meets no common new message; the warning says what was set aside and how to score it
      expect(r.commonNewMessages).to.deep.equal([]);
      expect(r.warnings.filter((w) => w.includes(`"${DRIFT_MESSAGE}"`))).to.have.length(1);
      expect(r.warnings.find((w) => w.includes(`"${DRIFT_MESSAGE}"`))).to.match(/set aside \(setAsideNew\)/).and.to.match(/set setAsideNew false/).and.to.match(/deepsentry feedback/);
      expect([r.sessions, r.anomalies, r.newMessages, r.parsed - without.parsed]).to.deep.equal([without.sessions, without.anomalies, without.newMessages, d.blocks]);
      // sessions.csv: byte for byte the log's without those lines
      expect(sessionsOf(out).equals(sessionsOf(rem))).to.equal(true);
      // lines.csv: one row per parsed line and block, those set aside with no score and anomaly 0, the others as without them
      const rows = linesOf(out);
      expect(rows.filter((x) => x[2] !== '')).to.deep.equal(linesOf(rem));
      expect(rows.filter((x) => x[2] === '').map((x) => [Number(x[0]), x[1], x[3]]).sort((a, b) => (a[0] as number) - (b[0] as number))).to.deep.equal(d.inserted.map(([n, b]) => [n, b, '0']));
      // lib/eval reads it (a set-aside line: below every threshold)
      const read = await readSessionScores(out);
      expect(read.ids.length).to.equal(r.sessions);
      outs.push(out);
    }
    // read in a reader thread or here: the same files
    for (const f of ['sessions.csv', 'lines.csv']) expect(fs.readFileSync(path.join(outs[0]!, f)).equals(fs.readFileSync(path.join(outs[1]!, f))), f).to.equal(true);
  });

  it('setAsideNew: a key whose every line is set aside keeps its row in sessions.csv, unscored, and the shares keep their count', async () => {
    const modelDir = await trainedModel();
    const d = driftLog();
    const lines = fs.readFileSync(d.file, 'utf8').split('\n').filter(Boolean);
    // three blocks of nothing but the new message, amid the others (their time: the 100th line's)
    const t = hdfsTimeOf(lines[99]!);
    const only = ['blk_9000001', 'blk_9000002', 'blk_9000003'].flatMap((b) => [0, 1].map(() => withHdfsTime(`081109 000000 1 INFO dfs.DataNode$BlockReporter: Reported block ${b} to namenode with checksum`, t)));
    const log = path.join(workDir(), 'set-aside-only.log');
    fs.writeFileSync(log, [...lines.slice(0, 100), ...only, ...lines.slice(100)].join('\n') + '\n');
    const out = path.join(workDir(), 'set-aside-only');
    const r = await scoreLog(await DeepSentry.load(modelDir), log, out, { force: true });
    const off = await scoreLog(await DeepSentry.load(modelDir), log, path.join(workDir(), 'set-aside-only-off'), { setAsideNew: false, force: true });
    expect(r.setAside).to.deep.equal([{ message: DRIFT_MESSAGE, sessions: d.blocks + 3 }]);
    expect(r.sessions).to.equal(off.sessions);
    const rows = readCsv(path.join(out, 'sessions.csv'));
    for (const b of ['blk_9000001', 'blk_9000002', 'blk_9000003']) {
      expect(rows.filter((x) => x[0] === b).map((x) => x.slice(1, 4))).to.deep.equal([['-Infinity', '0', '0']]);
      expect(readCsv(path.join(out, 'lines.csv')).filter((x) => x[1] === b).map((x) => [x[2], x[3]])).to.deep.equal([['', '0'], ['', '0']]);
    }
    // every line of lines.csv under a key of sessions.csv, and lib/eval reads both
    expect(readCsv(path.join(out, 'lines.csv')).slice(1).filter((x) => x[1] === '')).to.deep.equal([]);
    const read = await readSessionScores(out);
    expect(read.ids.length).to.equal(r.sessions);
    expect(read.scores[read.index.get('blk_9000001')!]).to.equal(-Infinity);
  });

  it('setAsideNew: with no message common and new, nothing is set aside and the outputs are byte for byte those without it', async () => {
    const modelDir = await trainedModel();
    const log = hdfsSlice(5000);
    const a = await scoreLog(await DeepSentry.load(modelDir), log, path.join(workDir(), 'no-drift-a'), { setAsideNew: false, force: true });
    const b = await scoreLog(await DeepSentry.load(modelDir), log, path.join(workDir(), 'no-drift-b'), { force: true });
    expect(b.setAside).to.deep.equal([]);
    expect(b.commonNewMessages).to.deep.equal([]);
    const { seconds: _a, files: _fa, ...ra } = a;
    const { seconds: _b, files: _fb, ...rb } = b;
    expect(rb).to.deep.equal(ra);
    for (const f of ['sessions.csv', 'lines.csv']) expect(fs.readFileSync(path.join(workDir(), 'no-drift-a', f)).equals(fs.readFileSync(path.join(workDir(), 'no-drift-b', f))), f).to.equal(true);
  });

  it('setAsideNew on a stream: nothing set aside (it cannot be read twice), a warning after the one on the common new message', async () => {
    const modelDir = await trainedModel();
    const d = driftLog();
    const out = path.join(workDir(), 'set-aside-stream');
    const r = await scoreLog(await DeepSentry.load(modelDir), fs.createReadStream(d.file), out, { force: true });
    const plain = path.join(workDir(), 'set-aside-stream-plain');
    await scoreLog(await DeepSentry.load(modelDir), d.file, plain, { setAsideNew: false, force: true });
    expect(r.setAside).to.deep.equal([]);
    expect(r.commonNewMessages.map((c) => c.message)).to.deep.equal([DRIFT_MESSAGE]);
    const common = r.warnings.findIndex((w) => w.includes(`"${DRIFT_MESSAGE}"`) && /scores as new/.test(w));
    expect(common).to.be.at.least(0);
    expect(r.warnings.indexOf(SET_ASIDE_NEEDS_FILE)).to.equal(common + 1);
    for (const f of ['sessions.csv', 'lines.csv']) expect(fs.readFileSync(path.join(out, f)).equals(fs.readFileSync(path.join(plain, f))), f).to.equal(true);
  });

  it('an HDFS log (no label field in its format) is not evaluated without --labels', async () => {
    const out = path.join(workDir(), 'run-hdfs-nolabels');
    const r = await runPipeline(hdfsBlocks(20000), out, { config: tinyConfig() });
    expect(r.evaluation).to.equal(null);
    expect(fs.existsSync(path.join(out, 'metrics.json'))).to.equal(false);
  });
});

describe('output directories', () => {
  it('are created with their parents; a file in the way or an uncreatable place (/proc) is a DS_IO error, not a hang', async () => {
    const base = path.join(workDir(), 'outdirs');
    await createOutputDir(path.join(base, 'a', 'b', 'c'));
    expect(fs.statSync(path.join(base, 'a', 'b', 'c')).isDirectory()).to.equal(true);
    await createOutputDir(path.join(base, 'a', 'b', 'c')); // exists: fine
    fs.writeFileSync(path.join(base, 'file'), 'x');
    for (const bad of [path.join(base, 'file'), path.join(base, 'file', 'sub')]) {
      const err = await createOutputDir(bad).then(() => null, (e: unknown) => e);
      expect(err, bad).to.be.instanceOf(DeepSentryError);
      expect((err as DeepSentryError).code).to.equal('DS_IO');
      expect((err as Error).message).to.contain(bad);
    }
    // Node 20's mkdir({recursive: true}) never returns here; ours must fail (mocha's timeout catches a hang)
    if (fs.existsSync('/proc/self')) {
      const err = await createOutputDir('/proc/deepsentry-test/x').then(() => null, (e: unknown) => e);
      expect((err as DeepSentryError).code).to.equal('DS_IO');
    }
  });
});
