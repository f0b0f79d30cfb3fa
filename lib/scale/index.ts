/**
 * Scale-out on NATS JetStream (see the README section "Scaling out"): publish lines partitioned by session
 * key, and run workers that share the partitions.
 */
export { Publisher, publishLog, publishLogConfig, type PublisherOptions, type PublishSummary } from './publisher';
export { ScaleWorker, type ScaleWorkerOptions, type PartitionStats, type WorkerSnapshot } from './worker';
export { topology, partitionOf, stableHash, DEFAULT_STREAM, DEFAULT_PARTITIONS, HDR_CLOCK, HDR_LINE, HDR_SOURCE, type Topology } from './topology';
export { assign } from './leases';
