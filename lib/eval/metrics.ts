/**
 * Ranking and threshold metrics over (score, label) pairs: ROC-AUC, average precision (PR-AUC), and the
 * confusion matrix, precision, recall, F1 and F-beta at any threshold.
 *
 * Conventions (the same as scikit-learn's, so numbers can be compared with published ones):
 * - an item is predicted anomalous when `score >= threshold`;
 * - the sweep visits every distinct score (the real score range: no binning, no rounding), highest first, so
 *   items with equal scores always switch together;
 * - ROC-AUC is the trapezoidal area under the (FPR, TPR) points, which equals the probability that a random
 *   anomaly scores higher than a random normal item, ties counting one half;
 * - average precision is the step-wise sum AP = Σ_k (R_k − R_{k−1}) · P_k over the distinct thresholds
 *   (sklearn's `average_precision_score`, no interpolation);
 * - TPR is recall; precision with no predicted positives is 0 (sklearn's zero_division=0).
 */
import { DeepSentryError } from '../errors';

/** Counts of a binary decision against the labels (positive = anomalous). */
export interface ConfusionMatrix {
  /** anomalous items flagged */
  tp: number;
  /** normal items flagged (false alarms) */
  fp: number;
  /** normal items not flagged */
  tn: number;
  /** anomalous items missed */
  fn: number;
}

/** Rates derived from a confusion matrix. */
export interface Rates {
  precision: number;
  /** = TPR */
  recall: number;
  f1: number;
  /** F-beta with the evaluation's beta (recall weighted beta times as much as precision). */
  fBeta: number;
  /** false-positive rate: fp / (fp + tn) */
  fpr: number;
  accuracy: number;
}

/**
 * Every distinct score, highest first, with the counts of anomalous (`tp`) and normal (`fp`) items whose
 * score is >= it: the full threshold sweep in O(n log n).
 */
export interface Sweep {
  thresholds: Float64Array;
  tp: Float64Array;
  fp: Float64Array;
  /** number of anomalous items */
  positives: number;
  /** number of normal items */
  negatives: number;
}

/** Checks scores/labels agree in length and hold no NaN (a NaN score has no place in a ranking). */
function checkInputs(scores: ArrayLike<number>, labels: ArrayLike<number | boolean>, what: string): void {
  if (scores.length !== labels.length) {
    throw new DeepSentryError('DS_SHAPE_MISMATCH', `${what}: ${scores.length} scores but ${labels.length} labels`);
  }
  for (let i = 0; i < scores.length; i++) {
    if (Number.isNaN(scores[i])) throw new DeepSentryError('DS_INVALID_ARGUMENT', `${what}: score ${i} is NaN`);
  }
}

/** Builds the threshold sweep. `labels[i]` truthy = anomalous. */
export function sweep(scores: ArrayLike<number>, labels: ArrayLike<number | boolean>, what = 'sweep'): Sweep {
  checkInputs(scores, labels, what);
  let nPos = 0;
  for (let i = 0; i < labels.length; i++) if (labels[i]) nPos++;
  const nNeg = labels.length - nPos;
  // Sorting each class separately with the typed-array numeric sort, then merging, avoids an index array and
  // a comparator call per comparison.
  const pos = new Float64Array(nPos);
  const neg = new Float64Array(nNeg);
  for (let i = 0, p = 0, q = 0; i < scores.length; i++) {
    if (labels[i]) pos[p++] = scores[i]!;
    else neg[q++] = scores[i]!;
  }
  pos.sort();
  neg.sort();
  const thresholds: number[] = [];
  const tpOut: number[] = [];
  const fpOut: number[] = [];
  let i = nPos - 1;
  let j = nNeg - 1;
  let tp = 0;
  let fp = 0;
  while (i >= 0 || j >= 0) {
    const v = i < 0 ? neg[j]! : j < 0 ? pos[i]! : Math.max(pos[i]!, neg[j]!);
    while (i >= 0 && pos[i] === v) { tp++; i--; }
    while (j >= 0 && neg[j] === v) { fp++; j--; }
    thresholds.push(v);
    tpOut.push(tp);
    fpOut.push(fp);
  }
  return { thresholds: Float64Array.from(thresholds), tp: Float64Array.from(tpOut), fp: Float64Array.from(fpOut), positives: nPos, negatives: nNeg };
}

/** Area under the ROC curve, or null when one class is absent (the curve is undefined). */
export function rocAuc(s: Sweep): number | null {
  if (s.positives === 0 || s.negatives === 0) return null;
  let area = 0;
  let prevTp = 0;
  let prevFp = 0;
  for (let k = 0; k < s.thresholds.length; k++) {
    area += (s.fp[k]! - prevFp) * (s.tp[k]! + prevTp) / 2;
    prevTp = s.tp[k]!;
    prevFp = s.fp[k]!;
  }
  return area / (s.positives * s.negatives);
}

/** Average precision (step-wise PR-AUC), or null when there is no anomalous item. */
export function averagePrecision(s: Sweep): number | null {
  if (s.positives === 0) return null;
  let ap = 0;
  let prevTp = 0;
  for (let k = 0; k < s.thresholds.length; k++) {
    const tp = s.tp[k]!;
    if (tp > prevTp) ap += ((tp - prevTp) / s.positives) * (tp / (tp + s.fp[k]!));
    prevTp = tp;
  }
  return ap;
}

