/**
 * Where alerts go: human-readable lines (stdout), an NDJSON file, and a webhook.
 *
 * The file sink appends with synchronous writes, batch by batch: when `write` returns the alerts are in the
 * kernel, so a SIGKILL right after cannot lose them (a checkpoint written later relies on that).
 *
 * The webhook sink POSTs alerts as JSON to a URL from a bounded in-memory queue: up to `concurrency` requests
 * at once, each carrying one alert (a JSON object) or, with `batchSize` > 1, up to that many (a JSON array).
 * Each alert is in at most one request at a time: a request that timed out is aborted (its connection
 * closed) before its alerts are sent again, after an exponential backoff with jitter (network errors, 5xx,
 * 408 and 429; a Retry-After is honoured up to the backoff's cap). A full queue drops its OLDEST alert (the
 * newest say most about now) and counts it. `close()` aborts what is in flight at once, so a shutdown takes
 * no longer than the drain it allowed; what was not delivered stays in `pending()` (a checkpoint keeps it).
 * Delivery is at least once: every alert carries a stable `id`, and an alert whose request was answered after
 * our timeout, or a crash between a 2xx and its journal entry, makes it be sent again with that id, so
 * receivers drop duplicates by id. With concurrency > 1 alerts may arrive out of order (`seq` orders them).
 */
import * as fs from 'node:fs';
import { DeepSentryError, invalidParameterError } from '../errors';
import type { Alert } from './types';

/** Receives every alert, in order. */
export interface AlertSink {
  write(alerts: Alert[]): void;
  /** Resolves when everything accepted so far has been delivered (or given up on), or after `timeoutMs`. */
  drain?(timeoutMs: number): Promise<void>;
  close?(): Promise<void>;
}

/** One alert as a short human-readable block (the form printed on stdout). */
export function formatAlert(a: Alert, opts: { context?: number } = {}): string {
  const what = a.isSessionEnd ? `session end (${a.endReason ?? 'ended'})` : 'line';
  const where = a.source === 'stdin' || a.source === 'http' ? `${a.source} line ${a.lineNo}` : `${a.source}:${a.lineNo}`;
  let s = `${a.time} ANOMALY ${what} score=${fmt(a.score)} > threshold=${fmt(a.threshold)} session=${a.session} at ${where}\n`;
  const ctx = a.window.slice(-(opts.context ?? 5));
  for (let i = 0; i < ctx.length; i++) s += `    ${i === ctx.length - 1 ? '>' : ' '} ${ctx[i]}\n`;
  if (a.expected !== undefined) s += `    expected: ${a.expected}\n`;
  if (a.countRelation !== undefined) s += `    count relation: ${a.countRelation}\n`;
  return s;
}

function fmt(x: number): string {
  if (!Number.isFinite(x)) return String(x);
  return Math.abs(x) >= 1000 || (x !== 0 && Math.abs(x) < 0.001) ? x.toExponential(3) : x.toFixed(4).replace(/\.?0+$/, '');
}

/** Human-readable alerts on a stream (stdout by default). */
export class TextSink implements AlertSink {
  private broken = false;
  constructor(
    private readonly out: NodeJS.WritableStream = process.stdout,
    private readonly context = 5,
  ) {
    // A closed reader (`deepsentry live … | head`) must not crash the monitor: stop printing, keep monitoring.
    out.on('error', () => {
      this.broken = true;
    });
  }
  write(alerts: Alert[]): void {
    if (alerts.length === 0 || this.broken) return;
    this.out.write(alerts.map((a) => formatAlert(a, { context: this.context })).join(''));
  }
}

/** Appends one JSON object per alert to a file. */
export class NdjsonFileSink implements AlertSink {
  private fd: number;
  constructor(readonly path: string) {
    try {
      this.fd = fs.openSync(path, 'a');
    } catch (err) {
      throw new DeepSentryError('DS_IO', `cannot open the alert file ${path} for appending: ${(err as Error).message}`, { cause: err });
    }
  }
  write(alerts: Alert[]): void {
    if (alerts.length === 0) return;
    const s = alerts.map((a) => JSON.stringify(a)).join('\n') + '\n';
    try {
      fs.writeSync(this.fd, s);
    } catch (err) {
      throw new DeepSentryError('DS_IO', `cannot append to the alert file ${this.path}: ${(err as Error).message}`, { cause: err });
    }
  }
  /** Bytes in the file now (a checkpoint records it: alerts past it were raised after the checkpoint). */
  size(): number {
    return fs.fstatSync(this.fd).size;
  }
  async close(): Promise<void> {
    fs.closeSync(this.fd);
  }
}

