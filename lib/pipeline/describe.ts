/**
 * A trained model in a few lines of words, for the report's Model panel: what it was trained on (session keys,
 * how they were cut into sessions, messages), how its threshold was fitted, and how long each model trained.
 * Reads model.json's fields as saved (`config`, `thresholds`, `metrics`, `extra.logConfig`: lib/pipeline/model.ts
 * and lib/pipeline/train.ts write them), defensively: a field that is missing is left out, never guessed.
 */

/** The parts of model.json the panel reads (a DeepSentry object has the same fields). */
export interface ModelFacts {
  directory?: string;
  config?: unknown;
  thresholds?: unknown;
  metrics?: unknown;
  logConfig?: unknown;
  /** model.json extra.knownNormal (lib/models/known_normal.ts) */
  knownNormal?: unknown;
}

type Obj = Record<string, unknown>;
const obj = (v: unknown): Obj => (v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Obj) : {});
const num = (v: unknown): number | undefined => (typeof v === 'number' && Number.isFinite(v) ? v : undefined);
const int = (x: number) => x.toLocaleString('en-US');

/** A duration in ms as a person says it (300000 → "5 min"). */
export function durationText(ms: number): string {
  if (ms % 3_600_000 === 0) return `${ms / 3_600_000} h`;
  if (ms % 60_000 === 0) return `${ms / 60_000} min`;
  if (ms % 1000 === 0) return `${ms / 1000} s`;
  return `${ms} ms`;
}

/** How sessions were cut, in words (`key /blk_-?\d+/; a quiet gap of 5 min ends one`). */
export function sessionText(session: unknown): string | undefined {
  const s = obj(session);
  const mode = s.mode;
  if (typeof mode !== 'string') return undefined;
  const how =
    mode === 'key' ? `by the key /${String(s.keyPattern)}/ in the message`
    : mode === 'field' ? `by the field ${s.field ? JSON.stringify(s.field) : "the format's session key"}`
    : mode === 'time' ? `time windows of ${durationText(num(s.windowMs) ?? 0)}`
    : mode === 'count' ? `windows of ${num(s.windowLines)} lines`
    : mode;
  const idle = num(s.idleTimeoutMs);
  // a quiet gap matters where a session is not bounded by its window
  return idle !== undefined && (mode === 'key' || mode === 'field') ? `${how}; a quiet gap of ${durationText(idle)} ends a session` : how;
}

function trainingText(t: unknown): string | undefined {
  const r = obj(t);
  const epochs = num(r.epochs);
  const seconds = num(r.seconds);
  if (epochs === undefined) return undefined;
  return `${epochs} epochs${r.stoppedEarly === true ? ` (stopped early; best ${num(r.bestEpoch)})` : ''}${seconds !== undefined ? `, ${seconds.toFixed(1)} s` : ''}`;
}

/** The Model panel: [label in words, value] rows. */
export function describeModel(m: ModelFacts): Record<string, string> {
  const out: Record<string, string> = {};
  const config = obj(m.config);
  const metrics = obj(m.metrics);
  const data = obj(metrics.data);
  if (m.directory) out.directory = m.directory;
  const th = obj(obj(m.thresholds).session);
  const value = num(th.value);
  if (value !== undefined) {
    const method =
      th.method === 'mean-std' ? `mean + ${num(th.param)}·σ` : th.method === 'mad' ? `median + ${num(th.param)}·MAD` : th.method === 'spot' ? `SPOT at risk ${num(th.param)}` : `percentile ${num(th.param)}`;
    const gap = obj(th.gap);
    const [lower, upper, above, base] = [num(gap.lower), num(gap.upper), num(gap.above), num(gap.base)];
    const lift =
      lower !== undefined && upper !== undefined && base !== undefined
        ? ` (${Number(base.toPrecision(6))}), lifted a third of the way into the empty band between ${Number(lower.toPrecision(6))} and ${Number(upper.toPrecision(6))} (${above ?? '?'} scores above it),`
        : '';
    out['saved threshold'] = `${Number(value.toPrecision(6))}: ${method}${lift} of the scores of ${num(th.fittedOn) ?? '?'} held-back training sessions (no labels)`;
  }
  const keys = num(data.sessionKeys);
  const segments = num(data.sessions);
  if (keys !== undefined) {
    const held = num(data.heldBackSessions) ?? 0;
    const split = segments !== undefined && segments !== keys ? `, cut into ${int(segments)} sessions at quiet gaps` : '';
    out['trained on'] = `${int(keys)} session keys${split}; the detector learnt from the first ${int(keys - held)} keys (${int(num(data.detectorSessions) ?? 0)} sessions), the threshold from the last ${int(held)}`;
  }
  const sessions = sessionText(obj(m.logConfig).session);
  if (sessions) out['sessions cut'] = sessions;
  const distinct = num(data.distinctMessages);
  if (distinct !== undefined) out.messages = `${int(distinct)} distinct masked messages, vocabulary of ${int(num(data.vocabularySize) ?? 0)} tokens`;
  const text = obj(obj(config.text).model);
  const textTrain = trainingText(metrics.text);
  if (num(text.latentDim) !== undefined) out['text model'] = `LSTM autoencoder, message vectors of ${num(text.latentDim)}${textTrain ? `; ${textTrain}` : ''}`;
  const det = obj(obj(config.detector).model);
  const window = num(obj(obj(m.logConfig).window).size);
  const detTrain = trainingText(metrics.detector);
  if (num(det.hiddenSize) !== undefined) out.detector = `BiLSTM ${num(det.hiddenSize)}×2${window !== undefined ? `, windows of ${window} messages` : ''}, score ${String(det.score)}${detTrain ? `; ${detTrain}` : ''}`;
  const known = obj(m.knownNormal);
  if (Array.isArray(known.keys) && known.keys.length > 0) {
    const from = Array.isArray(known.sources) ? known.sources.map((x) => (x === 'normal-labels' ? 'the normal-labelled training sessions' : x === 'feedback' ? 'feedback' : String(x))).join(' and ') : '?';
    out['known normal'] = `${int(known.keys.length)} session compositions (lines per message) from ${from}: a key holding exactly one scores 0${obj(config.scoring).knownNormal === false ? ' — off (scoring.knownNormal false)' : ''}`;
  }
  if (num(config.seed) !== undefined) out.seed = String(config.seed);
  out['full configuration'] = 'model.json in the model directory (deepsentry config --defaults explains every key)';
  return out;
}
