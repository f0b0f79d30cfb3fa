/**
 * Follows a log file the way `tail -F` does, by polling (portable, and what works on network and container
 * file systems where inotify does not):
 *
 * - **rotation by rename** (logrotate's default, `app.log` → `app.log.1`, a new `app.log` appears): the path
 *   now names another inode. The old file is read to its end first (its unterminated last line, if any, is a
 *   line: that file is finished), then the new file from byte 0.
 * - **copytruncate** and plain **truncation**: the same inode got shorter than our position, or its first bytes
 *   changed (truncated and rewritten past our position between two polls). If a rotated sibling starts with
 *   the bytes the file started with (logrotate's copy) and is at least as long as our position, the rest of the
 *   file is read from that copy first; then the truncated file is read again from byte 0. copytruncate has a
 *   race no reader can close: what the writer appends between logrotate's copy and its truncate is in neither
 *   file. A truncation with no copy to read the rest from is reported with `loss` (lines may be lost).
 * - **partial last lines**: bytes after the last newline are held back until the newline arrives, so a line
 *   written in two pieces is one line.
 * - **resume**: given a cursor from a checkpoint, reading continues at that byte of that file. If the file was
 *   rotated (once or several times) while we were down, the rotated chain is followed, as Vector and Fluent
 *   Bit do: the checkpointed file is found among the rotated siblings of the path (`app.log.1`, `app.log.2`,
 *   `app.log-20261206`, …) by device, inode and size, or as a copy by its first bytes; its rest is read, then
 *   every sibling written after it (modification time not older than the checkpointed file's at its last read,
 *   oldest first), then the file at the path from byte 0. What cannot be read — the checkpointed file is
 *   gone, or a rotation was compressed (`.gz`, `.xz`, … are not read back) — is reported with `loss`.
 * - **FIFOs and character devices** are read as streams (opened non-blocking, so a FIFO without a writer
 *   blocks nothing); they have no size or offset to resume at, so their lines carry no cursor.
 *
 * Lines are handed to an async `onLines` callback and the next read waits for it: a slow consumer slows the
 * reader (backpressure) instead of buffering the file in memory.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import { DeepSentryError } from '../errors';
import type { IssueLog } from '../logs/issues';
import { LineSplitter, SourceLine } from '../logs/lines';

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
  /**
   * The file's modification time (ms) when the line was read: rotated siblings modified since then were
   * written after it and are read after it on a resume. Absent in checkpoints of older versions.
   */
  mtimeMs?: number;
}

/** Identity of the file a line came from, shared by the lines of one read. */
interface FileIdentity {
  path: string;
  dev: number;
  ino: number;
  head: string;
  mtimeMs: number;
  /** False for FIFOs and devices: there is no offset to resume at. */
  resumable: boolean;
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
  get cursor(): FileCursor | undefined {
    const f = this.file;
    if (!f.resumable) return undefined;
    return { path: f.path, dev: f.dev, ino: f.ino, offset: this.end, lineNo: this.lineNo + 1, head: f.head, mtimeMs: f.mtimeMs };
  }
}

/** Why lines may have been lost (see TailNotice.loss). */
export type TailLoss = 'gone' | 'compressed' | 'truncated';

/** Something worth telling the operator: rotation, truncation, a missing file, lines that cannot be read. */
export interface TailNotice {
  kind: 'opened' | 'rotated' | 'truncated' | 'missing' | 'resumed' | 'resumed-rotated' | 'restarted' | 'lost';
  message: string;
  /**
   * Set when lines may have been lost: `gone` (the checkpointed file no longer exists), `compressed` (it, or a
   * rotation written after it, was compressed and is not read back), `truncated` (the file was truncated and
   * no rotated copy held the bytes after our position).
   */
  loss?: TailLoss;
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
  /** Longest line kept (default 1 MiB); a longer one is dropped, as lines with invalid UTF-8 or a NUL byte are (LineSplitter). */
  maxLineBytes?: number;
  /** Where the dropped lines are reported (by file name and line number); default: only counted by the splitter. */
  issues?: IssueLog;
  /** The caller checkpoints cursors: a FIFO or device (no offset to resume at) is refused (DS_CONFIG). */
  resumable?: boolean;
  onNotice?: (n: TailNotice) => void;
}

const HEAD_BYTES = 64;

/**
 * What follows the followed file's name in a rotated sibling: a number or a date (`.1`, `-20261206`,
 * `.2026-12-06_13-00`), then maybe a compression extension. A letter right after the name (`app.log.state`,
 * `app.log.lock`) is not a rotation.
 */
