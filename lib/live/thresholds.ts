/**
 * Live thresholds. A score is anomalous when it exceeds the current threshold. Four modes, chosen by flag:
 *
 * - `fixed`: the threshold saved with the model (fitted on held-back data) and nothing else.
 * - `rolling`: mean + k·σ over the last `window` scores, never below the saved threshold (the floor).
 * - `ewma`: exponentially weighted mean + k·σ (smoothing `alpha`), never below the floor.
 * - `dspot`: peaks over threshold with drift (DSPOT, lib/models/spot.ts): the score minus the mean of the last
 *   `depth` normal scores is compared with a generalized Pareto tail quantile at risk q; scores above the
 *   tail's initial level refit the tail. It starts from the model's saved SPOT fit when the model has one
 *   (`spot`, with the same risk and level), else it calibrates on the first `warmup` scores. As in Siffer et al.
 *   (KDD 2017), flagged scores update neither the tail nor the drift mean (the tail would otherwise learn the
 *   anomalies); never below the floor.
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
import { fitGpd, spotCalibrate, spotQuantile, SPOT_MIN_PEAKS, type SpotState } from '../models/spot';

export type ThresholdMode = 'fixed' | 'rolling' | 'ewma' | 'dspot';

/** The most peaks DSPOT keeps (the oldest go first, n shrinks in proportion): bounded memory and refit cost. */
export const DSPOT_MAX_PEAKS = 1000;

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
  /** `dspot`: risk q (default: the saved fit's, else 1e-3) */
  risk?: number;
  /** `dspot`: quantile of the calibration scores that starts the tail (default: the saved fit's, else 0.98) */
  level?: number;
  /** `dspot`: scores in the drift mean (default 10) */
  depth?: number;
  /** `dspot`: the model's SPOT calibration and the mean of the scores it was fitted on (no warm-up then) */
  spot?: { state: SpotState; mean: number };
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
  // dspot: the drift window, the calibration buffer (warm-up), the tail relative to the drift mean
  drift?: number[];
  calibration?: number[];
  tail?: { t: number; n: number; peaks: number[]; gamma: number; sigma: number; z: number; fittedPeaks: number } | null;
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
  // dspot
  readonly risk: number;
  readonly level: number;
  readonly depth: number;
  private drift: number[] = [];
  private calibration: number[] = [];
  private tail: NonNullable<ThresholdSnapshot['tail']> | null = null;

  constructor(opts: ThresholdOptions) {
    if (opts.mode !== 'fixed' && opts.mode !== 'rolling' && opts.mode !== 'ewma' && opts.mode !== 'dspot') {
      throw invalidParameterError('threshold mode', "'fixed', 'rolling', 'ewma' or 'dspot'", opts.mode);
    }
    this.mode = opts.mode;
    this.floor = opts.floor === undefined ? undefined : checkFinite('threshold floor', opts.floor, -Number.MAX_VALUE, Number.MAX_VALUE);
    this.k = opts.k === undefined ? 3 : checkFinite('threshold k', opts.k, 0, 1e6);
    const w = opts.window ?? 1000;
    if (!Number.isInteger(w) || w < 2 || w > 10_000_000) throw invalidParameterError('threshold window', 'an integer 2..10000000', w);
    this.window = w;
    this.alpha = opts.alpha === undefined ? 0.01 : checkFinite('threshold alpha', opts.alpha, 0, 1, false);
    this.risk = checkFinite('threshold risk', opts.risk ?? opts.spot?.state.risk ?? 1e-3, 0, 1, false);
    this.level = checkFinite('threshold level', opts.level ?? opts.spot?.state.level ?? 0.98, 0, 1, false);
    const depth = opts.depth ?? 10;
    if (!Number.isInteger(depth) || depth < 1 || depth > 1_000_000) throw invalidParameterError('threshold depth', 'an integer 1..1000000', depth);
    this.depth = depth;
    const warm = opts.spot && this.mode === 'dspot' ? 0 : (opts.warmup ?? (this.mode === 'ewma' ? Math.ceil(2 / this.alpha) : this.window));
    if (!Number.isInteger(warm) || warm < 0) throw invalidParameterError('threshold warmup', 'a non-negative integer', warm);
    this.warmup = warm;
    if (this.mode === 'fixed' && this.floor === undefined) {
      throw new DeepSentryError('DS_CONFIG', "threshold mode 'fixed' needs a saved threshold (the model has none): use threshold.mode 'rolling' or 'ewma', or give threshold.floor");
    }
    this.ring = new Float64Array(this.mode === 'rolling' ? this.window : 0);
    if (this.mode === 'dspot' && opts.spot) {
      // The saved fit was made on the raw held-back scores: relative to their mean, its tail is the same tail.
      const { state, mean } = opts.spot;
      checkFinite('saved SPOT mean', mean, -Number.MAX_VALUE, Number.MAX_VALUE);
      this.drift = new Array<number>(this.depth).fill(mean);
      this.tail = { t: state.t - mean, n: state.n, peaks: state.peaks.slice(-DSPOT_MAX_PEAKS), gamma: state.gamma, sigma: state.sigma, z: state.z - mean, fittedPeaks: state.peaks.length };
    }
  }

  private driftMean(): number {
    let s = 0;
    for (const v of this.drift) s += v;
    return this.drift.length > 0 ? s / this.drift.length : 0;
  }

  /** DSPOT: the tail's threshold z (relative to the drift mean) refitted from its peaks. */
  private refit(): void {
    const tl = this.tail as NonNullable<ThresholdSnapshot['tail']>;
    tl.fittedPeaks = tl.peaks.length;
    if (tl.peaks.length < SPOT_MIN_PEAKS) return;
    const f = fitGpd(tl.peaks);
    tl.gamma = f.gamma;
    tl.sigma = f.sigma;
    tl.z = spotQuantile(tl.t, f, this.risk, tl.n, tl.peaks.length);
  }

  /** DSPOT after warm-up: calibrates on the buffered scores minus the mean of the `depth` before each. */
  private calibrate(): void {
    const xs = this.calibration;
    const d = Math.min(this.depth, Math.max(1, xs.length - 1));
    const rel: number[] = [];
    let s = 0;
    for (let i = 0; i < xs.length; i++) {
      if (i >= d) rel.push(xs[i] - s / d);
      s += xs[i];
      if (i >= d) s -= xs[i - d];
    }
    const st = spotCalibrate(rel.length > 0 ? rel : [0], this.risk, this.level);
    this.tail = { t: st.t, n: st.n, peaks: st.peaks.slice(-DSPOT_MAX_PEAKS), gamma: st.gamma, sigma: st.sigma, z: st.z, fittedPeaks: st.peaks.length };
    this.drift = xs.slice(-this.depth);
    this.calibration = [];
  }

  private pushDspot(x: number): void {
    if (this.tail === null) {
      this.calibration.push(x);
      if (this.seen >= this.warmup) this.calibrate();
      return;
    }
    const tl = this.tail;
    const rel = x - this.driftMean();
    if (rel > tl.z) return; // flagged: neither the tail nor the drift mean learns it
    tl.n++;
    if (rel > tl.t) {
      tl.peaks.push(rel - tl.t);
      if (tl.peaks.length > DSPOT_MAX_PEAKS) {
        tl.peaks.shift();
        tl.n = Math.max(tl.peaks.length, tl.n - tl.n / (DSPOT_MAX_PEAKS + 1));
      }
      // Refit when the peaks grew by 5 % since the last fit (a refit is O(peaks · grid)).
      if (tl.peaks.length < SPOT_MIN_PEAKS || Math.abs(tl.peaks.length - tl.fittedPeaks) >= Math.max(1, 0.05 * tl.fittedPeaks) || tl.peaks.length === DSPOT_MAX_PEAKS) this.refit();
    }
    this.drift.push(x);
    if (this.drift.length > this.depth) this.drift.shift();
  }

  /** True while an adaptive threshold is still warming up (only the floor applies). */
  get warmingUp(): boolean {
    return this.mode !== 'fixed' && this.seen < this.warmup;
  }

  /** The threshold that applies to the next score (Infinity when nothing can be flagged yet). */
  current(): number {
    const floor = this.floor ?? -Infinity;
    if (this.mode === 'fixed') return floor;
    if (this.mode !== 'dspot' && (this.seen < this.warmup || this.seen === 0)) return this.floor ?? Infinity;
    let adaptive: number;
    if (this.mode === 'dspot') {
      if (this.tail === null) return this.floor ?? Infinity;
      adaptive = this.driftMean() + this.tail.z;
    } else if (this.mode === 'rolling') {
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
    else if (this.mode === 'dspot') this.pushDspot(score);
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
    } else if (this.mode === 'dspot') {
      s.drift = this.drift.slice();
      s.calibration = this.calibration.slice();
      s.tail = this.tail ? { ...this.tail, peaks: this.tail.peaks.slice() } : null;
    }
    return s;
  }

  restore(s: ThresholdSnapshot): void {
    if (!s || s.mode !== this.mode || !Number.isInteger(s.seen) || s.seen < 0) {
      throw new DeepSentryError('DS_CONFIG', `checkpointed threshold state (mode ${describeMode(s)}) does not match the threshold mode '${this.mode}': delete the state file or use the same threshold.mode`);
    }
    this.seen = s.seen;
    if (this.mode === 'rolling') {
      const ring = Array.isArray(s.ring) ? s.ring : [];
      const head = s.head ?? ring.length % this.window;
      if (ring.length > this.window || !Number.isInteger(head) || head < 0 || head >= this.window || (ring.length < this.window && head !== ring.length % this.window)) {
        throw new DeepSentryError('DS_CONFIG', `checkpointed rolling threshold state has ${ring.length} scores for a window of ${this.window}: use the same threshold.window or delete the state file`);
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
    } else if (this.mode === 'dspot') {
      const nums = (a: unknown) => Array.isArray(a) && a.every((v) => typeof v === 'number' && Number.isFinite(v));
      const tl = s.tail;
      if (!nums(s.drift) || !nums(s.calibration) || (tl !== null && tl !== undefined && (!nums(tl.peaks) || ![tl.t, tl.n, tl.gamma, tl.sigma, tl.z, tl.fittedPeaks].every((v) => typeof v === 'number' && Number.isFinite(v))))) {
        throw new DeepSentryError('DS_CONFIG', 'checkpointed dspot threshold state is malformed: delete the state file');
      }
      this.drift = (s.drift as number[]).slice(-this.depth);
      this.calibration = (s.calibration as number[]).slice();
      this.tail = tl ? { ...tl, peaks: tl.peaks.slice() } : null;
    }
  }
}

function describeMode(s: unknown): string {
  const m = (s as { mode?: unknown } | null)?.mode;
  return typeof m === 'string' ? `'${m}'` : 'missing';
}
