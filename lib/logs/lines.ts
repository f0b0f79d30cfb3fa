/**
 * Every reader of log lines, with one line policy: the streaming batch reader (readLineBatches: bytes → batches
 * of decoded lines with their physical line numbers, for training, scoring and evaluation) and the live
 * sources' byte-exact splitter (LineSplitter: lines with their byte offsets). Gzip is detected by its magic
 * bytes and decompressed on the fly (batch reader). Memory is one read chunk plus at most one partial line of
 * `maxLineBytes`: a longer line is skipped while it streams past, never held whole.
 *
 * The policy, per line: a trailing CR is removed (CRLF files) and a leading UTF-8 BOM of the input is dropped;
 * lines with invalid UTF-8, a NUL byte or too many bytes (lineIssue) are skipped, counted and reported to the
 * IssueLog (an error in strict mode). Blank lines are counted and dropped by the batch reader (never an error,
 * not even in strict mode: they carry nothing) and skipped uncounted by the live scorers.
 */
import { createReadStream, promises as fsp } from 'node:fs';
import { isAscii, isUtf8 } from 'node:buffer';
import { createGunzip } from 'node:zlib';
import { pipeline, Readable } from 'node:stream';
import { DeepSentryError } from '../errors';
import type { IssueLog } from './issues';

/** Decoded lines of one chunk of input, in order. */
export interface LineBatch {
  /** The line texts (no newline, no trailing CR, never blank). */
  lines: string[];
  /** 1-based physical line number of each entry of `lines`. */
  lineNos: number[];
}

/** Counters of one input, filled while reading. */
export interface ReadStats {
  /** Physical lines seen (including blank and skipped ones). */
  lines: number;
  /** Blank (empty or whitespace-only) lines dropped. */
  blank: number;
  /** Lines that ended with CRLF (normalised, not an error). */
  crlf: number;
  /** Bytes read after decompression. */
  bytes: number;
  /** The input was gzip-compressed. */
  gzip: boolean;
}

export interface ReadOptions {
  /** Name used in issues and errors (default: the path, or `<stream>`). */
  name?: string;
  maxLineBytes: number;
  issues: IssueLog;
  /** Counters to fill (a fresh object is used if absent). */
  stats?: ReadStats;
  /** Read chunk size in bytes. */
  chunkBytes?: number;
  /**
   * A truncated or corrupt gzip input: false (default) is a DS_IO error naming the input and how far it got;
   * true keeps the lines before the damage and reports a `truncated_gzip` issue.
   */
  acceptTruncated?: boolean;
}

export function newReadStats(): ReadStats {
  return { lines: 0, blank: 0, crlf: 0, bytes: 0, gzip: false };
}

const GZIP_MAGIC0 = 0x1f;
const GZIP_MAGIC1 = 0x8b;

/**
 * Opens a file (or takes a stream) and yields raw bytes, decompressing gzip transparently. A path is read
 * once, as a stream from its start, with the gzip magic peeked from the first bytes: a FIFO or a /dev/fd pipe
 * works as well as a regular file (no positioned read, no second open); a directory is refused by name
 * before any byte is read.
 */
