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
import { inputWarnings, IssueLog } from '../../logs/issues';
import { LineSplitter } from '../../logs/lines';
import { LiveMonitor } from '../../live/monitor';
import { LiveServer, parseListen, type MonitorService } from '../../live/server';
import { NdjsonFileSink, TextSink, WebhookSink, type AlertSink } from '../../live/sinks';
import { StateStore } from '../../live/state';
import { FileFollower } from '../../live/tail';
import type { ThresholdOptions } from '../../live/thresholds';
import type { Alert } from '../../live/types';
import type { LiveArgs } from './live';
import { sessionOverrides } from '../options';
import { flagWording } from '../flags';

/**
 * `--listen`'s server (lib/live/server.ts) for a monitor or a scale-out worker, with --token (default
 * $DEEPSENTRY_TOKEN) and --max-body; logs its routes and warns when it is reachable from other machines
 * without a token.
 */
export async function liveHttp(a: LiveArgs, listen: string, service: MonitorService, ingest: boolean, log: (msg: string) => void): Promise<LiveServer> {
  const { host, port } = parseListen(listen);
  const token = a.token ?? process.env.DEEPSENTRY_TOKEN;
  const server = new LiveServer(service, { host, port, maxBodyBytes: a.maxBody, ingest, ...(token ? { token } : {}) });
  const addr = await server.listen();
  const shown = addr.host.includes(':') ? `[${addr.host}]` : addr.host;
  log(`listening on http://${shown}:${addr.port}/ (dashboard), /api/stats, /metrics, /health, /ready${ingest ? ', POST /ingest' : ''}${service.feedback ? ', POST /feedback' : ''}`);
  if (host !== '127.0.0.1' && host !== '::1' && host !== 'localhost' && !token) log(`warning: bound to ${host} without --token: anyone who can reach it can read metrics${ingest ? ' and ingest lines' : ''}`);
  return server;
}

/** The alert sinks of `deepsentry live`'s options: stdout (text or --json), --alerts FILE, --webhook URL. */
export function liveSinks(a: LiveArgs, warn: (msg: string) => void): { sinks: AlertSink[]; webhook: WebhookSink | null } {
  const sinks: AlertSink[] = [];
  if (!a.quiet) {
    sinks.push(
      a.json
        ? { write: (alerts: Alert[]) => void process.stdout.write(alerts.map((x) => JSON.stringify(x) + '\n').join('')) }
        : new TextSink(process.stdout, a.context),
    );
  }
  if (a.alerts) sinks.push(new NdjsonFileSink(a.alerts));
  let webhook: WebhookSink | null = null;
  if (a.webhook) {
    webhook = new WebhookSink({
      url: a.webhook,
      maxQueue: a.webhookQueue,
      maxAttempts: a.webhookRetries,
      timeoutMs: a.webhookTimeout,
      concurrency: a.webhookConcurrency,
      batchSize: a.webhookBatch,
      onGiveUp: (al, reason) => warn(`webhook gave up on alert ${al.id}: ${reason}`),
    });
    sinks.push(webhook);
  }
  return { sinks, webhook };
}