/** Options of the webhook sink. */
export interface WebhookOptions {
  url: string;
  /** Alerts held while the endpoint is slow or down; beyond, the oldest is dropped (default 1000). */
  maxQueue?: number;
  /** Attempts per request before its alerts are given up on (default 8). */
  maxAttempts?: number;
  /** First retry delay; doubled each attempt up to maxBackoffMs (defaults 250 ms, 30 s), then jittered (50–100 %). */
  backoffMs?: number;
  maxBackoffMs?: number;
  /** Per-request timeout (default 30 s). */
  timeoutMs?: number;
  /** Requests in flight at once (default 4; 1 keeps alerts in order). */
  concurrency?: number;
  /** Alerts per request (default 1: the body is one alert object; above 1 the body is an array of alerts). */
  batchSize?: number;
  /** Extra request headers (e.g. authorization). */
  headers?: Record<string, string>;
  /** Called after each successful delivery (the monitor journals it for restarts). */
  onDelivered?: (a: Alert) => void;
  /** Called when an alert is given up on, with the reason. */
  onGiveUp?: (a: Alert, reason: string) => void;
}

export class WebhookSink implements AlertSink {
  readonly url: URL;
  private queue: Alert[] = [];
  private readonly maxQueue: number;
  private readonly maxAttempts: number;
  private readonly backoffMs: number;
  private readonly maxBackoffMs: number;
  private readonly timeoutMs: number;
  private readonly concurrency: number;
  private readonly batchSize: number;
  private readonly headers: Record<string, string>;
  private readonly opts: WebhookOptions;
  /** Batches taken from the queue by a sender: in a request, or waiting to retry. */
  private readonly active = new Set<Alert[]>();
  private senders = 0;
  private closed = false;
  private readonly aborts = new Set<AbortController>();
  private readonly wakeSleeps = new Set<() => void>();
  private idleWaiters: (() => void)[] = [];
  sent = 0;
  failed = 0;
  /** Alerts given up on: the queue overflowed, retries ran out, or a 4xx said retrying cannot help. */
  dropped = 0;
  /** Of those, the alerts dropped because the queue was full. */
  overflowed = 0;
  /** Extra listeners for deliveries (the monitor journals them for restarts). */
  readonly deliveredListeners: ((a: Alert) => void)[] = [];

  constructor(opts: WebhookOptions) {
    let u: URL;
    try {
      u = new URL(opts.url);
    } catch {
      throw invalidParameterError('webhook url', 'an http(s) URL', opts.url);
    }
    if (u.protocol !== 'http:' && u.protocol !== 'https:') throw invalidParameterError('webhook url', 'an http(s) URL', opts.url);
    this.url = u;
    this.opts = opts;
    this.maxQueue = posInt('webhook maxQueue', opts.maxQueue ?? 1000);
    this.maxAttempts = posInt('webhook maxAttempts', opts.maxAttempts ?? 8);
    this.backoffMs = posInt('webhook backoffMs', opts.backoffMs ?? 250);
    this.maxBackoffMs = posInt('webhook maxBackoffMs', opts.maxBackoffMs ?? 30_000);
    this.timeoutMs = posInt('webhook timeoutMs', opts.timeoutMs ?? 30_000);
    this.concurrency = posInt('webhook concurrency', opts.concurrency ?? 4);
    this.batchSize = posInt('webhook batchSize', opts.batchSize ?? 1);
    this.headers = { 'content-type': 'application/json', ...(opts.headers ?? {}) };
  }

  /** Alerts not delivered yet: queued, in flight or waiting to retry. */
  get queued(): number {
    let n = this.queue.length;
    for (const b of this.active) n += b.length;
    return n;
  }

  /** Alerts not yet delivered, in raising order (those in flight included): what a checkpoint keeps. */
  pending(): Alert[] {
    return bySeq([...[...this.active].flat(), ...this.queue]);
  }

  write(alerts: Alert[]): void {
    if (this.closed) return;
    for (const a of alerts) {
      if (this.queue.length >= this.maxQueue) {
        const old = this.queue.shift()!;
        this.dropped++;
        this.overflowed++;
        this.opts.onGiveUp?.(old, `webhook queue full (${this.maxQueue})`);
      }
      this.queue.push(a);
      // Senders take their batch synchronously, so an alert that can be sent at once never waits for room.
      while (this.senders < this.concurrency && this.queue.length > 0) void this.sender();
    }
  }

