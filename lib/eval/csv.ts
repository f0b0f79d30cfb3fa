/**
 * Small streaming readers for the evaluation inputs: text lines (gzip read transparently when the name ends
 * in .gz) and simple CSV rows (RFC 4180 quoting within one line; no embedded newlines — none of the files
 * evaluation reads, sessions.csv, lines.csv or loghub label files, has them).
 *
 * Every failure is a DeepSentryError naming the file (and line, for content errors).
 */
import * as fs from 'node:fs';
import * as readline from 'node:readline';
import * as zlib from 'node:zlib';
import { DeepSentryError } from '../errors';

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

/**
 * Streams the lines of a file (LF or CRLF), gzip-decompressed when the name ends in .gz. A read or
 * decompression error (e.g. a truncated .gz) becomes DS_IO naming the file and the last line read.
 */
export async function* readTextLines(file: string, what = 'file'): AsyncGenerator<TextLine> {
  assertReadableFile(file, what);
  const raw = fs.createReadStream(file);
  const source = file.endsWith('.gz') ? raw.pipe(zlib.createGunzip()) : raw;
  let failure: unknown = null;
  raw.on('error', (e) => { failure = e; source.destroy(e); });
  const rl = readline.createInterface({ input: source, crlfDelay: Infinity });
  let lineNo = 0;
  try {
    for await (const text of rl) {
      lineNo++;
      yield { lineNo, text };
    }
  } catch (err) {
    failure = err;
  } finally {
    rl.close();
    raw.destroy();
  }
  if (failure !== null) {
    throw new DeepSentryError('DS_IO', `${what} ${file}: read failed after line ${lineNo}: ${(failure as Error).message ?? String(failure)}`, { cause: failure });
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
  /** the data rows (blank lines skipped) */
  rows: AsyncGenerator<CsvRow>;
  /**
   * The raw data lines, for hot loops (multi-million-row lines.csv): parse each with `parse`, which returns
   * null for a blank line. Use either `rows` or `lines`, not both.
   */
  lines: AsyncGenerator<TextLine>;
  parse(text: string, lineNo: number): string[] | null;
}

/**
 * Opens a CSV file with a header row. `required` columns must be present (by exact name); data rows must have
 * as many fields as the header (else DS_PARSE naming file and line). Blank lines are skipped.
 */
export async function openCsv(file: string, what: string, required: readonly string[]): Promise<CsvReader> {
  const lines = readTextLines(file, what);
  let header: TextLine | undefined;
  for (;;) {
    const r = await lines.next();
    if (r.done) break;
    if (r.value.text.trim() !== '') {
      header = r.value;
      break;
    }
  }
  if (!header) throw new DeepSentryError('DS_PARSE', `${what} ${file} is empty: expected a header row with columns ${required.join(',')}`);
  const names = splitCsvLine(header.text.replace(/^\uFEFF/, ''), file, header.lineNo).map((s) => s.trim());
  const columns = new Map<string, number>();
  names.forEach((n, i) => columns.set(n, i));
  const missing = required.filter((c) => !columns.has(c));
  if (missing.length > 0) {
    throw new DeepSentryError(
      'DS_PARSE',
      `${file}:${header.lineNo}: ${what} header lacks column${missing.length > 1 ? 's' : ''} ${missing.join(', ')} ` +
        `(expected ${required.join(',')}; found ${names.join(',')})`,
    );
  }
  const width = names.length;
  const parse = (text: string, lineNo: number): string[] | null => {
    if (text === '' || text.trim() === '') return null;
    const fields = splitCsvLine(text, file, lineNo);
    if (fields.length !== width) {
      throw new DeepSentryError('DS_PARSE', `${file}:${lineNo}: expected ${width} fields (${names.join(',')}) but found ${fields.length}`);
    }
    return fields;
  };
  async function* rows(): AsyncGenerator<CsvRow> {
    for await (const { lineNo, text } of lines) {
      const fields = parse(text, lineNo);
      if (fields) yield { lineNo, fields };
    }
  }
  return { file, columns, rows: rows(), lines, parse };
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
