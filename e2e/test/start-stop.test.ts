// How `pnpm start` ends: killed outright, through a wrapper that dies, or by Ctrl-C in a terminal;
// and what a developer's start keeps between two runs (JWT_SECRET, ENCRYPTION_KEY) and prints.
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import {
  TEST_REDIS_URL,
  announcedPids,
  databaseUrl,
  deleteRedisPrefix,
  descendants,
  dropDatabase,
  eventually,
  freePort,
  isAlive,
  launcherEnv,
  portAnswers,
  startLauncher,
  stopAllLaunchers,
  uniqueName,
  type Launcher,
} from './helpers.ts';

const base = uniqueName('stop');
const databases: string[] = [];
const prefixes: string[] = [];
const tempDirs: string[] = [];

afterEach(async () => {
  await stopAllLaunchers();
});

afterAll(async () => {
  for (const name of databases) await dropDatabase(name);
  for (const prefix of prefixes) await deleteRedisPrefix(prefix);
  for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true });
});

const ADMIN = { email: 'ops@example.com', password: 'correct-horse-battery-staple' };

function tempDir(label: string): string {
  const dir = mkdtempSync(join(tmpdir(), `chronos-e2e-${label}-`));
  tempDirs.push(dir);
  return dir;
}

/** A launcher environment on the test PostgreSQL and Redis, with its own database, prefix and S3. */
async function sharedServicesEnv(label: string, overrides: Record<string, string | undefined> = {}) {
  const database = `${base}_${label}`;
  databases.push(database);
  const prefix = `${base.replaceAll('_', '-')}-${label}`;
  prefixes.push(prefix);
  const port = await freePort();
  const env = launcherEnv({
    DATABASE_URL: databaseUrl(database),
    REDIS_URL: TEST_REDIS_URL,
    REDIS_PREFIX: prefix,
    PORT: String(port),
    S3_LOCAL_PORT: String(await freePort()),
    CHRONOS_DATA_DIR: tempDir(label),
    CHRONOS_ADMIN_EMAIL: ADMIN.email,
    CHRONOS_ADMIN_PASSWORD: ADMIN.password,
    ...overrides,
  });
  return { env, port };
}

async function waitUntilUp(launcher: Launcher, port: number): Promise<void> {
  await launcher.waitForLine(new RegExp(`^Chronos is up: http://localhost:${port} `));
}

/** Every process the launcher started, found while it is still alive. */
function startedBy(launcher: Launcher): number[] {
  return [...new Set([...descendants(launcher.pid), ...announcedPids(launcher)])];
}

async function expectAllGone(pids: number[], launcher: Launcher): Promise<void> {
  await eventually(() => pids.every((pid) => !isAlive(pid)), {
    timeoutMs: 20_000,
    what: `processes ${pids.filter(isAlive).join(', ')} to exit\n${launcher.output()}`,
  });
}

