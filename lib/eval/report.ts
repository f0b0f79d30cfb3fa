/**
 * report.html: one self-contained page an operator reads after a run — what was evaluated, how well the
 * model did at its own threshold and at the best one, the curves, and the sessions it flagged most strongly
 * with their lines. Inline CSS and SVG only, and a Content-Security-Policy that forbids every fetch, so it
 * opens offline and can never reach the network.
 */
import { COLORS, escapeXml as esc, fmtNum } from './charts';
import type { EvaluationResult, TopSession } from './evaluate';
import type { SessionWhy } from './scores';
import type { LevelMetrics, ThresholdMetrics } from './types';

/** The charts of one level, as SVG markup. */
export interface LevelCharts {
  roc: string;
  pr: string;
  scores: string;
}

/** What the report shows besides the evaluation itself. */
export interface ReportInput {
  result: EvaluationResult;
  charts: { session: LevelCharts; line: LevelCharts | null };
  /** free-form facts about the dataset (name, log file, …), shown as a table */
  dataset?: Record<string, unknown>;
  /** the model's configuration, shown as a flattened table; null/absent when unknown */
  modelConfig?: Record<string, unknown> | null;
  /** what the commands that produced these scores warned about (shown at the top, as the CLI printed them) */
  warnings?: string[];
  title?: string;
}

const pct = (x: number) => `${(100 * x).toFixed(2)}%`;
const f4 = (x: number | null) => (x === null ? '<span class="na">n/a</span>' : x.toFixed(4));
const int = (x: number) => x.toLocaleString('en-US');

function thresholdText(t: ThresholdMetrics): string {
  if (t.threshold === null) return t.source === 'anomaly-column' ? 'model decisions' : 'n/a';
  return esc(typeof t.threshold === 'number' ? fmtNum(t.threshold, 6) : t.threshold === 'Infinity' ? '∞' : '−∞');
}

const SOURCE_TEXT: Record<ThresholdMetrics['source'], string> = {
  'anomaly-column': 'saved threshold',
  model: 'saved threshold',
  option: 'given threshold',
  'best-f1': 'best-F1 threshold',
};

const SOURCE_NOTE: Record<ThresholdMetrics['source'], string> = {
  'anomaly-column': "saved threshold: the model's own decisions (the anomaly column it wrote when scoring)",
  model: "saved threshold: read from the model's model.json",
  option: 'given threshold: passed with --threshold',
  'best-f1': 'best-F1 threshold: chosen with hindsight on these labels (an upper bound)',
};

/** Flattens nested config into dotted keys; long arrays are summarised, not dumped. */
export function flattenConfig(obj: unknown, prefix = '', out: [string, string][] = [], depth = 0): [string, string][] {
  if (obj !== null && typeof obj === 'object' && !Array.isArray(obj) && depth < 6) {
    const entries = Object.entries(obj as Record<string, unknown>);
    if (entries.length === 0) out.push([prefix || '(empty)', '{}']);
    for (const [k, v] of entries) flattenConfig(v, prefix ? `${prefix}.${k}` : k, out, depth + 1);
    return out;
  }
  let s: string;
  if (Array.isArray(obj)) s = obj.length > 12 ? `[${obj.length} items] ${JSON.stringify(obj.slice(0, 6)).slice(0, 160)}…` : JSON.stringify(obj);
  else if (typeof obj === 'string') s = obj;
  else s = JSON.stringify(obj) ?? String(obj);
  if (s.length > 300) s = s.slice(0, 300) + '…';
  out.push([prefix, s]);
  return out;
}

function kvTable(rows: [string, string][], cls = 'kv'): string {
  return `<table class="${cls}"><tbody>${rows.map(([k, v]) => `<tr><th>${esc(k)}</th><td>${esc(v)}</td></tr>`).join('')}</tbody></table>`;
}

function confusionTable(t: ThresholdMetrics, unit: string): string {
  const c = t.confusion;
  return `<table class="cm" aria-label="confusion matrix">
<thead><tr><th></th><th>flagged</th><th>not flagged</th></tr></thead>
<tbody><tr><th>anomalous ${esc(unit)}s</th><td class="tp">${int(c.tp)}<small>TP</small></td><td class="fn">${int(c.fn)}<small>FN · missed</small></td></tr>
<tr><th>normal ${esc(unit)}s</th><td class="fp">${int(c.fp)}<small>FP · false alarms</small></td><td class="tn">${int(c.tn)}<small>TN</small></td></tr></tbody></table>`;
}

