/**
 * lib/logs units: formats, timestamps, masking, tokenizer, vocabulary, sessions, windows, line reader edge
 * cases and bad input (skip + count + report, and strict errors naming file and line).
 */
import { expect } from 'chai';
import { rmSync, writeFileSync } from 'node:fs';
import { isUtf8 } from 'node:buffer';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { DeepSentryError } from '../../lib/errors';
import {
  BUILTIN_FORMATS,
  compileTimestamp,
  createFormat,
  DEFAULT_LOG_CONFIG,
  detectFormat,
  END_MESSAGE,
  inferLoghubTimestamp,
  IssueLog,
  Masker,
  PAD_MESSAGE,
  ParseFailure,
  parseFormatArg,
  prepareLogs,
  readLineBatches,
  readRecords,
  resolveLogConfig,
  SessionKeyer,
  Sessionizer,
  sessionWindows,
  Tokenizer,
  Vocabulary,
  newReadStats,
  type ClosedSession,
  type InputOptions,
  type LogConfigOverrides,
  type LogRecord,
  type ParsedLine,
} from '../../lib/logs';
import { tempDir } from '../support/tmp';

const OPTS = { year: 2026, utcOffsetMinutes: 0 };
const HDFS1 = '081109 203532 147 INFO dfs.DataNode$DataXceiver: Receiving block blk_-660 src: /10.251.194.245:57455 dest: /10.251.194.245:50010';

function parsed(r: ParsedLine | ParseFailure): ParsedLine {
  if (r instanceof ParseFailure) throw new Error(`expected a parse, got ${r.kind}: ${r.reason}`);
  return r;
}

let dir: string;
before(() => {
  dir = tempDir('logs');
});
after(() => rmSync(dir, { recursive: true, force: true }));

async function collect(source: string | Readable, o: LogConfigOverrides = {}, input: InputOptions = {}) {
  const issues = new IssueLog(o.strict ?? false, 100);
  const records: LogRecord[] = [];
  const sessions: ClosedSession[] = [];
  for await (const r of readRecords(source, o, { issues, onSession: (s) => sessions.push(s), ...input })) records.push(r);
  return { records, sessions, issues };
}

async function expectStrictError(source: string | Readable, o: LogConfigOverrides, re: RegExp, input: InputOptions = {}): Promise<void> {
  try {
    await collect(source, { ...o, strict: true }, input);
  } catch (e) {
    expect(e).to.be.instanceOf(DeepSentryError);
    expect((e as DeepSentryError).code).to.equal('DS_PARSE');
    expect((e as Error).message).to.match(re);
    return;
  }
  expect.fail('strict mode did not throw');
}

describe('logs: timestamps', () => {
  it('parses HDFS YYMMDD HHMMSS, ISO 8601 with zones, epoch s/ms, patterns, into epoch ms', () => {
    expect(compileTimestamp('YYMMDD HHmmss')('081109 203532')).to.equal(Date.UTC(2008, 10, 9, 20, 35, 32));
    const iso = compileTimestamp('iso8601');
    expect(iso('2026-11-22T01:02:03.456Z')).to.equal(Date.UTC(2026, 10, 22, 1, 2, 3, 456));
    expect(iso('2026-11-22 01:02:03,5+01:00')).to.equal(Date.UTC(2026, 10, 22, 0, 2, 3, 500));
    expect(iso('2026-11-22')).to.equal(Date.UTC(2026, 10, 22));
    expect(compileTimestamp('iso8601', { utcOffsetMinutes: 120 })('2026-11-22T02:00:00')).to.equal(Date.UTC(2026, 10, 22, 0));
    expect(compileTimestamp('epoch')('1117838570')).to.equal(1117838570000);
    expect(compileTimestamp('epoch-s')('1117838570.25')).to.equal(1117838570250);
    expect(compileTimestamp('epoch-ms')('1117838570123')).to.equal(1117838570123);
    expect(compileTimestamp('YYYY-MM-DD-HH.mm.ss.SSS')('2005-06-03-15.42.50.675872')).to.equal(Date.UTC(2005, 5, 3, 15, 42, 50, 675));
    expect(compileTimestamp('YY/MM/DD HH:mm:ss')('17/06/09 20:10:40')).to.equal(Date.UTC(2017, 5, 9, 20, 10, 40));
  });

  it('gives NaN (never a guess) for malformed or impossible dates', () => {
    const hdfs = compileTimestamp('YYMMDD HHmmss');
    for (const s of ['081309 203532', '080230 000000', '081109 253532', 'garbage', '']) expect(hdfs(s), s).to.be.NaN;
    expect(compileTimestamp('iso8601')('2026-02-30T00:00:00Z')).to.be.NaN;
    expect(compileTimestamp('epoch')('12a')).to.be.NaN;
  });

  it('syslog yearless timestamps take the configured year and roll over Dec → Jan', () => {
    const p = compileTimestamp('syslog', { year: 2025 });
    expect(p('Dec 31 23:59:59')).to.equal(Date.UTC(2025, 11, 31, 23, 59, 59));
    expect(p('Jan  1 00:00:01')).to.equal(Date.UTC(2026, 0, 1, 0, 0, 1));
    expect(p('Foo  1 00:00:01')).to.be.NaN;
  });

  it('rejects a pattern without year or month as a config error', () => {
    expect(() => compileTimestamp('HH:mm:ss')).to.throw(DeepSentryError, /needs a year/);
  });
});

