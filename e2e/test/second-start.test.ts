// The second start of `pnpm start` (scripts/start.mjs) with the default local object storage, once
// the store holds what earlier days left: thousands of objects. The API's storage check is a
// listing of one key, which then carries a continuation token; s3rver made those with DES, which
// OpenSSL 3 refuses, so the API exited at start (patches/s3rver@3.7.1.patch). Real services only.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '@chronos/config';
import { openStorage } from '@chronos/storage';
import { fillStorage } from '@chronos/storage/testing';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import {
  TEST_REDIS_URL,
  databaseUrl,
  deleteRedisPrefix,
  dropDatabase,
  eventually,
  freePort,
  launcherEnv,
  startLauncher,
  stopAllLaunchers,
  uniqueName,
} from './helpers.ts';

const base = uniqueName('second_start');
const prefix = base.replaceAll('_', '-');
const dataDir = mkdtempSync(join(tmpdir(), 'chronos-e2e-second-start-'));
const OBJECTS = 2500;

afterEach(async () => {
  await stopAllLaunchers();
});

afterAll(async () => {
  await dropDatabase(base);
  await deleteRedisPrefix(prefix);
  rmSync(dataDir, { recursive: true, force: true });
});

describe('pnpm start over a local object store that holds thousands of objects', () => {
  it('starts, answers /readyz 200 and stops cleanly', async () => {
    const s3Port = String(await freePort());
    const port = await freePort();

    // What the first days left in <CHRONOS_DATA_DIR>/s3, in the bucket the apps use.
    const config = loadConfig({ CHRONOS_DATA_DIR: dataDir, S3_LOCAL_PORT: s3Port });
    const before = await openStorage(config);
    try {
      await fillStorage(before.storage, OBJECTS, { prefix: 'runs/' });
    } finally {
      await before.stop();
    }

    const launcher = startLauncher(
      launcherEnv({
        DATABASE_URL: databaseUrl(base),
        REDIS_URL: TEST_REDIS_URL,
        REDIS_PREFIX: prefix,
        PORT: String(port),
        CHRONOS_ADMIN_EMAIL: 'ops@example.com',
        CHRONOS_ADMIN_PASSWORD: 'correct-horse-battery-staple',
        CHRONOS_DATA_DIR: dataDir,
        S3_LOCAL_PORT: s3Port,
      }),
    );
    let exitedWith: number | string | undefined;
    void launcher.exited.then((code) => (exitedWith = code));
    const outcome = await eventually(
      async () => {
        if (exitedWith !== undefined) return `launcher exited (${exitedWith})`;
        const res = await fetch(`http://127.0.0.1:${port}/readyz`).catch(() => undefined);
        return res?.status === 200 && 'ready';
      },
      { timeoutMs: 120_000, what: `/readyz on port ${port} to answer 200` },
    );
    expect(outcome, launcher.output()).toBe('ready');

    const res = await fetch(`http://127.0.0.1:${port}/readyz`);
    expect(await res.json()).toEqual({
      status: 'ready',
      checks: { postgres: 'up', redis: 'up', storage: 'up' },
    });

    launcher.child.kill('SIGTERM');
    expect(await launcher.exited, launcher.output()).toBe(0);
  });
});
