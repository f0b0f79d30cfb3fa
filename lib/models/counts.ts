/**
 * Count relations inside a session (Invariants Mining, Lou et al. 2010; LogAnomaly's quantitative patterns),
 * learnt without labels: for two messages i and j that occur together in enough training sessions, the linear
 * relation a·count(i) = b·count(j) with small integers a, b that the most of those sessions satisfy (an HDFS block
 * allocated once is received, and stored, as many times as it has replicas). A relation is kept when at least
 * `confidence` of the training sessions holding i or j satisfy it — unlabelled training data holds anomalies, so
 * a relation need not hold everywhere, and how often it failed in training says how surprising a failure is.
 *
 * A session's count surprise is the largest −ln P(violation) over the relations it violates, P estimated as
 * (violations + 1) / (sessions + 2) in training (0 when it violates none), plus `breadth`·ln n for the n
 * relations it violates: in nats, like the sequence scores it is added to. Breaking many relations at once is
 * more surprising than breaking one, but the relations are far from independent (one missing replica breaks
 * every relation its messages take part in), so adding their surprises up overstates it; the pipeline's
 * scoring.countBreadth, ½ by default, was chosen by the accuracy protocols (lib/pipeline/config.ts).
 *
 * The window-by-window view of the detector cannot see these relations: each window holds a few lines, and a
 * block missing one of its three replicas reads, window by window, like a normal one.
 *
 * What is counted together: not a whole key (counted per key, the relations between writing and deleting a
 * block fail for every block still stored when the log ends: measured on hdfs-dev trained on the earlier half,
 * ROC-AUC 0.54 per key, 0.80 per segment), and not each segment the idle timeout cuts either (a write whose
 * last line comes a few minutes after the rest is cut in two, and its first part reads as a write missing a
 * replica), but a key's segments chained while the gap between them is shorter than a count horizon
 * (countHorizon; the pipeline's scoring.countTimeoutMs, an hour by default). The surprise goes on an end event
 * once the key has been quiet for the horizon (the live model scorer's `counts` end, lib/live/model_scorer.ts;
 * in batch the chain's last segment's end, countChains), so a chain whose last segment is still open when the
 * input stops (censored) is not judged on counts it has not finished; one whose last segment had ended is
 * judged at the end of the input.
 */
import { DeepSentryError } from '../errors';

/** One relation a·count(i) = b·count(j) (i, j model message ids). */
export interface CountRelation {
  i: number;
  j: number;
  a: number;
  b: number;
  /** training sessions holding i or j */
  sessions: number;
  /** of those, the ones violating the relation */
  violations: number;
}

/** The JSON form saved in model.json. */
export interface CountModelJson {
  kind: 'count-relations';
  minSessions: number;
  confidence: number;
  relations: CountRelation[];
  /**
   * count profiles marked normal by feedback (`deepsentry feedback`): [message id, count] of every message
   * taking part in a relation, ascending by id; a session with exactly one of these profiles violates nothing
   */
  accepted?: Array<Array<[number, number]>>;
}

/** The integer ratios a:b tried (coprime, 1…3: replica counts of HDFS and the like). */
const RATIOS: ReadonlyArray<[number, number]> = [
  [1, 1],
  [1, 2],
  [2, 1],
  [1, 3],
  [3, 1],
  [2, 3],
  [3, 2],
];

/** Message id → count of one session. */
export function countMessages(ids: ArrayLike<number>, into: Map<number, number> = new Map()): Map<number, number> {
  for (let t = 0; t < ids.length; t++) into.set(ids[t], (into.get(ids[t]) ?? 0) + 1);
  return into;
}

/**
 * The count horizon of a configuration: the quiet time after which a key's count relations are judged (ms), or
 * null when each session is judged at its own end — with a `countTimeoutMs` of 0 or not longer than the idle
 * timeout, without an idle timeout (sessions end only with the input), and for sessions that are time or count
 * windows (they end by their window, not by quiet).
 */
export function countHorizon(countTimeoutMs: number, idleTimeoutMs: number | null, sessionMode: string): number | null {
  if (idleTimeoutMs === null || !(countTimeoutMs > idleTimeoutMs)) return null;
  return sessionMode === 'time' || sessionMode === 'count' ? null : countTimeoutMs;
}

