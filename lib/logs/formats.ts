/**
 * Log formats: a line → {timestamp, fields, message, sessionKey, label}. Built-ins (`hdfs`, the loghub
 * samples' formats, RFC 5424/3164 syslog, JSON lines), any loghub-style format string, and a regex with
 * named groups. Auto-detection tries the built-ins on the first lines.
 */
import { DeepSentryError } from '../errors';
import type { LogConfig } from './config';
import { compileTimestamp, type TimestampFormat, type TimestampParser } from './timestamp';

/** A parsed line. */
export interface ParsedLine {
  /** Epoch ms, or null when the format has no timestamp at all (never the wall clock). */
  timestamp: number | null;
  /** The free-text part that is masked and tokenised. */
  message: string;
  /** The other parsed fields by name (format-specific: `Level`, `Component`, `host`, …). */
  fields: Record<string, string>;
  /** The session key the format itself carries (JSON path, regex group `session`), if any. */
  sessionKey?: string;
  /** The per-line label the format carries (BGL's first column, a JSON path, regex group `label`), if any. */
  label?: string;
}

/** Why a line was not parsed. */
export class ParseFailure {
  constructor(
    readonly kind: 'unparsed' | 'bad_timestamp',
    readonly reason: string,
  ) {}
}

/** A compiled format. Stateful only where the format needs it (yearless syslog rollover). */
export interface LogFormat {
  /** Name for reports (`hdfs`, `loghub`, …). */
  readonly name: string;
  /** Every line carries a timestamp (a missing one is then an error, `bad_timestamp`). */
  readonly hasTimestamp: boolean;
  /** The format yields `sessionKey`. */
  readonly hasSessionKey: boolean;
  /**
   * Where the timestamp comes from, in words (`<Date> <Time> as YYYY-MM-DD HH:mm:ss,SSS`), when the format
   * found it out from the lines rather than being told (a loghub format string with time fields).
   */
  readonly timestampSource?: string;
  /** The format yields `label`, and which label values mean "normal" (others are anomalies). */
  readonly label?: { normal: readonly string[] };
  parse(line: string): ParsedLine | ParseFailure;
}

/** Timestamp of a loghub/regex format: which fields, joined by one space, in which format. */
export interface TimestampSpec {
  fields: string[];
  format: TimestampFormat;
}

/**
 * A format specification (what a config file or the CLI gives):
 * - `{type:'hdfs'}`: `YYMMDD HHMMSS pid level component: content` (fast dedicated parser).
 * - `{type:'loghub', format}`: a loghub `log_format` string. `<Name>` is a field (lazy `.*?`, or
 *   `fieldPatterns[Name]`), spaces match any run of whitespace, anything else is regex source as in loghub's
 *   own parsers (so `\[` is a literal bracket and `(\[<PID>\])?` an optional group). `<Content>` (or
 *   `message`) is the message. `timestamp` names the time fields and their format; without it the time is
 *   found from the field names (see LOGHUB_TIME_FIELDS) and the first line's values (see LOGHUB_TIME_LAYOUTS);
 *   `label` a label field and its normal values; `session` a session-key field.
 * - `{type:'json'}`: one JSON object per line; dotted paths for message, time, session key, label. Without
 *   `timestampFormat`, numbers are epoch ms (> 1e11) or seconds, strings ISO 8601.
 * - `{type:'rfc5424'}`, `{type:'rfc3164'}`: syslog (3164 with or without `<PRI>`; yearless timestamps).
 * - `{type:'regex', pattern}`: named groups; `message` (required), `timestamp`, `session`, `label`; every
 *   group is also a field.
 */
export type FormatSpec =
  | { type: 'hdfs' }
  | {
      type: 'loghub';
      format: string;
      name?: string;
      timestamp?: TimestampSpec;
      fieldPatterns?: Record<string, string>;
      label?: { field: string; normal: string[] };
      session?: { field: string };
    }
  | { type: 'json'; message?: string; time?: string; timestampFormat?: TimestampFormat; session?: string; label?: string; normal?: string[] }
  | { type: 'rfc5424' }
  | { type: 'rfc3164' }
  | { type: 'regex'; pattern: string; flags?: string; timestampFormat?: TimestampFormat; normal?: string[] };

/** Options every format gets from the config. */
export interface FormatOptions {
  /** Year for yearless timestamps. */
  year: number;
  utcOffsetMinutes: number;
}

