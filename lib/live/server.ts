/**
 * The HTTP side of a live monitor or of a scale-out worker (lib/scale/worker.ts), both seen as a
 * `MonitorService`: `POST /ingest` (when the monitor reads from HTTP), `GET /metrics` (Prometheus),
 * `GET /health` (the process is up), `GET /ready` (it accepts lines), `GET /` (the dashboard) and
 * `GET /api/stats` (what the dashboard draws; a worker's adds the partitions it owns and their lag) and
 * `POST /feedback` (sessions learnt as normal, LiveMonitor.feedback: the body is what `deepsentry feedback
 * --normal` reads, or `{"sessions": [...]}`; one at a time, a second meanwhile gets 409).
 *
 * Safe by default: binds to 127.0.0.1 unless told otherwise; with a token every route but /health and /ready
 * needs `Authorization: Bearer TOKEN` (the dashboard page and its data also accept `?token=`, since a
 * browser cannot add the header to a page load); bodies over `maxBodyBytes` are refused with 413 before or
 * while they stream in. A bad request gets a 4xx naming what is wrong and never reaches the monitor: an
 * ingest body is checked whole before any of its lines is queued.
 */
import * as http from 'node:http';
import { timingSafeEqual } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { DeepSentryError, invalidParameterError } from '../errors';
import { parseFeedbackBody } from '../pipeline/feedback';
import { splitLines } from '../logs/lines';
import { DASHBOARD_HTML } from './dashboard';
import type { Registry } from 'prom-client';
import type { MonitorSnapshot } from './monitor';

/** What the server needs of what it serves: a LiveMonitor, or a scale-out worker (lib/scale/worker.ts). */
export interface MonitorService {
  /** Takes lines now (GET /ready answers 503 otherwise). */
  readonly ready: boolean;
  /** GET /api/stats: what the dashboard draws. */
  snapshot(): MonitorSnapshot;
  /** GET /metrics. */
  readonly metrics: { readonly registry: Registry };
  /** POST /ingest: queues all the lines or none (false: the queue is full). Needed when `ingest` is on. */
  offer?(lines: string[]): boolean;
  /** POST /feedback: learns these sessions as normal and swaps the new model in (LiveMonitor.feedback). */
  feedback?(sessions: string[], source: string): Promise<object>;
}

/** Options of the HTTP server. */
export interface ServerOptions {
  /** Address to bind (default 127.0.0.1: reachable from this machine only). */
  host?: string;
  /** Port (0 = any free port; see `address()`). */
  port: number;
  /** Bearer token required on every route except /health and /ready. */
  token?: string;
  /** Largest accepted request body (default 1 MiB). */
  maxBodyBytes?: number;
  /** Accept POST /ingest (when the monitor's input is HTTP). Otherwise /ingest answers 409. */
  ingest: boolean;
}

/** Parses `HOST:PORT` (or `PORT`, or `[v6]:PORT`) as given to --listen. */
export function parseListen(arg: string): { host: string; port: number } {
  const m = /^(?:(\[[^\]]+\]|[^:]+):)?(\d{1,5})$/.exec(arg.trim());
  const port = m ? Number(m[2]) : NaN;
  if (!m || !(port >= 0 && port <= 65535)) throw invalidParameterError('listen address', 'HOST:PORT (e.g. 127.0.0.1:9750) or PORT', arg);
  const host = m[1] ? m[1].replace(/^\[|\]$/g, '') : '127.0.0.1';
  return { host, port };
}

class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }
}

export class LiveServer {
  private readonly server: http.Server;
  private readonly opts: Required<Omit<ServerOptions, 'token'>> & { token?: string };
  private readonly token: Buffer | null;
  /** Requests refused with a 4xx/5xx, by status (for tests and logs). */
  readonly refused = new Map<number, number>();
  /** A POST /feedback is being learnt. */
  private learning = false;

  constructor(
    private readonly monitor: MonitorService,
    opts: ServerOptions,
  ) {
    if (opts.ingest && !monitor.offer) throw invalidParameterError('ingest', 'false for a service that takes no lines over HTTP', opts.ingest);
    const maxBodyBytes = opts.maxBodyBytes ?? 1 << 20;
    if (!Number.isInteger(maxBodyBytes) || maxBodyBytes < 1) throw invalidParameterError('maxBodyBytes', 'a positive integer', maxBodyBytes);
    if (opts.token !== undefined && (typeof opts.token !== 'string' || opts.token.length < 8)) {
      throw invalidParameterError('token', 'a string of at least 8 characters', opts.token);
    }
    this.opts = { host: opts.host ?? '127.0.0.1', port: opts.port, maxBodyBytes, ingest: opts.ingest, ...(opts.token ? { token: opts.token } : {}) };
    this.token = opts.token ? Buffer.from(opts.token) : null;
    this.server = http.createServer((req, res) => {
      this.handle(req, res).catch((err) => this.fail(res, err));
    });
    this.server.headersTimeout = 10_000;
    this.server.requestTimeout = 30_000;
    this.server.keepAliveTimeout = 5_000;
  }

