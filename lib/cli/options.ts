/**
 * Options shared by every command, and helpers to compose per-stage options (nx style: withXOptions).
 */
import type { Argv } from 'yargs';
import type { SessionConfig } from '../logs/config';

export interface GlobalOptions {
  config?: string;
  backend: 'auto' | 'native' | 'cuda' | 'cpu';
  threads?: number;
  precision: 'fp32' | 'bf16';
  seed: number;
  json: boolean;
  quiet?: boolean;
  verbose?: boolean;
}

export function withGlobalOptions<T>(y: Argv<T>) {
  return y
    .option('config', { type: 'string', describe: 'YAML or JSON configuration file (flags override it)', global: true })
    .option('backend', {
      choices: ['auto', 'native', 'cuda', 'cpu'] as const,
      default: 'auto' as const,
      describe: 'compute backend: auto picks cuda, else native CPU kernels, else pure TypeScript',
      global: true,
    })
    .option('threads', { type: 'number', describe: 'kernel threads (default: DEEPSENTRY_THREADS or all cores)', global: true })
    .option('precision', {
      choices: ['fp32', 'bf16'] as const,
      default: 'fp32' as const,
      describe: 'matrix products: fp32, or bf16 operands with fp32 accumulation on the native CPU kernels (AVX512-BF16 where the CPU has it) and the CUDA LSTM kernels; within 1e-2 of fp32; training with it is mixed precision',
      global: true,
    })
    .option('seed', { type: 'number', default: 42, describe: 'random seed: same seed, same model', global: true })
    .option('json', { type: 'boolean', default: false, describe: 'machine-readable JSON output', global: true })
    .option('quiet', { alias: 'q', type: 'boolean', describe: 'only errors', global: true })
    .option('verbose', { alias: 'v', type: 'boolean', describe: 'more detail', global: true })
    .check((argv) => {
      if (argv.quiet && argv.verbose) throw new Error('--quiet and --verbose cannot be used together');
      const t = argv.threads as number | undefined;
      if (t !== undefined && (!Number.isInteger(t) || t < 1 || t > 256)) {
        throw new Error(`Expected an integer 1..256 for --threads but received ${String(t)}`);
      }
      return true;
    });
}

/** `--force` of every command that writes: replace an earlier run's output (the policy: lib/outdir.ts). */
export interface ForceOption {
  force?: boolean;
}

export function withForceOption<T>(y: Argv<T>) {
  return y.option('force', { type: 'boolean', describe: "replace an earlier run's output there (only DeepSentry's own files; anything else is never replaced)" });
}

/** `--accept-truncated` of every command that reads logs: a damaged gzip log is otherwise an error. */
export interface AcceptTruncatedOption {
  acceptTruncated?: boolean;
}

export function withAcceptTruncatedOption<T>(y: Argv<T>) {
  return y.option('accept-truncated', { type: 'boolean', describe: 'a truncated or corrupt gzip log: use the lines before the damage (with a warning) instead of failing' });
}

/** `--set-aside-new` (score, run): scoreLog's setAsideNew. */
export interface SetAsideNewOption {
  setAsideNew?: boolean;
}

export function withSetAsideNewOption<T>(y: Argv<T>) {
  return y.option('set-aside-new', {
    type: 'boolean',
    default: true,
    describe: 'messages the model never saw that 5 % of the sessions or more hold (a change of the log, not anomalies): score the log again with their lines left out of their sessions, unscored (a file, not stdin); --no-set-aside-new scores them as any line',
  });
}

/** The `coerce` of a positional that takes `-` for stdin: yargs hands a lone `-` to it as '' (or true). */
export const stdinMarker = (v: unknown): unknown => (v === '' || v === true ? '-' : v);

/** --format's help, one text for every command that reads logs. */
export const FORMAT_DESCRIPTION =
  'log format: auto (default: detected from the first lines), hdfs, bgl, spark, zookeeper, hpc, thunderbird, rfc5424, rfc3164, json, a loghub format string "<Date> <Time> <Level> <Component>: <Content>" (time fields <Date> <Time> / <Timestamp> are recognised), regex:<named groups>, json:message=…,time=…,session=…';

