/**
 * Skipping with the reason in the output. Every skip in the suites goes through here, so that a run that
 * checked less than it could says what and why: the reason is appended to the title of each test it skips
 * ("… (skipped: <why>)"), which the reporter prints with the pending test and counts in its closing summary
 * (test/support/summary-reporter.js).
 */

/** The marker the reporter looks for in a skipped test's title. */
export const SKIPPED_MARK = ' (skipped: ';

function mark(test: Mocha.Runnable, why: string): void {
  if (!test.title.includes(SKIPPED_MARK)) test.title += `${SKIPPED_MARK}${why})`;
}

/** Every test of a suite and of the suites inside it. */
function markSuite(suite: Mocha.Suite, why: string): void {
  for (const t of suite.tests) mark(t, why);
  for (const s of suite.suites) markSuite(s, why);
}

/**
 * Skips the current test — or, called from a `before` hook, every test of the suite — naming `why`.
 */
export function skipBecause(ctx: Mocha.Context, why: string): never {
  const r = ctx.test;
  // mocha sets `type` on every runnable ('hook' or 'test'); @types/mocha declares it on Test only
  const inHook = (r as { type?: string } | undefined)?.type === 'hook';
  if (inHook && r?.parent) markSuite(r.parent, why);
  else if (r && !inHook) mark(r, why);
  ctx.skip();
}

/**
 * As skipBecause, except under CI=true, where it fails instead: CI prepares everything these tests need
 * (.ci/run), so a CI run must not go green by not running them.
 */
export function skipUnlessCI(ctx: Mocha.Context, why: string): never {
  if (process.env.CI === 'true') throw new Error(`CI=true but ${why}`);
  skipBecause(ctx, why);
}
