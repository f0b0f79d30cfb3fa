/**
 * The one configuration schema of the whole pipeline (what `--config FILE` holds, YAML or JSON): the `logs`
 * section is lib/logs' LogConfig (validated by resolveLogConfig), the model sections start from lib/models'
 * defaults, and every key a file sets must exist in the defaults and have the default's type (a typo or a
 * string where a number belongs is a DS_CONFIG error naming the key). Command-line flags are applied on top
 * by the caller (see `applyFlags`).
 *
 * ```yaml
 * seed: 42
 * logs:      { format: auto, session: { keyPattern: 'blk_-?\d+' }, window: { size: 10 } }   # lib/logs
 * text:      { model: { latentDim: 128, … }, train: { epochs: 200, … } }                  # lib/models text
 * detector:  { model: { hiddenSize: 64, objective: softmax, score: nll, … }, train: { … } }
 * threshold: { method: mean-std, k: 3, normalOnlyK: 5, gap: true, percentile: 99, risk: 0.001, level: 0.9, holdout: 0.2 }
 * scoring:   { novelty: true, sequence: false, rarity: true, detectorWeight: 1, counts: 2, countConfidence: 0.95, countBreadth: 0.5, countTimeoutMs: 3600000, knownNormal: true }
 * training:  { trim: 0.03 }
 * run:       { trainFraction: 0.5 }
 * ```
 */
import { DeepSentryError, describeValue } from '../errors';
import { resolveLogConfig, type LogConfig, type LogConfigOverrides, type SessionConfig } from '../logs/config';
import { DEFAULT_TEXT_CONFIG, DEFAULT_TEXT_TRAIN, type TextModelConfig } from '../models/text';
import { DEFAULT_DETECTOR_CONFIG, DEFAULT_DETECTOR_TRAIN, SCORE_MODES, type DetectorConfig } from '../models/detector';
import { checkTrainOptions, DEFAULT_TRAIN, type TrainOptions } from '../models/train';
import { fitThreshold, type ThresholdSpec } from '../models/threshold';

/** Training options as a config file gives them (the AbortSignal and callbacks come from the caller). */
export type TrainSettings = Required<Omit<TrainOptions, 'signal' | 'onProgress' | 'seed'>>;

