// Throughput benchmark: DUMMY runs per second end to end (enqueued → recorded SUCCESS in Postgres) by
// one Chronos worker process, next to raw BullMQ on the same Redis, per worker concurrency. See
// README.md.
//
//   pnpm --filter @chronos/bench bench:throughput [--concurrency 1,10,100] [--seconds 12]

import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { createRedis, pingRedis } from '@chronos/queue';
import { deleteKeysByPrefix } from '../scheduler/cleanup.ts';
import { describeMachine, loadLine, machineLine } from '../scheduler/machine.ts';
import { measureChronos } from './chronos-measure.ts';
import { createTemplate, type Template } from './fixture.ts';
import { clockedSeconds, type Measurement } from './measurement.ts';
import { probeRunCost, type ProbeResult } from './probe.ts';
import { measureRaw } from './raw-measure.ts';
import {
  analysis,
  batchTable,
  detailTable,
  pairRatio,
  previousSummary,
  probeTable,
  summaryTable,
  LATER_RATIO,
  TARGET_RATIO,
  type Pair,
} from './report.ts';

/** Above this 1-minute load average on 2 cores the numbers measure the neighbours too. */
const QUIET_LOAD = 1.5;
/** The shortest clocked time a measurement may have. */
const MIN_SECONDS = 10;
/** Tries after the pilot to reach MIN_SECONDS when the pilot's rate misled. */
const MAX_TRIES = 3;

const USAGE = `usage: bench:throughput [options]
  --concurrency 1,10,100   worker concurrencies (default 1,10,100)
  --seconds 12             clocked time to size each backlog for (default 12; at least ${MIN_SECONDS} s is kept)
  --warmup 2               seconds after the first finished run before the clock starts (default 2)
  --jobs 1000              jobs the Chronos runs are spread over, round robin (default 1000)
  --one-job 10,100         concurrencies also measured with every run on one job ('none': skip)
  --pilot 2000             backlog of the pilot that sizes each measurement (default 2000)
  --max-backlog 300000     largest backlog put in Redis (default 300000)
  --probe-runs 300         runs timed by the in-process cost probe (0: skip)
  --out PATH               results file (default bench/results/throughput-<date>.md; '-' for none)
env: BENCH_POSTGRES_URL (default postgresql://postgres@127.0.0.1:5432/postgres),
     BENCH_REDIS_URL (default redis://127.0.0.1:6379)`;

function fail(msg: string): never {
  console.error(`${msg}\n\n${USAGE}`);
  process.exit(2);
}

function whole(name: string, raw: string, min = 1): number {
  const v = Number(raw);
  if (!Number.isInteger(v) || v < min) fail(`--${name}: expected a whole number ≥ ${min}, got "${raw}"`);
  return v;
}

function list(name: string, raw: string): number[] {
  if (raw === 'none' || raw === '') return [];
  return raw.split(',').map((s) => whole(name, s.trim()));
}

const { values } = parseArgs({
  options: {
    concurrency: { type: 'string', default: '1,10,100' },
    seconds: { type: 'string', default: '12' },
    warmup: { type: 'string', default: '2' },
    jobs: { type: 'string', default: '1000' },
    'one-job': { type: 'string', default: '10,100' },
    pilot: { type: 'string', default: '2000' },
    'max-backlog': { type: 'string', default: '300000' },
    'probe-runs': { type: 'string', default: '300' },
    out: { type: 'string' },
    help: { type: 'boolean', short: 'h' },
  },
  strict: true,
});
if (values.help) {
  console.log(USAGE);
  process.exit(0);
}
const concurrencies = list('concurrency', values.concurrency);
const oneJob = list('one-job', values['one-job']);
const seconds = Math.max(MIN_SECONDS, whole('seconds', values.seconds));
const warmupMs = whole('warmup', values.warmup, 0) * 1000;
const jobs = whole('jobs', values.jobs);
const pilotBacklog = whole('pilot', values.pilot, 100);
const maxBacklog = whole('max-backlog', values['max-backlog'], 100);
const probeRuns = whole('probe-runs', values['probe-runs'], 0);
const postgresUrl = process.env['BENCH_POSTGRES_URL'] ?? 'postgresql://postgres@127.0.0.1:5432/postgres';
const redisUrl = process.env['BENCH_REDIS_URL'] ?? 'redis://127.0.0.1:6379';