async function* rawChunks(source: string | Readable, name: string, stats: ReadStats, chunkBytes: number): AsyncGenerator<Buffer> {
  let src: AsyncIterable<Buffer | string>;
  if (typeof source === 'string') {
    let st;
    try {
      st = await fsp.stat(source);
    } catch (e) {
      throw new DeepSentryError('DS_IO', `Cannot read log file ${source}: ${(e as Error).message}`, { cause: e });
    }
    if (st.isDirectory()) throw new DeepSentryError('DS_IO', `Cannot read log file ${source}: it is a directory, not a log file`);
    src = createReadStream(source, { highWaterMark: chunkBytes });
  } else src = source;
  const it = src[Symbol.asyncIterator]() as AsyncIterator<Buffer | string>;
  const toBuf = (v: Buffer | string) => (typeof v === 'string' ? Buffer.from(v) : v);
  let done = false;
  try {
    // Peek until the two magic bytes are in (a pipe may deliver a single byte first).
    let head: Buffer = Buffer.alloc(0);
    while (head.length < 2) {
      const r = await it.next();
      if (r.done) {
        done = true;
        break;
      }
      head = head.length === 0 ? toBuf(r.value) : Buffer.concat([head, toBuf(r.value)]);
    }
    if (head.length === 0) return;
    stats.gzip = head.length >= 2 && head[0] === GZIP_MAGIC0 && head[1] === GZIP_MAGIC1;
    async function* rest(): AsyncGenerator<Buffer> {
      yield head;
      while (!done) {
        const r = await it.next();
        if (r.done) done = true;
        else yield toBuf(r.value);
      }
    }
    let input: AsyncIterable<Buffer> = rest();
    if (stats.gzip) {
      const compressed = input;
      const gunzip = createGunzip({ chunkSize: 64 * 1024 });
      // pipeline: a read error destroys the gunzip stream with it (the loop below throws it); a consumer that
      // stops early destroys gunzip, and pipeline then ends the source (closing the file).
      pipeline(Readable.from(compressed), gunzip, () => undefined);
      input = gunzip;
    }
    for await (const chunk of input) {
      stats.bytes += chunk.length;
      yield chunk;
    }
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    if (stats.gzip && typeof err.code === 'string' && err.code.startsWith('Z_')) {
      // zlib: "unexpected end of file" (truncated), "incorrect data check" (CRC), "invalid block type"
      // (garbage after the header), "incorrect header check" (garbage after the last member).
      throw new GzipDamaged(err.message);
    }
    if (err instanceof DeepSentryError) throw err;
    throw new DeepSentryError('DS_IO', typeof source === 'string' ? `Cannot read log file ${source}: ${err.message}` : `Error reading ${name}: ${err.message}`, { cause: e });
  } finally {
    if (!done) await it.return?.();
  }
}

class GzipDamaged extends Error {}

/** Why a line is dropped: every reader applies the same policy (lineIssue). */
export type LineIssueKind = 'invalid_utf8' | 'nul_byte' | 'line_too_long';

/**
 * The line policy of every reader, batch (readLineBatches) and live (LineSplitter): a line's bytes, without its
 * newline and trailing CR, are dropped when longer than `maxLineBytes`, when they hold a NUL byte, or when they
 * are not valid UTF-8 (decoding would invent U+FFFD characters); null when the line is kept.
 */
export function lineIssue(body: Buffer, maxLineBytes: number): { kind: LineIssueKind; message: string } | null {
  if (body.length > maxLineBytes) return { kind: 'line_too_long', message: tooLong(body.length, maxLineBytes) };
  const z = body.indexOf(0);
  if (z !== -1) return { kind: 'nul_byte', message: `NUL byte at column ${z + 1}` };
  if (!isUtf8(body)) return { kind: 'invalid_utf8', message: 'invalid UTF-8 byte sequence' };
  return null;
}

const tooLong = (bytes: number, max: number) => `line of ${bytes} bytes is longer than maxLineBytes ${max}`;

/** The input starts with a UTF-8 byte-order mark (EF BB BF), which is not part of its first line. */
function hasBom(b: Buffer): boolean {
  return b.length >= 3 && b[0] === 0xef && b[1] === 0xbb && b[2] === 0xbf;
}

/** One complete line from a live source, with its place in that source. */
export interface SourceLine {
  /** The line without its terminator (`\n`, or `\r\n`). */
  text: string;
  /** 1-based line number within the source (the file generation for a followed file). */
  lineNo: number;
  /** Byte offset of the first byte of the line within the source. */
  offset: number;
  /** Byte offset just past the line's terminator: where reading resumes after this line. */
  end: number;
}

/**
 * Byte-exact line splitting for the live sources (file tail, stdin, HTTP bodies, the scale-out publisher).
 * Splitting happens on bytes, not on decoded text, so that every line carries the byte offset where it starts
 * (what a checkpoint stores) and a multi-byte UTF-8 character cut by a read boundary is never decoded in halves.
 *
 * The line policy is readLineBatches': a UTF-8 BOM at the start of the source is dropped, a trailing CR is
 * removed, and a line that lineIssue refuses (over-long, NUL byte, invalid UTF-8) is dropped and counted in
 * `dropped` (and reported to `issues` when given) — its bytes still move the offsets and its number is used, so
 * the lines after it keep their places. An over-long line is never held whole: its bytes are skipped as they
 * stream past. Blank lines are handed on (the scorers skip them).
 */
/** Makes the record of one line LineSplitter found: its text, number, start offset and the offset past its end. */
export type LineMaker<L> = (text: string, lineNo: number, offset: number, end: number) => L;

const plainLine: LineMaker<SourceLine> = (text, lineNo, offset, end) => ({ text, lineNo, offset, end });

