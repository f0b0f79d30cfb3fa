import type { GlobalOptions } from '../options';

export async function runInfo(argv: GlobalOptions): Promise<void> {
  // Filled in by the native loader work (lib/backend/native.ts).
  const report = { addon: 'not built yet' };
  process.stdout.write(argv.json ? JSON.stringify(report) + '\n' : `addon: ${report.addon}\n`);
}
