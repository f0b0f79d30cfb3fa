/**
 * Ground-truth labels for evaluation, in the two shapes public log datasets use:
 *
 * - per session: a loghub `anomaly_label.csv` (`BlockId,Label`, Label `Normal` / `Anomaly`);
 * - per line: a label column inside the log itself (BGL style: the first whitespace-separated field is `-`
 *   for a normal line and an alert tag such as `KERNDTLB` for an anomalous one).
 *
 * Labels are only ever used to evaluate; nothing here feeds training or thresholds.
 */
import { DeepSentryError, invalidParameterError } from '../errors';
import { openCsv, readTextLines } from './csv';

/** Session id → anomalous? (true = anomaly), with where the labels came from. */
export interface SessionLabels {
  kind: 'session';
  file: string;
  labels: Map<string, boolean>;
  /** How many of the labels say anomalous. */
  anomalies: number;
}

/**
 * Per-line labels: `labels[lineNo]` is 1 (anomalous), 0 (normal) or -1 (no label: a blank line or a line
 * beyond the end of the file). Index 0 is unused: line numbers are 1-based, as in lines.csv's `line_no`.
 */
export interface LineLabels {
  kind: 'line';
  file: string;
  labels: Int8Array;
  anomalies: number;
  /** The 1-based whitespace-separated field that holds the label (absent: the log format's own label field). */
  field?: number;
  /** Values of that field meaning "normal"; anything else means anomalous. */
  normalValues: string[];
}

export type Labels = SessionLabels | LineLabels;

/** Id columns accepted in a session label file, in order of preference. */
const ID_COLUMNS = ['BlockId', 'session', 'SessionId', 'session_id'];

function parseSessionLabel(value: string, file: string, lineNo: number): boolean {
  const v = value.trim().toLowerCase();
  if (v === 'anomaly' || v === '1') return true;
  if (v === 'normal' || v === '0') return false;
  throw new DeepSentryError(
    'DS_PARSE',
    `${file}:${lineNo}: label must be Normal or Anomaly (or 0/1) but is ${JSON.stringify(value.length > 40 ? value.slice(0, 40) + '…' : value)}`,
  );
}

/**
 * Reads a loghub-style session label file: a header naming an id column (`BlockId`, or `session`) and
 * `Label`; one row per session. Gzip is read transparently (`.gz`). A malformed row, an empty id, an unknown
 * label value or the same id given two different labels is a DS_PARSE error naming file and line.
 */
export async function loadSessionLabels(file: string): Promise<SessionLabels> {
  let csv;
  try {
    csv = await openCsv(file, 'label file', ['Label']);
  } catch (err) {
    // A log with labels in its lines (BGL) passed as a label CSV: say what to do instead.
    if (err instanceof DeepSentryError && /lacks column/.test(err.message)) {
      throw new DeepSentryError('DS_PARSE', `${err.message.split(' (expected')[0]}: expected a loghub label file with a BlockId,Label header; for labels in a field of each log line (BGL style) use a per-line label field (labelField)`);
    }
    throw err;
  }
  const idName = ID_COLUMNS.find((c) => csv.columns.has(c));
  if (idName === undefined) {
    throw new DeepSentryError('DS_PARSE', `${file}:1: label file header needs an id column (${ID_COLUMNS.join(' or ')}) next to Label`);
  }
  const idCol = csv.columns.get(idName)!;
  const labelCol = csv.columns.get('Label')!;
  const labels = new Map<string, boolean>();
  const firstLine = new Map<string, number>();
  let anomalies = 0;
  for await (const { lineNo, fields } of csv.rows()) {
    const id = fields[idCol]!.trim();
    if (id === '') throw new DeepSentryError('DS_PARSE', `${file}:${lineNo}: empty ${idName}`);
    const anomalous = parseSessionLabel(fields[labelCol]!, file, lineNo);
    const prev = labels.get(id);
    if (prev !== undefined) {
      if (prev !== anomalous) {
        throw new DeepSentryError('DS_PARSE', `${file}:${lineNo}: ${id} is labelled ${anomalous ? 'Anomaly' : 'Normal'} here but ${prev ? 'Anomaly' : 'Normal'} at line ${firstLine.get(id)}`);
      }
      continue;
    }
    labels.set(id, anomalous);
    firstLine.set(id, lineNo);
    if (anomalous) anomalies++;
  }
  if (labels.size === 0) throw new DeepSentryError('DS_PARSE', `label file ${file} has a header but no label rows`);
  return { kind: 'session', file, labels, anomalies };
}

/** Options for per-line labels read from a column of the log itself. */
export interface LineLabelOptions {
  /** 1-based whitespace-separated field holding the label (BGL: 1). */
  field?: number;
  /** Values meaning normal (BGL: `-`). Every other value is anomalous. */
  normalValues?: string[];
}

/**
 * Reads per-line labels from a field of each line of a log (BGL style). Line numbers are 1-based and match
 * lines.csv's `line_no`. A non-blank line with fewer fields than `field` is a DS_PARSE error naming the line.
 */
export async function loadLineLabels(file: string, options: LineLabelOptions = {}): Promise<LineLabels> {
  const field = options.field ?? 1;
  if (!Number.isInteger(field) || field < 1 || field > 1000) throw invalidParameterError('label field', 'an integer 1..1000', field);
  const normalValues = options.normalValues ?? ['-'];
  if (!Array.isArray(normalValues) || normalValues.length === 0) throw invalidParameterError('normal label values', 'a non-empty list of strings', normalValues);
  const normal = new Set(normalValues);
  let labels = new Int8Array(1024).fill(-1);
  let anomalies = 0;
  let last = 0;
  let labelled = 0;
  // lenient like the scorer: a line it skipped (invalid UTF-8, NUL) is unlabelled, line numbers stay physical
  for await (const { lineNo, text } of readTextLines(file, 'label file', { strict: false })) {
    if (lineNo >= labels.length) {
      const bigger = new Int8Array(labels.length * 2).fill(-1);
      bigger.set(labels);
      labels = bigger;
    }
    last = lineNo;
    if (text.trim() === '') continue;
    const parts = text.trim().split(/\s+/);
    if (parts.length < field) {
      throw new DeepSentryError('DS_PARSE', `${file}:${lineNo}: expected a label in whitespace-separated field ${field} but the line has ${parts.length} field${parts.length === 1 ? '' : 's'}`);
    }
    const anomalous = !normal.has(parts[field - 1]!);
    labels[lineNo] = anomalous ? 1 : 0;
    labelled++;
    if (anomalous) anomalies++;
  }
  if (labelled === 0) throw new DeepSentryError('DS_PARSE', `label file ${file} has no labelled lines`);
  return { kind: 'line', file, labels: labels.subarray(0, last + 1), anomalies, field, normalValues: [...normalValues] };
}

/**
 * Per-line labels the log format itself parsed (BGL's Label column, a JSON path, a regex group): `byLine[n]` is
 * 1, 0 or -1 for line n (1-based), as `deepsentry prepare` stored them in lines.bin.
 */
export function lineLabelsFromFormat(file: string, byLine: Int8Array, normalValues: readonly string[]): LineLabels {
  let anomalies = 0;
  let labelled = 0;
  for (let i = 1; i < byLine.length; i++) {
    if (byLine[i] >= 0) labelled++;
    if (byLine[i] === 1) anomalies++;
  }
  if (labelled === 0) throw new DeepSentryError('DS_PARSE', `${file} has no labelled lines`);
  return { kind: 'line', file, labels: byLine, anomalies, normalValues: [...normalValues] };
}