async function signIn(port: number): Promise<string> {
  const res = await fetch(`http://127.0.0.1:${port}/api/v1/auth/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(ADMIN),
  });
  expect(res.status).toBe(200);
  return ((await res.json()) as { accessToken: string }).accessToken;
}

const me = (port: number, token: string) =>
  fetch(`http://127.0.0.1:${port}/api/v1/auth/me`, { headers: { authorization: `Bearer ${token}` } });

describe('stopping pnpm start', () => {
  it('killed with SIGKILL, the launcher leaves nothing running: apps, embedded PostgreSQL, Redis and S3 exit on their own', async () => {
    const dataDir = tempDir('sigkill');
    const ports = {
      pg: await freePort(),
      redis: await freePort(),
      s3: await freePort(),
      api: await freePort(),
    };
    const launcher = startLauncher(
      launcherEnv({
        CHRONOS_LOCAL_PG_PORT: String(ports.pg),
        CHRONOS_LOCAL_REDIS_PORT: String(ports.redis),
        S3_LOCAL_PORT: String(ports.s3),
        CHRONOS_DATA_DIR: dataDir,
        PORT: String(ports.api),
        CHRONOS_ADMIN_EMAIL: ADMIN.email,
        CHRONOS_ADMIN_PASSWORD: ADMIN.password,
      }),
    );
    await waitUntilUp(launcher, ports.api);
    const pids = startedBy(launcher);
    // api, scheduler, worker, PostgreSQL (and its backends), Redis, S3
    expect(announcedPids(launcher), launcher.output()).toHaveLength(6);

    launcher.child.kill('SIGKILL');
    expect(await launcher.exited).toBe('SIGKILL');
    await expectAllGone(pids, launcher);
    for (const port of Object.values(ports)) expect(await portAnswers(port)).toBe(false);
  });

  it('when a wrapper it runs under dies (as `npx pnpm@10 start` does when stopped), stops everything', async () => {
    const { env, port } = await sharedServicesEnv('wrapper');
    // sh -c stays between us and pnpm (two commands: no exec), like npx's shell.
    const wrapper = startLauncher(env, { command: ['sh', '-c', 'pnpm start; exit $?'] });
    await waitUntilUp(wrapper, port);
    const pids = startedBy(wrapper);
    expect(pids.length).toBeGreaterThanOrEqual(5); // pnpm, launcher, api, scheduler, worker, S3

    wrapper.child.kill('SIGKILL');
    await expectAllGone(pids, wrapper);
    expect(
      wrapper.stdout.some((l) =>
        /^\[chronos\] The process that started Chronos \(pid \d+\) is gone: stopping$/.test(l),
      ),
      wrapper.output(),
    ).toBe(true);
    expect(wrapper.stdout).toContain('[chronos] Stopped');
    expect(await portAnswers(port)).toBe(false);
  });

  it('Ctrl-C on `pnpm start` in a terminal: readable lines, a clean stop without ELIFECYCLE; the next start keeps the generated secrets', async () => {
    // A developer's start: no NODE_ENV, no JWT_SECRET, no ENCRYPTION_KEY.
    const { env, port } = await sharedServicesEnv('terminal', {
      NODE_ENV: undefined,
      LOG_LEVEL: undefined,
      JWT_SECRET: undefined,
      ENCRYPTION_KEY: undefined,
    });
    const dataDir = env['CHRONOS_DATA_DIR'] as string;
    const secretsFile = join(dataDir, 'secrets', 'local.env');

    // In its own process group, as a terminal runs it: Ctrl-C signals the whole group.
    const first = startLauncher(env, { command: ['pnpm', 'start'], detached: true });
    await waitUntilUp(first, port);
    expect(first.stdout, first.output()).toContain(
      `[chronos] Secrets: JWT_SECRET and ENCRYPTION_KEY generated into ${secretsFile} (owner-only; set them yourself in production)`,
    );
    expect(statSync(secretsFile).mode & 0o777).toBe(0o600);
    expect(statSync(join(dataDir, 'secrets')).mode & 0o777).toBe(0o700);
    const stored = readFileSync(secretsFile, 'utf8');
    expect(stored).toMatch(/^JWT_SECRET=\S{32,}$/m);
    expect(stored).toMatch(/^ENCRYPTION_KEY=[0-9a-f]{64}$/m);

    // One readable line per entry, no JSON; nothing from npm or pnpm's build-script notice.
    const appLines = first.stdout.filter((l) => /^\[(api|scheduler|worker)\] /.test(l));
    expect(appLines.length, first.output()).toBeGreaterThan(0);
    for (const line of appLines)
      expect(line).toMatch(/^\[\w+\] \d\d:\d\d:\d\d\.\d{3} (INFO |WARN |ERROR|DEBUG|FATAL)/);
    expect(appLines.some((l) => l.includes('api listening'))).toBe(true);

    // Secrets that work: a sensitive variable is accepted, a token survives the restart.
    const token = await signIn(port);
    const variable = await fetch(`http://127.0.0.1:${port}/api/v1/variables`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'API_KEY', value: 'sk-local-0123456789', isSensitive: true }),
    });
    expect(variable.status).toBe(201);

    // One line per finished run, from the worker: job, slot, status, duration.
    for (const [name, metadata] of [
      ['hello from e2e', {}],
      ['fails on purpose', { fail: 'permanent' }],
    ] as const) {
      const job = await fetch(`http://127.0.0.1:${port}/api/v1/jobs`, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        body: JSON.stringify({
          name,
          type: 'DUMMY',
          schedule: { type: 'INTERVAL', intervalSeconds: 3600 },
          payload: { metadata },
        }),
      });
      expect(job.status).toBe(201);
      const { id } = (await job.json()) as { id: string };
      const trigger = await fetch(`http://127.0.0.1:${port}/api/v1/jobs/${id}/trigger`, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        body: '{}',
      });
      expect(trigger.status).toBe(202);
    }
    await first.waitForLine(
      /^\[worker\] \d\d:\d\d:\d\d\.\d{3} INFO {2}run SUCCESS: hello from e2e \(slot \d{4}-\d\d-\d\dT[\d:.]+Z\) in \d+ ms job="hello from e2e" slot=\S+ status=SUCCESS durationMs=\d+ runId=\w+$/,
    );
    await first.waitForLine(
      /^\[worker\] \d\d:\d\d:\d\d\.\d{3} WARN {2}run FAILURE: fails on purpose \(slot \S+\) in \d+ ms .*status=FAILURE .*code=DUMMY_FAILURE$/,
    );

    const tree = startedBy(first);
    process.kill(-first.pid, 'SIGINT');
    expect(await first.exited, first.output()).toBe(0);
    await expectAllGone(tree, first);
    expect(first.stdout).toContain('[chronos] Stopped');
    const all = first.output();
    expect(all).not.toMatch(/ELIFECYCLE|npm warn|approve-builds|Ignored build scripts/i);

    const second = startLauncher(env);
    await waitUntilUp(second, port);
    expect(second.stdout).toContain(
      `[chronos] Secrets: JWT_SECRET and ENCRYPTION_KEY read from ${secretsFile} (owner-only; set them yourself in production)`,
    );
    expect(readFileSync(secretsFile, 'utf8')).toBe(stored);
    expect((await me(port, token)).status).toBe(200);
  });

  it('with NODE_ENV=production and no secrets, generates none and the api refuses to start naming them', async () => {
    const { env } = await sharedServicesEnv('production', {
      NODE_ENV: 'production',
      JWT_SECRET: undefined,
      ENCRYPTION_KEY: undefined,
    });
    const launcher = startLauncher(env);
    expect(await launcher.exited).toBe(1);
    const all = launcher.output();
    expect(all).not.toContain('[chronos] Secrets:');
    expect(all).toMatch(/JWT_SECRET.*required in production/);
    expect(all).toMatch(/ENCRYPTION_KEY.*required in production/);
  });
});