/** The built-in formats by name; the loghub ones carry the loghub samples' format strings. */
export const BUILTIN_FORMATS: Record<string, FormatSpec> = {
  hdfs: { type: 'hdfs' },
  bgl: {
    type: 'loghub',
    name: 'bgl',
    format: '<Label> <Timestamp> <Date> <Node> <Time> <NodeRepeat> <Type> <Component> <Level> <Content>',
    fieldPatterns: { Label: '\\S+', Timestamp: '\\d+', Date: '\\d{4}\\.\\d{2}\\.\\d{2}', Time: '\\d{4}-\\d{2}-\\d{2}-\\d{2}\\.\\d{2}\\.\\d{2}\\.\\d+' },
    timestamp: { fields: ['Time'], format: 'YYYY-MM-DD-HH.mm.ss.SSS' },
    label: { field: 'Label', normal: ['-'] },
  },
  thunderbird: {
    type: 'loghub',
    name: 'thunderbird',
    format: '<Label> <Timestamp> <Date> <User> <Month> <Day> <Time> <Location> <Component>(\\[<PID>\\])?: <Content>',
    fieldPatterns: { Label: '\\S+', Timestamp: '\\d+', Date: '\\d{4}\\.\\d{2}\\.\\d{2}', Month: '[A-Z][a-z]{2}', Day: '\\d{1,2}', Time: '\\d{2}:\\d{2}:\\d{2}' },
    timestamp: { fields: ['Timestamp'], format: 'epoch-s' },
    label: { field: 'Label', normal: ['-'] },
  },
  zookeeper: {
    type: 'loghub',
    name: 'zookeeper',
    format: '<Date> <Time> - <Level>  \\[<Node>:<Component>@<Id>\\] - <Content>',
    fieldPatterns: { Date: '\\d{4}-\\d{2}-\\d{2}', Time: '\\d{2}:\\d{2}:\\d{2},\\d+', Level: '[A-Z]+' },
    timestamp: { fields: ['Date', 'Time'], format: 'YYYY-MM-DD HH:mm:ss,SSS' },
  },
  spark: {
    type: 'loghub',
    name: 'spark',
    format: '<Date> <Time> <Level> <Component>: <Content>',
    fieldPatterns: { Date: '\\d{2}/\\d{2}/\\d{2}', Time: '\\d{2}:\\d{2}:\\d{2}', Level: '[A-Z]+', Component: '\\S+' },
    timestamp: { fields: ['Date', 'Time'], format: 'YY/MM/DD HH:mm:ss' },
  },
  hpc: {
    type: 'loghub',
    name: 'hpc',
    format: '<LogId> <Node> <Component> <State> <Time> <Flag> <Content>',
    fieldPatterns: { LogId: '\\d+', Node: '\\S+', Component: '\\S+', State: '\\S+', Time: '\\d{9,11}', Flag: '-?\\d+' },
    timestamp: { fields: ['Time'], format: 'epoch-s' },
  },
  rfc5424: { type: 'rfc5424' },
  rfc3164: { type: 'rfc3164' },
  json: { type: 'json' },
};

/** Order in which auto-detection tries the built-ins (ties go to the earlier one). */
export const DETECTION_ORDER = ['hdfs', 'zookeeper', 'spark', 'bgl', 'thunderbird', 'hpc', 'rfc5424', 'rfc3164', 'json'];

const NOT_HDFS = new ParseFailure('unparsed', 'not an HDFS line (YYMMDD HHMMSS pid level component: content)');

function isDigits(s: string, from: number, to: number): boolean {
  if (to <= from) return false;
  for (let i = from; i < to; i++) {
    const c = s.charCodeAt(i);
    if (c < 48 || c > 57) return false;
  }
  return true;
}

