/**
 * Thresholds fitted on unlabelled held-back scores (no labels: what a user without labels gets), saved with
 * the model. `percentile` takes the p-th percentile (linear interpolation); `mean-std` takes mean + k·σ;
 * `mad` takes median + k·1.4826·MAD (a robust σ: a few extreme scores in the held-back data barely move it);
 * `spot` fits a generalized Pareto tail to the scores above their `level` quantile and takes the score a normal
 * one exceeds with probability `risk` (lib/models/spot.ts), keeping the fit so the live monitor's DSPOT starts
 * from it.
 *
 * Any of them can be lifted into a gap (`gap: true`): held-back scores of unlabelled training data are a normal
 * bulk plus the few anomalous sessions the log contains, and between them there is often a wide empty band. When
 * the widest band between consecutive scores in the top GAP_FROM share is at least GAP_MIN_WIDTH σ wide, leaves
 * at least GAP_MIN_ABOVE scores above it, and the method's value lies below GAP_POSITION of the way across it,
 * the threshold is that point: the scores below the band are the bulk's tail, not the anomalies (see fitThreshold).
 */
import { DeepSentryError } from '../errors';
import { spotCalibrate, SPOT_MIN_PEAKS, type SpotState } from './spot';

export type ThresholdSpec = (
  | { method: 'percentile'; percentile: number }
  | { method: 'mean-std'; k: number }
  | { method: 'mad'; k: number }
  | { method: 'spot'; risk: number; level: number }
) & {
  /** lift the value a third of the way into the widest empty band of the held-back tail (see GAP_POSITION) */
  gap?: boolean;
};

/** The gap is looked for among the scores above this quantile of the held-back ones. */
export const GAP_FROM = 0.9;
/**
 * A band narrower than this many σ of the held-back scores is no gap: in a tail without a separate group of
 * anomalies the widest band between neighbours is a fraction of σ, except among the top few scores (GAP_MIN_ABOVE).
 */
export const GAP_MIN_WIDTH = 2;
/** At least this many held-back scores must lie above the gap: one or two extreme scores are no group. */
export const GAP_MIN_ABOVE = 3;
/**
 * Where in the band the threshold goes, from its lower edge (0) to its upper one (1). Nearer the bulk than the
 * middle because the two sides do not spread alike: the normal bulk's tail is tight, while the anomalies spread
 * over many nats, so an anomaly of new data falls into the band more often than a normal session does. Measured
 * (bench/results/accuracy-gap.md): at ½ some models miss an anomaly that scores in the band's upper half.
 */
export const GAP_POSITION = 1 / 3;

/** The widest empty band of a threshold lift (FittedThreshold.gap). */
export interface ThresholdGap {
  /** the held-back scores either side of the band */
  lower: number;
  upper: number;
  /** how many held-back scores lie above it */
  above: number;
  /** the method's own value, before the lift */
  base: number;
}

/**
 * Below this many held-back scores a fitted threshold is reported as unreliable (a warning, and
 * FittedThreshold.warning in model.json): the tail of a few dozen scores says little about the next thousand.
 */
export const MIN_THRESHOLD_SCORES = 200;

export interface FittedThreshold {
  method: ThresholdSpec['method'];
  /** the parameter: percentile, k, or SPOT's risk q */
  param: number;
  /** scores ≥ value are anomalies */
  value: number;
  /** how many scores it was fitted on */
  fittedOn: number;
  stats: { mean: number; std: number; median: number; min: number; max: number };
  /** `spot`: the calibration (level, t, peaks, GPD γ and σ) */
  spot?: SpotState;
  /** present when the value was lifted into a gap of the held-back scores (ThresholdSpec.gap) */
  gap?: ThresholdGap;
  /** why this threshold may not hold on new data (too few held-back scores, too few peaks); absent when fine */
  warning?: string;
}

/** p-th percentile (0…100) of sorted values, linear interpolation between ranks. */
export function percentile(sorted: ArrayLike<number>, p: number): number {
  const n = sorted.length;
  if (n === 0) return NaN;
  const r = (p / 100) * (n - 1);
  const lo = Math.floor(r);
  const hi = Math.min(n - 1, lo + 1);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (r - lo);
}