describe('logs: formats', () => {
  it('hdfs: fields, message, timestamp; non-HDFS lines fail as unparsed, bad dates as bad_timestamp', () => {
    const f = createFormat('hdfs', OPTS);
    const p = parsed(f.parse(HDFS1));
    expect(p.timestamp).to.equal(Date.UTC(2008, 10, 9, 20, 35, 32));
    expect(p.fields).to.deep.equal({ Date: '081109', Time: '203532', Pid: '147', Level: 'INFO', Component: 'dfs.DataNode$DataXceiver' });
    expect(p.message).to.equal('Receiving block blk_-660 src: /10.251.194.245:57455 dest: /10.251.194.245:50010');
    expect((f.parse('hello world') as ParseFailure).kind).to.equal('unparsed');
    // fields are sliced when first read: a line's fields read after later lines (of other seconds) were parsed are its own
    const a = parsed(f.parse('081110 000001 12 WARN dfs.A: one'));
    const b = parsed(f.parse('081110 000001 13 INFO dfs.B: two'));
    const c = parsed(f.parse('081111 235959 14 ERROR dfs.C: three'));
    expect([c.fields, b.fields, a.fields]).to.deep.equal([
      { Date: '081111', Time: '235959', Pid: '14', Level: 'ERROR', Component: 'dfs.C' },
      { Date: '081110', Time: '000001', Pid: '13', Level: 'INFO', Component: 'dfs.B' },
      { Date: '081110', Time: '000001', Pid: '12', Level: 'WARN', Component: 'dfs.A' },
    ]);
    expect(Object.keys(a.fields)).to.deep.equal(['Date', 'Time', 'Pid', 'Level', 'Component']);
    expect((f.parse('081399 203532 147 INFO x: y') as ParseFailure).kind).to.equal('bad_timestamp');
    expect((f.parse('08a109 203532 147 INFO x: y') as ParseFailure).kind).to.equal('bad_timestamp');
  });

  it('loghub format strings: escaped brackets (Zookeeper) and optional groups (Thunderbird)', () => {
    const zk = createFormat(BUILTIN_FORMATS.zookeeper, OPTS);
    const z = parsed(zk.parse('2015-07-29 19:04:12,394 - INFO  [/10.10.34.11:3888:QuorumCnxManager$Listener@493] - Received connection request /10.10.34.11:45307'));
    // loghub's lazy fields: <Node> stops at the first ':' (as in loghub's own parsers).
    expect(z.fields).to.include({ Level: 'INFO', Node: '/10.10.34.11', Component: '3888:QuorumCnxManager$Listener', Id: '493' });
    expect(z.message).to.equal('Received connection request /10.10.34.11:45307');
    expect(z.timestamp).to.equal(Date.UTC(2015, 6, 29, 19, 4, 12, 394));

    const tb = createFormat(BUILTIN_FORMATS.thunderbird, OPTS);
    const withPid = parsed(tb.parse('- 1131566461 2005.11.09 dn228 Nov 9 12:01:01 dn228/dn228 crond(pam_unix)[2915]: session closed for user root'));
    expect(withPid.fields).to.include({ Component: 'crond(pam_unix)', PID: '2915', Location: 'dn228/dn228', Label: '-' });
    expect(withPid.message).to.equal('session closed for user root');
    expect(withPid.timestamp).to.equal(1131566461000);
    const noPid = parsed(tb.parse('- 1131566461 2005.11.09 tbird-admin1 Nov 9 12:01:01 local@tbird-admin1 /apps/x/y.sh: ok done'));
    expect(noPid.fields.Component).to.equal('/apps/x/y.sh');
    expect(noPid.fields.PID).to.equal('');
    expect(tb.label?.normal).to.deep.equal(['-']);
    // A custom format string from the CLI; its own regex groups do not shift the fields.
    const custom = createFormat('<Level> (x|y)? \\[<Thread>\\] <Content>', OPTS);
    expect(parsed(custom.parse('WARN x [main] all good')).fields).to.deep.equal({ Level: 'WARN', Thread: 'main' });
    expect(custom.hasTimestamp).to.equal(false);
    expect(() => createFormat('<Level> <Thing>', OPTS)).to.throw(DeepSentryError, /no <Content>/);
  });

  it('JSON lines with dotted paths for time, message, session key and label', () => {
    const f = createFormat({ type: 'json', message: 'log.msg', time: 'ts', timestampFormat: 'epoch-ms', session: 'ctx.req', label: 'y' }, OPTS);
    const p = parsed(f.parse('{"ts":1700000000123,"log":{"msg":"GET /a took 12 ms"},"ctx":{"req":"r-1"},"y":"Normal","level":"info"}'));
    expect(p).to.deep.include({ timestamp: 1700000000123, message: 'GET /a took 12 ms', sessionKey: 'r-1', label: 'Normal' });
    expect(p.fields.level).to.equal('info');
    expect((f.parse('{"log":{"msg":"x"}}') as ParseFailure).kind).to.equal('bad_timestamp');
    expect((f.parse('{"ts":1,"log":{}}') as ParseFailure).kind).to.equal('unparsed');
    expect((f.parse('{broken') as ParseFailure).kind).to.equal('unparsed');
    const auto = createFormat('json', OPTS);
    expect(parsed(auto.parse('{"@timestamp":"2026-11-22T00:00:00Z","message":"hi"}')).timestamp).to.equal(Date.UTC(2026, 10, 22));
    expect(parsed(auto.parse('{"time":1700000000,"msg":"hi"}')).timestamp).to.equal(1700000000000);
    expect(parseFormatArg('json:message=m,time=t,timeFormat=epoch-s,session=s')).to.deep.equal({ type: 'json', message: 'm', time: 't', timestampFormat: 'epoch-s', session: 's' });
  });

  it('RFC 5424 and RFC 3164 syslog', () => {
    const f5 = createFormat('rfc5424', OPTS);
    const p5 = parsed(f5.parse('<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 [exampleSDID@32473 iut="3" eventSource="Application"] An application event log entry'));
    expect(p5.timestamp).to.equal(Date.UTC(2003, 9, 11, 22, 14, 15, 3));
    expect(p5.message).to.equal('An application event log entry');
    expect(p5.fields).to.include({ facility: '20', severity: '5', host: 'mymachine.example.com', app: 'evntslog', msgid: 'ID47' });
    expect((f5.parse('<34>1 - host app - - - nil time') as ParseFailure).kind).to.equal('bad_timestamp');
    const f3 = createFormat('rfc3164', { year: 2025, utcOffsetMinutes: 0 });
    const p3 = parsed(f3.parse('<34>Oct 11 22:14:15 mymachine su[123]: \'su root\' failed for lonvick on /dev/pts/8'));
    expect(p3.timestamp).to.equal(Date.UTC(2025, 9, 11, 22, 14, 15));
    expect(p3.fields).to.include({ host: 'mymachine', tag: 'su', pid: '123', severity: '2' });
    expect(p3.message).to.equal("'su root' failed for lonvick on /dev/pts/8");
    expect(parsed(f3.parse('Nov  2 01:02:03 host kernel: boot')).fields.tag).to.equal('kernel');
  });

  it('regex with named groups; a regex without (?<message>) is a config error', () => {
    const f = createFormat({ type: 'regex', pattern: '^(?<timestamp>\\S+) \\[(?<session>\\w+)\\] (?<level>\\w+) (?<message>.*)$' }, OPTS);
    const p = parsed(f.parse('2026-11-22T00:00:01Z [s42] ERROR disk full'));
    expect(p).to.deep.include({ timestamp: Date.UTC(2026, 10, 22, 0, 0, 1), sessionKey: 's42', message: 'disk full' });
    expect(p.fields.level).to.equal('ERROR');
    expect((f.parse('nope') as ParseFailure).kind).to.equal('unparsed');
    expect(() => createFormat('regex:(?<x>.*)', OPTS)).to.throw(DeepSentryError, /message/);
    expect(() => createFormat('nonsense', OPTS)).to.throw(DeepSentryError, /Unknown format/);
  });

  it('auto-detects each built-in from sample lines and names the input when nothing fits', () => {
    const samples: Record<string, string> = {
      hdfs: HDFS1,
      zookeeper: '2015-07-29 17:41:44,747 - INFO  [QuorumPeer[myid=1]/0:0:0:0:0:0:0:0:2181:FastLeaderElection@774] - Notification time out: 3200',
      spark: '17/06/09 20:10:40 INFO spark.SecurityManager: Changing view acls to: yarn,curi',
      bgl: '- 1117838570 2005.06.03 R02-M1-N0-C:J12-U11 2005-06-03-15.42.50.675872 R02-M1-N0-C:J12-U11 RAS KERNEL INFO instruction cache parity error corrected',
      thunderbird: '- 1131566461 2005.11.09 dn228 Nov 9 12:01:01 dn228/dn228 crond(pam_unix)[2915]: session closed for user root',
      hpc: '134681 node-246 unix.hw state_change.unavailable 1077804742 1 Component State Change: Component is unavailable',
      rfc5424: '<165>1 2003-10-11T22:14:15.003Z host app - ID47 - message here',
      rfc3164: '<34>Oct 11 22:14:15 mymachine su: failed',
      json: '{"timestamp":"2026-11-22T00:00:00Z","message":"hello"}',
    };
    for (const [name, line] of Object.entries(samples)) expect(detectFormat([line, line], OPTS).name, name).to.equal(name);
    expect(() => detectFormat(['just words', 'more words'], OPTS, 'x.log')).to.throw(DeepSentryError, /x\.log.*set logs\.format/);
  });
});

