/**
 * Brute-force definitions of the evaluation metrics, the oracles lib/eval/metrics is tested against (on
 * random cases in eval-metrics, on the real labelled scores in eval-evaluate). Deliberately O(n²) and written
 * from the definitions, sharing nothing with the sweep they check. A label is anomalous when truthy (1 / true).
 */

type Labels = ArrayLike<number | boolean>;

/** ROC-AUC by its definition: P(score of a random anomaly > score of a random normal), ties ½. */
export function bruteAuc(scores: ArrayLike<number>, labels: Labels): number {
  let num = 0;
  let pairs = 0;
  for (let i = 0; i < scores.length; i++) {
    if (!labels[i]) continue;
    for (let j = 0; j < scores.length; j++) {
      if (labels[j]) continue;
      pairs++;
      if (scores[i] > scores[j]) num += 1;
      else if (scores[i] === scores[j]) num += 0.5;
    }
  }
  return num / pairs;
}

/** AP by its definition: the mean, over anomalies, of the precision at the threshold equal to their score. */
export function bruteAp(scores: ArrayLike<number>, labels: Labels): number {
  let sum = 0;
  let nPos = 0;
  for (let i = 0; i < scores.length; i++) {
    if (!labels[i]) continue;
    nPos++;
    let flagged = 0;
    let hits = 0;
    for (let j = 0; j < scores.length; j++) {
      if (scores[j] >= scores[i]) {
        flagged++;
        if (labels[j]) hits++;
      }
    }
    sum += hits / flagged;
  }
  return sum / nPos;
}

/** The confusion matrix of per-item predictions (`flagged`) against the labels, counted one by one. */
export function bruteConfusion(flagged: ArrayLike<boolean>, labels: Labels): { tp: number; fp: number; tn: number; fn: number } {
  const c = { tp: 0, fp: 0, tn: 0, fn: 0 };
  for (let i = 0; i < flagged.length; i++) {
    if (flagged[i] && labels[i]) c.tp++;
    else if (flagged[i]) c.fp++;
    else if (labels[i]) c.fn++;
    else c.tn++;
  }
  return c;
}
