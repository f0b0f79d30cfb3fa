/**
 * The CLI side of scale-out: `deepsentry publish` and `deepsentry live --nats` (a worker). SIGTERM/SIGINT
 * make a worker leave its group cleanly: the batch in flight is scored, every owned partition is
 * checkpointed and acked, the leases are released so the other workers take over at once. A second signal
 * exits at once (nothing is lost: lines after the last checkpoint are scored again by the next owner).
 */
import type { LiveArgs } from './live';
import { liveHttp, liveSinks, liveThreshold } from './live-impl';
import type { PublishArgs } from './publish';
import { DeepSentryError } from '../../errors';
import { publishLogConfig, publishLog } from '../../scale/publisher';
import { ScaleWorker } from '../../scale/worker';

export async function runPublish(a: PublishArgs): Promise<void> {
  const r = await publishLog(a.log === '-' ? process.stdin : a.log, {
    nats: a.nats,
    stream: a.stream,
    logConfig: publishLogConfig({ ...(a.model !== undefined ? { model: a.model } : {}), ...(a.format !== undefined ? { format: a.format } : {}) }),
    ...(a.partitions !== undefined ? { partitions: a.partitions } : {}),
    ...(a.source !== undefined ? { source: a.source } : {}),
  });
  if (a.json) process.stdout.write(JSON.stringify(r) + '\n');
  else if (!a.quiet) {
    process.stdout.write(
      `published ${r.lines} lines (${r.messages} messages, ${r.duplicates} already stored, ${r.blank} blank skipped${r.unparsed ? `, ${r.unparsed} not parsed` : ''}) ` +
        `to stream ${a.stream} over ${r.partitions} partitions in ${r.seconds.toFixed(1)} s\n`,
    );
  }
}

export async function runScaleWorker(a: LiveArgs): Promise<void> {
  const log = (msg: string) => {
    if (!a.quiet) process.stderr.write(`deepsentry live: ${msg}\n`);
  };
  if (a.model === undefined) throw new DeepSentryError('DS_MODEL', 'no model directory given: pass --model DIR');
  const worker = await ScaleWorker.start({
    nats: a.nats as string,
    stream: a.stream,
    model: a.model,
    // A trained model always has a saved threshold (fixed by default; the worker makes it the floor).
    threshold: liveThreshold(a, 0),
    sinks: liveSinks(a, (msg) => process.stderr.write(`deepsentry live: warning: ${msg}\n`)).sinks,
    leaseTtlMs: a.leaseMs,
    checkpointMs: a.checkpointMs,
    fetchBatch: a.maxBatch ?? 4096,
    backend: a.backend,
    ...(a.threads !== undefined ? { threads: a.threads } : {}),
    precision: a.precision,
    ...(a.idleTimeout !== undefined ? { idleTimeoutMs: a.idleTimeout } : {}),
    maxOpenSessions: a.maxSessions,
    windowLines: Math.max(a.context, 1),
    onNotice: log,
  });
  // The same server as a monitor's: dashboard, /api/stats (with the owned partitions), /metrics, --token.
  const http = a.listen === undefined ? null : await liveHttp(a, a.listen, worker, false, log).catch(async (e) => {
    await worker.stop();
    throw e;
  });
  let signalled = false;
  let wake: () => void = () => undefined;
  const stopped = new Promise<void>((resolve) => (wake = resolve));
  const onSignal = (sig: string) => {
    if (signalled) {
      log(`${sig} again: exiting now (the last checkpoints stand)`);
      process.exit(1);
    }
    signalled = true;
    log(`${sig}: checkpointing and handing the partitions over…`);
    wake();
  };
  const onTerm = () => onSignal('SIGTERM');
  const onInt = () => onSignal('SIGINT');
  process.on('SIGTERM', onTerm);
  process.on('SIGINT', onInt);
  try {
    await Promise.race([stopped, worker.failed()]);
  } finally {
    process.off('SIGTERM', onTerm);
    process.off('SIGINT', onInt);
    await http?.close();
    await worker.stop();
  }
  log(`stopped: worker ${worker.id} left the group`);
}
