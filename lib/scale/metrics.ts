/**
 * A worker's own Prometheus metrics, added to its MonitorMetrics registry (lib/live/metrics.ts: the lines,
 * events, anomalies, scores and webhook counters every live monitor has). They say which partitions the
 * worker owns and, per partition, its lag (lines in the stream not yet delivered to it), last scored stream
 * sequence, lines, alerts and open sessions; they are read from the worker at scrape time. The worker serves
 * them with the dashboard through lib/live/server.ts (`deepsentry live --nats … --listen HOST:PORT`).
 */
import { Gauge, type Registry } from 'prom-client';
import type { PartitionStats } from './worker';

/** What the scale gauges read. */
export interface ScaleMetricsSource {
  stats(): PartitionStats[];
  readonly reconnects: number;
}

export function registerScaleMetrics(r: Registry, worker: ScaleMetricsSource): void {
  const perPartition = (name: string, help: string, pick: (s: PartitionStats) => number) =>
    new Gauge({
      name,
      help,
      labelNames: ['partition'],
      registers: [r],
      collect() {
        this.reset();
        for (const s of worker.stats()) this.set({ partition: String(s.partition) }, pick(s));
      },
    });
  new Gauge({
    name: 'deepsentry_scale_owned_partitions',
    help: 'Partitions this worker owns now.',
    registers: [r],
    collect() {
      this.set(worker.stats().length);
    },
  });
  perPartition('deepsentry_scale_partition_lag', 'Lines of an owned partition in the stream not yet delivered to this worker.', (s) => s.lag);
  perPartition('deepsentry_scale_partition_last_seq', 'Stream sequence of the last line scored in an owned partition.', (s) => s.lastSeq);
  perPartition('deepsentry_scale_partition_lines', 'Lines scored in an owned partition since this worker took it.', (s) => s.lines);
  perPartition('deepsentry_scale_partition_alerts', 'Alerts raised in an owned partition since this worker took it.', (s) => s.alerts);
  perPartition('deepsentry_scale_partition_open_sessions', 'Open sessions of an owned partition.', (s) => s.openSessions);
  new Gauge({
    name: 'deepsentry_scale_reconnects',
    help: 'Reconnections to the NATS server since the worker started.',
    registers: [r],
    collect() {
      this.set(worker.reconnects);
    },
  });
}
