/**
 * Follows a log file the way `tail -F` does, by polling (portable, and what works on network and container
 * file systems where inotify does not):
 *
 * - **rotation by rename** (logrotate's default, `app.log` → `app.log.1`, a new `app.log` appears): the path
 *   now names another inode. The old file is read to its end first (its unterminated last line, if any, is a
 *   line: that file is finished), then the new file from byte 0.
 * - **copytruncate** and plain **truncation**: the same inode got shorter than our position, or its first bytes
 *   changed (truncated and rewritten past our position between two polls). Reading restarts at byte 0.
 * - **partial last lines**: bytes after the last newline are held back until the newline arrives, so a line
 *   written in two pieces is one line.
 * - **resume**: given a cursor from a checkpoint, reading continues at that byte of that inode. If the file
 *   was rotated while we were down, the inode is looked for among the files next to the path (`app.log.1`)
 *   and its rest is read before the new file.
 *
 * Lines are handed to an async `onLines` callback and the next read waits for it: a slow consumer slows the
 * reader (backpressure) instead of buffering the file in memory.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { LineSplitter, SourceLine } from './lines';

/** Where a follower stands in a file: enough to resume after a restart. */
export interface FileCursor {
  path: string;
  dev: number;
  ino: number;
  /** Byte offset after the last consumed line. */
  offset: number;
  /** Line number the next line will get. */
  lineNo: number;
  /** base64 of the file's first bytes (up to 64): tells a truncated-and-rewritten file from the one we read. */
  head: string;
}

/** Identity of the file a line came from, shared by the lines of one read. */
interface FileIdentity {
  path: string;
  dev: number;
  ino: number;
  head: string;
}

/**
 * A line read from a followed file. `cursor` (where to resume once this line has been fully handled) is
 * built only when asked for: a checkpoint needs the cursor of one line per batch, not of every line.
 */
export class TailLine implements SourceLine {
  constructor(
    readonly text: string,
    readonly lineNo: number,
    readonly offset: number,
    readonly end: number,
    private readonly file: FileIdentity,
  ) {}
  get cursor(): FileCursor {
    const f = this.file;
    return { path: f.path, dev: f.dev, ino: f.ino, offset: this.end, lineNo: this.lineNo + 1, head: f.head };
  }
}

/** Something worth telling the operator: rotation, truncation, a missing file. */
export interface TailNotice {
  kind: 'opened' | 'rotated' | 'truncated' | 'missing' | 'resumed' | 'resumed-rotated' | 'restarted';
  message: string;
}

export interface FollowOptions {
  /** Poll interval when there is nothing new (default 100 ms). */
  pollMs?: number;
  /** Resume from this cursor (from a checkpoint) instead of the start. */
  cursor?: FileCursor;
  /** Where to start when there is no cursor: 'start' (default) or 'end' (only lines written from now on). */
  from?: 'start' | 'end';
  /** Bytes read per call (default 256 KiB). */
  chunkBytes?: number;
  /** Longest line kept whole (default 1 MiB). */
  maxLineBytes?: number;
  onNotice?: (n: TailNotice) => void;
}

const HEAD_BYTES = 64;

interface OpenFile {
  fd: number;
  dev: number;
  ino: number;
  pos: number; // next byte to read
  head: Buffer; // first bytes seen (up to HEAD_BYTES)
  splitter: LineSplitter;
  name: string; // the path it was opened by
}

export class FileFollower {
  readonly path: string;
  private readonly pollMs: number;
  private readonly chunkBytes: number;
  private readonly maxLineBytes: number;
  private readonly onNotice: (n: TailNotice) => void;
  private cursor: FileCursor | undefined;
  private from: 'start' | 'end';
  private file: OpenFile | null = null;
  private stopped = false;
  private wake: (() => void) | null = null;
  private buf: Buffer;
  private missingNoticed = false;
  /** Lines cut because they exceeded maxLineBytes. */
  cutLines = 0;

  constructor(filePath: string, opts: FollowOptions = {}) {
    this.path = path.resolve(filePath);
    this.pollMs = opts.pollMs ?? 100;
    this.chunkBytes = opts.chunkBytes ?? 256 * 1024;
    this.maxLineBytes = opts.maxLineBytes ?? 1 << 20;
    this.onNotice = opts.onNotice ?? (() => undefined);
    this.cursor = opts.cursor;
    this.from = opts.from ?? 'start';
    this.buf = Buffer.allocUnsafe(this.chunkBytes);
  }