/** The whole resolved configuration (every key present). */
export interface PipelineConfig {
  /** seed of every random choice (initialisation, shuffling, noise, splits): same seed, same model */
  seed: number;
  /**
   * log ingestion overrides (format, masking, tokenizer, vocabulary, sessions; `window.size` is the detector's
   * W), kept as given — checked by lib/logs' resolveLogConfig — because lib/logs' `auto` session mode depends
   * on whether a key pattern was given at all
   */
  logs: LogConfigOverrides;
  text: {
    /** text autoencoder shape (vocabSize comes from the data, seed from `seed`) */
    model: Omit<TextModelConfig, 'vocabSize' | 'seed'>;
    train: TrainSettings;
  };
  detector: {
    /** detector shape (vectorDim comes from the text model, window from logs.window.size, seed from `seed`) */
    model: Omit<DetectorConfig, 'vectorDim' | 'seed' | 'window'>;
    train: TrainSettings;
  };
  threshold: {
    /**
     * how the saved threshold is fitted on the held-back sessions' scores (no labels): `mean-std` (mean + k·σ,
     * default k 3), `mad` (median + k·1.4826·MAD), `percentile`. Measured on hdfs-dev (README "Accuracy"): the
     * held-back scores are a tight normal bulk plus the few anomalous sessions an unlabelled log contains; mean +
     * kσ lands above the bulk (the anomalies widen σ), while MAD (≈ 0 on a bulk of identical scores) and high
     * percentiles (which fall inside the anomalies when they are more than 1–2 % of the sessions) do not. k is a
     * constant chosen by looking at labelled results (seeds 42, 1, 7, 123 with the defaults: F1 at the saved
     * threshold 0.873 / 0.862 / 0.862 / 0.826 with k 2, 0.868 / 0.883 / 0.890 / 0.890 with k 3, 0.872 / 0.894 /
     * 0.819 / 0.889 with k 3.5), not derived.
     */
    method: ThresholdSpec['method'];
    /** k of `mad` / `mean-std` */
    k: number;
    /**
     * k of `mean-std` / `mad` for a model trained normal-only (`--normal-labels`): its held-back sessions are all
     * normal, so σ is narrow and mean + 3σ lies inside the normal tail. Chosen by `bench:accuracy --normal-only
     * --rethreshold` (all protocols × seeds 1, 7, 42 but hdfs-time-rev): F1 at the threshold mean / worst 0.733 /
     * 0.565 with k 3, 0.797 / 0.627 with 4, 0.844 / 0.736 with 5, 0.874 / 0.667 with 6; SPOT q = 0.003 0.863 / 0.437
     */
    normalOnlyK: number;
    /**
     * lift the threshold a third of the way into the widest empty band of the held-back tail, when there is one
     * (lib/models/threshold.ts GAP_MIN_WIDTH) and the method's value lies below that point. Chosen with
     * `bench:accuracy --reuse` on five sets of kept models, every protocol × seeds 1, 7, 42: as good or better on
     * each set, in the mean and the worst, and no anomaly more missed (bench/results/accuracy-gap.md)
     */
    gap: boolean;
    /** percentile of `percentile` (0…100) */
    percentile: number;
    /** `spot`: the risk q, the probability that a normal session's score exceeds the threshold */
    risk: number;
    /** `spot`: the quantile (0…1) of the held-back scores above which the tail is fitted */
    level: number;
    /**
     * fraction of the training sessions (the LAST ones in time order) held back from the detector to fit the
     * threshold on scores of sessions it has not seen
     */
    holdout: number;
  };
  scoring: {
    /**
     * add a novelty term for messages the model never saw in training: the text model's reconstruction error
     * of the new message (in nats per token) on top of the detector's score of its line
     */
    novelty: boolean;
    /**
     * add a count-based sequence model's surprise −ln p(message | two previous) (see lib/models/sequence.ts). Off by
     * default: with the detector's `surprise` score it lowered session ROC-AUC on hdfs-dev (0.9956 → 0.958)
     */
    sequence: boolean;
    /** with `sequence`: add the message's rarity −ln(its share of the training lines) (see lib/models/sequence.ts) */
    rarity: boolean;
    /** weight of the detector's score in a line's score */
    detectorWeight: number;
    /**
     * weight of the count relations' surprise (lib/models/counts.ts) on a finished session's end event; 0 leaves the count
     * relations out
     */
    counts: number;
    /** share of the training sessions holding either message that a count relation must hold in */
    countConfidence: number;
    /**
     * what breaking more than one count relation adds: a session's count surprise is its worst relation's plus
     * countBreadth·ln(the relations it breaks) (lib/models/counts.ts); 0: the worst relation alone
     */
    countBreadth: number;
    /**
     * how long a key must stay quiet before its count relations are judged (ms): the sessions the idle timeout
     * cuts within that horizon are counted together (lib/models/counts.ts countHorizon); 0, or not more than the
     * idle timeout: each session is judged at its own end
     */
    countTimeoutMs: number;
    /**
     * a key whose counted sessions hold exactly the lines per message of sessions known to be normal (a
     * normal-only training's, or marked by feedback: lib/models/known_normal.ts) scores 0 in sessions.csv and
     * raises no count alert; a model trained without labels remembers none
     */
    knownNormal: boolean;
  };
  training: {
    /**
     * share of the training sessions left out of the detector's training as the most surprising ones under the
     * count-based sequence model (lib/models/sequence.ts, with rarity) fitted on all of them: unlabelled logs hold
     * anomalies, and a detector trained on them learns to predict them (0 = train on all)
     */
    trim: number;
  };
  run: {
    /** `run`: the first fraction of sessions (in order of their first line) trains, the rest is scored */
    trainFraction: number;
  };
}

const { seed: _ts, ...textModelDefaults } = DEFAULT_TEXT_CONFIG;
const { seed: _ds, window: _dw, ...detectorModelDefaults } = DEFAULT_DETECTOR_CONFIG;

function trainDefaults(o: TrainOptions): TrainSettings {
  const { seed: _s, signal: _sig, onProgress: _p, ...rest } = { ...DEFAULT_TRAIN, ...o };
  return rest as TrainSettings;
}

/**
 * The text model picks its validation split itself (none below TEXT_MIN_MESSAGES_FOR_VALIDATION distinct
 * messages: held-out templates would only measure novelty); -1 in the config means "let it choose".
 */
export const AUTO_SPLIT = -1;

/** TrainOptions of a config section, without the "auto" markers. */
export function trainOptionsOf(t: TrainSettings): TrainOptions {
  const { validationSplit, ...rest } = t;
  return validationSplit === AUTO_SPLIT ? rest : { ...rest, validationSplit };
}

