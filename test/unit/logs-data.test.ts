/**
 * lib/logs on the real data of ../shared/data (or $DEEPSENTRY_DATA_DIR): every HDFS line parses, sessions
 * reproduce event_traces.csv exactly, masked messages correspond one-to-one to the HDFS event templates, and
 * the loghub samples parse with their format strings. Skipped (with the reason) when the data is absent.
 */
import { expect } from 'chai';
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { DATA_DIR as DATA, requireData } from '../support/data';
import {
  BUILTIN_FORMATS,
  IssueLog,
  prepareLogs,
  readPreparedLines,
  readPreparedManifest,
  readPreparedMessages,
  readPreparedSessions,
  readRecords,
  Vocabulary,
  type LogRecord,
  type PreparedSession,
} from '../../lib/logs';
import { tempDir } from '../support/tmp';

const HDFS = join(DATA, 'hdfs-dev/HDFS.log');

function csvRows(path: string): string[][] {
  return readFileSync(path, 'utf8')
    .split(/\r?\n/)
    .slice(1)
    .filter((l) => l !== '')
    .map((l) => l.split(','));
}

/** Event id of a raw HDFS message by the loghub templates (`<*>` = anything), the most specific match. */
function templateMatcher(): (content: string) => string {
  const templates = csvRows(join(DATA, 'loghub/HDFS/HDFS_templates.csv')).map(([id, ...t]) => {
    const tpl = t.join(',');
    const re = new RegExp('^' + tpl.split('<*>').map((s) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('.*') + '$', 's');
    return { id, re, len: tpl.replace(/<\*>/g, '').length };
  });
  return (content) => {
    let best: { id: string; len: number } | null = null;
    for (const t of templates) if (t.re.test(content) && (best === null || t.len > best.len)) best = t;
    if (best === null) throw new Error(`no HDFS template matches ${JSON.stringify(content)}`);
    return best.id;
  };
}

describe('logs on real data (shared/data)', function () {
  let out = '';
  before(function () {
    requireData(this);
    out = tempDir('logs-data');
  });
  after(() => {
    if (out) rmSync(out, { recursive: true, force: true });
  });

  it('hdfs-dev: every line parses; sessions reproduce event_traces.csv (5,150 blocks, same lines per block)', async () => {
    const summary = await prepareLogs([HDFS], out, { format: 'auto', strict: true });
    expect(summary).to.include({ lines: 99735, parsed: 99735, unparsed: 0, sessions: 5150, unsessioned: 0, sessionMode: 'key' });
    expect(summary.formats).to.deep.equal(['hdfs']);
    const raw = readFileSync(HDFS, 'utf8').split('\n').filter((l) => l !== '');
    expect(raw).to.have.length(99735);
    const eventOf = templateMatcher();
    const rowEvent = raw.map((l) => eventOf(l.slice(l.indexOf(': ') + 2)));

    const traces = new Map(csvRows(join(DATA, 'hdfs-dev/event_traces.csv')).map((r) => [r[0], r[2]]));
    expect(traces.size).to.equal(5150);
    const sessions: PreparedSession[] = [];
    for await (const s of readPreparedSessions(out)) sessions.push(s);
    expect(sessions).to.have.length(5150);
    expect(new Set(sessions.map((s) => s.key)).size).to.equal(5150);
    // Plain loops and one assertion each: 100k chai calls would dominate the test's time.
    const wrong: string[] = [];
    let covered = 0;
    let unordered = 0;
    const msgEvents = new Map<number, Set<string>>();
    const eventMsgs = new Map<string, Set<number>>();
    for (const s of sessions) {
      const got = s.rows.map((r) => rowEvent[r]).join(' ');
      if (traces.get(s.key) !== got) wrong.push(`${s.key}: got ${got}, want ${traces.get(s.key)}`);
      for (let i = 1; i < s.rows.length; i++) if (s.rows[i] <= s.rows[i - 1]) unordered++;
      covered += s.rows.length;
      s.rows.forEach((r, i) => {
        const e = rowEvent[r];
        const m = s.messages[i];
        (msgEvents.get(m) ?? msgEvents.set(m, new Set()).get(m)!).add(e);
        (eventMsgs.get(e) ?? eventMsgs.set(e, new Set()).get(e)!).add(m);
      });
    }
    expect(wrong.slice(0, 3)).to.deep.equal([]);
    expect(unordered).to.equal(0); // rows of a session in line order
    expect(covered).to.equal(99735); // each line in exactly one block

    // masked messages <-> HDFS events: one-to-one over the events that occur
    const messages = await readPreparedMessages(out);
    const text = (id: number) => messages[id - 2].text;
    for (const [m, es] of msgEvents) expect([...es], `message ${text(m)}`).to.have.length(1);
    for (const [e, ms] of eventMsgs) expect([...ms].map(text), `event ${e}`).to.have.length(1);
    expect(messages).to.have.length(eventMsgs.size);
    expect(summary.distinctMessages).to.equal(eventMsgs.size);
    expect([...eventMsgs.keys()].length).to.be.greaterThan(20);

    // lines.bin agrees with the sessions and the input
    let n = 0;
    let bad = 0;
    const rowSession = new Map<number, number>();
    for (const s of sessions) for (const r of s.rows) rowSession.set(r, s.id);
    for await (const l of readPreparedLines(out)) {
      if (l.line !== n + 1 || l.session !== rowSession.get(l.row) || l.label !== -1 || typeof l.timestamp !== 'number') bad++;
      n++;
    }
    expect(n).to.equal(99735);
    expect(bad).to.equal(0);
    const vocab = await Vocabulary.load(join(out, 'vocab.json'));
    expect(vocab.size).to.equal(summary.vocabularySize);
    expect(vocab.tokens.slice(0, 3)).to.deep.equal(['<pad>', '<eos>', '<unk>']);
    for (const m of messages) expect(m.ids).to.deep.equal(Array.from(vocab.encode(m.tokens)));
    const manifest = await readPreparedManifest(out);
    expect(manifest.summary.sessions).to.equal(5150);
  });

  const samples: [string, string][] = [
    ['BGL/BGL_2k.log', 'bgl'],
    ['Spark/Spark_2k.log', 'spark'],
    ['Zookeeper/Zookeeper_2k.log', 'zookeeper'],
    ['HPC/HPC_2k.log', 'hpc'],
    ['HDFS/HDFS_2k.log', 'hdfs'],
  ];
  for (const [file, name] of samples) {
    it(`loghub ${file}: parses with its format string (and is auto-detected as ${name}), no unparsed line`, async () => {
      const spec = BUILTIN_FORMATS[name];
      const p = join(DATA, 'loghub', file);
      // The loghub samples are not in time order (sampled from merged node logs): out-of-order lines are
      // kept and counted; nothing else may be wrong.
      const issues = new IssueLog(false, 10);
      const recs: LogRecord[] = [];
      for await (const r of readRecords(p, { format: spec }, { issues })) recs.push(r);
      expect(recs).to.have.length(2000);
      expect(issues.total - issues.counts.out_of_order, issues.summary()).to.equal(0);
      for (const r of recs) expect(r.timestamp).to.be.a('number');
      const auto: LogRecord[] = [];
      for await (const r of readRecords(p, { format: 'auto' })) auto.push(r);
      expect(auto.map((r) => r.masked)).to.deep.equal(recs.map((r) => r.masked));
    });
  }

  it('loghub README format strings find their own timestamps: the built-in formats\' times (BGL: its <Timestamp> seconds)', async () => {
    const strings: Record<string, [string, string]> = {
      'HDFS/HDFS_2k.log': ['<Date> <Time> <Pid> <Level> <Component>: <Content>', 'hdfs'],
      'BGL/BGL_2k.log': ['<Label> <Timestamp> <Date> <Node> <Time> <NodeRepeat> <Type> <Component> <Level> <Content>', 'bgl'],
      'Spark/Spark_2k.log': ['<Date> <Time> <Level> <Component>: <Content>', 'spark'],
      'Zookeeper/Zookeeper_2k.log': ['<Date> <Time> - <Level>  \\[<Node>:<Component>@<Id>\\] - <Content>', 'zookeeper'],
      'HPC/HPC_2k.log': ['<LogId> <Node> <Component> <State> <Time> <Flag> <Content>', 'hpc'],
    };
    for (const [file, [fmt, builtin]] of Object.entries(strings)) {
      const p = join(DATA, 'loghub', file);
      const issues = new IssueLog(false, 10);
      const plain: LogRecord[] = [];
      for await (const r of readRecords(p, { format: fmt }, { issues })) plain.push(r);
      expect(plain, file).to.have.length(2000);
      expect(issues.total - issues.counts.out_of_order, `${file}: ${issues.summary()}`).to.equal(0);
      const want: number[] = [];
      if (builtin === 'bgl') {
        for (const l of readFileSync(p, 'utf8').split('\n')) if (l !== '') want.push(Number(l.split(' ')[1]) * 1000);
      } else {
        for await (const r of readRecords(p, { format: builtin })) want.push(r.timestamp as number);
      }
      expect(plain.map((r) => r.timestamp), file).to.deep.equal(want);
      // and so auto sessions are time windows, as with the built-in format
      const dir = join(out, `plain-${builtin}`);
      const summary = await prepareLogs([p], dir, { format: fmt });
      expect(summary.sessionMode, file).to.equal('time');
      expect(summary.timestamps, file).to.deep.equal([
        { hdfs: '<Date> <Time> as YYMMDD HHmmss', bgl: '<Timestamp> as epoch-s', spark: '<Date> <Time> as YY/MM/DD HH:mm:ss', zookeeper: '<Date> <Time> as iso8601', hpc: '<Time> as epoch-s' }[builtin],
      ]);
    }
  });

  it("BGL's first column is the per-line label: 143 alert lines", async () => {
    const p = join(DATA, 'loghub/BGL/BGL_2k.log');
    const firstCol = readFileSync(p, 'utf8').split('\n').filter((l) => l !== '').map((l) => l.split(' ')[0]);
    const recs: LogRecord[] = [];
    for await (const r of readRecords(p, { format: 'bgl' })) recs.push(r);
    expect(recs.map((r) => r.label)).to.deep.equal(firstCol);
    expect(recs.filter((r) => r.anomaly === true)).to.have.length(143);
    // sessions by a parsed field: one per BGL node
    const nodes = new Set(recs.map((r) => r.fields.Node));
    const byNode: string[] = [];
    for await (const r of readRecords(p, { format: 'bgl', session: { mode: 'field', field: 'Node' } }, { onSession: (s) => byNode.push(s.key) })) void r;
    expect(new Set(byNode)).to.deep.equal(nodes);
    expect(byNode).to.have.length(nodes.size);
    // …and it reaches lines.bin
    const dir = join(out, 'bgl');
    await prepareLogs([p], dir, { format: 'bgl' });
    let anomalies = 0;
    for await (const l of readPreparedLines(dir)) if (l.label === 1) anomalies++;
    expect(anomalies).to.equal(143);
  });
});
