/**
 * Streaming line reader: bytes → batches of decoded lines with their physical line numbers. Gzip is detected
 * by its magic bytes and decompressed on the fly. Memory is one read chunk plus at most one partial line of
 * `maxLineBytes`: a longer line is skipped while it streams past, never held whole.
 *
 * Per line: a trailing CR is removed (CRLF files) and a leading UTF-8 BOM of the input is dropped; blank lines
 * are counted and dropped (never an error, not even in strict mode: they carry nothing); lines with invalid
 * UTF-8, a NUL byte or too many bytes are reported to the IssueLog (skip + count, or an error in strict mode).
 */
import { createReadStream, promises as fsp } from 'node:fs';
import { isUtf8 } from 'node:buffer';
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
    if (end > max) {
      issues.add('line_too_long', name, lineNo, `line of ${end} bytes is longer than maxLineBytes ${max}`);
      return;
    }
    const body = end === b.length ? b : b.subarray(0, end);
    if (body.indexOf(0) !== -1) {
      issues.add('nul_byte', name, lineNo, `NUL byte at column ${body.indexOf(0) + 1}`);
      return;
    }
    if (!isUtf8(body)) {
      issues.add('invalid_utf8', name, lineNo, 'invalid UTF-8 byte sequence');
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
      const parts = body.toString('utf8').split('\n');
      // Lines longer than max bytes: a string of length L has at most 3L UTF-8 bytes (UTF-16 units), so
      // only lines with L*3 > max need an exact byte count.
      const charLimit = Math.floor(max / 3);
      for (let i = 0; i < parts.length; i++) {
        let s = parts[i];
        lineNo++;
        stats.lines++;
        if (s.length > 0 && s.charCodeAt(s.length - 1) === 13) {
          s = s.slice(0, -1);
          stats.crlf++;
        }
        if (s.length > charLimit) {
          const nb = Buffer.byteLength(s, 'utf8');
          if (nb > max) {
            issues.add('line_too_long', name, lineNo, `line of ${nb} bytes is longer than maxLineBytes ${max}`);
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
        if (chunk.length >= 3 && chunk[0] === 0xef && chunk[1] === 0xbb && chunk[2] === 0xbf) chunk = chunk.subarray(3);
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
          issues.add('line_too_long', name, lineNo, `line of ${carryLen + nl} bytes is longer than maxLineBytes ${max}`);
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
          'To use the lines before the damage, pass --accept-truncated (acceptTruncated in the API)',
      );
    }
    issues.add('truncated_gzip', name, lineNo + 1, `compressed input ends early or is corrupt (${e.message}); ${lineNo} lines read, the partial line after them is dropped`);
    return;
  }
  // The last line without a final newline.
  if (discarding) {
    lineNo++;
    stats.lines++;
    issues.add('line_too_long', name, lineNo, `line of ${carryLen} bytes is longer than maxLineBytes ${max}`);
  } else if (carryLen > 0) {
    const out: LineBatch = { lines: [], lineNos: [] };
    lineFromBytes(Buffer.concat(carry), out);
    if (out.lines.length > 0) yield out;
  }
}
