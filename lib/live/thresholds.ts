/**
 * Live thresholds. A score is anomalous when it exceeds the current threshold. Three modes, chosen by flag:
 *
 * - `fixed`: the threshold saved with the model (fitted on held-back data) and nothing else.
 * - `rolling`: mean + k·σ over the last `window` scores, never below the saved threshold (the floor).
 * - `ewma`: exponentially weighted mean + k·σ (smoothing `alpha`), never below the floor.
 *
 * The adaptive modes need a warm-up: until `warmup` scores have been seen only the floor applies (and with no
 * floor nothing is flagged), because mean and σ of a handful of scores say nothing. Every score updates the
 * statistics, anomalous or not: excluding flagged scores would let a lasting shift in the stream raise alerts
 * forever, since the statistics could then never follow it.
 *
 * The state is plain JSON (`snapshot`/`restore`) so a monitor restarted from a checkpoint decides exactly as
 * the uninterrupted one would have.
 */
import { DeepSentryError, invalidParameterError } from '../errors';

export type ThresholdMode = 'fixed' | 'rolling' | 'ewma';

/** How the live threshold is computed; see the module comment. */
export interface ThresholdOptions {
  mode: ThresholdMode;
  /** The model's saved threshold: the whole threshold in `fixed` mode, the floor in the adaptive ones. */
  floor?: number;
  /** σ multiplier of the adaptive modes (default 3). */
  k?: number;
  /** Rolling window length in scores (default 1000). */
  window?: number;
  /** EWMA smoothing factor in (0, 1] (default 0.01: an effective memory of ~100 scores). */
  alpha?: number;
  /** Scores seen before an adaptive threshold is used (default: the window length for rolling, 2/alpha for ewma). */
  warmup?: number;
}

/** JSON state of a LiveThreshold, for checkpoints. */
export interface ThresholdSnapshot {
  mode: ThresholdMode;
  seen: number;
  // rolling: the ring buffer as stored, its write position and running sums (kept exactly so that a restored
  // threshold rounds exactly as the uninterrupted one would)
  ring?: number[];
  head?: number;
  sum?: number;
  sumSq?: number;
  mean?: number; // ewma
  variance?: number; // ewma
}

function checkFinite(name: string, v: unknown, min: number, max: number, minInclusive = true): number {
  if (typeof v !== 'number' || !Number.isFinite(v) || (minInclusive ? v < min : v <= min) || v > max) {
    throw invalidParameterError(name, `a number in ${minInclusive ? '[' : '('}${min}, ${max}]`, v);
  }
  return v;
}

export class LiveThreshold {
  readonly mode: ThresholdMode;
  readonly floor: number | undefined;
  readonly k: number;
  readonly window: number;
  readonly alpha: number;
  readonly warmup: number;
  private seen = 0;
  // rolling: ring buffer with running sums; the sums are recomputed once per lap so rounding cannot drift.
  private ring: Float64Array;
  private head = 0;
  private count = 0;
  private sum = 0;
  private sumSq = 0;
  // ewma
  private mean = 0;
  private variance = 0;

  constructor(opts: ThresholdOptions) {
    if (opts.mode !== 'fixed' && opts.mode !== 'rolling' && opts.mode !== 'ewma') {
      throw invalidParameterError('threshold mode', "'fixed', 'rolling' or 'ewma'", opts.mode);
    }
    this.mode = opts.mode;
    this.floor = opts.floor === undefined ? undefined : checkFinite('threshold floor', opts.floor, -Number.MAX_VALUE, Number.MAX_VALUE);
    this.k = opts.k === undefined ? 3 : checkFinite('threshold k', opts.k, 0, 1e6);
    const w = opts.window ?? 1000;
    if (!Number.isInteger(w) || w < 2 || w > 10_000_000) throw invalidParameterError('threshold window', 'an integer 2..10000000', w);
    this.window = w;
    this.alpha = opts.alpha === undefined ? 0.01 : checkFinite('threshold alpha', opts.alpha, 0, 1, false);
    const warm = opts.warmup ?? (this.mode === 'ewma' ? Math.ceil(2 / this.alpha) : this.window);
    if (!Number.isInteger(warm) || warm < 0) throw invalidParameterError('threshold warmup', 'a non-negative integer', warm);
    this.warmup = warm;
    if (this.mode === 'fixed' && this.floor === undefined) {
      throw new DeepSentryError('DS_CONFIG', "threshold mode 'fixed' needs a saved threshold (the model has none): use --threshold-mode rolling or ewma, or give --threshold");
    }
    this.ring = new Float64Array(this.mode === 'rolling' ? this.window : 0);
  }

