/**
 * A worker's HTTP endpoint (`deepsentry live --nats … --listen HOST:PORT`): GET /metrics (Prometheus, on a
 * registry of its own), GET /health (the process answers), GET /ready (connected and not failed: 503
 * otherwise) and GET /api/stats (the owned partitions as JSON). The metrics say which partitions the worker
 * owns and, per partition, its lag (lines in the stream not yet delivered to it), last scored stream
 * sequence, lines, alerts and open sessions; they are read from the worker at scrape time.
 */
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import type { ScaleWorker } from './worker';

export class WorkerHttp {
  readonly registry = new Registry();
  private readonly server: http.Server;

  constructor(private readonly worker: ScaleWorker) {
    const r = this.registry;
    const stats = () => worker.stats();
    const perPartition = (name: string, help: string, pick: (s: ReturnType<ScaleWorker['stats']>[number]) => number) =>
      new Gauge({
        name,
        help,
        labelNames: ['partition'],
        registers: [r],
        collect() {
          this.reset();
          for (const s of stats()) this.set({ partition: String(s.partition) }, pick(s));
        },
      });
    new Gauge({
      name: 'deepsentry_scale_owned_partitions',
      help: 'Partitions this worker owns now.',
      registers: [r],
      collect() {
        this.set(stats().length);
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
    collectDefaultMetrics({ register: r });
    this.server = http.createServer((req, res) => {
      void this.handle(req, res).catch((e) => {
        if (!res.headersSent) res.writeHead(500, { 'content-type': 'text/plain' });
        res.end(`${(e as Error).message}\n`);
      });
    });
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const route = new URL(req.url ?? '/', 'http://x').pathname;
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD' }).end();
      return;
    }
    const json = (status: number, body: unknown): void => void res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store' }).end(JSON.stringify(body));
    switch (route) {
      case '/health':
        return json(200, { status: 'ok', worker: this.worker.id });
      case '/ready': {
        const ready = this.worker.ready;
        return json(ready ? 200 : 503, { ready });
      }
      case '/api/stats':
        return json(200, { worker: this.worker.id, stream: this.worker.opened.topo.stream, partitions: this.worker.opened.partitions, owned: this.worker.stats() });
      case '/metrics':
        res.writeHead(200, { 'content-type': this.registry.contentType }).end(await this.registry.metrics());
        return;
      default:
        res.writeHead(404, { 'content-type': 'text/plain' }).end(`no route ${route}\n`);
    }
  }

  /** Listens; resolves with the bound address. */
  listen(host: string, port: number): Promise<{ host: string; port: number }> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(port, host, () => {
        const a = this.server.address() as AddressInfo;
        resolve({ host: a.address, port: a.port });
      });
    });
  }

  close(): Promise<void> {
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}