/**
 * How to read line-level numbers: with session labels every line inherits its session's label, so a normal-looking
 * line of an anomalous block counts as anomalous and line metrics measure how line scores separate blocks.
 */
function lineLabelNote(kind: 'session' | 'line'): string {
  return kind === 'session'
    ? '<p class="note">Line labels are <b>inherited from their session</b>: the label file labels sessions, so every line of an anomalous session counts as anomalous — including its many ordinary lines, which no detector should flag. Line ROC-AUC and precision are therefore low by construction; the session level is the measure.</p>'
    : '<p class="note">Labels are per line, from the log itself; a session is anomalous when any of its lines is.</p>';
}

function levelSection(m: LevelMetrics, charts: LevelCharts, beta: number, labelKind: 'session' | 'line'): string {
  const unit = m.level;
  const cols: ThresholdMetrics[] = [m.saved, m.best].filter((t): t is ThresholdMetrics => t !== null);
  const row = (name: string, f: (t: ThresholdMetrics) => string) => `<tr><th>${name}</th>${cols.map((t) => `<td>${f(t)}</td>`).join('')}</tr>`;
  const table = cols.length === 0 ? '<p class="na">No threshold metrics: there is no anomaly among the labelled items.</p>' : `<table class="metrics">
<thead><tr><th></th>${cols.map((t) => `<th>${esc(SOURCE_TEXT[t.source])}</th>`).join('')}</tr></thead>
<tbody>
${row('threshold', thresholdText)}
${row('precision', (t) => t.precision.toFixed(4))}
${row('recall (TPR)', (t) => t.recall.toFixed(4))}
${row('F1', (t) => `<b>${t.f1.toFixed(4)}</b>`)}
${row(`F${fmtNum(beta)}`, (t) => t.fBeta.toFixed(4))}
${row('false-positive rate', (t) => t.fpr.toFixed(5))}
${row(`flagged ${unit}s`, (t) => int(t.confusion.tp + t.confusion.fp))}
</tbody></table>
<p class="note">${cols.map((t) => esc(SOURCE_NOTE[t.source])).join('<br>')}</p>`;
  return `<section class="level" id="${unit}-level">
<h2>${unit === 'session' ? 'Session level' : 'Line level'}</h2>
<p class="lead">${int(m.items)} labelled ${unit}s, ${int(m.anomalies)} anomalous (${pct(m.anomalyRate)}); ${int(m.distinctScores)} distinct scores swept.
ROC-AUC <b>${f4(m.rocAuc)}</b> · average precision (PR-AUC) <b>${f4(m.averagePrecision)}</b>.</p>
${unit === 'line' ? lineLabelNote(labelKind) : ''}
<div class="row">
<div>${table}</div>
<div class="cms">${cols.map((t) => `<figure><figcaption>${esc(SOURCE_TEXT[t.source])}</figcaption>${confusionTable(t, unit)}</figure>`).join('')}</div>
</div>
<div class="charts">
<figure class="chart" data-chart="${unit}-roc">${charts.roc}</figure>
<figure class="chart" data-chart="${unit}-pr">${charts.pr}</figure>
<figure class="chart" data-chart="${unit}-scores">${charts.scores}</figure>
</div>
</section>`;
}

function labelBadge(y: boolean | null): string {
  if (y === null) return '<span class="badge none">unlabelled</span>';
  return y ? '<span class="badge anom">anomaly</span>' : '<span class="badge norm">normal</span>';
}

/** A flagged session's explanation: the line, the window before it, the message the model expected, the count relation. */
function whyHtml(w: SessionWhy): string {
  const line = w.topLine === '' ? 'its end' : `line ${esc(w.topLine)}`;
  return `<div class="why">why: at ${line} <code>${esc(w.message)}</code>; expected <code>${esc(w.expected || '—')}</code>${w.window ? `; after <code>${esc(w.window)}</code>` : ''}${w.reason ? `; ${esc(w.reason)}` : ''}</div>`;
}

