// The markdown the benchmark prints and records.

import { clockedRuns, clockedSeconds, cpuPerRun, workerCoreShare, type Measurement } from './measurement.ts';
import type { ProbeResult } from './probe.ts';

/** The target now, and the one the design must leave room for. */
export const TARGET_RATIO = 0.25;
export const LATER_RATIO = 0.5;

const rate = (v: number) => (Number.isFinite(v) ? (v >= 100 ? v.toFixed(0) : v.toFixed(1)) : 'n/a');
const ms = (v: number) => (Number.isFinite(v) ? (v >= 10 ? v.toFixed(1) : v.toFixed(2)) : 'n/a');
const pct = (v: number) => `${Math.round(v * 100)} %`;
const ratio = (v: number) => (Number.isFinite(v) ? `${v.toFixed(3)}×` : 'n/a');

export interface Pair {
  concurrency: number;
  chronos: Measurement;
  raw: Measurement;
}

export function pairRatio(p: Pair): number {
  return p.chronos.rate / p.raw.rate;
}

/** Chronos against raw BullMQ, one line per concurrency. */
export function summaryTable(pairs: readonly Pair[]): string {
  const head = `| concurrency | Chronos runs/s (${pairs[0]?.chronos.jobs ?? '?'} jobs) | raw BullMQ jobs/s | Chronos / raw | ≥ ${TARGET_RATIO}× |`;
  const sep = '|---:|---:|---:|---:|---|';
  const lines = pairs.map((p) => {
    const r = pairRatio(p);
    return `| ${p.concurrency} | ${rate(p.chronos.rate)} | ${rate(p.raw.rate)} | ${ratio(r)} | ${r >= TARGET_RATIO ? 'yes' : 'no'} |`;
  });
  return [head, sep, ...lines].join('\n');
}

/**
 * One line summing up the summary table of an earlier results file ("2026-11-22T00:42:13Z:
 * c=1 58.6 vs 3519 (0.017×), …"), or undefined when it has none.
 */
export function previousSummary(markdown: string): string | undefined {
  const recorded = /Recorded (\S+) with/.exec(markdown)?.[1];
  const cell = String.raw`\s*([\d.]+×?)\s*\|`;
  const rows = [
    ...markdown.matchAll(
      new RegExp(String.raw`^\|` + cell.repeat(4) + String.raw`\s*(?:yes|no)\s*\|$`, 'gm'),
    ),
  ];
  if (rows.length === 0) return undefined;
  const pairs = rows.map(([, c, chronos, raw, r]) => `c=${c} ${chronos} vs ${raw} runs/s (${r})`);
  return `${recorded ?? 'an earlier run'}: Chronos vs raw BullMQ ${pairs.join(', ')}.`;
}

/** Every measurement with what it cost in CPU. */
export function detailTable(ms_: readonly Measurement[]): string {
  const head =
    '| system | concurrency | jobs | backlog | runs clocked | clock s | drained | runs/s | worker CPU (share of a core) | worker CPU ms/run | Postgres backends CPU ms/run | Redis CPU ms/run | first finish after s | enqueue s | failed | load 1 min |';
  const sep = '|---|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|';
  const lines = ms_.map((m) => {
    const cpu = cpuPerRun(m);
    return (
      `| ${m.system} | ${m.concurrency} | ${m.jobs ?? '–'} | ${m.backlog} | ${clockedRuns(m)} | ` +
      `${clockedSeconds(m).toFixed(1)} | ${m.drain.complete ? 'yes' : 'no'} | ${rate(m.rate)} | ${pct(workerCoreShare(m))} | ${ms(cpu.worker)} | ` +
      `${m.system === 'Chronos' ? ms(cpu.postgres) : '–'} | ${ms(cpu.redis)} | ${(m.drain.firstFinishMs / 1000).toFixed(1)} | ` +
      `${(m.enqueueMs / 1000).toFixed(1)} | ${m.failed} | ${m.load1.toFixed(2)} |`
    );
  });
  return [head, sep, ...lines].join('\n');
}

export function probeTable(p: ProbeResult): string {
  const head =
    '| step (one run, in process, sequential) | p50 ms | mean ms | share of the mean | SQL round trips | commits |';
  const sep = '|---|---:|---:|---:|---:|---:|';
  const lines = p.phases.map(
    (ph) =>
      `| ${ph.name} | ${ms(ph.p50)} | ${ms(ph.mean)} | ${pct(ph.mean / p.total.mean)} | ${ph.statements.toFixed(1)} | ${ph.commits.toFixed(1)} |`,
  );
  lines.push(
    `| **all** | ${ms(p.total.p50)} | ${ms(p.total.mean)} | 100 % | ${p.total.statements.toFixed(1)} | ${p.total.commits.toFixed(1)} |`,
  );
  return [head, sep, ...lines].join('\n');
}

/** What one batched statement costs by the number of runs it carries. */
export function batchTable(p: ProbeResult): string {
  const head =
    '| runs per statement | start statement ms | start ms per run | finish statement ms | finish ms per run |';
  const sep = '|---:|---:|---:|---:|---:|';
  const lines = p.batches.map(
    (b) =>
      `| ${b.size} | ${ms(b.startMs)} | ${ms(b.startMs / b.size)} | ${ms(b.finishMs)} | ${ms(b.finishMs / b.size)} |`,
  );
  return [head, sep, ...lines].join('\n');
}