  /** Starts listening; resolves with the bound address (the real port when 0 was asked). */
  listen(): Promise<{ host: string; port: number }> {
    return new Promise((resolve, reject) => {
      const onErr = (err: NodeJS.ErrnoException) => {
        reject(new DeepSentryError('DS_IO', `cannot listen on ${this.opts.host}:${this.opts.port}: ${err.code ?? err.message}`, { cause: err }));
      };
      this.server.once('error', onErr);
      this.server.listen(this.opts.port, this.opts.host, () => {
        this.server.off('error', onErr);
        resolve(this.address());
      });
    });
  }

  address(): { host: string; port: number } {
    const a = this.server.address() as AddressInfo;
    return { host: a.address, port: a.port };
  }

  /** Stops accepting connections and closes idle ones; resolves when all are closed. */
  close(): Promise<void> {
    return new Promise((resolve) => {
      this.server.close(() => resolve());
      this.server.closeIdleConnections();
    });
  }

  private authorised(req: http.IncomingMessage, url: URL, allowQuery: boolean): boolean {
    if (!this.token) return true;
    const h = req.headers.authorization;
    let given: string | null = null;
    if (typeof h === 'string' && /^Bearer\s+/i.test(h)) given = h.replace(/^Bearer\s+/i, '').trim();
    else if (allowQuery) given = url.searchParams.get('token');
    if (given === null) return false;
    const g = Buffer.from(given);
    return g.length === this.token.length && timingSafeEqual(g, this.token);
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const route = url.pathname;
    const method = req.method ?? 'GET';
    const routes: Record<string, string[]> = {
      '/': ['GET', 'HEAD'],
      '/api/stats': ['GET', 'HEAD'],
      '/metrics': ['GET', 'HEAD'],
      '/health': ['GET', 'HEAD'],
      '/ready': ['GET', 'HEAD'],
      '/ingest': ['POST'],
      '/feedback': ['POST'],
      '/favicon.ico': ['GET', 'HEAD'],
    };
    const allowed = routes[route];
    if (!allowed) throw new HttpError(404, `no route ${route}`);
    if (!allowed.includes(method)) throw new HttpError(405, `${method} is not allowed on ${route}`, { allow: allowed.join(', ') });
    if (route === '/favicon.ico') {
      res.writeHead(204, { 'cache-control': 'max-age=86400' }).end(); // browsers ask for it on any page, even a 401
      return;
    }
    if (route === '/health') return send(res, 200, 'application/json', JSON.stringify({ status: 'ok' }));
    if (route === '/ready') {
      const ready = this.monitor.ready;
      return send(res, ready ? 200 : 503, 'application/json', JSON.stringify({ ready }));
    }
    if (!this.authorised(req, url, route === '/' || route === '/api/stats')) {
      throw new HttpError(401, 'missing or wrong bearer token', { 'www-authenticate': 'Bearer realm="deepsentry"' });
    }
    switch (route) {
      case '/':
        return send(res, 200, 'text/html; charset=utf-8', DASHBOARD_HTML, { 'content-security-policy': "default-src 'self'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src 'self' data:" });
      case '/api/stats':
        return send(res, 200, 'application/json', JSON.stringify(this.monitor.snapshot()), { 'cache-control': 'no-store' });
      case '/metrics': {
        const reg = this.monitor.metrics.registry;
        return send(res, 200, reg.contentType, await reg.metrics());
      }
      case '/ingest':
        return this.ingest(req, res);
      case '/feedback':
        return this.feedback(req, res);
    }
  }

  /** A body of at most maxBodyBytes (413 beyond, from content-length or while it streams in). */
  private async body(req: http.IncomingMessage): Promise<Buffer> {
    const max = this.opts.maxBodyBytes;
    const declared = req.headers['content-length'];
    if (declared !== undefined && Number(declared) > max) throw new HttpError(413, `body of ${declared} bytes is over the limit of ${max} bytes`, { connection: 'close' });
    return readBody(req, max);
  }

