import type { Argv, CommandModule } from 'yargs';
import { stdinMarker, withSessionOptions, type GlobalOptions, type SessionFlags } from '../options';

/** Options of `deepsentry live` (documented in --help; see lib/cli/commands/live-impl.ts). */
export interface LiveArgs extends GlobalOptions, SessionFlags {
  input?: string;
  model?: string;
  scorer: 'model' | 'novelty';
  follow?: string;
  from: 'start' | 'end';
  pollMs: number;
  listen?: string;
  token?: string;
  maxBody: number;
  state?: string;
  alerts?: string;
  webhook?: string;
  webhookQueue: number;
  webhookRetries: number;
  webhookTimeout: number;
  webhookConcurrency: number;
  webhookBatch: number;
  thresholdMode?: 'fixed' | 'rolling' | 'ewma' | 'dspot';
  /** dspot: risk q and initial level (default: the model's saved SPOT fit, else 1e-3 and 0.98), drift depth */
  risk?: number;
  level?: number;
  depth?: number;
  threshold?: number;
  k: number;
  window: number;
  alpha: number;
  warmup?: number;
  maxSessions: number;
  /** ended sessions kept for POST /feedback (0: none, feedback refused) */
  feedbackSessions: number;
  /** masked messages whose lines the model scorer leaves out of their sessions, unscored (repeatable) */
  setAside?: string[];
  format?: string;
  batchDelay: number;
  maxBatch?: number;
  context: number;
  worker: boolean;
  drainTimeout: number;
  checkpointMs: number;
  /** scale-out worker: NATS URL of the partitioned stream (lib/scale) */
  nats?: string;
  stream: string;
  leaseMs: number;
}

