/**
 * Library errors name API options (lib/ is a library first); the CLI names its flags. These are the phrases of
 * library messages that name an option the CLI sets from a flag, and the flag's wording. main.ts rewrites a
 * DeepSentryError's message with them before printing it.
 */
const API_TO_FLAG: readonly [RegExp, string][] = [
  [/\bset acceptTruncated\b/g, 'pass --accept-truncated'],
  [/\bnormalLabels\b/g, '--normal-labels'],
  [/\bfeedback file\b/g, '--normal'],
  [/\bpass modelDir\b/g, 'pass --model DIR'],
  [/\buse scorer 'novelty'/g, '--scorer novelty'],
  // a configuration key with the value to give it (a config file's own errors say `for logs.… but received`)
  [/\blogs\.format "([^"]*)"/g, '--format $1'],
  [/\blogs\.session\.mode "([^"]*)"/g, '--session-mode $1'],
];

/** A library error message as the CLI says it: API options named by their flags. */
export function flagWording(message: string): string {
  let m = message;
  for (const [re, flag] of API_TO_FLAG) m = m.replace(re, flag);
  return m;
}
