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
import type { Readable } from 'node:stream';
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
}

export function newReadStats(): ReadStats {
  return { lines: 0, blank: 0, crlf: 0, bytes: 0, gzip: false };
}

const GZIP_MAGIC0 = 0x1f;
const GZIP_MAGIC1 = 0x8b;

/** Opens a file (or takes a stream) and yields raw bytes, decompressing gzip transparently. */
async function* rawChunks(source: string | Readable, name: string, stats: ReadStats, chunkBytes: number): AsyncGenerator<Buffer> {
  let input: AsyncIterable<Buffer>;
  if (typeof source === 'string') {
    let fh;
    try {
      fh = await fsp.open(source, 'r');
    } catch (e) {
      throw new DeepSentryError('DS_IO', `Cannot read log file ${source}: ${(e as Error).message}`, { cause: e });
    }
    const head = Buffer.alloc(2);
    const { bytesRead } = await fh.read(head, 0, 2, 0);
    await fh.close();
    stats.gzip = bytesRead === 2 && head[0] === GZIP_MAGIC0 && head[1] === GZIP_MAGIC1;
    const file = createReadStream(source, { highWaterMark: chunkBytes });
    input = stats.gzip ? file.pipe(createGunzip({ chunkSize: 64 * 1024 })) : file;
    if (stats.gzip) file.on('error', (e) => (input as Readable).destroy(e));
  } else {
    // A stream: peek at the first chunk to decide.
    const it = source[Symbol.asyncIterator]() as AsyncIterator<Buffer | string>;
    const first = await it.next();
    if (first.done) return;
    const firstBuf = typeof first.value === 'string' ? Buffer.from(first.value) : first.value;
    stats.gzip = firstBuf.length >= 2 && firstBuf[0] === GZIP_MAGIC0 && firstBuf[1] === GZIP_MAGIC1;
    async function* rest(): AsyncGenerator<Buffer> {
      yield firstBuf;
      for (;;) {
        const r = await it.next();
        if (r.done) return;
        yield typeof r.value === 'string' ? Buffer.from(r.value) : r.value;
      }
    }
    if (stats.gzip) {
      const gunzip = createGunzip({ chunkSize: 64 * 1024 });
      (async () => {
        try {
          for await (const b of rest()) if (!gunzip.write(b)) await new Promise((r) => gunzip.once('drain', r));
          gunzip.end();
        } catch (e) {
          gunzip.destroy(e as Error);
        }
      })();
      input = gunzip;
    } else input = rest();
  }
  try {
    for await (const chunk of input) {
      stats.bytes += chunk.length;
      yield chunk;
    }
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    if (stats.gzip && typeof err.code === 'string' && err.code.startsWith('Z_')) {
      // zlib: "unexpected end of file" (truncated) or a corrupt stream. Signalled to the caller as a marker.
      throw new GzipTruncated(err.message);
    }
    if (err instanceof DeepSentryError) throw err;
    throw new DeepSentryError('DS_IO', `Error reading ${name}: ${err.message}`, { cause: e });
  }
}

class GzipTruncated extends Error {}

/** Empty or only whitespace (String.prototype.trim's definition); trim() runs only when the first char could be space. */
function isBlank(s: string): boolean {
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
    if (!(e instanceof GzipTruncated)) throw e;
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
