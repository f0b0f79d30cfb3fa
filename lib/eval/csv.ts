/**
 * Streaming readers for the evaluation inputs, on lib/logs' line reader so that line numbers mean exactly
 * what they mean everywhere else (1-based physical lines; gzip detected by its magic bytes; a trailing CR
 * removed; blank lines dropped), plus simple CSV rows (RFC 4180 quoting within one line; no embedded
 * newlines — none of the files evaluation reads, sessions.csv, lines.csv or loghub label files, has them).
 *
 * Every failure is a DeepSentryError naming the file (and line, for content errors).
 */
import * as fs from 'node:fs';
import { DeepSentryError } from '../errors';
import { IssueLog } from '../logs/issues';
import { readLineBatches, type LineBatch } from '../logs/lines';

export type { LineBatch };

/** One physical line of a text file; `lineNo` is 1-based, as an editor shows it. */
export interface TextLine {
  lineNo: number;
  text: string;
}

/** Throws DS_IO naming the file when it does not exist or is not a regular file. */
export function assertReadableFile(file: string, what: string): void {
  let st: fs.Stats;
  try {
    st = fs.statSync(file);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new DeepSentryError('DS_IO', `${what} ${file} ${code === 'ENOENT' ? 'does not exist' : `cannot be read (${code ?? String(err)})`}`, { cause: err });
  }
  if (!st.isFile()) throw new DeepSentryError('DS_IO', `${what} ${file} is not a regular file`);
}

/** How to treat bad lines (invalid UTF-8, NUL bytes, over-long lines). */
export interface ReadMode {
  /**
   * true: the first bad line is a DS_PARSE error naming file and line (CSV inputs: a damaged scores or label
   * file must not be half-read). false: bad lines are skipped, as the scorer skipped them (a log).
   * A truncated or corrupt gzip file is an error either way.
   */
  strict: boolean;
  /** longest line kept (bytes) */
  maxLineBytes?: number;
}

/** Streams a file as batches of non-blank lines with their physical line numbers. */
export async function* readTextBatches(file: string, what: string, mode: ReadMode): AsyncGenerator<LineBatch> {
  assertReadableFile(file, what);
  const issues = new IssueLog(mode.strict, 1);
  // acceptTruncated: the damage is recorded as an issue and raised just below as DS_PARSE naming the line
  // (evaluation offers no flag to accept a partial scores or label file).
  yield* readLineBatches(file, { name: file, maxLineBytes: mode.maxLineBytes ?? 16 * 1024 * 1024, issues, acceptTruncated: true });
  if (issues.counts.truncated_gzip > 0) {
    const i = issues.first.find((x) => x.kind === 'truncated_gzip');
    throw new DeepSentryError('DS_PARSE', `${file}:${i?.line ?? '?'}: ${i?.message ?? 'compressed input ends early or is corrupt'}`);
  }
}

/** Streams a file line by line (see {@link readTextBatches}; batches are faster in hot loops). */
export async function* readTextLines(file: string, what: string, mode: ReadMode): AsyncGenerator<TextLine> {
  for await (const b of readTextBatches(file, what, mode)) {
    for (let i = 0; i < b.lines.length; i++) yield { lineNo: b.lineNos[i]!, text: b.lines[i]! };
  }
}

/** Splits one CSV line into fields (double-quoted fields may contain commas and "" escapes). */
export function splitCsvLine(line: string, file: string, lineNo: number): string[] {
  if (!line.includes('"')) return line.split(',');
  const out: string[] = [];
  let i = 0;
  for (;;) {
    if (line[i] === '"') {
      let value = '';
      i++;
      for (;;) {
        const q = line.indexOf('"', i);
        if (q < 0) throw new DeepSentryError('DS_PARSE', `${file}:${lineNo}: unterminated quoted field`);
        value += line.slice(i, q);
        if (line[q + 1] === '"') {
          value += '"';
          i = q + 2;
          continue;
        }
        i = q + 1;
        break;
      }
      out.push(value);
      if (i === line.length) return out;
      if (line[i] !== ',') throw new DeepSentryError('DS_PARSE', `${file}:${lineNo}: unexpected character after a quoted field at column ${i + 1}`);
      i++;
    } else {
      const c = line.indexOf(',', i);
      if (c < 0) {
        out.push(line.slice(i));
        return out;
      }
      out.push(line.slice(i, c));
      i = c + 1;
    }
  }
}

