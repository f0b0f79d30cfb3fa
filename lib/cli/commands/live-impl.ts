/**
 * `deepsentry live`: wires a source (followed file, stdin or HTTP ingest), the scorer from createScorer, the
 * monitor, its sinks and the HTTP server, and handles signals: SIGTERM/SIGINT stop reading, score what is in
 * flight, give queued webhook alerts up to --drain-timeout, write a last checkpoint, and exit 0. A second
 * signal exits at once (the checkpoint written last still holds: nothing is lost, lines after it are re-read).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { DeepSentryError } from '../../errors';
import type { FittedThreshold } from '../../models/threshold';
import type { SpotState } from '../../models/spot';
import { createScorer } from '../../live/engine';
import { LineSplitter } from '../../live/lines';
import { LiveMonitor } from '../../live/monitor';
import { LiveServer, parseListen } from '../../live/server';
import { NdjsonFileSink, TextSink, WebhookSink, type AlertSink } from '../../live/sinks';
import { StateStore } from '../../live/state';
import { FileFollower } from '../../live/tail';
import type { Alert } from '../../live/types';
import type { LiveArgs } from './live';

/**
 * The SPOT fit saved with a model (threshold.method spot), for dspot to start from; none when the model's
 * threshold was fitted otherwise (dspot then calibrates on its first --warmup scores).
 */
function savedSpot(modelDir: string): { spot?: { state: SpotState; mean: number } } {
  const file = path.join(modelDir, 'model.json');
  let th: FittedThreshold | undefined;
  try {
    th = (JSON.parse(fs.readFileSync(file, 'utf8')) as { thresholds?: { session?: FittedThreshold } }).thresholds?.session;
  } catch (e) {
    throw new DeepSentryError('DS_MODEL', `${file}: ${(e as Error).message}`);
  }
  return th?.spot ? { spot: { state: th.spot, mean: th.stats.mean } } : {};
}

