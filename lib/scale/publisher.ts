/**
 * Publishing log lines to a partitioned DeepSentry stream (see topology.ts for the layout).
 *
 * Each line is parsed only as far as its session keys, with the model's own log configuration and the very
 * code the live scorer keys lines with (configuredFormat and liveSessionKeyer: lib/logs), and published to
 * `<prefix>.p.<partition>` for each distinct partition of its keys (partition = FNV-1a of the key mod P); a
 * line without a key goes to the partition of a hash of its text. Blank lines are skipped.
 *
 * Every message carries a `Nats-Msg-Id` (`<source>:<line>:<partition>`), so a publisher that retries after a
 * lost acknowledgement, or that is run again on the same log within the stream's duplicate window (2 min),
 * stores each line once. It also carries `DS-Clock`, the latest timestamp of any line so far: a partition's
 * worker moves its session clock to it, so sessions end idle at the same lines as in one process (`score`),
 * although a partition sees only some of the lines. `finish()` publishes the final clock to every partition.
 *
 * Publishes are pipelined in windows; failed publishes (the server restarting, a timeout) are sent again,
 * in order, with the same message ids, until stored or `retryMs` has passed (then DS_IO); a window is done
 * before the next one starts.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import type { Readable } from 'node:stream';
import type { NatsConnection } from '@nats-io/nats-core';
import { headers } from '@nats-io/nats-core';
import { jetstream, type JetStreamClient } from '@nats-io/jetstream';
import { DeepSentryError } from '../errors';
import { resolveLogConfig, type LogConfig } from '../logs/config';
import { configuredFormat, ParseFailure, type LogFormat } from '../logs/formats';
import type { SessionKeyer } from '../logs/sessions';
import { LineSplitter, type SourceLine } from '../logs/lines';
import { checkModelDir } from '../live/engine';
import { liveSessionKeyer } from '../live/model_scorer';
import { HDR_CLOCK, HDR_LINE, HDR_SOURCE, connectNats, openTopology, partitionOf, stableHash, topology, type Opened } from './topology';

/** Options of a Publisher. */
export interface PublisherOptions {
  /** NATS URL, e.g. nats://127.0.0.1:4222 */
  nats: string;
  /** Stream name (default DEEPSENTRY). */
  stream?: string;
  /** Partition count when the stream is new (default 12); must match an existing stream's. */
  partitions?: number;
  /** The log configuration the workers' model was trained with (see publishLogConfig). */
  logConfig: LogConfig;
  /** Source name in message ids and alerts (default `stdin`). */
  source?: string;
  /** Messages in flight at once (default 1024). */
  window?: number;
  /** How long one message is retried before publishing fails (default 120 s). */
  retryMs?: number;
}

/** What a publisher did. */
export interface PublishSummary {
  lines: number;
  /** messages stored (a line naming sessions of several partitions is one message per partition) */
  messages: number;
  /** messages the server already had (same message id): a retry or a re-run */
  duplicates: number;
  blank: number;
  /** lines the format could not parse (published by the keyless rule; the worker counts them as unparsed) */
  unparsed: number;
  partitions: number;
  seconds: number;
}

/**
 * The log configuration to key lines with: a model directory's own (model.json, without loading weights), or
 * lib/logs' defaults with a given format.
 */
export function publishLogConfig(o: { model?: string; format?: string }): LogConfig {
  if (o.model !== undefined) {
    checkModelDir(o.model);
    const file = path.join(path.resolve(o.model), 'model.json');
    let extra: { logConfig?: unknown } | undefined;
    try {
      extra = (JSON.parse(fs.readFileSync(file, 'utf8')) as { extra?: { logConfig?: unknown } }).extra;
    } catch (e) {
      throw new DeepSentryError('DS_MODEL', `${file}: ${(e as Error).message}`);
    }
    if (!extra || typeof extra.logConfig !== 'object' || extra.logConfig === null) throw new DeepSentryError('DS_MODEL', `${file}: no extra.logConfig (was it written by \`deepsentry train\`?)`);
    return resolveLogConfig(extra.logConfig as Record<string, unknown>);
  }
  return resolveLogConfig({ format: o.format ?? 'auto' });
}

interface Pending {
  subject: string;
  data: string;
  id: string;
  clock: number | null;
  lineNo: number;
}

export class Publisher {
  private readonly format: LogFormat;
  private readonly keyer: SessionKeyer;
  private readonly js: JetStreamClient;
  private readonly source: string;
  private readonly window: number;
  private readonly retryMs: number;
  private clock: number | null = null;
  private lastLineNo = 0;
  private readonly t0 = process.hrtime.bigint();
  readonly summary: PublishSummary;

  private constructor(
    private readonly nc: NatsConnection,
    readonly opened: Opened,
    o: PublisherOptions,
  ) {
    this.format = configuredFormat(o.logConfig);
    this.keyer = liveSessionKeyer(o.logConfig);
    this.js = jetstream(nc, { timeout: 5000 });
    this.source = o.source ?? 'stdin';
    this.window = o.window ?? 1024;
    this.retryMs = o.retryMs ?? 120_000;
    this.summary = { lines: 0, messages: 0, duplicates: 0, blank: 0, unparsed: 0, partitions: opened.partitions, seconds: 0 };
  }

  /** Connects, creates the stream when missing (with `partitions`), and returns a publisher. */
  static async open(o: PublisherOptions): Promise<Publisher> {
    const nc = await connectNats(o.nats, `deepsentry publish ${o.source ?? 'stdin'}`);
    try {
      const opened = await openTopology(nc, topology(o.stream), o.partitions !== undefined ? { partitions: o.partitions } : {});
      return new Publisher(nc, opened, o);
    } catch (e) {
      await nc.close();
      throw e;
    }
  }