describe('logs: masking and tokenizer', () => {
  const m = new Masker(DEFAULT_LOG_CONFIG.masking.rules, true);
  it('masks IPv4/IPv6 with port, hex, numbers, block ids, paths, UUIDs and keeps the values', () => {
    const r = m.mask('blk_-12 from /10.0.0.1:50010 to [fe80::1]:8080 at 0xDEADbeef size 42 file /var/log/x.log id 123e4567-e89b-12d3-a456-426614174000 v2 abc123 2001:db8::7');
    // (v2 abc123: two identifiers with digits, one <ID> after repeats collapse)
    expect(r.masked).to.equal('<BLK> from /<IP> to <IP> at <HEX> size <NUM> file <PATH> id <UUID> <ID> <IP>');
    expect(r.values.map((v) => `${v.rule}=${v.value}`)).to.deep.equal([
      'blk=blk_-12',
      'ip=10.0.0.1:50010',
      'ipv6=[fe80::1]:8080',
      'hex=0xDEADbeef',
      'num=42',
      'path=/var/log/x.log',
      'uuid=123e4567-e89b-12d3-a456-426614174000',
      'id=v2',
      'id=abc123',
      'ipv6=2001:db8::7',
    ]);
  });

  it('masks identifiers that hold a digit (as Drain treats such tokens), not words, and keeps trailing punctuation', () => {
    const cases: [string, string][] = [
      ['generating core.2275', 'generating <ID>'],
      ['Block rdd_16_4 stored as bytes', 'Block <ID> stored as bytes'],
      ['attempt_201706092018_0024_m_000120_1145: Committed', '<ID>: Committed'],
      ['There is no server for ServerFileSystem domain storage1024', 'There is no server for ServerFileSystem domain <ID>'],
      ['iar 0014a150 dear 0098cdc8', 'iar <ID> dear <ID>'],
      ['node-D2 and nodes:node-[3-7]', '<ID> and nodes:node-[<NUM>-<NUM>]'],
      ['data TLB error interrupt', 'data TLB error interrupt'],
      ['x-y.z, done.', 'x-y.z, done.'],
      ['slot J08.', 'slot <ID>.'],
    ];
    for (const [input, want] of cases) expect(m.mask(input).masked, input).to.equal(want);
  });
  it('first rule in order wins at a position; lists of one placeholder collapse; custom rules and placeholders', () => {
    expect(m.mask('to 10.0.0.1:1, 10.0.0.2:2 10.0.0.3:3 done').masked).to.equal('to <IP> done');
    expect(new Masker(DEFAULT_LOG_CONFIG.masking.rules, false).mask('to 10.0.0.1, 10.0.0.2').masked).to.equal('to <IP>, <IP>');
    const c = new Masker([{ name: 'user', pattern: 'user=(\\w+)' }, { name: 'n', pattern: '\\d+', maskWith: '<N>' }]);
    const r = c.mask('user=bob tried 3 times');
    expect(r.masked).to.equal('<USER> tried <N> times');
    expect(r.values).to.deep.equal([{ rule: 'user', value: 'user=bob' }, { rule: 'n', value: '3' }]);
    expect(() => new Masker([{ name: 'bad', pattern: '(' }])).to.throw(DeepSentryError, /bad/);
    expect(m.mask('writeBlock <BLK> received exception java.io.IOException: Connection reset by peer 12').masked).to.equal('writeBlock <BLK> received exception <EXCEPTION>');
  });
  it('tokenizer: words, punctuation and placeholders; lower-casing; truncation counted', () => {
    const t = new Tokenizer({ lowercase: true, maxTokens: 64 });
    expect(t.tokenize('BLOCK* NameSystem.addStoredBlock: <IP> is added').tokens).to.deep.equal(['block', '*', 'namesystem', '.', 'addstoredblock', ':', '<IP>', 'is', 'added']);
    const short = new Tokenizer({ lowercase: false, maxTokens: 3 });
    expect(short.tokenize('a b c d e')).to.deep.equal({ tokens: ['a', 'b', 'c'], truncated: true });
    expect(short.tokenize('a b c')).to.deep.equal({ tokens: ['a', 'b', 'c'], truncated: false });
    expect(short.truncatedCount).to.equal(1);
  });
});

