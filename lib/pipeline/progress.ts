/**
 * Progress for the CLI: on a TTY one redrawn bar per training stage (epoch, step, loss, items/s, ETA); on
 * anything else plain lines (one per epoch and one per stage), so logs of CI jobs stay readable. Everything
 * goes to stderr: stdout carries results (and --json).
 */
import type { TrainProgress } from '../models/train';
import type { PipelineReporter } from './train';

/** How much to say: quiet = nothing, normal = stages and epochs, verbose = also every training step in plain mode. */
export type Verbosity = 'quiet' | 'normal' | 'verbose';

function fmtSeconds(s: number): string {
  if (!Number.isFinite(s)) return '?';
  if (s < 60) return `${s.toFixed(0)}s`;
  return `${Math.floor(s / 60)}m${String(Math.round(s % 60)).padStart(2, '0')}s`;
}

/** A reporter writing to `out` (default process.stderr). */
export function consoleReporter(verbosity: Verbosity, out: NodeJS.WriteStream = process.stderr): PipelineReporter {
  if (verbosity === 'quiet') return {};
  const tty = out.isTTY === true;
  let barOpen = false;
  let lastDraw = 0;
  const endBar = () => {
    if (barOpen) out.write('\n');
    barOpen = false;
  };
  return {
    stage(name, detail) {
      endBar();
      out.write(`deepsentry: ${name}: ${detail}\n`);
    },
    progress(p: TrainProgress) {
      if (tty) {
        const now = Date.now();
        if (!p.epochEnd && now - lastDraw < 100) return;
        lastDraw = now;
        const width = 24;
        const frac = (p.epoch - 1 + p.step / p.steps) / p.epochs;
        const filled = Math.round(frac * width);
        const bar = '#'.repeat(filled) + '-'.repeat(width - filled);
        const val = p.valLoss !== null ? ` val ${p.valLoss.toFixed(4)}` : '';
        out.write(`\r  ${p.model} [${bar}] epoch ${p.epoch}/${p.epochs} step ${p.step}/${p.steps} loss ${p.loss.toFixed(4)}${val} ${p.itemsPerSecond.toFixed(0)} ${p.unit}/s ETA ≤${fmtSeconds(p.etaSeconds)}   `);
        barOpen = true;
      } else if (p.epochEnd || verbosity === 'verbose') {
        const val = p.valLoss !== null ? ` val_loss ${p.valLoss.toFixed(4)}` : '';
        out.write(`  ${p.model} epoch ${p.epoch}/${p.epochs}${p.epochEnd ? '' : ` step ${p.step}/${p.steps}`} loss ${p.loss.toFixed(4)}${val} ${p.itemsPerSecond.toFixed(0)} ${p.unit}/s\n`);
      }
    },
    warn(message) {
      endBar();
      out.write(`deepsentry: warning: ${message}\n`);
    },
    stageDone(name, seconds, items, unit) {
      endBar();
      out.write(`deepsentry: ${name} done in ${seconds.toFixed(1)} s (${items} ${unit}, ${(items / Math.max(seconds, 1e-9)).toFixed(0)} ${unit}/s)\n`);
    },
  };
}
