// The markdown the benchmark prints and records.

import type { ResultRow } from './scenario.ts';

/** The issue's target: Chronos p99 lateness within raw BullMQ's p99 + this, at 10k schedules. */
export const TARGET_MARGIN_MS = 20;
export const TARGET_SIZE = 10_000;

const ms = (v: number) => (Number.isNaN(v) ? 'n/a' : String(Math.round(v)));
const rate = (v: number) => (v >= 100 ? v.toFixed(0) : v.toFixed(1));

/** How many fired before their slot, and the earliest by how much. */
function early(w: ResultRow['window']): string {
  return w.lateness.early === 0 ? '0' : `${w.lateness.early} (min ${ms(w.lateness.min)})`;
}

export function resultTable(rows: readonly ResultRow[]): string {
  const head =
    '| schedules | system | lateness measured at | offered fires/s | sustained fires/s | p50 ms | p99 ms | max ms | missed | duplicates | early | load 1 min: before / at end |';
  const sep = '|---:|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|';
  const lines = rows.map((r) => {
    const w = r.window;
    return (
      `| ${r.size.toLocaleString('en-US')} | ${r.system} | ${r.measure} | ${rate(w.offeredPerSecond)} | ` +
      `${rate(w.firesPerSecond)} | ${ms(w.lateness.p50)} | ${ms(w.lateness.p99)} | ${ms(w.lateness.max)} | ` +
      `${w.missed} | ${w.duplicates} | ${early(w)} | ${r.loadBefore?.toFixed(2) ?? 'n/a'} / ${r.load1.toFixed(2)} |`
    );
  });
  return [head, sep, ...lines].join('\n');
}

/** One line per size and Chronos row: its p99 against raw BullMQ's p99 + the margin. */
export function targetLines(rows: readonly ResultRow[]): string[] {
  const out: string[] = [];
  for (const size of [...new Set(rows.map((r) => r.size))]) {
    const raw = rows.find((r) => r.size === size && r.system === 'raw BullMQ');
    if (!raw) continue;
    const limit = raw.window.lateness.p99 + TARGET_MARGIN_MS;
    for (const r of rows.filter((x) => x.size === size && x !== raw)) {
      const p99 = r.window.lateness.p99;
      const verdict = p99 <= limit ? 'within' : 'MISSES';
      const clean = r.window.missed === 0 && r.window.duplicates === 0;
      const w = r.window;
      const overloaded =
        w.firesPerSecond < 0.95 * w.offeredPerSecond
          ? ` (overloaded: sustains ${rate(w.firesPerSecond)} of ${rate(w.offeredPerSecond)} fires/s, so its lateness is a growing queue)`
          : '';
      out.push(
        `${size.toLocaleString('en-US')}${size === TARGET_SIZE ? ' (target size)' : ''}: ${r.system} ` +
          `(${r.measure}) p99 ${ms(p99)} ms ${verdict} raw BullMQ p99 ${ms(raw.window.lateness.p99)} ms ` +
          `+ ${TARGET_MARGIN_MS} ms = ${ms(limit)} ms; ` +
          `${clean ? 'no missed or duplicate slots' : `${r.window.missed} missed, ${r.window.duplicates} duplicates`}` +
          overloaded,
      );
    }
  }
  return out;
}