/** A table of sessions with their lines (top scores, false alarms, missed anomalies). */
function sessionsSection(id: string, title: string, lead: string, top: TopSession[], haveLines: boolean, haveText: boolean, openFirst: boolean): string {
  if (top.length === 0) return '';
  const rows = top.map((s, i) => {
    const detail = !haveLines
      ? ''
      : `<details${i === 0 && openFirst ? ' open' : ''}><summary>${s.linesInScores > s.topLines.length ? `the ${s.topLines.length} highest-scoring of ${int(s.linesInScores)} lines` : `${int(s.linesInScores)} line${s.linesInScores === 1 ? '' : 's'}`}</summary>
<table class="lines"><thead><tr><th>line</th><th>score</th><th>flag</th><th title="ground truth: A anomaly, N normal">label</th>${haveText ? '<th class="text">text</th>' : ''}</tr></thead><tbody>
${s.topLines.map((l) => `<tr class="${l.anomaly ? 'flagged' : ''}"><td>${l.lineNo}</td><td>${esc(fmtNum(l.score, 4))}</td><td>${l.anomaly ? '●' : ''}</td><td>${l.label === null ? '' : l.label ? 'A' : 'N'}</td>${haveText ? `<td class="text"><code>${esc(l.text ?? '')}</code></td>` : ''}</tr>`).join('\n')}
</tbody></table></details>`;
    return `<tr class="session"><td>${s.rank}</td><td><code>${esc(s.session)}</code></td><td>${esc(fmtNum(s.score, 4))}</td><td>${s.anomaly ? '<span class="badge flag">flagged</span>' : '—'}</td><td>${labelBadge(s.label)}</td><td>${int(s.lines)}</td><td>${esc(s.firstTs)}${s.lastTs && s.lastTs !== s.firstTs ? ` → ${esc(s.lastTs)}` : ''}</td></tr>
${s.why ? `<tr class="detail why"><td></td><td colspan="6">${whyHtml(s.why)}</td></tr>` : ''}
${detail ? `<tr class="detail"><td></td><td colspan="6">${detail}</td></tr>` : ''}`;
  });
  return `<section id="${id}">
<h2>${esc(title)}</h2>
<p class="lead">${lead}${haveLines ? ' Flagged lines are highlighted.' : ''}${haveLines && !haveText ? ' (Pass the log file to see line texts.)' : ''}</p>
<table class="top"><thead><tr><th>#</th><th>session</th><th>score</th><th>model</th><th>label</th><th>lines</th><th>time</th></tr></thead><tbody>
${rows.join('\n')}
</tbody></table></section>`;
}

/** What the commands warned about, as they printed it: the report must not read cleaner than the run was. */
function warningsSection(warnings: string[]): string {
  if (warnings.length === 0) return '';
  return `<section id="warnings" class="warn"><h2>Warnings</h2><ul>${warnings.map((w) => `<li>${esc(w)}</li>`).join('')}</ul></section>`;
}

