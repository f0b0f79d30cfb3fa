/**
 * Streaming end to end: a generated file larger than a capped heap is prepared (holding its lines would die,
 * checked by a negative control), RSS stays flat over the run, sessions keep closing on the idle timeout, and
 * the prepare CLI writes what it says.
 * The multi-hundred-MB measurement is scripts/logs-memory.ts (numbers in the README).
 */
import { expect } from 'chai';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { readPreparedSessions } from '../../lib/logs';
import { writeHdfsLike } from '../../scripts/gen-hdfs-like';
import { runCli, runTs } from '../support/cli';
import { tempDir } from '../support/tmp';

let dir: string;
before(() => {
  dir = tempDir('logs-stream');
});
after(() => rmSync(dir, { recursive: true, force: true }));

/** Runs a TypeScript snippet in a child node with a capped old-generation heap. */
function capped(heapMB: number, code: string): { code: number; out: string; err: string } {
  const r = runTs(code, { nodeArgs: [`--max-old-space-size=${heapMB}`], timeout: 120_000 });
  return { code: r.code ?? -1, out: r.stdout, err: r.stderr };
}

describe('logs: streaming memory', function () {
  it('a file larger than the heap is prepared with a 24 MB heap cap; RSS is flat over the run; every block is one session', async () => {
    const MB = 1024 * 1024;
    const file = join(dir, 'big.log');
    const g = await writeHdfsLike(file, 40 * MB);
    // Negative control: with the same cap, merely holding the file's lines in memory dies.
    const control = capped(24, `const l = require('fs').readFileSync(${JSON.stringify(file)}, 'utf8').split('\\n'); console.log(l.length)`);
    expect(control.code, 'the heap cap must be too small to hold the file').to.not.equal(0);
    const r = capped(
      24,
      `const m = require('./scripts/logs-memory');
       m.measurePrepare(${JSON.stringify(file)}, ${JSON.stringify(join(dir, 'out-big'))}, m.STREAMING_OVERRIDES, 50)
         .then((x) => console.log(JSON.stringify({ summary: x.summary, quarterPeaks: x.quarterPeaks, peak: x.rssPeak })));`,
    );
    expect(r.code, r.err.slice(-2000)).to.equal(0);
    const res = JSON.parse(r.out) as { summary: Record<string, unknown>; quarterPeaks: number[]; peak: number };
    expect(res.summary).to.include({ lines: g.lines, parsed: g.lines, sessions: g.blocks, evictedSessions: 0 });
    // Flat: the last quarter of the run peaks no higher than the first quarter plus a small margin.
    const [q1, , , q4] = res.quarterPeaks;
    expect((q4 - q1) / MB, `quarter peaks ${res.quarterPeaks.map((q) => (q / MB).toFixed(0)).join(' ')} MB`).to.be.lessThan(24);
    // Sessions closed by the idle timeout while reading, not all at the end.
    let idle = 0;
    let lines = 0;
    for await (const s of readPreparedSessions(join(dir, 'out-big'))) {
      if (s.end === 'idle') idle++;
      lines += s.rows.length;
    }
    expect(lines).to.equal(g.lines);
    expect(idle).to.be.greaterThan(g.blocks * 0.9);
  });
});

describe('deepsentry prepare (CLI)', () => {
  // A real process (exit code, stdout/stderr); tsx loads the TypeScript, as `npx tsx` would.
  async function run(args: string[], input?: Buffer): Promise<{ code: number; out: string; err: string }> {
    const r = runCli(args, { timeout: 60_000, input });
    return { code: r.code ?? -1, out: r.stdout, err: r.stderr };
  }

  it('--json prints one object with the counts, and the directory holds the documented files', async () => {
    const log = join(dir, 'cli.log');
    writeFileSync(
      log,
      [
        '081109 203518 143 INFO dfs.DataNode$DataXceiver: Receiving block blk_-1 src: /10.0.0.1:5 dest: /10.0.0.2:50010',
        'garbage line',
        '',
        '081109 203519 145 INFO dfs.DataNode$PacketResponder: PacketResponder 1 for block blk_-1 terminating',
        '081109 203520 145 INFO dfs.DataNode$PacketResponder: PacketResponder 0 for block blk_7 terminating',
      ].join('\n') + '\n',
    );
    const out = join(dir, 'cli-out');
    const r = await run(['prepare', log, '--out', out, '--json']);
    expect(r.code, r.err).to.equal(0);
    const j = JSON.parse(r.out);
    expect(j).to.include({ lines: 5, parsed: 3, unparsed: 1, blank: 1, sessions: 2, distinctMessages: 2 });
    expect(j.vocabularySize).to.be.greaterThan(3);
    expect(j.issues.first[0]).to.include({ kind: 'unparsed', line: 2 });
    for (const f of ['manifest.json', 'vocab.json', 'messages.ndjson', 'lines.bin', 'sessions.ndjson']) expect(readFileSync(join(out, f)).length, f).to.be.greaterThan(0);
    expect(readFileSync(join(out, 'lines.bin')).length).to.equal(3 * 24);

    // --session-key and --format override; a key pattern that matches nothing is an error naming it.
    // A file, then gzip on stdin (--stdin; yargs drops a lone '-'): sessions span inputs (blk_-1 continues).
    const more = gzipSync('081109 203521 145 INFO dfs.DataNode$PacketResponder: PacketResponder 2 for block blk_-1 terminating\n');
    const r2 = await run(['prepare', log, '--stdin', '--out', join(dir, 'cli-out2'), '--json'], more);
    expect(JSON.parse(r2.out)).to.include({ lines: 6, parsed: 4, sessions: 2 });
    const sessions: { key: string; rows: number[] }[] = [];
    for await (const x of readPreparedSessions(join(dir, 'cli-out2'))) sessions.push(x);
    expect(sessions.find((x) => x.key === 'blk_-1')?.rows).to.deep.equal([0, 1, 3]);
    const r3 = await run(['prepare', log, '--out', join(dir, 'cli-out3'), '--json', '--format', 'hdfs', '--session-key', 'nomatch_\\d+']);
    expect(r3.code).to.equal(1);
    expect(JSON.parse(r3.out).error).to.include({ code: 'DS_CONFIG' });
    expect(JSON.parse(r3.out).error.message).to.match(/no session in .*: 3 lines parsed, 3 in no session \(session mode key\): the session key pattern \/nomatch_\\d\+\/ matches no message/);
  });

  it('strict mode and unreadable input fail with exit 1 and a message naming file and line; bad flags are usage errors', async () => {
    const log = join(dir, 'cli-bad.log');
    writeFileSync(log, '081109 203518 143 INFO dfs.X: ok blk_1\nnot hdfs\n');
    const r = await run(['prepare', log, '--out', join(dir, 'o3'), '--format', 'hdfs', '--strict']);
    expect(r.code).to.equal(1);
    expect(r.err).to.match(/cli-bad\.log:2: not an HDFS line/);
    const r2 = await run(['prepare', join(dir, 'missing.log'), '--out', join(dir, 'o4')]);
    expect(r2.code).to.equal(1);
    expect(r2.err).to.match(/missing\.log/);
    const r3 = await run(['prepare', log, '--out', join(dir, 'o5'), '--session-key', '(']);
    expect(r3.code).to.equal(2);
    expect((await run(['prepare', '--out', join(dir, 'o7')])).code).to.equal(2); // no input at all
    const r4 = await run(['prepare', log, '--out', join(dir, 'o6'), '--format', 'nosuch', '--json']);
    expect(r4.code).to.equal(1);
    expect(JSON.parse(r4.out).error.code).to.equal('DS_CONFIG');
  });
});