export function withLiveOptions<T>(y: Argv<T>) {
  // --idle-timeout (withSessionOptions): undefined = the model's own session idle timeout (else 30 s)
  return withSessionOptions(y)
    .positional('input', {
      type: 'string',
      describe: "'-' to read log lines from stdin",
      coerce: stdinMarker,
    })
    .option('model', { type: 'string', describe: 'model directory written by `deepsentry train`' })
    .option('scorer', { choices: ['model', 'novelty'] as const, default: 'model' as const, describe: 'model: the trained model in --model; novelty: the model-free transition-novelty scorer' })
    .option('follow', { alias: 'f', type: 'string', describe: 'follow FILE like tail -F (survives rotation and truncation; with --state, also rotations while stopped); a FIFO or character device is read as a stream' })
    .option('from', { choices: ['start', 'end'] as const, default: 'start' as const, describe: 'with --follow and no saved state: read FILE from its start or only new lines' })
    .option('poll-ms', { type: 'number', default: 100, describe: 'file poll interval when idle' })
    .option('listen', { type: 'string', describe: 'HOST:PORT for HTTP (POST /ingest when no other input, /metrics, /health, /ready, / dashboard); default host 127.0.0.1' })
    .option('token', { type: 'string', describe: 'bearer token required by the HTTP routes (default: $DEEPSENTRY_TOKEN)' })
    .option('max-body', { type: 'number', default: 1 << 20, describe: 'largest accepted HTTP body in bytes' })
    .option('state', { type: 'string', describe: 'checkpoint FILE: a restart resumes there (no line skipped, no alert repeated); needs --follow' })
    .option('alerts', { type: 'string', describe: 'append alerts as NDJSON to FILE' })
    .option('webhook', { type: 'string', describe: 'POST alerts as JSON to URL (bounded queue, concurrent requests, retries with backoff and jitter; at least once: receivers dedupe by alert id)' })
    .option('webhook-queue', { type: 'number', default: 1000, describe: 'alerts held for the webhook before the oldest is dropped' })
    .option('webhook-retries', { type: 'number', default: 8, describe: 'attempts per request before its alerts are given up on' })
    .option('webhook-timeout', { type: 'number', default: 30_000, describe: 'ms a webhook request may take before it is aborted and retried' })
    .option('webhook-concurrency', { type: 'number', default: 4, describe: 'webhook requests in flight at once (1: alerts arrive in order)' })
    .option('webhook-batch', { type: 'number', default: 1, describe: 'alerts per webhook request (1: the body is one alert object; more: a JSON array of alerts)' })
    .option('threshold-mode', { choices: ['fixed', 'rolling', 'ewma', 'dspot'] as const, describe: "fixed: the model's saved threshold; rolling: mean+k·sigma over a window; ewma: exponentially weighted; dspot: peaks over threshold with drift, from the model's SPOT fit when it has one (default: fixed if the model has a threshold, else rolling)" })
    .option('risk', { type: 'number', describe: "dspot: risk q, the share of normal scores above the threshold (default: the model's, else 0.001)" })
    .option('level', { type: 'number', describe: "dspot: quantile of the calibration scores where the fitted tail starts (default: the model's, else 0.98)" })
    .option('depth', { type: 'number', describe: 'dspot: scores in the drift mean (default 10)' })
    .option('threshold', { type: 'number', describe: "override the saved threshold (the floor of the adaptive modes)" })
    .option('k', { type: 'number', default: 3, describe: 'sigma multiplier of the adaptive thresholds' })
    .option('window', { type: 'number', default: 1000, describe: 'rolling threshold window (scores)' })
    .option('alpha', { type: 'number', default: 0.01, describe: 'EWMA smoothing factor' })
    .option('warmup', { type: 'number', describe: 'scores before an adaptive threshold applies (default: window, or 2/alpha)' })
    .option('max-sessions', { type: 'number', default: 100_000, describe: 'most open sessions; beyond, the least recently active is evicted (counted)' })
    .option('feedback-sessions', { type: 'number', default: 20_000, describe: 'ended sessions kept (with the open ones) for POST /feedback to learn from and replay; 0 keeps none (--scorer model)' })
    .option('set-aside', { type: 'string', array: true, describe: 'a masked message (as `deepsentry score --set-aside-new` names it) whose lines are left out of their sessions, unscored (repeatable; --scorer model)' })
    .option('format', { type: 'string', describe: 'log format (auto, hdfs, a loghub format string, regex:…, json:…); default auto' })
    .option('batch-delay', { type: 'number', default: 2, describe: 'ms a line waits for others to share its scoring call' })
    .option('max-batch', { type: 'number', describe: 'most lines per scoring call (default 2048 with the model scorer in a worker, else 4096)' })
    .option('context', { type: 'number', default: 5, describe: 'context lines printed with each alert' })
    .option('worker', { type: 'boolean', default: true, describe: 'score in a worker thread (--no-worker: in the main thread)' })
    .option('checkpoint-ms', { type: 'number', default: 1000, describe: 'least time between two checkpoints of --state' })
    .option('nats', { type: 'string', describe: 'join the worker group of a partitioned stream on this NATS server (see `deepsentry publish`) instead of reading an input' })
    .option('stream', { type: 'string', default: 'DEEPSENTRY', describe: 'with --nats: the JetStream stream name' })
    .option('lease-ms', { type: 'number', default: 10_000, describe: 'with --nats: partition lease TTL when the group is new (a dead worker\'s partitions move after this)' })
    .option('drain-timeout', { type: 'number', default: 10_000, describe: 'ms SIGTERM waits for queued webhook alerts; then requests in flight are aborted and what is undelivered is kept in --state (or reported lost)' })
    .check((a) => {
      const inputs = [a.input !== undefined, a.follow !== undefined, a.nats !== undefined].filter(Boolean).length;
      if (a.input !== undefined && a.input !== '-') throw new Error(`Expected '-' (stdin) as the input argument but received ${JSON.stringify(a.input)}; use --follow FILE for a file`);
      if (inputs > 1) throw new Error('Give one input: --follow FILE, - (stdin) or --nats URL, not several');
      if (a.nats !== undefined && (a.scorer !== 'model' || a.state !== undefined)) throw new Error('--nats runs a worker of the trained model (--model DIR); its state is checkpointed in NATS (no --state)');
      if (inputs === 0 && a.listen === undefined) throw new Error('Give an input: --follow FILE, - (stdin) or --listen HOST:PORT (POST /ingest)');
      if (a.state !== undefined && a.follow === undefined) throw new Error('--state needs --follow FILE (only a file can be resumed at a byte offset)');
      if (a.scorer === 'model' && a.model === undefined) throw new Error('Give --model DIR (or --scorer novelty for the model-free scorer)');
      if (Array.isArray(a['set-aside']) && a['set-aside'].length > 0 && (a.scorer !== 'model' || a.nats !== undefined)) throw new Error('--set-aside sets messages aside in the model scorer of this process (--scorer model, without --nats)');
      // `--set-aside` alone, or an empty text, would set nothing aside without a word
      if (Array.isArray(a['set-aside']) && (a['set-aside'].length === 0 || a['set-aside'].some((m) => String(m).trim() === ''))) {
        throw new Error("--set-aside needs a masked message, as `deepsentry score` names it in its warning, e.g. --set-aside '<IP> Served block <BLK> to /<IP>'");
      }
      const ints: [string, unknown, number][] = [['max-body', a.maxBody, 1], ['webhook-queue', a.webhookQueue, 1], ['webhook-retries', a.webhookRetries, 1], ['webhook-timeout', a.webhookTimeout, 1], ['webhook-concurrency', a.webhookConcurrency, 1], ['webhook-batch', a.webhookBatch, 1], ['window', a.window, 2], ['max-sessions', a.maxSessions, 1], ['feedback-sessions', a.feedbackSessions, 0], ['batch-delay', a.batchDelay, 0], ['context', a.context, 0], ['poll-ms', a.pollMs, 1], ['drain-timeout', a.drainTimeout, 0], ['checkpoint-ms', a.checkpointMs, 0], ['lease-ms', a.leaseMs, 100]];
      for (const [name, v, min] of ints) {
        if (typeof v !== 'number' || !Number.isInteger(v) || v < min) throw new Error(`Expected an integer >= ${min} for --${name} but received ${String(v)}`);
      }
      if (a.maxBatch !== undefined && !(typeof a.maxBatch === 'number' && Number.isInteger(a.maxBatch) && a.maxBatch >= 1)) throw new Error(`Expected an integer >= 1 for --max-batch but received ${String(a.maxBatch)}`);
      if (a.warmup !== undefined && (!Number.isInteger(a.warmup) || a.warmup < 0)) throw new Error(`Expected an integer >= 0 for --warmup but received ${String(a.warmup)}`);
      if (!(a.k >= 0) || !Number.isFinite(a.k)) throw new Error(`Expected a number >= 0 for --k but received ${String(a.k)}`);
      if (!(a.alpha > 0 && a.alpha <= 1)) throw new Error(`Expected a number in (0, 1] for --alpha but received ${String(a.alpha)}`);
      if (a.threshold !== undefined && !Number.isFinite(a.threshold)) throw new Error(`Expected a number for --threshold but received ${String(a.threshold)}`);
      return true;
    });
}

export const liveCommand: CommandModule<object, LiveArgs> = {
  command: 'live [input]',
  describe: 'score log lines as they arrive (--follow FILE, - for stdin, or --listen HOST:PORT) and raise alerts',
  builder: (y) => withLiveOptions(y) as unknown as Argv<LiveArgs>,
  handler: async (argv) => {
    const { runLive } = await import('./live-impl');
    await runLive(argv);
  },
};
