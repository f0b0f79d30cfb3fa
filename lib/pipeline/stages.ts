/**
 * The stage commands' working directory: `deepsentry prepare LOG --out DIR` writes the prepared data, then
 *
 *   train-text DIR       → DIR/text-model/   (vocabulary + text autoencoder + which messages it learnt)
 *   encode DIR           → DIR/vectors/      (the message-vector table)
 *   train-detector DIR   → DIR/model/ (or --out): the complete model, as `deepsentry train` writes it
 *
 * Each reads what the stage before it wrote and can be re-run alone; each intermediate is a model-files
 * directory (lib/models/files.ts: atomic, checksummed), so a stage never reads half of another's output.
 */
import * as path from 'node:path';
import { DeepSentryError } from '../errors';
import { readPreparedManifest, readPreparedMessages, STAGE_DIRS, type PreparedMessage } from '../logs/prepared';
import { Vocabulary } from '../logs/vocabulary';
import { loadModelDir, saveModelDir } from '../models/files';
import { createOutputDir, type OutputDirState } from '../outdir';
import { TextAutoencoder, type TextModelConfig } from '../models/text';
import type { TrainResult } from '../models/train';
import { resolveLogConfig, type LogConfig } from '../logs/config';
import type { PipelineConfig } from './config';
import { ensureBackend, FIRST_ID, type DeepSentry } from './model';
import { encodeStage, trainDetectorStage, trainingSessions, trainTextStage, type PipelineReporter, type TextStage } from './train';

export const TEXT_MODEL_DIR = STAGE_DIRS.text;
export const VECTORS_DIR = STAGE_DIRS.vectors;
export const MODEL_DIR = STAGE_DIRS.model;

interface TextExtra {
  stage: 'text';
  /** prepared ids of the messages the text model learnt (model id FIRST_ID + i) */
  preparedIds: number[];
  counts: number[];
  logConfig: LogConfig;
  textConfig: TextModelConfig;
  textResult: TrainResult;
}

/** Options of the stage commands. */
export interface StageOptions {
  config: PipelineConfig;
  reporter?: PipelineReporter;
  signal?: AbortSignal;
  /** replace an earlier run's output of this stage (and what later stages derived from it); default: refuse */
  force?: boolean;
}

/**
 * Checks (and with force clears) a stage's output in the working directory before the stage runs: its own
 * model directory, and those of the later stages, which a new one would make stale (lib/outdir.ts).
 */
async function stageOutput(dir: string, own: string, later: readonly string[], force: boolean | undefined): Promise<OutputDirState> {
  await readPreparedManifest(dir); // a working directory prepare wrote, not a typo to be created
  return createOutputDir(dir, { what: 'working directory', writes: [`${own}/`], stale: later.map((d) => `${d}/`), option: 'working directory', ...(force ? { force: true } : {}) });
}

/** `train-text`: trains the text stage on every session of the prepared directory and saves it. */
export async function runTextStage(dir: string, o: StageOptions): Promise<TextStage & { replaced: string[] }> {
  const out = await stageOutput(dir, TEXT_MODEL_DIR, [VECTORS_DIR, MODEL_DIR], o.force);
  const { manifest, sessions } = await trainingSessions(dir);
  const st = await trainTextStage(dir, manifest, sessions, o);
  if (o.signal?.aborted) throw new DeepSentryError('DS_CANCELLED', 'train-text was cancelled; nothing was written');
  const extra: TextExtra = {
    stage: 'text',
    preparedIds: st.messages.map((m) => m.id),
    counts: st.counts,
    logConfig: st.logConfig,
    textConfig: st.text.config,
    textResult: st.textResult,
  };
  await saveModelDir(path.join(dir, TEXT_MODEL_DIR), { config: o.config, vocabulary: st.vocabulary.toJSON(), thresholds: null, metrics: { text: st.textResult }, dataHash: '', extra: extra as unknown as Record<string, unknown> }, st.text.weights());
  return { ...st, replaced: out.earlier };
}