export async function runLive(a: LiveArgs): Promise<void> {
  const log = (msg: string) => {
    if (!a.quiet) process.stderr.write(`deepsentry live: ${msg}\n`);
  };
  const sourceName = a.follow ?? (a.input === '-' ? 'stdin' : 'http');
  const scorer = await createScorer(a.model, {
    scorer: a.scorer,
    worker: a.worker,
    ...(a.idleTimeout !== undefined ? { idleTimeoutMs: a.idleTimeout } : {}),
    maxOpenSessions: a.maxSessions,
    windowLines: Math.max(a.context, 1),
    ...(a.format !== undefined ? { logs: { format: a.format } } : {}),
  });
  const sinks: AlertSink[] = [];
  const closeAll: (() => Promise<void>)[] = [];
  try {
    if (!a.quiet) {
      sinks.push(
        a.json
          ? { write: (alerts: Alert[]) => void process.stdout.write(alerts.map((x) => JSON.stringify(x) + '\n').join('')) }
          : new TextSink(process.stdout, a.context),
      );
    }
    if (a.alerts) sinks.push(new NdjsonFileSink(a.alerts));
    if (a.webhook) {
      sinks.push(
        new WebhookSink({
          url: a.webhook,
          maxQueue: a.webhookQueue,
          maxAttempts: a.webhookRetries,
          onGiveUp: (al, reason) => log(`webhook gave up on alert ${al.id}: ${reason}`),
        }),
      );
    }
    const mode = a.thresholdMode ?? (scorer.savedThreshold !== undefined || a.threshold !== undefined ? 'fixed' : 'rolling');
    const monitor = new LiveMonitor(scorer, {
      source: sourceName,
      threshold: {
        mode,
        k: a.k,
        window: a.window,
        alpha: a.alpha,
        ...(a.threshold !== undefined ? { floor: a.threshold } : {}),
        ...(a.warmup !== undefined ? { warmup: a.warmup } : {}),
        ...(a.risk !== undefined ? { risk: a.risk } : {}),
        ...(a.level !== undefined ? { level: a.level } : {}),
        ...(a.depth !== undefined ? { depth: a.depth } : {}),
        ...(mode === 'dspot' && a.model !== undefined && a.scorer === 'model' ? savedSpot(a.model) : {}),
      },
      batchDelayMs: a.batchDelay,
      maxBatchLines: a.maxBatch,
      sinks,
      ...(a.state ? { state: new StateStore(a.state), checkpointMs: a.checkpointMs } : {}),
      defaultMetrics: true,
    });
    monitor.on('notice', log);
    const cursor = await monitor.start();
    log(`scorer ${scorer.name}, threshold ${mode}${monitor.threshold.floor !== undefined ? ` (floor ${monitor.threshold.floor})` : ''}, input ${sourceName}`);

    let server: LiveServer | null = null;
    if (a.listen !== undefined) {
      const { host, port } = parseListen(a.listen);
      const token = a.token ?? process.env.DEEPSENTRY_TOKEN;
      server = new LiveServer(monitor, { host, port, maxBodyBytes: a.maxBody, ingest: sourceName === 'http', ...(token ? { token } : {}) });
      const addr = await server.listen();
      const shown = addr.host.includes(':') ? `[${addr.host}]` : addr.host;
      log(`listening on http://${shown}:${addr.port}/ (dashboard), /metrics, /health, /ready${sourceName === 'http' ? ', POST /ingest' : ''}`);
      if (host !== '127.0.0.1' && host !== '::1' && host !== 'localhost' && !token) log(`warning: bound to ${host} without --token: anyone who can reach it can read metrics${sourceName === 'http' ? ' and ingest lines' : ''}`);
    }

    // The source runs until it ends (stdin EOF) or a signal stops it.
    let stopSource: () => void = () => undefined;
    let inputEnded = false;
    const sourceDone: Promise<void> = (async () => {
      if (a.follow) {
        const f = new FileFollower(a.follow, { pollMs: a.pollMs, from: a.from, onNotice: (n) => log(n.message), ...(cursor ? { cursor } : {}) });
        stopSource = () => f.stop();
        await f.run((lines) => monitor.push(lines));
      } else if (a.input === '-') {
        const splitter = new LineSplitter();
        let stopped = false;
        stopSource = () => {
          stopped = true;
          process.stdin.pause();
          process.stdin.destroy();
        };
        try {
          for await (const chunk of process.stdin) {
            if (stopped) break;
            const lines = splitter.push(chunk as Buffer);
            if (lines.length > 0) await monitor.push(lines);
          }
        } catch (err) {
          if (!stopped) throw err;
        }
        if (!stopped) {
          const rest = splitter.finish();
          if (rest.length > 0) await monitor.push(rest);
          inputEnded = true;
        }
      } else {
        await new Promise<void>((resolve) => (stopSource = resolve));
      }
    })();

    let signalled: string | null = null;
    const onSignal = (sig: string) => {
      if (signalled) {
        log(`${sig} again: exiting now (the last checkpoint stands)`);
        process.exit(1);
      }
      signalled = sig;
      log(`${sig}: draining in-flight lines and queued alerts…`);
      stopSource();
    };
    const onTerm = () => onSignal('SIGTERM');
    const onInt = () => onSignal('SIGINT');
    process.on('SIGTERM', onTerm);
    process.on('SIGINT', onInt);
    const failed = new Promise<never>((_, reject) => monitor.once('error', reject));
    failed.catch(() => undefined); // also reported by stop() below; never an unhandled rejection
    try {
      await Promise.race([sourceDone, failed]);
    } finally {
      process.off('SIGTERM', onTerm);
      process.off('SIGINT', onInt);
      stopSource();
      if (server) closeAll.push(() => server!.close());
    }
    // Finite input over (stdin EOF, no state to resume): end the open sessions so their ends are scored too.
    await monitor.stop({ flushSessions: inputEnded && !a.state, drainTimeoutMs: a.drainTimeout });
    const s = monitor.snapshot();
    log(`stopped: ${s.lines} lines, ${s.events} events, ${s.anomalies} anomalies, ${s.droppedLines} dropped, ${s.sessions.evictedSessions} sessions evicted, ${s.sessions.unparsedLines} unparsed`);
  } catch (err) {
    await scorer.close().catch(() => undefined);
    throw err instanceof DeepSentryError || !(err instanceof Error) ? err : new DeepSentryError('DS_IO', err.message, { cause: err });
  } finally {
    for (const c of closeAll) await c();
  }
}