export function fitThreshold(scores: ArrayLike<number>, spec: ThresholdSpec): FittedThreshold {
  const n = scores.length;
  if (n === 0) throw new DeepSentryError('DS_INVALID_ARGUMENT', 'cannot fit a threshold on zero scores (no held-back data)');
  const sorted = Float64Array.from(scores).sort();
  for (let i = 0; i < n; i++) if (!Number.isFinite(sorted[i])) throw new DeepSentryError('DS_INVALID_ARGUMENT', `threshold: score ${sorted[i]} is not finite`);
  let mean = 0;
  for (let i = 0; i < n; i++) mean += sorted[i];
  mean /= n;
  let v = 0;
  for (let i = 0; i < n; i++) v += (sorted[i] - mean) ** 2;
  const std = Math.sqrt(v / n);
  const median = percentile(sorted, 50);
  let value: number;
  let param: number;
  let spot: SpotState | undefined;
  if (spec.method === 'percentile') {
    param = spec.percentile;
    if (!(param >= 0 && param <= 100)) throw new DeepSentryError('DS_INVALID_ARGUMENT', `Expected a number in [0, 100] for percentile but received ${String(param)}`);
    value = percentile(sorted, param);
  } else if (spec.method === 'mean-std' || spec.method === 'mad') {
    param = spec.k;
    if (!(typeof param === 'number' && Number.isFinite(param))) throw new DeepSentryError('DS_INVALID_ARGUMENT', `Expected a finite number for k but received ${String(param)}`);
    if (spec.method === 'mean-std') value = mean + param * std;
    else {
      const dev = Float64Array.from(sorted, (x) => Math.abs(x - median)).sort();
      value = median + param * 1.4826 * percentile(dev, 50);
    }
  } else if (spec.method === 'spot') {
    param = spec.risk;
    spot = spotCalibrate(sorted, spec.risk, spec.level);
    value = spot.z;
  } else {
    throw new DeepSentryError('DS_INVALID_ARGUMENT', `Expected percentile, mean-std, mad or spot for threshold method but received ${String((spec as { method: unknown }).method)}`);
  }
  const gap = spec.gap === true ? widestTailGap(sorted, std) : null;
  const inGap = gap === null ? -Infinity : gap.lower + GAP_POSITION * (gap.upper - gap.lower);
  const lifted = gap !== null && inGap > value;
  const out: FittedThreshold = {
    method: spec.method,
    param,
    value: lifted ? inGap : value,
    fittedOn: n,
    stats: { mean, std, median, min: sorted[0], max: sorted[n - 1] },
  };
  if (spot) out.spot = spot;
  if (lifted) out.gap = { ...gap, base: value };
  const warnings: string[] = [];
  if (n < MIN_THRESHOLD_SCORES) warnings.push(`the threshold was fitted on ${n} held-back sessions (fewer than ${MIN_THRESHOLD_SCORES}): it may not hold on new data; train on more sessions or raise threshold.holdout`);
  if (spot && spot.peaks.length < SPOT_MIN_PEAKS) warnings.push(`only ${spot.peaks.length} held-back scores lie above the SPOT level (fewer than ${SPOT_MIN_PEAKS}): no tail could be fitted, the threshold is the largest held-back score`);
  if (warnings.length > 0) out.warning = warnings.join('; ');
  return out;
}

/**
 * The widest band between neighbouring scores (ascending `sorted`) above their GAP_FROM quantile with at least
 * GAP_MIN_ABOVE scores above it, or null when none is GAP_MIN_WIDTH·σ wide. Why a gap and not a higher k: on
 * hdfs-dev's held-back scores the bulk ends near 7–9 and the anomalies start at 14–15 (README "Accuracy"); mean
 * + 3σ lands in that band on most models, but a group of normal sessions in the bulk's tail (a message whose rate
 * changed, e.g. `Verification succeeded`) can sit above it, and a larger k would cut into the anomalies of
 * models whose band is lower.
 */
function widestTailGap(sorted: Float64Array, std: number): Omit<ThresholdGap, 'base'> | null {
  const n = sorted.length;
  let best = -1;
  let at = -1;
  for (let i = Math.floor(GAP_FROM * n); i < n - GAP_MIN_ABOVE; i++) {
    const w = sorted[i + 1] - sorted[i];
    if (w > best) {
      best = w;
      at = i;
    }
  }
  if (at < 0 || !(best > 0) || best < GAP_MIN_WIDTH * std) return null;
  return { lower: sorted[at], upper: sorted[at + 1], above: n - 1 - at };
}