/** HDFS: a hand-written parser (this is the hot path of the benchmark; indexOf beats a regex here). */
class HdfsFormat implements LogFormat {
  readonly name = 'hdfs';
  readonly hasTimestamp = true;
  readonly hasSessionKey = false;
  private lastDT = '';
  private lastT = NaN;
  /** the Date and Time fields of lastDT (shared by the lines of that second) */
  private lastDate = '';
  private lastTime = '';
  private readonly ts: TimestampParser;
  constructor(opts: FormatOptions) {
    this.ts = compileTimestamp('YYMMDD HHmmss', { utcOffsetMinutes: opts.utcOffsetMinutes });
  }
  parse(line: string): ParsedLine | ParseFailure {
    if (line.length < 17 || line.charCodeAt(6) !== 32 || line.charCodeAt(13) !== 32) return NOT_HDFS;
    const s3 = line.indexOf(' ', 14);
    if (s3 < 0 || !isDigits(line, 14, s3)) return NOT_HDFS;
    const s4 = line.indexOf(' ', s3 + 1);
    if (s4 <= s3 + 1) return NOT_HDFS;
    const colon = line.indexOf(': ', s4 + 1);
    let cEnd = colon;
    let msgStart = colon + 2;
    if (colon < 0) {
      // "component:" at the very end (empty content)
      if (line.charCodeAt(line.length - 1) !== 58) return NOT_HDFS;
      cEnd = line.length - 1;
      msgStart = line.length;
    }
    if (cEnd <= s4 + 1 || line.lastIndexOf(' ', cEnd - 1) > s4) return NOT_HDFS; // component: one word
    let t: number;
    // Most lines repeat the previous line's second: compared in place (lastDT is '' or 13 characters).
    if (this.lastDT !== '' && line.startsWith(this.lastDT)) t = this.lastT;
    else {
      const dt = line.slice(0, 13);
      if (!isDigits(line, 0, 6) || !isDigits(line, 7, 13)) return new ParseFailure('bad_timestamp', `bad HDFS timestamp ${JSON.stringify(dt)}`);
      t = this.ts(dt);
      if (Number.isNaN(t)) return new ParseFailure('bad_timestamp', `bad HDFS timestamp ${JSON.stringify(dt)}`);
      this.lastDT = dt;
      this.lastT = t;
      this.lastDate = line.slice(0, 6);
      this.lastTime = line.slice(7, 13);
    }
    return new HdfsLine(t, line.slice(msgStart), line, s3, s4, cEnd, this.lastDate, this.lastTime);
  }
}

/**
 * A parsed HDFS line whose fields are sliced out of the line when first read: sessions by key (HDFS's
 * default) never read them, and five strings and an object per line were a tenth of what parsing allocated.
 */
class HdfsLine implements ParsedLine {
  private f: Record<string, string> | null = null;
  constructor(
    readonly timestamp: number,
    readonly message: string,
    private readonly line: string,
    private readonly s3: number,
    private readonly s4: number,
    private readonly cEnd: number,
    private readonly date: string,
    private readonly time: string,
  ) {}
  get fields(): Record<string, string> {
    const l = this.line;
    return (this.f ??= { Date: this.date, Time: this.time, Pid: l.slice(14, this.s3), Level: l.slice(this.s3 + 1, this.s4), Component: l.slice(this.s4 + 1, this.cEnd) });
  }
}

/** Makes every plain `(` of a regex fragment non-capturing, so capture numbers are exactly the fields. */
function nonCapturing(fragment: string): string {
  let out = '';
  let inClass = false;
  for (let i = 0; i < fragment.length; i++) {
    const c = fragment[i];
    if (c === '\\') {
      out += c + (fragment[i + 1] ?? '');
      i++;
      continue;
    }
    if (inClass) {
      if (c === ']') inClass = false;
    } else if (c === '[') inClass = true;
    else if (c === '(' && fragment[i + 1] !== '?') {
      out += '(?:';
      continue;
    }
    out += c;
  }
  return out;
}

/** Compiles a loghub `log_format` string (loghub's generate_logformat_regex, in JS). */
export function compileLoghubFormat(format: string, fieldPatterns: Record<string, string> = {}): { regex: RegExp; fields: string[] } {
  if (typeof format !== 'string' || !/<\w+>/.test(format)) {
    throw new DeepSentryError('DS_CONFIG', `Expected a loghub format string with <Field> names (e.g. "<Date> <Time> <Level>: <Content>") but received ${JSON.stringify(format)}`);
  }
  const parts = format.split(/(<\w+>)/);
  const fields: string[] = [];
  let src = '^';
  for (let k = 0; k < parts.length; k++) {
    if (k % 2 === 0) src += nonCapturing(parts[k]).replace(/ +/g, '\\s+');
    else {
      const name = parts[k].slice(1, -1);
      if (fields.includes(name)) throw new DeepSentryError('DS_CONFIG', `Field <${name}> appears twice in format ${JSON.stringify(format)}`);
      fields.push(name);
      const p = fieldPatterns[name];
      src += `(${p !== undefined ? nonCapturing(p) : '.*?'})`;
    }
  }
  try {
    return { regex: new RegExp(src + '$'), fields };
  } catch (e) {
    throw new DeepSentryError('DS_CONFIG', `Format ${JSON.stringify(format)} is not a valid pattern: ${(e as Error).message}`);
  }
}