/** A statement's cost as fixed + per run, from the smallest and the largest batch timed. */
function statementCost(p: ProbeResult): { fixed: number; perRun: number } | undefined {
  const small = p.batches[0];
  const large = p.batches.at(-1);
  if (!small || !large || large.size === small.size) return undefined;
  const total = (b: { startMs: number; finishMs: number }) => b.startMs + b.finishMs;
  const perRun = (total(large) - total(small)) / (large.size - small.size);
  return { fixed: total(small) - perRun * small.size, perRun };
}

/** CPU ms per run spent by the worker process, the database backends and Redis together. */
function cpuTotal(m: Measurement): number {
  const c = cpuPerRun(m);
  return c.worker + (m.system === 'Chronos' ? c.postgres : 0) + c.redis;
}

/** Sentences computed from the numbers: what the measurements say about where the time goes. */
export function analysis(
  pairs: readonly Pair[],
  oneJob: readonly Measurement[],
  p: ProbeResult | undefined,
  cores: number,
): string[] {
  const out: string[] = [];
  const c1 = pairs.find((x) => x.concurrency === 1);
  const cost = p ? statementCost(p) : undefined;
  if (p) {
    const phase = (name: string) => p.phases.find((x) => x.name.startsWith(name));
    out.push(
      `Per run the worker makes ${p.total.statements.toFixed(0)} round trips to Postgres (${p.total.commits.toFixed(0)} commits: ` +
        `each an autocommit statement, each a WAL flush). Replayed one at a time in process they take ${ms(p.total.mean)} ms (mean): ` +
        `the start statement ${ms(phase('start')?.mean ?? Number.NaN)} ms, the finish statement (with the run's log lines) ` +
        `${ms(phase('finish')?.mean ?? Number.NaN)} ms; the client side (the engine's code, pg) burns ${ms(p.cpuMsPerRun)} ms of CPU per run.`,
      `For scale: a bare round trip (\`SELECT 1\`) takes ${ms(p.roundTrip.ms)} ms and ${ms(p.roundTrip.cpuMs)} ms of client CPU; ` +
        `a one-row UPDATE as one autocommit statement (one WAL flush) ${ms(p.autocommitUpdate)} ms.`,
    );
    if (cost)
      out.push(
        `A start and a finish statement together cost about ${ms(cost.fixed)} ms fixed (round trips, commits, executor start-up of ` +
          `statements over four or five tables and their indexes) plus ${ms(cost.perRun)} ms per run they carry (the run's writes: ` +
          `its job_runs row twice (non-HOT: status changes; 5 index entries each), its jobs row twice (HOT: no index holds status), ` +
          `its job_stats row, and two log lines). ` +
          'Batching divides the fixed part only: at concurrency 1 every run pays all of it, at 10 a statement carries a few runs.',
      );
    if (c1) {
      const perRun = 1000 / c1.chronos.rate;
      const perJob = 1000 / c1.raw.rate;
      out.push(
        `At concurrency 1 a Chronos run took ${ms(perRun)} ms end to end (raw BullMQ: ${ms(perJob)} ms per job); ` +
          `the Postgres work replayed alone accounts for ${ms(p.total.mean)} ms of it (${pct(p.total.mean / perRun)}).`,
      );
    }
  }
  for (const x of pairs) {
    const c = cpuPerRun(x.chronos);
    const r = cpuPerRun(x.raw);
    const chronosCpu = cpuTotal(x.chronos);
    const rawCpu = cpuTotal(x.raw);
    out.push(
      `Concurrency ${x.concurrency}: CPU per run ${ms(chronosCpu)} ms for Chronos (worker ${ms(c.worker)}, its Postgres backends ` +
        `${ms(c.postgres)}, Redis ${ms(c.redis)}; the worker at ${pct(workerCoreShare(x.chronos))} of a core) against ` +
        `${ms(rawCpu)} ms for raw BullMQ (worker ${ms(r.worker)}, Redis ${ms(r.redis)}): ${Math.round(chronosCpu / rawCpu)}× the CPU. ` +
        `On ${cores} idle cores that alone caps Chronos near ${rate((cores * 1000) / chronosCpu)} runs/s.`,
    );
  }
  for (const x of pairs) {
    if (x.concurrency === 1 || !cost) continue;
    // Each run waits for a start statement and for a finish statement; with c runs in flight a
    // statement carries about c/2 of them.
    const statement = cost.fixed / 2 + (cost.perRun / 2) * (x.concurrency / 2);
    out.push(
      `Concurrency ${x.concurrency}: a run took ${ms((1000 * x.concurrency) / x.chronos.rate)} ms in the worker on average ` +
        `(${x.concurrency} in flight / ${rate(x.chronos.rate)} runs/s); a statement carrying ${x.concurrency / 2} runs costs about ` +
        `${ms(statement)} ms at the probe's rates, and each run waits for two of them.`,
    );
  }
  for (const m of oneJob) {
    const many = pairs.find((x) => x.concurrency === m.concurrency)?.chronos;
    const r = many ? m.rate / many.rate : Number.NaN;
    out.push(
      `All runs on one job, concurrency ${m.concurrency}: ${rate(m.rate)} runs/s` +
        (many ? ` against ${rate(many.rate)} spread over ${many.jobs} jobs (${ratio(r)})` : '') +
        '. Every start and finish writes the job row (its status follows its runs), so a worker never has a start and a finish ' +
        "statement on one job in flight together: one job's runs take turns between the two statements, each holding the row " +
        'for one statement, not for a transaction of several round trips.',
    );
  }
  return out;
}