/** A CSV data row: its fields and its 1-based line number in the file. */
export interface CsvRow {
  lineNo: number;
  fields: string[];
}

/** A CSV file's header (column name → index) and its data rows, streamed. */
export interface CsvReader {
  file: string;
  columns: Map<string, number>;
  /** the data rows */
  rows(): AsyncGenerator<CsvRow>;
  /**
   * The raw data lines in batches, for hot loops (a multi-million-row lines.csv): parse each line with
   * `parse`. Use either `rows` or `batches`, once.
   */
  batches(): AsyncGenerator<LineBatch>;
  parse(text: string, lineNo: number): string[];
}

/**
 * Opens a CSV file with a header row. `required` columns must be present (by exact name); data rows must have
 * as many fields as the header (else DS_PARSE naming file and line). Blank lines are skipped; a line with
 * invalid UTF-8 or a NUL byte is a DS_PARSE error.
 */
export async function openCsv(file: string, what: string, required: readonly string[]): Promise<CsvReader> {
  const source = readTextBatches(file, what, { strict: true, maxLineBytes: 1024 * 1024 });
  let first: LineBatch | undefined;
  for (;;) {
    const r = await source.next();
    if (r.done) break;
    if (r.value.lines.length > 0) {
      first = r.value;
      break;
    }
  }
  if (!first) throw new DeepSentryError('DS_PARSE', `${what} ${file} is empty: expected a header row with columns ${required.join(',')}`);
  const headerLine = first.lineNos[0]!;
  const names = splitCsvLine(first.lines[0]!.replace(/^\uFEFF/, ''), file, headerLine).map((x) => x.trim());
  const columns = new Map<string, number>();
  names.forEach((n, i) => columns.set(n, i));
  const missing = required.filter((c) => !columns.has(c));
  if (missing.length > 0) {
    const found = names.join(',');
    throw new DeepSentryError(
      'DS_PARSE',
      `${file}:${headerLine}: ${what} header lacks column${missing.length > 1 ? 's' : ''} ${missing.join(', ')} ` +
        `(expected ${required.join(',')}; found ${found.length > 100 ? found.slice(0, 100) + '…' : found})`,
    );
  }
  const width = names.length;
  const parse = (text: string, lineNo: number): string[] => {
    const fields = splitCsvLine(text, file, lineNo);
    if (fields.length !== width) {
      throw new DeepSentryError('DS_PARSE', `${file}:${lineNo}: expected ${width} fields (${names.join(',')}) but found ${fields.length}`);
    }
    return fields;
  };
  const rest: LineBatch = { lines: first.lines.slice(1), lineNos: first.lineNos.slice(1) };
  async function* batches(): AsyncGenerator<LineBatch> {
    yield rest;
    yield* source;
  }
  async function* rows(): AsyncGenerator<CsvRow> {
    for await (const b of batches()) {
      for (let i = 0; i < b.lines.length; i++) yield { lineNo: b.lineNos[i]!, fields: parse(b.lines[i]!, b.lineNos[i]!) };
    }
  }
  return { file, columns, rows, batches, parse };
}

/** Parses a finite-or-infinite number field (NaN and junk are errors naming file, line and column). */
export function parseNumberField(value: string, column: string, file: string, lineNo: number): number {
  // fast path: Number() accepts decimals, exponents and "Infinity" (and trims); '' would wrongly become 0
  const fast = Number(value);
  if (!Number.isNaN(fast) && value !== '' && value.trim() !== '') return fast;
  const s = value.trim();
  let v: number;
  if (s === 'inf' || s === 'Infinity' || s === '+Infinity') v = Infinity;
  else if (s === '-inf' || s === '-Infinity') v = -Infinity;
  else v = s === '' ? NaN : Number(s);
  if (Number.isNaN(v)) {
    throw new DeepSentryError('DS_PARSE', `${file}:${lineNo}: column ${column} must be a number but is ${JSON.stringify(value.length > 40 ? value.slice(0, 40) + '…' : value)}`);
  }
  return v;
}
