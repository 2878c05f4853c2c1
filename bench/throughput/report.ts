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
  if (p) {
    const start = p.phases.find((x) => x.name === 'startRun');
    const finish = p.phases.find((x) => x.name === 'finishRun');
    const txShare = ((start?.mean ?? 0) + (finish?.mean ?? 0)) / p.total.mean;
    out.push(
      `Per run the worker makes ${p.total.statements.toFixed(0)} round trips to Postgres (BEGIN and COMMIT included; ` +
        `${p.total.commits.toFixed(0)} transactions plus the run-log INSERT, each a WAL flush). Replayed one at a time in process they ` +
        `take ${ms(p.total.mean)} ms (mean); startRun + finishRun are ${pct(txShare)} of that, and the client side ` +
        `(Prisma, engine code) burns ${ms(p.cpuMsPerRun)} ms of CPU per run.`,
      `For scale: a bare round trip (\`SELECT 1\`) takes ${ms(p.roundTrip.pg)} ms and ${ms(p.roundTrip.pgCpu)} ms of client CPU through pg, ` +
        `${ms(p.roundTrip.prisma)} ms and ${ms(p.roundTrip.prismaCpu)} ms of CPU through Prisma; ` +
        `a one-row UPDATE as one autocommit statement (one WAL flush) ${ms(p.autocommitUpdate)} ms; the same UPDATE ` +
        `in BEGIN … COMMIT through Prisma ${ms(p.smallTransaction)} ms.`,
    );
    if (c1) {
      const perRun = 1000 / c1.chronos.rate;
      const perJob = 1000 / c1.raw.rate;
      out.push(
        `At concurrency 1 a Chronos run took ${ms(perRun)} ms end to end (raw BullMQ: ${ms(perJob)} ms per job); ` +
          `the Postgres work replayed alone accounts for ${ms(p.total.mean)} ms of it (${pct(p.total.mean / perRun)}).`,
      );
    }
    out.push(
      `Batched (${p.batched.batch} runs started, finished and counted in job_stats by 3 set-based statements in one transaction), ` +
        `the ledger writes cost ${ms(p.batched.msPerRun)} ms per run, ${Math.round(p.total.mean / p.batched.msPerRun)}× less than run by run.`,
    );
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
  const start = p?.phases.find((x) => x.name === 'startRun');
  const finish = p?.phases.find((x) => x.name === 'finishRun');
  // Both transactions hold the job row from their SELECT … FOR UPDATE to their COMMIT.
  const lockCap = start && finish ? 1000 / (start.mean + finish.mean) : Number.NaN;
  for (const m of oneJob) {
    const many = pairs.find((x) => x.concurrency === m.concurrency)?.chronos;
    const r = many ? m.rate / many.rate : Number.NaN;
    out.push(
      `All runs on one job, concurrency ${m.concurrency}: ${rate(m.rate)} runs/s` +
        (many ? ` against ${rate(many.rate)} spread over ${many.jobs} jobs (${ratio(r)})` : '') +
        ". startRun and finishRun both lock the job row (FOR UPDATE) until they commit, so one job's runs pass " +
        'through them one at a time: ' +
        (Number.isFinite(lockCap)
          ? `at the probe's ${ms(start?.mean ?? 0)} + ${ms(finish?.mean ?? 0)} ms that caps a single job near ${rate(lockCap)} runs/s whatever the concurrency or the cores` +
            (Number.isFinite(r) && r > 0.8 && r < 1.25
              ? '; on this machine the CPU cap above is about as low, so both layouts measure the same'
              : '')
          : 'a single job is capped by how long they hold it') +
        '.',
    );
  }
  return out;
}
