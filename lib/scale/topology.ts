/**
 * The layout of a partitioned DeepSentry stream on NATS JetStream, shared by the publisher
 * (lib/scale/publisher.ts) and the workers (lib/scale/worker.ts):
 *
 * - stream `NAME` (default `DEEPSENTRY`), subjects `<prefix>.p.<partition>` where prefix is NAME in lower
 *   case: one raw log line per message (the body is the line, UTF-8, no newline), limits retention (lines stay
 *   until the stream's age or size limit, acked or not: a worker restarts from its checkpoint, not from the
 *   consumer's ack floor alone);
 * - stream `NAME_ALERTS`, subject `<prefix>.alerts`: one JSON alert per message, de-duplicated by alert id;
 * - KV bucket `NAME_ckpt`: `meta` (the partition count, fixed once the stream exists) and per partition its
 *   checkpoint (session state, threshold state, last stream sequence scored), see checkpoints.ts;
 * - KV bucket `NAME_leases` with a TTL: worker heartbeats `m.<worker>` and partition leases `lease.<p>`, see
 *   leases.ts.
 *
 * Headers a publisher may set on a line (all optional; `deepsentry publish` sets them):
 * `Nats-Msg-Id` (JetStream de-duplication), `DS-Clock` (the stream's event time at this line, ms: see
 * RawLine.clock in lib/live/types.ts), `DS-Line` (line number in its source), `DS-Source` (source name).
 * A message with an empty body and a `DS-Clock` only moves a partition's clock (the end of a published log).
 */
import { connect } from '@nats-io/transport-node';
import type { NatsConnection } from '@nats-io/nats-core';
import { jetstreamManager, DiscardPolicy, RetentionPolicy, StorageType, type JetStreamManager } from '@nats-io/jetstream';
import { Kvm, type KV } from '@nats-io/kv';
import { DeepSentryError } from '../errors';

export const HDR_CLOCK = 'DS-Clock';
export const HDR_LINE = 'DS-Line';
export const HDR_SOURCE = 'DS-Source';

/** Names derived from a stream name. */
export interface Topology {
  stream: string;
  prefix: string;
  alertStream: string;
  alertSubject: string;
  ckptBucket: string;
  leaseBucket: string;
  /** `<prefix>.p.<p>` */
  subject(p: number): string;
}

export const DEFAULT_STREAM = 'DEEPSENTRY';
export const DEFAULT_PARTITIONS = 12;

/** The topology of stream `name` (letters, digits, `-` and `_`: it names KV buckets too). */
export function topology(name: string = DEFAULT_STREAM): Topology {
  if (!/^[A-Za-z0-9_-]{1,64}$/.test(name)) throw new DeepSentryError('DS_INVALID_ARGUMENT', `Expected a stream name of letters, digits, '-' or '_' for stream but received ${JSON.stringify(name)}`);
  const prefix = name.toLowerCase();
  return {
    stream: name,
    prefix,
    alertStream: `${name}_ALERTS`,
    alertSubject: `${prefix}.alerts`,
    ckptBucket: `${name}_ckpt`,
    leaseBucket: `${name}_leases`,
    subject: (p) => `${prefix}.p.${p}`,
  };
}

/**
 * 32-bit FNV-1a of a string's UTF-16 code units: stable across processes, versions and platforms (the
 * partition of a session must never change while its lines are in flight).
 */
export function stableHash(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h >>> 0;
}

/** The partition of a session key. */
export function partitionOf(key: string, partitions: number): number {
  return stableHash(key) % partitions;
}

/** Connects to a NATS URL (reconnecting forever: a restarted server is waited for, not an error). */
export async function connectNats(url: string, name: string): Promise<NatsConnection> {
  let u: URL;
  try {
    u = new URL(url.includes('://') ? url : `nats://${url}`);
  } catch {
    throw new DeepSentryError('DS_INVALID_ARGUMENT', `Expected a NATS URL like nats://127.0.0.1:4222 for nats but received ${JSON.stringify(url)}`);
  }
  try {
    return await connect({ servers: `${u.hostname}:${u.port || '4222'}`, name, maxReconnectAttempts: -1, reconnectTimeWait: 250, ...(u.username ? { user: decodeURIComponent(u.username), pass: decodeURIComponent(u.password) } : {}) });
  } catch (e) {
    throw new DeepSentryError('DS_IO', `cannot connect to NATS at ${url}: ${(e as Error).message}`, { cause: e });
  }
}