const MESSAGE_FIELDS = ['Content', 'content', 'message', 'Message', 'msg'];

/**
 * The field names loghub's format strings give the time, as groups joined by one space, most specific first:
 * Linux/Mac `<Month> <Date> <Time>`, OpenSSH `<Date> <Day> <Time>`, HDFS/Spark/Zookeeper/Hadoop/OpenStack
 * `<Date> <Time>`, HPC/Thunderbird `<Timestamp>` or `<Time>` alone (epoch seconds), Apache `<Time>`.
 */
export const LOGHUB_TIME_FIELDS: readonly (readonly string[])[] = [
  ['Month', 'Date', 'Time'],
  ['Month', 'Day', 'Time'],
  ['Date', 'Day', 'Time'],
  ['Date', 'Time'],
  ['Day', 'Time'],
  ['Datetime'],
  ['DateTime'],
  ['Timestamp'],
  ['Time'],
  ['Date'],
];

/**
 * The date layouts of the loghub logs, tried in order on the first line's time fields; the first that parses
 * is kept for every line. Epoch values must have the digits of a date after 2001 (9–10 for seconds, 12–13 for
 * milliseconds) so that a bare `203615` (HDFS's time of day) is not read as 1970.
 */
export const LOGHUB_TIME_LAYOUTS: readonly { format: TimestampFormat; test?: RegExp }[] = [
  { format: 'iso8601' }, // Zookeeper, Hadoop, OpenStack, Windows: 2015-07-29 17:41:44,747
  { format: 'YYMMDD HHmmss' }, // HDFS: 081109 203615
  { format: 'YY/MM/DD HH:mm:ss' }, // Spark: 17/06/09 20:10:40
  { format: 'YYYY-MM-DD-HH.mm.ss.SSS' }, // BGL: 2005-06-03-15.42.50.675872
  { format: 'YYYYMMDD-HH:mm:ss:SSS' }, // HealthApp: 20171223-22:15:29:606
  { format: 'YYYY/MM/DD HH:mm:ss' },
  { format: 'YYYY.MM.DD HH:mm:ss' },
  { format: 'DD/MMM/YYYY:HH:mm:ss' }, // web access logs
  { format: 'ddd MMM DD HH:mm:ss YYYY' }, // Apache: Sun Dec 04 04:47:44 2005
  { format: 'syslog' }, // Linux, Mac, OpenSSH: Jun 14 15:16:01 (year from logs.year or the file's)
  { format: 'epoch-s', test: /^\d{9,10}(?:\.\d+)?$/ }, // HPC, Thunderbird, BGL's Timestamp
  { format: 'epoch-ms', test: /^\d{12,13}$/ },
  { format: 'YYYY.MM.DD' }, // BGL's Date (day resolution: the last resort)
  { format: 'YYYY-MM-DD' },
];

/**
 * The time of a loghub format string that names no `timestamp`, found from its fields' values on one line:
 * the first group of LOGHUB_TIME_FIELDS whose fields are all in the format and whose joined values parse in
 * one of LOGHUB_TIME_LAYOUTS. null when no group parses.
 */
export function inferLoghubTimestamp(fields: Record<string, string>, opts: FormatOptions): TimestampSpec | null {
  for (const group of LOGHUB_TIME_FIELDS) {
    if (!group.every((f) => fields[f] !== undefined && fields[f] !== '')) continue;
    const value = group.map((f) => fields[f]).join(' ');
    for (const layout of LOGHUB_TIME_LAYOUTS) {
      if (layout.test && !layout.test.test(value)) continue;
      if (!Number.isNaN(compileTimestamp(layout.format, opts)(value))) return { fields: [...group], format: layout.format };
    }
  }
  return null;
}