const CSS = `
:root{--fg:${COLORS.text};--mut:${COLORS.axis};--bd:#dadce0;--bg:#f6f7f9;--card:#fff;--a:${COLORS.anomalous};--n:${COLORS.normal}}
*{box-sizing:border-box}
body{margin:0;font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,Helvetica,Arial,sans-serif;color:var(--fg);background:var(--bg)}
header{background:#1f2933;color:#fff;padding:18px 28px}
header h1{margin:0;font-size:20px;font-weight:600}
header p{margin:4px 0 0;color:#c9d1d9;font-size:13px}
main{max-width:1640px;margin:0 auto;padding:18px 28px 40px}
section{background:var(--card);border:1px solid var(--bd);border-radius:6px;padding:16px 20px;margin:0 0 18px}
h2{margin:0 0 8px;font-size:17px}
.lead{margin:0 0 12px;color:var(--mut)}
.lead b{color:var(--fg)}
.cards{display:flex;flex-wrap:wrap;gap:12px;margin:0 0 18px}
.card{background:var(--card);border:1px solid var(--bd);border-radius:6px;padding:10px 16px;min-width:150px}
.card .v{font-size:24px;font-weight:600}
.card .k{color:var(--mut);font-size:12px}
.row{display:flex;flex-wrap:wrap;gap:16px 32px;align-items:flex-start}
.cms{display:flex;flex-wrap:wrap;gap:16px}
.cms table.cm td{min-width:92px}
figure{margin:0}
figcaption{font-size:12px;color:var(--mut);margin:0 0 4px}
table{border-collapse:collapse}
th,td{padding:4px 10px;text-align:right;border-bottom:1px solid #eceef1;vertical-align:top}
th{font-weight:600;text-align:left}
thead th{border-bottom:2px solid var(--bd);font-size:12px;color:var(--mut)}
table.kv th{color:var(--mut);font-weight:500;white-space:nowrap}
table.kv td{text-align:left;font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:12.5px;overflow-wrap:anywhere}
.two{display:grid;grid-template-columns:repeat(auto-fit,minmax(420px,1fr));gap:18px;margin:0 0 18px}
.two section{margin:0}
table.cm td{min-width:110px;font-size:16px;font-weight:600}
table.cm small{display:block;font-size:11px;font-weight:400;color:var(--mut)}
td.tp{background:#e6f4ea}td.tn{background:#f1f3f4}td.fp{background:#fef7e0}td.fn{background:#fce8e6}
.charts{display:grid;grid-template-columns:repeat(auto-fill,minmax(380px,1fr));gap:14px;margin-top:16px}
.chart svg{display:block;width:100%;max-width:620px;height:auto;border:1px solid #eceef1;border-radius:4px}
table.top{width:100%}
table.top td:nth-child(2),table.top th:nth-child(2),table.top td:nth-child(7),table.top th:nth-child(7){text-align:left}
tr.session td{border-top:1px solid var(--bd)}
tr.detail td{padding-top:0}
details summary{cursor:pointer;color:var(--mut);margin:2px 0 6px}
table.lines{width:100%;font-size:12.5px}
table.lines td.text,table.lines th.text{text-align:left;width:100%}
table.lines code{white-space:pre-wrap;overflow-wrap:anywhere}
tr.flagged{background:#fdecea}
code{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:12.5px}
.badge{display:inline-block;padding:0 8px;border-radius:10px;font-size:12px;font-weight:600}
.badge.anom{background:#fce8e6;color:#a50e0e}.badge.norm{background:#e8f0fe;color:#174ea6}.badge.none{background:#f1f3f4;color:var(--mut)}
.badge.flag{background:#fef7e0;color:#8a5300}
.na{color:var(--mut)}
section.warn{background:#fff8e1;border-color:#f0c36d}
section.warn ul{margin:0;padding-left:20px}
.verdict{font-size:15px;margin:0 0 14px}
.note{color:var(--mut);font-size:12px;margin:6px 0 0}
footer{color:var(--mut);font-size:12px;max-width:1640px;margin:0 auto;padding:0 28px 28px}
footer li{margin:2px 0}
`;