  /** True while an adaptive threshold is still warming up (only the floor applies). */
  get warmingUp(): boolean {
    return this.mode !== 'fixed' && this.seen < this.warmup;
  }

  /** The threshold that applies to the next score (Infinity when nothing can be flagged yet). */
  current(): number {
    const floor = this.floor ?? -Infinity;
    if (this.mode === 'fixed') return floor;
    if (this.seen < this.warmup || this.seen === 0) return this.floor ?? Infinity;
    let adaptive: number;
    if (this.mode === 'rolling') {
      const n = this.count;
      const m = this.sum / n;
      const v = Math.max(0, this.sumSq / n - m * m);
      adaptive = m + this.k * Math.sqrt(v);
    } else {
      adaptive = this.mean + this.k * Math.sqrt(this.variance);
    }
    return Math.max(floor, adaptive);
  }

  /**
   * Judges one score against the current threshold, then adds it to the statistics.
   * Returns the threshold the score was judged against.
   */
  observe(score: number): number {
    const t = this.current();
    if (!Number.isFinite(score)) return t; // a NaN/Inf score is reported by the caller, never folded into the stats
    this.seen++;
    if (this.mode === 'rolling') this.pushRolling(score);
    else if (this.mode === 'ewma') this.pushEwma(score);
    return t;
  }

  private pushRolling(x: number): void {
    if (this.count === this.window) {
      const old = this.ring[this.head]!;
      this.sum -= old;
      this.sumSq -= old * old;
    } else {
      this.count++;
    }
    this.ring[this.head] = x;
    this.sum += x;
    this.sumSq += x * x;
    this.head = (this.head + 1) % this.window;
    if (this.head === 0) this.resum();
  }

  private resum(): void {
    let s = 0;
    let s2 = 0;
    for (let i = 0; i < this.count; i++) {
      const v = this.ring[i]!;
      s += v;
      s2 += v * v;
    }
    this.sum = s;
    this.sumSq = s2;
  }

  private pushEwma(x: number): void {
    if (this.seen === 1) {
      this.mean = x;
      this.variance = 0;
      return;
    }
    const d = x - this.mean;
    const incr = this.alpha * d;
    this.mean += incr;
    this.variance = (1 - this.alpha) * (this.variance + d * incr);
  }

  snapshot(): ThresholdSnapshot {
    const s: ThresholdSnapshot = { mode: this.mode, seen: this.seen };
    if (this.mode === 'rolling') {
      s.ring = Array.from(this.ring.subarray(0, this.count));
      s.head = this.head;
      s.sum = this.sum;
      s.sumSq = this.sumSq;
    } else if (this.mode === 'ewma') {
      s.mean = this.mean;
      s.variance = this.variance;
    }
    return s;
  }

  restore(s: ThresholdSnapshot): void {
    if (!s || s.mode !== this.mode || !Number.isInteger(s.seen) || s.seen < 0) {
      throw new DeepSentryError('DS_CONFIG', `checkpointed threshold state (mode ${describeMode(s)}) does not match the threshold mode '${this.mode}': delete the state file or use the same --threshold-mode`);
    }
    this.seen = s.seen;
    if (this.mode === 'rolling') {
      const ring = Array.isArray(s.ring) ? s.ring : [];
      const head = s.head ?? ring.length % this.window;
      if (ring.length > this.window || !Number.isInteger(head) || head < 0 || head >= this.window || (ring.length < this.window && head !== ring.length % this.window)) {
        throw new DeepSentryError('DS_CONFIG', `checkpointed rolling threshold state has ${ring.length} scores for a window of ${this.window}: use the same --window or delete the state file`);
      }
      this.ring.fill(0);
      ring.forEach((v, i) => (this.ring[i] = v));
      this.count = ring.length;
      this.head = head;
      if (typeof s.sum === 'number' && typeof s.sumSq === 'number') {
        this.sum = s.sum;
        this.sumSq = s.sumSq;
      } else this.resum();
    } else if (this.mode === 'ewma') {
      this.mean = Number(s.mean ?? 0);
      this.variance = Number(s.variance ?? 0);
    }
  }
}

function describeMode(s: unknown): string {
  const m = (s as { mode?: unknown } | null)?.mode;
  return typeof m === 'string' ? `'${m}'` : 'missing';
}
