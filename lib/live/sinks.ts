/**
 * Where alerts go: human-readable lines (stdout), an NDJSON file, and a webhook.
 *
 * The file sink appends with synchronous writes, batch by batch: when `write` returns the alerts are in the
 * kernel, so a SIGKILL right after cannot lose them (a checkpoint written later relies on that).
 *
 * The webhook sink POSTs each alert as JSON to a URL from a bounded in-memory queue, one request at a time (so
 * alerts arrive in order), retrying network errors, 5xx and 429 with exponential backoff. A full queue drops
 * its OLDEST alert (the newest say most about now) and counts it. Every alert carries a stable `id`: after a
 * crash an alert may be sent again, never with a different id, so receivers can drop duplicates.
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
  /** Attempts per alert before giving up (default 8). */
  maxAttempts?: number;
  /** First retry delay; doubled each attempt up to maxBackoffMs (defaults 250 ms, 30 s). */
  backoffMs?: number;
  maxBackoffMs?: number;
  /** Per-request timeout (default 5 s). */
  timeoutMs?: number;
  /** Extra request headers (e.g. authorization). */
  headers?: Record<string, string>;
  /** Called after each successful delivery (the monitor journals it for restarts). */
  onDelivered?: (a: Alert) => void;
  /** Called when an alert is given up on, with the reason. */
  onGiveUp?: (a: Alert, reason: string) => void;
}

export class WebhookSink implements AlertSink {
  readonly url: URL;
  private readonly queue: Alert[] = [];
  private readonly maxQueue: number;
  private readonly maxAttempts: number;
  private readonly backoffMs: number;
  private readonly maxBackoffMs: number;
  private readonly timeoutMs: number;
  private readonly headers: Record<string, string>;
  private readonly opts: WebhookOptions;
  private sending = false;
  private closed = false;
  private wakeSleep: (() => void) | null = null;
  private idleWaiters: (() => void)[] = [];
  sent = 0;
  failed = 0;
  dropped = 0;
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
    this.timeoutMs = posInt('webhook timeoutMs', opts.timeoutMs ?? 5000);
    this.headers = { 'content-type': 'application/json', ...(opts.headers ?? {}) };
  }

  get queued(): number {
    return this.queue.length + (this.sending ? 1 : 0);
  }

  /** Alerts not yet delivered, oldest first (the one being sent included): what a checkpoint keeps. */
  pending(): Alert[] {
    return this.inFlight ? [this.inFlight, ...this.queue] : [...this.queue];
  }
  private inFlight: Alert | null = null;

  write(alerts: Alert[]): void {
    if (this.closed) return;
    for (const a of alerts) {
      if (this.queue.length >= this.maxQueue) {
        const old = this.queue.shift()!;
        this.dropped++;
        this.opts.onGiveUp?.(old, `webhook queue full (${this.maxQueue})`);
      }
      this.queue.push(a);
      // Starts sending at once (the first alert leaves the queue synchronously), so it is never dropped for room.
      if (!this.sending) void this.loop();
    }
  }

  private async loop(): Promise<void> {
    this.sending = true;
    try {
      while (this.queue.length > 0 && !this.closed) {
        const a = this.queue.shift()!;
        this.inFlight = a;
        await this.deliver(a);
        this.inFlight = null;
      }
    } finally {
      this.inFlight = null;
      this.sending = false;
      const w = this.idleWaiters;
      this.idleWaiters = [];
      for (const f of w) f();
    }
  }

  private async deliver(a: Alert): Promise<void> {
    const body = JSON.stringify(a);
    let lastErr = '';
    for (let attempt = 1; attempt <= this.maxAttempts && !this.closed; attempt++) {
      let retryable = true;
      try {
        const res = await fetch(this.url, { method: 'POST', headers: this.headers, body, signal: AbortSignal.timeout(this.timeoutMs) });
        // Read the body so the connection can be reused.
        await res.arrayBuffer().catch(() => undefined);
        if (res.ok) {
          this.sent++;
          this.opts.onDelivered?.(a);
          for (const f of this.deliveredListeners) f(a);
          return;
        }
        lastErr = `HTTP ${res.status}`;
        retryable = res.status >= 500 || res.status === 429 || res.status === 408;
      } catch (err) {
        lastErr = (err as Error).message;
        const cause = (err as { cause?: { code?: string } }).cause;
        if (cause?.code) lastErr += ` (${cause.code})`;
      }
      this.failed++;
      if (!retryable) break;
      if (attempt < this.maxAttempts) await this.sleep(Math.min(this.maxBackoffMs, this.backoffMs * 2 ** (attempt - 1)));
    }
    if (this.closed) {
      // Closed while retrying: put it back so pending() still reports it (a checkpoint keeps it).
      this.queue.unshift(a);
      return;
    }
    this.dropped++;
    this.opts.onGiveUp?.(a, `webhook ${this.url.origin}${this.url.pathname}: ${lastErr}`);
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(() => {
        this.wakeSleep = null;
        resolve();
      }, ms);
      this.wakeSleep = () => {
        clearTimeout(t);
        this.wakeSleep = null;
        resolve();
      };
    });
  }

  async drain(timeoutMs: number): Promise<void> {
    if (!this.sending && this.queue.length === 0) return;
    await new Promise<void>((resolve) => {
      const t = setTimeout(resolve, timeoutMs);
      this.idleWaiters.push(() => {
        clearTimeout(t);
        resolve();
      });
    });
  }

  /** Stops sending (after the request in flight); undelivered alerts stay in pending(). */
  async close(): Promise<void> {
    this.closed = true;
    this.wakeSleep?.();
    if (this.sending) await new Promise<void>((resolve) => this.idleWaiters.push(resolve));
  }
}

function posInt(name: string, v: number): number {
  if (!Number.isInteger(v) || v < 1) throw invalidParameterError(name, 'a positive integer', v);
  return v;
}