const ROTATED_SUFFIX = /^[.\-_]\d[\d\-_.T:]*?(\.(gz|bz2|xz|zst|lz4|Z))?$/;
const COMPRESSED = /\.(gz|bz2|xz|zst|lz4|Z)$/;

interface OpenFile {
  fd: number;
  dev: number;
  ino: number;
  pos: number; // next byte to read
  head: Buffer; // first bytes seen (up to HEAD_BYTES)
  mtimeMs: number; // modification time at the last fstat
  splitter: LineSplitter;
  name: string; // the path it was opened by
  stream: boolean; // a FIFO or character device: read where it stands, never by offset
}

interface Sibling {
  name: string;
  st: fs.Stats;
  compressed: boolean;
}

export class FileFollower {
  readonly path: string;
  private readonly pollMs: number;
  private readonly chunkBytes: number;
  private readonly maxLineBytes: number;
  private readonly issues: IssueLog | null;
  private readonly resumable: boolean;
  private readonly onNotice: (n: TailNotice) => void;
  private cursor: FileCursor | undefined;
  private from: 'start' | 'end';
  private file: OpenFile | null = null;
  /** Rotated files to read to their end before the file at the path, oldest first. */
  private chain: OpenFile[] = [];
  private stopped = false;
  private wake: (() => void) | null = null;
  private buf: Buffer;
  private missingNoticed = false;
  /** Lines of the current file dropped because they exceeded maxLineBytes (see LineSplitter). */
  cutLines = 0;

  constructor(filePath: string, opts: FollowOptions = {}) {
    this.path = path.resolve(filePath);
    this.pollMs = opts.pollMs ?? 100;
    this.chunkBytes = opts.chunkBytes ?? 256 * 1024;
    this.maxLineBytes = opts.maxLineBytes ?? 1 << 20;
    this.issues = opts.issues ?? null;
    this.resumable = opts.resumable ?? false;
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
        let lines: TailLine[];
        try {
          lines = this.poll();
        } catch (err) {
          // Every error names the file it is about (a bare EIO from a read would not).
          throw err instanceof DeepSentryError ? err : this.ioError('cannot read', this.path, err);
        }
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
    if (this.cursor) {
      const c = this.cursor;
      this.cursor = undefined;
      this.resume(c);
    }
    if (this.chain.length > 0) {
      this.readChain(out);
      if (out.length > 0 || this.chain.length > 0) return out;
    }
    if (!this.file && !this.openCurrent()) return out;
    const f = this.file!;
    if (f.stream) {
      this.readStream(f, out);
      return out;
    }
    let byName: fs.Stats | null = null;
    try {
      byName = fs.statSync(this.path);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw this.ioError('cannot stat', this.path, err);
    }
    const st = fs.fstatSync(f.fd);
    f.mtimeMs = st.mtimeMs;
    if (st.size < f.pos || !this.headMatches(f, st.size)) {
      this.truncated(f, st.size);
      if (this.chain.length > 0) {
        this.readChain(out);
        if (out.length > 0 || this.chain.length > 0) return out;
      }
    }
    this.readAvailable(f, st.size, out);
    if (out.length > 0) return out;
    if (!byName || byName.ino !== f.ino || byName.dev !== f.dev) {
      // Rotated away (or deleted). Whatever the writer put in the old file is read above; its last line is done.
      this.finishFile(f, out);
      this.onNotice({ kind: 'rotated', message: `${this.path} was rotated (the path now names ${byName ? 'another file' : 'nothing'}): finished the old file at byte ${f.pos}` });
      this.closeFile();
      this.from = 'start';
      if (byName && this.openCurrent()) this.readAvailable(this.file!, fs.fstatSync(this.file!.fd).size, out);
    }
    return out;
  }

  /**
   * The file shrank or its first bytes changed. Reads the rest from logrotate's copy when there is one (a
   * sibling starting with the same bytes, at least as long as our position), then the file again from byte 0.
   */
  private truncated(f: OpenFile, size: number): void {
    const copy = f.pos > 0 ? this.findCopy(f.head, f.pos, f) : null;
    if (copy) {
      // The copy continues where we were, partial last line included: it takes over our splitter.
      copy.pos = f.pos;
      copy.head = f.head;
      copy.splitter = f.splitter;
      this.chain.push(copy);
      this.onNotice({ kind: 'truncated', message: `${f.name} was truncated (copytruncate; size ${size}, our position ${f.pos}): reading the rest from its copy ${copy.name}, then ${f.name} from the start` });
    } else {
      this.onNotice({
        kind: 'truncated',
        loss: 'truncated',
        message: `${f.name} was truncated (size ${size} < position ${f.pos}, or its first bytes changed) and no rotated copy holds the bytes after position ${f.pos}: lines written after the last read and before the truncation are lost; reading it again from the start`,
      });
    }
    f.pos = 0;
    f.head = Buffer.alloc(0);
    f.splitter = new LineSplitter(0, 1, this.maxLineBytes, this.issues, f.name);
  }