/** What countChains needs of a session (segment): its key, time span and whether its end was scored. */
export interface ChainedSession {
  key: string;
  firstTs: number | null;
  lastTs: number | null;
}

/**
 * The sessions of one or more keys (each key's in time order) in chains counted together: a key's next session
 * joins the chain when it starts less than `horizon` ms after the chain's last line and that session's end was
 * scored (`ended`: an evicted one breaks the chain, as the live scorer keeps no count for it). Per session:
 * whether its end event judges the chain's counts — the chain's last one, when its end was scored; null horizon:
 * every session whose end is scored, on its own counts. Training mines the relations on the chains and fits
 * the threshold with them, as the live scorer judges them.
 */
export function countChains<S extends ChainedSession>(sessions: readonly S[], horizon: number | null, ended: (s: S) => boolean): { chains: S[][]; judges: Map<S, S[]> } {
  const chains: S[][] = [];
  const judges = new Map<S, S[]>();
  const lastOf = new Map<string, S[]>();
  for (const s of sessions) {
    const c = horizon === null ? undefined : lastOf.get(s.key);
    const prev = c?.[c.length - 1];
    if (c && prev && ended(prev) && s.firstTs !== null && prev.lastTs !== null && s.firstTs - prev.lastTs < (horizon as number)) c.push(s);
    else {
      const n = [s];
      chains.push(n);
      lastOf.set(s.key, n);
    }
  }
  for (const c of chains) {
    const last = c[c.length - 1];
    if (ended(last)) judges.set(last, c);
  }
  return { chains, judges };
}

export class CountModel {
  relations: CountRelation[] = [];
  /** relations by message id, for scoring only the relations a session can violate */
  private byMessage = new Map<number, CountRelation[]>();
  /** the accepted profiles (see CountModelJson.accepted), as JSON text */
  private accepted = new Set<string>();

  /**
   * @param minSessions a pair is considered when both messages occur together in at least this many sessions
   * @param confidence share of the sessions holding i or j that must satisfy a relation for it to be kept
   */
  constructor(readonly minSessions = 20, readonly confidence = 0.98) {
    if (!(Number.isInteger(minSessions) && minSessions >= 1)) throw new DeepSentryError('DS_INVALID_ARGUMENT', `Expected a positive integer for the count model's minSessions but received ${String(minSessions)}`);
    if (!(confidence > 0 && confidence <= 1)) throw new DeepSentryError('DS_INVALID_ARGUMENT', `Expected a number in (0, 1] for the count model's confidence but received ${String(confidence)}`);
  }

  /** Mines the relations from per-key message counts. */
  fit(sessions: readonly Map<number, number>[]): this {
    // Sessions holding each message, and co-occurrence counts of pairs.
    const holding = new Map<number, number[]>();
    sessions.forEach((c, s) => {
      for (const id of c.keys()) {
        let l = holding.get(id);
        if (!l) holding.set(id, (l = []));
        l.push(s);
      }
    });
    const ids = [...holding.keys()].filter((id) => (holding.get(id) as number[]).length >= this.minSessions).sort((x, y) => x - y);
    const relations: CountRelation[] = [];
    for (let p = 0; p < ids.length; p++) {
      for (let q = p + 1; q < ids.length; q++) {
        const i = ids[p];
        const j = ids[q];
        const si = holding.get(i) as number[];
        const sj = holding.get(j) as number[];
        // union of the sessions holding i or j (both lists are ascending)
        const union: number[] = [];
        let together = 0;
        for (let x = 0, y = 0; x < si.length || y < sj.length; ) {
          if (y >= sj.length || (x < si.length && si[x] < sj[y])) union.push(si[x++]);
          else if (x >= si.length || sj[y] < si[x]) union.push(sj[y++]);
          else {
            union.push(si[x++]);
            y++;
            together++;
          }
        }
        if (together < this.minSessions) continue;
        let best: CountRelation | null = null;
        for (const [a, b] of RATIOS) {
          let violations = 0;
          for (const s of union) {
            const c = sessions[s];
            if (a * (c.get(i) ?? 0) !== b * (c.get(j) ?? 0)) violations++;
          }
          if (violations <= (1 - this.confidence) * union.length && (!best || violations < best.violations)) best = { i, j, a, b, sessions: union.length, violations };
        }
        if (best) relations.push(best);
      }
    }
    this.relations = relations;
    this.index();
    return this;
  }

