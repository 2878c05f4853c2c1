// openStorage: the configured server, or the local default over CHRONOS_DATA_DIR/s3 shared by every
// Chronos process on the machine. Real servers only.
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '@chronos/config';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { openStorage, runContextKey } from '../src/index.ts';
import { startTestStorage } from '../src/testing.ts';
import { eventually, freePort, portAnswers, tcpServer } from './helpers.ts';

const cleanups: (() => Promise<unknown> | void)[] = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()?.();
});
const dirs: string[] = [];
afterAll(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

function dataDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'chronos-open-storage-'));
  dirs.push(dir);
  return dir;
}

const bucket = () => `chronos-open-${randomBytes(4).toString('hex')}`;

describe('openStorage', () => {
  it('without S3_ENDPOINT starts the local server over CHRONOS_DATA_DIR/s3; a second process shares it', async () => {
    const dir = dataDir();
    const port = await freePort();
    const config = loadConfig({ CHRONOS_DATA_DIR: dir, S3_LOCAL_PORT: String(port), S3_BUCKET: bucket() });

    const first = await openStorage(config);
    cleanups.push(() => first.stop());
    expect(first.source).toBe('local-started');
    expect(first.endpoint).toBe(`http://127.0.0.1:${port}`);
    expect(existsSync(join(dir, 's3', config.s3.bucket))).toBe(true);

    // Another process (simulated: this one again) finds the port taken by a Chronos S3 server.
    const second = await openStorage(config);
    cleanups.push(() => second.stop());
    expect(second.source).toBe('local-shared');
    expect(second.endpoint).toBe(first.endpoint);

    const key = runContextKey('run-shared');
    await first.storage.putJson(key, { outputs: { n: 1 } });
    expect(await second.storage.getJson(key)).toEqual({ outputs: { n: 1 } });

    // The sharer stopping leaves the server up; the starter stopping takes it down.
    await second.stop();
    expect(await first.storage.getJson(key)).toEqual({ outputs: { n: 1 } });
    await first.stop();
    await eventually(async () => !(await portAnswers(port)), { what: `port ${port} to close` });

    // The data outlives the server: the next start serves it again.
    const again = await openStorage(config);
    cleanups.push(() => again.stop());
    expect(again.source).toBe('local-started');
    expect(await again.storage.getJson(key)).toEqual({ outputs: { n: 1 } });
  });

  it('with S3_ENDPOINT uses that server and creates the bucket there', async () => {
    const s3 = await startTestStorage('open-configured');
    cleanups.push(() => s3.stop());
    const config = loadConfig({ ...s3.env, S3_BUCKET: bucket(), S3_LOCAL_PORT: '1' });
    const opened = await openStorage(config);
    cleanups.push(() => opened.stop());
    expect(opened.source).toBe('S3_ENDPOINT');
    expect(opened.endpoint).toBe(s3.endpoint);
    await expect(opened.storage.ping()).resolves.toBeUndefined();
    await opened.storage.putJson('a.json', [1]);
    expect(await opened.storage.getJson('a.json')).toEqual([1]);
  });

  it('with S3_ENDPOINT on a port nothing listens on, fails with one clear error naming S3_ENDPOINT', async () => {
    const port = await freePort();
    const config = loadConfig({ S3_ENDPOINT: `http://127.0.0.1:${port}`, CHRONOS_DATA_DIR: dataDir() });
    await expect(openStorage(config)).rejects.toThrow(
      new RegExp(
        `^S3_ENDPOINT http://127\\.0\\.0\\.1:${port} is not usable \\(bucket chronos\\): .*ECONNREFUSED`,
      ),
    );
  });

  it('without S3_ENDPOINT, when S3_LOCAL_PORT is taken by something else, says so and names both variables', async () => {
    const other = await tcpServer('HTTP/1.1 200 OK\r\ncontent-length: 5\r\nconnection: close\r\n\r\nhello');
    cleanups.push(() => other.close());
    const dir = dataDir();
    const config = loadConfig({ CHRONOS_DATA_DIR: dir, S3_LOCAL_PORT: String(other.port) });
    await expect(openStorage(config)).rejects.toThrow(
      new RegExp(
        `^127\\.0\\.0\\.1:${other.port} \\(S3_LOCAL_PORT\\) is taken by something that is not a usable S3 server .*set S3_ENDPOINT$`,
      ),
    );
  });
});
