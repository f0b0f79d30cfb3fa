/** The benchmark's results as data (stored as JSON) and as the table printed at the end (Markdown). */
import type { Timing } from './timing';

export type WorkloadId = 'w1-forward' | 'w1-train' | 'l1' | 'w2-encode' | 'w2-train';
/**
 * native: the kernels called directly; native-tfjs: the same kernels through DeepSentry's tfjs backend and ops;
 * cuda: native with the LSTM calls through CudaLstm on a device (bench/cuda.ts); tfjs-*: an LSTM written in
 * tfjs-core ops (bench/peers/tfjs.ts); layers-*: the tfjs-layers LSTM / Bidirectional / Embedding / Dense
 * layers (bench/peers/layers.ts); each on tfjs' wasm or cpu backend; onnxruntime: onnxruntime-node's CPU
 * execution provider on ONNX graphs of the same models (bench/peers/onnx.ts); torch: PyTorch fp32 in a python3
 * process (bench/peers/torch.ts)
 */
export type ImplId = 'native' | 'native-bf16' | 'native-tfjs' | 'tfjs-wasm' | 'tfjs-cpu' | 'layers-wasm' | 'layers-cpu' | 'cuda' | 'onnxruntime' | 'torch';

export interface WorkloadDef {
  id: WorkloadId;
  title: string;
  /** shape in words, for the table */
  shape: string;
  /** what one item is (windows, sentences); L1 reports time per call instead */
  item: string;
  itemsPerCall: number;
  flopsPerCall: number;
  /** report median microseconds per call rather than items/s */
  latency: boolean;
  /** the floor for native ÷ tfjs-wasm, when there is one */
  target?: number;
}

/** One timed (workload, implementation) pair. */
export interface CaseResult {
  workload: WorkloadId;
  impl: ImplId;
  /** median seconds per call */
  medianSeconds: number;
  itemsPerSecond: number;
  gflops: number;
  samples: number;
  /** every sample: mean seconds per call of one benchmark.js cycle */
  sampleSeconds: number[];
  rmePercent: number;
  /** timed in rounds interleaved with other implementations: each round's median seconds per call */
  roundMedianSeconds?: number[];
  /** how this implementation's variant differs, e.g. a frozen embedding */
  note?: string;
}

/** The check that an implementation computes the same function as the native kernels, before timing. */
export interface AgreementResult {
  workload: WorkloadId;
  impl: ImplId;
  /** what was compared, e.g. "pred [256,128] max |Δ|" */
  what: string;
  /** the measured difference (absolute for outputs, relative to the largest |gradient| for gradients) */
  value: number;
  tolerance: number;
  ok: boolean;
}