const controller = new AbortController();
process.on('SIGINT', () => {
  if (controller.signal.aborted) process.exit(130);
  console.error('\ninterrupted: cleaning up (Ctrl-C again to exit at once)');
  controller.abort();
});

const uptime = () => execFileSync('uptime', { encoding: 'utf8' }).trim();
const log = (line: string) => console.log(line);
const tag = randomBytes(4).toString('hex');
const admin = createRedis(redisUrl, { name: 'chronos-bench-tp-admin' });
await pingRedis(admin, redisUrl);
const machine = await describeMachine(postgresUrl, admin);
const startedAt = new Date();
const uptimeBefore = uptime();
log(`machine: ${machineLine(machine)}`);
log(`uptime before: ${uptimeBefore}`);
if (machine.load[0] > QUIET_LOAD) log(`warning: the machine is busy (1-minute load above ${QUIET_LOAD})`);

/** The backlog that keeps the clock running `seconds` (plus the warm-up) at `rate`, with a margin. */
function backlogFor(rate: number): number {
  const want = rate * (seconds + warmupMs / 1000) * 1.4;
  return Math.min(maxBacklog, Math.max(500, Math.ceil(want / 500) * 500));
}

/**
 * A pilot with `pilotBacklog` runs (stopped after 3 s on the clock) gives a rate; the measurement
 * then gets the backlog that lasts `seconds` at that rate, and is repeated bigger (at most 3× per
 * try) if it drained sooner than MIN_SECONDS: the pilot caught a quiet or a busy moment of the
 * shared machine, or a cold worker. A measurement stops at 3 × `seconds` on the clock even with runs
 * left, so a neighbour's burst cannot stretch the benchmark past its time budget.
 */
async function sized(
  name: string,
  run: (backlog: number, label: string, stopAfterMs?: number) => Promise<Measurement>,
): Promise<Measurement> {
  log(`\n${name}: pilot with ${pilotBacklog}`);
  const pilot = await run(pilotBacklog, 'p', 3000);
  let rate = Number.isFinite(pilot.rate) && pilot.rate > 0 ? pilot.rate : pilotBacklog / 0.1;
  log(`  pilot: ~${rate.toFixed(0)}/s`);
  let m: Measurement | undefined;
  let backlog = backlogFor(rate);
  for (let attempt = 1; attempt <= MAX_TRIES; attempt++) {
    log(`${name}: backlog ${backlog}`);
    m = await run(backlog, String(attempt), 3 * seconds * 1000);
    log(
      `  ${m.rate.toFixed(1)}/s over ${clockedSeconds(m).toFixed(1)} s (${m.drain.end.done - m.drain.start.done} runs` +
        `${m.drain.complete ? '' : ', stopped before the backlog drained'})` +
        `${m.failed > 0 ? `, ${m.failed} failed` : ''}; load ${m.load1.toFixed(2)}`,
    );
    if (m.drain.warmedUp && clockedSeconds(m) >= MIN_SECONDS) return m;
    if (backlog >= maxBacklog) {
      log(`  the backlog is at --max-backlog ${maxBacklog}: kept as is`);
      return m;
    }
    rate = Number.isFinite(m.rate) && m.rate > 0 ? Math.max(m.rate, rate * 1.2) : rate * 10;
    backlog = Math.min(backlogFor(rate), 3 * backlog);
  }
  return m as Measurement;
}

