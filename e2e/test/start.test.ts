// `node scripts/start.mjs`, the one command that runs Chronos, against real PostgreSQL and Redis.
import { mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RUNNABLE_JOB_TYPES, queueName } from '@chronos/core';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import {
  REPO_ROOT,
  TEST_REDIS_URL,
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
  withPg,
  type Launcher,
} from './helpers.ts';

const base = uniqueName('start');
const databases: string[] = [];
const prefixes: string[] = [];
const tempDirs: string[] = [];

function database(label: string): string {
  const name = `${base}_${label}`;
  databases.push(name);
  return name;
}

/**
 * The local S3 server the launcher starts when S3_ENDPOINT is unset: on a free port over a temporary
 * data folder, so no test touches the repository's .data or a running Chronos's S3 on 4568.
 */
async function localS3(): Promise<{ S3_LOCAL_PORT: string; CHRONOS_DATA_DIR: string }> {
  const dir = mkdtempSync(join(tmpdir(), 'chronos-e2e-s3-'));
  tempDirs.push(dir);
  return { S3_LOCAL_PORT: String(await freePort()), CHRONOS_DATA_DIR: dir };
}

function redisPrefix(label: string): string {
  const prefix = `${base.replaceAll('_', '-')}-${label}`;
  prefixes.push(prefix);
  return prefix;
}

afterEach(async () => {
  await stopAllLaunchers();
});

afterAll(async () => {
  for (const name of databases) await dropDatabase(name);
  for (const prefix of prefixes) await deleteRedisPrefix(prefix);
  for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true });
});

const ADMIN = { email: 'ops@example.com', password: 'correct-horse-battery-staple' };
const MIGRATIONS = readdirSync(join(REPO_ROOT, 'prisma', 'migrations'), { withFileTypes: true })
  .filter((d) => d.isDirectory())
  .map((d) => d.name)
  .sort();

async function waitUntilUp(launcher: Launcher, port: number): Promise<void> {
  await launcher.waitForLine(
    new RegExp(
      `^Chronos is up: http://localhost:${port} {2}\\(dashboard: http://localhost:${port}/admin/queues, sign in as the admin\\)$`,
    ),
  );
}

/** What a person checks after `pnpm start`: health, the dashboard's sign-in, one queue per type that runs. */
async function expectServing(port: number, credentials: { email: string; password: string }): Promise<void> {
  const origin = `http://127.0.0.1:${port}`;
  expect((await fetch(`${origin}/healthz`)).status).toBe(200);

  const anonymous = await fetch(`${origin}/admin/queues`, {
    redirect: 'manual',
    headers: { accept: 'text/html' },
  });
  expect(anonymous.status).toBe(303);
  expect(anonymous.headers.get('location')).toMatch(/^\/admin\/login/);
  const signIn = (password: string) =>
    fetch(`${origin}/admin/login`, {
      method: 'POST',
      redirect: 'manual',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ email: credentials.email, password }).toString(),
    });
  expect((await signIn(`${credentials.password}-wrong`)).status).toBe(401);

  const session = await signIn(credentials.password);
  expect(session.status).toBe(303);
  // The session's cookies (the signed one and the session id), as a browser would send them.
  const auth = {
    cookie: session.headers
      .getSetCookie()
      .map((c) => c.split(';')[0])
      .join('; '),
  };
  expect((await fetch(`${origin}/admin/queues`, { headers: auth })).status).toBe(200);
  const api = await fetch(`${origin}/admin/queues/api/queues`, { headers: auth });
  expect(api.status).toBe(200);
  const body = (await api.json()) as { queues: { name: string }[] };
  expect(body.queues.map((q) => q.name).sort()).toEqual(RUNNABLE_JOB_TYPES.map(queueName).sort());
}