export class LineSplitter {
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  /** The current line already exceeded maxLineBytes: its bytes are dropped until its newline. */
  private discarding = false;
  /** Byte offset of the first pending byte (= where the next line starts). */
  private lineStart: number;
  private nextLineNo: number;
  /** Lines longer than this (in bytes, without the terminator) are dropped. */
  readonly maxLineBytes: number;
  /** Lines dropped by the line policy, by kind. */
  readonly dropped: Record<LineIssueKind, number> = { invalid_utf8: 0, nul_byte: 0, line_too_long: 0 };

  /**
   * @param issues where dropped lines are reported (as readLineBatches reports them), under `name`
   */
  constructor(
    startOffset = 0,
    startLineNo = 1,
    maxLineBytes = 1 << 20,
    private readonly issues: IssueLog | null = null,
    private readonly name = '<stream>',
  ) {
    this.lineStart = startOffset;
    this.nextLineNo = startLineNo;
    this.maxLineBytes = maxLineBytes;
  }

  /** Offset where the next (not yet complete) line starts. */
  get offset(): number {
    return this.lineStart;
  }
  get lineNo(): number {
    return this.nextLineNo;
  }
  /** Bytes of an unfinished last line held back (or skipped, when over-long) until its newline arrives. */
  get partialBytes(): number {
    return this.pendingBytes;
  }
  /** Over-long lines dropped so far. */
  get cutLines(): number {
    return this.dropped.line_too_long;
  }

  /**
   * Feeds bytes; returns the lines they complete, appended to `out`, each made by `make` (a plain SourceLine
   * unless the caller keeps its own kind of line: the file tail's carry their file, and one object a line is
   * then made instead of two).
   */
  push<L = SourceLine>(chunk: Buffer, out: L[] = [], make: LineMaker<L> = plainLine as unknown as LineMaker<L>): L[] {
    // One check of the whole run of complete lines: when it is clean (no NUL, valid UTF-8), its lines need
    // only their length checked. A run that starts inside a character held back from the last read is not
    // valid on its own: its lines are then checked one by one.
    const last = chunk.lastIndexOf(10);
    const run = last > 0 ? chunk.subarray(0, last) : null;
    const clean = run !== null && run.indexOf(0) === -1 && isUtf8(run);
    // ASCII (most logs) decodes as latin1, the cheaper decoder, to the same text.
    const encoding = clean && isAscii(run) ? 'latin1' : 'utf8';
    let from = 0;
    for (;;) {
      const nl = chunk.indexOf(10, from);
      if (nl < 0) break;
      if (clean && this.pendingBytes === 0 && !this.discarding) this.completeClean(chunk, from, nl, encoding, out, make);
      else this.complete(chunk.subarray(from, nl), nl - from + 1, clean, out, make);
      from = nl + 1;
    }
    if (from < chunk.length) {
      const rest = chunk.subarray(from);
      if (!this.discarding) {
        // + 1: a CR that ends the line does not count
        if (this.pendingBytes + rest.length > this.maxLineBytes + 1) {
          this.discarding = true;
          this.pending = [];
        } else this.pending.push(Buffer.from(rest)); // copy: the caller may reuse its read buffer
      }
      this.pendingBytes += rest.length;
    }
    return out;
  }

  /** Ends the source: an unterminated last line becomes a line (used when a file is finished, e.g. rotated away). */
  finish<L = SourceLine>(out: L[] = [], make: LineMaker<L> = plainLine as unknown as LineMaker<L>): L[] {
    if (this.pendingBytes > 0) this.complete(Buffer.alloc(0), 0, false, out, make);
    return out;
  }

  /** Forgets held-back bytes and restarts numbering (truncation / a new file). */
  reset(startOffset = 0, startLineNo = 1): void {
    this.pending = [];
    this.pendingBytes = 0;
    this.discarding = false;
    this.lineStart = startOffset;
    this.nextLineNo = startLineNo;
  }

  /**
   * complete() for a line that is all in `chunk` (nothing held back), in a run of lines found clean: the same
   * line, decoded straight from the chunk without two Buffer views of it (the live sources' hot path).
   */
  private completeClean<L>(chunk: Buffer, from: number, nl: number, encoding: 'latin1' | 'utf8', out: L[], make: LineMaker<L>): void {
    const offset = this.lineStart;
    const lineNo = this.nextLineNo++;
    this.lineStart += nl - from + 1;
    let end = nl;
    if (end > from && chunk[end - 1] === 13) end--; // CRLF
    const start = offset === 0 && hasBom(chunk.subarray(from, nl)) ? from + 3 : from;
    if (end - start > this.maxLineBytes) return this.drop('line_too_long', lineNo, tooLong(end - start, this.maxLineBytes));
    out.push(make(chunk.toString(encoding, start, end), lineNo, offset, this.lineStart));
  }

