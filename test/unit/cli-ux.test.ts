/**
 * What a newcomer reads: `deepsentry config --defaults`, the session flags' values, the minimum-data warnings,
 * the one-line backend status, progress when stderr is not a terminal, and the Model panel in words. Units,
 * cheap: no training.
 */
import { expect } from 'chai';
import { Writable } from 'node:stream';
import { parse as parseYaml } from 'yaml';
import { backendSummary, decideBackend } from '../../lib/backend/select';
import type { NativeCapabilities } from '../../lib/backend/binding';
import { parseDuration, sessionOverrides } from '../../lib/cli/options';
import {
  annotatedConfig,
  applyFlags,
  CONFIG_KEY_HELP,
  dataWarnings,
  defaultPipelineConfig,
  logConfigOf,
  MIN_HELD_BACK_SESSIONS,
  resolvePipelineConfig,
} from '../../lib/pipeline/config';
import { describeModel } from '../../lib/pipeline/describe';
import { consoleReporter } from '../../lib/cli/progress';
import type { TrainProgress } from '../../lib/models/train';
import { inputWarnings } from '../../lib/logs/issues';
import { flagWording } from '../../lib/cli/flags';
import { checkModelDir } from '../../lib/live/engine';
import { readFeedbackFile } from '../../lib/pipeline/feedback';
import { normalOnlySelection } from '../../lib/pipeline/run';

/** Dotted paths of every leaf and section of an object (arrays are leaves). */
function paths(o: Record<string, unknown>, prefix = ''): string[] {
  return Object.entries(o).flatMap(([k, v]) => {
    const p = prefix ? `${prefix}.${k}` : k;
    return v !== null && typeof v === 'object' && !Array.isArray(v) ? [p, ...paths(v as Record<string, unknown>, p)] : [p];
  });
}

