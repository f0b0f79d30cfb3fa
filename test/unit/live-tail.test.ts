import { expect } from 'chai';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import { DeepSentryError } from '../../lib/errors';
import { LineSplitter } from '../../lib/logs/lines';
import { FileFollower, type FileCursor, type TailLine, type TailNotice } from '../../lib/live/tail';
import { drain } from '../support/live-fixtures';
import { tempDir } from '../support/tmp';

const texts = (ls: TailLine[]) => ls.map((l) => l.text);

describe('live file tail', () => {
  let dir: string;
  let file: string;
  let notices: TailNotice[];
  let f: FileFollower;
  const follower = (cursor?: FileCursor) => {
    notices = [];
    return new FileFollower(file, { onNotice: (n) => notices.push(n), ...(cursor ? { cursor } : {}) });
  };
  beforeEach(() => {
    dir = tempDir('tail');
    file = path.join(dir, 'app.log');
  });
  afterEach(() => {
    f?.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('splits on bytes: offsets, CRLF, a UTF-8 character cut between two reads', () => {
    const s = new LineSplitter();
    const bytes = Buffer.from('a\r\nbé\nc');
    const cut = bytes.indexOf(0xc3) + 1; // inside the two bytes of é
    const out = [...s.push(bytes.subarray(0, cut)), ...s.push(bytes.subarray(cut))];
    expect(out.map((l) => [l.text, l.lineNo, l.offset, l.end])).to.deep.equal([
      ['a', 1, 0, 3],
      ['bé', 2, 3, 7],
    ]);
    expect(s.partialBytes).to.equal(1);
    expect(s.finish().map((l) => l.text)).to.deep.equal(['c']);
  });

  it('holds a partial last line until its newline arrives', () => {
    fs.writeFileSync(file, 'one\ntw');
    f = follower();
    expect(texts(drain(f))).to.deep.equal(['one']);
    fs.appendFileSync(file, 'o\nthr');
    expect(texts(drain(f))).to.deep.equal(['two']);
    fs.appendFileSync(file, 'ee\n');
    const l = drain(f);
    expect(texts(l)).to.deep.equal(['three']);
    expect(l[0]!.lineNo).to.equal(3);
    expect(l[0]!.cursor!.offset).to.equal(fs.statSync(file).size);
  });

  it('survives rotation by rename: finishes the old file (its unterminated last line too), then reads the new one', () => {
    fs.writeFileSync(file, 'a1\na2\n');
    f = follower();
    expect(texts(drain(f))).to.deep.equal(['a1', 'a2']);
    fs.appendFileSync(file, 'a3\na4-partial');
    fs.renameSync(file, file + '.1');
    fs.writeFileSync(file, 'b1\nb2\n');
    const got = drain(f);
    expect(texts(got)).to.deep.equal(['a3', 'a4-partial', 'b1', 'b2']);
    expect(got[2]!.lineNo).to.equal(1);
    expect(got[2]!.offset).to.equal(0);
    expect(notices.map((n) => n.kind)).to.include('rotated');
  });

  it('survives copytruncate, also when the file regrew past the old position before the next poll', () => {
    fs.writeFileSync(file, 'old-1\nold-2\n');
    f = follower();
    expect(texts(drain(f))).to.deep.equal(['old-1', 'old-2']);
    // logrotate copytruncate: copy, then truncate in place; the writer keeps appending to the same inode.
    fs.copyFileSync(file, file + '.1');
    fs.truncateSync(file, 0);
    fs.appendFileSync(file, 'new-1 is a longer line than before\n');
    const got = drain(f);
    expect(texts(got)).to.deep.equal(['new-1 is a longer line than before']);
    expect(got[0]!.offset).to.equal(0);
    expect(notices.map((n) => n.kind)).to.include('truncated');
  });

  it('truncation to a shorter size restarts at byte 0', () => {
    fs.writeFileSync(file, 'aaaaaaaaaa\nbbbbbbbbbb\n');
    f = follower();
    drain(f);
    fs.writeFileSync(file, 'c\n'); // O_TRUNC then write
    expect(texts(drain(f))).to.deep.equal(['c']);
  });

  it('waits for a missing file and picks it up when it appears', () => {
    f = follower();
    expect(drain(f)).to.deep.equal([]);
    expect(notices.map((n) => n.kind)).to.deep.equal(['missing']);
    fs.writeFileSync(file, 'x\n');
    expect(texts(drain(f))).to.deep.equal(['x']);
  });

  it('resumes at a cursor: the next line after it, with its line number', () => {
    fs.writeFileSync(file, 'l1\nl2\nl3\n');
    const first = drain(follower());
    f = follower(first[1]!.cursor);
    const got = drain(f);
    expect(texts(got)).to.deep.equal(['l3']);
    expect(got[0]!.lineNo).to.equal(3);
    expect(notices.map((n) => n.kind)).to.deep.equal(['resumed']);
  });

  it('a file rotated while stopped: the rest of the old file (found by inode) comes first', () => {
    fs.writeFileSync(file, 'l1\nl2\nl3\n');
    const first = drain(follower());
    fs.renameSync(file, file + '.1');
    fs.writeFileSync(file, 'n1\n');
    f = follower(first[0]!.cursor);
    expect(texts(drain(f))).to.deep.equal(['l2', 'l3', 'n1']);
    expect(notices.map((n) => n.kind)).to.include('resumed-rotated');
  });

  it('a file truncated and rewritten while stopped is read from the start (its first bytes changed)', () => {
    fs.writeFileSync(file, 'first line\nsecond line\n');
    const first = drain(follower());
    fs.writeFileSync(file, 'other content that is long enough\nz\n');
    f = follower(first[0]!.cursor);
    expect(texts(drain(f))).to.deep.equal(['other content that is long enough', 'z']);
    expect(notices.map((n) => n.kind)).to.deep.equal(['restarted']);
  });

  /** Sets a file's modification time `s` seconds from now (rotations happen seconds apart, not in one clock tick). */
  const age = (p: string, s: number) => fs.utimesSync(p, new Date(Date.now() + s * 1000), new Date(Date.now() + s * 1000));
  const numbered = (tag: string, n: number) => Array.from({ length: n }, (_, i) => `${tag}${i + 1}`);
  const write = (p: string, lines: string[]) => fs.writeFileSync(p, lines.map((l) => l + '\n').join(''));

  it('rotated twice while stopped (app.log -> .1, new app.log -> .2): the whole chain is read, oldest first', () => {
    write(file, numbered('a', 5));
    age(file, -30);
    const first = drain(follower());
    const cursor = first[2]!.cursor!;
    fs.appendFileSync(file, 'a6\n');
    age(file, -20);
    fs.renameSync(file, file + '.1');
    write(file, numbered('b', 3));
    age(file, -10);
    fs.renameSync(file, file + '.2');
    write(file, numbered('c', 2));
    f = follower(cursor);
    const got = drain(f);
    expect(texts(got)).to.deep.equal(['a4', 'a5', 'a6', 'b1', 'b2', 'b3', 'c1', 'c2']);
    expect(got.map((l) => l.lineNo)).to.deep.equal([4, 5, 6, 1, 2, 3, 1, 2]);
    expect(got[3]!.cursor!.path).to.equal(file + '.2');
    expect(notices.filter((n) => n.loss)).to.deep.equal([]);
  });

  it("logrotate's numbering (.1 -> .2 on each rotation): older rotations are not read again", () => {
    write(file + '.1', numbered('old', 2)); // rotated before the monitor ever read app.log
    age(file + '.1', -100);
    write(file, numbered('a', 3));
    age(file, -50);
    const cursor = drain(follower())[1]!.cursor!;
    const rotate = () => {
      for (let i = 3; i >= 1; i--) if (fs.existsSync(`${file}.${i}`)) fs.renameSync(`${file}.${i}`, `${file}.${i + 1}`);
      fs.renameSync(file, file + '.1');
    };
    rotate();
    write(file, numbered('b', 2));
    age(file, -20);
    rotate();
    write(file, numbered('c', 1));
    // The checkpointed file is app.log.2 now, b is app.log.1, the old file app.log.3.
    f = follower(cursor);
    const got = drain(f);
    expect(texts(got)).to.deep.equal(['a3', 'b1', 'b2', 'c1']);
    // Stopped in the middle of the chain: resuming from b1 (in app.log.1) goes on from there.
    expect(got[1]!.cursor!.path).to.equal(file + '.1');
    expect(texts(drain(follower(got[1]!.cursor)))).to.deep.equal(['b2', 'c1']);
  });

  it('says loudly what cannot be recovered: the checkpointed file gone, a compressed rotation', () => {
    write(file, numbered('a', 3));
    age(file, -30);
    const cursor = drain(follower())[0]!.cursor!;
    fs.writeFileSync(file + '.1.gz', zlib.gzipSync(fs.readFileSync(file))); // rotated and compressed
    fs.rmSync(file);
    write(file + '.2', numbered('b', 2)); // a later rotation, not compressed
    age(file + '.2', -10);
    write(file, numbered('c', 1));
    f = follower(cursor);
    expect(texts(drain(f))).to.deep.equal(['b1', 'b2', 'c1']);
    const lost = notices.filter((n) => n.loss);
    expect(lost.map((n) => n.loss)).to.deep.equal(['compressed']);
    expect(lost[0]!.message).to.match(/LINES LOST: .*app\.log\.1\.gz.*byte \d+/);
    // Gone without a trace.
    fs.rmSync(file + '.1.gz');
    f = follower(cursor);
    drain(f);
    expect(notices.filter((n) => n.loss).map((n) => n.loss)).to.deep.equal(['gone']);
  });

  it('copytruncate while behind: the rest is read from the copy, nothing lost; without a copy the loss is reported', () => {
    write(file, numbered('line-', 40));
    notices = [];
    f = new FileFollower(file, { chunkBytes: 16, onNotice: (n) => notices.push(n) });
    const got = f.poll(); // 4 chunks of 16 bytes: far behind the end
    expect(got.length).to.be.lessThan(15);
    fs.copyFileSync(file, file + '.1');
    fs.truncateSync(file, 0);
    fs.appendFileSync(file, 'new-1\n');
    got.push(...drain(f));
    expect(texts(got)).to.deep.equal([...numbered('line-', 40), 'new-1']);
    expect(notices.filter((n) => n.kind === 'truncated').map((n) => n.loss)).to.deep.equal([undefined]);
    // No copy (it was compressed at once): the truncation is reported as a possible loss.
    fs.rmSync(file + '.1');
    fs.appendFileSync(file, 'new-2\n');
    drain(f);
    fs.truncateSync(file, 0);
    fs.appendFileSync(file, 'x\n');
    expect(texts(drain(f))).to.deep.equal(['x']);
    expect(notices.filter((n) => n.kind === 'truncated').map((n) => n.loss)).to.deep.equal([undefined, 'truncated']);
  });

  it('a poll hands over the lines of one read, and reads on (at most 4 reads) while a line is longer than a read', () => {
    const lines = [...numbered('line-', 20), 'x'.repeat(50), 'after'];
    write(file, lines);
    f = new FileFollower(file, { chunkBytes: 16 });
    const polls: string[][] = [];
    for (let k = 0; k < 30 && polls.flat().length < lines.length; k++) polls.push(texts(f.poll()));
    expect(polls.flat()).to.deep.equal(lines);
    // a read of 16 bytes ends at most 3 lines of 7–9 bytes (4 reads, as before, ended up to 9)
    expect(Math.max(...polls.map((p) => p.length))).to.be.at.most(3);
    // the 51-byte line takes 4 reads of 16 bytes: one poll, not a poll that hands over nothing
    expect(polls.every((p) => p.length > 0)).to.equal(true);
  });

  it('a directory is an error naming it', () => {
    const e = (() => {
      try {
        new FileFollower(dir).poll();
      } catch (err) {
        return err as DeepSentryError;
      }
    })();
    expect(e?.code).to.equal('DS_IO');
    expect(e?.message).to.equal(`cannot follow ${dir}: it is a directory (give a log file, a FIFO or a character device)`);
  });

  it('run() delivers lines as they are appended and stop() ends it', async () => {
    fs.writeFileSync(file, '');
    f = new FileFollower(file, { pollMs: 5 });
    const got: string[] = [];
    const done = f.run((ls) => {
      got.push(...texts(ls));
      if (got.length >= 3) f.stop();
    });
    for (let i = 1; i <= 3; i++) {
      fs.appendFileSync(file, `line ${i}\n`);
      await new Promise((r) => setTimeout(r, 15));
    }
    await done;
    expect(got).to.deep.equal(['line 1', 'line 2', 'line 3']);
  });
});