/** Handles on a stream's JetStream objects once they exist. */
export interface Opened {
  topo: Topology;
  jsm: JetStreamManager;
  ckpt: KV;
  partitions: number;
}

/**
 * Creates the streams and buckets of `topo` when missing, and fixes the partition count: the first caller's
 * (`partitions`, default 12) is stored in `meta`; a later caller asking for a different count gets DS_CONFIG
 * (re-partitioning would send a session's later lines to another partition than its earlier ones).
 */
export async function openTopology(nc: NatsConnection, topo: Topology, o: { partitions?: number; maxAgeMs?: number } = {}): Promise<Opened> {
  if (o.partitions !== undefined && (!Number.isInteger(o.partitions) || o.partitions < 1 || o.partitions > 4096)) {
    throw new DeepSentryError('DS_INVALID_ARGUMENT', `Expected an integer in 1..4096 for partitions but received ${String(o.partitions)}`);
  }
  const jsm = await jetstreamManager(nc);
  const ensure = async (name: string, subjects: string[], extra: Record<string, unknown>) => {
    try {
      await jsm.streams.info(name);
    } catch {
      try {
        await jsm.streams.add({ name, subjects, retention: RetentionPolicy.Limits, storage: StorageType.File, discard: DiscardPolicy.Old, ...extra });
      } catch (e) {
        if (!/already in use|already exists/.test((e as Error).message)) throw e;
      }
    }
  };
  const maxAgeNs = (o.maxAgeMs ?? 0) * 1e6;
  await ensure(topo.stream, [`${topo.prefix}.p.*`], { max_age: maxAgeNs, duplicate_window: 120e9 });
  // Alerts: a replay after a takeover publishes the same alert ids again within minutes; an hour of ids is kept.
  await ensure(topo.alertStream, [topo.alertSubject], { max_age: maxAgeNs, duplicate_window: 3600e9 });
  const kvm = new Kvm(nc);
  const ckpt = await kvm.create(topo.ckptBucket, { history: 1 });
  let partitions: number | null = null;
  for (let attempt = 0; attempt < 5 && partitions === null; attempt++) {
    const e = await ckpt.get('meta');
    if (e && e.operation === 'PUT') {
      const m = e.json<{ partitions: number }>();
      if (o.partitions !== undefined && m.partitions !== o.partitions) {
        throw new DeepSentryError('DS_CONFIG', `stream ${topo.stream} has ${m.partitions} partitions, not ${o.partitions}: a stream's partition count is fixed (use another stream name, or omit partitions)`);
      }
      partitions = m.partitions;
    } else {
      try {
        await ckpt.create('meta', JSON.stringify({ partitions: o.partitions ?? DEFAULT_PARTITIONS }));
      } catch {
        // another process created it first: read it on the next attempt
      }
    }
  }
  if (partitions === null) throw new DeepSentryError('DS_IO', `cannot read the partition count of stream ${topo.stream} (key meta of bucket ${topo.ckptBucket})`);
  return { topo, jsm, ckpt, partitions };
}

/**
 * The lease bucket of `topo` (workers only), created with `ttlMs` (default 10 s) when missing; an existing
 * bucket keeps its TTL, which is returned.
 */
export async function openLeases(nc: NatsConnection, topo: Topology, ttlMs = 10_000): Promise<{ leases: KV; leaseTtlMs: number }> {
  const leases = await new Kvm(nc).create(topo.leaseBucket, { history: 1, ttl: ttlMs });
  const status = await leases.status();
  return { leases, leaseTtlMs: status.ttl > 0 ? status.ttl : ttlMs };
}
