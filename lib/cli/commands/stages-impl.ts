import { runDetectorStage, runEncodeStage, runTextStage } from '../../pipeline/stages';
import { setupPipeline, withSignals } from '../../pipeline/setup';
import type { EncodeArgs } from './encode';
import type { TrainDetectorArgs } from './train-detector';
import type { TrainTextArgs } from './train-text';

export async function runTrainText(a: TrainTextArgs): Promise<void> {
  const s = await setupPipeline(a);
  const st = await withSignals((signal) => runTextStage(a.dir, { config: s.config, reporter: s.reporter, signal }));
  const out = { dir: a.dir, messages: st.messages.length, vocabulary: st.vocabulary.size, epochs: st.textResult.epochs, loss: st.textResult.loss };
  if (a.json) process.stdout.write(JSON.stringify(out) + '\n');
  else if (!a.quiet) process.stdout.write(`text model: ${out.messages} messages, vocabulary ${out.vocabulary}, ${out.epochs} epochs, loss ${out.loss.toFixed(4)}\n`);
}

export async function runEncode(a: EncodeArgs): Promise<void> {
  const s = await setupPipeline(a);
  const v = await runEncodeStage(a.dir, s.reporter);
  if (a.json) process.stdout.write(JSON.stringify({ dir: a.dir, values: v.length }) + '\n');
  else if (!a.quiet) process.stdout.write(`encoded the messages of ${a.dir}\n`);
}

export async function runTrainDetector(a: TrainDetectorArgs): Promise<void> {
  const s = await setupPipeline(a);
  const r = await withSignals((signal) => runDetectorStage(a.dir, a.out, { config: s.config, reporter: s.reporter, signal }));
  const out = { model: r.model.directory, threshold: r.model.thresholds.session };
  if (a.json) process.stdout.write(JSON.stringify(out) + '\n');
  else if (!a.quiet) process.stdout.write(`model ${out.model}: threshold ${r.model.threshold.toPrecision(6)}\n`);
}
