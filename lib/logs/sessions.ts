/**
 * Sessions: which lines belong together. A SessionKeyer says which session(s) a line belongs to (a key regex,
 * a parsed field, a time window or a count window); a Sessionizer holds the open sessions and closes them —
 * at the end of input, after an idle timeout on a clock the caller advances explicitly (event time in batch,
 * wall time in the live monitor), when a time window ends or a count window is full, or when too many are open
 * (the least recently active is evicted, and counted). Memory is bounded by `maxOpen` open sessions.
 */
import { DeepSentryError } from '../errors';
import type { SessionConfig } from './config';
import type { ParsedLine } from './formats';

/** Why a session was closed. */
export type CloseReason = 'end' | 'idle' | 'evicted' | 'window' | 'full';

/** A closed session, handed to the Sessionizer's `onClose`. */
export interface ClosedSession {
  /** Sequential id in order of opening (0, 1, …); a key seen again after its session closed gets a new id. */
  id: number;
  key: string;
  /** The caller's reference of each line (e.g. its row in lines.bin), in arrival order. */
  rows: number[];
  /** Message id of each line. */
  messageIds: number[];
  /** Earliest and latest timestamp of its lines (null when the lines have none). */
  firstTs: number | null;
  lastTs: number | null;
  reason: CloseReason;
}

interface OpenSession {
  id: number;
  key: string;
  rows: number[];
  messageIds: number[];
  firstTs: number | null;
  lastTs: number | null;
  /** Clock value at which it closes if nothing else arrives (Infinity: never by time). */
  deadline: number;
  /** The deadline is a time window's end (not an idle timeout). */
  window: boolean;
  /** the open sessions in least-recently-active-first order, as a doubly linked list (see Sessionizer) */
  prev: OpenSession | null;
  next: OpenSession | null;
}

/** Counters of a Sessionizer. */
export interface SessionStats {
  opened: number;
  closed: number;
  /** Closed early because more than maxOpen were open. */
  evicted: number;
  /** Closed by the idle timeout. */
  idle: number;
}

/** A Sessionizer's state as JSON (see Sessionizer.snapshot). */
export interface SessionizerState {
  version: 1;
  clock: number | null;
  nextId: number;
  stats: SessionStats;
  open: { id: number; key: string; rows: number[]; messageIds: number[]; firstTs: number | null; lastTs: number | null; deadline: number | null; window: boolean }[];
}

export interface SessionizerOptions {
  /** Close a session this long after its last line (clock units = ms); null = never by idleness. */
  idleTimeoutMs: number | null;
  /** Open sessions at most; the least recently active is evicted beyond it. */
  maxOpen: number;
  /** A session with this many lines closes (count windows); null = unlimited. */
  maxLines?: number | null;
}

/**
 * Streaming session table. Not tied to files: `add` lines, `advance(now)` the clock, `flush()` at the end.
 * Closed sessions go to `onClose` synchronously, in closing order.
 */
export class Sessionizer {
  readonly stats: SessionStats = { opened: 0, closed: 0, evicted: 0, idle: 0 };
  /** Open sessions by key. */
  private readonly open = new Map<string, OpenSession>();
  /**
   * The open sessions in least-recently-active-first order: a list through their prev/next, from `oldest` to
   * `newest`. A line of another session than the last moves that session to the end by relinking it (a Map
   * re-insertion, delete and set, at every such line left the Map's table to be rebuilt again and again).
   */
  private oldest: OpenSession | null = null;
  private newest: OpenSession | null = null;
  private nextId = 0;
  private now = -Infinity;
  private readonly idle: number | null;
  private readonly maxOpen: number;
  /** Lines after which a session closes (count windows); null = unlimited. */
  maxLines: number | null;

  constructor(
    opts: SessionizerOptions,
    private readonly onClose: (s: ClosedSession) => void,
  ) {
    if (opts.idleTimeoutMs !== null && !(opts.idleTimeoutMs > 0)) throw new DeepSentryError('DS_INVALID_ARGUMENT', `Expected a positive number or null for idleTimeoutMs but received ${opts.idleTimeoutMs}`);
    if (!Number.isInteger(opts.maxOpen) || opts.maxOpen < 1) throw new DeepSentryError('DS_INVALID_ARGUMENT', `Expected a positive integer for maxOpen but received ${opts.maxOpen}`);
    this.idle = opts.idleTimeoutMs;
    this.maxOpen = opts.maxOpen;
    this.maxLines = opts.maxLines ?? null;
  }

  /** Number of open sessions. */
  get openCount(): number {
    return this.open.size;
  }

  /** The clock as last advanced. */
  get clock(): number {
    return this.now;
  }

