/**
 * Count relations inside a session (Invariants Mining, Lou et al. 2010; LogAnomaly's quantitative patterns),
 * learnt without labels: for two messages i and j that occur together in enough training sessions, the linear
 * relation a·count(i) = b·count(j) with small integers a, b that the most of those sessions satisfy (an HDFS block
 * allocated once is received, and stored, as many times as it has replicas). A relation is kept when at least
 * `confidence` of the training sessions holding i or j satisfy it — unlabelled training data holds anomalies, so
 * a relation need not hold everywhere, and how often it failed in training says how surprising a failure is.
 *
 * A session's count surprise is the largest −ln P(violation) over the relations it violates, P estimated as
 * (violations + 1) / (sessions + 2) in training (0 when it violates none): in nats, like the sequence scores it
 * is added to. The window-by-window view of the detector cannot see these relations: each window holds a few
 * lines, and a block missing one of its three replicas reads, window by window, like a normal one.
 *
 * Counted per session as the detector sees it (a segment, when the idle timeout splits a key): counted per key,
 * the relations between writing and deleting a block fail for every block still stored when the log ends
 * (measured on hdfs-dev trained on the earlier half: ROC-AUC 0.54 per key, 0.80 per segment). The surprise goes
 * on the session's end event, so a session still open when the input stops (censored) is not judged on counts
 * it has not finished.
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

  /** The count surprise of one session's message counts (0 when it violates no relation). */
  surprise(counts: Map<number, number>): number {
    return this.worstViolation(counts)?.surprise ?? 0;
  }

  /** The violated relation of highest surprise, or null when the session violates none. */
  worstViolation(counts: Map<number, number>): { relation: CountRelation; surprise: number } | null {
    if (this.accepted.size > 0 && this.accepted.has(JSON.stringify(this.profile(counts)))) return null;
    let worst: { relation: CountRelation; surprise: number } | null = null;
    for (const id of counts.keys()) {
      const rs = this.byMessage.get(id);
      if (!rs) continue;
      for (const r of rs) {
        if (r.a * (counts.get(r.i) ?? 0) === r.b * (counts.get(r.j) ?? 0)) continue;
        const s = -Math.log((r.violations + 1) / (r.sessions + 2));
        if (!worst || s > worst.surprise) worst = { relation: r, surprise: s };
      }
    }
    return worst;
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