  /** A line ends: the held-back bytes, then `tail` (`tailBytes` with its newline; 0 at the end of the source). */
  private complete<L>(tail: Buffer, tailBytes: number, clean: boolean, out: L[], make: LineMaker<L>): void {
    const offset = this.lineStart;
    const lineNo = this.nextLineNo++;
    const held = this.pendingBytes;
    this.lineStart += held + tailBytes;
    this.pendingBytes = 0;
    if (this.discarding) {
      this.discarding = false;
      let n = held + tail.length;
      if (tail.length > 0 && tail[tail.length - 1] === 13) n--;
      this.drop('line_too_long', lineNo, tooLong(n, this.maxLineBytes));
      return;
    }
    let bytes = tail;
    if (held > 0) {
      this.pending.push(tail);
      bytes = Buffer.concat(this.pending);
      this.pending = [];
    }
    let n = bytes.length;
    if (n > 0 && bytes[n - 1] === 13) n--; // CRLF (and a CR ending the source's unterminated last line, as readLineBatches)
    const start = offset === 0 && hasBom(bytes) ? 3 : 0;
    const body = bytes.subarray(start, n);
    if (clean && held === 0) {
      if (body.length > this.maxLineBytes) return this.drop('line_too_long', lineNo, tooLong(body.length, this.maxLineBytes));
    } else {
      const issue = lineIssue(body, this.maxLineBytes);
      if (issue !== null) return this.drop(issue.kind, lineNo, issue.message);
    }
    out.push(make(body.toString('utf8'), lineNo, offset, this.lineStart));
  }

  private drop(kind: LineIssueKind, lineNo: number, message: string): void {
    this.dropped[kind]++;
    this.issues?.add(kind, this.name, lineNo, message);
  }
}

/** The non-blank lines of a whole body of bytes (an HTTP request's), by LineSplitter's policy. */
export function splitLines(body: Buffer, maxLineBytes?: number): string[] {
  const s = new LineSplitter(0, 1, maxLineBytes);
  const out: string[] = [];
  for (const l of s.finish(s.push(body))) if (!isBlank(l.text)) out.push(l.text);
  return out;
}

/** Empty or only whitespace (String.prototype.trim's definition); trim() runs only when the first char could be space. */
export function isBlank(s: string): boolean {
  if (s.length === 0) return true;
  const c = s.charCodeAt(0);
  return (c <= 32 || c >= 128) && s.trim() === '';
}

/**
 * Reads `source` (a path or a byte stream) as batches of lines. Async iteration: a consumer that stops early
 * closes the file.
 */