class LoghubFormat implements LogFormat {
  readonly name: string;
  readonly hasSessionKey: boolean;
  readonly label?: { normal: readonly string[] };
  timestampSource?: string;
  private readonly regex: RegExp;
  private readonly fields: string[];
  private readonly msgIdx: number;
  private tsIdx: number[];
  private ts: TimestampParser | null;
  /** No `timestamp` in the spec: found on the first parsed line (inferLoghubTimestamp), then fixed. */
  private inferring: boolean;
  private readonly opts: FormatOptions;
  private readonly labelIdx: number;
  private readonly sessionIdx: number;
  constructor(spec: Extract<FormatSpec, { type: 'loghub' }>, opts: FormatOptions) {
    this.name = spec.name ?? 'loghub';
    const { regex, fields } = compileLoghubFormat(spec.format, spec.fieldPatterns);
    this.regex = regex;
    this.fields = fields;
    this.msgIdx = fields.findIndex((f) => MESSAGE_FIELDS.includes(f));
    if (this.msgIdx < 0) throw new DeepSentryError('DS_CONFIG', `Format ${JSON.stringify(spec.format)} has no <Content> field (the message)`);
    const idx = (f: string, what: string) => {
      const i = fields.indexOf(f);
      if (i < 0) throw new DeepSentryError('DS_CONFIG', `${what} field <${f}> is not in format ${JSON.stringify(spec.format)}`);
      return i;
    };
    this.tsIdx = spec.timestamp ? spec.timestamp.fields.map((f) => idx(f, 'Timestamp')) : [];
    this.ts = spec.timestamp ? compileTimestamp(spec.timestamp.format, opts) : null;
    this.opts = opts;
    this.inferring = spec.timestamp === undefined && LOGHUB_TIME_FIELDS.some((g) => g.some((f) => fields.includes(f)));
    this.labelIdx = spec.label ? idx(spec.label.field, 'Label') : -1;
    if (spec.label) this.label = { normal: spec.label.normal };
    this.sessionIdx = spec.session ? idx(spec.session.field, 'Session') : -1;
    this.hasSessionKey = this.sessionIdx >= 0;
  }
  get hasTimestamp(): boolean {
    return this.ts !== null;
  }
  parse(line: string): ParsedLine | ParseFailure {
    const m = this.regex.exec(line);
    if (m === null) return new ParseFailure('unparsed', `does not match the ${this.name} format`);
    const fields: Record<string, string> = {};
    for (let i = 0; i < this.fields.length; i++) if (i !== this.msgIdx) fields[this.fields[i]] = m[i + 1] ?? '';
    if (this.inferring) {
      this.inferring = false;
      const t = inferLoghubTimestamp(fields, this.opts);
      if (t !== null) {
        this.tsIdx = t.fields.map((f) => this.fields.indexOf(f));
        this.ts = compileTimestamp(t.format, this.opts);
        this.timestampSource = `${t.fields.map((f) => `<${f}>`).join(' ')} as ${t.format}`;
      }
    }
    let timestamp: number | null = null;
    if (this.ts !== null) {
      const s = this.tsIdx.length === 1 ? (m[this.tsIdx[0] + 1] ?? '') : this.tsIdx.map((i) => m[i + 1] ?? '').join(' ');
      timestamp = this.ts(s);
      if (Number.isNaN(timestamp)) return new ParseFailure('bad_timestamp', `unparseable timestamp ${JSON.stringify(s)}`);
    }
    const out: ParsedLine = { timestamp, message: m[this.msgIdx + 1] ?? '', fields };
    if (this.labelIdx >= 0) out.label = m[this.labelIdx + 1];
    if (this.sessionIdx >= 0 && m[this.sessionIdx + 1]) out.sessionKey = m[this.sessionIdx + 1];
    return out;
  }
}

function getPath(o: unknown, path: string[]): unknown {
  let v = o;
  for (const p of path) {
    if (v === null || typeof v !== 'object') return undefined;
    v = (v as Record<string, unknown>)[p];
  }
  return v;
}

const JSON_MESSAGE = ['message', 'msg', 'log', 'content'];
const JSON_TIME = ['@timestamp', 'timestamp', 'time', 'ts'];

