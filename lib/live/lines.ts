/**
 * Byte-exact line splitting for the live sources (file tail, stdin, HTTP bodies). Splitting happens on bytes,
 * not on decoded text, so that every line carries the byte offset where it starts (what a checkpoint stores)
 * and a multi-byte UTF-8 character cut by a read boundary is never decoded in halves.
 */

/** One complete line from a source, with its place in that source. */
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

export class LineSplitter {
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  /** Byte offset of the first pending byte (= where the next line starts). */
  private lineStart: number;
  private nextLineNo: number;
  /** Lines longer than this are cut (and counted) instead of growing memory without bound. */
  readonly maxLineBytes: number;
  /** How many over-long lines were cut. */
  cutLines = 0;

  constructor(startOffset = 0, startLineNo = 1, maxLineBytes = 1 << 20) {
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
  /** Bytes of an unfinished last line held back until its newline arrives. */
  get partialBytes(): number {
    return this.pendingBytes;
  }

  /** Feeds bytes; returns the lines they complete. */
  push(chunk: Buffer, out: SourceLine[] = []): SourceLine[] {
    let from = 0;
    for (;;) {
      const nl = chunk.indexOf(10, from);
      if (nl < 0) break;
      this.emit(chunk.subarray(from, nl), nl - from + 1, out);
      from = nl + 1;
    }
    if (from < chunk.length) {
      const rest = chunk.subarray(from);
      // Copy: the caller may reuse its read buffer.
      this.pending.push(Buffer.from(rest));
      this.pendingBytes += rest.length;
      if (this.pendingBytes > this.maxLineBytes) {
        this.cutLines++;
        this.emit(Buffer.alloc(0), 0, out);
      }
    }
    return out;
  }

  /** Ends the source: an unterminated last line becomes a line (used when a file is finished, e.g. rotated away). */
  finish(out: SourceLine[] = []): SourceLine[] {
    if (this.pendingBytes > 0) this.emit(Buffer.alloc(0), 0, out);
    return out;
  }

  /** Forgets held-back bytes and restarts numbering (truncation / a new file). */
  reset(startOffset = 0, startLineNo = 1): void {
    this.pending = [];
    this.pendingBytes = 0;
    this.lineStart = startOffset;
    this.nextLineNo = startLineNo;
  }

  private emit(tail: Buffer, tailBytes: number, out: SourceLine[]): void {
    let bytes: Buffer;
    if (this.pendingBytes > 0) {
      this.pending.push(tail);
      bytes = Buffer.concat(this.pending);
      this.pending = [];
    } else {
      bytes = tail;
    }
    const consumed = this.pendingBytes + tailBytes;
    this.pendingBytes = 0;
    let n = bytes.length;
    if (tailBytes > 0 && n > 0 && bytes[n - 1] === 13) n--; // CRLF
    const offset = this.lineStart;
    this.lineStart += consumed;
    out.push({ text: bytes.toString('utf8', 0, n), lineNo: this.nextLineNo++, offset, end: this.lineStart });
  }
}
