// Scheduler benchmark: fire lateness and sustained fires/s of Chronos against raw BullMQ, per number
// of active schedules. See ../README.md.
//
//   pnpm --filter @chronos/bench bench:scheduler [--sizes 1000,10000,100000] [--seconds 60]

import { mkdir, writeFile } from 'node:fs/promises';
import { loadavg } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { createRedis, pingRedis } from '@chronos/queue';
import { runBullmq } from './bullmq-scenario.ts';
import { runChronos } from './chronos-scenario.ts';
import { describeMachine, loadLine, machineLine } from './machine.ts';
import { resultTable, targetLines, TARGET_MARGIN_MS, TARGET_SIZE } from './report.ts';
import type { ResultRow, ScenarioOptions } from './scenario.ts';

const SYSTEMS = ['raw', 'pickup', 'e2e'] as const;
type SystemName = (typeof SYSTEMS)[number];
/** Above this 1-minute load average on 2 cores the numbers measure the neighbours too. */
const QUIET_LOAD = 1.5;
/** Longest wait for the load to drop between runs. */
const SETTLE_MAX_MS = 90_000;

const USAGE = `usage: bench:scheduler [options]
  --sizes 1000,10000,100000   active schedules per run (default 1000,10000,100000)
  --seconds 60                measured window per run (default 60)
  --warmup 5                  seconds skipped after the first slot (default 5)
  --lead 65                   seconds from arming the schedules to their first slot (default 65: beyond
                              the 60 s horizon, so slots enter it a second's worth at a time, as in
                              steady state; below 60 the first tick plans a whole horizon at once,
                              which is what a scheduler (re)start does)
  --concurrency 50            BullMQ worker concurrency, both systems (default 50)
  --cron-share 0              fraction of schedules that are '* * * * *' crons (default 0)
  --systems raw,pickup,e2e    raw BullMQ; Chronos with a no-op processor; Chronos with the run recorder
  --out PATH                  results file (default bench/results/scheduler-<date>.md; '-' for none)
env: BENCH_POSTGRES_URL (default postgresql://postgres@127.0.0.1:5432/postgres),
     BENCH_REDIS_URL (default redis://127.0.0.1:6379)`;

function fail(msg: string): never {
  console.error(`${msg}\n\n${USAGE}`);
  process.exit(2);
}

function positive(name: string, raw: string, opts: { integer?: boolean; zero?: boolean } = {}): number {
  const v = Number(raw);
  if (!Number.isFinite(v) || v < 0 || (!opts.zero && v === 0) || (opts.integer && !Number.isInteger(v)))
    fail(`--${name}: expected a ${opts.integer ? 'whole ' : ''}number, got "${raw}"`);
  return v;
}

const { values } = parseArgs({
  options: {
    sizes: { type: 'string', default: '1000,10000,100000' },
    seconds: { type: 'string', default: '60' },
    warmup: { type: 'string', default: '5' },
    lead: { type: 'string', default: '65' },
    concurrency: { type: 'string', default: '50' },
    'cron-share': { type: 'string', default: '0' },
    systems: { type: 'string', default: SYSTEMS.join(',') },
    out: { type: 'string' },
    help: { type: 'boolean', short: 'h' },
  },
  strict: true,
});
if (values.help) {
  console.log(USAGE);
  process.exit(0);
}
const sizes = values.sizes.split(',').map((s) => positive('sizes', s.trim(), { integer: true }));
const systems = values.systems.split(',').map((s) => {
  const name = s.trim();
  if (!(SYSTEMS as readonly string[]).includes(name)) fail(`--systems: unknown system "${name}"`);
  return name as SystemName;
});
const cronShare = positive('cron-share', values['cron-share'], { zero: true });
if (cronShare > 1) fail('--cron-share: expected a fraction between 0 and 1');
const postgresUrl = process.env['BENCH_POSTGRES_URL'] ?? 'postgresql://postgres@127.0.0.1:5432/postgres';
const redisUrl = process.env['BENCH_REDIS_URL'] ?? 'redis://127.0.0.1:6379';

const controller = new AbortController();
process.on('SIGINT', () => {
  if (controller.signal.aborted) process.exit(130);
  console.error('\ninterrupted: cleaning up (Ctrl-C again to exit at once)');
  controller.abort();
});

const admin = createRedis(redisUrl, { name: 'chronos-bench-admin' });
await pingRedis(admin, redisUrl);
const machine = await describeMachine(postgresUrl, admin);
const startedAt = new Date();
const log = (line: string) => console.log(line);
const base: Omit<ScenarioOptions, 'size'> = {
  seconds: positive('seconds', values.seconds),
  warmupMs: positive('warmup', values.warmup, { zero: true }) * 1000,
  leadMs: positive('lead', values.lead) * 1000,
  concurrency: positive('concurrency', values.concurrency, { integer: true }),
  cronShare,
  postgresUrl,
  redisUrl,
  admin,
  signal: controller.signal,
  log,
};

log(`machine: ${machineLine(machine)}`);
log(`load average (1/5/15 min): ${loadLine(machine.load)}`);
if (machine.load[0] > QUIET_LOAD) log(`warning: the machine is busy (1-minute load above ${QUIET_LOAD})`);

