/**
 * The sessions a live scorer saw recently, kept for false-alarm feedback without the log (`POST /feedback`,
 * lib/pipeline/feedback.ts learnRecent).
 */
import { invalidParameterError } from '../errors';

/** One session in a RecentSessions buffer: its masked messages in order. */
export interface RecentSession {
  key: string;
  messages: string[];
  /** the session ended (its end was scored) */
  ended: boolean;
  /** longer than the buffer keeps per session: not learnt nor replayed */
  truncated: boolean;
  /** open before the monitor's restart: its first messages are not known, so it is not learnt nor replayed */
  partial: boolean;
}

/** Default bounds of RecentSessions (as many sessions as the replay of `deepsentry feedback` takes at most, lib/pipeline/feedback.ts FEEDBACK_DEFAULTS.replay). */
export const RECENT_DEFAULTS = { sessions: 20_000, messagesPerSession: 10_000, messages: 2_000_000 } as const;

/**
 * The sessions a live scorer saw recently, for feedback without the log: every open session and the last
 * `sessions` ended ones (fewer when they hold more than `messages` messages in all), each as its masked
 * messages (texts, not model ids: a swapped-in model numbers messages its own way). Messages are interned,
 * so a buffer of HDFS blocks costs a pointer per line.
 */
export class RecentSessions {
  private readonly open = new Map<string, RecentSession>();
  private ended: RecentSession[] = [];
  private head = 0;
  private endedMessages = 0;
  private intern = new Map<string, string>();

  constructor(private readonly bounds: { sessions: number; messagesPerSession: number; messages: number } = RECENT_DEFAULTS) {
    for (const [k, v] of Object.entries(bounds)) if (!(Number.isInteger(v) && v >= 1)) throw invalidParameterError(`recent sessions ${k}`, 'a positive integer', v);
  }

  /** A line of session `key` with masked message `masked`. */
  add(key: string, masked: string): void {
    let s = this.open.get(key);
    if (s === undefined) {
      s = { key, messages: [], ended: false, truncated: false, partial: false };
      this.open.set(key, s);
    }
    if (s.messages.length >= this.bounds.messagesPerSession) {
      s.truncated = true;
      return;
    }
    let m = this.intern.get(masked);
    if (m === undefined) {
      if (this.intern.size >= 100_000) this.intern = new Map(); // only sharing is lost: the strings stay where they are used
      this.intern.set(masked, masked);
      m = masked;
    }
    s.messages.push(m);
  }

  /** Session `key` ended. */
  end(key: string): void {
    const s = this.open.get(key);
    if (s === undefined) return;
    this.open.delete(key);
    s.ended = true;
    this.ended.push(s);
    this.endedMessages += s.messages.length;
    while (this.ended.length - this.head > this.bounds.sessions || (this.endedMessages > this.bounds.messages && this.ended.length - this.head > 1)) {
      this.endedMessages -= this.ended[this.head].messages.length;
      this.head++;
    }
    if (this.head > 1024 && this.head * 2 > this.ended.length) {
      this.ended = this.ended.slice(this.head);
      this.head = 0;
    }
  }

  /** After a restart: these sessions were open before it (their first messages are not known). */
  restored(keys: Iterable<string>): void {
    for (const key of keys) this.open.set(key, { key, messages: [], ended: false, truncated: false, partial: true });
  }

  /** Every session held, ended ones (oldest first) then open ones; messages copied (open ones still grow). */
  sessions(): RecentSession[] {
    const out: RecentSession[] = [];
    for (let i = this.head; i < this.ended.length; i++) out.push(this.ended[i]);
    for (const s of this.open.values()) out.push({ ...s, messages: s.messages.slice() });
    return out;
  }

  /** How many sessions (segments) are held. */
  get size(): number {
    return this.ended.length - this.head + this.open.size;
  }
}