/** Renders report.html. */
export function renderReport(input: ReportInput): string {
  const { result } = input;
  const m = result.metrics;
  const s = m.session;
  const title = input.title ?? 'DeepSentry evaluation report';
  const saved = s.saved;
  const cards: [string, string][] = [
    ['session ROC-AUC', s.rocAuc === null ? 'n/a' : s.rocAuc.toFixed(4)],
    ['session PR-AUC (AP)', s.averagePrecision === null ? 'n/a' : s.averagePrecision.toFixed(4)],
  ];
  if (saved) {
    cards.push(['F1 at saved threshold', saved.f1.toFixed(4)], ['precision', saved.precision.toFixed(4)], ['recall', saved.recall.toFixed(4)]);
    cards.push(['sessions flagged', `${int(saved.confusion.tp + saved.confusion.fp)} / ${int(s.items)}`]);
  }
  if (s.best) cards.push(['best possible F1', s.best.f1.toFixed(4)]);
  if (m.line) cards.push(['line ROC-AUC', m.line.rocAuc === null ? 'n/a' : m.line.rocAuc.toFixed(4)]);

  const cov = m.coverage;
  const datasetRows: [string, string][] = [
    ...Object.entries(input.dataset ?? {}).map(([k, v]) => [k, typeof v === 'string' ? v : JSON.stringify(v)] as [string, string]),
    ['scores', m.inputs.scoresDir],
    ['labels', `${m.inputs.labelsFile} (${m.inputs.labelKind === 'session' ? 'one per session' : 'one per line, from the log itself'})`],
    ['sessions scored', `${int(cov.sessionsScored)}${cov.sessionsLabelled < cov.sessionsScored ? `, ${int(cov.sessionsLabelled)} of them labelled (the others are left out)` : ', all labelled'}`],
    ['anomalous sessions', `${int(s.anomalies)} (${pct(s.anomalyRate)})`],
  ];
  if (m.inputs.labelKind === 'session' && cov.labelsWithoutSession > 0) {
    datasetRows.push(['labels of sessions not scored', `${int(cov.labelsWithoutSession)}: the label file also labels sessions that are not among the scored ones (after deepsentry run: the earlier sessions the model trained on)`]);
  }
  if (m.line) datasetRows.push(['lines scored', `${int(cov.linesScored)}, the lines of the scored sessions${cov.linesLabelled < cov.linesScored ? `; ${int(cov.linesLabelled)} of them labelled` : ', all labelled'}`], ['anomalous lines', `${int(m.line.anomalies)} (${pct(m.line.anomalyRate)})`]);
  const modelRows = input.modelConfig ? flattenConfig(input.modelConfig) : [];
  const listed = [...result.top, ...result.falseAlarms, ...result.missed];
  const haveLines = listed.some((t) => t.linesInScores > 0);
  const haveText = listed.some((t) => t.topLines.some((l) => l.text !== undefined));

  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; img-src data:">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${esc(title)}</title>
<style>${CSS}</style>
</head>
<body>
<header><h1>${esc(title)}</h1><p>Evaluated ${esc(m.createdAt.replace('T', ' ').replace(/\.\d+Z$/, ' UTC'))} · rule: anomalous when score ≥ threshold · F${fmtNum(m.beta)} uses β = ${fmtNum(m.beta)}</p></header>
<main>
${warningsSection(input.warnings ?? [])}
${saved ? `<p class="verdict">At the ${esc(SOURCE_TEXT[saved.source])} the model flagged <b>${int(saved.confusion.tp + saved.confusion.fp)}</b> of ${int(s.items)} sessions: <b>${int(saved.confusion.tp)}</b> of the ${int(s.anomalies)} anomalous sessions found (recall ${pct(saved.recall)}), <b>${int(saved.confusion.fp)}</b> false alarm${saved.confusion.fp === 1 ? '' : 's'} (precision ${pct(saved.precision)}), <b>${int(saved.confusion.fn)}</b> missed.</p>` : ''}
<div class="cards">${cards.map(([k, v]) => `<div class="card"><div class="v">${esc(v)}</div><div class="k">${esc(k)}</div></div>`).join('')}</div>
<div class="two">
<section id="dataset"><h2>Dataset</h2>${kvTable(datasetRows)}</section>
<section id="model"><h2>Model</h2>${modelRows.length ? kvTable(modelRows) : '<p class="na">No model configuration was given.</p>'}</section>
</div>
${levelSection(s, input.charts.session, m.beta, m.inputs.labelKind)}
${m.line && input.charts.line ? levelSection(m.line, input.charts.line, m.beta, m.inputs.labelKind) : ''}
${sessionsSection('top', `Top ${result.top.length} sessions by score`, "The sessions the model finds most unusual, highest score first, with the model's decision and the ground truth.", result.top, haveLines, haveText, true)}
${sessionsSection('false-alarms', `False alarms: ${int(saved?.confusion.fp ?? 0)} normal session${saved?.confusion.fp === 1 ? '' : 's'} flagged${result.falseAlarms.length < (saved?.confusion.fp ?? 0) ? ` (the ${result.falseAlarms.length} highest-scoring)` : ''}`, 'Labelled normal, flagged by the model: highest score first.', result.falseAlarms, haveLines, haveText, false)}
${sessionsSection('missed', `Missed anomalies: ${int(saved?.confusion.fn ?? 0)} anomalous session${saved?.confusion.fn === 1 ? '' : 's'} not flagged${result.missed.length < (saved?.confusion.fn ?? 0) ? ` (the ${result.missed.length} highest-scoring)` : ''}`, 'Labelled anomalous, not flagged: highest score first, so the nearest misses lead.', result.missed, haveLines, haveText, false)}
</main>
<footer><ul>
<li>Labels are used only here, for evaluation; the saved threshold comes from unlabelled data. The best-F1 threshold is chosen with hindsight on these labels: an upper bound, not a setting to deploy blindly.</li>
<li>ROC-AUC: trapezoidal area over every distinct score (ties count ½). PR-AUC: average precision Σ (Rₖ − Rₖ₋₁)·Pₖ, as scikit-learn. Recall = true-positive rate.</li>
<li>metrics.json next to this file holds every number on this page.</li>
</ul></footer>
</body>
</html>
`;
}
