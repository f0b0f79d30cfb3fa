/**
 * The prepared-data directory: what `deepsentry prepare` writes and the training stages read. Everything is
 * written as it streams (lines and sessions) except the small per-distinct-message tables, written at the end.
 *
 * ```
 * manifest.json     {format:"deepsentry-prepared", version:1, inputs, logFormat, sessionMode, windowSize,
 *                    config, stats, issues, files, lineRecord}
 * vocab.json        Vocabulary (see vocabulary.ts): ids <pad>=0 <eos>=1 <unk>=2, then by count
 * messages.ndjson   one distinct masked message per line, ascending id (ids start at 2; 0 = window padding,
 *                   1 = end-of-session event): {"id","text","tokens":[token strings],"ids":[token ids],
 *                   "count":lines,"truncated":bool}
 * lines.bin         one 24-byte little-endian record per parsed line, in input order (row r at byte 24r):
 *                   f64 timestamp ms (NaN: none) | u32 line number (1-based, in its input) | u32 message id |
 *                   u16 input index | i8 label (-1 none, 0 normal, 1 anomaly) | u8 number of sessions |
 *                   u32 first session id (0xFFFFFFFF: none)
 * sessions.ndjson   one closed session per line, in CLOSING order: {"id","key","rows":[row…],
 *                   "messages":[message id…],"firstTs","lastTs","end":"end|idle|evicted|window|full"}
 * ```
 */
import { createReadStream, createWriteStream, promises as fsp } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import type { Readable } from 'node:stream';
import { DeepSentryError } from '../errors';
import { resolveLogConfig, type LogConfig, type LogConfigOverrides } from './config';
import { IssueLog, type IssueKind, type LogIssue } from './issues';
import { LogProcessor, openLogInput, type InputOptions, type LogRecord, type ProcessStats } from './pipeline';
import type { ClosedSession, ResolvedSessionMode } from './sessions';
import { Vocabulary } from './vocabulary';
import { endStream, writeWithBackpressure } from '../streams';
import { createOutputDir } from '../outdir';

export const PREPARED_FORMAT = 'deepsentry-prepared';
export const PREPARED_VERSION = 1;
/** Bytes per lines.bin record. */
export const LINE_RECORD_BYTES = 24;
/** lines.bin: no session. */
export const NO_SESSION = 0xffffffff;

/**
 * The model directories the stage commands (lib/pipeline/stages.ts) write beside the prepared data: derived
 * from it, so stale once it is prepared again.
 */
export const STAGE_DIRS = { text: 'text-model', vectors: 'vectors', model: 'model' } as const;

export const PREPARED_FILES = { manifest: 'manifest.json', vocabulary: 'vocab.json', messages: 'messages.ndjson', lines: 'lines.bin', sessions: 'sessions.ndjson' } as const;

/** What a prepare run did; `deepsentry prepare --json` prints it. */
export interface PrepareSummary {
  /** Physical lines read (blank and bad ones included). */
  lines: number;
  /** Lines parsed (rows of lines.bin). */
  parsed: number;
  /** Non-blank lines not parsed: format mismatch, bad timestamp, bad bytes, too long, out of order (when skipped). */
  unparsed: number;
  blank: number;
  sessions: number;
  /** Sessions closed early because too many were open. */
  evictedSessions: number;
  /** Parsed lines in no session. */
  unsessioned: number;
  distinctMessages: number;
  vocabularySize: number;
  /** Distinct messages whose tokens were cut at maxTokens. */
  truncatedMessages: number;
  /** Format of each input (detected or given). */
  formats: string[];
  /** Where each input's timestamps came from when its format found them itself (LogFormat.timestampSource), else ''. */
  timestamps: string[];
  sessionMode: ResolvedSessionMode | null;
  issues: { counts: Record<IssueKind, number>; first: LogIssue[] };
  outDir: string;
  /** an earlier run's files that `force` removed from outDir */
  replaced: string[];
}

/** Options of prepareLogs apart from the log configuration. */
export interface PrepareOptions extends InputOptions {
  /** replace an earlier run's output in outDir (and the stage directories derived from it; lib/outdir.ts) */
  force?: boolean;
}

/** The manifest.json of a prepared directory. */
export interface PreparedManifest {
  format: typeof PREPARED_FORMAT;
  version: number;
  inputs: { name: string; format: string; gzip: boolean; lines: number; bytes: number; timestamps?: string }[];
  sessionMode: ResolvedSessionMode | null;
  windowSize: number;
  config: LogConfig;
  stats: ProcessStats;
  summary: PrepareSummary;
  files: typeof PREPARED_FILES;
  lineRecord: { bytes: number; layout: string };
}