/**
 * The pipeline's session idle timeout (logs.session.idleTimeoutMs; lib/logs' own default is null = never): a
 * key's lines are split into sessions at quiet gaps of at least this long, in batch (train, score, run) as in
 * the live monitor, and a session still open when the input ends is censored (no end event; see
 * sessionEnded). 5 minutes, picked on hdfs-dev (README "Accuracy"): 2,422 of the 2,489 normal blocks of the
 * training half have a quiet gap ≥ 300 s between writing and deleting, while the shortest quiet tail of a
 * block that stopped after allocation is 0.27 h; measured seed 42 session ROC-AUC 0.9932 / 0.9979 / 0.9887 at
 * 60 s / 300 s / 1800 s (0.9958 with no timeout).
 */
export const DEFAULT_IDLE_TIMEOUT_MS = 300_000;

/**
 * The pipeline trains the detector longer than lib/models' defaults (40 epochs, patience 4): the validation
 * loss is noisy at learning rate 1e-2, and a short patience stopped some seeds on a plateau (hdfs-dev seed 1:
 * best validation loss 0.756 at epoch 24, stopped at 28; with patience 20 it reaches 0.622 at epoch ~100). With
 * these, seeds 42 / 1 / 7 / 123 reach session ROC-AUC 0.9975 / 0.9956 / 0.9986 / 0.9969 (seed 7 was 0.90 before
 * the idle timeout, 0.9958 with it and the short training). Cost: 14–26 s of detector training on hdfs-dev.
 */
export const DETECTOR_EPOCHS = 120;
export const DETECTOR_PATIENCE = 20;

/**
 * The count relations (lib/models/counts.ts) at weight 2, trimmed detector training (3 % of the sessions left out) and the
 * detector's softmax temperature 3, chosen by `npm run bench:accuracy` (every protocol × seeds 1, 7, 42;
 * README "Accuracy"). The temperature divides the detector's logits before its nll: a trained detector is
 * confident about the transitions it saw often and scores a normal but rare one (a block verified within
 * minutes of being written, a re-replication whose lines interleave in another order) as high as a message
 * that marks a failure. Over the held-back windows it is calibrated (temperature scaling fits T of 0.9 to 1.3), so
 * this is not calibration but a weighting: at T = 3 the rarity of the message, its novelty and the count
 * relations decide, and the sequence still ranks. Against T = 1 and weight 3, without hdfs-time-rev (whose
 * scored half holds messages its training half never shows): F1 at the saved threshold mean / worst
 * 0.910 / 0.819 against 0.853 / 0.788, ROC-AUC 0.998 / 0.995 against 0.997 / 0.991, AP 0.906 / 0.729 against
 * 0.894 / 0.591; on hdfs-time-rev F1 stays 0.12 and its ranking is worse (ROC-AUC 0.65 against 0.89).
 */
export const DEFAULT_COUNT_WEIGHT = 2;
/**
 * The count relations judge a key once it has been quiet for an hour, not at each 5-minute idle cut: a block
 * whose last `addStoredBlock` comes 7 minutes after the rest was judged, at the cut, as a write missing a
 * replica. Chosen by `npm run bench:accuracy` (every protocol × seeds 1, 7, 42; README "Accuracy",
 * bench/results/accuracy-count-horizon.md): without hdfs-time-rev, F1 at the saved threshold mean / worst
 * 0.936 / 0.910 against 0.907 / 0.819 judged at each cut, 132 false alarms against 208, 1 anomaly missed
 * against 2; 30 minutes 0.932 / 0.889, 2 hours 0.938 / 0.910 (a key's count alert comes later, and more keys wait).
 */
export const DEFAULT_COUNT_TIMEOUT_MS = 3_600_000;
/**
 * A session's count surprise adds ½·ln(the relations it breaks) to its worst relation's: a block cut after its
 * first lines breaks most of the relations of a write, a normal block copied once more breaks a few, and with
 * the worst relation alone both scored alike. Chosen by `npm run bench:accuracy` on kept models scored again
 * (every protocol × seeds 1, 7, 42, unlabelled and normal-only) among 0, ½, 1, 2 and the sum of the relations'
 * surprises, and confirmed on models trained afresh (README "Accuracy", bench/results/accuracy-count-breadth.md):
 * with ½, F1 at the saved threshold is as good or better on every protocol in the mean and the worst, and AP's
 * mean and worst as high or higher; 1 and 2 lower AP, and the sum, whose held-back tail is the anomalies' many
 * broken relations, sets a threshold that misses a third of them.
 */
export const DEFAULT_COUNT_BREADTH = 0.5;
export const DEFAULT_TRIM = 0.03;
export const DEFAULT_TEMPERATURE = 3;