/** The live threshold of `deepsentry live`'s options (default mode: fixed when there is a saved threshold). */
export function liveThreshold(a: LiveArgs, savedThreshold: number | undefined): ThresholdOptions {
  const mode = a.thresholdMode ?? (savedThreshold !== undefined || a.threshold !== undefined ? 'fixed' : 'rolling');
  return {
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
  };
}

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
  if (a.nats !== undefined) {
    const { runScaleWorker } = await import('./scale-impl');
    return runScaleWorker(a);
  }
  const log = (msg: string) => {
    if (!a.quiet) process.stderr.write(`deepsentry live: ${msg}\n`);
  };
  // Lost or undelivered data is said even with --quiet.
  const warn = (msg: string) => process.stderr.write(`deepsentry live: warning: ${flagWording(msg)}\n`);
  const sourceName = a.follow ?? (a.input === '-' ? 'stdin' : 'http');
  // How sessions are cut: a trained model fixes it (its training's); the model-free scorer takes the flags.
  const { idleTimeoutMs: _idle, ...session } = sessionOverrides(a);
  if (a.scorer === 'model' && Object.keys(session).length > 0) {
    const given = (['sessionMode', 'sessionKey', 'sessionField', 'sessionWindow', 'sessionLines'] as const).filter((k) => a[k] !== undefined).map((k) => `--${k.replace(/[A-Z]/g, (c) => '-' + c.toLowerCase())}`);
    throw new DeepSentryError('DS_CONFIG', `${given.join(', ')}: a trained model cuts sessions as it was trained to (train with these flags instead); --idle-timeout applies to both scorers, the other session flags to --scorer novelty`);
  }
  const scorer = await createScorer(a.model, {
    scorer: a.scorer,
    worker: a.worker,
    backend: a.backend,
    precision: a.precision,
    ...(a.threads !== undefined ? { threads: a.threads } : {}),
    ...(a.idleTimeout !== undefined ? { idleTimeoutMs: a.idleTimeout } : {}),
    maxOpenSessions: a.maxSessions,
    feedbackSessions: a.feedbackSessions,
    ...(a.setAside !== undefined && a.setAside.length > 0 ? { setAside: a.setAside.map(String) } : {}),
    windowLines: Math.max(a.context, 1),
    ...(a.format !== undefined || Object.keys(session).length > 0 ? { logs: { ...(a.format !== undefined ? { format: a.format } : {}), ...(Object.keys(session).length > 0 ? { session } : {}) } } : {}),
  });
  const closeAll: (() => Promise<void>)[] = [];
  try {
    const { sinks, webhook } = liveSinks(a, warn);
    const threshold = liveThreshold(a, scorer.savedThreshold);
    const mode = threshold.mode;
    const monitor = new LiveMonitor(scorer, {
      source: sourceName,
      threshold,
      batchDelayMs: a.batchDelay,
      ...(a.maxBatch !== undefined ? { maxBatchLines: a.maxBatch } : {}),
      sinks,
      ...(a.state ? { state: new StateStore(a.state), checkpointMs: a.checkpointMs } : {}),
      defaultMetrics: true,
    });
    monitor.on('notice', log);
    const cursor = await monitor.start();
    log(`scorer ${scorer.name}, threshold ${mode}${monitor.threshold.floor !== undefined ? ` (floor ${monitor.threshold.floor})` : ''}, input ${sourceName}`);

    const server = a.listen !== undefined ? await liveHttp(a, a.listen, monitor, sourceName === 'http', log) : null;

    // Lines the line policy drops (invalid UTF-8, NUL byte, over-long: lib/logs/lines.ts), reported at the end as
    // `deepsentry score` reports them.
    const inputIssues = new IssueLog(false, 5);
    // The source runs until it ends (stdin EOF) or a signal stops it.
    let stopSource: () => void = () => undefined;
    let inputEnded = false;
    const sourceDone: Promise<void> = (async () => {
      if (a.follow) {
        const f = new FileFollower(a.follow, {
          pollMs: a.pollMs,
          issues: inputIssues,
          from: a.from,
          resumable: a.state !== undefined,
          onNotice: (n) => {
            monitor.metrics.tailNotice(n);
            if (n.loss) warn(n.message);
            else log(n.message);
          },
          ...(cursor ? { cursor } : {}),
        });
        stopSource = () => f.stop();
        await f.run((lines) => monitor.push(lines));
      } else if (a.input === '-') {
        const splitter = new LineSplitter(0, 1, undefined, inputIssues, 'stdin');
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
    if (webhook && (webhook.queued > 0 || webhook.dropped > 0)) {
      const kept = a.state ? 'kept in the state file: sent after the restart' : 'lost: no --state to keep them';
      warn(`webhook: ${webhook.sent} alert(s) delivered, ${webhook.queued} not delivered within --drain-timeout ${a.drainTimeout} ms (${kept}), ${webhook.dropped} given up on (${webhook.overflowed} for a full queue)`);
    }
    const s = monitor.snapshot();
    log(`stopped: ${s.lines} lines, ${s.events} events, ${s.anomalies} anomalies, ${s.droppedLines} dropped, ${s.sessions.evictedSessions} sessions evicted, ${s.sessions.unparsedLines} unparsed`);
    for (const w of inputWarnings(inputIssues)) warn(w);
  } catch (err) {
    await scorer.close().catch(() => undefined);
    throw err instanceof DeepSentryError || !(err instanceof Error) ? err : new DeepSentryError('DS_IO', err.message, { cause: err });
  } finally {
    for (const c of closeAll) await c();
  }
}
