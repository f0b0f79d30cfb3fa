/**
 * A model's lineage: its version (1 as trained, +1 per feedback, lib/pipeline/feedback.ts), its parent's
 * version and content hash, and every feedback applied, kept in model.json's metrics.lineage.
 */

/** A model's place in its feedback history (model.json metrics.lineage). */
export interface ModelLineage {
  /** 1 for a trained model, +1 per feedback */
  version: number;
  /** the model this one was made from: its version and model.json content checksum */
  parent: { version: number; contentSha256: string | null } | null;
  /** every feedback applied, oldest first */
  feedback: Array<{ version: number; log: string; source: string | null; sessions: string[]; replaySessions: number; epochs: number; learningRate: number; weight: number; seen?: number; seed: number }>;
}

/** The model's lineage from its metrics (a model without one is version 1, the trained one). */
export function lineageOf(model: { metrics: Record<string, unknown> }): ModelLineage {
  const l = model.metrics.lineage as ModelLineage | undefined;
  return l && typeof l.version === 'number' ? l : { version: 1, parent: null, feedback: [] };
}
