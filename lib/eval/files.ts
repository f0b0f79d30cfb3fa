/**
 * The files an evaluation writes, on their own: lib/outdir.ts checks a folder against them wherever scores are
 * written (score, run), and scoring should not load the report and chart modules (write.ts) to know their names.
 */

/** Every file writeEvaluation may write into its directory (lib/outdir.ts checks a folder against them). */
export const EVALUATION_FILES: readonly string[] = [
  'metrics.json',
  'report.html',
  ...['session', 'line'].flatMap((level) => ['roc', 'pr', 'scores'].map((kind) => `${level}-${kind}.svg`)),
];