export async function* readLineBatches(source: string | Readable, opts: ReadOptions): AsyncGenerator<LineBatch> {
  const name = opts.name ?? (typeof source === 'string' ? source : '<stream>');
  const stats = opts.stats ?? newReadStats();
  const max = opts.maxLineBytes;
  const issues = opts.issues;
  let lineNo = 0; // last physical line number assigned
  // Partial line carried from previous chunks.
  let carry: Buffer[] = [];
  let carryLen = 0;
  let discarding = false; // the current line already exceeded max: drop bytes until its newline

  // Handles one complete line given as bytes (slow path, also used for carried lines).
  const lineFromBytes = (b: Buffer, out: LineBatch): void => {
    lineNo++;
    stats.lines++;
    let end = b.length;
    if (end > 0 && b[end - 1] === 13) {
      end--;
      stats.crlf++;
    }
    const body = end === b.length ? b : b.subarray(0, end);
    const issue = lineIssue(body, max);
    if (issue !== null) {
      issues.add(issue.kind, name, lineNo, issue.message);
      return;
    }
    const s = body.toString('utf8');
    if (isBlank(s)) {
      stats.blank++;
      return;
    }
    out.lines.push(s);
    out.lineNos.push(lineNo);
  };

  // Complete lines in chunk[start, end) where end is just past a newline: fast path when the block is clean.
  const block = (chunk: Buffer, start: number, end: number, out: LineBatch): void => {
    const body = chunk.subarray(start, end - 1); // without the final newline
    if (body.indexOf(0) === -1 && isUtf8(body)) {
      // Each line decoded on its own, not split out of the whole block's text: V8 keeps a substring of 13 or
      // more characters as a slice of its parent, so a session key or a message kept for the whole input (a
      // scorer's sessions, score's per-key rows, message tables) would keep its block's 1 MiB text alive, and
      // memory would grow with the input.
      // Lines longer than max bytes: a string of length L has at most 3L UTF-8 bytes (UTF-16 units), so
      // only lines with L*3 > max need an exact byte count.
      const charLimit = Math.floor(max / 3);
      // ASCII (most logs) decodes as latin1, the cheaper decoder, to the same text.
      const encoding = isAscii(body) ? 'latin1' : 'utf8';
      for (let p = 0; p <= body.length; ) {
        let nl = body.indexOf(10, p);
        if (nl === -1) nl = body.length;
        let s = body.toString(encoding, p, nl);
        p = nl + 1;
        lineNo++;
        stats.lines++;
        if (s.length > 0 && s.charCodeAt(s.length - 1) === 13) {
          s = s.slice(0, -1);
          stats.crlf++;
        }
        if (s.length > charLimit) {
          const nb = Buffer.byteLength(s, 'utf8');
          if (nb > max) {
            issues.add('line_too_long', name, lineNo, tooLong(nb, max));
            continue;
          }
        }
        if (isBlank(s)) {
          stats.blank++;
          continue;
        }
        out.lines.push(s);
        out.lineNos.push(lineNo);
      }
      return;
    }
    let p = start;
    while (p < end) {
      const nl = chunk.indexOf(10, p);
      lineFromBytes(chunk.subarray(p, nl), out);
      p = nl + 1;
    }
  };

  try {
    let first = true;
    for await (const raw of rawChunks(source, name, stats, opts.chunkBytes ?? 1 << 20)) {
      let chunk = raw;
      if (first) {
        // A UTF-8 byte-order mark is not part of the first line (assumes the first chunk holds its 3 bytes).
        first = false;
        if (hasBom(chunk)) chunk = chunk.subarray(3);
      }
      const out: LineBatch = { lines: [], lineNos: [] };
      let p = 0;
      if (discarding || carryLen > 0) {
        const nl = chunk.indexOf(10);
        if (nl === -1) {
          if (!discarding) {
            if (carryLen + chunk.length > max + 1) {
              discarding = true;
              carry = [];
            } else carry.push(chunk);
          }
          carryLen += chunk.length;
          continue;
        }
        if (discarding) {
          lineNo++;
          stats.lines++;
          issues.add('line_too_long', name, lineNo, tooLong(carryLen + nl, max));
        } else lineFromBytes(Buffer.concat([...carry, chunk.subarray(0, nl)]), out);
        carry = [];
        carryLen = 0;
        discarding = false;
        p = nl + 1;
      }
      const last = chunk.lastIndexOf(10);
      if (last >= p) {
        block(chunk, p, last + 1, out);
        p = last + 1;
      }
      if (p < chunk.length) {
        const rest = chunk.subarray(p);
        if (rest.length > max + 1) {
          discarding = true;
          carryLen = rest.length;
        } else {
          carry = [Buffer.from(rest)]; // copy: do not pin the whole chunk
          carryLen = rest.length;
        }
      }
      if (out.lines.length > 0) yield out;
    }
  } catch (e) {
    if (!(e instanceof GzipDamaged)) throw e;
    if (!opts.acceptTruncated) {
      throw new DeepSentryError(
        'DS_IO',
        `${name} is a damaged gzip file: ${e.message} after ${lineNo} lines (${stats.bytes} bytes decompressed); it is truncated or corrupt. ` +
          'To use the lines before the damage, set acceptTruncated',
      );
    }
    issues.add('truncated_gzip', name, lineNo + 1, `compressed input ends early or is corrupt (${e.message}); ${lineNo} lines read, the partial line after them is dropped`);
    return;
  }
  // The last line without a final newline.
  if (discarding) {
    lineNo++;
    stats.lines++;
    issues.add('line_too_long', name, lineNo, tooLong(carryLen, max));
  } else if (carryLen > 0) {
    const out: LineBatch = { lines: [], lineNos: [] };
    lineFromBytes(Buffer.concat(carry), out);
    if (out.lines.length > 0) yield out;
  }
}
