// A script cannot read its worker's secrets. Before, a SCRIPT job of a plain USER printed
// /proc/$PPID/environ — the worker's JWT_SECRET, ENCRYPTION_KEY and DATABASE_URL — and a token
// signed with that secret was accepted: any user who could define a script became an administrator.
// Here a real worker process holds real secrets in its environment, a data folder and its code;
// scripts of a USER and of an ADMIN look for them every way they can.
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO_ROOT, eventually } from '../helpers.ts';
import { stopAllApps, type AppProcess } from './app-process.ts';
import { createFleet, type Fleet } from './fleet.ts';
import { attemptsOf, ownerWithRole, runLog, scriptJob, triggerNow } from './worker-process.ts';

let fleet: Fleet;
let dataDir: string;
let worker: AppProcess;
const secrets = {
  JWT_SECRET: `jwt-${randomBytes(24).toString('hex')}`,
  ENCRYPTION_KEY: randomBytes(32).toString('hex'),
  STORED: `stored-${randomBytes(16).toString('hex')}`,
};

beforeAll(async () => {
  fleet = await createFleet('script_secrets');
  dataDir = await mkdtemp(join(tmpdir(), 'chronos-script-secrets-'));
  await mkdir(join(dataDir, 's3', 'chronos'), { recursive: true });
  await writeFile(join(dataDir, 's3', 'chronos', 'secret.txt'), secrets.STORED, { mode: 0o644 });
  worker = fleet.start('worker', {
    WORKER_TYPES: 'SCRIPT',
    JWT_SECRET: secrets.JWT_SECRET,
    ENCRYPTION_KEY: secrets.ENCRYPTION_KEY,
    CHRONOS_DATA_DIR: dataDir,
  });
  await worker.waitForLine(/worker ready/);
});
afterAll(async () => {
  await stopAllApps();
  await fleet?.close();
  if (dataDir) await rm(dataDir, { recursive: true, force: true });
});

// Every way in: the parent's environment, PID 1's, every process in view, ps, the worker's own
// /proc entry, the data folder and the worker's code (where its configuration would live).
const PROBE = [
  'echo "ppid=$PPID"',
  'for f in /proc/$PPID/environ /proc/1/environ /proc/$WORKER_PID/environ /proc/[0-9]*/environ; do',
  '  echo "== $f"; tr "\\0" "\\n" < "$f"',
  'done 2>&1',
  'echo "== ps"',
  'ps -eo pid=,uid=,args=',
  'echo "== data"',
  '{ ls -la "$DATA_DIR"; cat "$DATA_DIR/s3/chronos/secret.txt"; } 2>&1',
  'echo "== code"',
  '{ ls "$REPO_DIR"; cat "$REPO_DIR/package.json"; } 2>&1',
  'echo "== done"',
].join('\n');

async function probeAs(role: 'USER' | 'ADMIN'): Promise<string[]> {
  const ownerId = await ownerWithRole(fleet, role);
  const jobId = await scriptJob(fleet, ownerId, `probe-${role.toLowerCase()}`, PROBE, {
    WORKER_PID: String(worker.pid),
    DATA_DIR: dataDir,
    REPO_DIR: REPO_ROOT,
  });
  const runId = await triggerNow(fleet, jobId);
  await eventually(async () => (await attemptsOf(fleet, jobId)).some(([, status]) => status === 'SUCCESS'), {
    timeoutMs: 60_000,
    what: `the ${role}'s probe to finish`,
  });
  return eventually(
    async () => {
      const lines = await runLog(fleet, runId);
      return lines.includes('== done') ? lines : undefined;
    },
    { timeoutMs: 30_000, what: `the ${role}'s probe log` },
  );
}

describe("a script looking for its worker's secrets", () => {
  it.each([
    ['a USER', 'USER'],
    ['an ADMIN', 'ADMIN'],
  ] as const)('finds none of them in a job of %s', async (_, role) => {
    const lines = await probeAs(role);
    const text = lines.join('\n');
    // The worker process holds them, in its environment and its data folder.
    const environ = Object.values(secrets).concat(fleet.env['DATABASE_URL'] as string);
    for (const value of environ) expect(text).not.toContain(value);
    expect(lines).toContain('ppid=1');
    expect(text).toContain('/proc/1/environ: Permission denied');
    expect(text).toContain(`/proc/${worker.pid}/environ: No such file or directory`);
    const ps = lines.slice(lines.indexOf('== ps') + 1, lines.indexOf('== data'));
    expect(ps.length).toBeGreaterThanOrEqual(3);
    for (const line of ps) {
      const [pid, uid, ...args] = line.trim().split(/\s+/);
      expect(Number(pid)).toBeLessThan(1000);
      expect(args.join(' ')).not.toMatch(/node|tsx|main\.ts/);
      if (uid === '0') expect([pid, args.join(' ')]).toEqual(['1', 'chronos-sandbox-init']);
    }
    expect(text).toContain(`ls: cannot access '${dataDir}': No such file or directory`);
    expect(text).toContain(`cat: ${REPO_ROOT}/package.json: No such file or directory`);
  });
});