class JsonFormat implements LogFormat {
  readonly name = 'json';
  readonly hasTimestamp: boolean;
  readonly hasSessionKey: boolean;
  readonly label?: { normal: readonly string[] };
  private readonly msg: string[] | null;
  private readonly time: string[] | null;
  private readonly session: string[] | null;
  private readonly labelPath: string[] | null;
  private readonly ts: TimestampParser | null;
  private readonly iso: TimestampParser;
  constructor(spec: Extract<FormatSpec, { type: 'json' }>, opts: FormatOptions) {
    const split = (p: string | undefined) => (p ? p.split('.') : null);
    this.msg = split(spec.message);
    this.time = split(spec.time);
    this.session = split(spec.session);
    this.labelPath = split(spec.label);
    // Without explicit paths the common names are tried per line (message required, time optional).
    this.hasTimestamp = this.time !== null;
    this.hasSessionKey = this.session !== null;
    if (this.labelPath) this.label = { normal: spec.normal ?? ['normal', 'Normal', '-', '0'] };
    this.ts = spec.timestampFormat ? compileTimestamp(spec.timestampFormat, opts) : null;
    this.iso = compileTimestamp('iso8601', opts);
  }
  private time1(v: unknown): number {
    if (this.ts !== null) return typeof v === 'string' || typeof v === 'number' ? this.ts(String(v)) : NaN;
    if (typeof v === 'number') return Number.isFinite(v) ? Math.round(Math.abs(v) > 1e11 ? v : v * 1000) : NaN;
    if (typeof v === 'string') return this.iso(v);
    return NaN;
  }
  parse(line: string): ParsedLine | ParseFailure {
    if (line.charCodeAt(0) !== 123 /* { */) return new ParseFailure('unparsed', 'not a JSON object');
    let o: unknown;
    try {
      o = JSON.parse(line);
    } catch (e) {
      return new ParseFailure('unparsed', `invalid JSON: ${(e as Error).message}`);
    }
    if (o === null || typeof o !== 'object' || Array.isArray(o)) return new ParseFailure('unparsed', 'not a JSON object');
    const rec = o as Record<string, unknown>;
    let msg: unknown;
    let msgKey = '';
    if (this.msg) msg = getPath(rec, this.msg);
    else for (const k of JSON_MESSAGE) if (typeof rec[k] === 'string') ((msg = rec[k]), (msgKey = k));
    if (typeof msg !== 'string') return new ParseFailure('unparsed', `no string message at ${this.msg ? this.msg.join('.') : JSON_MESSAGE.join('|')}`);
    let timestamp: number | null = null;
    let tv: unknown;
    let timeKey = '';
    if (this.time) {
      tv = getPath(rec, this.time);
      if (tv === undefined || tv === null) return new ParseFailure('bad_timestamp', `missing timestamp at ${this.time.join('.')}`);
    } else for (const k of JSON_TIME) if (rec[k] !== undefined && tv === undefined) ((tv = rec[k]), (timeKey = k));
    if (tv !== undefined) {
      timestamp = this.time1(tv);
      if (Number.isNaN(timestamp)) return new ParseFailure('bad_timestamp', `unparseable timestamp ${JSON.stringify(tv)}`);
    }
    const fields: Record<string, string> = {};
    for (const [k, v] of Object.entries(rec)) {
      if (k === msgKey || k === timeKey || (this.msg && this.msg.length === 1 && k === this.msg[0])) continue;
      if (typeof v === 'string') fields[k] = v;
      else if (typeof v === 'number' || typeof v === 'boolean') fields[k] = String(v);
    }
    const out: ParsedLine = { timestamp, message: msg, fields };
    if (this.session) {
      const s = getPath(rec, this.session);
      if (typeof s === 'string' || typeof s === 'number') out.sessionKey = String(s);
    }
    if (this.labelPath) {
      const l = getPath(rec, this.labelPath);
      if (l !== undefined && l !== null) out.label = String(l);
    }
    return out;
  }
}

