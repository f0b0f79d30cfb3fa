/**
 * One line policy for every reader and every scorer. The batch reader (readLineBatches: train, score, run) and
 * the live splitter (LineSplitter: --follow, stdin, HTTP bodies, the scale-out publisher) keep the same lines
 * with the same numbers and drop, count and report the same ones (BOM, CRLF, invalid UTF-8, NUL byte, over-long
 * lines), however the bytes are cut; and a line's way into a record (lib/logs/pipeline.ts parseLogLine) counts
 * unparsed lines, bad timestamps and out-of-order lines alike in batch (LogProcessor) and live (the scorers'
 * SessionScorer).
 */
import { expect } from 'chai';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { resolveLogConfig } from '../../lib/logs/config';
import { createFormat } from '../../lib/logs/formats';
import { IssueLog } from '../../lib/logs/issues';
import { LineSplitter, readLineBatches, splitLines } from '../../lib/logs/lines';
import { LogProcessor } from '../../lib/logs/pipeline';
import { NoveltyScorer } from '../../lib/live/novelty';
import type { RawLine } from '../../lib/live/types';

const BOM = Buffer.from([0xef, 0xbb, 0xbf]);

/** What the batch reader keeps (non-blank lines by number) and reports (kind, line) for these bytes. */
async function batch(file: string, max: number, chunkBytes: number) {
  const issues = new IssueLog(false, 1000);
  const kept: [number, string][] = [];
  for await (const b of readLineBatches(file, { maxLineBytes: max, issues, chunkBytes })) b.lines.forEach((l, i) => kept.push([b.lineNos[i]!, l]));
  return { kept, issues: issues.first.map((x) => [x.kind, x.line]), counts: issues.counts };
}

/** The same through the live splitter, the bytes cut at `cuts`; blank lines are left to the scorers. */
function live(buf: Buffer, max: number, cuts: number[]) {
  const issues = new IssueLog(false, 1000);
  const s = new LineSplitter(0, 1, max, issues, 'live');
  const lines = [];
  let from = 0;
  for (const c of [...cuts, buf.length]) {
    lines.push(...s.push(buf.subarray(from, c)));
    from = c;
  }
  lines.push(...s.finish());
  return { lines, kept: lines.filter((l) => l.text.trim() !== '').map((l) => [l.lineNo, l.text]), issues: issues.first.map((x) => [x.kind, x.line]), splitter: s };
}

