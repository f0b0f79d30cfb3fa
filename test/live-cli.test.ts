/**
 * `deepsentry live` as a real child process: a SIGKILL mid-file and a restart give exactly the alerts of an
 * uninterrupted run; SIGTERM drains queued webhook alerts; a directory without a model is a DS_MODEL error.
 */
import { expect } from 'chai';
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import type { Alert } from '../lib/live/types';
import { hdfsLines } from './live-fixtures';

const ROOT = path.resolve(__dirname, '..');
const LINES = hdfsLines(24_000);

/** Starts the CLI from the TypeScript sources (tsx), as `deepsentry <args>`. */
function cli(args: string[]): { child: ChildProcess; out: () => string; err: () => string; exit: Promise<number | null> } {
  const child = spawn(process.execPath, ['--import', 'tsx', '-e', "require('./lib/cli/main').main(process.argv.slice(1)).then((c) => { process.exitCode = c; })", ...args], {
    cwd: ROOT,
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stdout!.on('data', (c: Buffer) => (out += c.toString()));
  child.stderr!.on('data', (c: Buffer) => (err += c.toString()));
  const exit = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return { child, out: () => out, err: () => err, exit };
}

async function until(cond: () => boolean, what: string, ms = 30_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

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
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ds-cli-'));
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

  const args = (name: string) => [
    'live', '--scorer', 'novelty', '--follow', path.join(dir, `${name}.log`), '--state', path.join(dir, `${name}.state`),
    '--alerts', path.join(dir, `${name}.ndjson`), '--checkpoint-ms', '50', '--poll-ms', '10', '--quiet', '--threshold-mode', 'rolling', '--window', '500',
  ];
  const total = LINES.reduce((n, l) => n + Buffer.byteLength(l) + 1, 0);

  async function finish(run: ReturnType<typeof cli>, name: string): Promise<void> {
    await until(() => checkpoint(path.join(dir, `${name}.state`))?.cursor?.offset === total, `${name} to reach the end of its file`);
    run.child.kill('SIGTERM');
    expect(await run.exit).to.equal(0);
  }

  it('SIGKILL mid-file and restart: no line skipped, no alert repeated, same alerts as an uninterrupted run', async () => {
    // Uninterrupted.
    const a = cli(args('a'));
    await feed(path.join(dir, 'a.log'), async () => undefined);
    await finish(a, 'a');
    const want = alerts(path.join(dir, 'a.ndjson'));
    expect(want.length).to.be.greaterThan(20);

    // Killed half-way, restarted.
    let b = cli(args('b'));
    let killedAt = -1;
    await feed(path.join(dir, 'b.log'), async (written) => {
      if (written === 12_000) {
        await until(() => (checkpoint(path.join(dir, 'b.state'))?.seq ?? 0) > 4000 && alerts(path.join(dir, 'b.ndjson')).length > 0, 'b to checkpoint and alert');
        b.child.kill('SIGKILL');
        await b.exit;
        killedAt = checkpoint(path.join(dir, 'b.state'))!.seq;
        b = cli(args('b'));
      }
    });
    await finish(b, 'b');
    expect(killedAt).to.be.within(4001, LINES.length - 1);
    expect(b.err()).to.equal(''); // --quiet: nothing but errors
    const got = alerts(path.join(dir, 'b.ndjson'));
    expect(new Set(got.map((x) => x.id)).size).to.equal(got.length);
    expect(got.map(comparable)).to.deep.equal(want.map(comparable));
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
    const c = cli(['live', '--scorer', 'novelty', '--follow', log, '--alerts', path.join(dir, 'c.ndjson'), '--webhook', url, '--window', '200', '--poll-ms', '10', '--listen', '127.0.0.1:0']);
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
    expect(received).to.deep.equal(written);
    expect(c.out()).to.contain(' ANOMALY '); // the human-readable alerts on stdout
    expect(c.err()).to.match(/SIGTERM: draining/);
    await new Promise<void>((r) => server.close(() => r()));
  });

  it('a model directory without a model is a DS_MODEL error (exit 1); usage errors exit 2', async () => {
    fs.mkdirSync(path.join(dir, 'empty'));
    const r = cli(['live', '--model', path.join(dir, 'empty'), '--follow', path.join(dir, 'x.log')]);
    expect(await r.exit).to.equal(1);
    expect(r.err()).to.match(/holds no model: model\.json is missing/);
    const j = cli(['live', '--model', path.join(dir, 'nope'), '-', '--json']);
    j.child.stdin!.end();
    expect(await j.exit).to.equal(1);
    expect(JSON.parse(j.out()).error.code).to.equal('DS_MODEL');
    const u = cli(['live', '--scorer', 'novelty', '--state', path.join(dir, 's'), '-']);
    expect(await u.exit).to.equal(2);
    expect(u.err()).to.match(/--state needs --follow/);
  });

  it('reads stdin (-) to its end: every line scored, open sessions ended and scored', async () => {
    const r = cli(['live', '--scorer', 'novelty', '-', '--json', '--window', '200']);
    r.child.stdin!.end(LINES.slice(0, 3000).join('\n'));
    expect(await r.exit).to.equal(0);
    const got = r.out().split('\n').filter(Boolean).map((l) => JSON.parse(l) as Alert);
    expect(got.length).to.be.greaterThan(0);
    expect(got.every((a) => a.source === 'stdin')).to.equal(true);
    expect(r.err()).to.match(/stopped: 3000 lines, \d+ events/);
    expect(r.err()).to.match(/0 dropped/);
  });
});
