'use strict';
// Mocha's Spec reporter plus, at the end, the reasons for what was skipped (grouped, with counts: the reason
// is in each skipped test's title, put there by test/support/skip.ts) and the closing line CI reads:
// "N passed, N failed, N skipped". (CI does not recognise mocha's own "N passing" summary.)
const Mocha = require('mocha');
const { Spec } = Mocha.reporters;
const { EVENT_RUN_END, EVENT_TEST_PENDING } = Mocha.Runner.constants;

const MARK = ' (skipped: '; // SKIPPED_MARK in test/support/skip.ts

/** The reason in a skipped test's title, or a hint when the skip did not give one. */
function reasonOf(title) {
  const i = title.indexOf(MARK);
  if (i < 0) return 'no reason given (skip through test/support/skip.ts to name one)';
  return title.slice(i + MARK.length, title.endsWith(')') ? -1 : undefined);
}

class SummaryReporter extends Spec {
  constructor(runner, options) {
    super(runner, options);
    const reasons = new Map();
    runner.on(EVENT_TEST_PENDING, (test) => {
      const why = reasonOf(test.title);
      reasons.set(why, (reasons.get(why) || 0) + 1);
    });
    runner.once(EVENT_RUN_END, () => {
      const s = runner.stats || {};
      // Printed after Spec's epilogue so the counts are the last line of the run.
      process.nextTick(() => {
        if (reasons.size > 0) {
          process.stdout.write('skipped, by reason:\n');
          for (const [why, n] of [...reasons].sort((a, b) => b[1] - a[1])) process.stdout.write(`  ${String(n).padStart(4)}  ${why}\n`);
          process.stdout.write('\n');
        }
        process.stdout.write(`${s.passes || 0} passed, ${s.failures || 0} failed, ${s.pending || 0} skipped\n`);
      });
    });
  }
}
module.exports = SummaryReporter;
