import { runDetectorStage, runEncodeStage, runTextStage } from '../../pipeline/stages';
import { setupPipeline, withSignals } from '../setup';
import type { EncodeArgs } from './encode';
import type { TrainDetectorArgs } from './train-detector';
import type { TrainTextArgs } from './train-text';
import { reportOutput } from '../output';

export async function runTrainText(a: TrainTextArgs): Promise<void> {
  const s = await setupPipeline(a);
  const st = await withSignals((signal) => runTextStage(a.dir, { config: s.config, reporter: s.reporter, signal, force: a.force === true }));
  const out = { dir: a.dir, messages: st.messages.length, vocabulary: st.vocabulary.size, epochs: st.textResult.epochs, loss: st.textResult.loss, replaced: st.replaced };
  if (a.json) process.stdout.write(JSON.stringify(out) + '\n');
  else if (!a.quiet) process.stdout.write(`text model: ${out.messages} messages, vocabulary ${out.vocabulary}, ${out.epochs} epochs, loss ${out.loss.toFixed(4)}\n`);
  reportOutput(a, a.dir, st.replaced, []);
}

export async function runEncode(a: EncodeArgs): Promise<void> {
  const s = await setupPipeline(a);
  const v = await runEncodeStage(a.dir, s.reporter, a.force === true);
  if (a.json) process.stdout.write(JSON.stringify({ dir: a.dir, values: v.vectors.length, replaced: v.replaced }) + '\n');
  else if (!a.quiet) process.stdout.write(`encoded the messages of ${a.dir}\n`);
  reportOutput(a, a.dir, v.replaced, []);
}

export async function runTrainDetector(a: TrainDetectorArgs): Promise<void> {
  const s = await setupPipeline(a);
  const r = await withSignals((signal) => runDetectorStage(a.dir, a.out, { config: s.config, reporter: s.reporter, signal, force: a.force === true }));
  const out = { model: r.model.directory, threshold: r.model.thresholds.session, replaced: r.replaced };
  if (a.json) process.stdout.write(JSON.stringify(out) + '\n');
  else if (!a.quiet) process.stdout.write(`model ${out.model}: threshold ${r.model.threshold.toPrecision(6)}\n`);
  reportOutput(a, r.outDir, r.replaced, []);
}
