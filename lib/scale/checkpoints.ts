/**
 * Per-partition checkpoints in a JetStream KV bucket: what another worker needs to take a partition over
 * mid-session — the scorer's session state, the threshold's state and the last stream sequence they reflect.
 *
 * Layout: `ckpt.<p>` is a small pointer ({owner, lastSeq, id, chunks}); the state itself is gzipped JSON in
 * `data.<p>.<id>.<i>` chunks (a state holds every open session of the partition: it may exceed the server's
 * message size). A save writes the chunks to the slot the pointer does not name, then replaces the pointer
 * with a compare-and-set on its revision (the commit). Ownership is fenced the same way: `claim` rewrites the
 * pointer with the new owner, so a worker that lost its lease but is still running (a long pause) fails
 * its next save and stops, and never overwrites the new owner's state.
 */
import * as zlib from 'node:zlib';
import type { KV } from '@nats-io/kv';
import { DeepSentryError } from '../errors';
import type { ThresholdSnapshot } from '../live/thresholds';

/** The state of one partition. */
export interface PartitionState {
  /** scorer name (a state is only restored into the same kind of scorer) */
  scorer: string;
  scorerState: unknown;
  threshold: ThresholdSnapshot;
}

interface Pointer {
  owner: string;
  /** last stream sequence reflected in the state (0: none) */
  lastSeq: number;
  /** chunk set id ('' when there is no state yet) */
  id: string;
  chunks: number;
}

/** A claimed partition: its state and the pointer revision the owner's next save must match. */
export interface Claimed {
  lastSeq: number;
  state: PartitionState | null;
  revision: number;
}

/** Largest chunk (the default server max_payload is 1 MiB; headers and key need room). */
const CHUNK = 512 * 1024;

export class CheckpointStore {
  /** per partition: the chunk set id of the save in flight (a retry after a lost reply finds it committed) */
  private readonly attempt = new Map<number, string>();
  constructor(
    private readonly kv: KV,
    private readonly owner: string,
  ) {}

  /** Takes partition `p` over: reads its checkpoint and makes this worker the one whose saves succeed. */
  async claim(p: number): Promise<Claimed> {
    for (let attempt = 0; attempt < 10; attempt++) {
      const e = await this.kv.get(`ckpt.${p}`);
      if (e === null || e.operation !== 'PUT') {
        try {
          const revision = e === null ? await this.kv.create(`ckpt.${p}`, JSON.stringify({ owner: this.owner, lastSeq: 0, id: '', chunks: 0 })) : await this.kv.update(`ckpt.${p}`, JSON.stringify({ owner: this.owner, lastSeq: 0, id: '', chunks: 0 }), e.revision);
          return { lastSeq: 0, state: null, revision };
        } catch {
          continue; // someone wrote it meanwhile: read again
        }
      }
      const ptr = e.json<Pointer>();
      const state = ptr.chunks > 0 ? await this.readState(p, ptr) : null;
      try {
        const revision = await this.kv.update(`ckpt.${p}`, JSON.stringify({ ...ptr, owner: this.owner }), e.revision);
        return { lastSeq: ptr.lastSeq, state, revision };
      } catch {
        continue;
      }
    }
    throw new DeepSentryError('DS_IO', `cannot claim the checkpoint of partition ${p}: it keeps changing (another worker is writing it)`);
  }

  private async readState(p: number, ptr: Pointer): Promise<PartitionState> {
    const parts: Buffer[] = [];
    for (let i = 0; i < ptr.chunks; i++) {
      const c = await this.kv.get(`data.${p}.${ptr.id}.${i}`);
      if (c === null || c.operation !== 'PUT') throw new DeepSentryError('DS_IO', `checkpoint of partition ${p} is incomplete: chunk ${i} of ${ptr.chunks} (${ptr.id}) is missing`);
      parts.push(Buffer.from(c.value));
    }
    try {
      return JSON.parse(zlib.gunzipSync(Buffer.concat(parts)).toString('utf8')) as PartitionState;
    } catch (e) {
      throw new DeepSentryError('DS_IO', `checkpoint of partition ${p} (${ptr.id}) is corrupt: ${(e as Error).message}`);
    }
  }

  /**
   * Saves the state of partition `p` as of stream sequence `lastSeq`, if this worker still owns it (the
   * pointer is at `revision`). `claim` is the revision `claim()` returned: the chunks go to keys of this
   * claim only, alternating between two slots, so a save never touches the chunks the pointer names, nor
   * another claim's (a fenced owner still writing cannot corrupt the new owner's), and no key is created per
   * save (the bucket does not grow). Returns the new revision, or null when another claim owns the partition.
   */
  async save(p: number, revision: number, claim: number, lastSeq: number, state: PartitionState): Promise<number | null> {
    const cur = await this.kv.get(`ckpt.${p}`);
    if (cur === null || cur.operation !== 'PUT') return null;
    const old = cur.json<Pointer>();
    if (cur.revision !== revision) {
      // Our own previous attempt may have committed before its reply was lost (a server restart).
      return old.owner === this.owner && old.id === this.attempt.get(p) && old.lastSeq === lastSeq ? cur.revision : null;
    }
    const data = zlib.gzipSync(JSON.stringify(state), { level: 1 });
    const mine = `${this.owner}-${claim}`;
    const id = `${mine}.${old.id === `${mine}.a` ? 'b' : 'a'}`;
    this.attempt.set(p, id);
    const chunks = Math.max(1, Math.ceil(data.length / CHUNK));
    for (let i = 0; i < chunks; i++) await this.kv.put(`data.${p}.${id}.${i}`, data.subarray(i * CHUNK, (i + 1) * CHUNK));
    let next: number;
    try {
      next = await this.kv.update(`ckpt.${p}`, JSON.stringify({ owner: this.owner, lastSeq, id, chunks }), revision);
    } catch {
      return null;
    }
    // The first save of a claim: the previous claim's chunks are no longer named by anyone.
    if (old.chunks > 0 && !old.id.startsWith(`${mine}.`)) {
      for (let i = 0; i < old.chunks; i++) await this.kv.purge(`data.${p}.${old.id}.${i}`).catch(() => undefined);
    }
    return next;
  }

  /** The last stream sequence checkpointed for each partition (0: none). */
  async positions(partitions: number): Promise<number[]> {
    const out: number[] = [];
    for (let p = 0; p < partitions; p++) {
      const e = await this.kv.get(`ckpt.${p}`);
      out.push(e !== null && e.operation === 'PUT' ? e.json<Pointer>().lastSeq : 0);
    }
    return out;
  }
}
