/**
 * The one list of CLI commands. Each lives in lib/cli/commands/<name>.ts and exports a yargs CommandModule
 * whose handler lazy-imports its implementation, so `--help` stays fast.
 */
import type { CommandModule } from 'yargs';
import { infoCommand } from './commands/info';
import { evalCommand } from './commands/eval';
import { prepareCommand } from './commands/prepare';
import { liveCommand } from './commands/live';
import { publishCommand } from './commands/publish';
import { trainCommand } from './commands/train';
import { scoreCommand } from './commands/score';
import { runCommand } from './commands/run';
import { trainTextCommand } from './commands/train-text';
import { encodeCommand } from './commands/encode';
import { trainDetectorCommand } from './commands/train-detector';
import { configCommand } from './commands/config';
import { feedbackCommand } from './commands/feedback';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export const commands: CommandModule<any, any>[] = [infoCommand, evalCommand, prepareCommand, liveCommand, publishCommand, trainCommand, scoreCommand, runCommand, trainTextCommand, encodeCommand, trainDetectorCommand, configCommand, feedbackCommand];