const common = { warmupMs, redisUrl, admin, signal: controller.signal, log };
const pairs: Pair[] = [];
const oneJobRows: Measurement[] = [];
const failures: string[] = [];
let probe: ProbeResult | undefined;
let template: Template | undefined;
try {
  template = await createTemplate({ serverUrl: postgresUrl, tag, jobs, redis: admin, log });
  const tpl = template;
  for (const c of concurrencies) {
    if (controller.signal.aborted) break;
    try {
      const chronos = await sized(`Chronos c=${c}, ${jobs} jobs`, (backlog, suffix, stopAfterMs) =>
        measureChronos({
          ...common,
          template: tpl,
          jobs,
          concurrency: c,
          backlog,
          label: `${tag}-c${c}-chronos-${suffix}`,
          ...(stopAfterMs === undefined ? {} : { stopAfterMs }),
        }),
      );
      await sleep(2000);
      const raw = await sized(`raw BullMQ c=${c}`, (backlog, suffix, stopAfterMs) =>
        measureRaw({
          ...common,
          concurrency: c,
          backlog,
          label: `${tag}-c${c}-raw-${suffix}`,
          ...(stopAfterMs === undefined ? {} : { stopAfterMs }),
        }),
      );
      pairs.push({ concurrency: c, chronos, raw });
      log(`c=${c}: Chronos / raw = ${pairRatio({ concurrency: c, chronos, raw }).toFixed(3)}`);
    } catch (err) {
      if (controller.signal.aborted) break;
      failures.push(`concurrency ${c}: ${(err as Error).message}`);
      log(`  FAILED: ${(err as Error).message}`);
    }
    await sleep(2000);
  }
  for (const c of oneJob) {
    if (controller.signal.aborted) break;
    try {
      oneJobRows.push(
        await sized(`Chronos c=${c}, 1 job`, (backlog, suffix, stopAfterMs) =>
          measureChronos({
            ...common,
            template: tpl,
            jobs: 1,
            concurrency: c,
            backlog,
            label: `${tag}-c${c}-onejob-${suffix}`,
            ...(stopAfterMs === undefined ? {} : { stopAfterMs }),
          }),
        ),
      );
    } catch (err) {
      if (controller.signal.aborted) break;
      failures.push(`one job, concurrency ${c}: ${(err as Error).message}`);
      log(`  FAILED: ${(err as Error).message}`);
    }
  }
  if (probeRuns > 0 && !controller.signal.aborted) {
    log(`\nprobe: ${probeRuns} runs replayed in process`);
    probe = await probeRunCost({ template: tpl, label: `${tag}-probe`, runs: probeRuns, warmup: 30, log });
  }
} finally {
  await template?.drop();
  const n = await deleteKeysByPrefix(admin, `chronos-bench-tp-${tag}-seed`);
  log(`dropped the template${n > 0 ? `, deleted ${n} Redis keys` : ''}`);
  admin.disconnect();
}

const uptimeAfter = uptime();
const measurements = [...pairs.flatMap((p) => [p.chronos, p.raw]), ...oneJobRows];
const summary = summaryTable(pairs);
const detail = detailTable(measurements);
const findings = analysis(pairs, oneJobRows, probe, machine.cpus);
const met = pairs.length > 0 && pairs.every((p) => pairRatio(p) >= TARGET_RATIO);
const verdict =
  pairs.length === 0
    ? 'no pair measured'
    : `${met ? 'met' : 'NOT met'} (${pairs.map((p) => `c=${p.concurrency}: ${pairRatio(p).toFixed(3)}×`).join(', ')})`;
log(`\n${summary}\n\n${detail}\n`);
if (probe) log(`${probeTable(probe)}\n\n${batchTable(probe)}\n`);
log(`target ≥ ${TARGET_RATIO}× raw BullMQ: ${verdict}`);
for (const f of findings) log(`- ${f}`);
log(`uptime after: ${uptimeAfter}`);

const command = `pnpm --filter @chronos/bench bench:throughput ${process.argv.slice(2).join(' ')}`.trim();
const out =
  values.out === '-'
    ? undefined
    : (values.out ??
      fileURLToPath(
        new URL(`../results/throughput-${startedAt.toISOString().slice(0, 10)}.md`, import.meta.url),
      ));