/**
 * Waits until the 1-minute load average is below QUIET_LOAD again (at most SETTLE_MAX_MS): the
 * previous run's own processes otherwise weigh on the next one.
 */
async function settle(signal: AbortSignal): Promise<void> {
  const until = Date.now() + SETTLE_MAX_MS;
  await sleep(3000, undefined, { signal }).catch(() => undefined);
  while (!signal.aborted && (loadavg()[0] ?? 0) > QUIET_LOAD && Date.now() < until)
    await sleep(5000, undefined, { signal }).catch(() => undefined);
}

const rows: ResultRow[] = [];
const notes: string[] = [];
const failures: string[] = [];
outer: for (const size of sizes) {
  for (const system of systems) {
    if (controller.signal.aborted) break outer;
    const opts = { ...base, size };
    log(
      `\n${size} schedules, ${system}: running (${base.seconds} s window; load before ${loadLine(loadavg())})`,
    );
    const started = Date.now();
    const loadBefore = loadavg()[0] ?? Number.NaN;
    try {
      const outcome = system === 'raw' ? await runBullmq(opts) : await runChronos(opts, system);
      rows.push(...outcome.rows.map((r) => ({ ...r, loadBefore })));
      notes.push(...outcome.notes);
      for (const n of outcome.notes) log(`  ${n}`);
      log(resultTable(rows.slice(-outcome.rows.length)).split('\n').slice(2).join('\n'));
    } catch (err) {
      if (controller.signal.aborted) break outer;
      const msg = `${size} schedules, ${system}: failed after ${Math.round((Date.now() - started) / 1000)} s: ${(err as Error).message}`;
      failures.push(msg);
      log(`  ${msg}`);
    }
    log(`  took ${Math.round((Date.now() - started) / 1000)} s; load ${loadLine(loadavg())}`);
    // Lets this run's connections, timers and autovacuum settle, and its own load decay.
    await settle(controller.signal);
  }
}
admin.disconnect();

// Smallest size first, whatever order they ran in (stable: systems keep their order).
rows.sort((a, b) => a.size - b.size);
const table = resultTable(rows);
const targets = targetLines(rows);
log(`\n${table}\n`);
for (const t of targets) log(t);

const endLoad = loadavg();
const busy = rows.filter((r) => (r.loadBefore ?? 0) > QUIET_LOAD);
const command = `pnpm --filter @chronos/bench bench:scheduler ${process.argv.slice(2).join(' ')}`.trim();
const doc = [
  `# Scheduler benchmark, ${startedAt.toISOString().slice(0, 10)}`,
  '',
  `Recorded ${startedAt.toISOString()} with \`${command}\`. How it works and how to read it: [../README.md](../README.md).`,
  '',
  `- **Machine:** ${machineLine(machine)}.`,
  `- **Load average (1/5/15 min):** ${loadLine(machine.load)} at the start, ${loadLine(endLoad)} at the end.` +
    ' The last column of the table gives the 1-minute load when each run started and when its window closed;' +
    ' the latter includes the benchmark itself (scheduler, worker, PostgreSQL and Redis all run on these cores).' +
    (busy.length > 0 || machine.load[0] > QUIET_LOAD
      ? ` **The machine was loaded** (other work running on it): ${busy.length} of ${rows.length} rows started above a 1-minute load of ${QUIET_LOAD}; their lateness is inflated by CPU contention.`
      : ''),
  `- **Settings:** schedules armed ${base.leadMs / 1000} s before their first slot (${
    base.leadMs > 60_000
      ? 'beyond the horizon: steady state, slots enter it a second at a time'
      : 'within the horizon: the first tick plans everything at once, as after a scheduler restart'
  }); ${base.seconds} s measured window after a ${base.warmupMs / 1000} s warm-up; worker concurrency ${base.concurrency}; ` +
    `schedules: ${cronShare > 0 ? `${Math.round(cronShare * 100)} % cron \`* * * * *\`, the rest ` : ''}INTERVAL fixed-rate 60 s with anchors spread evenly over the minute ` +
    `(offered fires/s = N/60); scheduler with engine defaults (tick 1 s, horizon 60 s, batch 500, promotion on time).`,
  '',
  table,
  '',
  `**Target** (Chronos p99 ≤ raw BullMQ p99 + ${TARGET_MARGIN_MS} ms at ${TARGET_SIZE.toLocaleString('en-US')} schedules, no missed or duplicate slots):`,
  '',
  ...targets.map((t) => `- ${t}`),
  '',
  '**Diagnostics:**',
  '',
  ...notes.map((n) => `- ${n}`),
  ...failures.map((f) => `- FAILED: ${f}`),
  '',
].join('\n');

if (values.out !== '-') {
  const out =
    values.out ??
    fileURLToPath(
      new URL(`../results/scheduler-${startedAt.toISOString().slice(0, 10)}.md`, import.meta.url),
    );
  await mkdir(fileURLToPath(new URL('../results/', import.meta.url)), { recursive: true });
  await writeFile(out, doc);
  log(`\nwritten to ${out}`);
}
if (failures.length > 0) process.exitCode = 1;