/**
 * A prepared directory with no session would train nothing and score nothing: no parsed line is a DS_PARSE
 * error (set logs.format), parsed lines in no session a DS_CONFIG error naming the session mode and what to
 * change. Both name the inputs.
 */
function checkSessions(proc: LogProcessor, issues: IssueLog, names: string[], lines: number): void {
  const st = proc.stats;
  const what = names.join(', ');
  if (st.parsed === 0) {
    const first = issues.first[0];
    throw new DeepSentryError('DS_PARSE', `no line of ${what} could be parsed (${lines} lines${first ? `; first: ${first.file}:${first.line}: ${first.message}` : ''}); set logs.format`);
  }
  if (proc.sessions.stats.closed > 0) return;
  const c = proc.config.session;
  const mode = proc.sessionMode;
  const why =
    mode === 'key'
      ? `the session key pattern /${c.keyPattern}/ matches no message: set logs.session.keyPattern to a regex that matches one, or logs.session.mode "time" or "count"`
      : mode === 'field'
        ? `no line has the session field ${c.field !== '' ? JSON.stringify(c.field) : '(the format\'s own session key)'}: set logs.session.field to the field's name, or logs.session.mode "time" or "count"`
        : 'no line could be placed in a session';
  throw new DeepSentryError('DS_CONFIG', `no session in ${what}: ${st.parsed} lines parsed, ${st.unsessioned} in no session (session mode ${mode}): ${why}`);
}

/**
 * Reads, parses, masks, tokenises and sessionises `inputs` (paths or byte streams, in order: sessions span
 * inputs) and writes the prepared directory `outDir`. Memory: open sessions + distinct messages, not lines.
 */