describe('logs: vocabulary', () => {
  it('specials have stable ids, minCount and maxSize apply, ties break by code point; save/load round-trips', async () => {
    const counts = new Map([['b', 5], ['a', 5], ['c', 9], ['rare', 1], ['mid', 2]]);
    const v = Vocabulary.build(counts, { minCount: 2, maxSize: 6 });
    expect(v.tokens).to.deep.equal(['<pad>', '<eos>', '<unk>', 'c', 'a', 'b']);
    expect(v.id('rare')).to.equal(2);
    expect(v.id('mid')).to.equal(2); // cut by maxSize
    expect(Array.from(v.encode(['c', 'zzz'], true))).to.deep.equal([3, 2, 1]);
    const p = join(dir, 'vocab.json');
    await v.save(p);
    const w = await Vocabulary.load(p);
    expect(w.tokens).to.deep.equal(v.tokens);
    expect(w.counts).to.deep.equal(v.counts);
    writeFileSync(p, JSON.stringify({ ...v.toJSON(), tokens: ['<eos>', '<pad>', '<unk>', 'c', 'a', 'b'] }));
    let err: unknown;
    await Vocabulary.load(p).catch((e) => (err = e));
    expect((err as DeepSentryError).code).to.equal('DS_MODEL');
  });
});

