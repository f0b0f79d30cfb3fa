/**
 * Sessions known to be normal, remembered by what they hold: the lines per masked message of a key's sessions
 * counted together (the chain the count relations judge, lib/models/counts.ts countChains). A scored key whose
 * counts are exactly those of a remembered one is normal by that knowledge, whatever its lines scored.
 *
 * Only labelled knowledge fills it — the sessions of a normal-only training (`--normal-labels`) and those an
 * operator marked normal (`deepsentry feedback`): an unlabelled log's sessions hold its anomalies, and anomalies
 * repeat (on hdfs-dev the same few anomalous compositions recur dozens of times), so a memory of them would
 * whitelist exactly what should be flagged.
 *
 * Why it helps where the detector is unsure: a composition seen rarely in training (a block re-replicated once,
 * ten times in four thousand) scores as rare even when every time it was seen it was labelled normal. What it
 * cannot do: a session with the remembered counts in an anomalous order is taken for normal.
 *
 * Stored as truncated SHA-256 hashes of a canonical form (the `[text, count]` pairs sorted by text, as JSON), so model.json stays small
 * and does not repeat the messages; 96 bits make an accidental match between distinct compositions negligible.
 */
import { createHash } from 'node:crypto';
import { DeepSentryError } from '../errors';

/** How many hex digits of the SHA-256 a composition is remembered by. */
const KEY_HEX = 24;

/** model.json `extra.knownNormal`. */
export interface KnownNormalJson {
  /** what filled it: `normal-labels` (normal-only training), `feedback`, or both */
  sources: string[];
  /** truncated SHA-256 of each remembered composition (see KnownNormal.keyOf) */
  keys: string[];
}

/** The remembered compositions of a model: see the module comment. */
export class KnownNormal {
  private readonly keys = new Set<string>();
  readonly sources: string[] = [];

  /** The key of a composition: lines per masked message text (entries with a count of 0 are ignored). */
  static keyOf(counts: Iterable<readonly [string, number]>): string {
    const rows: Array<readonly [string, number]> = [];
    for (const row of counts) if (row[1] > 0) rows.push(row);
    rows.sort((x, y) => (x[0] < y[0] ? -1 : x[0] > y[0] ? 1 : 0));
    // JSON: a text holding a tab or a newline cannot pass for another text and a count
    return createHash('sha256').update(JSON.stringify(rows)).digest('hex').slice(0, KEY_HEX);
  }

  get size(): number {
    return this.keys.size;
  }

  /** Remembers a composition; `source` says where the knowledge came from (recorded once). */
  add(counts: Iterable<readonly [string, number]>, source: string): void {
    this.keys.add(KnownNormal.keyOf(counts));
    if (!this.sources.includes(source)) this.sources.push(source);
  }

  has(counts: Iterable<readonly [string, number]>): boolean {
    return this.keys.size > 0 && this.keys.has(KnownNormal.keyOf(counts));
  }

  toJSON(): KnownNormalJson {
    return { sources: this.sources.slice(), keys: [...this.keys] };
  }

  static fromJSON(json: unknown, source: string): KnownNormal {
    const bad = (what: string) => new DeepSentryError('DS_MODEL', `${source}: extra.knownNormal ${what}`);
    const j = json as Partial<KnownNormalJson> | null;
    if (j === null || typeof j !== 'object' || !Array.isArray(j.keys) || !Array.isArray(j.sources)) throw bad('is not { sources: string[], keys: string[] }');
    const k = new KnownNormal();
    for (const s of j.sources) {
      if (typeof s !== 'string') throw bad(`sources holds ${JSON.stringify(s)}, not a string`);
      k.sources.push(s);
    }
    const hex = new RegExp(`^[0-9a-f]{${KEY_HEX}}$`);
    j.keys.forEach((key, i) => {
      if (typeof key !== 'string' || !hex.test(key)) throw bad(`keys[${i}] is ${JSON.stringify(key)}, not ${KEY_HEX} lowercase hex digits`);
      k.keys.add(key);
    });
    return k;
  }
}

/**
 * Per key, the lines per masked message of all its sessions, added up as they come (`deepsentry score` as its
 * scorer judges them, feedback from the log). A key with a session that did not end — evicted, or cut by the end
 * of the input — is incomplete: its composition is not known, so it never matches.
 */
export class KeyCompositions {
  private readonly byKey = new Map<string, Map<string, number> | null>();

  /** Adds lines of `key` (message text, count). */
  add(key: string, counts: Iterable<readonly [string, number]>): void {
    let c = this.byKey.get(key);
    if (c === null) return;
    if (c === undefined) this.byKey.set(key, (c = new Map()));
    for (const [text, n] of counts) c.set(text, (c.get(text) ?? 0) + n);
  }

  /** `key` had a session that did not end: it is never matched. */
  incomplete(key: string): void {
    this.byKey.set(key, null);
  }

  /** Whether `key`'s whole composition is one `memory` remembers. */
  known(memory: KnownNormal, key: string): boolean {
    const c = this.byKey.get(key);
    return c != null && memory.has(c);
  }

  /** The complete compositions, by key. */
  *complete(): IterableIterator<[string, Map<string, number>]> {
    for (const [key, c] of this.byKey) if (c !== null) yield [key, c];
  }
}
