/**
 * The live tail and monitor where the test needs another process of the system (hence e2e, though quick):
 * a FIFO made by mkfifo(1), and a live process that is not the lock's writer (sleep(1)). The rest of both is
 * test/unit/live-tail.test.ts and test/unit/live-monitor.test.ts.
 */
import { expect } from 'chai';
import { execFileSync, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { DeepSentryError } from '../../lib/errors';
import { LiveMonitor, type MonitorOptions } from '../../lib/live/monitor';
import { NoveltyScorer } from '../../lib/live/novelty';
import { StateStore } from '../../lib/live/state';
import { FileFollower } from '../../lib/live/tail';
import { drain } from '../support/live-fixtures';
import { tempDir } from '../support/tmp';

const rolling: MonitorOptions['threshold'] = { mode: 'rolling', window: 500, k: 3 };

describe('live file tail (mkfifo)', () => {
  let dir: string;
  let f: FileFollower | undefined;
  beforeEach(() => {
    dir = tempDir('tail-fifo');
  });
  afterEach(() => {
    f?.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('a FIFO is read as a stream: no writer blocks nothing, a writer\'s lines all arrive; no cursor', () => {
    const fifo = path.join(dir, 'pipe');
    execFileSync('mkfifo', [fifo]);
    f = new FileFollower(fifo);
    expect(f.poll()).to.deep.equal([]); // would block forever with a plain open
    const w = fs.openSync(fifo, 'w');
    fs.writeSync(w, Array.from({ length: 5000 }, (_, i) => `p${i + 1}`).join('\n') + '\n');
    fs.closeSync(w);
    const got = drain(f);
    expect(got.length).to.equal(5000);
    expect(got[4999]!.text).to.equal('p5000');
    expect(got[0]!.cursor).to.equal(undefined);
    const e = (() => {
      try {
        new FileFollower(fifo, { resumable: true }).poll();
      } catch (err) {
        return err as DeepSentryError;
      }
    })();
    expect(e?.code).to.equal('DS_CONFIG');
    expect(e?.message).to.contain(fifo);
  });
});

describe('live monitor (another live process)', function () {
  it('a stale lock naming a live unrelated process (pid reused after a SIGKILL) does not block a restart', async () => {
    const state = path.join(tempDir('mon-lock'), 's.json');
    const other = spawn('sleep', ['30']); // alive, and not the lock's writer
    try {
      await new Promise((r) => other.once('spawn', r));
      const stat = fs.readFileSync(`/proc/${other.pid}/stat`, 'utf8');
      const start = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19]);
      const boot = fs.readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
      const take = async () => {
        const m = new LiveMonitor(new NoveltyScorer(), { threshold: rolling, tickMs: 0, state: new StateStore(state) });
        await m.start();
        expect(JSON.parse(fs.readFileSync(state + '.lock', 'utf8')).pid).to.equal(process.pid);
        await m.stop();
      };
      // The holder recorded its start time: the live process with that pid started at another time.
      fs.writeFileSync(state + '.lock', JSON.stringify({ pid: other.pid, start: start - 1, boot, host: os.hostname() }));
      await take();
      // A bare pid (older lock format) written before that process started.
      fs.writeFileSync(state + '.lock', String(other.pid));
      const past = new Date(Date.now() - 60_000);
      fs.utimesSync(state + '.lock', past, past);
      await take();
      // The same pid and start time: that process is the holder.
      fs.writeFileSync(state + '.lock', JSON.stringify({ pid: other.pid, start, boot, host: os.hostname() }));
      const m = new LiveMonitor(new NoveltyScorer(), { threshold: rolling, tickMs: 0, state: new StateStore(state) });
      const err = await m.start().then(() => null, (e: unknown) => e as DeepSentryError);
      expect(err?.message).to.contain(`in use by process ${other.pid} (${state}.lock)`);
    } finally {
      other.kill('SIGKILL');
    }
  });
});
