// A store the way weeks of runs leave it: thousands of objects, so every listing (and the readiness
// check, a listing of one key) needs S3's continuation tokens. s3rver 3.7.1 built them with DES,
// which OpenSSL 3 refuses: without patches/s3rver@3.7.1.patch each of these answers 500 (and keys
// with "+" or "%" come back mangled, as it ignored encoding-type=url). Real servers only.
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '@chronos/config';
import { Client } from 'minio';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LOCAL_S3_CREDENTIALS, openStorage } from '../src/index.ts';
import { fillStorage, startTestStorage, type TestStorage } from '../src/testing.ts';
import { freePort } from './helpers.ts';

const MANY = 2500; // two and a half pages of 1000, the most one S3 listing answers

let s3: TestStorage;
let many: string[];
beforeAll(async () => {
  s3 = await startTestStorage('many-objects');
  many = await fillStorage(s3.storage, MANY, { prefix: 'many/' });
}, 120_000);
afterAll(async () => {
  await s3?.stop();
});

/** A raw client on the test server, to page by hand. */
function rawClient(): Client {
  const url = new URL(s3.endpoint);
  return new Client({
    endPoint: url.hostname,
    port: Number(url.port),
    useSSL: false,
    region: 'us-east-1',
    ...LOCAL_S3_CREDENTIALS,
    pathStyle: true,
  });
}

describe('a store holding thousands of objects', () => {
  it('lists every key across pages, sorted, and nothing beside the prefix', async () => {
    await s3.storage.putJson('other/a.json', 1);
    await s3.storage.putJson('manx.json', 1);
    expect(await s3.storage.list('many/')).toEqual(many);
    const all = await s3.storage.list('');
    expect(all).toHaveLength(MANY + 2);
    expect(all).toEqual([...many, 'manx.json', 'other/a.json'].sort());
  });

  it('passes the readiness check (a listing of one key)', async () => {
    await expect(s3.storage.ping()).resolves.toBeUndefined();
  });

  it('pages one key at a time by continuation token, whatever characters a key holds', async () => {
    const odd = ['odd/a b.json', 'odd/plus+%25.json', 'odd/ü-日本-✓.json', 'odd/z~(1).json'];
    for (const key of odd) await s3.storage.putJson(key, { key });
    const client = rawClient();
    const seen: string[] = [];
    const tokens = new Set<string>();
    let token = '';
    for (;;) {
      const page = await client.listObjectsV2Query(s3.bucket, 'odd/', token, '', 1, '');
      seen.push(...page.objects.map((o) => o.name ?? '?'));
      if (!page.isTruncated) break;
      expect(page.objects).toHaveLength(1);
      expect(tokens.has(page.nextContinuationToken)).toBe(false);
      tokens.add(page.nextContinuationToken);
      token = page.nextContinuationToken;
      expect(seen.length).toBeLessThanOrEqual(odd.length);
    }
    expect(seen).toEqual([...odd].sort());
    expect(await s3.storage.list('odd/')).toEqual([...odd].sort());
    expect(await s3.storage.remove('odd/')).toBe(odd.length);
    expect(await s3.storage.list('odd/')).toEqual([]);
  });

  it('refuses a continuation token made for another bucket', async () => {
    const token = Buffer.from(`us-east-1/not-${s3.bucket}/many/000001.json`).toString('base64');
    await expect(rawClient().listObjectsV2Query(s3.bucket, '', token, '', 10, '')).rejects.toMatchObject({
      code: 'InvalidArgument',
    });
  });

  it('removes a folder of more objects than one DeleteObjects request takes', async () => {
    const keys = await fillStorage(s3.storage, 1200, { prefix: 'gone/' });
    expect(await s3.storage.list('gone/')).toEqual(keys);
    expect(await s3.storage.remove('gone/')).toBe(1200);
    expect(await s3.storage.list('gone/')).toEqual([]);
    expect(await s3.storage.list('many/')).toHaveLength(MANY);
  }, 120_000);
});

describe('the second start of the local store', () => {
  const dirs: string[] = [];
  afterAll(() => {
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  });

  it('opens a data folder that holds thousands of objects and serves all of them', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'chronos-second-start-'));
    dirs.push(dir);
    const config = loadConfig({
      CHRONOS_DATA_DIR: dir,
      S3_LOCAL_PORT: String(await freePort()),
      S3_BUCKET: `chronos-second-${randomBytes(4).toString('hex')}`,
    });

    const first = await openStorage(config);
    let keys: string[];
    try {
      keys = await fillStorage(first.storage, MANY, { prefix: 'runs/' });
    } finally {
      await first.stop();
    }

    // What failed before: the start checks the bucket with a listing of one key.
    const second = await openStorage(config);
    try {
      expect(second.source).toBe('local-started');
      await expect(second.storage.ping()).resolves.toBeUndefined();
      expect(await second.storage.list('runs/')).toEqual(keys);
    } finally {
      await second.stop();
    }
  }, 120_000);
});