  /** The partitions of one line (its sessions', or the keyless rule's) and its timestamp. */
  private route(text: string): { parts: number[]; ts: number | null } {
    const P = this.opened.partitions;
    const p = this.format.parse(text);
    if (p instanceof ParseFailure) {
      this.summary.unparsed++;
      return { parts: [stableHash(text) % P], ts: null };
    }
    const keys = this.keyer.keys(p, p.timestamp);
    if (keys.length === 0) return { parts: [stableHash(text) % P], ts: p.timestamp };
    const parts: number[] = [];
    for (const k of keys) {
      const q = partitionOf(k, P);
      if (!parts.includes(q)) parts.push(q);
    }
    return { parts, ts: p.timestamp };
  }

  /** Publishes lines (in input order). Resolves when the server has stored all of them. */
  async publish(lines: readonly SourceLine[]): Promise<void> {
    let batch: Pending[] = [];
    for (const l of lines) {
      this.summary.lines++;
      this.lastLineNo = l.lineNo;
      if (l.text.trim() === '') {
        this.summary.blank++;
        continue;
      }
      const { parts, ts } = this.route(l.text);
      if (ts !== null && (this.clock === null || ts > this.clock)) this.clock = ts;
      for (const p of parts) batch.push({ subject: this.opened.topo.subject(p), data: l.text, id: `${this.source}:${l.lineNo}:${p}`, clock: this.clock, lineNo: l.lineNo });
      if (batch.length >= this.window) {
        await this.send(batch);
        batch = [];
      }
    }
    if (batch.length > 0) await this.send(batch);
  }

  /**
   * Sends one window: all at once; then the failed ones again, all at once and in order, after a pause that
   * doubles each round, until every one is stored or `retryMs` has passed (DS_IO). Counts what was stored and
   * what the server already had (clock marks are not lines: not counted).
   */
  private async send(batch: Pending[], count = true): Promise<void> {
    const until = Date.now() + this.retryMs;
    let todo = batch;
    for (let delay = 100; ; delay = Math.min(delay * 2, 2000)) {
      const results = await Promise.allSettled(todo.map((m) => this.js.publish(m.subject, m.data, { msgID: m.id, headers: this.headersOf(m) })));
      const failed: Pending[] = [];
      let err: Error | null = null;
      results.forEach((r, i) => {
        if (r.status === 'rejected') {
          failed.push(todo[i]!);
          err = r.reason as Error;
        } else if (count) {
          if (r.value.duplicate) this.summary.duplicates++;
          else this.summary.messages++;
        }
      });
      if (failed.length === 0) return;
      if (Date.now() > until) {
        const m = failed[0]!;
        throw new DeepSentryError('DS_IO', `publishing line ${m.lineNo} of ${this.source} to ${m.subject} failed for ${this.retryMs} ms: ${(err as Error | null)?.message ?? 'no reply'}`, { cause: err });
      }
      todo = failed;
      await new Promise((r) => setTimeout(r, delay));
    }
  }

  private headersOf(m: Pending) {
    const h = headers();
    if (m.clock !== null) h.set(HDR_CLOCK, String(m.clock));
    h.set(HDR_LINE, String(m.lineNo));
    h.set(HDR_SOURCE, this.source);
    return h;
  }

  /**
   * The input is over: publishes the final clock to every partition (an empty message with DS-Clock), so
   * sessions idle by the end of the log end in every partition as they would in one process.
   */
  async finish(): Promise<PublishSummary> {
    if (this.clock !== null) {
      const marks: Pending[] = [];
      for (let p = 0; p < this.opened.partitions; p++) marks.push({ subject: this.opened.topo.subject(p), data: '', id: `${this.source}:end:${this.lastLineNo}:${p}`, clock: this.clock, lineNo: this.lastLineNo });
      await this.send(marks, false);
    }
    this.summary.seconds = Number(process.hrtime.bigint() - this.t0) / 1e9;
    return this.summary;
  }

  async close(): Promise<void> {
    await this.nc.close();
  }
}

/**
 * Publishes a whole log (a path, plain or .gz, or a byte stream) and its final clock; see Publisher.
 * Errors: an unreadable input is DS_IO naming it.
 */
export async function publishLog(input: string | Readable, o: PublisherOptions): Promise<PublishSummary> {
  const name = typeof input === 'string' ? input : (o.source ?? 'stdin');
  let stream: Readable;
  if (typeof input === 'string') {
    try {
      fs.accessSync(input, fs.constants.R_OK);
    } catch (e) {
      throw new DeepSentryError('DS_IO', `cannot read ${input}: ${(e as Error).message}`);
    }
    const raw = fs.createReadStream(input);
    stream = input.endsWith('.gz') ? raw.pipe(zlib.createGunzip()) : raw;
  } else stream = input;
  const pub = await Publisher.open({ ...o, source: o.source ?? (typeof input === 'string' ? path.basename(input) : 'stdin') });
  try {
    const splitter = new LineSplitter();
    try {
      for await (const chunk of stream) {
        const lines = splitter.push(chunk as Buffer);
        if (lines.length > 0) await pub.publish(lines);
      }
    } catch (e) {
      if (e instanceof DeepSentryError) throw e;
      throw new DeepSentryError('DS_IO', `reading ${name} failed: ${(e as Error).message}`, { cause: e });
    }
    await pub.publish(splitter.finish());
    return await pub.finish();
  } finally {
    await pub.close();
  }
}