/** The session flags (withSessionOptions), parsed. */
export interface SessionFlags {
  sessionMode?: SessionConfig['mode'];
  sessionKey?: string;
  sessionField?: string;
  /** ms */
  sessionWindow?: number;
  sessionLines?: number;
  /** ms; null: sessions end only with the input */
  idleTimeout?: number | null;
}

/** The `logs.session` keys the session flags set (only the flags that were passed). */
export function sessionOverrides(f: SessionFlags): Partial<SessionConfig> {
  const o: Partial<SessionConfig> = {};
  if (f.sessionMode !== undefined) o.mode = f.sessionMode;
  if (f.sessionKey !== undefined) o.keyPattern = f.sessionKey;
  if (f.sessionField !== undefined) o.field = f.sessionField;
  if (f.sessionWindow !== undefined) o.windowMs = f.sessionWindow;
  if (f.sessionLines !== undefined) o.windowLines = f.sessionLines;
  if (f.idleTimeout !== undefined) o.idleTimeoutMs = f.idleTimeout;
  return o;
}

const DURATION_UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/**
 * A duration flag in milliseconds: a number is milliseconds (as the configuration's `…Ms` keys), or a number
 * with a unit `ms`, `s`, `m`, `h`, `d` (`90s`, `5m`); `none` (when allowed) is null. Anything else, or a
 * value that is not a positive whole number of milliseconds, is a usage error naming the flag.
 */
export function parseDuration(flag: string, v: unknown, allowNone = false): number | null {
  const s = String(v).trim();
  if (allowNone && s === 'none') return null;
  const m = /^(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?$/.exec(s);
  const ms = m ? Number(m[1]) * DURATION_UNITS[m[2] ?? 'ms'] : NaN;
  if (!Number.isInteger(ms) || ms < 1) {
    throw new Error(`Expected a duration like 500ms, 30s, 5m or 1h (a bare number is milliseconds)${allowNone ? ' or none' : ''} for --${flag} but received ${JSON.stringify(s)}`);
  }
  return ms;
}

/**
 * How lines are cut into sessions, on every command that cuts them (train, run, score, live, prepare). Each
 * flag overrides one `logs.session` key of --config (`deepsentry config --defaults` prints them all).
 */
export function withSessionOptions<T>(y: Argv<T>) {
  return y
    .option('session-mode', {
      choices: ['auto', 'key', 'field', 'time', 'count'] as const,
      describe: 'how lines form sessions: key (a regex in the message, --session-key), field (a parsed field, --session-field), time (windows of --session-window), count (--session-lines lines); auto: key for HDFS, field when the format has a session key, time when lines have timestamps, else count',
    })
    .option('session-key', { type: 'string', describe: 'regex of the session key in the message (HDFS: blk_-?\\d+)' })
    .option('session-field', { type: 'string', describe: 'parsed field holding the session key (mode field), e.g. a loghub <Field> name or a JSON key' })
    .option('session-window', { type: 'string', describe: 'length of a time window (mode time), e.g. 60s, 5m (default 60s)', coerce: (v: unknown) => parseDuration('session-window', v) })
    .option('session-lines', { type: 'number', describe: 'lines per window (mode count; default 100)' })
    .option('idle-timeout', {
      type: 'string',
      describe: 'a session with no line for this long ends, e.g. 30s, 5m, or none (train/run/score default 5m)',
      coerce: (v: unknown) => parseDuration('idle-timeout', v, true),
    })
    .group(['session-mode', 'session-key', 'session-field', 'session-window', 'session-lines', 'idle-timeout'], 'Sessions (override logs.session of --config):')
    .check((argv) => {
      const k = argv['session-key'] as string | undefined;
      if (k !== undefined) {
        try {
          new RegExp(k);
        } catch (e) {
          throw new Error(`Expected a regular expression for --session-key but received ${JSON.stringify(k)}: ${(e as Error).message}`);
        }
      }
      const n = argv['session-lines'] as number | undefined;
      if (n !== undefined && (!Number.isInteger(n) || n < 1)) throw new Error(`Expected a positive integer for --session-lines but received ${String(n)}`);
      return true;
    });
}
