/**
 * A count-based model of message sequences inside sessions, trained on the same unlabelled sessions as the
 * detector: the probability of a message (or the end event) given the one or two messages before it,
 * smoothed hierarchically (Dirichlet back-off: trigram → bigram → unigram → uniform over the known messages
 * plus one unseen slot). Its surprise −ln p is added to the detector's score of the same line.
 *
 * Opt-in (`scoring.sequence`), measured on hdfs-dev trained on the first half of the blocks: before the
 * detector had its `surprise` score, the detector alone reached session ROC-AUC 0.57–0.75 and this model
 * lifted the sum to 0.957; with the detector's `surprise` score (0.9956 alone) adding it lowers the AUC to
 * 0.958, so the default leaves it out. It stays as a cheap, exact second opinion for logs where the detector
 * is undertrained (tiny data).
 */
import { DeepSentryError } from '../errors';

/** Message ids as in lib/logs/windows.ts: 0 = padding (start), 1 = end of session, ≥ 2 = messages. */
const START = 0;
const END = 1;

/** The JSON form saved in model.json. */
export interface SequenceModelJson {
  kind: 'backoff-3gram';
  /** Dirichlet concentration of each back-off level */
  beta: number;
  /** number of distinct outcomes the uniform floor spreads over (known messages + end + one unseen slot) */
  outcomes: number;
  /** [key, count] pairs: "x" unigram, "a|x" bigram, "a,b|x" trigram; "a|" / "a,b|" context totals */
  counts: [string, number][];
  total: number;
}

export class SequenceModel {
  private counts = new Map<string, number>();
  private total = 0;
  private outcomes = 2;
  constructor(readonly beta = 1) {}

  private inc(k: string): void {
    this.counts.set(k, (this.counts.get(k) ?? 0) + 1);
  }

  /** Counts every position of every session (and its end event when `ended[i]`). */
  fit(sessions: readonly ArrayLike<number>[], ended: readonly boolean[], knownMessages: number): this {
    this.counts.clear();
    this.total = 0;
    this.outcomes = knownMessages + 2;
    sessions.forEach((s, si) => {
      const n = s.length + (ended[si] ? 1 : 0);
      let a = START;
      let b = START;
      for (let t = 0; t < n; t++) {
        const x = t < s.length ? s[t] : END;
        this.inc(`${x}`);
        this.inc(`${b}|${x}`);
        this.inc(`${b}|`);
        this.inc(`${a},${b}|${x}`);
        this.inc(`${a},${b}|`);
        this.total++;
        a = b;
        b = x;
      }
    });
    return this;
  }

  /** −ln p(x | a, b) (a, b: the two previous ids, START when before the session's first line). */
  surprise(a: number, b: number, x: number): number {
    const c = this.counts;
    const beta = this.beta;
    const p0 = ((c.get(`${x}`) ?? 0) + 1) / (this.total + this.outcomes);
    const p1 = ((c.get(`${b}|${x}`) ?? 0) + beta * p0) / ((c.get(`${b}|`) ?? 0) + beta);
    const p2 = ((c.get(`${a},${b}|${x}`) ?? 0) + beta * p1) / ((c.get(`${a},${b}|`) ?? 0) + beta);
    return -Math.log(p2);
  }

  /**
   * −ln of the message's share of all training lines (its rarity, context-free): a message a few lines in a
   * hundred thousand carry is suspicious wherever it appears, even when the sessions it appeared in during
   * training (unlabelled, so some were anomalous) taught the trigram its usual context.
   */
  rarity(x: number): number {
    return -Math.log(((this.counts.get(`${x}`) ?? 0) + 1) / (this.total + this.outcomes));
  }

  /** Surprise (+ rarity) of each of `count` windows (W ids each; the last is the target, the two before it its context). */
  scoreWindows(windows: Int32Array, count: number, W: number, rarity: boolean): Float32Array {
    const out = new Float32Array(count);
    for (let i = 0; i < count; i++) {
      const o = i * W;
      const x = windows[o + W - 1];
      out[i] = this.surprise(W >= 3 ? windows[o + W - 3] : START, windows[o + W - 2], x) + (rarity ? this.rarity(x) : 0);
    }
    return out;
  }

  toJSON(): SequenceModelJson {
    return { kind: 'backoff-3gram', beta: this.beta, outcomes: this.outcomes, counts: [...this.counts], total: this.total };
  }

  static fromJSON(j: unknown, source: string): SequenceModel {
    const o = j as Partial<SequenceModelJson> | null;
    if (!o || o.kind !== 'backoff-3gram' || !Array.isArray(o.counts) || typeof o.total !== 'number' || typeof o.beta !== 'number' || typeof o.outcomes !== 'number') {
      throw new DeepSentryError('DS_MODEL', `${source}: the sequence model (extra.sequence) is missing or malformed`);
    }
    const m = new SequenceModel(o.beta);
    m.counts = new Map(o.counts);
    m.total = o.total;
    m.outcomes = o.outcomes;
    return m;
  }
}
