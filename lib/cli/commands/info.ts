import type { CommandModule } from 'yargs';
import type { GlobalOptions } from '../options';

export const infoCommand: CommandModule<object, GlobalOptions> = {
  command: 'info',
  describe: 'addon status: SIMD level, threads, precision tier (bf16 instructions), CUDA; why the addon cannot load and what still works',
  handler: async (argv) => {
    const { runInfo } = await import('./info-impl');
    await runInfo(argv);
  },
};