export async function prepareLogs(inputs: (string | Readable)[], outDir: string, overrides: LogConfigOverrides = {}, o: PrepareOptions = {}): Promise<PrepareSummary> {
  if (inputs.length === 0) throw new DeepSentryError('DS_INVALID_ARGUMENT', 'Expected at least one log input for prepare but received none');
  if (inputs.length > 0xffff) throw new DeepSentryError('DS_INVALID_ARGUMENT', `Expected at most 65535 inputs but received ${inputs.length}`);
  const config = resolveLogConfig(overrides);
  const issues = new IssueLog(config.strict, config.reportFirst);
  const outState = await createOutputDir(outDir, {
    what: 'prepared-data directory',
    writes: Object.values(PREPARED_FILES),
    stale: Object.values(STAGE_DIRS).map((d) => `${d}/`),
    inputs: inputs.filter((i): i is string => typeof i === 'string'),
    ...(o.force ? { force: true } : {}),
  });
  const tmp = (f: string) => join(outDir, `${f}.tmp`);
  const openOut = (f: string) => {
    const ws = createWriteStream(tmp(f), { highWaterMark: 1 << 20 });
    ws.on('error', () => {}); // surfaced through writeWithBackpressure()/endStream()
    return ws;
  };
  const linesOut = openOut(PREPARED_FILES.lines);
  const sessionsOut = openOut(PREPARED_FILES.sessions);
  let sessionText: string[] = [];
  const onSession = (s: ClosedSession) => {
    sessionText.push(
      JSON.stringify({ id: s.id, key: s.key, rows: s.rows, messages: s.messageIds, firstTs: s.firstTs, lastTs: s.lastTs, end: s.reason }),
    );
  };
  const proc = new LogProcessor(config, { issues, onSession, keyPatternGiven: overrides.session?.keyPattern !== undefined });
  const inputInfo: PreparedManifest['inputs'] = [];
  let blank = 0;
  let physical = 0;
  try {
    for (let idx = 0; idx < inputs.length; idx++) {
      const input = await openLogInput(inputs[idx], config, issues, typeof inputs[idx] === 'string' ? undefined : `<stream ${idx}>`, o);
      let buf = Buffer.alloc(LINE_RECORD_BYTES * 4096);
      let n = 0;
      const onRecord = (r: LogRecord) => {
        if ((n + 1) * LINE_RECORD_BYTES > buf.length) {
          const nb = Buffer.alloc(buf.length * 2);
          buf.copy(nb, 0, 0, n * LINE_RECORD_BYTES);
          buf = nb;
        }
        const o = n * LINE_RECORD_BYTES;
        buf.writeDoubleLE(r.timestamp ?? NaN, o);
        buf.writeUInt32LE(r.line >>> 0, o + 8);
        buf.writeUInt32LE(r.messageId, o + 12);
        buf.writeUInt16LE(idx, o + 16);
        buf.writeInt8(r.anomaly === undefined ? -1 : r.anomaly ? 1 : 0, o + 18);
        buf.writeUInt8(Math.min(255, r.sessionKeys.length), o + 19);
        buf.writeUInt32LE(r.sessionIds.length > 0 ? r.sessionIds[0] : NO_SESSION, o + 20);
        n++;
      };
      for await (const batch of input.batches) {
        n = 0;
        proc.processBatch(batch, input.name, input.format, onRecord);
        const waits: (Promise<void> | null)[] = [];
        if (n > 0) waits.push(writeWithBackpressure(linesOut, Buffer.from(buf.subarray(0, n * LINE_RECORD_BYTES))));
        if (sessionText.length > 0) {
          waits.push(writeWithBackpressure(sessionsOut, sessionText.join('\n') + '\n'));
          sessionText = [];
        }
        for (const w of waits) if (w) await w;
      }
      inputInfo.push({
        name: input.name,
        format: input.detection?.name ?? input.format.name,
        gzip: input.stats.gzip,
        lines: input.stats.lines,
        bytes: input.stats.bytes,
        ...(input.format.timestampSource ? { timestamps: input.format.timestampSource } : {}),
      });
      blank += input.stats.blank;
      physical += input.stats.lines;
    }
    proc.finish();
    checkSessions(proc, issues, inputInfo.map((i) => i.name), physical);
    if (sessionText.length > 0) await writeWithBackpressure(sessionsOut, sessionText.join('\n') + '\n');
    await endStream(linesOut);
    await endStream(sessionsOut);

    const vocab = Vocabulary.build(proc.messages.tokenCounts(), config.vocabulary);
    const msgLines = proc.messages.entries.map((e) =>
      JSON.stringify({ id: e.id, text: e.text, tokens: e.tokens, ids: Array.from(vocab.encode(e.tokens)), count: e.count, truncated: e.truncated }),
    );
    await fsp.writeFile(tmp(PREPARED_FILES.messages), msgLines.length > 0 ? msgLines.join('\n') + '\n' : '');
    await vocab.save(join(outDir, PREPARED_FILES.vocabulary));
    const st = proc.stats;
    const summary: PrepareSummary = {
      lines: physical,
      parsed: st.parsed,
      unparsed: physical - blank - st.parsed,
      blank,
      sessions: proc.sessions.stats.closed,
      evictedSessions: proc.sessions.stats.evicted,
      unsessioned: st.unsessioned,
      distinctMessages: proc.messages.size,
      vocabularySize: vocab.size,
      truncatedMessages: proc.messages.tokenizer.truncatedCount,
      formats: inputInfo.map((i) => i.format),
      timestamps: inputInfo.map((i) => i.timestamps ?? ''),
      sessionMode: proc.sessionMode,
      issues: { counts: { ...issues.counts }, first: issues.first },
      outDir,
      replaced: outState.removed,
    };
    const manifest: PreparedManifest = {
      format: PREPARED_FORMAT,
      version: PREPARED_VERSION,
      inputs: inputInfo,
      sessionMode: proc.sessionMode,
      windowSize: config.window.size,
      config,
      stats: { ...st },
      summary,
      files: PREPARED_FILES,
      lineRecord: { bytes: LINE_RECORD_BYTES, layout: 'f64 timestamp | u32 line | u32 messageId | u16 input | i8 label | u8 sessions | u32 firstSession (LE)' },
    };
    for (const f of [PREPARED_FILES.lines, PREPARED_FILES.sessions, PREPARED_FILES.messages]) await fsp.rename(tmp(f), join(outDir, f));
    await fsp.writeFile(tmp(PREPARED_FILES.manifest), JSON.stringify(manifest, null, 1) + '\n');
    await fsp.rename(tmp(PREPARED_FILES.manifest), join(outDir, PREPARED_FILES.manifest));
    return summary;
  } catch (e) {
    linesOut.destroy();
    sessionsOut.destroy();
    for (const f of Object.values(PREPARED_FILES)) await fsp.rm(tmp(f), { force: true });
    if (e instanceof DeepSentryError) throw e;
    throw new DeepSentryError('DS_IO', `prepare failed writing ${outDir}: ${(e as Error).message}`, { cause: e });
  }
}

// ---- reading a prepared directory (the training stages' side) ----

