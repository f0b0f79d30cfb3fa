import type { Argv, CommandModule } from 'yargs';
import { withForceOption, type ForceOption, type GlobalOptions } from '../options';

/** Arguments of `deepsentry train-text`. */
export interface TrainTextArgs extends GlobalOptions, ForceOption {
  /** the working directory written by `deepsentry prepare` */
  dir: string;
}

export const trainTextCommand: CommandModule<object, TrainTextArgs> = {
  command: 'train-text <dir>',
  describe: 'stage 2: train the text autoencoder on the prepared messages of DIR (writes DIR/text-model)',
  builder: (y) => withForceOption(y).positional('dir', { type: 'string', demandOption: true, describe: 'working directory written by deepsentry prepare' }) as unknown as Argv<TrainTextArgs>,
  handler: async (argv) => {
    const { runTrainText } = await import('./stages-impl');
    await runTrainText(argv);
  },
};