  private async feedback(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    if (!this.monitor.feedback) throw new HttpError(409, 'this service does not learn from feedback (a live monitor with a trained model does)');
    const body = await this.body(req);
    const type = String(req.headers['content-type'] ?? 'text/plain').split(';')[0]!.trim().toLowerCase();
    if (!['text/plain', 'text/csv', 'application/json', 'application/x-ndjson', 'application/ndjson', 'application/jsonl', 'application/octet-stream', ''].includes(type)) {
      throw new HttpError(415, `content type ${type} is not accepted: send {"sessions": [...]} (application/json), alerts (application/x-ndjson), a sessions.csv (text/csv) or session ids one per line (text/plain)`);
    }
    let sessions: string[];
    try {
      sessions = parseFeedbackBody(body.toString('utf8'));
    } catch (err) {
      throw new HttpError(400, (err as Error).message);
    }
    if (this.learning) throw new HttpError(409, 'a feedback is being learnt: send this one when it is done', { 'retry-after': '5' });
    this.learning = true;
    try {
      const r = await this.monitor.feedback(sessions, 'POST /feedback');
      return send(res, 200, 'application/json', JSON.stringify(r));
    } catch (err) {
      if (!(err instanceof DeepSentryError)) throw err;
      // The marks do not fit (unknown sessions): 422; a scorer without feedback: 409; the rest (the model
      // cannot be written, training failed) is the server's: 500. The old model keeps scoring in every case.
      const status = err.code === 'DS_INVALID_ARGUMENT' ? 422 : err.code === 'DS_UNSUPPORTED' ? 409 : err.code === 'DS_CANCELLED' ? 503 : 500;
      throw new HttpError(status, `${err.message} (the model was not changed)`);
    } finally {
      this.learning = false;
    }
  }

  private async ingest(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    if (!this.opts.ingest) throw new HttpError(409, 'ingest is off: this monitor reads another input (a file, stdin or a NATS stream)');
    const body = await this.body(req);
    const type = String(req.headers['content-type'] ?? 'text/plain').split(';')[0]!.trim().toLowerCase();
    let lines: string[];
    if (type === 'application/x-ndjson' || type === 'application/ndjson' || type === 'application/jsonl' || type === 'application/json') {
      lines = parseNdjson(body);
    } else if (type === 'text/plain' || type === 'application/octet-stream' || type === '') {
      lines = splitLines(body);
    } else {
      throw new HttpError(415, `content type ${type} is not accepted: send text/plain (one log line per line) or application/x-ndjson`);
    }
    if (!this.monitor.ready) throw new HttpError(503, 'the monitor is not accepting lines (starting or stopping)', { 'retry-after': '1' });
    if (lines.length === 0) return send(res, 202, 'application/json', JSON.stringify({ accepted: 0 }));
    if (!this.monitor.offer!(lines)) {
      throw new HttpError(503, `queue full: ${lines.length} line(s) dropped; retry later`, { 'retry-after': '1' });
    }
    return send(res, 202, 'application/json', JSON.stringify({ accepted: lines.length }));
  }

  private fail(res: http.ServerResponse, err: unknown): void {
    const status = err instanceof HttpError ? err.status : err instanceof DeepSentryError && err.code === 'DS_CANCELLED' ? 503 : 500;
    this.refused.set(status, (this.refused.get(status) ?? 0) + 1);
    const message = err instanceof Error ? err.message : String(err);
    if (res.headersSent) {
      res.destroy();
      return;
    }
    send(res, status, 'application/json', JSON.stringify({ error: message }), err instanceof HttpError ? err.headers : {});
  }
}

function send(res: http.ServerResponse, status: number, type: string, body: string, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'content-type': type, 'content-length': Buffer.byteLength(body), 'x-content-type-options': 'nosniff', ...headers });
  res.end(res.req.method === 'HEAD' ? undefined : body);
}

/** Reads a request body, refusing (413) as soon as it passes `max` bytes. */
function readBody(req: http.IncomingMessage, max: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const parts: Buffer[] = [];
    let n = 0;
    let done = false;
    req.on('data', (c: Buffer) => {
      if (done) return;
      n += c.length;
      if (n > max) {
        done = true;
        // Stop reading; the 413 response closes the connection.
        req.pause();
        reject(new HttpError(413, `body is over the limit of ${max} bytes`, { connection: 'close' }));
        return;
      }
      parts.push(c);
    });
    req.on('end', () => {
      if (!done) {
        done = true;
        resolve(Buffer.concat(parts));
      }
    });
    req.on('error', (err) => {
      if (!done) {
        done = true;
        reject(new HttpError(400, `reading the body failed: ${err.message}`));
      }
    });
  });
}

/** NDJSON body: each non-blank line is a JSON string (the log line) or an object with a string `line`. */
function parseNdjson(body: Buffer): string[] {
  const out: string[] = [];
  const rows = body.toString('utf8').split('\n');
  for (let i = 0; i < rows.length; i++) {
    const row = rows[i]!.trim();
    if (row === '') continue;
    let v: unknown;
    try {
      v = JSON.parse(row);
    } catch (err) {
      throw new HttpError(400, `line ${i + 1} of the NDJSON body is not JSON (${(err as Error).message}); nothing was ingested`);
    }
    if (typeof v === 'string') out.push(v);
    else if (typeof v === 'object' && v !== null && typeof (v as { line?: unknown }).line === 'string') out.push((v as { line: string }).line);
    else throw new HttpError(400, `line ${i + 1} of the NDJSON body is neither a JSON string nor an object with a string "line"; nothing was ingested`);
  }
  return out;
}