/** One decoded lines.bin record. */
export interface PreparedLine {
  row: number;
  timestamp: number | null;
  line: number;
  messageId: number;
  input: number;
  /** -1 none, 0 normal, 1 anomaly. */
  label: number;
  sessions: number;
  /** First session id, or null. */
  session: number | null;
}

/** A closed session as stored in sessions.ndjson. */
export interface PreparedSession {
  id: number;
  key: string;
  rows: number[];
  messages: number[];
  firstTs: number | null;
  lastTs: number | null;
  end: string;
}

/** A distinct message as stored in messages.ndjson. */
export interface PreparedMessage {
  id: number;
  text: string;
  tokens: string[];
  ids: number[];
  count: number;
  truncated: boolean;
}

/** Reads and checks manifest.json. */
export async function readPreparedManifest(dir: string): Promise<PreparedManifest> {
  const p = join(dir, PREPARED_FILES.manifest);
  let m: PreparedManifest;
  try {
    m = JSON.parse(await fsp.readFile(p, 'utf8')) as PreparedManifest;
  } catch (e) {
    throw new DeepSentryError('DS_IO', `Cannot read prepared data ${p} (run deepsentry prepare first): ${(e as Error).message}`, { cause: e });
  }
  if (m.format !== PREPARED_FORMAT) throw new DeepSentryError('DS_MODEL', `${p} is not a deepsentry prepared-data manifest`);
  if (m.version !== PREPARED_VERSION) throw new DeepSentryError('DS_MODEL', `${p}: unsupported version ${m.version} (this library reads ${PREPARED_VERSION})`);
  return m;
}

async function* ndjson<T>(path: string): AsyncGenerator<T> {
  const rl = createInterface({ input: createReadStream(path), crlfDelay: Infinity });
  let n = 0;
  try {
    for await (const l of rl) {
      n++;
      if (l === '') continue;
      try {
        yield JSON.parse(l) as T;
      } catch (e) {
        throw new DeepSentryError('DS_PARSE', `${path}:${n}: invalid JSON: ${(e as Error).message}`);
      }
    }
  } catch (e) {
    if (e instanceof DeepSentryError) throw e;
    throw new DeepSentryError('DS_IO', `Cannot read ${path}: ${(e as Error).message}`, { cause: e });
  } finally {
    rl.close();
  }
}

/** Streams the sessions (closing order). */
export function readPreparedSessions(dir: string): AsyncGenerator<PreparedSession> {
  return ndjson<PreparedSession>(join(dir, PREPARED_FILES.sessions));
}

/** All distinct messages, indexed so that `messages[id - FIRST_MESSAGE_ID]` is message `id`. */
export async function readPreparedMessages(dir: string): Promise<PreparedMessage[]> {
  const out: PreparedMessage[] = [];
  for await (const m of ndjson<PreparedMessage>(join(dir, PREPARED_FILES.messages))) out.push(m);
  return out;
}

/** Decodes record `row` of a lines.bin buffer. */
export function decodeLineRecord(buf: Buffer, row: number, offset = 0): PreparedLine {
  const o = offset;
  const ts = buf.readDoubleLE(o);
  const s = buf.readUInt32LE(o + 20);
  return {
    row,
    timestamp: Number.isNaN(ts) ? null : ts,
    line: buf.readUInt32LE(o + 8),
    messageId: buf.readUInt32LE(o + 12),
    input: buf.readUInt16LE(o + 16),
    label: buf.readInt8(o + 18),
    sessions: buf.readUInt8(o + 19),
    session: s === NO_SESSION ? null : s,
  };
}

/** Streams lines.bin records in row order. */
export async function* readPreparedLines(dir: string): AsyncGenerator<PreparedLine> {
  const p = join(dir, PREPARED_FILES.lines);
  let row = 0;
  let carry = Buffer.alloc(0);
  try {
    for await (const chunk of createReadStream(p) as AsyncIterable<Buffer>) {
      const b = carry.length > 0 ? Buffer.concat([carry, chunk]) : chunk;
      const whole = Math.floor(b.length / LINE_RECORD_BYTES);
      for (let i = 0; i < whole; i++) yield decodeLineRecord(b, row++, i * LINE_RECORD_BYTES);
      carry = Buffer.from(b.subarray(whole * LINE_RECORD_BYTES));
    }
  } catch (e) {
    throw new DeepSentryError('DS_IO', `Cannot read ${p}: ${(e as Error).message}`, { cause: e });
  }
  if (carry.length > 0) throw new DeepSentryError('DS_MODEL', `${p}: size is not a multiple of ${LINE_RECORD_BYTES} bytes (truncated file)`);
}