/** Reads what train-text wrote (checked), with the prepared messages it refers to. */
export async function loadTextStage(dir: string): Promise<TextStage> {
  const where = path.join(dir, TEXT_MODEL_DIR);
  let loaded;
  try {
    loaded = await loadModelDir(where);
  } catch (e) {
    throw new DeepSentryError('DS_MODEL', `${(e as Error).message} (run deepsentry train-text ${dir} first)`);
  }
  const { json, weights } = loaded;
  const x = json.extra as unknown as TextExtra | undefined;
  if (!x || x.stage !== 'text' || !Array.isArray(x.preparedIds)) throw new DeepSentryError('DS_MODEL', `${where}: not a train-text output`);
  const all = await readPreparedMessages(dir);
  const messages: PreparedMessage[] = x.preparedIds.map((id) => {
    const m = all[id - FIRST_ID];
    if (!m || m.id !== id) throw new DeepSentryError('DS_MODEL', `${where}: message ${id} is not in the prepared data of ${dir} (prepared again since train-text? run train-text again)`);
    return m;
  });
  ensureBackend();
  return {
    logConfig: resolveLogConfig(x.logConfig as unknown as Record<string, unknown>),
    vocabulary: Vocabulary.fromJSON(json.vocabulary, `${where} vocabulary`),
    text: TextAutoencoder.fromWeights(x.textConfig, weights, where),
    messages,
    counts: x.counts,
    textResult: x.textResult,
  };
}

/** `encode`: the message vectors of the text stage's messages, saved. */
export async function runEncodeStage(dir: string, reporter?: PipelineReporter, force?: boolean): Promise<{ vectors: Float32Array; replaced: string[] }> {
  const out = await stageOutput(dir, VECTORS_DIR, [MODEL_DIR], force);
  const st = await loadTextStage(dir);
  const vectors = await encodeStage(st, reporter);
  const D = st.text.config.latentDim;
  await saveModelDir(
    path.join(dir, VECTORS_DIR),
    { config: null, vocabulary: null, thresholds: null, metrics: {}, dataHash: '', extra: { stage: 'vectors', preparedIds: st.messages.map((m) => m.id) } },
    [{ name: 'vectors', shape: [vectors.length / D, D], values: vectors }],
  );
  return { vectors, replaced: out.earlier };
}

/** `train-detector`: detector + threshold over the saved text stage and vectors; writes the complete model. */
export async function runDetectorStage(dir: string, outDir: string | undefined, o: StageOptions): Promise<{ model: DeepSentry; outDir: string; replaced: string[] }> {
  await readPreparedManifest(dir);
  const out = outDir ?? path.join(dir, MODEL_DIR);
  const outState = await createOutputDir(out, { kind: 'model', inputs: [path.join(dir, TEXT_MODEL_DIR), path.join(dir, VECTORS_DIR)], ...(o.force ? { force: true } : {}) });
  const st = await loadTextStage(dir);
  const where = path.join(dir, VECTORS_DIR);
  let loaded;
  try {
    loaded = await loadModelDir(where);
  } catch (e) {
    throw new DeepSentryError('DS_MODEL', `${(e as Error).message} (run deepsentry encode ${dir} first)`);
  }
  const ids = (loaded.json.extra as { preparedIds?: number[] } | undefined)?.preparedIds;
  if (!Array.isArray(ids) || ids.length !== st.messages.length || ids.some((id, i) => id !== st.messages[i].id)) {
    throw new DeepSentryError('DS_MODEL', `${where} was encoded with another text model than ${path.join(dir, TEXT_MODEL_DIR)}: run encode again`);
  }
  const vectors = loaded.weights.find((w) => w.name === 'vectors');
  if (!vectors) throw new DeepSentryError('DS_MODEL', `${where}: weight "vectors" missing`);
  const { manifest, sessions } = await trainingSessions(dir);
  const model = await trainDetectorStage(st, vectors.values, manifest, sessions, o);
  if (o.signal?.aborted) throw new DeepSentryError('DS_CANCELLED', 'train-detector was cancelled; nothing was written');
  await model.save(out);
  model.directory = path.resolve(out);
  return { model, outDir: out, replaced: outState.earlier };
}