describe('logs: sessions and windows', () => {
  it('key regex: a line naming several keys joins each once (all) or only the first (first)', () => {
    const cfg = resolveLogConfig({ session: { mode: 'key' } }).session;
    const k = new SessionKeyer('key', cfg);
    expect(k.keys({ message: 'Deleting block blk_1 file /d/blk_1 and blk_-2 blk_1', fields: {} }, null)).to.deep.equal(['blk_1', 'blk_-2']);
    expect(new SessionKeyer('key', { ...cfg, multiKey: 'first' }).keys({ message: 'blk_1 blk_2', fields: {} }, null)).to.deep.equal(['blk_1']);
    expect(k.keys({ message: 'no key here', fields: {} }, null)).to.deep.equal([]);
    const t = new SessionKeyer('time', { ...cfg, windowMs: 1000 });
    expect(t.keys({ message: 'x', fields: {} }, 2500)).to.deep.equal(['time:1970-01-01T00:00:02.000Z']);
    expect(t.windowEnd).to.equal(3000);
    const c = new SessionKeyer('count', { ...cfg, windowLines: 2 });
    expect([0, 1, 2].map(() => c.keys({ message: 'x', fields: {} }, null)[0])).to.deep.equal(['count:0', 'count:0', 'count:1']);
  });

  it('sessionizer: explicit clock closes idle sessions, bounded open sessions evict the least recently active', () => {
    const closed: ClosedSession[] = [];
    const s = new Sessionizer({ idleTimeoutMs: 100, maxOpen: 2 }, (c) => closed.push(c));
    s.advance(0);
    s.add('a', 0, 10, 0);
    s.advance(50);
    s.add('b', 1, 11, 50);
    s.add('a', 2, 12, 50); // a is now the most recently active
    s.advance(120); // nothing idle yet: a and b last seen at 50
    expect(closed).to.have.length(0);
    s.add('c', 3, 13, 120); // third open session: b (least recent) is evicted
    expect(closed.map((c) => [c.key, c.reason])).to.deep.equal([['b', 'evicted']]);
    s.advance(149);
    expect(closed).to.have.length(1);
    s.advance(150); // a idle since 50
    expect(closed.map((c) => [c.key, c.reason])).to.deep.equal([['b', 'evicted'], ['a', 'idle']]);
    expect(closed[1]).to.deep.include({ rows: [0, 2], messageIds: [10, 12], firstTs: 0, lastTs: 50 });
    s.advance(100); // the clock never goes back
    expect(s.clock).to.equal(150);
    s.add('a', 4, 14, 150); // the key again: a new session with a new id
    s.flush();
    expect(closed.map((c) => [c.key, c.id, c.reason])).to.deep.equal([['b', 1, 'evicted'], ['a', 0, 'idle'], ['c', 2, 'end'], ['a', 3, 'end']]);
    expect(s.stats).to.deep.equal({ opened: 4, closed: 4, evicted: 1, idle: 1 });
  });

  it('sessionizer: repeated lines of the most recent session keep the activity order; a closed one reopens', () => {
    const closed: ClosedSession[] = [];
    const s = new Sessionizer({ idleTimeoutMs: 100, maxOpen: 2, maxLines: 3 }, (c) => closed.push(c));
    s.advance(0);
    s.add('a', 0, 10, 0);
    s.add('b', 1, 11, 0);
    s.add('b', 2, 12, 0);
    s.add('a', 3, 13, 0);
    s.add('a', 4, 14, 0); // a full (3 lines): closes
    s.add('a', 5, 15, 0); // the same key right after: a new session
    s.add('a', 6, 16, 0);
    s.add('c', 7, 17, 0); // b is the least recently active: evicted
    expect(closed.map((c) => [c.key, c.id, c.rows, c.reason])).to.deep.equal([
      ['a', 0, [0, 3, 4], 'full'],
      ['b', 1, [1, 2], 'evicted'],
    ]);
    expect(s.snapshot().open.map((o) => [o.key, o.rows])).to.deep.equal([
      ['a', [5, 6]],
      ['c', [7]],
    ]);
  });

  it('time windows close when the event clock passes their end; count windows close when full', async () => {
    const p = join(dir, 'windows.jsonl');
    const ts = [0, 400, 999, 1000, 1500, 3200];
    writeFileSync(p, ts.map((t) => JSON.stringify({ time: t, msg: `event at ${t}` })).join('\n'));
    const fmt = { type: 'json' as const, time: 'time', timestampFormat: 'epoch-ms', message: 'msg' };
    const time = await collect(p, { format: fmt, session: { mode: 'auto', windowMs: 1000 } });
    expect(time.sessions.map((x) => [x.key, x.rows, x.reason])).to.deep.equal([
      ['time:1970-01-01T00:00:00.000Z', [0, 1, 2], 'window'],
      ['time:1970-01-01T00:00:01.000Z', [3, 4], 'window'],
      ['time:1970-01-01T00:00:03.000Z', [5], 'end'],
    ]);
    const count = await collect(p, { format: fmt, session: { mode: 'count', windowLines: 4 } });
    expect(count.sessions.map((x) => [x.key, x.rows, x.reason])).to.deep.equal([
      ['count:0', [0, 1, 2, 3], 'full'],
      ['count:1', [4, 5], 'end'],
    ]);
  });

  it('sessionizer snapshot/restore continues exactly where it stopped (live checkpoints)', () => {
    const run = (restart: boolean) => {
      const closed: ClosedSession[] = [];
      let s = new Sessionizer({ idleTimeoutMs: 100, maxOpen: 10 }, (c) => closed.push(c));
      const events: [string, number][] = [['a', 0], ['b', 10], ['a', 50], ['c', 120], ['b', 130], ['a', 300], ['c', 310]];
      events.forEach(([k, t], i) => {
        if (restart && i === 4) {
          const snap = JSON.parse(JSON.stringify(s.snapshot()));
          s = new Sessionizer({ idleTimeoutMs: 100, maxOpen: 10 }, (c) => closed.push(c));
          s.restore(snap);
        }
        s.advance(t);
        s.add(k, i, 100 + i, t);
      });
      s.flush();
      return { closed, stats: s.stats };
    };
    const straight = run(false);
    expect(straight.closed.map((c) => c.reason)).to.include('idle');
    expect(run(true)).to.deep.equal(straight);
    expect(() => new Sessionizer({ idleTimeoutMs: null, maxOpen: 1 }, () => {}).restore({} as never)).to.throw(DeepSentryError, /snapshot/);
  });

  it('sessionizer: the same closes and snapshots as a reference that re-inserts into a Map, on seeded random lines', () => {
    // the reference: open sessions in a Map, in activity order by deleting and re-inserting the key at each line
    class Reference {
      open = new Map<string, { id: number; key: string; rows: number[]; last: number; deadline: number; window: boolean }>();
      closed: [string, number, number[], string][] = [];
      now = -Infinity;
      id = 0;
      constructor(
        readonly idle: number,
        readonly maxOpen: number,
        readonly maxLines: number | null,
      ) {}
      close(k: string, reason: string) {
        const s = this.open.get(k)!;
        this.open.delete(k);
        this.closed.push([k, s.id, s.rows, reason]);
      }
      add(k: string, row: number, deadline?: number) {
        let s = this.open.get(k);
        if (s === undefined) {
          s = { id: this.id++, key: k, rows: [], last: 0, deadline: Infinity, window: false };
          this.open.set(k, s);
          if (this.open.size > this.maxOpen) this.close(this.open.keys().next().value as string, 'evicted');
        } else {
          this.open.delete(k);
          this.open.set(k, s);
        }
        s.rows.push(row);
        if (deadline !== undefined) [s.deadline, s.window] = [deadline, true];
        else if (Number.isFinite(this.now)) s.deadline = this.now + this.idle;
        if (this.maxLines !== null && s.rows.length >= this.maxLines) this.close(k, 'full');
      }
      advance(now: number) {
        if (!(now > this.now)) return;
        const first = !Number.isFinite(this.now);
        this.now = now;
        if (first) for (const s of this.open.values()) if (!s.window) s.deadline = now + this.idle;
        for (const s of [...this.open.values()]) {
          if (s.deadline > now) break;
          this.close(s.key, s.window ? 'window' : 'idle');
        }
      }
      flush() {
        for (const k of [...this.open.keys()]) this.close(k, 'end');
      }
    }
    let seed = 7;
    const rand = (n: number) => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) % n);
    for (let round = 0; round < 40; round++) {
      const idle = 5 + rand(30);
      const maxOpen = 1 + rand(6);
      const maxLines = rand(3) === 0 ? 2 + rand(4) : null;
      const ref = new Reference(idle, maxOpen, maxLines);
      const closed: ClosedSession[] = [];
      let s = new Sessionizer({ idleTimeoutMs: idle, maxOpen, maxLines }, (c) => closed.push(c));
      let t = rand(2) === 0 ? 0 : -Infinity;
      for (let i = 0; i < 300; i++) {
        const r = rand(20);
        if (r === 0 && Number.isFinite(t)) {
          // a restart from a snapshot
          const snap = JSON.parse(JSON.stringify(s.snapshot()));
          s = new Sessionizer({ idleTimeoutMs: idle, maxOpen, maxLines }, (c) => closed.push(c));
          s.restore(snap);
        } else if (r < 5) {
          t = (Number.isFinite(t) ? t : 0) + rand(15);
          s.advance(t);
          ref.advance(t);
        } else {
          const k = `k${rand(8)}`;
          const deadline = rand(6) === 0 && Number.isFinite(t) ? t + rand(20) : undefined;
          s.add(k, i, 0, null, deadline);
          ref.add(k, i, deadline);
        }
        expect([...s.openKeys()], `round ${round}, step ${i}`).to.deep.equal([...ref.open.keys()]);
        expect(s.snapshot().open.map((o) => o.key)).to.deep.equal([...ref.open.keys()]);
      }
      s.flush();
      ref.flush();
      expect(closed.map((c) => [c.key, c.id, c.rows, c.reason]), `round ${round}`).to.deep.equal(ref.closed);
    }
  });

  it('windows: W ids per message, start padding, the end-of-session event last', () => {
    const { windows, count } = sessionWindows([5, 6, 7], 3);
    expect(count).to.equal(4);
    expect(Array.from(windows)).to.deep.equal([PAD_MESSAGE, PAD_MESSAGE, 5, PAD_MESSAGE, 5, 6, 5, 6, 7, 6, 7, END_MESSAGE]);
    expect(sessionWindows([5], 2, { end: false }).count).to.equal(1);
    expect(() => sessionWindows([1], 1)).to.throw(DeepSentryError, /size/);
  });
});