/** The confusion matrix of the rule `score >= threshold`, read off the sweep by binary search. */
export function confusionAt(s: Sweep, threshold: number): ConfusionMatrix {
  if (Number.isNaN(threshold)) throw new DeepSentryError('DS_INVALID_ARGUMENT', 'threshold is NaN');
  // thresholds are descending: find the last index k with thresholds[k] >= threshold.
  let lo = 0;
  let hi = s.thresholds.length; // answer in [lo-1, hi-1]
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (s.thresholds[mid]! >= threshold) lo = mid + 1;
    else hi = mid;
  }
  const k = lo - 1;
  const tp = k >= 0 ? s.tp[k]! : 0;
  const fp = k >= 0 ? s.fp[k]! : 0;
  return { tp, fp, tn: s.negatives - fp, fn: s.positives - tp };
}

/** The confusion matrix of explicit 0/1 predictions (e.g. the `anomaly` column the model wrote). */
export function confusionOf(predictions: ArrayLike<number | boolean>, labels: ArrayLike<number | boolean>, what = 'predictions'): ConfusionMatrix {
  if (predictions.length !== labels.length) {
    throw new DeepSentryError('DS_SHAPE_MISMATCH', `${what}: ${predictions.length} predictions but ${labels.length} labels`);
  }
  const c: ConfusionMatrix = { tp: 0, fp: 0, tn: 0, fn: 0 };
  for (let i = 0; i < labels.length; i++) {
    if (predictions[i]) {
      if (labels[i]) c.tp++;
      else c.fp++;
    } else if (labels[i]) c.fn++;
    else c.tn++;
  }
  return c;
}

/** F-beta from precision and recall; 0 when both are 0. */
export function fBetaScore(precision: number, recall: number, beta: number): number {
  const b2 = beta * beta;
  const d = b2 * precision + recall;
  return d === 0 ? 0 : ((1 + b2) * precision * recall) / d;
}

/** Precision, recall, F1, F-beta, FPR and accuracy of a confusion matrix. */
export function rates(c: ConfusionMatrix, beta: number): Rates {
  if (!(beta > 0) || !Number.isFinite(beta)) throw new DeepSentryError('DS_INVALID_ARGUMENT', `Expected a positive finite number for beta but received ${beta}`);
  const precision = c.tp + c.fp === 0 ? 0 : c.tp / (c.tp + c.fp);
  const recall = c.tp + c.fn === 0 ? 0 : c.tp / (c.tp + c.fn);
  const n = c.tp + c.fp + c.tn + c.fn;
  return {
    precision,
    recall,
    f1: fBetaScore(precision, recall, 1),
    fBeta: fBetaScore(precision, recall, beta),
    fpr: c.fp + c.tn === 0 ? 0 : c.fp / (c.fp + c.tn),
    accuracy: n === 0 ? 0 : (c.tp + c.tn) / n,
  };
}

/**
 * The threshold (one of the distinct scores) with the highest F1; among equal F1 the highest threshold
 * (fewest alarms). Null when there is no anomalous item (F1 is 0 everywhere).
 */
export function bestF1Threshold(s: Sweep): { threshold: number; confusion: ConfusionMatrix } | null {
  if (s.positives === 0 || s.thresholds.length === 0) return null;
  let best = -1;
  let bestF1 = -1;
  for (let k = 0; k < s.thresholds.length; k++) {
    const tp = s.tp[k]!;
    // F1 = 2tp / (2tp + fp + fn) with fn = P - tp
    const f1 = (2 * tp) / (tp + s.fp[k]! + s.positives);
    if (f1 > bestF1) {
      bestF1 = f1;
      best = k;
    }
  }
  return { threshold: s.thresholds[best]!, confusion: confusionAt(s, s.thresholds[best]!) };
}

/** Points of the ROC curve, (0,0) first, one per distinct threshold. */
export function rocCurve(s: Sweep): { fpr: Float64Array; tpr: Float64Array } {
  const n = s.thresholds.length;
  const fpr = new Float64Array(n + 1);
  const tpr = new Float64Array(n + 1);
  for (let k = 0; k < n; k++) {
    fpr[k + 1] = s.negatives === 0 ? 0 : s.fp[k]! / s.negatives;
    tpr[k + 1] = s.positives === 0 ? 0 : s.tp[k]! / s.positives;
  }
  return { fpr, tpr };
}

/** Points of the PR curve, one per distinct threshold, highest threshold first (recall ascending). */
export function prCurve(s: Sweep): { recall: Float64Array; precision: Float64Array } {
  const n = s.thresholds.length;
  const recall = new Float64Array(n);
  const precision = new Float64Array(n);
  for (let k = 0; k < n; k++) {
    recall[k] = s.positives === 0 ? 0 : s.tp[k]! / s.positives;
    precision[k] = s.tp[k]! / (s.tp[k]! + s.fp[k]!);
  }
  return { recall, precision };
}