describe('config --defaults', () => {
  it('every key of the defaults is printed with a comment, and the output read back as --config is the defaults', () => {
    const d = defaultPipelineConfig();
    const keys = paths({ ...d, logs: logConfigOf(d) } as unknown as Record<string, unknown>);
    for (const k of keys) expect(CONFIG_KEY_HELP[k], `help for ${k}`).to.be.a('string');
    const text = annotatedConfig();
    for (const line of text.split('\n')) if (/^\s*\w+:/.test(line)) expect(line, 'a comment on each key').to.match(/ {2}# \S/);
    const back = resolvePipelineConfig(parseYaml(text));
    expect(logConfigOf(back)).to.deep.equal(logConfigOf(d));
    expect({ ...back, logs: null }).to.deep.equal({ ...d, logs: null });
    // the key pattern is commented out: giving it would change what auto sessions mean
    expect(back.logs.session?.keyPattern).to.equal(undefined);
    expect(text).to.match(/^ {4}# keyPattern: "blk_-\?\\\\d\+"/m);
  });
});

describe('session flags', () => {
  it('durations: milliseconds, or a unit; none for the idle timeout; anything else names the flag', () => {
    expect(parseDuration('session-window', '90s')).to.equal(90_000);
    expect(parseDuration('session-window', 1500)).to.equal(1500);
    expect(parseDuration('idle-timeout', '5m', true)).to.equal(300_000);
    expect(parseDuration('idle-timeout', '1.5h', true)).to.equal(5_400_000);
    expect(parseDuration('idle-timeout', 'none', true)).to.equal(null);
    expect(() => parseDuration('session-window', 'none')).to.throw(/--session-window but received "none"/);
    expect(() => parseDuration('session-window', '5 minutes')).to.throw(/Expected a duration like 500ms, 30s, 5m or 1h/);
    expect(() => parseDuration('session-window', '0s')).to.throw(/--session-window/);
  });

  it('each flag sets its logs.session key over the config file; a bad value is a DS_CONFIG error saying it came from the options', () => {
    const o = sessionOverrides({ sessionMode: 'time', sessionWindow: 10_000, idleTimeout: null, sessionKey: 'req=\\w+', sessionField: 'Node', sessionLines: 20 });
    expect(o).to.deep.equal({ mode: 'time', windowMs: 10_000, idleTimeoutMs: null, keyPattern: 'req=\\w+', field: 'Node', windowLines: 20 });
    const c = applyFlags(defaultPipelineConfig(), { session: { mode: 'time', windowMs: 10_000 } });
    expect(logConfigOf(c).session).to.include({ mode: 'time', windowMs: 10_000, idleTimeoutMs: 300_000 });
    expect(() => applyFlags(defaultPipelineConfig(), { session: { windowLines: 0 } })).to.throw(/^options: Expected an integer >= 1 for logs\.session\.windowLines/);
  });
});

describe('minimum-data warnings', () => {
  const c = defaultPipelineConfig();
  it('a model on enough data gets none', () => {
    expect(dataWarnings({ sessionKeys: 2575, heldBackSessions: 515, distinctMessages: 19 }, c)).to.deep.equal([]);
  });
  it('Spark_2k in time windows (2 sessions, 1 held back) gets one per shortfall, with advice', () => {
    const w = dataWarnings({ sessionKeys: 2, heldBackSessions: 1, distinctMessages: 3 }, applyFlags(c, { session: { mode: 'time' } }));
    expect(w).to.have.length(3);
    expect(w[0]).to.match(/^trained on 2 sessions \(fewer than 100\): .*shorter time windows \(logs\.session\.windowMs, now 60000 ms\)/);
    expect(flagWording(w[0])).to.match(/shorter time windows \(--session-window, now 60 s\)/);
    expect(w[1]).to.match(/^the threshold was fitted on the scores of 1 held-back session \(fewer than 20\): it is one score, not a statistic/);
    expect(w[2]).to.match(/^the training sessions hold 3 distinct messages \(fewer than 5\)/);
    expect(dataWarnings({ sessionKeys: 500, heldBackSessions: MIN_HELD_BACK_SESSIONS - 1, distinctMessages: 50 }, c)[0]).to.match(/its spread is too uncertain/);
  });
  it('skipped and out-of-order input lines are a warning too', () => {
    const counts = { unparsed: 2, out_of_order: 1245 } as Record<string, number>;
    const w = inputWarnings({ counts: counts as never, first: [{ kind: 'unparsed', file: 'a.log', line: 7, message: 'does not match' }] });
    expect(w).to.deep.equal(['input: 2 unparsed, 1245 out of order (first: a.log:7: does not match); `deepsentry prepare` lists them']);
    expect(inputWarnings({ counts: { truncated_gzip: 0 } as never, first: [] })).to.deep.equal([]);
  });
});

describe('backend status line', () => {
  const caps = (o: Partial<NativeCapabilities> = {}): NativeCapabilities => ({
    version: '0', simd: 'avx512', simdSupported: ['baseline', 'avx2', 'avx512'], threads: 2, cudaCompiled: true, cudaDeviceCount: 0,
    precision: 'fp32', bf16Kernels: 'portable', bf16Instructions: 'plain C++', bf16Hardware: false,
    cudaError: 'cudaGetDeviceCount: cudaErrorInsufficientDriver: CUDA driver version is insufficient for CUDA runtime version (35)',
    cudaRuntimeVersion: 13000, cudaDriverVersion: 0, ...o,
  });
  it('no GPU: one calm line saying what runs; the CUDA error stays in the reason (--verbose, info)', () => {
    const c = caps();
    const d = decideBackend('auto', { capabilities: c, nativeError: null });
    expect(backendSummary({ backend: d.backend, requested: 'auto', capabilities: c })).to.equal('CPU kernels, AVX-512, 2 threads');
    expect(d.reason).to.match(/cudaErrorInsufficientDriver/);
    expect(backendSummary({ backend: 'native', requested: 'auto', capabilities: caps({ simd: 'avx2', threads: 1 }) })).to.equal('CPU kernels, AVX2, 1 thread');
    expect(backendSummary({ backend: 'cuda', requested: 'auto', capabilities: caps({ cudaDeviceCount: 1, cudaError: null }) })).to.equal('CUDA for the LSTM kernels (1 device), CPU kernels, AVX-512, 2 threads for the rest');
    expect(backendSummary({ backend: 'cuda', requested: 'auto', capabilities: caps({ cudaDeviceCount: 1, cudaError: null }), precision: 'bf16' }))
      .to.equal('CUDA for the LSTM kernels (1 device, bf16 products), CPU kernels, AVX-512, 2 threads, bf16 products (emulated: no AVX512-BF16 here, slower than fp32) for the rest');
    expect(backendSummary({ backend: 'cpu', requested: 'auto', capabilities: null })).to.match(/^pure TypeScript kernels: the native addon did not load \(deepsentry info says why\)$/);
  });
});

describe('progress', () => {
  /** A stderr stand-in: what was written, and whether it is a terminal. */
  function sink(tty: boolean, columns = 60): { out: NodeJS.WriteStream; text: () => string } {
    const chunks: string[] = [];
    const w = new Writable({ write: (c, _e, cb) => (chunks.push(String(c)), cb()) }) as unknown as NodeJS.WriteStream;
    Object.assign(w, { isTTY: tty, columns });
    return { out: w, text: () => chunks.join('') };
  }
  const step = (epoch: number, s: number, epochEnd = false): TrainProgress => ({
    model: 'detector', unit: 'windows', epoch, epochs: 120, step: s, steps: 10, loss: 1.234567, valLoss: epochEnd ? 0.9 : null, itemsPerSecond: 612.3, etaSeconds: 95, epochEnd,
  });
  function drive(r: ReturnType<typeof consoleReporter>): void {
    r.stage?.('train-detector', '193 sessions');
    for (let e = 1; e <= 30; e++) for (let s = 1; s <= 10; s++) r.progress?.(step(e, s, s === 10));
    r.stageDone?.('train-detector', 12.8, 31763, 'windows');
  }

  it('not a terminal: a line when a stage starts and one when it ends; epoch lines only with --verbose', () => {
    const a = sink(false);
    drive(consoleReporter('normal', a.out));
    expect(a.text()).to.equal('deepsentry: train-detector: 193 sessions\ndeepsentry: train-detector done in 12.8 s (31763 windows, 2481 windows/s)\n');
    const v = sink(false);
    drive(consoleReporter('verbose', v.out));
    expect(v.text().split('\n').filter((l) => /^ {2}detector epoch \d+\/120 loss 1\.2346 val_loss 0\.9000 612 windows\/s$/.test(l))).to.have.length(30);
  });

  it('a terminal: one line redrawn in place, never wider than the terminal, with items/s and ETA, replaced by the summary', () => {
    const t = sink(true, 60);
    drive(consoleReporter('normal', t.out));
    const text = t.text();
    expect(text.split('\n')).to.have.length(3); // start line, the redrawn bar ended by the summary, ''
    const draws = text.split('\r').filter((d) => d.startsWith('  detector ['));
    expect(draws.length).to.be.greaterThan(0);
    for (const d of draws) expect(d.replace('\x1b[K', '').length).to.be.at.most(59);
    const wide = sink(true, 200);
    drive(consoleReporter('normal', wide.out));
    expect(wide.text()).to.match(/ {2}detector \[#+-*\] epoch 30\/120 loss 1\.235 val 0\.900 · 612 windows\/s · ETA ≤ 1m35s/);
    expect(wide.text()).to.match(/\r\x1b\[Kdeepsentry: train-detector done in/);
  });
});

describe('the Model panel in words', () => {
  it('reads what model.json holds: threshold, sessions (keys and splits explained), messages, models', () => {
    const d = describeModel({
      directory: '/r/model',
      config: defaultPipelineConfig(),
      thresholds: { session: { method: 'mean-std', param: 3, value: 11.768710073041763, fittedOn: 515 } },
      metrics: { data: { sessions: 8744, detectorSessions: 7663, sessionKeys: 2575, heldBackSessions: 515, distinctMessages: 19, vocabularySize: 73 }, text: { epochs: 200, seconds: 11.4 }, detector: { epochs: 97, bestEpoch: 77, stoppedEarly: true, seconds: 190.1 } },
      logConfig: { session: { mode: 'key', keyPattern: 'blk_-?\\d+', idleTimeoutMs: 300_000 }, window: { size: 10 } },
    });
    expect(d).to.deep.equal({
      directory: '/r/model',
      'saved threshold': '11.7687: mean + 3·σ of the scores of 515 held-back training sessions (no labels)',
      'trained on': '2,575 session keys, cut into 8,744 sessions at quiet gaps; the detector learnt from the first 2,060 keys (7,663 sessions), the threshold from the last 515',
      'sessions cut': 'by the key /blk_-?\\d+/ in the message; a quiet gap of 5 min ends a session',
      messages: '19 distinct masked messages, vocabulary of 73 tokens',
      'text model': 'LSTM autoencoder, message vectors of 128; 200 epochs, 11.4 s',
      detector: 'BiLSTM 64×2, windows of 10 messages, score surprise; 97 epochs (stopped early; best 77), 190.1 s',
      seed: '42',
      'full configuration': 'model.json in the model directory (deepsentry config --defaults explains every key)',
    });
    const lifted = describeModel({ thresholds: { session: { method: 'mean-std', param: 3, value: 11.2, fittedOn: 820, gap: { lower: 9.4, upper: 14.8, above: 17, base: 9.1 } } } });
    expect(lifted['saved threshold']).to.equal('11.2: mean + 3·σ (9.1), lifted a third of the way into the empty band between 9.4 and 14.8 (17 scores above it), of the scores of 820 held-back training sessions (no labels)');
    const spot = describeModel({ thresholds: { session: { method: 'spot', param: 0.001, value: 12.5, fittedOn: 820 } } });
    expect(spot['saved threshold']).to.equal('12.5: SPOT at risk 0.001 of the scores of 820 held-back training sessions (no labels)');
    expect(describeModel({})).to.deep.equal({ 'full configuration': 'model.json in the model directory (deepsentry config --defaults explains every key)' });
  });
});

describe('library errors name API options; the CLI names its flags', () => {
  const errorOf = (f: () => unknown): string => {
    try {
      f();
    } catch (e) {
      return (e as Error).message;
    }
    throw new Error('no error thrown');
  };

  it('a missing model directory: modelDir and the scorer option in the library, --model and --scorer in the CLI', () => {
    const m = errorOf(() => checkModelDir(undefined));
    expect(m).to.not.match(/--[a-z]/);
    expect(m).to.match(/pass modelDir/);
    expect(flagWording(m)).to.equal('no model directory given: pass --model DIR (a directory written by `deepsentry train`), or --scorer novelty');
  });

  it('a configuration key with its value reads as the flag that sets it; a config file error keeps its key', () => {
    expect(flagWording('… name the time field (logs.format "json:time=PATH") or cut count windows (logs.session.mode "count")')).to.equal('… name the time field (--format json:time=PATH) or cut count windows (--session-mode count)');
    const m = 'Expected "key", "field", "time", "count" or "auto" for logs.session.mode but received "x"';
    expect(flagWording(m)).to.equal(m);
  });

  it('a damaged gzip input, a missing label file and a feedback file read as the flags that set them', async () => {
    expect(flagWording('x.gz is a damaged gzip file: … To use the lines before the damage, set acceptTruncated')).to.match(/pass --accept-truncated$/);
    const missing = await normalOnlySelection('/nonexistent/labels.csv', []).then(
      () => '',
      (e: Error) => e.message,
    );
    expect(missing).to.equal('normalLabels file /nonexistent/labels.csv does not exist');
    expect(flagWording(missing)).to.equal('--normal-labels file /nonexistent/labels.csv does not exist');
    const fb = await readFeedbackFile('/nonexistent/marks.txt').then(
      () => '',
      (e: Error) => e.message,
    );
    expect(fb).to.match(/^feedback file \/nonexistent\/marks\.txt: cannot read it/);
    expect(flagWording(fb)).to.match(/^--normal \/nonexistent\/marks\.txt: cannot read it/);
  });
});