describe('logs: line reader and bad input', () => {
  const good = (i: number) => `081109 2035${String(10 + i).padStart(2, '0')} 1 INFO dfs.X: Receiving block blk_${i} src: /10.0.0.1:1`;

  it('splits identically for any chunk size (carry across chunks, CRLF, last line without newline)', async () => {
    const text = Array.from({ length: 40 }, (_, i) => (i % 7 === 3 ? '' : `line ${i} ${'é'.repeat(i % 5)}`)).join('\r\n') + '\nlast';
    const expected = text.split('\n').map((l) => l.replace(/\r$/, '')).map((l, i) => [i + 1, l] as const).filter(([, l]) => l !== '');
    for (const chunk of [1, 2, 3, 7, 64, 1 << 16]) {
      const p = join(dir, `split-${chunk}.log`);
      writeFileSync(p, text);
      const got: (readonly [number, string])[] = [];
      const stats = newReadStats();
      for await (const b of readLineBatches(p, { maxLineBytes: 1000, issues: new IssueLog(true, 10), chunkBytes: chunk, stats })) b.lines.forEach((l, i) => got.push([b.lineNos[i], l]));
      expect(got, `chunk ${chunk}`).to.deep.equal(expected);
      expect(stats.blank).to.equal(6);
      expect(stats.crlf).to.equal(39);
    }
  });

  it('a piece of a line kept after its batch (a session key) does not keep the batch in memory', async () => {
    // 8 MiB of lines read in 1 MiB blocks; one session key kept per batch, as a scorer keeps its sessions'.
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    const p = join(dir, 'pinning.log');
    const line = (i: number) => `${good(i % 40)} ${'x'.repeat(100)} blk_${String(i).padStart(20, '0')}`;
    writeFileSync(p, Array.from({ length: (8 << 20) / line(0).length }, (_, i) => line(i)).join('\n') + '\n');
    // lines[1]: the first line of a block may be one carried over from the block before (decoded on its own)
    const read = async (kept: string[]) => {
      for await (const b of readLineBatches(p, { maxLineBytes: 1000, issues: new IssueLog(true, 10) })) kept.push(b.lines[1].slice(-24));
    };
    const settled = async () => {
      gc();
      await new Promise((r) => setTimeout(r, 10));
      gc();
      return process.memoryUsage().heapUsed;
    };
    await read([]); // once first: what the first read compiles and caches is not counted
    const before = await settled();
    const kept: string[] = [];
    await read(kept);
    const held = (await settled()) - before;
    expect(kept.length).to.be.greaterThan(6);
    expect(held, `${(held / 2 ** 20).toFixed(1)} MiB held for ${kept.length} keys`).to.be.below(2 << 20);
  });

  it('matches a naive reference on 60 seeded random inputs (any chunk size, long lines, bad bytes, CR, blanks)', async () => {
    let seed = 12345;
    const rnd = (n: number) => {
      seed = (seed * 1103515245 + 12345) >>> 0;
      return (seed >>> 8) % n;
    };
    const pieces = [Buffer.from('ab'), Buffer.from('é'), Buffer.from('\r'), Buffer.from('\n'), Buffer.from('\n'), Buffer.from(' '), Buffer.from('\u00a0'), Buffer.from([0]), Buffer.from([0xc3]), Buffer.from('xyzxyzxyz')];
    for (let k = 0; k < 60; k++) {
      const parts: Buffer[] = [];
      for (let i = rnd(80); i > 0; i--) parts.push(pieces[rnd(pieces.length)]);
      const buf = Buffer.concat(parts);
      const max = 4 + rnd(20);
      // Reference: split bytes on \n, classify each line the documented way.
      const expected: [number, string][] = [];
      const kinds: [string, number][] = [];
      const raw: Buffer[] = [];
      let start = 0;
      for (let i = 0; i <= buf.length; i++)
        if (i === buf.length || buf[i] === 10) {
          if (i < buf.length || i > start) raw.push(buf.subarray(start, i));
          start = i + 1;
        }
      raw.forEach((b, i) => {
        const body = b.length > 0 && b[b.length - 1] === 13 ? b.subarray(0, -1) : b;
        if (body.length > max) kinds.push(['line_too_long', i + 1]);
        else if (body.includes(0)) kinds.push(['nul_byte', i + 1]);
        else if (!isUtf8(body)) kinds.push(['invalid_utf8', i + 1]);
        else if (body.toString().trim() !== '') expected.push([i + 1, body.toString()]);
      });
      const p = join(dir, `rand-${k}.log`);
      writeFileSync(p, buf);
      const issues = new IssueLog(false, 1000);
      const got: [number, string][] = [];
      for await (const b of readLineBatches(p, { maxLineBytes: max, issues, chunkBytes: 1 + rnd(16) })) b.lines.forEach((l, i) => got.push([b.lineNos[i], l]));
      expect(got, `case ${k}`).to.deep.equal(expected);
      expect(issues.first.map((x) => [x.kind, x.line]), `case ${k}`).to.deep.equal(kinds);
    }
  });

  it('default: invalid UTF-8, NUL, a 10 MB line, blank lines, bad timestamps are skipped, counted and reported by line', async () => {
    const p = join(dir, 'bad.log');
    const parts: Buffer[] = [
      Buffer.from(good(1) + '\r\n'), // 1 CRLF: fine
      Buffer.from('\n'), // 2 blank
      Buffer.concat([Buffer.from(good(2).slice(0, 30)), Buffer.from([0xff, 0xfe]), Buffer.from('\n')]), // 3 invalid UTF-8
      Buffer.from(good(3).replace('Receiving', 'Rec\0eiving') + '\n'), // 4 NUL
      Buffer.from('x'.repeat(10 * 1024 * 1024) + '\n'), // 5: 10 MB line
      Buffer.from('081199 203501 1 INFO dfs.X: month 11 day 99\n'), // 6 bad timestamp
      Buffer.from('not a log line at all\n'), // 7 unparsed
      Buffer.from(good(4) + '\n'), // 8
      Buffer.from('   \t \n'), // 9 blank
      Buffer.from(good(5)), // 10, no final newline
    ];
    writeFileSync(p, Buffer.concat(parts));
    const { records, issues } = await collect(p, { format: 'hdfs' });
    expect(records.map((r) => r.line)).to.deep.equal([1, 8, 10]);
    expect(records[0].message.endsWith('\r')).to.equal(false);
    expect(issues.counts).to.include({ invalid_utf8: 1, nul_byte: 1, line_too_long: 1, bad_timestamp: 1, unparsed: 1 });
    expect(issues.first.map((i) => [i.kind, i.line])).to.deep.equal([
      ['invalid_utf8', 3],
      ['nul_byte', 4],
      ['line_too_long', 5],
      ['bad_timestamp', 6],
      ['unparsed', 7],
    ]);
    expect(issues.first[0].file).to.equal(p);
    // strict: the first bad line is an error naming file and line
    await expectStrictError(p, { format: 'hdfs' }, new RegExp(`bad\\.log:3: invalid UTF-8`));
  });

  it('a 10 MB line is accepted when maxLineBytes allows it', async () => {
    const p = join(dir, 'long.log');
    const long = `081109 203510 1 INFO dfs.X: ${'y'.repeat(10 * 1024 * 1024)}`;
    writeFileSync(p, `${long}\n${good(1)}\n`);
    const { records } = await collect(p, { format: 'hdfs', maxLineBytes: 11 * 1024 * 1024 });
    expect(records.map((r) => r.message.length)).to.deep.equal([10 * 1024 * 1024, good(1).length - 28]);
  });

  it('a UTF-8 BOM is dropped; a consumer that stops early gets no more records', async () => {
    const p = join(dir, 'bom.log');
    writeFileSync(p, Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(Array.from({ length: 50 }, () => good(1)).join('\n'))]));
    const { records, issues } = await collect(p, { format: 'auto', strict: true });
    expect(records).to.have.length(50);
    expect(issues.total).to.equal(0);
    let n = 0;
    for await (const r of readRecords(p, { format: 'hdfs' })) {
      void r;
      if (++n === 3) break;
    }
    expect(n).to.equal(3);
  });

  it('out-of-order timestamps are kept and counted by default, skipped on request, an error in strict mode', async () => {
    const p = join(dir, 'ooo.log');
    writeFileSync(p, [good(5), good(1), good(6)].join('\n') + '\n');
    const keep = await collect(p, { format: 'hdfs' });
    expect(keep.records.map((r) => r.line)).to.deep.equal([1, 2, 3]);
    expect(keep.issues.counts.out_of_order).to.equal(1);
    expect(keep.issues.first[0]).to.deep.include({ kind: 'out_of_order', line: 2 });
    const skip = await collect(p, { format: 'hdfs', outOfOrder: 'skip' });
    expect(skip.records.map((r) => r.line)).to.deep.equal([1, 3]);
    await expectStrictError(p, { format: 'hdfs' }, /ooo\.log:2: timestamp .* earlier/);
  });

  it('gzip is read transparently (file and stream); a truncated gzip is an error naming it, or with acceptTruncated keeps the lines before the cut and reports it', async () => {
    const lines = Array.from({ length: 2000 }, (_, i) => good(0).replace('blk_0', `blk_${i}`));
    const gz = gzipSync(Buffer.from(lines.join('\n') + '\n'));
    const p = join(dir, 'a.log.gz');
    writeFileSync(p, gz);
    expect((await collect(p, { format: 'hdfs' })).records).to.have.length(2000);
    expect((await collect(Readable.from([gz.subarray(0, 10), gz.subarray(10)]), { format: 'hdfs' })).records).to.have.length(2000);
    const cut = join(dir, 'cut.log.gz');
    writeFileSync(cut, gz.subarray(0, Math.floor(gz.length / 2)));
    const err = await collect(cut, { format: 'hdfs' }).then(() => null, (e: unknown) => e);
    expect(err).to.be.instanceOf(DeepSentryError);
    expect((err as DeepSentryError).code).to.equal('DS_IO');
    expect((err as Error).message).to.match(/cut\.log\.gz is a damaged gzip file: unexpected end of file after \d+ lines/);
    const r = await collect(cut, { format: 'hdfs' }, { acceptTruncated: true });
    expect(r.records.length).to.be.greaterThan(0).and.lessThan(2000);
    expect(r.records.map((x) => x.line)).to.deep.equal(Array.from({ length: r.records.length }, (_, i) => i + 1));
    expect(r.issues.counts.truncated_gzip).to.equal(1);
    expect(r.issues.first[0].line).to.equal(r.records.length + 1);
    await expectStrictError(cut, { format: 'hdfs' }, /cut\.log\.gz:\d+: compressed input ends early/, { acceptTruncated: true });
  });

  it('records carry masked values, labels and session ids; config errors name the key', async () => {
    const p = join(dir, 'json.log');
    writeFileSync(p, ['{"t":"2026-11-22T00:00:00Z","m":"user 7 logged in from 10.0.0.9","s":"u7","l":"-"}', '{"t":"2026-11-22T00:00:01Z","m":"user 7 failed","s":"u7","l":"FAIL"}'].join('\n'));
    const { records, sessions } = await collect(p, { format: { type: 'json', message: 'm', time: 't', session: 's', label: 'l', normal: ['-'] } });
    expect(records[0]).to.deep.include({ masked: 'user <NUM> logged in from <IP>', sessionKeys: ['u7'], label: '-', anomaly: false });
    expect(records[0].maskedValues).to.deep.equal([{ rule: 'num', value: '7' }, { rule: 'ip', value: '10.0.0.9' }]);
    expect(records[1].anomaly).to.equal(true);
    expect(sessions.map((s) => [s.key, s.rows])).to.deep.equal([['u7', [0, 1]]]);
    expect(() => resolveLogConfig({ session: { idleTimeoutMs: -1 } })).to.throw(DeepSentryError, /logs\.session\.idleTimeoutMs/);
    expect(() => resolveLogConfig({ tokenizer: { maxTokenz: 3 } } as never)).to.throw(DeepSentryError, /Unknown option logs\.tokenizer\.maxTokenz/);
  });
});

