/**
 * Prometheus metrics of one live monitor (prom-client), on a registry of its own so that several monitors in
 * one process (tests, a service embedding two models) do not collide. Served at GET /metrics.
 *
 * Totals kept elsewhere (the scorer's evictions, the webhook's counts) are copied in at scrape time by
 * `collect`, so the hot path never touches prom-client for them.
 */
import { monitorEventLoopDelay, IntervalHistogram } from 'node:perf_hooks';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { TailNotice } from './tail';
import type { ScorerStats } from './types';

/** Read-only view of the numbers metrics are built from, so MonitorMetrics need not know the monitor. */
export interface MetricsSource {
  scorerStats(): ScorerStats;
  queuedLines(): number;
  threshold(): number;
  webhook(): { sent: number; failed: number; dropped: number; overflowed: number; queued: number } | null;
  ready(): boolean;
}

/** Default score buckets: scores are on whatever scale the scorer uses; these cover 1e-3 … 1e3 in factors of ~2. */
export const DEFAULT_SCORE_BUCKETS = [0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 20, 50, 100, 200, 500, 1000];

export class MonitorMetrics {
  readonly registry = new Registry();
  readonly lines: Counter;
  readonly events: Counter;
  readonly anomalies: Counter;
  readonly dropped: Counter;
  readonly scores: HotHistogram;
  readonly latency: HotHistogram;
  readonly batchLines: Histogram;
  /** Truncations of the followed file (copytruncate or other), and lines that could not be read (by reason). */
  readonly fileTruncations: Counter;
  readonly fileLoss: Counter<'reason'>;
  /** Feedback requests (LiveMonitor.feedback) by result: ok (a new model scores) or failed (the old one still does). */
  readonly feedback: Counter<'result'>;
  /** Event-loop delay while the monitor runs (perf_hooks.monitorEventLoopDelay, 10 ms resolution). */
  readonly loopDelay: IntervalHistogram;

  constructor(src: MetricsSource, opts: { scoreBuckets?: number[]; defaultMetrics?: boolean } = {}) {
    const r = this.registry;
    this.lines = new Counter({ name: 'deepsentry_lines_total', help: 'Lines accepted for scoring.', registers: [r] });
    this.events = new Counter({ name: 'deepsentry_events_total', help: 'Scored events (line events and session ends).', registers: [r] });
    this.anomalies = new Counter({ name: 'deepsentry_anomalies_total', help: 'Events whose score exceeded the live threshold.', registers: [r] });
    this.dropped = new Counter({ name: 'deepsentry_dropped_lines_total', help: 'Lines refused because the input queue was full (HTTP ingest answers 503).', registers: [r] });
    this.scores = new HotHistogram('deepsentry_score', 'Distribution of event scores.', opts.scoreBuckets ?? DEFAULT_SCORE_BUCKETS, r);
    this.latency = new HotHistogram('deepsentry_line_latency_seconds', 'Time from a line being accepted to its events being judged (and alerts emitted).', [0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5], r);
    this.batchLines = new Histogram({ name: 'deepsentry_batch_lines', help: 'Lines per scorer call.', buckets: [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000], registers: [r] });
    this.fileTruncations = new Counter({ name: 'deepsentry_file_truncations_total', help: 'Truncations of the followed file seen (copytruncate or other).', registers: [r] });
    this.fileLoss = new Counter({
      name: 'deepsentry_file_loss_total',
      help: 'Times lines of the followed file may have been lost: reason="truncated" (truncated with no rotated copy to read the rest from), "gone" (the checkpointed file vanished while stopped), "compressed" (a rotation was compressed while stopped; not read back).',
      labelNames: ['reason'],
      registers: [r],
    });
    for (const reason of ['truncated', 'gone', 'compressed']) this.fileLoss.inc({ reason }, 0);
    this.feedback = new Counter({ name: 'deepsentry_feedback_total', help: 'Feedback requests (sessions learnt as normal): result="ok" (the new model scores), "failed" (the old one still does).', labelNames: ['result'], registers: [r] });
    for (const result of ['ok', 'failed']) this.feedback.inc({ result }, 0);
    new Gauge({
      name: 'deepsentry_open_sessions',
      help: 'Sessions open now.',
      registers: [r],
      collect() {
        this.set(src.scorerStats().openSessions);
      },
    });
    totalFrom(r, 'deepsentry_evicted_sessions_total', 'Sessions closed early because too many were open.', () => src.scorerStats().evictedSessions);
    totalFrom(r, 'deepsentry_unparsed_lines_total', 'Lines the scorer could not parse (skipped and counted).', () => src.scorerStats().unparsedLines);
    new Gauge({ name: 'deepsentry_queued_lines', help: 'Lines waiting for the scorer.', registers: [r], collect() { this.set(src.queuedLines()); } });
    new Gauge({
      name: 'deepsentry_threshold',
      help: 'The live threshold now (Infinity while warming up with no floor).',
      registers: [r],
      collect() {
        this.set(src.threshold());
      },
    });
    new Gauge({ name: 'deepsentry_ready', help: '1 when the monitor accepts lines.', registers: [r], collect() { this.set(src.ready() ? 1 : 0); } });
    totalFrom(r, 'deepsentry_webhook_sent_total', 'Alerts delivered to the webhook.', () => src.webhook()?.sent ?? 0);
    totalFrom(r, 'deepsentry_webhook_failed_total', 'Webhook attempts that failed (each retry counts).', () => src.webhook()?.failed ?? 0);
    totalFrom(r, 'deepsentry_webhook_dropped_total', 'Alerts given up on: queue full or retries exhausted.', () => src.webhook()?.dropped ?? 0);
    totalFrom(r, 'deepsentry_webhook_overflow_total', 'Alerts dropped because the webhook queue was full (the oldest go first).', () => src.webhook()?.overflowed ?? 0);
    new Gauge({ name: 'deepsentry_webhook_queued', help: 'Alerts not delivered yet: queued, in flight or waiting to retry.', registers: [r], collect() { this.set(src.webhook()?.queued ?? 0); } });
    this.loopDelay = monitorEventLoopDelay({ resolution: 10 });
    this.loopDelay.enable();
    const h = this.loopDelay;
    new Gauge({
      name: 'deepsentry_event_loop_delay_seconds',
      help: 'Event-loop delay since start (perf_hooks.monitorEventLoopDelay).',
      labelNames: ['quantile'],
      registers: [r],
      collect() {
        const q = (p: number) => (h.count > 0 ? h.percentile(p) / 1e9 : 0);
        this.set({ quantile: '0.5' }, q(50));
        this.set({ quantile: '0.99' }, q(99));
        this.set({ quantile: '1' }, h.count > 0 ? h.max / 1e9 : 0);
      },
    });
    if (opts.defaultMetrics) collectDefaultMetrics({ register: r });
  }

