import { expect } from 'chai';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import { LiveMonitor } from '../../lib/live/monitor';
import { NoveltyScorer } from '../../lib/live/novelty';
import { LiveServer, parseListen } from '../../lib/live/server';
import { WebhookSink, TextSink, formatAlert } from '../../lib/live/sinks';
import type { Alert } from '../../lib/live/types';
import { hdfsLines } from '../support/live-fixtures';

const HDFS = hdfsLines(3000);

interface Resp {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}
function request(port: number, method: string, p: string, body?: string | Buffer, headers: Record<string, string> = {}): Promise<Resp> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, method, path: p, headers }, (res) => {
      const parts: Buffer[] = [];
      res.on('data', (c: Buffer) => parts.push(c));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(parts).toString('utf8') }));
    });
    req.on('error', reject);
    if (body !== undefined) req.end(body);
    else req.end();
  });
}

/** A real local webhook receiver on 127.0.0.1 whose answers the test scripts. */
class Receiver {
  readonly got: { body: Alert; at: number }[] = [];
  attempts = 0;
  answer: (n: number) => number = () => 200;
  private server = http.createServer((req, res) => {
    const parts: Buffer[] = [];
    req.on('data', (c: Buffer) => parts.push(c));
    req.on('end', () => {
      const n = ++this.attempts;
      const status = this.answer(n);
      if (status === 200) this.got.push({ body: JSON.parse(Buffer.concat(parts).toString('utf8')) as Alert, at: Date.now() });
      res.writeHead(status).end();
    });
  });
  async start(): Promise<string> {
    await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', r));
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}/hook`;
  }
  close(): Promise<void> {
    return new Promise((r) => {
      this.server.close(() => r());
      this.server.closeAllConnections();
    });
  }
}

function alert(i: number): Alert {
  return { id: `${i}:s`, time: new Date(0).toISOString(), source: 'test', seq: i, lineNo: i, offset: 0, session: 's', score: 9, threshold: 1, isSessionEnd: false, line: `line ${i}`, window: [`line ${i}`] };
}

describe('live HTTP: ingest, metrics, health, auth, limits', () => {
  let monitor: LiveMonitor;
  let server: LiveServer;
  let port: number;
  const token = 'secret-token-123';
  const auth = { authorization: `Bearer ${token}` };

  beforeEach(async () => {
    monitor = new LiveMonitor(new NoveltyScorer({ logs: { format: 'hdfs' } }), { threshold: { mode: 'rolling', window: 200 }, tickMs: 0, source: 'http', maxQueuedLines: 5000 });
    await monitor.start();
    server = new LiveServer(monitor, { port: 0, token, maxBodyBytes: 1 << 20, ingest: true });
    port = (await server.listen()).port;
  });
  afterEach(async () => {
    await server.close();
    await monitor.stop();
  });

  it('binds to 127.0.0.1 by default; parses --listen', () => {
    expect(server.address().host).to.equal('127.0.0.1');
    expect(parseListen('9750')).to.deep.equal({ host: '127.0.0.1', port: 9750 });
    expect(parseListen('127.0.0.1:0')).to.deep.equal({ host: '127.0.0.1', port: 0 });
    expect(parseListen('[::1]:80')).to.deep.equal({ host: '::1', port: 80 });
    expect(() => parseListen('localhost:99999')).to.throw(/for listen address but received/);
    expect(() => parseListen('nope')).to.throw(/HOST:PORT/);
  });

  it('serves a service that takes no lines (a scale-out worker): ingest must be off, and /ingest answers 409', async () => {
    // the monitor seen without offer(), as lib/scale/worker.ts's ScaleWorker is
    const view = { get ready() { return monitor.ready; }, snapshot: () => monitor.snapshot(), metrics: monitor.metrics };
    expect(() => new LiveServer(view, { port: 0, ingest: true })).to.throw(/ingest/);
    const srv = new LiveServer(view, { port: 0, ingest: false });
    const { port } = await srv.listen();
    try {
      expect((await request(port, 'POST', '/ingest', 'a line\n')).status).to.equal(409);
      const page = await request(port, 'GET', '/');
      expect(page.status).to.equal(200);
      expect(page.body).to.contain('DeepSentry live');
      expect(JSON.parse((await request(port, 'GET', '/api/stats')).body).ready).to.equal(true);
    } finally {
      await srv.close();
    }
  });

  it('POST /ingest takes text and NDJSON; lines are scored', async () => {
    const r1 = await request(port, 'POST', '/ingest', HDFS.slice(0, 1000).join('\n') + '\n', { ...auth, 'content-type': 'text/plain' });
    expect(r1.status).to.equal(202);
    expect(JSON.parse(r1.body)).to.deep.equal({ accepted: 1000 });
    const nd = HDFS.slice(1000, 1500).map((l, i) => JSON.stringify(i % 2 ? l : { line: l })).join('\n');
    const r2 = await request(port, 'POST', '/ingest', nd, { ...auth, 'content-type': 'application/x-ndjson' });
    expect(r2.status).to.equal(202);
    expect(JSON.parse(r2.body)).to.deep.equal({ accepted: 500 });
    await monitor.idle();
    expect(monitor.snapshot().lines).to.equal(1500);
    expect(monitor.snapshot().events).to.be.greaterThan(1500);
  });

  it('bad requests get a 4xx naming the problem and leave the stream undisturbed', async () => {
    await request(port, 'POST', '/ingest', HDFS.slice(0, 100).join('\n'), auth);
    const bad = [
      await request(port, 'POST', '/ingest', '"ok"\n{not json\n', { ...auth, 'content-type': 'application/x-ndjson' }),
      await request(port, 'POST', '/ingest', '{"message": 1}\n', { ...auth, 'content-type': 'application/x-ndjson' }),
      await request(port, 'POST', '/ingest', 'x', { ...auth, 'content-type': 'image/png' }),
      await request(port, 'POST', '/ingest', 'x'.repeat((1 << 20) + 1), auth),
      await request(port, 'POST', '/ingest', 'x\n'),
      await request(port, 'POST', '/ingest', 'x\n', { authorization: 'Bearer wrong-token-000' }),
      await request(port, 'GET', '/ingest', undefined, auth),
      await request(port, 'GET', '/nope', undefined, auth),
    ];
    expect(bad.map((r) => r.status)).to.deep.equal([400, 400, 415, 413, 401, 401, 405, 404]);
    expect(JSON.parse(bad[0]!.body).error).to.match(/line 2 of the NDJSON body is not JSON.*nothing was ingested/);
    expect(bad[4]!.headers['www-authenticate']).to.match(/^Bearer/);
    expect(bad[6]!.headers.allow).to.equal('POST');
    // The stream goes on: the bad bodies added nothing, good ones still work.
    const ok = await request(port, 'POST', '/ingest', HDFS.slice(100, 200).join('\n'), auth);
    expect(ok.status).to.equal(202);
    await monitor.idle();
    expect(monitor.snapshot().lines).to.equal(200);
    expect(monitor.ready).to.equal(true);
  });

  it('POST /feedback: a scorer that does not learn from feedback is a 409, a wrong body a 400 or 415, before any of it reaches the monitor', async () => {
    await request(port, 'POST', '/ingest', HDFS.slice(0, 100).join('\n'), auth);
    await monitor.idle();
    const block = /blk_-?\d+/.exec(HDFS[0]!)![0];
    const r = [
      await request(port, 'POST', '/feedback', `${block}\n`, { ...auth, 'content-type': 'text/plain' }),
      await request(port, 'POST', '/feedback', JSON.stringify({ sessions: [block] }), { ...auth, 'content-type': 'application/json' }),
      await request(port, 'POST', '/feedback', '{"sessions": 3}', { ...auth, 'content-type': 'application/json' }),
      await request(port, 'POST', '/feedback', block, { ...auth, 'content-type': 'image/png' }),
      await request(port, 'POST', '/feedback', `${block}\n`),
      await request(port, 'GET', '/feedback', undefined, auth),
    ];
    expect(r.map((x) => x.status)).to.deep.equal([409, 409, 400, 415, 401, 405]);
    expect(JSON.parse(r[0]!.body).error).to.equal("the 'novelty' scorer does not learn from feedback (the trained model's scorer does) (the model was not changed)");
    expect(JSON.parse(r[2]!.body).error).to.equal('the body\'s "sessions" is number 3, not an array of session ids');
    expect(monitor.ready).to.equal(true);
  });

  it('a full queue answers 503 with Retry-After and counts the lines as dropped', async () => {
    // A monitor whose batch timer will not fire during the test, so the queue only fills.
    const slow = new LiveMonitor(new NoveltyScorer({ logs: { format: 'hdfs' } }), { threshold: { mode: 'rolling' }, tickMs: 0, maxQueuedLines: 5000, batchDelayMs: 60_000 });
    await slow.start();
    const srv = new LiveServer(slow, { port: 0, ingest: true });
    const p = (await srv.listen()).port;
    const big = HDFS.slice(0, 3000).join('\n');
    const a = await request(p, 'POST', '/ingest', big);
    const b = await request(p, 'POST', '/ingest', big);
    expect([a.status, b.status]).to.deep.equal([202, 503]);
    expect(b.headers['retry-after']).to.equal('1');
    expect(JSON.parse(b.body).error).to.match(/queue full: 3000 line\(s\) dropped/);
    expect(slow.snapshot().droppedLines).to.equal(3000);
    await srv.close();
    await slow.stop(); // scores the 3000 queued lines
    expect(slow.snapshot().lines).to.equal(3000);
  });

  it('/metrics (Prometheus), /health and /ready', async () => {
    await request(port, 'POST', '/ingest', HDFS.slice(0, 1500).join('\n'), auth);
    await monitor.idle();
    // What the file follower reports (lib/live/tail.ts) is counted: truncations, and lines that may be lost.
    monitor.metrics.tailNotice({ kind: 'truncated', message: 'copytruncate, rest read from the copy' });
    monitor.metrics.tailNotice({ kind: 'truncated', loss: 'truncated', message: 'copytruncate, no copy' });
    monitor.metrics.tailNotice({ kind: 'lost', loss: 'compressed', message: 'app.log.2.gz' });
    expect((await request(port, 'GET', '/metrics')).status).to.equal(401);
    const m = await request(port, 'GET', '/metrics', undefined, auth);
    expect(m.status).to.equal(200);
    expect(m.headers['content-type']).to.match(/^text\/plain/);
    expect(m.body).to.match(/^deepsentry_lines_total 1500$/m);
    expect(m.body).to.match(/^deepsentry_anomalies_total \d+$/m);
    expect(m.body).to.match(/^deepsentry_score_bucket\{le="\+Inf"\} \d+$/m);
    expect(m.body).to.match(/^deepsentry_line_latency_seconds_count 1500$/m);
    expect(m.body).to.match(/^deepsentry_open_sessions \d+$/m);
    expect(m.body).to.match(/^deepsentry_dropped_lines_total 0$/m);
    expect(m.body).to.match(/^deepsentry_file_truncations_total 2$/m);
    expect(m.body).to.match(/^deepsentry_file_loss_total\{reason="truncated"\} 1$/m);
    expect(m.body).to.match(/^deepsentry_file_loss_total\{reason="gone"\} 0$/m);
    expect(m.body).to.match(/^deepsentry_file_loss_total\{reason="compressed"\} 1$/m);
    expect(m.body).to.match(/^deepsentry_event_loop_delay_seconds\{quantile="0.99"\} [\d.e-]+$/m);
    const h = await request(port, 'GET', '/health');
    expect([h.status, JSON.parse(h.body)]).to.deep.equal([200, { status: 'ok' }]);
    expect((await request(port, 'GET', '/ready')).status).to.equal(200);
    const stats = JSON.parse((await request(port, 'GET', `/api/stats?token=${token}`)).body);
    expect(stats.lines).to.equal(1500);
    expect(stats.history.length).to.be.greaterThan(0);
  });

  it('/ready turns 503 and ingest is refused while the monitor stops', async () => {
    const stopping = monitor.stop();
    expect((await request(port, 'GET', '/ready')).status).to.equal(503);
    expect((await request(port, 'POST', '/ingest', 'x\n', auth)).status).to.equal(503);
    await stopping;
  });
});

describe('live alert sinks', () => {
  let rx: Receiver;
  let url: string;
  beforeEach(async () => {
    rx = new Receiver();
    url = await rx.start();
  });
  afterEach(() => rx.close());

  it('webhook: POSTs JSON, retries 5xx with exponential backoff, keeps order', async () => {
    rx.answer = (n) => (n <= 3 ? 503 : 200); // the first three attempts fail
    const delivered: string[] = [];
    const w = new WebhookSink({ url, backoffMs: 20, concurrency: 1, onDelivered: (a) => delivered.push(a.id) });
    w.write([alert(1), alert(2)]);
    await w.drain(10_000);
    expect(rx.got.map((g) => g.body.id)).to.deep.equal(['1:s', '2:s']);
    expect(rx.got[0]!.body).to.deep.equal(alert(1));
    expect(delivered).to.deep.equal(['1:s', '2:s']);
    expect([w.sent, w.failed, w.dropped]).to.deep.equal([2, 3, 0]);
    await w.close();
  });

  it('webhook: gives up after maxAttempts, and at once on a 4xx that retrying cannot fix', async () => {
    rx.answer = () => 500;
    const gaveUp: string[] = [];
    const w = new WebhookSink({ url, backoffMs: 1, maxAttempts: 3, onGiveUp: (a, why) => gaveUp.push(`${a.id} ${why}`) });
    w.write([alert(1)]);
    await w.drain(10_000);
    expect(rx.attempts).to.equal(3);
    expect(gaveUp).to.deep.equal([`1:s webhook ${new URL(url).origin}/hook: HTTP 500`]);
    rx.answer = () => 400;
    w.write([alert(2)]);
    await w.drain(10_000);
    expect(rx.attempts).to.equal(4);
    expect([w.sent, w.failed, w.dropped]).to.deep.equal([0, 4, 2]);
    await w.close();
  });

  it('webhook: the queue is bounded (oldest dropped, counted); an unreachable endpoint is retried, then given up', async () => {
    await rx.close(); // nothing listens any more
    const gaveUp: string[] = [];
    const w = new WebhookSink({ url, backoffMs: 1, maxAttempts: 2, maxQueue: 3, concurrency: 1, onGiveUp: (a) => gaveUp.push(a.id) });
    w.write([1, 2, 3, 4, 5, 6].map(alert));
    // Alert 1 is in flight; 2..6 queue up in 3 places: 2 and 3 are dropped for room.
    expect(gaveUp.slice(0, 2)).to.deep.equal(['2:s', '3:s']);
    await w.drain(10_000);
    expect(gaveUp).to.deep.equal(['2:s', '3:s', '1:s', '4:s', '5:s', '6:s']);
    expect(w.dropped).to.equal(6);
    expect(w.overflowed).to.equal(2);
    expect(w.failed).to.equal(8);
    await w.close();
    rx = new Receiver();
    await rx.start();
  });

  /** A receiver that holds every request until the test releases it, and records what it saw. */
  async function holdingReceiver() {
    const held: { ids: string[]; res: http.ServerResponse; closed: boolean }[] = [];
    let open = 0;
    let maxOpen = 0;
    const server = http.createServer((req, res) => {
      const parts: Buffer[] = [];
      req.on('data', (c: Buffer) => parts.push(c));
      req.on('end', () => {
        const body = JSON.parse(Buffer.concat(parts).toString('utf8')) as Alert | Alert[];
        const h = { ids: (Array.isArray(body) ? body : [body]).map((a) => a.id), res, closed: false };
        held.push(h);
        maxOpen = Math.max(maxOpen, ++open);
        res.on('close', () => {
          h.closed = true;
          open--;
        });
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    return {
      url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`,
      held,
      maxOpen: () => maxOpen,
      answerAll: () => held.filter((h) => !h.closed && !h.res.headersSent).forEach((h) => h.res.writeHead(200).end()),
      close: () => new Promise<void>((r) => {
        server.close(() => r());
        server.closeAllConnections();
      }),
    };
  }
  const until = async (cond: () => boolean) => {
    while (!cond()) await new Promise((r) => setTimeout(r, 5));
  };

  it('webhook: a slow receiver gets up to `concurrency` requests at once, each alert once', async () => {
    const rcv = await holdingReceiver();
    try {
      const w = new WebhookSink({ url: rcv.url, concurrency: 4, timeoutMs: 60_000 });
      w.write([1, 2, 3, 4, 5, 6, 7, 8, 9, 10].map(alert));
      await until(() => rcv.held.length === 4);
      expect(w.queued).to.equal(10);
      while (rcv.held.some((h) => !h.closed) || w.queued > 0) {
        rcv.answerAll();
        await new Promise((r) => setTimeout(r, 10));
      }
      await w.drain(10_000);
      expect(rcv.maxOpen()).to.equal(4);
      expect(rcv.held.map((h) => h.ids[0]).sort()).to.deep.equal([1, 2, 3, 4, 5, 6, 7, 8, 9, 10].map((i) => `${i}:s`).sort());
      expect([w.sent, w.failed, w.dropped]).to.deep.equal([10, 0, 0]);
      await w.close();
    } finally {
      await rcv.close();
    }
  });

  it('webhook: batches (a JSON array per request) when batchSize > 1', async () => {
    const w = new WebhookSink({ url, batchSize: 10, concurrency: 1 });
    w.write(Array.from({ length: 25 }, (_, i) => alert(i + 1)));
    await w.drain(10_000);
    await w.close();
    const bodies = rx.got.map((g) => g.body as unknown as Alert[]);
    expect(bodies.map((b) => b.length)).to.deep.equal([1, 10, 10, 4]); // the first leaves at once, alone
    expect(bodies.flat().map((a) => a.id)).to.deep.equal(Array.from({ length: 25 }, (_, i) => `${i + 1}:s`));
    expect(w.sent).to.equal(25);
  });

  it('webhook: a request that timed out is closed before its alert is sent again (never two at once)', async () => {
    const rcv = await holdingReceiver(); // never answers by itself
    try {
      const w = new WebhookSink({ url: rcv.url, concurrency: 4, timeoutMs: 100, backoffMs: 10, maxAttempts: 3 });
      w.write([alert(1)]);
      await w.drain(10_000);
      expect(rcv.held.length).to.equal(3);
      expect(rcv.maxOpen()).to.equal(1);
      expect([w.sent, w.failed, w.dropped]).to.deep.equal([0, 3, 1]);
      await w.close();
    } finally {
      await rcv.close();
    }
  });

  it('webhook: close() after a drain timeout aborts what is in flight; nothing is lost from pending()', async function () {
    this.timeout(20_000); // hang guard: close() must not wait for the 60 s request timeout
    const rcv = await holdingReceiver();
    try {
      const w = new WebhookSink({ url: rcv.url, concurrency: 2, timeoutMs: 60_000 });
      w.write([1, 2, 3, 4, 5].map(alert));
      await until(() => rcv.held.length === 2);
      await w.drain(50);
      await w.close();
      expect(w.pending().map((a) => a.id)).to.deep.equal(['1:s', '2:s', '3:s', '4:s', '5:s']);
      await until(() => rcv.held.every((h) => h.closed));
      expect([w.sent, w.failed, w.dropped]).to.deep.equal([0, 0, 0]);
    } finally {
      await rcv.close();
    }
  });

  it('webhook: rejects a URL that is not http(s)', () => {
    expect(() => new WebhookSink({ url: 'ftp://127.0.0.1/x' })).to.throw(/webhook url/);
    expect(() => new WebhookSink({ url: 'not a url' })).to.throw(/webhook url/);
  });

  it('text alerts: score, threshold, session, place, context and expectation', () => {
    const a = { ...alert(7), source: '/var/log/app.log', lineNo: 70, window: ['a', 'b', 'c'], expected: 'd' };
    expect(formatAlert(a, { context: 2 })).to.equal(
      '1970-01-01T00:00:00.000Z ANOMALY line score=9 > threshold=1 session=s at /var/log/app.log:70\n      b\n    > c\n    expected: d\n',
    );
    const chunks: string[] = [];
    const out = new Writable({
      write(c: Buffer, _e: string, cb: () => void) {
        chunks.push(c.toString());
        cb();
      },
    });
    new TextSink(out, 1).write([a]);
    expect(chunks.join('')).to.contain('> c');
    // a key's count judgement names the relation its sessions break
    const c = { ...a, isSessionEnd: true, endReason: 'counts' as const, countRelation: 'count(x) = count(y) held in 9 of 10 training sessions; here 1 and 2' };
    expect(formatAlert(c, { context: 1 })).to.equal(
      '1970-01-01T00:00:00.000Z ANOMALY session end (counts) score=9 > threshold=1 session=s at /var/log/app.log:70\n    > c\n    expected: d\n    count relation: count(x) = count(y) held in 9 of 10 training sessions; here 1 and 2\n',
    );
  });
});