/** The defaults (lib/logs' and lib/models' own defaults, and the pipeline's). */
export function defaultPipelineConfig(): PipelineConfig {
  return {
    seed: 42,
    logs: { session: { idleTimeoutMs: DEFAULT_IDLE_TIMEOUT_MS } },
    text: { model: { ...textModelDefaults }, train: { ...trainDefaults(DEFAULT_TEXT_TRAIN), validationSplit: AUTO_SPLIT } },
    detector: { model: { ...detectorModelDefaults, temperature: DEFAULT_TEMPERATURE }, train: { ...trainDefaults(DEFAULT_DETECTOR_TRAIN), epochs: DETECTOR_EPOCHS, patience: DETECTOR_PATIENCE } },
    threshold: { method: 'mean-std', k: 3, normalOnlyK: 5, gap: true, percentile: 99, risk: 1e-3, level: 0.9, holdout: 0.2 },
    scoring: { novelty: true, sequence: false, rarity: true, detectorWeight: 1, counts: DEFAULT_COUNT_WEIGHT, countConfidence: 0.95, countBreadth: DEFAULT_COUNT_BREADTH, countTimeoutMs: DEFAULT_COUNT_TIMEOUT_MS, knownNormal: true },
    training: { trim: DEFAULT_TRIM },
    run: { trainFraction: 0.5 },
  };
}

function cfgError(path: string, expected: string, actual: unknown): DeepSentryError {
  return new DeepSentryError('DS_CONFIG', `Expected ${expected} for ${path} but received ${describeValue(actual)}`);
}

/** Deep merge of `over` onto `base` where every key must exist in `base` with the same JSON type. */
function mergeChecked(base: Record<string, unknown>, over: unknown, path: string): Record<string, unknown> {
  if (over === undefined || over === null) return base;
  if (typeof over !== 'object' || Array.isArray(over)) throw cfgError(path || 'the configuration', 'an object', over);
  const out: Record<string, unknown> = { ...base };
  for (const [k, v] of Object.entries(over as Record<string, unknown>)) {
    const p = path ? `${path}.${k}` : k;
    if (!(k in base)) throw new DeepSentryError('DS_CONFIG', `Unknown option ${p} (known: ${Object.keys(base).join(', ')})`);
    const b = base[k];
    if (b !== null && typeof b === 'object' && !Array.isArray(b)) out[k] = mergeChecked(b as Record<string, unknown>, v, p);
    else if (typeof v !== typeof b) throw cfgError(p, `a ${typeof b}`, v);
    else out[k] = v;
  }
  return out;
}

const ENUMS: Array<[string, (c: PipelineConfig) => unknown, readonly unknown[]]> = [
  ['threshold.method', (c) => c.threshold.method, ['mad', 'mean-std', 'percentile', 'spot']],
  ['detector.model.objective', (c) => c.detector.model.objective, ['regression', 'softmax']],
  ['detector.model.score', (c) => c.detector.model.score, SCORE_MODES],
  ['detector.model.weighting', (c) => c.detector.model.weighting, ['count', 'sqrt', 'log', 'uniform']],
];

/**
 * Defaults overridden by a parsed config document (only the keys it sets) and checked. The `logs` section
 * goes through lib/logs' resolveLogConfig (its own schema); everything else through the defaults above.
 */
export function resolvePipelineConfig(doc: unknown = {}, source = 'configuration'): PipelineConfig {
  const d = defaultPipelineConfig();
  if (doc !== null && doc !== undefined && (typeof doc !== 'object' || Array.isArray(doc))) throw cfgError(source, 'an object', doc);
  const { logs, ...rest } = (doc ?? {}) as Record<string, unknown>;
  const { logs: _l, ...base } = d;
  let merged: Record<string, unknown>;
  // The pipeline's logs defaults (the idle timeout) under what the document sets, one level deep.
  const given = (logs ?? {}) as LogConfigOverrides;
  const isObj = (v: unknown) => v !== null && typeof v === 'object' && !Array.isArray(v);
  const logConfig: LogConfigOverrides =
    isObj(given) && (given.session === undefined || isObj(given.session)) ? { ...d.logs, ...given, session: { ...d.logs.session, ...(given.session ?? {}) } } : given;
  try {
    merged = mergeChecked(base as unknown as Record<string, unknown>, rest, '');
    resolveLogConfig(logConfig);
  } catch (e) {
    if (e instanceof DeepSentryError) throw new DeepSentryError('DS_CONFIG', `${source}: ${e.message}`);
    throw e;
  }
  const c = { ...(merged as unknown as Omit<PipelineConfig, 'logs'>), logs: logConfig } as PipelineConfig;
  checkPipelineConfig(c, source);
  return c;
}