  /** Event-loop delay percentiles in ms (two decimals), as /api/stats shows them. */
  loopDelayMs(): { p50: number; p99: number; max: number } {
    const h = this.loopDelay;
    const ms = (v: number) => Math.round(v / 1e4) / 100;
    return { p50: h.count ? ms(h.percentile(50)) : 0, p99: h.count ? ms(h.percentile(99)) : 0, max: h.count ? ms(h.max) : 0 };
  }

  /** Counts what a file follower reports (lib/live/tail.ts). */
  tailNotice(n: TailNotice): void {
    if (n.kind === 'truncated') this.fileTruncations.inc();
    if (n.loss) this.fileLoss.inc({ reason: n.loss });
  }

  close(): void {
    this.loopDelay.disable();
  }
}

/**
 * A histogram without labels for what is observed once per line or event: an observation is a few comparisons
 * and additions. prom-client's Histogram.observe allocates at every call (its label handling, ~170 bytes: on
 * `--follow` of hdfs-dev the line-latency and score histograms made a sixth of the main thread's garbage, by
 * the sampling heap profiler). Exported as prom-client exports its Histogram (the same series, in the same
 * order), from the monitor's registry like every other metric.
 */
export class HotHistogram {
  readonly type = 'histogram';
  readonly aggregator = 'sum';
  /** observations per bucket (not cumulative; beyond the last bound they count only in `count`) */
  private readonly counts: Float64Array;
  private sum = 0;
  private count = 0;

  constructor(
    readonly name: string,
    readonly help: string,
    private readonly upperBounds: readonly number[],
    registry: Registry,
  ) {
    this.counts = new Float64Array(upperBounds.length);
    registry.registerMetric(this as unknown as Histogram);
  }

  /** Observes `value` `times` times (a non-finite value is a TypeError, as prom-client's). */
  observe(value: number, times = 1): void {
    if (!Number.isFinite(value)) throw new TypeError(`Value is not a valid number: ${value}`);
    const b = this.upperBounds;
    for (let i = 0; i < b.length; i++) {
      if (value <= b[i]!) {
        this.counts[i]! += times;
        break;
      }
    }
    this.sum += value * times;
    this.count += times;
  }

  async get(): Promise<{ name: string; help: string; type: 'histogram'; aggregator: 'sum'; values: { labels: Record<string, string | number>; value: number; metricName: string }[] }> {
    const bucket = `${this.name}_bucket`;
    const values: { labels: Record<string, string | number>; value: number; metricName: string }[] = [];
    let acc = 0;
    for (let i = 0; i < this.upperBounds.length; i++) {
      acc += this.counts[i]!;
      values.push({ labels: { le: this.upperBounds[i]! }, value: acc, metricName: bucket });
    }
    values.push({ labels: { le: '+Inf' }, value: this.count, metricName: bucket }, { labels: {}, value: this.sum, metricName: `${this.name}_sum` }, { labels: {}, value: this.count, metricName: `${this.name}_count` });
    return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values };
  }

  reset(): void {
    this.counts.fill(0);
    this.sum = 0;
    this.count = 0;
  }
}

/** A counter that mirrors a total kept elsewhere: at scrape time it is advanced to the current value. */
function totalFrom(r: Registry, name: string, help: string, read: () => number): Counter {
  let last = 0;
  return new Counter({
    name,
    help,
    registers: [r],
    collect() {
      const v = read();
      if (v > last) this.inc(v - last);
      last = Math.max(last, v);
    },
  });
}
