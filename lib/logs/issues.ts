/**
 * Bad input is counted, the first few are kept with their line numbers, and in strict mode the first one is a
 * DS_PARSE error naming file and line. One collector per run, shared by reader, parser and sessionizer.
 */
import { DeepSentryError } from '../errors';

/**
 * What can be wrong with an input line:
 * - `invalid_utf8`: the line's bytes are not valid UTF-8 (skipped: decoding would invent U+FFFD characters).
 * - `nul_byte`: the line contains a NUL byte (binary garbage or a preallocated, zero-filled file region).
 * - `line_too_long`: longer than `maxLineBytes`; skipped whole without buffering it.
 * - `unparsed`: the line does not match the format.
 * - `bad_timestamp`: the format has a timestamp but this line's is missing or unparseable (never replaced by
 *   the wall clock).
 * - `out_of_order`: the timestamp is earlier than one already seen (kept or skipped per `outOfOrder`).
 * - `truncated_gzip`: the compressed input ends early or is corrupt, and the reader was told to accept that
 *   (acceptTruncated, the CLI's --accept-truncated; otherwise it is a DS_IO error): lines decoded so far are
 *   kept, the partial last line is dropped.
 */
export type IssueKind = 'invalid_utf8' | 'nul_byte' | 'line_too_long' | 'unparsed' | 'bad_timestamp' | 'out_of_order' | 'truncated_gzip';

export const ISSUE_KINDS: readonly IssueKind[] = ['invalid_utf8', 'nul_byte', 'line_too_long', 'unparsed', 'bad_timestamp', 'out_of_order', 'truncated_gzip'];

/** One reported issue. */
export interface LogIssue {
  kind: IssueKind;
  /** Input name (file path, or `<stream>`). */
  file: string;
  /** 1-based physical line number in that input. */
  line: number;
  /** What is wrong, for a person. */
  message: string;
}

export class IssueLog {
  /** Count per kind (all of them, not only the reported ones). */
  readonly counts: Record<IssueKind, number>;
  /** The first `reportFirst` issues in input order. */
  readonly first: LogIssue[] = [];

  constructor(
    readonly strict: boolean,
    readonly reportFirst: number,
  ) {
    this.counts = Object.fromEntries(ISSUE_KINDS.map((k) => [k, 0])) as Record<IssueKind, number>;
  }

  /** Records one issue; in strict mode throws DS_PARSE `file:line: message` instead. */
  add(kind: IssueKind, file: string, line: number, message: string): void {
    if (this.strict) throw new DeepSentryError('DS_PARSE', `${file}:${line}: ${message} (strict mode)`);
    this.counts[kind]++;
    if (this.first.length < this.reportFirst) this.first.push({ kind, file, line, message });
  }

  get total(): number {
    let n = 0;
    for (const k of ISSUE_KINDS) n += this.counts[k];
    return n;
  }

  /** A short human summary: counts, then the first few with `file:line`. */
  summary(): string {
    const parts = ISSUE_KINDS.filter((k) => this.counts[k] > 0).map((k) => `${k} ${this.counts[k]}`);
    if (parts.length === 0) return 'no bad input';
    return [parts.join(', '), ...this.first.map((i) => `  ${i.file}:${i.line}: ${i.message}`)].join('\n');
  }
}

/**
 * Warnings on what was read, for a command's summary: a damaged gzip input accepted with acceptTruncated
 * (lib/logs/lines.ts), of which only the lines before the damage were used, and the lines skipped or kept out
 * of order, counted by kind.
 */
export function inputWarnings(issues: Pick<IssueLog, 'counts' | 'first'>): string[] {
  const out = issues.first.filter((i) => i.kind === 'truncated_gzip').map((i) => `${i.file} is a damaged gzip file: only its first ${i.line - 1} lines were used (${i.message})`);
  const more = issues.counts.truncated_gzip - out.length;
  if (more > 0) out.push(`${more}${out.length > 0 ? ' more' : ''} damaged gzip input(s): only the lines before the damage were used`);
  // every other kind of skipped or out-of-order line, counted, with the place of the first one
  const other = Object.entries(issues.counts).filter(([k, n]) => k !== 'truncated_gzip' && n > 0);
  if (other.length > 0) {
    const first = issues.first.find((i) => i.kind !== 'truncated_gzip');
    out.push(
      `input: ${other.map(([k, n]) => `${n} ${k.replace(/_/g, ' ')}`).join(', ')}${first ? ` (first: ${first.file}:${first.line}: ${first.message})` : ''}; \`deepsentry prepare\` lists them`,
    );
  }
  return out;
}