const RFC5424 = /^<(\d{1,3})>(\d{1,2}) (\S+) (\S+) (\S+) (\S+) (\S+) (-|(?:\[(?:[^\]"\\]|\\.|"(?:[^"\\]|\\.)*")*\])+)(?: (.*))?$/;

class Rfc5424Format implements LogFormat {
  readonly name = 'rfc5424';
  readonly hasTimestamp = true;
  readonly hasSessionKey = false;
  private readonly iso: TimestampParser;
  constructor(opts: FormatOptions) {
    this.iso = compileTimestamp('iso8601', opts);
  }
  parse(line: string): ParsedLine | ParseFailure {
    const m = RFC5424.exec(line);
    if (m === null || +m[1] > 191) return new ParseFailure('unparsed', 'not an RFC 5424 syslog line');
    if (m[3] === '-') return new ParseFailure('bad_timestamp', 'RFC 5424 NILVALUE timestamp (-)');
    const t = this.iso(m[3]);
    if (Number.isNaN(t)) return new ParseFailure('bad_timestamp', `unparseable timestamp ${JSON.stringify(m[3])}`);
    const pri = +m[1];
    let msg = m[9] ?? '';
    if (msg.charCodeAt(0) === 0xfeff) msg = msg.slice(1);
    return {
      timestamp: t,
      message: msg,
      fields: { facility: String(pri >> 3), severity: String(pri & 7), host: m[4], app: m[5], procid: m[6], msgid: m[7], sd: m[8] },
    };
  }
}

const RFC3164 = /^(?:<(\d{1,3})>)?([A-Z][a-z]{2} [ \d]\d \d{2}:\d{2}:\d{2}) (\S+) (?:([^\s:[\]]+)(?:\[([^\]]*)\])?: )?(.*)$/;

class Rfc3164Format implements LogFormat {
  readonly name = 'rfc3164';
  readonly hasTimestamp = true;
  readonly hasSessionKey = false;
  private readonly ts: TimestampParser;
  constructor(opts: FormatOptions) {
    this.ts = compileTimestamp('syslog', opts);
  }
  parse(line: string): ParsedLine | ParseFailure {
    const m = RFC3164.exec(line);
    if (m === null) return new ParseFailure('unparsed', 'not an RFC 3164 syslog line (Mmm dd hh:mm:ss host tag: message)');
    const t = this.ts(m[2]);
    if (Number.isNaN(t)) return new ParseFailure('bad_timestamp', `unparseable timestamp ${JSON.stringify(m[2])}`);
    const fields: Record<string, string> = { host: m[3], tag: m[4] ?? '' };
    if (m[1] !== undefined) {
      fields.facility = String(+m[1] >> 3);
      fields.severity = String(+m[1] & 7);
    }
    if (m[5] !== undefined) fields.pid = m[5];
    return { timestamp: t, message: m[6], fields };
  }
}

class RegexFormat implements LogFormat {
  readonly name = 'regex';
  readonly hasTimestamp: boolean;
  readonly hasSessionKey: boolean;
  readonly label?: { normal: readonly string[] };
  private readonly re: RegExp;
  private readonly ts: TimestampParser | null;
  constructor(spec: Extract<FormatSpec, { type: 'regex' }>, opts: FormatOptions) {
    try {
      this.re = new RegExp(spec.pattern, (spec.flags ?? '').replace(/[gy]/g, ''));
    } catch (e) {
      throw new DeepSentryError('DS_CONFIG', `Invalid format regex ${JSON.stringify(spec.pattern)}: ${(e as Error).message}`);
    }
    const names = [...spec.pattern.matchAll(/\(\?<([A-Za-z_]\w*)>/g)].map((m) => m[1]);
    if (!names.includes('message')) throw new DeepSentryError('DS_CONFIG', `Format regex ${JSON.stringify(spec.pattern)} needs a named group (?<message>…)`);
    this.hasTimestamp = names.includes('timestamp');
    this.hasSessionKey = names.includes('session');
    if (names.includes('label')) this.label = { normal: spec.normal ?? ['normal', 'Normal', '-', '0'] };
    this.ts = this.hasTimestamp ? compileTimestamp(spec.timestampFormat ?? 'iso8601', opts) : null;
  }
  parse(line: string): ParsedLine | ParseFailure {
    const m = this.re.exec(line);
    if (m === null || m.groups === undefined) return new ParseFailure('unparsed', 'does not match the format regex');
    const g = m.groups;
    let timestamp: number | null = null;
    if (this.ts !== null) {
      const s = g.timestamp;
      timestamp = s === undefined ? NaN : this.ts(s);
      if (Number.isNaN(timestamp)) return new ParseFailure('bad_timestamp', s === undefined ? 'missing timestamp' : `unparseable timestamp ${JSON.stringify(s)}`);
    }
    const fields: Record<string, string> = {};
    for (const [k, v] of Object.entries(g)) if (k !== 'message' && v !== undefined) fields[k] = v;
    const out: ParsedLine = { timestamp, message: g.message ?? '', fields };
    if (g.session) out.sessionKey = g.session;
    if (g.label !== undefined) out.label = g.label;
    return out;
  }
}

/** Compiles a spec (or a built-in name) into a parser. */
export function createFormat(spec: FormatSpec | string, opts: FormatOptions): LogFormat {
  const s = typeof spec === 'string' ? parseFormatArg(spec) : spec;
  switch (s.type) {
    case 'hdfs':
      return new HdfsFormat(opts);
    case 'loghub':
      return new LoghubFormat(s, opts);
    case 'json':
      return new JsonFormat(s, opts);
    case 'rfc5424':
      return new Rfc5424Format(opts);
    case 'rfc3164':
      return new Rfc3164Format(opts);
    case 'regex':
      return new RegexFormat(s, opts);
    default:
      throw new DeepSentryError('DS_CONFIG', `Unknown format type ${JSON.stringify((s as { type?: unknown }).type)}`);
  }
}

/**
 * The CLI's `--format` value: a built-in name; `regex:<pattern>`; `json:message=a.b,time=ts,session=k,label=l,timeFormat=epoch-ms`;
 * or a loghub format string (anything containing `<Field>`). `auto` is handled by the caller.
 */
export function parseFormatArg(arg: string): FormatSpec {
  const lower = arg.toLowerCase();
  if (BUILTIN_FORMATS[lower]) return BUILTIN_FORMATS[lower];
  if (arg.startsWith('regex:')) return { type: 'regex', pattern: arg.slice(6) };
  if (lower.startsWith('json:')) {
    const spec: Extract<FormatSpec, { type: 'json' }> = { type: 'json' };
    for (const kv of arg.slice(5).split(',')) {
      const [k, v] = kv.split('=', 2);
      if (v === undefined || v === '') throw new DeepSentryError('DS_CONFIG', `Expected key=value in the format ${JSON.stringify(arg)} but received ${JSON.stringify(kv)}`);
      if (k === 'message' || k === 'time' || k === 'session' || k === 'label') spec[k] = v;
      else if (k === 'timeFormat') spec.timestampFormat = v;
      else throw new DeepSentryError('DS_CONFIG', `Unknown key ${JSON.stringify(k)} in the format ${JSON.stringify(arg)} (message, time, timeFormat, session, label)`);
    }
    return spec;
  }
  if (/<\w+>/.test(arg)) return { type: 'loghub', format: arg };
  throw new DeepSentryError(
    'DS_CONFIG',
    `Unknown format ${JSON.stringify(arg)}: expected auto, ${Object.keys(BUILTIN_FORMATS).join(', ')}, a loghub format string like "<Date> <Time> <Level>: <Content>", regex:<pattern> or json:message=…,time=…`,
  );
}

/** Result of auto-detection. */
export interface Detection {
  /** The chosen built-in name. */
  name: string;
  spec: FormatSpec;
  /** Lines of the sample each candidate parsed fully (timestamp included). */
  scores: Record<string, number>;
  sampleSize: number;
}

/**
 * Picks the built-in format that parses most of `sample` (ties: DETECTION_ORDER). None parsing any line is a
 * DS_PARSE error that says to pass a format.
 */
export function detectFormat(sample: string[], opts: FormatOptions, input = 'input'): Detection {
  const scores: Record<string, number> = {};
  let best = '';
  for (const name of DETECTION_ORDER) {
    const f = createFormat(BUILTIN_FORMATS[name], opts);
    let n = 0;
    for (const l of sample) if (!(f.parse(l) instanceof ParseFailure)) n++;
    scores[name] = n;
    if (n > (scores[best] ?? 0)) best = name;
  }
  if (best === '') {
    const first = sample[0] === undefined ? '(no non-blank line)' : JSON.stringify(sample[0].slice(0, 120));
    throw new DeepSentryError(
      'DS_PARSE',
      `Cannot detect the log format of ${input} from its first ${sample.length} lines (first: ${first}); set logs.format (a built-in name, a loghub format string, regex:… or json:…)`,
    );
  }
  return { name: best, spec: BUILTIN_FORMATS[best], scores, sampleSize: sample.length };
}

/**
 * The parser of a log configuration whose format is fixed (a model's: modelLogConfig in lib/pipeline/train.ts).
 * Yearless timestamps take `year`, else 1970 (a model has no file mtime to take it from).
 */
export function configuredFormat(c: Pick<LogConfig, 'format' | 'year' | 'utcOffsetMinutes'>): LogFormat {
  return createFormat(c.format, { year: c.year ?? 1970, utcOffsetMinutes: c.utcOffsetMinutes });
}