  private async sender(): Promise<void> {
    this.senders++;
    try {
      while (this.queue.length > 0 && !this.closed) {
        const batch = this.queue.splice(0, this.batchSize);
        this.active.add(batch);
        try {
          await this.deliver(batch);
        } finally {
          this.active.delete(batch);
        }
      }
    } finally {
      this.senders--;
      if (this.senders === 0) {
        const w = this.idleWaiters;
        this.idleWaiters = [];
        for (const f of w) f();
      }
    }
  }

  private async deliver(batch: Alert[]): Promise<void> {
    const body = this.batchSize > 1 ? JSON.stringify(batch) : JSON.stringify(batch[0]);
    let lastErr = '';
    for (let attempt = 1; attempt <= this.maxAttempts && !this.closed; attempt++) {
      let retryable = true;
      let retryAfterMs = 0;
      const ac = new AbortController();
      const timer = setTimeout(() => ac.abort(new Error(`no answer within ${this.timeoutMs} ms`)), this.timeoutMs);
      this.aborts.add(ac);
      try {
        const res = await fetch(this.url, { method: 'POST', headers: this.headers, body, signal: ac.signal });
        // Read the body so the connection can be reused.
        await res.arrayBuffer().catch(() => undefined);
        if (res.ok) {
          this.sent += batch.length;
          for (const a of batch) {
            this.opts.onDelivered?.(a);
            for (const f of this.deliveredListeners) f(a);
          }
          return;
        }
        lastErr = `HTTP ${res.status}`;
        retryable = res.status >= 500 || res.status === 429 || res.status === 408;
        const ra = Number(res.headers.get('retry-after'));
        if (Number.isFinite(ra) && ra > 0) retryAfterMs = ra * 1000;
      } catch (err) {
        lastErr = ac.signal.aborted && ac.signal.reason instanceof Error ? ac.signal.reason.message : (err as Error).message;
        const cause = (err as { cause?: { code?: string } }).cause;
        if (cause?.code) lastErr += ` (${cause.code})`;
      } finally {
        clearTimeout(timer);
        this.aborts.delete(ac);
      }
      if (this.closed) break; // aborted by close(): not a failure of the endpoint
      this.failed++;
      if (!retryable) break;
      if (attempt < this.maxAttempts) await this.sleep(Math.min(this.maxBackoffMs, Math.max(retryAfterMs, this.backoff(attempt))));
    }
    if (this.closed) {
      // Closed while sending or waiting to retry: back to the queue, so pending() still reports the batch.
      this.queue = bySeq([...batch, ...this.queue]);
      return;
    }
    this.dropped += batch.length;
    for (const a of batch) this.opts.onGiveUp?.(a, `webhook ${this.url.origin}${this.url.pathname}: ${lastErr}`);
  }

  /** Exponential backoff with "equal jitter": 50–100 % of base·2^(attempt-1), capped, so retries spread out. */
  private backoff(attempt: number): number {
    const d = Math.min(this.maxBackoffMs, this.backoffMs * 2 ** (attempt - 1));
    return d / 2 + (Math.random() * d) / 2;
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const wake = () => {
        clearTimeout(t);
        this.wakeSleeps.delete(wake);
        resolve();
      };
      const t = setTimeout(wake, ms);
      this.wakeSleeps.add(wake);
    });
  }

  async drain(timeoutMs: number): Promise<void> {
    if (this.senders === 0 && this.queue.length === 0) return;
    await new Promise<void>((resolve) => {
      const t = setTimeout(resolve, timeoutMs);
      this.idleWaiters.push(() => {
        clearTimeout(t);
        resolve();
      });
    });
  }

  /** Stops sending now: requests in flight are aborted, retries cancelled; undelivered alerts stay in pending(). */
  async close(): Promise<void> {
    this.closed = true;
    for (const ac of this.aborts) ac.abort(new Error('webhook sink closed'));
    for (const w of [...this.wakeSleeps]) w();
    if (this.senders > 0) await new Promise<void>((resolve) => this.idleWaiters.push(resolve));
  }
}

/** Alerts in raising order (stable: alerts of one line keep theirs). */
function bySeq(alerts: Alert[]): Alert[] {
  return alerts.sort((a, b) => a.seq - b.seq);
}

function posInt(name: string, v: number): number {
  if (!Number.isInteger(v) || v < 1) throw invalidParameterError(name, 'a positive integer', v);
  return v;
}