  private index(): void {
    this.byMessage.clear();
    for (const r of this.relations) {
      for (const id of [r.i, r.j]) {
        let l = this.byMessage.get(id);
        if (!l) this.byMessage.set(id, (l = []));
        l.push(r);
      }
    }
  }

  /**
   * The count surprise of one session's message counts (0 when it violates no relation): the worst violated
   * relation's, plus `breadth`·ln(the number of relations violated).
   */
  surprise(counts: Map<number, number>, breadth = 0): number {
    const v = this.worstViolation(counts);
    return v === null ? 0 : v.surprise + (breadth > 0 ? breadth * Math.log(v.violated) : 0);
  }

  /**
   * The violated relation of highest surprise (its own −ln P), and how many relations the session violates in
   * all; null when it violates none.
   */
  worstViolation(counts: Map<number, number>): { relation: CountRelation; surprise: number; violated: number } | null {
    if (this.accepted.size > 0 && this.accepted.has(JSON.stringify(this.profile(counts)))) return null;
    let worst: CountRelation | null = null;
    let most = 0;
    let violated = 0;
    for (const id of counts.keys()) {
      const rs = this.byMessage.get(id);
      if (!rs) continue;
      for (const r of rs) {
        const ci = counts.get(r.i) ?? 0;
        if (r.a * ci === r.b * (counts.get(r.j) ?? 0)) continue;
        // met from both its messages when the session holds both: counted from i then
        if (id === (ci > 0 ? r.i : r.j)) violated++;
        const s = -Math.log((r.violations + 1) / (r.sessions + 2));
        if (worst === null || s > most) (worst = r), (most = s);
      }
    }
    return worst === null ? null : { relation: worst, surprise: most, violated };
  }

  /** A session's counts of the messages that take part in a relation, ascending by id. */
  private profile(counts: Map<number, number>): Array<[number, number]> {
    return [...counts].filter(([id]) => this.byMessage.has(id)).sort((x, y) => x[0] - y[0]);
  }

  /**
   * Feedback that a session with these counts is normal: when it violates a relation, its exact profile (the
   * counts of every message in a relation) is accepted from now on. Only sessions with that same profile are
   * excused: a block whose counts differ anywhere (one replica fewer, one more deletion) is judged as before.
   * Returns the relations the session violated.
   */
  accept(counts: Map<number, number>): CountRelation[] {
    const violated = this.relations.filter((r) => r.a * (counts.get(r.i) ?? 0) !== r.b * (counts.get(r.j) ?? 0));
    if (violated.length > 0) this.accepted.add(JSON.stringify(this.profile(counts)));
    return violated;
  }

  toJSON(): CountModelJson {
    const accepted = [...this.accepted].map((p) => JSON.parse(p) as Array<[number, number]>);
    return { kind: 'count-relations', minSessions: this.minSessions, confidence: this.confidence, relations: this.relations, ...(accepted.length > 0 ? { accepted } : {}) };
  }

  static fromJSON(j: unknown, source: string): CountModel {
    const o = j as Partial<CountModelJson> | null;
    if (!o || o.kind !== 'count-relations' || !Array.isArray(o.relations) || typeof o.minSessions !== 'number' || typeof o.confidence !== 'number') {
      throw new DeepSentryError('DS_MODEL', `${source}: the count model (extra.countRelations) is missing or malformed`);
    }
    const m = new CountModel(o.minSessions, o.confidence);
    for (const r of o.relations) {
      if (![r.i, r.j, r.a, r.b, r.sessions, r.violations].every((v) => Number.isInteger(v) && v >= 0)) throw new DeepSentryError('DS_MODEL', `${source}: a count relation is malformed: ${JSON.stringify(r)}`);
    }
    m.relations = o.relations.slice();
    m.index();
    const pair = (p: unknown) => Array.isArray(p) && p.length === 2 && p.every((v) => Number.isInteger(v) && v >= 0);
    if (o.accepted !== undefined && !(Array.isArray(o.accepted) && o.accepted.every((p) => Array.isArray(p) && p.every(pair)))) {
      throw new DeepSentryError('DS_MODEL', `${source}: the count model's accepted profiles (extra.countRelations.accepted) are malformed`);
    }
    for (const p of o.accepted ?? []) m.accepted.add(JSON.stringify(p));
    return m;
  }
}