  /**
   * Adds one line to the session `key`, opening it if needed. `deadline` overrides the idle deadline (time
   * windows close at their end). `timestamp` only feeds first/last times; the clock moves only by `advance`.
   * Returns the session's id.
   */
  add(key: string, row: number, messageId: number, timestamp: number | null, deadline?: number): number {
    // Consecutive lines of one session are the common case (two thirds of HDFS lines): the most recently
    // active session is already at the back, so it needs no lookup and no move.
    let s = this.newest !== null && this.newest.key === key ? this.newest : this.open.get(key);
    if (s === undefined) {
      s = { id: this.nextId++, key, rows: [], messageIds: [], firstTs: null, lastTs: null, deadline: Infinity, window: false, prev: null, next: null };
      this.stats.opened++;
      this.open.set(key, s);
      this.append(s);
      if (this.open.size > this.maxOpen) this.close(this.oldest as OpenSession, 'evicted');
    } else if (s !== this.newest) {
      // Move to the back: most recently active.
      this.unlink(s);
      this.append(s);
    }
    s.rows.push(row);
    s.messageIds.push(messageId);
    if (timestamp !== null) {
      if (s.firstTs === null || timestamp < s.firstTs) s.firstTs = timestamp;
      if (s.lastTs === null || timestamp > s.lastTs) s.lastTs = timestamp;
    }
    if (deadline !== undefined) {
      s.deadline = deadline;
      s.window = true;
    } else if (this.idle !== null && Number.isFinite(this.now)) s.deadline = this.now + this.idle;
    if (this.maxLines !== null && s.rows.length >= this.maxLines) this.close(s, 'full');
    return s.id;
  }

  /** Puts `s` (not in the list) at its end, as the most recently active. */
  private append(s: OpenSession): void {
    s.prev = this.newest;
    s.next = null;
    if (this.newest !== null) this.newest.next = s;
    else this.oldest = s;
    this.newest = s;
  }

  /** Takes `s` out of the list. */
  private unlink(s: OpenSession): void {
    if (s.prev !== null) s.prev.next = s.next;
    else this.oldest = s.next;
    if (s.next !== null) s.next.prev = s.prev;
    else this.newest = s.prev;
    s.prev = s.next = null;
  }

  /** The keys of the open sessions, least recently active first. */
  *openKeys(): Generator<string> {
    for (let s = this.oldest; s !== null; s = s.next) yield s.key;
  }

  /**
   * Moves the clock to `now` (never backwards: an earlier value is ignored) and closes every session whose
   * deadline has passed. Sessions are checked least-recently-active first and the scan stops at the first one
   * whose deadline is still ahead, so the cost is proportional to what closes.
   */
  advance(now: number): void {
    if (!(now > this.now)) return;
    const first = !Number.isFinite(this.now);
    this.now = now;
    // Sessions opened before the clock was first set get their idle deadline now.
    if (first && this.idle !== null) for (let s = this.oldest; s !== null; s = s.next) if (!s.window) s.deadline = now + this.idle;
    for (let s = this.oldest; s !== null && !(s.deadline > now); s = this.oldest) this.close(s, s.window ? 'window' : 'idle');
  }

  /**
   * The whole state as plain JSON (open sessions in activity order, clock, next id, counters), so a live
   * monitor can checkpoint it and `restore` after a restart without splitting the open sessions.
   */
  snapshot(): SessionizerState {
    return {
      version: 1,
      clock: Number.isFinite(this.now) ? this.now : null,
      nextId: this.nextId,
      stats: { ...this.stats },
      open: [...this.openKeys()].map((k) => {
        const s = this.open.get(k) as OpenSession;
        return { id: s.id, key: s.key, rows: [...s.rows], messageIds: [...s.messageIds], firstTs: s.firstTs, lastTs: s.lastTs, deadline: Number.isFinite(s.deadline) ? s.deadline : null, window: s.window };
      }),
    };
  }

  /** Replaces the state by a snapshot (from `snapshot()`); a malformed one is a DS_INVALID_ARGUMENT error. */
  restore(state: SessionizerState): void {
    if (state === null || typeof state !== 'object' || state.version !== 1 || !Array.isArray(state.open) || !Number.isInteger(state.nextId)) {
      throw new DeepSentryError('DS_INVALID_ARGUMENT', 'Expected a Sessionizer snapshot (version 1) for restore');
    }
    this.open.clear();
    this.oldest = this.newest = null;
    for (const s of state.open) {
      if (typeof s.key !== 'string' || !Array.isArray(s.rows) || !Array.isArray(s.messageIds) || s.rows.length !== s.messageIds.length) {
        throw new DeepSentryError('DS_INVALID_ARGUMENT', `Sessionizer snapshot: malformed open session ${JSON.stringify(s.key)}`);
      }
      const o: OpenSession = { id: s.id, key: s.key, rows: [...s.rows], messageIds: [...s.messageIds], firstTs: s.firstTs, lastTs: s.lastTs, deadline: s.deadline ?? Infinity, window: s.window, prev: null, next: null };
      const had = this.open.get(s.key);
      this.open.set(s.key, o);
      if (had === undefined) this.append(o);
      else {
        // a key given twice: the later state in the earlier one's place
        o.prev = had.prev;
        o.next = had.next;
        if (had.prev !== null) had.prev.next = o;
        else this.oldest = o;
        if (had.next !== null) had.next.prev = o;
        else this.newest = o;
      }
    }
    this.now = state.clock ?? -Infinity;
    this.nextId = state.nextId;
    Object.assign(this.stats, state.stats);
  }

