import type { Argv, CommandModule } from 'yargs';
import type { GlobalOptions } from '../options';

/** Arguments of `deepsentry config`. */
export interface ConfigArgs extends GlobalOptions {
  /** print the defaults (ignores --config) */
  defaults: boolean;
}

export const configCommand: CommandModule<object, ConfigArgs> = {
  command: 'config',
  describe: 'print the configuration, every key with a comment: --defaults, or what --config FILE resolves to (checked)',
  builder: (y) =>
    y.option('defaults', { type: 'boolean', default: false, describe: 'print the defaults: a starting point for a --config file' }) as unknown as Argv<ConfigArgs>,
  handler: async (argv) => {
    const { annotatedConfig, defaultPipelineConfig } = await import('../../pipeline/config');
    const { loadPipelineConfig } = await import('../config-file');
    const c = argv.defaults || argv.config === undefined ? defaultPipelineConfig() : await loadPipelineConfig(argv.config);
    if (argv.json) process.stdout.write(JSON.stringify(c) + '\n');
    else process.stdout.write(annotatedConfig(c, argv.defaults || argv.config === undefined ? 'every key at its default' : `${argv.config} over the defaults`));
  },
};
