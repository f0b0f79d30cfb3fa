/**
 * Progress for the CLI, on stderr (stdout carries results and --json). On a TTY: one line per stage, redrawn in
 * place while a model trains (bar, epoch, loss, items/s, ETA; cut to the terminal's width so it never wraps),
 * then replaced by the stage's summary. Not on a TTY (CI logs, pipes): plain lines, one when a stage starts and
 * one when it ends; one per epoch only with --verbose.
 */
import type { TrainProgress } from '../models/train';
import type { PipelineReporter } from '../pipeline/train';
import { flagWording } from './flags';

/** How much to say: quiet = nothing, normal = stages (and the live bar on a TTY), verbose = also a line per epoch. */
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
  // a finished bar is overwritten by the line that follows it (the stage's summary)
  const endBar = () => {
    if (barOpen) out.write('\r\x1b[K');
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
        const width = 20;
        const frac = (p.epoch - 1 + p.step / p.steps) / p.epochs;
        const filled = Math.round(frac * width);
        const bar = '#'.repeat(filled) + '-'.repeat(width - filled);
        const val = p.valLoss !== null ? ` val ${p.valLoss.toFixed(3)}` : '';
        const line = `  ${p.model} [${bar}] epoch ${p.epoch}/${p.epochs} loss ${p.loss.toFixed(3)}${val} · ${p.itemsPerSecond.toFixed(0)} ${p.unit}/s · ETA ≤ ${fmtSeconds(p.etaSeconds)}`;
        const cols = Math.max(20, (out.columns ?? 80) - 1);
        // \x1b[K clears what a longer previous line left
        out.write(`\r${line.length > cols ? line.slice(0, cols - 1) + '…' : line}\x1b[K`);
        barOpen = true;
      } else if (p.epochEnd && verbosity === 'verbose') {
        const val = p.valLoss !== null ? ` val_loss ${p.valLoss.toFixed(4)}` : '';
        out.write(`  ${p.model} epoch ${p.epoch}/${p.epochs} loss ${p.loss.toFixed(4)}${val} ${p.itemsPerSecond.toFixed(0)} ${p.unit}/s\n`);
      }
    },
    warn(message) {
      endBar();
      out.write(`deepsentry: warning: ${flagWording(message)}\n`);
    },
    stageDone(name, seconds, items, unit) {
      endBar();
      out.write(`deepsentry: ${name} done in ${seconds.toFixed(1)} s (${items} ${unit}, ${(items / Math.max(seconds, 1e-9)).toFixed(0)} ${unit}/s)\n`);
    },
  };
}