/** Value checks beyond types (ranges, enums); errors are DS_CONFIG naming the key. */
export function checkPipelineConfig(c: PipelineConfig, source = 'configuration'): void {
  const where = (p: string) => `${source}: ${p}`;
  if (!Number.isInteger(c.seed) || c.seed < 0) throw cfgError(where('seed'), 'a non-negative integer', c.seed);
  for (const [p, get, allowed] of ENUMS) {
    if (!allowed.includes(get(c))) throw cfgError(where(p), `one of ${allowed.join(', ')}`, get(c));
  }
  for (const [name, t] of [['text.train', c.text.train], ['detector.train', c.detector.train]] as const) {
    try {
      checkTrainOptions(trainOptionsOf(t));
    } catch (e) {
      throw new DeepSentryError('DS_CONFIG', `${where(name)}: ${(e as Error).message}`);
    }
  }
  for (const k of ['embeddingDim', 'hiddenSize', 'latentDim', 'maxTokens'] as const) {
    const v = c.text.model[k];
    if (!Number.isInteger(v) || v < 1) throw cfgError(where(`text.model.${k}`), 'a positive integer', v);
  }
  if (!(c.text.model.wordDropout >= 0 && c.text.model.wordDropout <= 1)) throw cfgError(where('text.model.wordDropout'), 'a number in [0, 1]', c.text.model.wordDropout);
  if (!(c.text.model.latentNoise >= 0)) throw cfgError(where('text.model.latentNoise'), 'a non-negative number', c.text.model.latentNoise);
  if (!Number.isInteger(c.detector.model.hiddenSize) || c.detector.model.hiddenSize < 1) throw cfgError(where('detector.model.hiddenSize'), 'a positive integer', c.detector.model.hiddenSize);
  const temperature = c.detector.model.temperature;
  if (!(typeof temperature === 'number' && temperature > 0 && Number.isFinite(temperature))) throw cfgError(where('detector.model.temperature'), 'a positive number', temperature);
  if (!(c.threshold.holdout > 0 && c.threshold.holdout < 1)) throw cfgError(where('threshold.holdout'), 'a number in (0, 1)', c.threshold.holdout);
  try {
    fitThreshold([0, 1], thresholdSpec(c));
  } catch (e) {
    throw new DeepSentryError('DS_CONFIG', `${where('threshold')}: ${(e as Error).message}`);
  }
  if (!(c.scoring.counts >= 0 && Number.isFinite(c.scoring.counts))) throw cfgError(where('scoring.counts'), 'a non-negative number', c.scoring.counts);
  if (!(c.scoring.countConfidence > 0 && c.scoring.countConfidence <= 1)) throw cfgError(where('scoring.countConfidence'), 'a number in (0, 1]', c.scoring.countConfidence);
  if (!(c.scoring.countBreadth >= 0 && Number.isFinite(c.scoring.countBreadth))) throw cfgError(where('scoring.countBreadth'), 'a non-negative number', c.scoring.countBreadth);
  if (!(Number.isInteger(c.scoring.countTimeoutMs) && c.scoring.countTimeoutMs >= 0)) throw cfgError(where('scoring.countTimeoutMs'), 'a non-negative integer (ms)', c.scoring.countTimeoutMs);
  if (typeof c.threshold.gap !== 'boolean') throw cfgError(where('threshold.gap'), 'true or false', c.threshold.gap);
  if (typeof c.scoring.knownNormal !== 'boolean') throw cfgError(where('scoring.knownNormal'), 'true or false', c.scoring.knownNormal);
  if (!(c.training.trim >= 0 && c.training.trim < 1)) throw cfgError(where('training.trim'), 'a number in [0, 1)', c.training.trim);
  if (!(c.run.trainFraction > 0 && c.run.trainFraction < 1)) throw cfgError(where('run.trainFraction'), 'a number in (0, 1)', c.run.trainFraction);
}

/** The full lib/logs configuration of a pipeline configuration. */
export function logConfigOf(c: PipelineConfig): LogConfig {
  return resolveLogConfig(c.logs);
}

/** The lib/models threshold spec of a config (`normalOnly`: for a model trained only on normal sessions). */
export function thresholdSpec(c: PipelineConfig, normalOnly = false): ThresholdSpec {
  const t = c.threshold;
  if (t.method === 'percentile') return { method: 'percentile', percentile: t.percentile, gap: t.gap };
  if (t.method === 'spot') return { method: 'spot', risk: t.risk, level: t.level, gap: t.gap };
  return { method: t.method, k: normalOnly ? t.normalOnlyK : t.k, gap: t.gap };
}

/** Flags that override the config file (undefined = not given). */
export interface ConfigFlags {
  seed?: number;
  format?: string;
  /** `logs.session` keys (the CLI's session flags: lib/cli/options.ts sessionOverrides) */
  session?: Partial<SessionConfig>;
  trainFraction?: number;
}

