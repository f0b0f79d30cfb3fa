/**
 * Peaks over threshold from extreme value theory (SPOT and its drifting form DSPOT: Siffer, Fouque, Termier,
 * Largouët, "Anomaly detection in streams with extreme value theory", KDD 2017).
 *
 * The excesses Y = X − t of scores over a high initial level t (the `level` quantile of the calibration scores)
 * follow, for large t, a generalized Pareto distribution GPD(γ, σ) (Pickands–Balkema–de Haan). Its parameters
 * are fitted by maximum likelihood with Grimshaw's reduction: the likelihood's stationary points are the roots
 * x of u(x)·v(x) = 1 with u(x) = mean(1 / (1 + x·Y)), v(x) = 1 + mean(ln(1 + x·Y)); each root gives γ = v(x) − 1,
 * σ = γ / x, and the root (or the exponential case γ = 0, σ = mean Y) of highest log-likelihood wins. The
 * threshold for a risk q (the probability that a normal score exceeds it) is then
 *
 *   z_q = t + σ/γ · ((q·n / N_t)^(−γ) − 1)      (γ ≠ 0),   z_q = t − σ·ln(q·n / N_t)   (γ = 0)
 *
 * with n calibration scores of which N_t exceed t. Roots are bracketed on a grid and refined by bisection (no
 * random starts: the fit is deterministic).
 */
import { DeepSentryError } from '../errors';

/** A fitted GPD tail. */
export interface GpdFit {
  /** shape γ (> 0 heavy tail, 0 exponential, < 0 bounded) */
  gamma: number;
  /** scale σ > 0 */
  sigma: number;
  /** log-likelihood of the peaks under the fit */
  logLikelihood: number;
}

/** Log-likelihood of excesses under GPD(γ, σ); −Infinity outside the support. */
export function gpdLogLikelihood(peaks: ArrayLike<number>, gamma: number, sigma: number): number {
  const n = peaks.length;
  if (!(sigma > 0)) return -Infinity;
  if (gamma === 0) {
    let s = 0;
    for (let i = 0; i < n; i++) s += peaks[i];
    return -n * Math.log(sigma) - s / sigma;
  }
  const tau = gamma / sigma;
  let s = 0;
  for (let i = 0; i < n; i++) {
    const a = 1 + tau * peaks[i];
    if (!(a > 0)) return -Infinity;
    s += Math.log(a);
  }
  return -n * Math.log(sigma) - (1 + 1 / gamma) * s;
}

/** Grimshaw's w(x) = u(x)·v(x) − 1 (NaN where 1 + x·Y ≤ 0 for some peak). */
function grimshawW(peaks: ArrayLike<number>, x: number): number {
  const n = peaks.length;
  let su = 0;
  let sv = 0;
  for (let i = 0; i < n; i++) {
    const s = 1 + x * peaks[i];
    if (!(s > 0)) return NaN;
    su += 1 / s;
    sv += Math.log(s);
  }
  return (su / n) * (1 + sv / n) - 1;
}

/** Roots of w between consecutive points of an ascending grid: sign changes, each refined by bisection. */
function rootsOnGrid(peaks: ArrayLike<number>, grid: readonly number[]): number[] {
  const out: number[] = [];
  let x0 = grid[0];
  let w0 = grimshawW(peaks, x0);
  for (let k = 1; k < grid.length; k++) {
    const x1 = grid[k];
    const w1 = grimshawW(peaks, x1);
    if (Number.isFinite(w0) && Number.isFinite(w1) && w0 !== 0 && w1 !== 0 && Math.sign(w0) !== Math.sign(w1)) {
      let lo = x0;
      let hi = x1;
      let wl = w0;
      for (let it = 0; it < 200 && hi - lo > 1e-14 * Math.max(Math.abs(lo), Math.abs(hi)); it++) {
        const m = (lo + hi) / 2;
        const wm = grimshawW(peaks, m);
        if (wm === 0) {
          lo = hi = m;
          break;
        }
        if (Math.sign(wm) === Math.sign(wl)) {
          lo = m;
          wl = wm;
        } else hi = m;
      }
      out.push((lo + hi) / 2);
    }
    x0 = x1;
    w0 = w1;
  }
  return out;
}

/** `points` values from lo to hi (both > 0), evenly spaced on a log scale. */
function logSpace(lo: number, hi: number, points: number): number[] {
  const a = Math.log(lo);
  const b = Math.log(hi);
  return Array.from({ length: points }, (_, i) => Math.exp(a + ((b - a) * i) / (points - 1)));
}

/**
 * Maximum-likelihood GPD fit of positive excesses (Grimshaw's method). The roots of w lie in (−1/max Y, 0)
 * (γ < 0 side) and (0, 2(Ȳ − min Y)/min Y²] (Grimshaw's bound); both are scanned on grids that are
 * logarithmic in the distance to 0 (and, on the left, to −1/max Y), where the roots crowd.
 */