  /** Reads the oldest file of the rotated chain; a file read to its end is finished and leaves the chain. */
  private readChain(out: TailLine[]): void {
    const c = this.chain[0]!;
    const st = fs.fstatSync(c.fd);
    c.mtimeMs = st.mtimeMs;
    this.readAvailable(c, st.size, out);
    if (c.pos >= st.size) {
      this.finishFile(c, out);
      fs.closeSync(c.fd);
      this.chain.shift();
    }
  }

  private readAvailable(f: OpenFile, size: number, out: TailLine[]): void {
    // Until a chunk completes lines, at most 4 per poll: the lines of a chunk go to the consumer (and the event loop
    // runs) before the next read, so a big append is handed over a chunk at a time (~2,000 lines of 128 bytes)
    // rather than as one batch holding the loop; the budget bounds what a poll reads of a line too long to keep.
    let budget = 4;
    const had = out.length;
    while (f.pos < size && budget-- > 0 && out.length === had) {
      const n = fs.readSync(f.fd, this.buf, 0, Math.min(this.chunkBytes, size - f.pos), f.pos);
      if (n <= 0) break;
      const chunk = this.buf.subarray(0, n);
      if (f.head.length < HEAD_BYTES && f.pos < HEAD_BYTES) {
        const take = chunk.subarray(0, Math.min(n, HEAD_BYTES - f.pos));
        if (f.pos === f.head.length) f.head = Buffer.concat([f.head, take]);
      }
      f.pos += n;
      this.emit(f, chunk, out);
    }
  }