// A run recorded the same day replaces the file: the summary of the one before stays, as one line.
const before = out === undefined ? undefined : await readFile(out, 'utf8').catch(() => undefined);
const previous = before === undefined ? undefined : previousSummary(before);
const busy = measurements.filter((m) => m.load1 > QUIET_LOAD).length;
const doc = [
  `# Throughput benchmark, ${startedAt.toISOString().slice(0, 10)}`,
  '',
  `Recorded ${startedAt.toISOString()} with \`${command}\`. How it works and how to read it: [../README.md, Throughput](../README.md#throughput).`,
  '',
  `- **Machine:** ${machineLine(machine)}.`,
  `- **Load:** \`uptime\` before: \`${uptimeBefore}\`; after: \`${uptimeAfter}\` (1/5/15 min at start ${loadLine(machine.load)}).` +
    (busy > 0 || machine.load[0] > QUIET_LOAD
      ? ` **The machine was shared and loaded** (other work running on it): ${busy} of ${measurements.length} measurements ended above a 1-minute load of ${QUIET_LOAD} on ${machine.cpus} cores (last column). Absolute rates are depressed by CPU contention; the ratios compare runs taken minutes apart under similar load. The load average counts the benchmark's own processes too (the worker, its Postgres backends, Redis: about 2 runnable while a drain runs); the figure before the first measurement is the neighbours' alone.`
      : ''),
  `- **Method:** a backlog enqueued with \`enqueueRuns\` (delay 0) before one worker process starts; the clock starts ${warmupMs / 1000} s after the first run finishes (warm-up excluded) and stops when all have finished (or after ${3 * seconds} s on the clock: column "drained"), polled every 100 ms (Chronos: ledger rows left QUEUED/RUNNING in Postgres; raw BullMQ: jobs left in the queue); rate = runs finished on the clock / clocked time. ` +
    `Chronos: \`apps/worker/src/main.ts\` (WORKER_TYPES=DUMMY, LOG_LEVEL=warn, its own database cloned from a template made with \`migrate()\` + \`createJob\`, its own REDIS_PREFIX, no object storage: run context documents, uploaded behind the runs, are not kept); ` +
    `runs pre-recorded QUEUED (trigger MANUAL) with \`recordSlots\`, round robin over ${jobs} DUMMY jobs with overlap policy ALLOW_ALL. The worker records successful starts and finishes through its run recorder: one statement carries every start (or finish) submitted while the previous one was in flight, one start and one finish statement at a time. ` +
    `Raw BullMQ: the same number of jobs added by the same \`enqueueRuns\` to a plain queue on the same Redis, one BullMQ worker in its own process, no-op processor, no Postgres. ` +
    `Each backlog is sized from a pilot so the clock runs ≥ ${MIN_SECONDS} s.`,
  ...(previous ? [`- **Previous recording in this file:** ${previous}`] : []),
  '',
  summary,
  '',
  `**Target** (Chronos ≥ ${TARGET_RATIO}× raw BullMQ; the design must leave room for ≥ ${LATER_RATIO}×): ${verdict}.`,
  '',
  '## Measurements',
  '',
  detail,
  '',
  ...(probe
    ? [
        '## Where the time goes',
        '',
        `The worker's Postgres work for one DUMMY run (apps/worker/src/run-processor.ts), replayed in process, one run at a time, ${probe.runs} runs after 30 untimed, on a fresh clone; statements counted on the run recorder's pool (and Prisma's query log) over 20 more runs:`,
        '',
        probeTable(probe),
        '',
        `One start statement and one finish statement carrying 1, 10 and 100 runs (median of ${10} each, on the same clone):`,
        '',
        batchTable(probe),
        '',
      ]
    : []),
  ...findings.map((f) => `- ${f}`),
  ...failures.map((f) => `- FAILED: ${f}`),
  '',
].join('\n');

if (out) {
  await mkdir(fileURLToPath(new URL('../results/', import.meta.url)), { recursive: true });
  await writeFile(out, doc);
  log(`\nwritten to ${out}`);
}
if (failures.length > 0) process.exitCode = 1;