export function fitGpd(peaks: ArrayLike<number>): GpdFit {
  const n = peaks.length;
  if (n === 0) throw new DeepSentryError('DS_INVALID_ARGUMENT', 'GPD fit: no peaks');
  let mn = Infinity;
  let mx = -Infinity;
  let mean = 0;
  for (let i = 0; i < n; i++) {
    const y = peaks[i];
    if (!(y > 0) || !Number.isFinite(y)) throw new DeepSentryError('DS_INVALID_ARGUMENT', `GPD fit: peak ${i} is ${y}, expected a positive finite excess`);
    mn = Math.min(mn, y);
    mx = Math.max(mx, y);
    mean += y;
  }
  mean /= n;
  let best: GpdFit = { gamma: 0, sigma: mean, logLikelihood: gpdLogLikelihood(peaks, 0, mean) };
  if (n < 2 || mx - mn <= 1e-12 * mx) return best;
  const left = 1 / mx;
  const near0 = logSpace(1e-10, 0.5, 300);
  const leftGrid = [...near0.map((s) => -left * (1 - s)), ...near0.slice().reverse().map((s) => -left * s)];
  const c = (2 * (mean - mn)) / (mn * mn);
  const candidates = [...rootsOnGrid(peaks, leftGrid), ...rootsOnGrid(peaks, logSpace(c * 1e-12, c, 600))];
  for (const x of candidates) {
    if (x === 0) continue;
    let sv = 0;
    for (let i = 0; i < n; i++) sv += Math.log(1 + x * peaks[i]);
    const gamma = sv / n;
    const sigma = gamma / x;
    const ll = gpdLogLikelihood(peaks, gamma, sigma);
    if (sigma > 0 && ll > best.logLikelihood) best = { gamma, sigma, logLikelihood: ll };
  }
  return best;
}

/** The GPD quantile: the score a normal one exceeds with probability `risk`, given t, n and N_t. */
export function spotQuantile(t: number, fit: Pick<GpdFit, 'gamma' | 'sigma'>, risk: number, n: number, nPeaks: number): number {
  const r = (risk * n) / nPeaks;
  if (Math.abs(fit.gamma) < 1e-12) return t - fit.sigma * Math.log(r);
  return t + (fit.sigma / fit.gamma) * (Math.pow(r, -fit.gamma) - 1);
}

/** What a SPOT calibration keeps (saved in model.json so the live DSPOT starts from the same tail). */
export interface SpotState {
  /** risk q */
  risk: number;
  /** quantile (0…1) of the calibration scores used as the initial level t */
  level: number;
  /** the initial level t */
  t: number;
  /** number of scores observed (calibration n, grows in streaming) */
  n: number;
  /** the excesses over t (sorted ascending in a calibration; append order in streaming) */
  peaks: number[];
  gamma: number;
  sigma: number;
  /** the threshold z_q */
  z: number;
}

/** Fewer peaks than this make a GPD fit meaningless; SPOT then falls back to the largest calibration score. */
export const SPOT_MIN_PEAKS = 5;

/**
 * SPOT calibration on a batch of scores: t = the `level` quantile (the smallest score with at least level·n
 * scores at or below it... as the reference implementation, np.sort(data)[int(level·n)]), peaks = scores > t
 * minus t, GPD fit, z_q. With fewer than SPOT_MIN_PEAKS peaks the threshold is the largest score (the caller
 * says the fit is unreliable).
 */
export function spotCalibrate(scores: ArrayLike<number>, risk: number, level: number): SpotState {
  if (!(risk > 0 && risk < 1)) throw new DeepSentryError('DS_INVALID_ARGUMENT', `Expected a number in (0, 1) for the SPOT risk q but received ${String(risk)}`);
  if (!(level > 0 && level < 1)) throw new DeepSentryError('DS_INVALID_ARGUMENT', `Expected a number in (0, 1) for the SPOT level but received ${String(level)}`);
  const n = scores.length;
  if (n === 0) throw new DeepSentryError('DS_INVALID_ARGUMENT', 'SPOT: no calibration scores');
  const sorted = Float64Array.from(scores).sort();
  const t = sorted[Math.min(n - 1, Math.floor(level * n))];
  const peaks: number[] = [];
  for (let i = 0; i < n; i++) if (sorted[i] > t) peaks.push(sorted[i] - t);
  if (peaks.length < SPOT_MIN_PEAKS) return { risk, level, t, n, peaks, gamma: 0, sigma: 0, z: sorted[n - 1] };
  const fit = fitGpd(peaks);
  return { risk, level, t, n, peaks, gamma: fit.gamma, sigma: fit.sigma, z: spotQuantile(t, fit, risk, n, peaks.length) };
}
