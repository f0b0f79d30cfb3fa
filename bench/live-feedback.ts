/**
 * `POST /feedback` on a running `deepsentry live`: how long it takes, whether the HTTP server stays
 * responsive, and whether scoring goes on meanwhile. Runs alone:
 *
 *   npx tsx bench/live-feedback.ts --model DIR --log FILE --marks IDS [--runs 3] [--extra 20000]
 *
 * `--only worker|main` runs one placement. DIR is a model written by `deepsentry train`/`run` (copied per run: feedback replaces it), FILE the log it
 * follows (hdfs-dev), IDS the sessions to mark (ids, one a line). Per run and per scorer placement (worker
 * thread, the default, and `--no-worker`): a fresh `deepsentry live --follow` child reads FILE to its end,
 * then the marks are posted; while the request runs, this process asks `GET /health` every 10 ms (latency
 * of each answer) and appends FILE's first `--extra` lines to the followed file (lines the monitor scores
 * while the copy of the model learns). Reported: the request's wall time and the fine-tuning's, /health
 * answers p50 / p99 / max, lines scored during the request, and the marked sessions' scores before → after.
 * Medians over the runs; the load average is printed (the machine is shared).
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { performance } from 'node:perf_hooks';
import { startCli, until } from '../test/support/cli';

const TOKEN = 'bench-feedback-token';

function arg(name: string, dflt?: string): string {
  const i = process.argv.indexOf(`--${name}`);
  if (i < 0 || i + 1 >= process.argv.length) {
    if (dflt === undefined) throw new Error(`give --${name}`);
    return dflt;
  }
  return process.argv[i + 1];
}

async function get(port: number, route: string): Promise<Record<string, unknown>> {
  const res = await fetch(`http://127.0.0.1:${port}${route}`, { headers: { authorization: `Bearer ${TOKEN}` } });
  return (await res.json()) as Record<string, unknown>;
}

const pct = (xs: number[], p: number) => {
  const s = xs.slice().sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(p * s.length))];
};
const median = (xs: number[]) => pct(xs, 0.5);

interface Run {
  seconds: number;
  fineTuneSeconds: number;
  health: number;
  healthP50: number;
  healthP99: number;
  healthMax: number;
  linesDuring: number;
  sessions: Array<{ session: string; before: number; after: number }>;
  threshold: number;
  replaySessions: number;
  flaggedBefore: number;
  flaggedAfter: number;
}

async function once(model: string, log: string, marks: string[], extra: string, worker: boolean): Promise<Run> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ds-bench-feedback-'));
  try {
    fs.cpSync(model, path.join(dir, 'model'), { recursive: true });
    const followed = path.join(dir, 'app.log');
    fs.copyFileSync(log, followed);
    const total = fs.readFileSync(followed, 'utf8').split('\n').filter((l) => l !== '').length;
    const c = startCli(['live', '--model', path.join(dir, 'model'), '--follow', followed, '--listen', '127.0.0.1:0', '--token', TOKEN, '--poll-ms', '10', ...(worker ? [] : ['--no-worker'])]);
    try {
      await until(() => /listening on http:\/\/127\.0\.0\.1:(\d+)\//.test(c.err()) || c.child.exitCode !== null, 'the server', 120_000);
      const port = Number((/listening on http:\/\/127\.0\.0\.1:(\d+)\//.exec(c.err()) as RegExpExecArray)[1]);
      for (;;) {
        const s = await get(port, '/api/stats');
        if (s.lines === total && s.queuedLines === 0) break;
        await new Promise((r) => setTimeout(r, 100));
      }
      let done = false;
      const t0 = performance.now();
      const post = fetch(`http://127.0.0.1:${port}/feedback`, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' }, body: JSON.stringify({ sessions: marks }) })
        .then(async (r) => ({ status: r.status, json: (await r.json()) as Record<string, unknown> }))
        .finally(() => (done = true));
      fs.appendFileSync(followed, extra);
      const lat: number[] = [];
      while (!done) {
        const h0 = performance.now();
        await fetch(`http://127.0.0.1:${port}/health`).then((r) => r.text());
        if (!done) lat.push(performance.now() - h0);
        await new Promise((r) => setTimeout(r, 10));
      }
      const r = await post;
      const seconds = (performance.now() - t0) / 1000;
      if (r.status !== 200) throw new Error(`POST /feedback: ${r.status} ${JSON.stringify(r.json)}`);
      // Lines scored while the request ran: those handed to the scorer before the swap, beyond the file's.
      const linesDuring = (r.json.lastSeqOldModel as number) - total;
      c.child.kill('SIGTERM');
      await c.exit;
      const j = r.json as unknown as Run & { fineTune: { seconds: number } };
      return {
        seconds,
        fineTuneSeconds: j.fineTune.seconds,
        health: lat.length,
        healthP50: lat.length ? pct(lat, 0.5) : NaN,
        healthP99: lat.length ? pct(lat, 0.99) : NaN,
        healthMax: lat.length ? Math.max(...lat) : NaN,
        linesDuring,
        sessions: j.sessions.map((x) => ({ session: x.session, before: x.before, after: x.after })),
        threshold: j.threshold,
        replaySessions: j.replaySessions,
        flaggedBefore: j.flaggedBefore,
        flaggedAfter: j.flaggedAfter,
      };
    } finally {
      if (c.child.exitCode === null) c.child.kill('SIGKILL');
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  const model = path.resolve(arg('model'));
  const log = path.resolve(arg('log'));
  const marks = fs.readFileSync(arg('marks'), 'utf8').split('\n').map((l) => l.trim()).filter((l) => l !== '' && !l.startsWith('#'));
  const runs = Number(arg('runs', '3'));
  const extraLines = Number(arg('extra', '20000'));
  const extra = fs.readFileSync(log, 'utf8').split('\n').filter((l) => l !== '').slice(0, extraLines).join('\n') + '\n';
  console.log(`load average before: ${os.loadavg().map((x) => x.toFixed(2)).join(' ')}`);
  const only = arg('only', 'both');
  for (const worker of [true, false].filter((w) => only === 'both' || (only === 'worker') === w)) {
    const rs: Run[] = [];
    for (let i = 0; i < runs; i++) {
      const r = await once(model, log, marks, extra, worker);
      rs.push(r);
      console.log(`${worker ? 'worker' : 'main  '} run ${i + 1}: ${r.seconds.toFixed(2)} s (fine-tuning ${r.fineTuneSeconds.toFixed(2)} s), /health ${r.health} answers p50 ${r.healthP50.toFixed(1)} ms p99 ${r.healthP99.toFixed(1)} ms max ${r.healthMax.toFixed(1)} ms, ${r.linesDuring} lines scored meanwhile; load ${os.loadavg()[0].toFixed(2)}`);
    }
    const m = (f: (r: Run) => number) => median(rs.map(f));
    console.log(
      `${worker ? 'worker' : 'main  '} median: ${m((r) => r.seconds).toFixed(2)} s (fine-tuning ${m((r) => r.fineTuneSeconds).toFixed(2)} s), /health p50 ${m((r) => r.healthP50).toFixed(1)} ms p99 ${m((r) => r.healthP99).toFixed(1)} ms max ${m((r) => r.healthMax).toFixed(1)} ms, ${m((r) => r.linesDuring)} lines scored meanwhile`,
    );
    const r0 = rs[0];
    console.log(`  threshold ${r0.threshold.toPrecision(6)}, replay ${r0.replaySessions} sessions, flagged in the buffer ${r0.flaggedBefore} → ${r0.flaggedAfter}; ${r0.sessions.map((x) => `${x.session} ${x.before.toPrecision(4)} → ${x.after.toPrecision(4)}`).join(', ')}`);
  }
  console.log(`load average after: ${os.loadavg().map((x) => x.toFixed(2)).join(' ')}`);
}

main().catch((e) => {
  console.error(e);
  process.exitCode = 1;
});