describe('one line policy: batch reader and live splitter', () => {
  let dir: string;
  before(() => (dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ds-policy-'))));
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('a BOM, CRLF, invalid UTF-8, a NUL byte and an over-long line: the same lines kept, the same dropped and reported', async () => {
    const max = 40;
    const buf = Buffer.concat([
      BOM,
      Buffer.from('first line\r\n'),
      Buffer.from('bad '),
      Buffer.from([0xff, 0xfe]),
      Buffer.from(' bytes\n'),
      Buffer.from('a nul \u0000 here\n'),
      Buffer.from(`${'x'.repeat(100)}\n`),
      Buffer.from('\n'),
      Buffer.from('é last, no newline'),
    ]);
    const file = path.join(dir, 'mixed.log');
    fs.writeFileSync(file, buf);
    const want = {
      kept: [
        [1, 'first line'],
        [6, 'é last, no newline'],
      ],
      issues: [
        ['invalid_utf8', 2],
        ['nul_byte', 3],
        ['line_too_long', 4],
      ],
    };
    const b = await batch(file, max, 1 << 16);
    expect({ kept: b.kept, issues: b.issues }).to.deep.equal(want);
    for (const cuts of [[], [1], [2, 3], [20, 21, 60, 61, 90], Array.from({ length: buf.length - 1 }, (_, i) => i + 1)]) {
      const l = live(buf, max, cuts);
      expect({ kept: l.kept, issues: l.issues }, `cuts ${cuts.length}`).to.deep.equal(want);
      expect(l.splitter.dropped).to.deep.equal({ invalid_utf8: 1, nul_byte: 1, line_too_long: 1 });
      // Dropped lines still move the offsets: the last line starts where its bytes do.
      expect(l.lines[l.lines.length - 1]!.offset).to.equal(buf.lastIndexOf(Buffer.from('é last')));
      expect(l.lines[0]!.offset).to.equal(0);
    }
    // The HTTP ingest's body splitting is the same policy.
    expect(splitLines(buf, max)).to.deep.equal(['first line', 'é last, no newline']);
  });

  it('a BOM is dropped only at the start of the source, and an over-long line is never held whole', () => {
    const mid = new LineSplitter(10, 5);
    expect(mid.push(Buffer.concat([BOM, Buffer.from('x\n')])).map((l) => l.text)).to.deep.equal(['\ufeffx']);
    const s = new LineSplitter(0, 1, 16);
    for (let i = 0; i < 100; i++) s.push(Buffer.alloc(1000, 0x61));
    expect(s.partialBytes).to.equal(100_000);
    const after = s.push(Buffer.from('\nok\n'));
    expect(after.map((l) => [l.lineNo, l.text, l.offset])).to.deep.equal([[2, 'ok', 100_001]]);
    expect(s.cutLines).to.equal(1);
  });

  it('matches the batch reader on 80 seeded random inputs cut at random places', async () => {
    let seed = 777;
    const rnd = (n: number) => {
      seed = (seed * 1103515245 + 12345) >>> 0;
      return (seed >>> 8) % n;
    };
    const pieces = [Buffer.from('ab'), Buffer.from('é'), Buffer.from('\r'), Buffer.from('\n'), Buffer.from('\n'), Buffer.from(' '), Buffer.from([0]), Buffer.from([0xc3]), Buffer.from('xyzxyzxyz'), BOM];
    for (let k = 0; k < 80; k++) {
      const parts: Buffer[] = k % 3 === 0 ? [BOM] : [];
      for (let i = rnd(80); i > 0; i--) parts.push(pieces[rnd(pieces.length)]!);
      const buf = Buffer.concat(parts);
      const max = 4 + rnd(20);
      const file = path.join(dir, `rand-${k}.log`);
      fs.writeFileSync(file, buf);
      const b = await batch(file, max, 3 + rnd(16));
      const cuts = [...new Set(Array.from({ length: rnd(12) }, () => rnd(Math.max(buf.length, 1))))].sort((x, y) => x - y);
      const l = live(buf, max, cuts);
      expect(l.kept, `case ${k}: kept lines`).to.deep.equal(b.kept);
      expect(l.issues, `case ${k}: dropped lines`).to.deep.equal(b.issues);
    }
  });
});

describe('one parse policy: batch and live count bad lines alike', () => {
  const lines = [
    '081109 203615 148 INFO dfs.DataNode$PacketResponder: PacketResponder 1 for block blk_1 terminating',
    'not an hdfs line at all',
    '081109 203620 148 INFO dfs.DataNode$PacketResponder: PacketResponder 1 for block blk_2 terminating',
    '081109 203610 148 INFO dfs.DataNode$PacketResponder: PacketResponder 2 for block blk_1 terminating', // out of order
    '081109 2036xx 148 INFO dfs.DataNode$PacketResponder: bad time blk_3',
    '',
    '081109 203630 148 INFO dfs.DataNode$PacketResponder: PacketResponder 0 for block blk_2 terminating',
  ];

  for (const outOfOrder of ['keep', 'skip'] as const) {
    it(`logs.outOfOrder ${outOfOrder}: LogProcessor and the live scorer count the same lines not scored, and report them alike`, async () => {
      const config = resolveLogConfig({ format: 'hdfs', outOfOrder, session: { mode: 'key' } });
      const batchIssues = new IssueLog(false, 100);
      const proc = new LogProcessor(config, { issues: batchIssues });
      const nonBlank = lines.map((t, i) => [t, i + 1] as const).filter(([t]) => t !== '');
      proc.processBatch({ lines: nonBlank.map(([t]) => t), lineNos: nonBlank.map(([, n]) => n) }, 'in', createFormat('hdfs', { year: 1970, utcOffsetMinutes: 0 }));
      const st = proc.stats;
      const notScored = st.unparsed + st.badTimestamp + (outOfOrder === 'skip' ? st.outOfOrder : 0);
      expect(st.unparsed).to.equal(1);
      expect(st.badTimestamp).to.equal(1);
      expect(st.outOfOrder).to.equal(1);

      const scorer = new NoveltyScorer({ logs: { format: 'hdfs', outOfOrder, session: { mode: 'key' } } });
      const raw: RawLine[] = lines.map((text, i) => ({ seq: i, lineNo: i + 1, offset: 0, text }));
      const events = await scorer.scoreLines(raw);
      expect(scorer.stats().unparsedLines).to.equal(notScored);
      expect(scorer.parseStats).to.deep.equal({ candidates: st.candidates, unparsed: st.unparsed, badTimestamp: st.badTimestamp, outOfOrder: st.outOfOrder });
      // The out-of-order line is scored when kept, and not when skipped, as in batch.
      expect(events.some((e) => e.lineNo === 4)).to.equal(outOfOrder === 'keep');
      expect(st.parsed).to.equal(scorer.parsedLines);
    });
  }
});