/** Applies command-line flags over a resolved config (flags win), re-checking what they touch. */
export function applyFlags(c: PipelineConfig, f: ConfigFlags): PipelineConfig {
  const logs: LogConfigOverrides = { ...c.logs };
  if (f.format !== undefined) logs.format = f.format;
  if (f.session !== undefined && Object.keys(f.session).length > 0) logs.session = { ...(c.logs.session ?? {}), ...f.session };
  try {
    resolveLogConfig(logs);
  } catch (e) {
    // the same check as a config file's, but the values came from flags: say so
    if (e instanceof DeepSentryError) throw new DeepSentryError('DS_CONFIG', `options: ${e.message}`);
    throw e;
  }
  const out: PipelineConfig = {
    ...c,
    seed: f.seed ?? c.seed,
    logs,
    run: { ...c.run, ...(f.trainFraction !== undefined ? { trainFraction: f.trainFraction } : {}) },
  };
  checkPipelineConfig(out, 'options');
  return out;
}

/**
 * One line on every key of the configuration, for `deepsentry config --defaults` (dotted paths; the types above
 * and lib/logs/config.ts hold the long form). A test checks that every key of the defaults has one.
 */
export const CONFIG_KEY_HELP: Record<string, string> = {
  seed: 'seed of every random choice (initialisation, shuffling, noise, splits): same seed, same model',
  logs: 'reading logs (lib/logs/config.ts)',
  'logs.format': 'auto (detected from the first lines), hdfs, bgl, spark, zookeeper, hpc, thunderbird, rfc5424, rfc3164, json, a loghub format string "<Date> <Time> <Level>: <Content>", regex:…, json:…',
  'logs.detectLines': 'non-blank lines read before the format is detected',
  'logs.strict': 'true: the first bad line is an error naming file and line; false: skip, count and report bad lines',
  'logs.maxLineBytes': 'longest line kept, in bytes (longer ones are skipped and counted)',
  'logs.reportFirst': 'bad lines reported with file:line (all are counted)',
  'logs.outOfOrder': 'a line earlier than one before it: keep (counted) or skip',
  'logs.year': 'year of yearless timestamps (syslog "Jun 14 15:16:01"); null: the file\'s modification year',
  'logs.utcOffsetMinutes': 'offset of timestamps that carry no zone, in minutes east of UTC',
  'logs.masking': 'variable parts of a message that become placeholders before it is learnt',
  'logs.masking.rules': 'ordered {name, pattern, maskWith}; at each position the first rule that matches wins',
  'logs.masking.collapseRepeats': 'a run of the same placeholder ("<IP>, <IP>") becomes one',
  'logs.tokenizer': 'splitting masked messages into tokens',
  'logs.tokenizer.lowercase': 'lower-case word tokens',
  'logs.tokenizer.maxTokens': 'longest token sequence of a message (longer ones are cut and counted)',
  'logs.vocabulary': 'the text model\'s tokens',
  'logs.vocabulary.minCount': 'tokens seen on fewer lines become <unk>',
  'logs.vocabulary.maxSize': 'most tokens kept (the most frequent), specials included',
  'logs.session': 'which lines form a session (flags: --session-mode, --session-key, --session-field, --session-window, --session-lines, --idle-timeout)',
  'logs.session.mode': 'auto | key | field | time | count; auto: key for HDFS or when keyPattern is set, field when the format has a session key, time when lines have timestamps, else count',
  'logs.session.keyPattern': 'regex of the session key in the message (mode key); setting it makes auto mean key for every format',
  'logs.session.multiKey': 'a line naming several keys joins all their sessions, or only the first\'s',
  'logs.session.field': 'parsed field holding the session key (mode field); empty: the format\'s own',
  'logs.session.windowMs': 'length of a time window in ms (mode time)',
  'logs.session.windowLines': 'lines per window (mode count)',
  'logs.session.idleTimeoutMs': 'a session with no line for this many ms ends (and a key\'s later lines start a new one); null: only the end of the input ends it',
  'logs.session.maxOpen': 'most sessions open at once; beyond, the least recently active is closed (counted as evicted)',
  'logs.window': 'detector windows',
  'logs.window.size': 'messages per detector window: the first size-1 predict the last',
  text: 'the text autoencoder: one vector per distinct message',
  'text.model': 'its shape',
  'text.model.embeddingDim': 'token embedding size',
  'text.model.hiddenSize': 'hidden size of the encoder and decoder LSTMs',
  'text.model.latentDim': 'size of a message vector',
  'text.model.bidirectional': 'read messages in both directions',
  'text.model.latentNoise': 'noise on the latent while training, so messages spread over the space',
  'text.model.wordDropout': 'share of the decoder\'s input tokens hidden while training, so it reads the latent',
  'text.model.maxTokens': 'longest token sequence the model takes',
  'text.train': 'its training',
  detector: 'the BiLSTM detector: predicts the next message of a session from the ones before',
  'detector.model': 'its shape and score',
  'detector.model.hiddenSize': 'hidden size of each direction',
  'detector.model.objective': 'softmax over the known messages, or regression onto the next vector',
  'detector.model.distance': 'distance of the regression objective and the distance score',
  'detector.model.score': 'distance | rank | nll | surprise (nll + rarity of the message)',
  'detector.model.rarityWeight': 'weight of rarity in the surprise score',
  'detector.model.temperature': 'softmax temperature of the scores (logits divided by it; 1 = as trained)',
  'detector.model.weighting': 'weight of a window seen n times in the loss: count (n), sqrt, log (1 + ln n), uniform',
  'detector.train': 'its training',
  threshold: 'the saved threshold, fitted without labels on the scores of held-back training sessions',
  'threshold.method': 'mean-std (mean + k·σ), mad (median + k·1.4826·MAD), percentile, or spot (peaks over threshold: a generalized Pareto tail, threshold at risk)',
  'threshold.k': 'k of mean-std and mad',
  'threshold.gap': 'lift the threshold a third of the way into the widest empty band among the top tenth of the held-back scores (at least 2σ wide, 3 scores above it) when it lies below that point',
  'threshold.percentile': 'the percentile of method percentile (0..100)',
  'threshold.holdout': 'share of the training sessions (the last in time) held back to fit the threshold',
  'threshold.normalOnlyK': 'k of mean-std for a model trained with --normal-labels (its held-back sessions are all normal, so their tail is tighter)',
  'threshold.risk': 'spot: the share of normal scores allowed above the threshold (q)',
  'threshold.level': 'spot: quantile of the held-back scores where the fitted tail starts',
  scoring: 'what a line\'s score adds up',
  'scoring.novelty': 'add the text model\'s reconstruction error of messages never seen in training',
  'scoring.sequence': 'add a count-based model\'s surprise at the message after the two before',
  'scoring.rarity': 'with sequence: add the message\'s rarity',
  'scoring.detectorWeight': 'weight of the detector\'s score',
  'scoring.counts': 'weight of the count relations a session breaks (pairs of messages whose counts keep a ratio in training), added on its end event; 0: off',
  'scoring.countConfidence': 'share of the training sessions holding either message in which a count relation must hold to be kept',
  'scoring.countBreadth': 'what breaking several count relations adds: the worst relation\'s surprise plus this times ln(relations broken); 0: the worst alone',
  'scoring.countTimeoutMs': 'the count relations judge a key once it has been quiet this long (ms), counting together the sessions the idle timeout cut within it; 0: each session at its own end',
  'scoring.knownNormal': 'a key holding exactly the lines per message of a session known normal (normal-only training, feedback) scores 0 in sessions.csv',
  training: 'how the training sessions are chosen',
  'training.trim': 'share of the training sessions, the most surprising to a count-based sequence model, left out of the detector\'s training (unlabelled logs hold anomalies)',
  run: '`deepsentry run`',
  'run.trainFraction': 'the first share of the sessions, in time order, trains; the rest is scored',
};

