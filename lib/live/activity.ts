/**
 * What the dashboard draws besides the totals: one bucket per second (lines, events, anomalies, max and mean
 * score, threshold) over the last `seconds` seconds, and the latest alerts. A LiveMonitor keeps one, and so
 * does a scale-out worker (lib/scale/worker.ts) over all the partitions it owns.
 */
import type { Alert } from './types';

/** One second of history for the dashboard. */
export interface SecondBucket {
  /** Unix time (s). */
  t: number;
  lines: number;
  events: number;
  anomalies: number;
  maxScore: number | null;
  meanScore: number | null;
  threshold: number | null;
}

export class RecentActivity {
  private buckets: SecondBucket[] = [];
  private recent: Alert[] = [];

  constructor(
    private readonly maxAlerts = 50,
    private readonly seconds = 300,
  ) {}

  /** The current second's bucket, with `lines` more lines counted in it. */
  bucket(lines: number): SecondBucket {
    const t = Math.floor(Date.now() / 1000);
    let b = this.buckets[this.buckets.length - 1];
    if (!b || b.t !== t) {
      if (b && b.meanScore !== null && b.events > 0) b.meanScore /= b.events;
      b = { t, lines: 0, events: 0, anomalies: 0, maxScore: null, meanScore: null, threshold: null };
      this.buckets.push(b);
      if (this.buckets.length > this.seconds) this.buckets.shift();
    }
    b.lines += lines;
    return b;
  }

  /** Counts one judged event in a bucket from `bucket()`. */
  observe(b: SecondBucket, score: number, threshold: number, anomaly: boolean): void {
    b.events++;
    if (Number.isFinite(score)) {
      b.maxScore = b.maxScore === null ? score : Math.max(b.maxScore, score);
      b.meanScore = (b.meanScore ?? 0) + score; // a sum until the bucket closes
    }
    b.threshold = Number.isFinite(threshold) ? threshold : null;
    if (anomaly) b.anomalies++;
  }

  /** Keeps the latest alerts (the oldest beyond `maxAlerts` go). */
  addAlerts(alerts: Alert[]): void {
    this.recent.push(...alerts);
    if (this.recent.length > this.maxAlerts) this.recent.splice(0, this.recent.length - this.maxAlerts);
  }

  /** The buckets, oldest first (the open one with its mean so far). */
  history(): SecondBucket[] {
    const h = this.buckets;
    return h.map((b, i) => (i === h.length - 1 && b.meanScore !== null && b.events > 0 ? { ...b, meanScore: b.meanScore / b.events } : b));
  }

  /** The latest alerts, newest first. */
  alerts(): Alert[] {
    return [...this.recent].reverse();
  }
}
