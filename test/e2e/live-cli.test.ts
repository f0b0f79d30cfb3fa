/**
 * `deepsentry live` as a real child process: a SIGKILL mid-file and a restart give exactly the alerts of an
 * uninterrupted run; SIGTERM drains queued webhook alerts; a directory without a model is a DS_MODEL error.
 */
import { expect } from 'chai';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as path from 'node:path';
import type { Alert } from '../../lib/live/types';
import { startCli, until, type StartedCli } from '../support/cli';
import { hdfsLines } from '../support/live-fixtures';
import { trainedModel } from '../support/pipeline-fixtures';
import { requireData } from '../support/data';
import { tempDir } from '../support/tmp';

const LINES = hdfsLines(24_000);


function checkpoint(file: string): { seq: number; cursor: { offset: number } } | null {
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch {
    return null;
  }
}

function alerts(file: string): Alert[] {
  if (!fs.existsSync(file)) return [];
  return fs.readFileSync(file, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as Alert);
}
// The two runs follow different files (a.log, b.log) at different times: everything else must match.
const comparable = (a: Alert) => JSON.stringify({ ...a, time: undefined, source: undefined });

describe('deepsentry live (child process)', function () {
  this.timeout(120_000);
  let dir: string;
  beforeEach(() => {
    dir = tempDir('live-cli');
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  /** Appends LINES to `log` in chunks while `onChunk` may act (kill, restart) between chunks. */
  async function feed(log: string, onChunk: (written: number) => Promise<void>): Promise<void> {
    fs.writeFileSync(log, '');
    for (let i = 0; i < LINES.length; i += 1000) {
      fs.appendFileSync(log, LINES.slice(i, i + 1000).join('\n') + '\n');
      await onChunk(i + 1000);
      await new Promise((r) => setTimeout(r, 15));
    }
  }

  const args = (name: string, scorer: string[] = ['--scorer', 'novelty']) => [
    'live', ...scorer, '--follow', path.join(dir, `${name}.log`), '--state', path.join(dir, `${name}.state`),
    '--alerts', path.join(dir, `${name}.ndjson`), '--checkpoint-ms', '50', '--poll-ms', '10', '--quiet', '--threshold-mode', 'rolling', '--window', '500',
  ];
  const total = LINES.reduce((n, l) => n + Buffer.byteLength(l) + 1, 0);

  async function finish(run: StartedCli, name: string): Promise<void> {
    await until(() => checkpoint(path.join(dir, `${name}.state`))?.cursor?.offset === total, `${name} to reach the end of its file`);
    run.child.kill('SIGTERM');
    expect(await run.exit).to.equal(0);
  }

  /** The SIGKILL scenario with the scorer `scorer` gives (CLI flags), whose uninterrupted run raises more than `minAlerts`. */
  async function killAndRestart(scorer: string[], minAlerts: number): Promise<void> {
    // Uninterrupted.
    const a = startCli(args('a', scorer));
    // the first chunk after which, once its lines are scored, an alert has been raised
    let firstAlertAfter = -1;
    await feed(path.join(dir, 'a.log'), async (written) => {
      if (firstAlertAfter >= 0) return;
      await until(() => checkpoint(path.join(dir, 'a.state'))?.seq === written, `a to score ${written} lines`);
      if (alerts(path.join(dir, 'a.ndjson')).length > 0) firstAlertAfter = written;
    });
    await finish(a, 'a');
    const want = alerts(path.join(dir, 'a.ndjson'));
    expect(want.length).to.be.greaterThan(minAlerts);

    // Killed half-way (or, when the first alert comes later, once past it), restarted.
    const killAfter = Math.max(12_000, firstAlertAfter);
    expect(killAfter, `the first alert comes after ${firstAlertAfter} lines`).to.be.lessThan(LINES.length);
    let b = startCli(args('b', scorer));
    let killedAt = -1;
    await feed(path.join(dir, 'b.log'), async (written) => {
      if (written === killAfter) {
        await until(() => (checkpoint(path.join(dir, 'b.state'))?.seq ?? 0) > 4000 && alerts(path.join(dir, 'b.ndjson')).length > 0, 'b to checkpoint and alert');
        b.child.kill('SIGKILL');
        await b.exit;
        killedAt = checkpoint(path.join(dir, 'b.state'))!.seq;
        b = startCli(args('b', scorer));
      }
    });
    await finish(b, 'b');
    expect(killedAt).to.be.within(4001, LINES.length - 1);
    expect(b.err()).to.equal(''); // --quiet: nothing but errors
    const got = alerts(path.join(dir, 'b.ndjson'));
    expect(new Set(got.map((x) => x.id)).size).to.equal(got.length);
    expect(got.map(comparable)).to.deep.equal(want.map(comparable));
  }

  it('SIGKILL mid-file and restart: no line skipped, no alert repeated, same alerts as an uninterrupted run', async () => {
    await killAndRestart(['--scorer', 'novelty'], 20);
  });

  // The model scorer in its worker: the lines are parsed in the main thread, whose clock a restart restores.
  it('the same with the trained model in its worker thread', async function () {
    requireData(this);
    // The floor of the rolling threshold below the tiny model's saved threshold (~17.5: fitted on 193 held-back
    // blocks, mean 7.5, σ 3.3), so that line events alert as well as count judgements: hundreds of alerts to compare
    // across the restart, not one.
    await killAndRestart(['--model', await trainedModel(), '--threshold', '12'], 5);
  });

  it('SIGTERM drains queued webhook alerts before exiting', async () => {
    const received: string[] = [];
    const server = http.createServer((req, res) => {
      const parts: Buffer[] = [];
      req.on('data', (c: Buffer) => parts.push(c));
      // A slow receiver: alerts pile up in the webhook queue.
      req.on('end', () => setTimeout(() => {
        received.push((JSON.parse(Buffer.concat(parts).toString()) as Alert).id);
        res.writeHead(204).end();
      }, 5));
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/alerts`;
    const log = path.join(dir, 'c.log');
    fs.writeFileSync(log, LINES.slice(0, 6000).join('\n') + '\n');
    const c = startCli(['live', '--scorer', 'novelty', '--follow', log, '--alerts', path.join(dir, 'c.ndjson'), '--webhook', url, '--window', '200', '--poll-ms', '10', '--listen', '127.0.0.1:0']);
    await until(() => alerts(path.join(dir, 'c.ndjson')).length >= 10, 'some alerts');
    // Its HTTP side: metrics and health answer; ingest is off because the input is a file.
    const port = Number(/listening on http:\/\/127\.0\.0\.1:(\d+)\//.exec(c.err())![1]);
    const get = (p: string, method = 'GET') =>
      new Promise<{ status: number; body: string }>((resolve, reject) => {
        const req = http.request({ host: '127.0.0.1', port, path: p, method }, (res) => {
          let body = '';
          res.on('data', (d: Buffer) => (body += d.toString()));
          res.on('end', () => resolve({ status: res.statusCode!, body }));
        });
        req.on('error', reject);
        req.end(method === 'POST' ? 'x\n' : undefined);
      });
    expect((await get('/health')).status).to.equal(200);
    expect((await get('/metrics')).body).to.match(/^deepsentry_lines_total \d+$/m);
    expect((await get('/ingest', 'POST')).status).to.equal(409);
    c.child.kill('SIGTERM');
    expect(await c.exit).to.equal(0);
    const written = alerts(path.join(dir, 'c.ndjson')).map((x) => x.id);
    // Up to --webhook-concurrency requests at once: every alert once, not necessarily in order.
    expect([...received].sort()).to.deep.equal([...written].sort());
    expect(c.out()).to.contain(' ANOMALY '); // the human-readable alerts on stdout
    expect(c.err()).to.match(/SIGTERM: draining/);
    await new Promise<void>((r) => server.close(() => r()));
  });

  it('rotated twice while stopped: the restart reads the rest of app.log.1, then app.log.2, then app.log (20,000 lines, none lost or repeated)', async () => {
    const log = path.join(dir, 'app.log');
    const put = (file: string, from: number, to: number) => fs.appendFileSync(file, LINES.slice(from, to).join('\n') + '\n');
    const size = (file: string) => fs.statSync(file).size;
    put(log, 0, 5000);
    const live = () => startCli(['live', '--scorer', 'novelty', '--follow', log, '--state', path.join(dir, 'app.state'), '--checkpoint-ms', '50', '--poll-ms', '10', '--threshold-mode', 'rolling', '--window', '500', '--json']);
    const first = live();
    await until(() => checkpoint(path.join(dir, 'app.state'))?.cursor?.offset === size(log), 'the first 5,000 lines');
    first.child.kill('SIGTERM');
    expect(await first.exit).to.equal(0);
    // While it is down: more lines, a rotation, a new file, another rotation, a third file.
    put(log, 5000, 10000);
    fs.renameSync(log, log + '.1');
    put(log, 10000, 15000);
    fs.renameSync(log, log + '.2');
    put(log, 15000, 20000);
    const second = live();
    const state = () => checkpoint(path.join(dir, 'app.state')) as { seq: number; cursor: { path: string; offset: number } } | null;
    await until(() => state()?.cursor.path === log && state()!.cursor.offset === size(log), 'the end of the new app.log');
    second.child.kill('SIGTERM');
    expect(await second.exit).to.equal(0);
    expect(state()!.seq).to.equal(20_000);
    expect(second.err()).to.match(/reading the rest of .*app\.log\.1 from byte \d+ first/);
    expect(second.err()).to.match(/app\.log\.2 was rotated while stopped: reading it whole/);
    expect(second.err()).to.not.match(/LINES LOST|warning/);
  });

  it('--follow on a FIFO: /health answers with no writer, a writer\'s 5,000 lines are all read, SIGTERM exits 0', async () => {
    const fifo = path.join(dir, 'pipe');
    execFileSync('mkfifo', [fifo]);
    const r = startCli(['live', '--scorer', 'novelty', '--follow', fifo, '--poll-ms', '10', '--listen', '127.0.0.1:0']);
    await until(() => /listening on/.test(r.err()), 'the HTTP server');
    const port = Number(/listening on http:\/\/127\.0\.0\.1:(\d+)\//.exec(r.err())![1]);
    const get = (p: string) =>
      new Promise<{ status: number; body: string }>((resolve, reject) => {
        http.get({ host: '127.0.0.1', port, path: p }, (res) => {
          let body = '';
          res.on('data', (d: Buffer) => (body += d.toString()));
          res.on('end', () => resolve({ status: res.statusCode!, body }));
        }).on('error', reject);
      });
    await until(() => /following .*pipe \(a FIFO/.test(r.err()), 'the FIFO to be opened');
    expect((await get('/health')).status).to.equal(200); // no writer yet: nothing blocks
    const w = await fs.promises.open(fifo, 'w');
    await w.write(LINES.slice(0, 5000).join('\n') + '\n');
    await w.close();
    for (let i = 0; i < 3000 && !/^deepsentry_lines_total 5000$/m.test((await get('/metrics')).body); i++) await new Promise((res) => setTimeout(res, 10));
    r.child.kill('SIGTERM');
    expect(await r.exit).to.equal(0);
    expect(r.err()).to.match(/stopped: 5000 lines/);
    // A FIFO cannot be resumed at a byte offset: --state refuses it, naming it.
    const s = startCli(['live', '--scorer', 'novelty', '--follow', fifo, '--state', path.join(dir, 'p.state')]);
    expect(await s.exit).to.equal(1);
    expect(s.err()).to.contain(`cannot checkpoint ${fifo}: it is a FIFO`);
  });

  it('--follow DIR is an error naming the directory', async () => {
    const r = startCli(['live', '--scorer', 'novelty', '--follow', dir]);
    expect(await r.exit).to.equal(1);
    expect(r.err()).to.contain(`cannot follow ${dir}: it is a directory`);
  });

  it('SIGTERM with a receiver slower than --drain-timeout: exits within it, every alert delivered or kept in --state', async () => {
    const received = new Set<string>();
    const server = http.createServer((req, res) => {
      const parts: Buffer[] = [];
      req.on('data', (c: Buffer) => parts.push(c));
      req.on('end', () => {
        received.add((JSON.parse(Buffer.concat(parts).toString()) as Alert).id);
        setTimeout(() => res.writeHead(204).end(), 10_000); // answers in 10 s
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/alerts`;
    const log = path.join(dir, 'w.log');
    fs.writeFileSync(log, LINES.slice(0, 6000).join('\n') + '\n');
    const stateFile = path.join(dir, 'w.state');
    const r = startCli(['live', '--scorer', 'novelty', '--follow', log, '--state', stateFile, '--alerts', path.join(dir, 'w.ndjson'), '--webhook', url, '--webhook-timeout', '30000', '--drain-timeout', '2000', '--window', '200', '--poll-ms', '10', '--checkpoint-ms', '50', '--quiet']);
    await until(() => checkpoint(stateFile)?.cursor?.offset === fs.statSync(log).size && alerts(path.join(dir, 'w.ndjson')).length >= 10, 'the file read and alerts raised');
    const t0 = Date.now();
    r.child.kill('SIGTERM');
    expect(await r.exit).to.equal(0);
    expect(Date.now() - t0).to.be.lessThan(2000 + 5000); // a hang guard, not a speed test
    const raised = alerts(path.join(dir, 'w.ndjson')).map((a) => a.id);
    const pending = (JSON.parse(fs.readFileSync(stateFile, 'utf8')) as { webhookPending: Alert[] }).webhookPending.map((a) => a.id);
    expect(pending.length).to.be.greaterThan(0);
    for (const id of raised) expect(received.has(id) || pending.includes(id), `alert ${id} delivered or pending`).to.equal(true);
    expect(r.err()).to.contain(`${pending.length} not delivered within --drain-timeout 2000 ms (kept in the state file`);
    server.closeAllConnections();
    await new Promise<void>((res) => server.close(() => res()));
  });

  it('a model directory without a model is a DS_MODEL error (exit 1); usage errors exit 2', async () => {
    fs.mkdirSync(path.join(dir, 'empty'));
    const r = startCli(['live', '--model', path.join(dir, 'empty'), '--follow', path.join(dir, 'x.log')]);
    expect(await r.exit).to.equal(1);
    expect(r.err()).to.match(/holds no model: model\.json is missing/);
    const j = startCli(['live', '--model', path.join(dir, 'nope'), '-', '--json']);
    j.child.stdin!.end();
    expect(await j.exit).to.equal(1);
    expect(JSON.parse(j.out()).error.code).to.equal('DS_MODEL');
    const u = startCli(['live', '--scorer', 'novelty', '--state', path.join(dir, 's'), '-']);
    expect(await u.exit).to.equal(2);
    expect(u.err()).to.match(/--state needs --follow/);
  });

  it('reads stdin (-) to its end: every line scored, open sessions ended and scored', async () => {
    const r = startCli(['live', '--scorer', 'novelty', '-', '--json', '--window', '200']);
    r.child.stdin!.end(LINES.slice(0, 3000).join('\n'));
    expect(await r.exit).to.equal(0);
    const got = r.out().split('\n').filter(Boolean).map((l) => JSON.parse(l) as Alert);
    expect(got.length).to.be.greaterThan(0);
    expect(got.every((a) => a.source === 'stdin')).to.equal(true);
    expect(r.err()).to.match(/stopped: 3000 lines, \d+ events/);
    expect(r.err()).to.match(/0 dropped/);
  });
});
