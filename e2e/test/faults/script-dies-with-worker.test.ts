// A SCRIPT run's processes end with the worker that started them. Before, a worker killed with
// SIGKILL left its script running: it finished its side effect while the takeover ran a second
// attempt of the same run — twice, overlapping, with one SUCCESS in the ledger.
import { existsSync } from 'node:fs';
import { chmod, mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually } from '../helpers.ts';
import { stopAllApps } from './app-process.ts';
import { createFleet, type Fleet } from './fleet.ts';
import { attemptsOf, processesOfRun, scriptJob, triggerNow } from './worker-process.ts';

let fleet: Fleet;
let out: string;
let workerTmp: string;

beforeAll(async () => {
  fleet = await createFleet('script_dies');
  // Where the script leaves its marks; the workers show it to scripts read-write.
  out = await mkdtemp(join(tmpdir(), 'chronos-script-dies-'));
  await chmod(out, 0o777);
  // The workers' TMPDIR: a killed worker cannot remove its run's folders; the test does.
  workerTmp = await mkdtemp(join(tmpdir(), 'chronos-script-dies-tmp-'));
});
afterAll(async () => {
  await stopAllApps();
  await fleet?.close();
  for (const dir of [out, workerTmp]) if (dir) await rm(dir, { recursive: true, force: true });
});

const SLEEP_SECONDS = 6;
// Each execution names its marks with an id of its own: the first attempt's and the takeover's
// never mix. Background children, one of them in a session of its own, must die too.
const SCRIPT = [
  'id=$(cat /proc/sys/kernel/random/uuid)',
  'sleep 1000.25 &',
  'setsid sleep 1000.5 &',
  'touch "$OUT/started-$id"',
  'echo "started $id"',
  `sleep ${SLEEP_SECONDS}`,
  'touch "$OUT/finished-$id"',
  'echo "finished $id"',
].join('\n');

const marks = async (kind: 'started' | 'finished') =>
  (await readdir(out)).filter((n) => n.startsWith(`${kind}-`)).map((n) => n.slice(kind.length + 1));

describe('a worker killed with SIGKILL while its script runs', () => {
  it('takes the script with it: no process of it survives, it never reaches its end, and the takeover runs the next attempt alone', async () => {
    const jobId = await scriptJob(fleet, fleet.ownerId, 'side-effect', SCRIPT, { OUT: out });
    const workerEnv = {
      WORKER_TYPES: 'SCRIPT',
      SCRIPT_VISIBLE_PATHS: `${out}:rw`,
      SHUTDOWN_GRACE_SECONDS: '0',
      TMPDIR: workerTmp,
    };
    const doomed = fleet.start('worker', { ...workerEnv, WORKER_ID: 'doomed' });
    await doomed.waitForLine(/worker ready/);
    const runId = await triggerNow(fleet, jobId);

    const [first] = await eventually(
      async () => {
        const started = await marks('started');
        return started.length > 0 ? started : undefined;
      },
      { timeoutMs: 60_000, intervalMs: 20, what: 'the script to start' },
    );
    // The script's shell, its two background sleeps and its `sleep` in the foreground (which the
    // shell starts just after the mark: waited for, not assumed).
    await eventually(async () => (await processesOfRun(runId)).length >= 4, {
      timeoutMs: 30_000,
      intervalMs: 20,
      what: "the script's four processes to be running",
    });

    const wouldEndBy = Date.now() + SLEEP_SECONDS * 1000;
    // The worker process itself, not its process group: the script is in a group of its own.
    process.kill(doomed.pid, 'SIGKILL');
    await doomed.exited;
    await eventually(async () => (await processesOfRun(runId)).length === 0, {
      timeoutMs: 10_000,
      intervalMs: 20,
      what: `every process of run ${runId} to end`,
    });
    expect(await marks('finished')).toEqual([]);

    // The takeover: another worker runs the next attempt once the dead one's lock expires.
    const survivor = fleet.start('worker', { ...workerEnv, WORKER_ID: 'survivor' });
    await survivor.waitForLine(/worker ready/);
    await eventually(
      async () => (await attemptsOf(fleet, jobId)).some(([, status]) => status === 'SUCCESS'),
      { timeoutMs: 90_000, what: 'the takeover attempt to succeed' },
    );
    // Watched until well past when the first execution would have reached its end.
    while (Date.now() < wouldEndBy + 2000) {
      expect(existsSync(join(out, `finished-${first}`))).toBe(false);
      await new Promise((r) => setTimeout(r, 50));
    }
    const started = await marks('started');
    expect(started).toHaveLength(2);
    const second = started.find((id) => id !== first);
    expect(await marks('finished')).toEqual([second]);
    expect(await attemptsOf(fleet, jobId)).toEqual([
      [1, 'FAILURE', 'doomed', 'WORKER_LOST'],
      [2, 'SUCCESS', 'survivor', null],
    ]);
  });
});
