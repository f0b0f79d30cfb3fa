/**
 * Evaluation: labels, metrics, charts and the HTML report. `run` and `eval` use it as:
 *
 *   const { result, files, warnings } = await runEvaluation({ scoresDir, labelsFile, outDir, logFile, modelConfig });
 *   process.stdout.write(summaryTable(result.metrics));
 *
 * or step by step: loadSessionLabels / loadLineLabels → evaluate → writeEvaluation.
 */
export { loadLineLabels, loadSessionLabels, type LineLabelOptions, type LineLabels, type Labels, type SessionLabels } from './labels';
export {
  averagePrecision,
  bestF1Threshold,
  confusionAt,
  confusionOf,
  fBetaScore,
  prCurve,
  rates,
  rocAuc,
  rocCurve,
  sweep,
  type ConfusionMatrix,
  type Rates,
  type Sweep,
} from './metrics';
export { readLineScores, readSessionScores, type LineScores, type SessionScores } from './scores';
export { DEFAULT_BETA, evaluate, type EvaluateOptions, type EvaluationResult, type TopSession } from './evaluate';
export { prChartSvg, rocChartSvg, scoreDistributionSvg, type ChartMarker } from './charts';
export { renderReport, type ReportInput } from './report';
export { writeEvaluation, type WriteOptions, type WrittenFiles } from './write';
export { runEvaluation, type RunEvaluationOptions, type RunEvaluationResult } from './run';
export { summaryTable } from './summary';
export * from './types';