/** Help of the training keys, shared by text.train and detector.train. */
const TRAIN_KEY_HELP: Record<string, string> = {
  epochs: 'most passes over the training items',
  batchSize: 'items per step',
  learningRate: 'Adam\'s learning rate',
  clipNorm: 'clip the global gradient norm to this (0: off)',
  validationSplit: 'share of the items held out for early stopping (0: none; -1: the model chooses)',
  patience: 'epochs without a better validation loss before training stops',
  minDelta: 'smallest validation-loss gain that counts as better',
};
for (const section of ['text.train', 'detector.train']) for (const [k, v] of Object.entries(TRAIN_KEY_HELP)) CONFIG_KEY_HELP[`${section}.${k}`] = v;

/**
 * A whole configuration (default: the defaults) as a YAML document with a comment on every key: what
 * `--config FILE` accepts. Values are written as JSON (valid YAML), so patterns keep their escapes.
 * `logs.session.keyPattern` is written commented out unless the configuration sets it: giving it at all
 * changes what `auto` means.
 */
export function annotatedConfig(c: PipelineConfig = defaultPipelineConfig(), title = 'every key at its default'): string {
  // in the defaults' key order (a resolved file has `logs` last)
  const doc: Record<string, unknown> = Object.fromEntries(Object.keys(defaultPipelineConfig()).map((k) => [k, k === 'logs' ? resolveLogConfig(c.logs) : c[k as keyof PipelineConfig]]));
  const keyGiven = c.logs.session?.keyPattern !== undefined;
  const out: string[] = [
    `# DeepSentry configuration: ${title}. Pass a file holding any part of it with --config FILE`,
    '# (YAML or JSON); flags given on the command line win over it.',
  ];
  const walk = (o: Record<string, unknown>, path: string, indent: string) => {
    for (const [k, v] of Object.entries(o)) {
      const p = path ? `${path}.${k}` : k;
      const help = CONFIG_KEY_HELP[p] ?? '';
      const comment = help ? `  # ${help}` : '';
      if (v !== null && typeof v === 'object' && !Array.isArray(v)) {
        out.push(`${indent}${k}:${comment}`);
        walk(v as Record<string, unknown>, p, indent + '  ');
      } else if (Array.isArray(v)) {
        out.push(`${indent}${k}:${comment}`);
        for (const item of v) out.push(`${indent}  - ${JSON.stringify(item)}`);
      } else {
        const line = `${indent}${k}: ${JSON.stringify(v)}${comment}`;
        out.push(p === 'logs.session.keyPattern' && !keyGiven ? `${indent}# ${line.trimStart()}` : line);
      }
    }
  };
  walk(doc, '', '');
  return out.join('\n') + '\n';
}

