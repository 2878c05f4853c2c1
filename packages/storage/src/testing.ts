// Test support for packages that need a real S3 server (import `@chronos/storage/testing` from
// tests only): a local s3rver of their own over a temporary folder, and a bucket of their own.

import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LOCAL_S3_CREDENTIALS, startLocalS3 } from './local-s3.ts';
import { createStorage, type Storage } from './storage.ts';

export interface FillOptions {
  /** Keys are `<prefix><index padded to 6 digits>.json`. @defaultValue 'fill/' */
  prefix?: string;
  /** Writes in flight at once. @defaultValue 16 */
  parallelism?: number;
}

/**
 * Writes `count` small JSON documents through `storage`, at most `parallelism` at a time, and
 * returns their keys sorted: a store holding many objects, the way days of runs leave it.
 */
export async function fillStorage(
  storage: Storage,
  count: number,
  opts: FillOptions = {},
): Promise<string[]> {
  const { prefix = 'fill/', parallelism = 16 } = opts;
  const keys = Array.from({ length: count }, (_, i) => `${prefix}${String(i).padStart(6, '0')}.json`);
  let next = 0;
  const writer = async () => {
    while (next < keys.length) {
      const i = next++;
      await storage.putJson(keys[i] as string, { i });
    }
  };
  await Promise.all(Array.from({ length: Math.min(parallelism, count) }, writer));
  return keys;
}

export interface TestStorage {
  storage: Storage;
  endpoint: string;
  /** `chronos-test-<label>-<random>` */
  bucket: string;
  /** The server's temporary data folder, removed by `stop()`. */
  directory: string;
  /** The configuration variables that make a Chronos process use this server and bucket. */
  env: { S3_ENDPOINT: string; S3_BUCKET: string; S3_ACCESS_KEY: string; S3_SECRET_KEY: string };
  /** Closes the storage, stops the server and removes its folder. */
  stop(): Promise<void>;
}

/**
 * A fresh S3 server on a free port over a temporary folder, with a bucket named after `label`
 * created. One per test file (or test): nothing is shared. Call `stop()` in `afterAll`.
 */
export async function startTestStorage(label: string): Promise<TestStorage> {
  const slug =
    label
      .toLowerCase()
      .replace(/[^a-z0-9]+/g, '-')
      .replace(/^-+|-+$/g, '')
      .slice(0, 30) || 'x';
  const bucket = `chronos-test-${slug}-${randomBytes(4).toString('hex')}`;
  const directory = await mkdtemp(join(tmpdir(), `chronos-s3-${slug}-`));
  try {
    const server = await startLocalS3({ directory, port: 0 });
    const storage = createStorage({
      endpoint: server.endpoint,
      region: 'us-east-1',
      bucket,
      ...LOCAL_S3_CREDENTIALS,
    });
    const stop = async () => {
      await storage.close();
      await server.stop();
      await rm(directory, { recursive: true, force: true });
    };
    try {
      await storage.ensureBucket();
    } catch (err) {
      await stop();
      throw err;
    }
    return {
      storage,
      endpoint: server.endpoint,
      bucket,
      directory,
      env: {
        S3_ENDPOINT: server.endpoint,
        S3_BUCKET: bucket,
        S3_ACCESS_KEY: LOCAL_S3_CREDENTIALS.accessKey,
        S3_SECRET_KEY: LOCAL_S3_CREDENTIALS.secretKey,
      },
      stop,
    };
  } catch (err) {
    await rm(directory, { recursive: true, force: true });
    throw err;
  }
}