  /** A FIFO or device: whatever is there now, without blocking (EAGAIN: a writer, no data; 0: no writer). */
  private readStream(f: OpenFile, out: TailLine[]): void {
    let budget = 4;
    while (budget-- > 0) {
      let n: number;
      try {
        n = fs.readSync(f.fd, this.buf, 0, this.chunkBytes, null);
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code === 'EAGAIN' || code === 'EWOULDBLOCK') break;
        throw this.ioError('cannot read', f.name, err);
      }
      // 0 means no writer has it open (yet, or any more): keep it open and poll, as tail -F would.
      if (n <= 0) break;
      f.pos += n;
      this.emit(f, this.buf.subarray(0, n), out);
    }
  }

  private emit(f: OpenFile, chunk: Buffer, out: TailLine[]): void {
    const id = this.identity(f);
    f.splitter.push(chunk, out, (text, lineNo, offset, end) => new TailLine(text, lineNo, offset, end, id));
    this.cutLines = f.splitter.cutLines;
  }

  private finishFile(f: OpenFile, out: TailLine[]): void {
    const id = this.identity(f);
    f.splitter.finish(out, (text, lineNo, offset, end) => new TailLine(text, lineNo, offset, end, id));
  }

  private identity(f: OpenFile): FileIdentity {
    return { path: f.name, dev: f.dev, ino: f.ino, head: f.head.toString('base64'), mtimeMs: f.mtimeMs, resumable: !f.stream };
  }

  /** The bytes we saw at the start of the file are still there (else it was truncated and rewritten). */
  private headMatches(f: OpenFile, size: number): boolean {
    if (f.head.length === 0) return true;
    if (size < f.head.length) return false;
    const b = Buffer.allocUnsafe(f.head.length);
    fs.readSync(f.fd, b, 0, f.head.length, 0);
    return b.equals(f.head);
  }

  /**
   * Opens the file at the path (non-blocking, so that a FIFO without a writer does not hold the event loop).
   * A directory, socket or block device is an error naming the path; a missing file is waited for.
   */
  private openPath(): OpenFile | null {
    let fd: number;
    try {
      fd = fs.openSync(this.path, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') {
        if (!this.missingNoticed) this.onNotice({ kind: 'missing', message: `${this.path} does not exist (yet): waiting for it` });
        this.missingNoticed = true;
        return null;
      }
      if (code === 'EISDIR') throw this.notAFile('a directory');
      if (code === 'ENXIO') throw this.notAFile('a socket');
      throw this.ioError('cannot open', this.path, err);
    }
    this.missingNoticed = false;
    const st = fs.fstatSync(fd);
    const stream = st.isFIFO() || st.isCharacterDevice();
    const what = st.isDirectory() ? 'a directory' : st.isSocket() ? 'a socket' : st.isBlockDevice() ? 'a block device' : null;
    if (what || (stream && this.resumable)) {
      fs.closeSync(fd);
      if (what) throw this.notAFile(what);
      throw new DeepSentryError('DS_CONFIG', `cannot checkpoint ${this.path}: it is ${st.isFIFO() ? 'a FIFO' : 'a character device'}, which has no byte offset to resume at (follow it without a state file, or follow a regular file)`);
    }
    return { fd, dev: st.dev, ino: st.ino, pos: 0, head: Buffer.alloc(0), mtimeMs: st.mtimeMs, splitter: new LineSplitter(0, 1, this.maxLineBytes, this.issues, this.path), name: this.path, stream };
  }

  /** Opens the file at the path as the current file (from its start, or its end with `from: 'end'`). */
  private openCurrent(): boolean {
    const f = this.openPath();
    if (!f) return false;
    if (this.from === 'end' && !f.stream) {
      f.pos = fs.fstatSync(f.fd).size;
      f.splitter.reset(f.pos, 1);
      this.readHead(f);
    }
    this.file = f;
    this.onNotice({ kind: 'opened', message: `following ${this.path}${f.stream ? ' (a FIFO or device: read as a stream)' : ''}` });
    return true;
  }

  /**
   * Resumes at a checkpoint cursor: at its byte if the path still names that file unchanged; else follows
   * the rotated chain (see the file comment) and reports loudly what cannot be read.
   */
  private resume(c: FileCursor): void {
    const cur = this.openPath();
    if (cur?.stream) {
      fs.closeSync(cur.fd);
      throw new DeepSentryError('DS_CONFIG', `cannot resume ${this.path} at byte ${c.offset}: it is now a FIFO or character device`);
    }
    const sameInode = (st: { dev: number; ino: number }) => st.dev === c.dev && st.ino === c.ino;
    if (cur && sameInode(cur)) {
      if (this.resumeAt(cur, c, fs.fstatSync(cur.fd).size)) {
        this.file = cur;
        this.onNotice({ kind: 'resumed', message: `resuming ${this.path} at byte ${c.offset} (line ${c.lineNo})` });
        return;
      }
    }
    const head = Buffer.from(c.head, 'base64');
    const sibs = this.siblings().filter((s) => !cur || s.st.dev !== cur.dev || s.st.ino !== cur.ino);
    // The rest of the checkpointed file: the same inode, renamed; else a copy (copytruncate) by its first bytes.
    let rest: OpenFile | null = null;
    for (const s of sibs.filter((x) => !x.compressed && sameInode(x.st))) rest ??= this.openAt(s, c);
    if (!rest && head.length > 0) for (const s of sibs.filter((x) => !x.compressed && startsWith(this.headOf(x), head))) rest ??= this.openAt(s, c);
    if (rest) {
      this.chain.push(rest);
      this.onNotice({ kind: 'resumed-rotated', message: `${this.path} was rotated while stopped: reading the rest of ${rest.name} from byte ${c.offset} first` });
    } else {
      const gz = head.length > 0 ? sibs.find((s) => s.compressed && startsWith(this.headOf(s), head)) : undefined;
      const loss: TailLoss = gz ? 'compressed' : cur && sameInode(cur) ? 'truncated' : 'gone';
      const why =
        loss === 'compressed'
          ? `its rotation was compressed to ${gz!.name}, which is not read back`
          : loss === 'truncated'
            ? `${this.path} was truncated while stopped and no rotated copy holds its bytes after ${c.offset}`
            : `the file read up to byte ${c.offset} (${c.path}, inode ${c.ino}) no longer exists next to ${this.path}`;
      this.onNotice({ kind: 'restarted', loss, message: `LINES LOST: ${why}; whatever was written to it after byte ${c.offset} cannot be read` });
    }
    // Rotations written after the checkpointed file, oldest first.
    if (c.mtimeMs !== undefined) {
      const later = sibs
        .filter((s) => !(rest && s.st.dev === rest.dev && s.st.ino === rest.ino) && !sameInode(s.st) && s.st.mtimeMs >= c.mtimeMs!)
        .filter((s) => head.length === 0 || !startsWith(this.headOf(s), head))
        .sort((a, b) => a.st.mtimeMs - b.st.mtimeMs || a.name.localeCompare(b.name));
      for (const s of later) {
        if (s.compressed) {
          this.onNotice({ kind: 'lost', loss: 'compressed', message: `LINES LOST: ${s.name} was rotated and compressed while stopped; compressed rotations are not read back` });
          continue;
        }
        const f = this.openSibling(s);
        if (!f) continue;
        this.chain.push(f);
        this.onNotice({ kind: 'resumed-rotated', message: `${s.name} was rotated while stopped: reading it whole` });
      }
    }
    if (cur) this.file = cur; // read from its start once the chain is done
  }

  /** A sibling opened at the cursor's byte, if it is long enough and starts with the cursor's bytes. */
  private openAt(s: Sibling, c: FileCursor): OpenFile | null {
    const f = this.openSibling(s);
    if (!f) return null;
    if (this.resumeAt(f, c, s.st.size)) return f;
    fs.closeSync(f.fd);
    return null;
  }

  private openSibling(s: Sibling): OpenFile | null {
    let fd: number;
    try {
      fd = fs.openSync(s.name, 'r');
    } catch {
      return null; // rotated away again, or unreadable: nothing to read there
    }
    const st = fs.fstatSync(fd);
    return { fd, dev: st.dev, ino: st.ino, pos: 0, head: Buffer.alloc(0), mtimeMs: st.mtimeMs, splitter: new LineSplitter(0, 1, this.maxLineBytes, this.issues, s.name), name: s.name, stream: false };
  }

  /** logrotate's copy of `f` (copytruncate): an uncompressed sibling starting with `head`, at least `minSize` long. */
  private findCopy(head: Buffer, minSize: number, f: OpenFile): OpenFile | null {
    if (head.length === 0) return null;
    const found = this.siblings()
      .filter((s) => !s.compressed && s.st.size >= minSize && (s.st.dev !== f.dev || s.st.ino !== f.ino) && startsWith(this.headOf(s), head))
      .sort((a, b) => b.st.mtimeMs - a.st.mtimeMs)[0];
    return found ? this.openSibling(found) : null;
  }

  /** Regular files next to the path whose names are the path's name plus a rotation suffix. */
  private siblings(): Sibling[] {
    const dir = path.dirname(this.path);
    const base = path.basename(this.path);
    let names: string[];
    try {
      names = fs.readdirSync(dir);
    } catch {
      return [];
    }
    const out: Sibling[] = [];
    for (const n of names) {
      if (!n.startsWith(base) || !ROTATED_SUFFIX.test(n.slice(base.length))) continue;
      const p = path.join(dir, n);
      try {
        const st = fs.statSync(p);
        if (st.isFile()) out.push({ name: p, st, compressed: COMPRESSED.test(n) });
      } catch {
        /* rotated away between readdir and stat */
      }
    }
    return out;
  }

  /** The first bytes of a sibling (decompressed for .gz: enough to tell which file it was). */
  private headOf(s: Sibling): Buffer {
    try {
      const fd = fs.openSync(s.name, 'r');
      try {
        const gz = s.name.endsWith('.gz');
        const b = Buffer.alloc(gz ? 64 * 1024 : HEAD_BYTES);
        const n = fs.readSync(fd, b, 0, b.length, 0);
        if (!gz) return b.subarray(0, n);
        return zlib.gunzipSync(b.subarray(0, n), { finishFlush: zlib.constants.Z_SYNC_FLUSH }).subarray(0, HEAD_BYTES);
      } finally {
        fs.closeSync(fd);
      }
    } catch {
      return Buffer.alloc(0);
    }
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

  private notAFile(what: string): DeepSentryError {
    return new DeepSentryError('DS_IO', `cannot follow ${this.path}: it is ${what} (give a log file, a FIFO or a character device)`);
  }

  private ioError(what: string, p: string, err: unknown): DeepSentryError {
    return new DeepSentryError('DS_IO', `${what} ${p}: ${(err as Error).message}`, { cause: err });
  }

  private closeFile(): void {
    for (const f of [...this.chain, ...(this.file ? [this.file] : [])]) {
      try {
        fs.closeSync(f.fd);
      } catch {
        /* already closed */
      }
    }
    this.chain = [];
    this.file = null;
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

function startsWith(b: Buffer, prefix: Buffer): boolean {
  return prefix.length > 0 && b.length >= prefix.length && b.subarray(0, prefix.length).equals(prefix);
}