  /** Closes every open session (reason `end`), oldest activity first. */
  flush(): void {
    for (let s = this.oldest; s !== null; s = this.oldest) this.close(s, 'end');
  }

  private close(s: OpenSession, reason: CloseReason): void {
    this.open.delete(s.key);
    this.unlink(s);
    this.stats.closed++;
    if (reason === 'evicted') this.stats.evicted++;
    if (reason === 'idle') this.stats.idle++;
    this.onClose({ id: s.id, key: s.key, rows: s.rows, messageIds: s.messageIds, firstTs: s.firstTs, lastTs: s.lastTs, reason });
  }
}

/** The session mode after `auto` is resolved. */
export type ResolvedSessionMode = 'key' | 'field' | 'time' | 'count';

/**
 * Resolves `auto` (see SessionConfig.mode): `key` for hdfs or an explicitly given key pattern, `field` when
 * the format yields a session key, `time` when it has timestamps, else `count`.
 */
export function resolveSessionMode(cfg: SessionConfig, format: { name: string; hasTimestamp: boolean; hasSessionKey: boolean }, keyPatternGiven: boolean): ResolvedSessionMode {
  if (cfg.mode !== 'auto') return cfg.mode;
  if (keyPatternGiven || format.name === 'hdfs') return 'key';
  if (format.hasSessionKey || cfg.field !== '') return 'field';
  return format.hasTimestamp ? 'time' : 'count';
}

const NO_KEYS: readonly string[] = [];

/**
 * Which session(s) a line belongs to. `keys` returns the keys (possibly none: the line then belongs to no
 * session and is counted as unsessioned); for `time` mode also the window's end, the session's deadline.
 */
export class SessionKeyer {
  private readonly re: RegExp | null;
  private count = 0;
  /** End of the time window of the last `keys` call (mode `time`). */
  windowEnd = Infinity;

  constructor(
    readonly mode: ResolvedSessionMode,
    private readonly cfg: SessionConfig,
  ) {
    this.re = mode === 'key' ? new RegExp(cfg.keyPattern, 'g') : null;
  }

  /**
   * Keys of one parsed line: its raw (unmasked) `message`, and its `fields` or `sessionKey` from the parser
   * (`fields` is read only in `field` mode: a parser may slice them out only when read). Lines with no
   * timestamp in `time` mode have no session.
   */
  keys(p: Pick<ParsedLine, 'message' | 'fields' | 'sessionKey'>, timestamp: number | null): readonly string[] {
    switch (this.mode) {
      case 'key': {
        const message = p.message;
        const re = this.re as RegExp;
        re.lastIndex = 0;
        const m1 = re.exec(message);
        if (m1 === null) return NO_KEYS;
        if (m1[0] === '') throw new DeepSentryError('DS_CONFIG', `Session key pattern ${JSON.stringify(this.cfg.keyPattern)} matches the empty string`);
        const k1 = m1[0];
        if (this.cfg.multiKey === 'first') return [k1];
        let out: string[] | null = null;
        let m: RegExpExecArray | null;
        while ((m = re.exec(message)) !== null) {
          if (m[0] === '') {
            re.lastIndex++;
            continue;
          }
          if (m[0] === k1 || (out !== null && out.includes(m[0]))) continue;
          (out ??= [k1]).push(m[0]);
        }
        return out ?? [k1];
      }
      case 'field': {
        const k = this.cfg.field !== '' ? p.fields[this.cfg.field] : p.sessionKey;
        return k === undefined || k === '' ? NO_KEYS : [k];
      }
      case 'time': {
        if (timestamp === null) return NO_KEYS;
        const w = this.cfg.windowMs;
        const start = Math.floor(timestamp / w) * w;
        this.windowEnd = start + w;
        return ['time:' + new Date(start).toISOString()];
      }
      case 'count':
        return ['count:' + Math.floor(this.count++ / this.cfg.windowLines)];
    }
  }
}

/**
 * Whether a session's end is an event the detector scores. A session (segment) closed by the idle timeout or
 * its time window really ended: the log went on without it. One cut short by the bound on open sessions
 * (`evicted`) did not. One still open when the input stopped (`end`) is censored when sessions have an idle
 * timeout (the log did not continue a whole timeout after its last line, so nobody knows whether it was over):
 * no end event, as the live monitor would not have emitted one yet. Without an idle timeout (or without
 * timestamps, where no clock runs) the end of the input is the only end a session has, so it counts.
 *
 * Why the idle timeout matters on HDFS (measured on hdfs-dev, README "Accuracy"): a block is written, then
 * deleted minutes to hours later; with one session per block the training half rarely sees "written, never
 * deleted" (the log ends long after), while a third of the scored half ends that way, and that end scored as
 * an anomaly. Split at quiet gaps ≥ the timeout, "write phase → end" is the commonest segment in training, and
 * "allocated, receiving → end" (a fifth of the anomalies) stays rare.
 */
export function sessionEnded(reason: string, idleTimeoutMs: number | null = null, lastTs: number | null = null): boolean {
  if (reason === 'evicted') return false;
  if (reason === 'end') return idleTimeoutMs === null || lastTs === null;
  return true;
}
