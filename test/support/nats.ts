/**
 * A real nats-server for the scale-out tests: JetStream on, bound to 127.0.0.1 on a free port, its store in
 * a temp directory, stopped (and the directory removed) by `stop()` or at exit. `restart()` stops it with
 * SIGTERM and starts it again on the same port and store, as an operator's restart would.
 *
 * `requireNats(ctx)` skips a suite, saying why, when the nats-server binary is absent — except under
 * CI=true, where its absence fails the suite (scripts/ci-system-deps.sh installs it).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import { skipUnlessCI } from './skip';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';

export function natsServerBinary(): string | null {
  for (const dir of (process.env.PATH ?? '').split(':').concat(['/usr/sbin', '/usr/bin'])) {
    const p = path.join(dir, 'nats-server');
    if (fs.existsSync(p)) return p;
  }
  return null;
}

export function requireNats(ctx: Mocha.Context): string {
  const bin = natsServerBinary();
  if (bin !== null) return bin;
  const why = 'nats-server is not installed (apt-get install nats-server): the scale-out tests need a real server';
  return skipUnlessCI(ctx, why);
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const c = net.connect(port, '127.0.0.1');
    c.once('connect', () => {
      c.destroy();
      resolve(true);
    });
    c.once('error', () => resolve(false));
  });
}

export class NatsServer {
  private proc: ChildProcess | null = null;
  private constructor(
    private readonly bin: string,
    readonly port: number,
    readonly dir: string,
  ) {}

  get url(): string {
    return `nats://127.0.0.1:${this.port}`;
  }

  static async start(bin: string): Promise<NatsServer> {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ds-nats-'));
    const s = new NatsServer(bin, await freePort(), dir);
    process.on('exit', () => {
      s.proc?.kill('SIGKILL');
      fs.rmSync(dir, { recursive: true, force: true });
    });
    await s.launch();
    return s;
  }

  private async launch(): Promise<void> {
    const log = fs.openSync(path.join(this.dir, 'server.log'), 'a');
    this.proc = spawn(this.bin, ['-js', '-a', '127.0.0.1', '-p', String(this.port), '-sd', path.join(this.dir, 'store')], { stdio: ['ignore', log, log] });
    fs.closeSync(log);
    for (let i = 0; i < 200; i++) {
      if (await accepts(this.port)) return;
      if (this.proc.exitCode !== null) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error(`nats-server did not start on 127.0.0.1:${this.port}: ${fs.readFileSync(path.join(this.dir, 'server.log'), 'utf8').slice(-2000)}`);
  }

  private async halt(): Promise<void> {
    const p = this.proc;
    if (p === null || p.exitCode !== null) return;
    const exited = new Promise((r) => p.once('exit', r));
    p.kill('SIGTERM');
    const t = setTimeout(() => p.kill('SIGKILL'), 10_000);
    await exited;
    clearTimeout(t);
  }

  async restart(): Promise<void> {
    await this.halt();
    await this.launch();
  }

  async stop(): Promise<void> {
    await this.halt();
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}