async function expectMigratedWithOneAdmin(url: string, email: string): Promise<void> {
  await withPg(url, async (client) => {
    const applied = await client.query<{ migration_name: string }>(
      `SELECT migration_name FROM _prisma_migrations
        WHERE finished_at IS NOT NULL AND rolled_back_at IS NULL ORDER BY migration_name`,
    );
    expect(applied.rows.map((r) => r.migration_name)).toEqual(MIGRATIONS);
    const users = await client.query<{ email: string }>('SELECT email FROM users');
    expect(users.rows).toEqual([{ email }]);
    const admins = await client.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM users u
         JOIN user_roles ur ON ur.user_id = u.id JOIN roles r ON r.id = ur.role_id
        WHERE r.name = 'ADMIN'`,
    );
    expect(admins.rows[0]?.n).toBe(1);
  });
}

/** SIGTERM to the launcher: it exits 0 and nothing it started is left running. */
async function expectCleanStop(launcher: Launcher): Promise<void> {
  const tree = descendants(launcher.pid);
  launcher.child.kill('SIGTERM');
  const code = await launcher.exited;
  expect(code, launcher.output()).toBe(0);
  await eventually(() => tree.every((pid) => !isAlive(pid)), {
    timeoutMs: 10_000,
    what: `processes ${tree.join(', ')} to exit`,
  });
  expect(launcher.stdout).toContain('[chronos] Stopped');
}

describe('pnpm start (scripts/start.mjs)', () => {
  const db = database('given');

  it('with DATABASE_URL and REDIS_URL given: migrates, serves api + dashboard, and stops cleanly on SIGTERM', async () => {
    const port = await freePort();
    const url = databaseUrl(db);
    const s3 = await localS3();
    const launcher = startLauncher(
      launcherEnv({
        DATABASE_URL: url,
        REDIS_URL: TEST_REDIS_URL,
        REDIS_PREFIX: redisPrefix('given'),
        PORT: String(port),
        CHRONOS_ADMIN_EMAIL: ADMIN.email,
        CHRONOS_ADMIN_PASSWORD: ADMIN.password,
        ...s3,
      }),
    );
    await waitUntilUp(launcher, port);
    // No S3_ENDPOINT: one local S3 server for all apps, over the data folder.
    expect(
      launcher.stdout.some((l) =>
        l.startsWith(`[chronos] S3: http://127.0.0.1:${s3.S3_LOCAL_PORT} (local, pid `),
      ),
      launcher.output(),
    ).toBe(true);
    expect(readdirSync(s3.CHRONOS_DATA_DIR)).toContain('s3');

    await expectServing(port, ADMIN);
    await expectMigratedWithOneAdmin(url, ADMIN.email);
    // The chosen password is never printed.
    expect(launcher.stdout.join('\n')).not.toContain(ADMIN.password);

    expect(descendants(launcher.pid).length).toBeGreaterThanOrEqual(4); // api, scheduler, worker, S3
    await expectCleanStop(launcher);
    expect(launcher.stdout).toContain('[chronos] Stopping S3');
    expect(await portAnswers(port)).toBe(false);
    expect(await portAnswers(Number(s3.S3_LOCAL_PORT))).toBe(false);
  });

  it('when an app dies on its own, stops the others and exits 1 naming it', async () => {
    const port = await freePort();
    const launcher = startLauncher(
      launcherEnv({
        DATABASE_URL: databaseUrl(db),
        REDIS_URL: TEST_REDIS_URL,
        REDIS_PREFIX: redisPrefix('dies'),
        PORT: String(port),
        CHRONOS_ADMIN_EMAIL: ADMIN.email,
        CHRONOS_ADMIN_PASSWORD: ADMIN.password,
        ...(await localS3()),
      }),
    );
    await waitUntilUp(launcher, port);
    const line = launcher.stdout.find((l) => l.startsWith('[chronos] Processes:')) ?? '';
    const pids: Record<string, number> = Object.fromEntries(
      [...line.matchAll(/(api|scheduler|worker) (\d+)/g)].map((m) => [m[1] ?? '', Number(m[2])]),
    );
    expect(Object.keys(pids).sort()).toEqual(['api', 'scheduler', 'worker']);

    process.kill(pids['worker'] as number, 'SIGKILL');
    expect(await launcher.exited).toBe(1);
    expect(launcher.stderr).toContain('[chronos] worker was killed by SIGKILL; stopping Chronos');
    await eventually(() => Object.values(pids).every((pid) => !isAlive(pid)), {
      timeoutMs: 10_000,
      what: 'api and scheduler to stop',
    });
  });

  it('prints a generated first-admin password once, which signs in; a restart prints none', async () => {
    const port = await freePort();
    const url = databaseUrl(database('generated'));
    const env = launcherEnv({
      DATABASE_URL: url,
      REDIS_URL: TEST_REDIS_URL,
      REDIS_PREFIX: redisPrefix('generated'),
      PORT: String(port),
      CHRONOS_ADMIN_EMAIL: ADMIN.email,
      CHRONOS_ADMIN_PASSWORD: undefined,
      ...(await localS3()),
    });

    const first = startLauncher(env);
    await waitUntilUp(first, port);
    const passwordLines = first.stdout.filter((l) => /^\[api\]\s+password:/.test(l));
    expect(passwordLines, first.output()).toHaveLength(1);
    const password = /password:\s+(\S+)/.exec(passwordLines[0] ?? '')?.[1] ?? '';
    expect(password.length).toBeGreaterThanOrEqual(16);
    expect(first.stdout).toContain(`[api]   e-mail:   ${ADMIN.email}`);
    await expectServing(port, { email: ADMIN.email, password });
    await expectMigratedWithOneAdmin(url, ADMIN.email);
    await expectCleanStop(first);

    const second = startLauncher(env);
    await waitUntilUp(second, port);
    expect(second.stdout.filter((l) => /password:/.test(l))).toEqual([]);
    expect(second.stdout.join('\n')).not.toContain(password);
    await expectServing(port, { email: ADMIN.email, password });
    await expectMigratedWithOneAdmin(url, ADMIN.email);
    await expectCleanStop(second);
  });

  it('with no PostgreSQL and no Redis answering: starts embedded PostgreSQL and redis-server under CHRONOS_DATA_DIR, reuses them on restart, stops them on SIGTERM', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'chronos-e2e-'));
    tempDirs.push(dataDir);
    const pgPort = await freePort();
    const redisPort = await freePort();
    const s3Port = await freePort();
    const port = await freePort();
    const env = launcherEnv({
      CHRONOS_LOCAL_PG_PORT: String(pgPort),
      CHRONOS_LOCAL_REDIS_PORT: String(redisPort),
      S3_LOCAL_PORT: String(s3Port),
      CHRONOS_DATA_DIR: dataDir,
      PORT: String(port),
      CHRONOS_ADMIN_EMAIL: ADMIN.email,
      CHRONOS_ADMIN_PASSWORD: ADMIN.password,
    });
    const url = `postgresql://postgres@127.0.0.1:${pgPort}/chronos`;

    const first = startLauncher(env);
    await waitUntilUp(first, port);
    expect(first.stdout).toContain(
      `[chronos] PostgreSQL: first start, initialising ${join(dataDir, 'postgres')}`,
    );
    expect(first.stdout.some((l) => l.startsWith(`[chronos] PostgreSQL: ${url} (embedded, pid `))).toBe(true);
    expect(
      first.stdout.some((l) => l.startsWith(`[chronos] Redis: redis://127.0.0.1:${redisPort} (local, pid `)),
    ).toBe(true);
    expect(
      first.stdout.some((l) => l.startsWith(`[chronos] S3: http://127.0.0.1:${s3Port} (local, pid `)),
    ).toBe(true);
    await expectServing(port, ADMIN);
    await expectMigratedWithOneAdmin(url, ADMIN.email);
    await expectCleanStop(first);
    expect(first.stdout).toContain('[chronos] Stopping PostgreSQL');
    expect(first.stdout).toContain('[chronos] Stopping Redis');
    expect(first.stdout).toContain('[chronos] Stopping S3');
    expect(await portAnswers(pgPort)).toBe(false);
    expect(await portAnswers(redisPort)).toBe(false);
    expect(await portAnswers(s3Port)).toBe(false);
    // Redis kept its data append-only under the data folder; S3 keeps its buckets there too.
    expect(readdirSync(join(dataDir, 'redis'))).toContain('appendonlydir');
    expect(readdirSync(dataDir)).toContain('s3');

    // Second start: the cluster and its data are reused, not initialised again.
    const second = startLauncher(env);
    await waitUntilUp(second, port);
    expect(second.stdout.some((l) => l.includes('first start, initialising'))).toBe(false);
    await expectServing(port, ADMIN);
    await expectMigratedWithOneAdmin(url, ADMIN.email);
    await expectCleanStop(second);
    expect(await portAnswers(pgPort)).toBe(false);
    expect(await portAnswers(redisPort)).toBe(false);
    expect(await portAnswers(s3Port)).toBe(false);
  });

  it('with no Redis answering and no redis-server on PATH: exits non-zero with one line saying how to get Redis', async () => {
    const emptyBin = mkdtempSync(join(tmpdir(), 'chronos-e2e-path-'));
    tempDirs.push(emptyBin);
    mkdirSync(join(emptyBin, 'bin'));
    const redisPort = await freePort();
    const launcher = startLauncher(
      launcherEnv({
        PATH: join(emptyBin, 'bin'),
        DATABASE_URL: databaseUrl(db),
        REDIS_URL: undefined,
        CHRONOS_LOCAL_REDIS_PORT: String(redisPort),
        PORT: String(await freePort()),
      }),
    );
    const code = await launcher.exited;
    expect(code, launcher.output()).not.toBe(0);
    expect(typeof code).toBe('number');
    expect(launcher.stderr.filter(Boolean), launcher.output()).toHaveLength(1);
    const line = launcher.stderr[0] ?? '';
    expect(line).toMatch(/Redis/);
    expect(line).toContain(`127.0.0.1:${redisPort}`);
    expect(line).toMatch(/apt-get install redis-server/);
    expect(line).toMatch(/docker compose up -d redis/);
    expect(line).toMatch(/REDIS_URL/);
    expect(launcher.stdout.some((l) => l.startsWith('[chronos] Starting'))).toBe(false);
    expect(descendants(launcher.pid)).toEqual([]);
  });

  it('with S3_ENDPOINT on a port nothing answers: exits non-zero with one line naming S3_ENDPOINT', async () => {
    const s3Port = await freePort();
    const launcher = startLauncher(
      launcherEnv({
        DATABASE_URL: databaseUrl(db),
        REDIS_URL: TEST_REDIS_URL,
        S3_ENDPOINT: `http://127.0.0.1:${s3Port}`,
        PORT: String(await freePort()),
      }),
    );
    const code = await launcher.exited;
    expect(code, launcher.output()).toBe(1);
    expect(launcher.stderr.filter(Boolean), launcher.output()).toEqual([
      `[chronos] Cannot start Chronos: S3 at 127.0.0.1:${s3Port} (S3_ENDPOINT) does not answer: start it or correct S3_ENDPOINT`,
    ]);
    expect(launcher.stdout.some((l) => l.startsWith('[chronos] Starting'))).toBe(false);
    expect(descendants(launcher.pid)).toEqual([]);
  });
});
