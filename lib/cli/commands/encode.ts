import type { Argv, CommandModule } from 'yargs';
import { withForceOption, type ForceOption, type GlobalOptions } from '../options';

/** Arguments of `deepsentry encode`. */
export interface EncodeArgs extends GlobalOptions, ForceOption {
  /** the working directory (prepared data + DIR/text-model) */
  dir: string;
}

export const encodeCommand: CommandModule<object, EncodeArgs> = {
  command: 'encode <dir>',
  describe: 'stage 3: encode every distinct message of DIR into a message vector (writes DIR/vectors)',
  builder: (y) => withForceOption(y).positional('dir', { type: 'string', demandOption: true, describe: 'working directory (after prepare and train-text)' }) as unknown as Argv<EncodeArgs>,
  handler: async (argv) => {
    const { runEncode } = await import('./stages-impl');
    await runEncode(argv);
  },
};
