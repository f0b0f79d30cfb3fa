/**
 * `deepsentry feedback` on a real case: the tiny model (trained on hdfs-dev's first 20k lines) scores all of
 * hdfs-dev (on its first 60k lines it raises no false alarm since count relations wait for the count horizon),
 * the highest-scoring false alarm (by hdfs-dev's labels) is marked normal, the model is updated in
 * place as version 2, and scoring again clears that session while anomalous ones stay flagged. Bad marks (an
 * unknown session, a file of another kind) are clear errors that leave the model as it was.
 */
import { expect } from 'chai';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { readSessionScores } from '../../lib/eval/scores';
import { CountModel } from '../../lib/models/counts';
import { DeepSentry, FIRST_ID, readFeedbackFile, scoreLog } from '../../lib/pipeline';
import { DeepSentryError } from '../../lib/errors';
import { DRIFT_MESSAGE, driftLog, hdfsSlice, hdfsTimeOf, trainedModel, withHdfsTime } from '../support/pipeline-fixtures';
import { learnNormal } from '../../lib/pipeline/feedback';
import { HDFS_DEV_LABELS, requireData } from '../support/data';
import { runCli } from '../support/cli';
import { tempDir } from '../support/tmp';

function labels(): Map<string, string> {
  const m = new Map<string, string>();
  for (const l of fs.readFileSync(HDFS_DEV_LABELS, 'utf8').split('\n').slice(1)) {
    const [k, v] = l.split(',');
    if (k) m.set(k, (v ?? '').trim());
  }
  return m;
}

async function score(model: string, log: string, out: string): Promise<{ threshold: number; scores: Map<string, number> }> {
  const m = await DeepSentry.load(model);
  try {
    await scoreLog(m, log, out, { lines: false, force: true });
    const s = await readSessionScores(out);
    return { threshold: m.threshold, scores: new Map(s.ids.map((k, i) => [k, s.scores[i]])) };
  } finally {
    m.dispose();
  }
}

/**
 * The blocks of `lines` whose first 13 lines are a complete write — allocated, received and stored three times,
 * the third addStoredBlock its 13th line — as [block id, those 13 lines].
 */
function completeWrites(lines: readonly string[]): Array<[string, string[]]> {
  const byKey = new Map<string, string[]>();
  for (const l of lines) for (const k of new Set(l.match(/blk_-?\d+/g) ?? [])) byKey.set(k, [...(byKey.get(k) ?? []), l]);
  const stored = (ls: string[]) => ls.map((l, i) => (l.includes('addStoredBlock') ? i : -1)).filter((i) => i >= 0);
  return [...byKey]
    .filter(([, ls]) => stored(ls).length >= 3 && stored(ls)[2]! === 12 && ls.slice(0, 13).some((l) => l.includes('allocateBlock')))
    .map(([k, ls]) => [k, ls.slice(0, 13)]);
}