  /**
   * Reads until stop(). `onLines` gets every complete line in order; the follower waits for it before reading on.
   * Resolves after stop() once the current callback has returned. Read errors other than a missing file reject.
   */
  async run(onLines: (lines: TailLine[]) => Promise<void> | void): Promise<void> {
    try {
      while (!this.stopped) {
        const lines = this.poll();
        if (lines.length > 0) {
          await onLines(lines);
          // Let timers and I/O run between reads even when onLines resolves at once (a file read at full speed
          // would otherwise hold the event loop until its end).
          await new Promise((r) => setImmediate(r));
        } else {
          await this.sleep();
        }
      }
    } finally {
      this.closeFile();
    }
  }

  /** Stops after the current read; lines not yet handed over stay unread (a checkpoint resumes before them). */
  stop(): void {
    this.stopped = true;
    this.wake?.();
  }

  /** Reads once: the complete lines now available (possibly none). Public for tests that step by hand. */
  poll(): TailLine[] {
    const out: TailLine[] = [];
    if (!this.file && !this.openCurrent(out)) return out;
    const f = this.file!;
    let byName: fs.Stats | null = null;
    try {
      byName = fs.statSync(this.path);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    const st = fs.fstatSync(f.fd);
    if (st.size < f.pos || !this.headMatches(f, st.size)) {
      this.onNotice({ kind: 'truncated', message: `${f.name} was truncated (size ${st.size} < position ${f.pos}, or its first bytes changed): reading it again from the start` });
      f.pos = 0;
      f.head = Buffer.alloc(0);
      f.splitter.reset(0, 1);
    }
    this.readAvailable(f, st.size, out);
    if (out.length > 0) return out;
    if (!byName || byName.ino !== f.ino || byName.dev !== f.dev) {
      // Rotated away (or deleted). Whatever the writer put in the old file is read above; its last line is done.
      this.finishFile(f, out);
      this.onNotice({ kind: 'rotated', message: `${this.path} was rotated (the path now names ${byName ? 'another file' : 'nothing'}): finished the old file at byte ${f.pos}` });
      this.closeFile();
      this.from = 'start';
      if (byName) this.openCurrent(out);
    }
    return out;
  }

  private readAvailable(f: OpenFile, size: number, out: TailLine[]): void {
    // Bounded per poll so one huge append cannot build an unbounded batch.
    let budget = 4;
    while (f.pos < size && budget-- > 0) {
      const n = fs.readSync(f.fd, this.buf, 0, Math.min(this.chunkBytes, size - f.pos), f.pos);
      if (n <= 0) break;
      const chunk = this.buf.subarray(0, n);
      if (f.head.length < HEAD_BYTES && f.pos < HEAD_BYTES) {
        const take = chunk.subarray(0, Math.min(n, HEAD_BYTES - f.pos));
        if (f.pos === f.head.length) f.head = Buffer.concat([f.head, take]);
      }
      f.pos += n;
      const lines = f.splitter.push(chunk);
      this.cutLines = f.splitter.cutLines;
      const id = this.identity(f);
      for (const l of lines) out.push(new TailLine(l.text, l.lineNo, l.offset, l.end, id));
    }
  }

  private finishFile(f: OpenFile, out: TailLine[]): void {
    const id = this.identity(f);
    for (const l of f.splitter.finish()) out.push(new TailLine(l.text, l.lineNo, l.offset, l.end, id));
  }

  private identity(f: OpenFile): FileIdentity {
    return { path: f.name, dev: f.dev, ino: f.ino, head: f.head.toString('base64') };
  }

  /** The bytes we saw at the start of the file are still there (else it was truncated and rewritten). */
  private headMatches(f: OpenFile, size: number): boolean {
    if (f.head.length === 0) return true;
    if (size < f.head.length) return false;
    const b = Buffer.allocUnsafe(f.head.length);
    fs.readSync(f.fd, b, 0, f.head.length, 0);
    return b.equals(f.head);
  }

  /** Opens the file at the path; on the first open, honours the resume cursor. */
  private openCurrent(out: TailLine[]): boolean {
    let fd: number;
    try {
      fd = fs.openSync(this.path, 'r');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      if (!this.missingNoticed) this.onNotice({ kind: 'missing', message: `${this.path} does not exist (yet): waiting for it` });
      this.missingNoticed = true;
      return false;
    }
    this.missingNoticed = false;
    const st = fs.fstatSync(fd);
    const f: OpenFile = { fd, dev: st.dev, ino: st.ino, pos: 0, head: Buffer.alloc(0), splitter: new LineSplitter(0, 1, this.maxLineBytes), name: this.path };
    const c = this.cursor;
    this.cursor = undefined;
    if (c) {
      if (c.dev === st.dev && c.ino === st.ino) {
        if (this.resumeAt(f, c, st.size)) {
          this.onNotice({ kind: 'resumed', message: `resuming ${this.path} at byte ${c.offset} (line ${c.lineNo})` });
        } else {
          this.onNotice({ kind: 'restarted', message: `${this.path} was truncated while stopped (checkpoint at byte ${c.offset}): reading it from the start` });
        }
      } else {
        // Rotated while we were down: finish the old inode if it is still next to the path.
        const old = this.findRotated(c);
        if (old) {
          this.onNotice({ kind: 'resumed-rotated', message: `${this.path} was rotated while stopped: reading the rest of ${old.name} from byte ${c.offset} first` });
          this.readAvailable(old, fs.fstatSync(old.fd).size, out);
          this.finishFile(old, out);
          fs.closeSync(old.fd);
        } else {
          this.onNotice({ kind: 'restarted', message: `${this.path} is a new file and the checkpointed one (inode ${c.ino}) is gone: reading the new file from the start` });
        }
      }
    } else if (this.from === 'end') {
      f.pos = st.size;
      f.splitter.reset(st.size, 1);
      this.readHead(f);
    }
    this.file = f;
    if (!c) this.onNotice({ kind: 'opened', message: `following ${this.path}` });
    return true;
  }

  private resumeAt(f: OpenFile, c: FileCursor, size: number): boolean {
    const head = Buffer.from(c.head, 'base64');
    if (size < c.offset) return false;
    f.head = head;
    if (!this.headMatches(f, size)) {
      f.head = Buffer.alloc(0);
      return false;
    }
    f.pos = c.offset;
    f.splitter.reset(c.offset, c.lineNo);
    if (f.head.length < HEAD_BYTES) this.readHead(f);
    return true;
  }

  private readHead(f: OpenFile): void {
    const b = Buffer.allocUnsafe(Math.min(HEAD_BYTES, f.pos));
    const n = b.length > 0 ? fs.readSync(f.fd, b, 0, b.length, 0) : 0;
    f.head = Buffer.from(b.subarray(0, n));
  }

  private findRotated(c: FileCursor): OpenFile | null {
    const dir = path.dirname(this.path);
    let names: string[];
    try {
      names = fs.readdirSync(dir);
    } catch {
      return null;
    }
    for (const n of names) {
      const p = path.join(dir, n);
      let st: fs.Stats;
      try {
        st = fs.statSync(p);
      } catch {
        continue;
      }
      if (!st.isFile() || st.dev !== c.dev || st.ino !== c.ino) continue;
      const fd = fs.openSync(p, 'r');
      const f: OpenFile = { fd, dev: st.dev, ino: st.ino, pos: 0, head: Buffer.alloc(0), splitter: new LineSplitter(0, 1, this.maxLineBytes), name: p };
      if (this.resumeAt(f, c, st.size)) return f;
      fs.closeSync(fd);
    }
    return null;
  }

  private closeFile(): void {
    if (this.file) {
      try {
        fs.closeSync(this.file.fd);
      } catch {
        /* already closed */
      }
      this.file = null;
    }
  }

  private sleep(): Promise<void> {
    if (this.stopped) return Promise.resolve();
    return new Promise((resolve) => {
      const t = setTimeout(done, this.pollMs);
      function done(): void {
        clearTimeout(t);
        resolve();
      }
      this.wake = () => {
        this.wake = null;
        done();
      };
    });
  }
}
