/**
 * Worker membership and partition ownership on a JetStream KV bucket whose entries expire after the lease
 * TTL (see topology.ts):
 *
 * - each live worker puts `m.<id>` every TTL/3 (a heartbeat); a worker that dies stops, and its key expires
 *   one TTL later;
 * - every worker computes the same assignment from the sorted member list (`assign`), and tries to own the
 *   partitions assigned to it;
 * - owning partition p means holding `lease.<p>`: created atomically (only one worker can create it), renewed
 *   by compare-and-set on its revision every TTL/3, deleted by its owner when a rebalance gives p to another
 *   worker, and gone one TTL after its owner died. A worker whose renewal fails has lost the partition and
 *   stops scoring it at once (checkpoints are fenced too: checkpoints.ts).
 */
import type { KV } from '@nats-io/kv';
import { stableHash } from './topology';

/**
 * Partition → member. Balanced (each member gets ⌊P/n⌋ or ⌈P/n⌉) and sticky: each partition goes to the
 * member ranking it highest (rendezvous hashing) among those with room, so a member joining or leaving
 * moves few partitions.
 */
export function assign(members: readonly string[], partitions: number): string[] {
  const sorted = [...members].sort();
  const out: string[] = [];
  if (sorted.length === 0) return out;
  const cap = Math.ceil(partitions / sorted.length);
  const load = new Map<string, number>(sorted.map((m) => [m, 0]));
  for (let p = 0; p < partitions; p++) {
    const ranked = sorted.map((m) => ({ m, h: stableHash(`${m}/${p}`) })).sort((a, b) => b.h - a.h || (a.m < b.m ? -1 : 1));
    const pick = ranked.find((r) => (load.get(r.m) as number) < cap) ?? ranked[0]!;
    load.set(pick.m, (load.get(pick.m) as number) + 1);
    out.push(pick.m);
  }
  return out;
}

/** A held lease on one partition. */
export class Lease {
  private constructor(
    private readonly kv: KV,
    readonly partition: number,
    private revision: number,
    private readonly value: string,
  ) {}

  /** Takes `lease.<p>` if nobody holds it; null when somebody does. */
  static async acquire(kv: KV, p: number, owner: string): Promise<Lease | null> {
    const value = JSON.stringify({ owner, since: new Date().toISOString() });
    try {
      return new Lease(kv, p, await kv.create(`lease.${p}`, value), value);
    } catch {
      return null;
    }
  }

  /** Renews the lease; false when it was lost (expired and taken, or deleted). Throws on connection errors. */
  async renew(): Promise<boolean> {
    try {
      this.revision = await this.kv.update(`lease.${this.partition}`, this.value, this.revision);
      return true;
    } catch (e) {
      if (/wrong last sequence/.test((e as Error).message)) return false;
      throw e;
    }
  }

  /** Gives the lease up (only if still ours). */
  async release(): Promise<void> {
    await this.kv.delete(`lease.${this.partition}`, { previousSeq: this.revision }).catch(() => undefined);
  }
}

/** This worker's heartbeat and view of the live members. */
export class Membership {
  constructor(
    private readonly kv: KV,
    readonly id: string,
  ) {}

  /** Puts this worker's heartbeat and returns the ids of every live worker (this one included). */
  async beat(info: Record<string, unknown>): Promise<string[]> {
    await this.kv.put(`m.${this.id}`, JSON.stringify({ ...info, at: new Date().toISOString() }));
    const ids: string[] = [];
    for await (const k of await this.kv.keys('m.*')) ids.push(k.slice(2));
    if (!ids.includes(this.id)) ids.push(this.id);
    return ids;
  }

  async leave(): Promise<void> {
    await this.kv.delete(`m.${this.id}`).catch(() => undefined);
  }
}