const nf = (digits: number) => new Intl.NumberFormat('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });

function fmtCount(v: number): string {
  if (v >= 100) return nf(0).format(v);
  if (v >= 10) return nf(1).format(v);
  return nf(2).format(v);
}

function cell(def: WorkloadDef, r: CaseResult | undefined): string {
  if (!r) return '—';
  const gf = `${fmtCount(r.gflops)} GFLOP/s`;
  if (def.latency) return `${fmtCount(r.medianSeconds * 1e6)} µs (${gf})`;
  return `${fmtCount(r.itemsPerSecond)} (${gf})`;
}

function ratio(native: CaseResult | undefined, peer: CaseResult | undefined): number | null {
  if (!native || !peer) return null;
  return peer.medianSeconds / native.medianSeconds;
}

const MARKS = ['¹', '²', '³', '⁴', '⁵', '⁶', '⁷', '⁸', '⁹'];

/** The distinct notes of the results, each with its footnote mark (in order of first appearance). */
export function footnotes(results: CaseResult[]): Array<{ mark: string; note: string; impls: string[] }> {
  const out: Array<{ mark: string; note: string; impls: string[] }> = [];
  for (const r of results) {
    if (!r.note) continue;
    let f = out.find((x) => x.note === r.note);
    if (!f) {
      f = { mark: MARKS[Math.min(out.length, MARKS.length - 1)], note: r.note, impls: [] };
      out.push(f);
    }
    const who = `${r.impl} ${r.workload}`;
    if (!f.impls.includes(who)) f.impls.push(who);
  }
  return out;
}

/** The results table, Markdown, one row per workload (footnotes() explains the marks). */
export function formatTable(defs: WorkloadDef[], results: CaseResult[], peers: ImplId[]): string {
  const notes = footnotes(results);
  const find = (w: WorkloadId, i: ImplId) => results.find((r) => r.workload === w && r.impl === i);
  const head = ['workload', 'shape', 'unit', 'native', ...peers, ...peers.map((p) => `native ÷ ${p}`), 'target'];
  const rows: string[][] = [];
  for (const d of defs) {
    const n = find(d.id, 'native');
    const peerCells = peers.map((p) => {
      const r = find(d.id, p);
      return r ? cell(d, r) + (r.note ? ` ${notes.find((f) => f.note === r.note)?.mark}` : '') : '—';
    });
    const ratios = peers.map((p) => {
      const x = ratio(n, find(d.id, p));
      return x === null ? '—' : `${fmtCount(x)}×`;
    });
    let target = '';
    if (d.target !== undefined) {
      const x = ratio(n, find(d.id, 'tfjs-wasm'));
      target = `≥ ${d.target}× wasm` + (x === null ? '' : x >= d.target ? ' **pass**' : ' **FAIL**');
    }
    rows.push([d.title, d.shape, d.latency ? 'median µs/call' : `${d.item}/s`, cell(d, n), ...peerCells, ...ratios, target]);
  }
  const line = (cols: string[]) => `| ${cols.join(' | ')} |`;
  return [line(head), line(head.map(() => '---')), ...rows.map(line)].join('\n');
}

/**
 * native against the best of `peers` on each workload (the fastest median among those that ran it): the
 * peers timed in the same rounds as native. Markdown, one row per workload.
 */
export function formatBestPeerTable(defs: WorkloadDef[], results: CaseResult[], peers: ImplId[]): string {
  const find = (w: WorkloadId, i: ImplId) => results.find((r) => r.workload === w && r.impl === i);
  const head = ['workload', 'unit', 'native', ...peers, 'best peer', 'native ÷ best peer'];
  const rows: string[][] = [];
  for (const d of defs) {
    const n = find(d.id, 'native');
    const ran = peers.map((p) => find(d.id, p)).filter((r): r is CaseResult => r !== undefined);
    const best = ran.reduce<CaseResult | undefined>((b, r) => (b === undefined || r.medianSeconds < b.medianSeconds ? r : b), undefined);
    const x = ratio(n, best);
    rows.push([
      d.title,
      d.latency ? 'median µs/call' : `${d.item}/s`,
      cell(d, n),
      ...peers.map((p) => cell(d, find(d.id, p))),
      best ? best.impl : '—',
      x === null ? '—' : `${fmtCount(x)}×`,
    ]);
  }
  const line = (cols: string[]) => `| ${cols.join(' | ')} |`;
  return [line(head), line(head.map(() => '---')), ...rows.map(line)].join('\n');
}

export function caseResult(def: WorkloadDef, impl: ImplId, t: Timing, note?: string): CaseResult {
  const r: CaseResult = {
    workload: def.id,
    impl,
    medianSeconds: t.median,
    itemsPerSecond: def.itemsPerCall / t.median,
    gflops: def.flopsPerCall / t.median / 1e9,
    samples: t.samples.length,
    sampleSeconds: t.samples,
    rmePercent: t.rme,
  };
  if (note) r.note = note;
  return r;
}

export function formatCase(def: WorkloadDef, r: CaseResult): string {
  const what = def.latency ? `${fmtCount(r.medianSeconds * 1e6)} µs/call` : `${fmtCount(r.itemsPerSecond)} ${def.item}/s`;
  return `${what}, ${fmtCount(r.gflops)} GFLOP/s  (median of ${r.samples} sample${r.samples === 1 ? '' : 's'}, ±${r.rmePercent.toFixed(1)}% rme)`;
}