describe('timestamps a format finds by itself, and sessions that cannot be cut', () => {
  const infer = (fields: Record<string, string>) => inferLoghubTimestamp(fields, OPTS);

  it('a loghub format string names its time with fields: the usual loghub layouts are recognised', () => {
    expect(infer({ Date: '081109', Time: '203615' })).to.deep.equal({ fields: ['Date', 'Time'], format: 'YYMMDD HHmmss' });
    expect(infer({ Date: '17/06/09', Time: '20:10:40' })).to.deep.equal({ fields: ['Date', 'Time'], format: 'YY/MM/DD HH:mm:ss' });
    expect(infer({ Date: '2015-07-29', Time: '17:41:44,747' })).to.deep.equal({ fields: ['Date', 'Time'], format: 'iso8601' });
    expect(infer({ Month: 'Jun', Date: '14', Time: '15:16:01' })).to.deep.equal({ fields: ['Month', 'Date', 'Time'], format: 'syslog' });
    expect(infer({ Date: 'Dec', Day: '10', Time: '06:55:46' })).to.deep.equal({ fields: ['Date', 'Day', 'Time'], format: 'syslog' });
    expect(infer({ Time: 'Sun Dec 04 04:47:44 2005' })).to.deep.equal({ fields: ['Time'], format: 'ddd MMM DD HH:mm:ss YYYY' });
    expect(infer({ Time: '20171223-22:15:29:606' })).to.deep.equal({ fields: ['Time'], format: 'YYYYMMDD-HH:mm:ss:SSS' });
    expect(infer({ Time: '1077804742' })).to.deep.equal({ fields: ['Time'], format: 'epoch-s' });
    // a time of day alone is no date, and a small number is no epoch
    expect(infer({ Time: '203615' })).to.equal(null);
    expect(infer({ Pid: '143', Level: 'INFO' })).to.equal(null);
    expect(compileTimestamp('ddd MMM DD HH:mm:ss YYYY')('Sun Dec 04 04:47:44 2005')).to.equal(Date.UTC(2005, 11, 4, 4, 47, 44));
  });

  it('a format string finds the layout on its first line and keeps it: a later line in another layout is a bad timestamp', () => {
    const f = createFormat({ type: 'loghub', format: '<Date> <Time> <Level>: <Content>' }, OPTS);
    expect(f.hasTimestamp).to.equal(false); // not known before a line
    expect(parsed(f.parse('2026-01-02 03:04:05,678 INFO: a')).timestamp).to.equal(Date.UTC(2026, 0, 2, 3, 4, 5, 678));
    expect(f.hasTimestamp).to.equal(true);
    expect(f.timestampSource).to.equal('<Date> <Time> as iso8601');
    const bad = f.parse('26/01/02 03:04:05 INFO: b');
    expect(bad).to.be.instanceOf(ParseFailure);
    expect((bad as ParseFailure).kind).to.equal('bad_timestamp');
  });

  it("JSON lines with a ts, time or timestamp key are cut into time windows by auto sessions", async () => {
    for (const key of ['ts', 'time', 'timestamp']) {
      const p = join(dir, `auto-${key}.jsonl`);
      const t0 = Date.UTC(2026, 0, 1);
      writeFileSync(p, [0, 10_000, 70_000, 200_000].map((dt, i) => JSON.stringify({ [key]: key === 'ts' ? t0 + dt : new Date(t0 + dt).toISOString(), msg: `event ${i}` })).join('\n') + '\n');
      const keys: string[] = [];
      for await (const r of readRecords(p, {}, { onSession: (s) => keys.push(s.key) })) void r;
      expect(keys, key).to.deep.equal(['time:2026-01-01T00:00:00.000Z', 'time:2026-01-01T00:01:00.000Z', 'time:2026-01-01T00:03:00.000Z']);
    }
  });

  it('time sessions on lines without a timestamp, and a log that yields no session, are errors saying what to change', async () => {
    const p = join(dir, 'no-ts.log');
    writeFileSync(p, '143 INFO: alpha\n144 INFO: beta\n');
    const fmt = '<Pid> <Level>: <Content>';
    const err = async (o: LogConfigOverrides) => {
      try {
        await prepareLogs([p], join(dir, 'no-ts-out'), o);
      } catch (e) {
        return e as DeepSentryError;
      }
      throw new Error('expected an error');
    };
    const e1 = await err({ format: fmt, session: { mode: 'time' } });
    expect(e1.code).to.equal('DS_CONFIG');
    expect(e1.message).to.match(/session mode "time" needs a timestamp on every line, but the loghub lines of .*no-ts\.log carry none \(first parsed line 1, fields Pid, Level\): name the time fields .*logs\.session\.mode "count"/);
    const e2 = await err({ format: fmt, session: { mode: 'key', keyPattern: 'blk_\\d+' } });
    expect(e2.code).to.equal('DS_CONFIG');
    expect(e2.message).to.match(/no session in .*no-ts\.log: 2 lines parsed, 2 in no session \(session mode key\): the session key pattern \/blk_\\d\+\/ matches no message: set logs\.session\.keyPattern to a regex/);
    const e3 = await err({ format: 'hdfs' });
    expect(e3.code).to.equal('DS_PARSE');
    expect(e3.message).to.match(/no line of .*no-ts\.log could be parsed \(2 lines; first: .*no-ts\.log:1: .*\); set logs\.format/);
    // count windows need nothing
    const s = await prepareLogs([p], join(dir, 'no-ts-count'), { format: fmt, session: { mode: 'count', windowLines: 1 } });
    expect(s.sessions).to.equal(2);
  });
});