/**
 * Below these, a model is trained but says little, and the CLI warns (dataWarnings). Sessions: the detector
 * learns normal behaviour from the training sessions' windows, and a few dozen sessions show little of it.
 * Held-back sessions: the threshold is a statistic of their scores (mean + k·σ by default), and σ of n scores is
 * uncertain by about 1/√(2n) of itself — ±16 % at 20, ±50 % at 2. Distinct messages: with fewer than a handful
 * there is hardly an order to learn, only counts.
 */
export const MIN_TRAIN_SESSIONS = 100;
export const MIN_HELD_BACK_SESSIONS = 20;
export const MIN_DISTINCT_MESSAGES = 5;

/** What dataWarnings looks at: model.json's `metrics.data` (lib/pipeline/train.ts). */
export interface TrainingData {
  /** session keys trained on (an idle timeout may split a key into several sessions) */
  sessionKeys: number;
  /** keys held back to fit the threshold */
  heldBackSessions: number;
  distinctMessages: number;
}

/** Two ways of cutting shorter sessions, as the logs.session settings that give them (the CLI names their flags). */
export const SHORTER_SESSIONS = 'logs.session { mode: "time", windowMs: 10000 }, or logs.session { mode: "count", windowLines: 20 }';

/** The advice for cutting more sessions out of the same log, by session mode. */
function moreSessionsAdvice(c: PipelineConfig): string {
  const s = logConfigOf(c).session;
  const mode = s.mode;
  if (mode === 'time') return `shorter time windows (logs.session.windowMs, now ${s.windowMs} ms)`;
  if (mode === 'count') return `shorter count windows (logs.session.windowLines, now ${s.windowLines})`;
  return `shorter sessions (${SHORTER_SESSIONS})`;
}

/** Warnings, with advice, when a model was trained on less than the minimums above. */
export function dataWarnings(d: TrainingData, c: PipelineConfig): string[] {
  const out: string[] = [];
  if (d.sessionKeys < MIN_TRAIN_SESSIONS) {
    out.push(`trained on ${d.sessionKeys} session${d.sessionKeys === 1 ? '' : 's'} (fewer than ${MIN_TRAIN_SESSIONS}): too few examples of normal behaviour for the detector to learn it; give a longer log, or cut ${moreSessionsAdvice(c)}`);
  }
  if (d.heldBackSessions < MIN_HELD_BACK_SESSIONS) {
    out.push(`the threshold was fitted on the scores of ${d.heldBackSessions} held-back session${d.heldBackSessions === 1 ? '' : 's'} (fewer than ${MIN_HELD_BACK_SESSIONS}): ${d.heldBackSessions < 2 ? 'it is one score, not a statistic' : 'its spread is too uncertain'}, so which sessions it flags is close to arbitrary; train on more sessions (threshold.holdout ${c.threshold.holdout} of them are held back)`);
  }
  if (d.distinctMessages < MIN_DISTINCT_MESSAGES) {
    out.push(`the training sessions hold ${d.distinctMessages} distinct message${d.distinctMessages === 1 ? '' : 's'} (fewer than ${MIN_DISTINCT_MESSAGES}): there is little order to learn; check that logs.format finds the message (<Content>) and that masking does not make every line alike`);
  }
  return out;
}
