import type { Argv, CommandModule } from 'yargs';
import { withForceOption, type ForceOption, type GlobalOptions } from '../options';

/** Arguments of `deepsentry train-detector`. */
export interface TrainDetectorArgs extends GlobalOptions, ForceOption {
  /** the working directory (prepared data, text-model, vectors) */
  dir: string;
  /** model directory to write (default DIR/model) */
  out?: string;
}

export const trainDetectorCommand: CommandModule<object, TrainDetectorArgs> = {
  command: 'train-detector <dir>',
  describe: 'stage 4: train the detector and fit the threshold; writes the complete model (DIR/model or --out)',
  builder: (y) =>
    withForceOption(y)
      .positional('dir', { type: 'string', demandOption: true, describe: 'working directory (after prepare, train-text, encode)' })
      .option('out', { type: 'string', describe: 'model directory to write (default DIR/model)' }) as unknown as Argv<TrainDetectorArgs>,
  handler: async (argv) => {
    const { runTrainDetector } = await import('./stages-impl');
    await runTrainDetector(argv);
  },
};