describe('deepsentry feedback: false alarms learnt as normal', function () {
  this.timeout(300000);
  before(function () {
    requireData(this);
  });

  it('a false alarm marked normal scores below the threshold after; the anomalies stay flagged; the model is version 2 of its parent', async () => {
    const dir = tempDir('feedback');
    const model = path.join(dir, 'model');
    fs.cpSync(await trainedModel(), model, { recursive: true });
    const parentSha = JSON.parse(fs.readFileSync(path.join(model, 'model.json'), 'utf8')).contentSha256;
    const log = hdfsSlice(100000);
    const lab = labels();
    const before = await score(model, log, path.join(dir, 'before'));
    const flagged = [...before.scores].filter(([, s]) => s >= before.threshold);
    const falseAlarm = flagged.filter(([k]) => lab.get(k) === 'Normal').sort((a, b) => b[1] - a[1])[0];
    expect(falseAlarm, 'the tiny model has a false alarm on hdfs-dev').to.not.equal(undefined);
    const anomalies = flagged.filter(([k]) => lab.get(k) === 'Anomaly');
    expect(anomalies.length).to.be.greaterThan(0);
    const marks = path.join(dir, 'false-alarms.txt');
    fs.writeFileSync(marks, `# false alarms\n${falseAlarm[0]}\n`);

    const r = runCli(['feedback', '--model', model, '--normal', marks, '--log', log, '--json']);
    expect(r.code, r.stderr).to.equal(0);
    const out = JSON.parse(r.stdout);
    expect(out.sessions).to.have.length(1);
    expect(out.sessions[0].session).to.equal(falseAlarm[0]);
    expect(out.sessions[0].before).to.be.closeTo(falseAlarm[1], 1e-4);
    expect(out.threshold).to.equal(before.threshold);
    expect(out.lineage).to.deep.include({ version: 2, parent: { version: 1, contentSha256: parentSha } });
    expect(out.lineage.feedback[0].sessions).to.deep.equal([falseAlarm[0]]);
    const saved = JSON.parse(fs.readFileSync(path.join(model, 'model.json'), 'utf8'));
    expect(saved.metrics.lineage.version).to.equal(2);
    expect(saved.thresholds.session.value).to.equal(before.threshold);

    const after = await score(model, log, path.join(dir, 'after'));
    expect(after.scores.get(falseAlarm[0]) as number).to.be.below(after.threshold);
    expect(out.sessions[0].after).to.be.closeTo(after.scores.get(falseAlarm[0]) as number, 1e-4);
    // No session of the log became an alarm, and anomalies stay flagged. The ones cleared besides the marked
    // session are reported (out.cleared); on this slice they are blocks whose counts of the messages in count
    // relations equal the marked block's, and what else sets them apart scores below the tiny model's threshold.
    expect(out.raised).to.deep.equal([]);
    const stillFlagged = anomalies.filter(([k]) => (after.scores.get(k) as number) >= after.threshold);
    expect(stillFlagged.length).to.be.greaterThan(0);
    const cleared = new Set(out.cleared.map((c: { session: string }) => c.session));
    for (const [k] of anomalies) expect(cleared.has(k) || (after.scores.get(k) as number) >= after.threshold, k).to.equal(true);
  });

  it('a block flagged by its count judgement over two sessions (the count horizon) is learnt with both sessions\' counts', async () => {
    const dir = tempDir('feedback-chain');
    const model = path.join(dir, 'model');
    fs.cpSync(await trainedModel(), model, { recursive: true });
    const slice = fs.readFileSync(hdfsSlice(20000), 'utf8').split('\n').filter(Boolean);
    // A block of the slice written completely, copied after the slice as blk_777: its addStoredBlock lines 10
    // minutes late (a second session, within the count horizon) and one of them missing.
    const [k0, written] = completeWrites(slice).find(([, ls]) => ls[0]!.includes('allocateBlock'))!;
    const t0 = hdfsTimeOf(slice[slice.length - 1]!) + 60_000;
    const copy = written.map((l) => l.split(k0).join('blk_777'));
    const first = copy.filter((l) => !l.includes('addStoredBlock')).map((l) => withHdfsTime(l, t0));
    const late = copy.filter((l) => l.includes('addStoredBlock')).slice(0, 2).map((l) => withHdfsTime(l, t0 + 10 * 60_000));
    const log = path.join(dir, 'app.log');
    // and a line of another block 20 minutes on: blk_777's second session has ended when the input does
    const other = withHdfsTime(slice[0]!, t0 + 20 * 60_000);
    fs.writeFileSync(log, [...slice, ...first, ...late, other].join('\n') + '\n');
    const before = await score(model, log, path.join(dir, 'before'));
    const why = (await readSessionScores(path.join(dir, 'before'))).explanation;
    const at = (await readSessionScores(path.join(dir, 'before'))).index.get('blk_777')!;
    expect(before.scores.get('blk_777'), 'flagged').to.be.at.least(before.threshold);
    expect(why[at]!.message).to.equal('<end of session>');
    expect(why[at]!.reason).to.match(/count\(.*here/);
    const marks = path.join(dir, 'marks.txt');
    fs.writeFileSync(marks, 'blk_777\n');
    const r = runCli(['feedback', '--model', model, '--normal', marks, '--log', log, '--json', '--epochs', '2']);
    expect(r.code, r.stderr).to.equal(0);
    const out = JSON.parse(r.stdout);
    expect(out.sessions[0].before).to.be.closeTo(before.scores.get('blk_777')!, 1e-4);
    const after = await score(model, log, path.join(dir, 'after'));
    expect(after.scores.get('blk_777'), 'cleared').to.be.below(after.threshold);
    expect(out.sessions[0].after).to.be.closeTo(after.scores.get('blk_777')!, 1e-4);
  });

  it('a marked key\'s composition is remembered: another block with the same lines per message in another order scores 0, one with a line more does not', async () => {
    const dir = tempDir('feedback-known');
    const model = path.join(dir, 'model');
    fs.cpSync(await trainedModel(), model, { recursive: true });
    const slice = fs.readFileSync(hdfsSlice(20000), 'utf8').split('\n').filter(Boolean);
    // A complete write of the slice copied after it as three blocks missing their last addStoredBlock (a count
    // relation broken): blk_777 as written, blk_888 with its first two lines swapped, blk_999 with a Receiving line more.
    const [k0, written] = completeWrites(slice)[0]!;
    const t0 = hdfsTimeOf(slice[slice.length - 1]!) + 60_000;
    const short = written.slice(0, 12).map((l) => withHdfsTime(l, t0));
    const as = (k: string, ls: string[]) => ls.map((l) => l.split(k0).join(k));
    const swapped = [short[1]!, short[0]!, ...short.slice(2)];
    const receiving = short.find((l) => l.includes('Receiving block'))!;
    const log = path.join(dir, 'app.log');
    const other = withHdfsTime(slice[0]!, t0 + 20 * 60_000);
    fs.writeFileSync(log, [...slice, ...as('blk_777', short), ...as('blk_888', swapped), ...as('blk_999', [...short, receiving]), other].join('\n') + '\n');
    const before = await score(model, log, path.join(dir, 'before'));
    for (const k of ['blk_777', 'blk_888', 'blk_999']) expect(before.scores.get(k), `${k} flagged`).to.be.at.least(before.threshold);
    const marks = path.join(dir, 'marks.txt');
    fs.writeFileSync(marks, 'blk_777\n');
    const r = runCli(['feedback', '--model', model, '--normal', marks, '--log', log, '--json', '--epochs', '2']);
    expect(r.code, r.stderr).to.equal(0);
    const out = JSON.parse(r.stdout);
    const saved = JSON.parse(fs.readFileSync(path.join(model, 'model.json'), 'utf8'));
    expect(saved.extra.knownNormal.sources).to.deep.equal(['feedback']);
    expect(saved.extra.knownNormal.keys).to.have.length(1);
    expect(out.knownCompositions).to.equal(1);
    const after = await score(model, log, path.join(dir, 'after'));
    expect(after.scores.get('blk_777')).to.equal(0);
    expect(after.scores.get('blk_888'), 'the same composition, never marked').to.equal(0);
    expect(after.scores.get('blk_999'), 'another composition: the detector scores it').to.be.greaterThan(0);
    // feedback's own report scores keys as score does
    expect(out.sessions[0].after).to.equal(0);
    expect(out.cleared.find((c: { session: string }) => c.session === 'blk_888')).to.deep.include({ after: 0 });
    // with the memory off the detector's own scores come back
    const m = await DeepSentry.load(model);
    try {
      m.config.scoring.knownNormal = false;
      await scoreLog(m, log, path.join(dir, 'off'), { lines: false, force: true });
      const off = await readSessionScores(path.join(dir, 'off'));
      expect(off.scores[off.index.get('blk_888')!]).to.be.greaterThan(0);
    } finally {
      m.dispose();
    }
  });

  it('a message never seen in training, in a marked session, becomes a known message: other sessions holding it clear, another new message stays flagged', async () => {
    const dir = tempDir('feedback-new-message');
    const model = path.join(dir, 'model');
    fs.cpSync(await trainedModel(), model, { recursive: true });
    const slice = fs.readFileSync(hdfsSlice(20000), 'utf8').split('\n').filter(Boolean);
    // Seven complete writes of the slice's blocks (allocated, received and stored three times), copied after the
    // slice as blk_9100…blk_9106: blk_9100 as it was; 9101–9105 with a message the model never saw (a software
    // update's new log line) at varying places; 9106 with another new message.
    const writes = completeWrites(slice)
      .slice(0, 7)
      .map(([k, ls]) => ls.map((l) => l.split(k).join('BLK')));
    expect(writes).to.have.length(7);
    let t = hdfsTimeOf(slice[slice.length - 1]!) + 60_000;
    const out: string[] = [];
    writes.forEach((w, i) => {
      const id = `blk_${9100 + i}`;
      const lines = w.map((l) => l.split('BLK').join(id));
      if (i >= 1 && i <= 5) lines.splice(1 + i, 0, `${lines[1 + i]!.slice(0, 13)} 321 INFO dfs.DataNode$BlockScanner: Scheduling rescan of ${id} after quota rebalance on volume /mnt/hadoop/dfs/data with priority high`);
      if (i === 6) lines.splice(4, 0, `${lines[4]!.slice(0, 13)} 321 WARN dfs.DataNode$DataXceiver: Scanning block ${id} for corruption at offset 4096 with verifier sha256 failed`);
      for (const l of lines) out.push(withHdfsTime(l, t));
      t += 10_000;
    });
    out.push(withHdfsTime(slice[0]!, t + 2 * 3600_000)); // every copy has ended and been judged when the input does
    const log = path.join(dir, 'app.log');
    fs.writeFileSync(log, [...slice, ...out].join('\n') + '\n');
    const before = await score(model, log, path.join(dir, 'before'));
    const s = (k: number, x: { scores: Map<string, number> }) => x.scores.get(`blk_${k}`) as number;
    expect(s(9100, before), 'the unchanged copy').to.be.below(before.threshold);
    for (let k = 9101; k <= 9106; k++) expect(s(k, before), `blk_${k} holds a new message`).to.be.at.least(before.threshold);
    const marks = path.join(dir, 'marks.txt');
    fs.writeFileSync(marks, 'blk_9101\n');
    const r = runCli(['feedback', '--model', model, '--normal', marks, '--log', log, '--json', '--epochs', '2']);
    expect(r.code, r.stderr).to.equal(0);
    const fb = JSON.parse(r.stdout);
    expect(fb.sessions[0]).to.include({ session: 'blk_9101', newMessages: 1 });
    expect(fb.acceptedMessages).to.equal(1);
    const saved = JSON.parse(fs.readFileSync(path.join(model, 'model.json'), 'utf8'));
    expect(saved.extra.messages.filter((m: string) => /Scheduling rescan/.test(m))).to.have.length(1);
    expect(saved.extra.messages.some((m: string) => /Scanning block/.test(m))).to.equal(false);
    expect(saved.extra.counts).to.have.length(saved.extra.messages.length);
    const after = await score(model, log, path.join(dir, 'after'));
    expect(fb.sessions[0].after).to.be.closeTo(s(9101, after), 1e-4);
    for (let k = 9101; k <= 9105; k++) expect(s(k, after), `blk_${k} (the new message is known now)`).to.be.below(after.threshold);
    expect(s(9106, after), 'another new message').to.be.at.least(after.threshold);
    expect(fb.cleared.map((c: { session: string }) => c.session)).to.include.members(['blk_9102', 'blk_9103', 'blk_9104', 'blk_9105']);
  });

  it('a message common and new in the log is left out of its sessions as score sets it aside: not learnt from a marked session, still set aside after', async () => {
    const d = driftLog();
    const marked = d.inserted[0]![1];
    const load = async () => DeepSentry.load(await trainedModel());
    const m = await load();
    const r = await learnNormal(m, { log: d.file, sessions: [marked], epochs: 1 });
    expect(r.setAside).to.deep.equal([{ message: DRIFT_MESSAGE, sessions: d.blocks }]);
    expect(r.acceptedMessages).to.equal(0);
    expect(m.knows(m.messageId(DRIFT_MESSAGE))).to.equal(false);
    const after = await scoreLog(m, d.file, path.join(tempDir('feedback-set-aside'), 'after'), { lines: false, force: true });
    expect(after.setAside.map((c) => c.message)).to.deep.equal([DRIFT_MESSAGE]);
    // the marked session's score before is score's, with the message set aside
    const plain = await scoreLog(await load(), d.file, path.join(tempDir('feedback-set-aside'), 'before'), { lines: false, force: true });
    const rows = await readSessionScores(path.dirname(plain.files.sessions));
    expect(r.sessions[0]!.before).to.be.closeTo(rows.scores[rows.index.get(marked)!]!, 1e-5);
    // setAsideNew false: learnt from the marked session, known after
    const m2 = await load();
    const r2 = await learnNormal(m2, { log: d.file, sessions: [marked], epochs: 1, setAsideNew: false });
    expect([r2.setAside, r2.acceptedMessages, m2.knows(m2.messageId(DRIFT_MESSAGE))]).to.deep.equal([[], 1, true]);
  });

  it('acceptMessages drops exactly the accepted message\'s novelty term, nothing else; the model saved and loaded knows it and scores alike', async () => {
    const m = await DeepSentry.load(await trainedModel());
    const dir = tempDir('accept-messages');
    try {
      const NEW_A = 'Scheduling rescan of <BLK> after quota rebalance on volume <PATH> with priority high';
      const NEW_B = 'Scanning block <BLK> for corruption at offset <NUM> with verifier <ID> failed';
      const k = (i: number) => m.messageId(m.messageText(FIRST_ID + i) as string);
      const a = m.messageId(NEW_A);
      const b = m.messageId(NEW_B);
      const session = { messageIds: [k(0), k(1), a, k(2), b, k(1)], ended: true };
      const before = m.scoreSessions([session]).lineScores[0]!;
      const tok = (t: string) => m.vocabulary.encode(m.tokenizer.tokenize(t).tokens);
      const novelty = m.text.reconstructionError([tok(NEW_A)])[0]!;
      expect(novelty, 'a new message has a novelty term').to.be.greaterThan(0.1);
      expect(m.knows(a)).to.equal(false);
      expect(m.acceptMessages([a, a, k(0)])).to.equal(1);
      expect(m.knows(a)).to.equal(true);
      expect(m.knows(b)).to.equal(false);
      const after = m.scoreSessions([session]).lineScores[0]!;
      after.forEach((x, i) => expect(x, `line ${i}`).to.be.closeTo(i === 2 ? before[i]! - novelty : before[i]!, 1e-4));
      expect(() => m.acceptMessages([m.tableSize])).to.throw(DeepSentryError, /not in the model's table/);
      await m.save(path.join(dir, 'model'));
      const m2 = await DeepSentry.load(path.join(dir, 'model'));
      try {
        expect(m2.knownCount).to.equal(m.knownCount + 1);
        expect(m2.knows(m2.messageId(NEW_A))).to.equal(true);
        expect(m2.knows(m2.messageId(NEW_B))).to.equal(false);
        const again = m2.scoreSessions([{ messageIds: [k(0), k(1), NEW_A, k(2), NEW_B, k(1)].map((x) => (typeof x === 'string' ? m2.messageId(x) : x)), ended: true }]).lineScores[0]!;
        again.forEach((x, i) => expect(x, `line ${i} after loading`).to.be.closeTo(after[i]!, 1e-4));
      } finally {
        m2.dispose();
      }
    } finally {
      m.dispose();
    }
  });

  it('reads alerts NDJSON, a sessions.csv (its flagged rows) and id lists; anything else is an error naming the file and line', async () => {
    const dir = tempDir('feedback-files');
    const f = (name: string, text: string) => {
      const p = path.join(dir, name);
      fs.writeFileSync(p, text);
      return p;
    };
    expect(await readFeedbackFile(f('alerts.ndjson', '{"session":"blk_1","score":20}\n\n{"session":"blk_2"}\n{"session":"blk_1"}\n'))).to.deep.equal(['blk_1', 'blk_2']);
    expect(await readFeedbackFile(f('sessions.csv', 'session,score,anomaly,lines\nblk_1,20,1,3\nblk_2,2,0,3\n"a,b",30,1,2\n'))).to.deep.equal(['blk_1', 'a,b']);
    expect(await readFeedbackFile(f('ids.txt', '# marked by hand\nblk_1\n  blk_3  # second\n'))).to.deep.equal(['blk_1', 'blk_3']);
    const err = async (p: string, re: RegExp) => {
      const e = await readFeedbackFile(p).then(() => null, (x: unknown) => x);
      expect(e).to.be.instanceOf(DeepSentryError);
      expect((e as Error).message).to.match(re);
    };
    await err(f('labels.csv', 'BlockId,Label\nblk_1,Normal\n'), /labels\.csv line 1: .*neither an alert/);
    await err(f('bad.ndjson', '{"session":"blk_1"}\n{oops\n'), /bad\.ndjson line 2: not JSON/);
    await err(f('nosession.ndjson', '{"score":3}\n'), /nosession\.ndjson line 1: the alert has no "session"/);
    await err(f('empty.txt', '\n# nothing\n'), /empty\.txt is empty/);
    await err(f('clean.csv', 'session,score,anomaly\nblk_1,2,0\n'), /no row of this sessions\.csv is flagged/);
    await err(path.join(dir, 'missing.txt'), /missing\.txt: cannot read it/);
  });

  it('an unknown session or a wrong file: exit 1 naming it, the model untouched', async () => {
    const dir = tempDir('feedback-bad');
    const model = path.join(dir, 'model');
    fs.cpSync(await trainedModel(), model, { recursive: true });
    const json = fs.readFileSync(path.join(model, 'model.json'), 'utf8');
    const log = hdfsSlice(20000);
    const ids = path.join(dir, 'ids.txt');
    fs.writeFileSync(ids, 'blk_424242\n');
    const r = runCli(['feedback', '--model', model, '--normal', ids, '--log', log]);
    expect(r.code).to.equal(1);
    expect(r.stderr).to.match(/ids\.txt: 1 of 1 sessions are not in .*hdfs-20000\.log.*blk_424242/);
    const wrong = runCli(['feedback', '--model', model, '--normal', HDFS_DEV_LABELS, '--log', log]);
    expect(wrong.code).to.equal(1);
    expect(wrong.stderr).to.match(/anomaly_label\.csv line 1: .*neither an alert/);
    expect(fs.readFileSync(path.join(model, 'model.json'), 'utf8')).to.equal(json);
  });

  it('--out writes the new version elsewhere (--model untouched; an earlier model there needs --force); same --seed, same weights', async () => {
    const dir = tempDir('feedback-out');
    const model = await trainedModel();
    const json = fs.readFileSync(path.join(model, 'model.json'), 'utf8');
    const log = hdfsSlice(20000);
    const alerts = path.join(dir, 'alerts.ndjson');
    // a block of the slice, given as live's alerts give it
    const key = (/blk_-?\d+/.exec(fs.readFileSync(log, 'utf8')) as RegExpExecArray)[0];
    fs.writeFileSync(alerts, `${JSON.stringify({ session: key, score: 1 })}\n`);
    const args = (out: string) => ['feedback', '--model', model, '--normal', alerts, '--log', log, '--out', out, '--epochs', '2', '--quiet'];
    for (const out of ['a', 'b']) {
      const r = runCli(args(path.join(dir, out)));
      expect(r.code, r.stderr).to.equal(0);
    }
    expect(fs.readFileSync(path.join(model, 'model.json'), 'utf8')).to.equal(json);
    const shards = (d: string) => fs.readdirSync(path.join(dir, d)).filter((f) => f.endsWith('.bin')).map((f) => fs.readFileSync(path.join(dir, d, f)));
    expect(Buffer.concat(shards('a')).equals(Buffer.concat(shards('b')))).to.equal(true);
    const again = runCli(args(path.join(dir, 'a')));
    expect(again.code).to.equal(1);
    expect(again.stderr).to.match(/--force/);
    expect(runCli([...args(path.join(dir, 'a')), '--force']).code).to.equal(0);
  });

  it('CountModel.accept excuses exactly the marked profile: other violations of the same relation stay surprising', () => {
    const sessions: Map<number, number>[] = [];
    for (let k = 0; k < 98; k++) sessions.push(new Map([[5, 1], [6, 3]]));
    sessions.push(new Map([[5, 1], [6, 2]]), new Map([[5, 1], [6, 1]]));
    const m = new CountModel(20, 0.95).fit(sessions);
    const s = m.surprise(new Map([[5, 1], [6, 2]]));
    expect(s).to.be.greaterThan(0);
    expect(m.accept(new Map([[5, 1], [6, 2]]))).to.have.length(1);
    expect(m.surprise(new Map([[5, 1], [6, 2]]))).to.equal(0);
    expect(m.surprise(new Map([[5, 1], [6, 1]]))).to.equal(s);
    expect(m.surprise(new Map([[5, 2], [6, 2]]))).to.be.greaterThan(0);
    expect(m.accept(new Map([[5, 1], [6, 3]]))).to.deep.equal([]);
    const back = CountModel.fromJSON(JSON.parse(JSON.stringify(m.toJSON())), 'test');
    expect(back.surprise(new Map([[5, 1], [6, 2]]))).to.equal(0);
    expect(() => CountModel.fromJSON({ ...m.toJSON(), accepted: [[[5, -1]]] }, 'm.json')).to.throw(DeepSentryError, /m\.json: the count model's accepted profiles/);
  });
});
