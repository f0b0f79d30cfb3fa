/**
 * Thresholds fitted on unlabelled held-back scores (no labels: what a user without labels gets), saved with
 * the model. `percentile` takes the p-th percentile (linear interpolation); `mean-std` takes mean + k·σ;
 * `mad` takes median + k·1.4826·MAD (a robust σ: a few extreme scores in the held-back data barely move it);
 * `spot` fits a generalized Pareto tail to the scores above their `level` quantile and takes the score a normal
 * one exceeds with probability `risk` (lib/models/spot.ts), keeping the fit so the live monitor's DSPOT starts
 * from it.
 */
import { DeepSentryError } from '../errors';
import { spotCalibrate, SPOT_MIN_PEAKS, type SpotState } from './spot';

export type ThresholdSpec =
  | { method: 'percentile'; percentile: number }
  | { method: 'mean-std'; k: number }
  | { method: 'mad'; k: number }
  | { method: 'spot'; risk: number; level: number };

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
  const out: FittedThreshold = { method: spec.method, param, value, fittedOn: n, stats: { mean, std, median, min: sorted[0], max: sorted[n - 1] } };
  if (spot) out.spot = spot;
  const warnings: string[] = [];
  if (n < MIN_THRESHOLD_SCORES) warnings.push(`the threshold was fitted on ${n} held-back sessions (fewer than ${MIN_THRESHOLD_SCORES}): it may not hold on new data; train on more sessions or raise threshold.holdout`);
  if (spot && spot.peaks.length < SPOT_MIN_PEAKS) warnings.push(`only ${spot.peaks.length} held-back scores lie above the SPOT level (fewer than ${SPOT_MIN_PEAKS}): no tail could be fitted, the threshold is the largest held-back score`);
  if (warnings.length > 0) out.warning = warnings.join('; ');
  return out;
}
