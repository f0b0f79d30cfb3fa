'use strict';
// Mocha's Spec reporter plus the closing line CI reads: "N passed, N failed, N skipped".
// (CI does not recognise mocha's own "N passing" summary.)
const Mocha = require('mocha');
const { Spec } = Mocha.reporters;
const { EVENT_RUN_END } = Mocha.Runner.constants;

class SummaryReporter extends Spec {
  constructor(runner, options) {
    super(runner, options);
    runner.once(EVENT_RUN_END, () => {
      const s = runner.stats || {};
      // Printed after Spec's epilogue so it is the last line of the run.
      process.nextTick(() => {
        process.stdout.write(`${s.passes || 0} passed, ${s.failures || 0} failed, ${s.pending || 0} skipped\n`);
      });
    });
  }
}
module.exports = SummaryReporter;
