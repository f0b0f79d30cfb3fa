import { expect } from 'chai';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { LineSplitter } from '../lib/live/lines';
import { FileFollower, type FileCursor, type TailLine, type TailNotice } from '../lib/live/tail';

/** Drives a follower by hand: poll() until it returns nothing new (bounded). */
function drain(f: FileFollower): TailLine[] {
  const out: TailLine[] = [];
  for (let i = 0; i < 100; i++) {
    const got = f.poll();
    if (got.length === 0) return out;
    out.push(...got);
  }
  throw new Error('follower kept producing lines');
}
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
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ds-tail-'));
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
    expect(l[0]!.cursor.offset).to.equal(fs.statSync(file).size);
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
