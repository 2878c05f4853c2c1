// createStorage against a real S3 server (s3rver through @chronos/storage/testing), no mocks.
import { existsSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  StorageError,
  createStorage,
  jobDefinitionKey,
  jobPrefix,
  runContextKey,
  runPrefix,
} from '../src/index.ts';
import { startTestStorage, type TestStorage } from '../src/testing.ts';
import { tcpServer } from './helpers.ts';

let s3: TestStorage;
beforeAll(async () => {
  s3 = await startTestStorage('storage');
});
afterAll(async () => {
  await s3?.stop();
});

/** Another bucket on the same server. */
function otherBucket(name: string) {
  return createStorage({
    endpoint: s3.endpoint,
    region: 'us-east-1',
    bucket: name,
    accessKey: s3.env.S3_ACCESS_KEY,
    secretKey: s3.env.S3_SECRET_KEY,
  });
}

describe('storage', () => {
  it('puts and gets a JSON document unchanged', async () => {
    const doc = {
      name: 'nightly report',
      version: 3,
      schedule: { type: 'CRON', cronExpression: '0 2 * * *', timezone: 'Europe/Berlin' },
      payload: { text: 'Grüße — 日本 ✓', nested: [1, null, true, { a: 'b' }] },
    };
    const key = jobDefinitionKey('job-roundtrip', 3);
    await s3.storage.putJson(key, doc);
    expect(await s3.storage.getJson<typeof doc>(key)).toEqual(doc);

    await s3.storage.putJson(key, { replaced: true });
    expect(await s3.storage.getJson(key)).toEqual({ replaced: true });
  });

  it('answers null for a key that does not exist', async () => {
    expect(await s3.storage.getJson(runContextKey('no-such-run'))).toBeNull();
  });

  it('refuses a value without JSON form', async () => {
    await expect(s3.storage.putJson('x/undefined.json', undefined)).rejects.toThrow(TypeError);
  });

  it('lists the keys under a prefix, sorted, and nothing beside it', async () => {
    for (const v of [2, 10, 1]) await s3.storage.putJson(jobDefinitionKey('job-list', v), { v });
    await s3.storage.putJson(jobDefinitionKey('job-list2', 1), { v: 1 });
    await s3.storage.putJson(runContextKey('job-list'), {});

    expect(await s3.storage.list(jobPrefix('job-list'))).toEqual([
      'jobs/job-list/definitions/v1.json',
      'jobs/job-list/definitions/v10.json',
      'jobs/job-list/definitions/v2.json',
    ]);
    expect(await s3.storage.list('jobs/job-list')).toHaveLength(4);
    expect(await s3.storage.list('jobs/nothing-here/')).toEqual([]);
  });

  it('removes every object under a folder prefix, and only those', async () => {
    for (const v of [1, 2, 3]) await s3.storage.putJson(jobDefinitionKey('job-rm', v), { v });
    await s3.storage.putJson(jobDefinitionKey('job-rm-other', 1), { keep: true });
    await s3.storage.putJson('jobs/job-rm/artifacts/deep/out.json', { deep: true });

    expect(await s3.storage.remove(jobPrefix('job-rm'))).toBe(4);
    expect(await s3.storage.list(jobPrefix('job-rm'))).toEqual([]);
    expect(await s3.storage.getJson(jobDefinitionKey('job-rm', 1))).toBeNull();
    expect(await s3.storage.getJson(jobDefinitionKey('job-rm-other', 1))).toEqual({ keep: true });
    expect(await s3.storage.remove(jobPrefix('job-rm'))).toBe(0);
  });

  it('refuses to remove by a prefix that is not a folder', async () => {
    await s3.storage.putJson(jobDefinitionKey('job-guard', 1), {});
    for (const prefix of ['', '/', 'jobs/job-guard'])
      await expect(s3.storage.remove(prefix), prefix).rejects.toThrow(/must be a folder ending with "\/"/);
    expect(await s3.storage.list(jobPrefix('job-guard'))).toHaveLength(1);
  });

  it('keeps two buckets on one server apart', async () => {
    const a = otherBucket(`${s3.bucket}-a`);
    const b = otherBucket(`${s3.bucket}-b`);
    try {
      await Promise.all([a.ensureBucket(), b.ensureBucket()]);
      const key = runContextKey('shared-run-id');
      await a.putJson(key, { from: 'a' });
      expect(await b.getJson(key)).toBeNull();
      await b.putJson(key, { from: 'b' });
      expect(await a.getJson(key)).toEqual({ from: 'a' });
      expect(await b.getJson(key)).toEqual({ from: 'b' });
      expect(await a.remove(runPrefix('shared-run-id'))).toBe(1);
      expect(await b.list('runs/')).toEqual([key]);
    } finally {
      await Promise.all([a.close(), b.close()]);
    }
  });

  it('ensureBucket is idempotent, also when two callers race', async () => {
    const c = otherBucket(`${s3.bucket}-c`);
    const d = otherBucket(`${s3.bucket}-c`);
    try {
      await Promise.all([c.ensureBucket(), d.ensureBucket(), c.ensureBucket()]);
      await c.ensureBucket();
      await expect(d.ping()).resolves.toBeUndefined();
    } finally {
      await Promise.all([c.close(), d.close()]);
    }
  });

  it('ping fails for a missing bucket, naming it', async () => {
    const missing = otherBucket(`${s3.bucket}-missing`);
    try {
      await expect(missing.ping()).rejects.toThrow(`bucket ${s3.bucket}-missing does not exist`);
      // A missing bucket is an error for reads too, never "no such document".
      await expect(missing.getJson('a.json')).rejects.toThrow(StorageError);
    } finally {
      await missing.close();
    }
  });

  it('a server that does not answer fails every call within the timeout, naming the endpoint', async () => {
    const silent = await tcpServer();
    const storage = createStorage({
      endpoint: `http://127.0.0.1:${silent.port}`,
      region: 'us-east-1',
      bucket: 'chronos',
      accessKey: 'a',
      secretKey: 'b',
      timeoutMs: 300,
    });
    try {
      await expect(storage.ping()).rejects.toThrow(
        new RegExp(
          `^S3 at http://127\\.0\\.0\\.1:${silent.port}: check bucket chronos failed: .*no answer within 300 ms`,
        ),
      );
      await expect(storage.getJson('a.json')).rejects.toThrow(/no answer within 300 ms/);
    } finally {
      await storage.close();
      await silent.close();
    }
  });

  it('the test server keeps its data in a folder of its own, removed on stop', async () => {
    const own = await startTestStorage('Own Label!');
    expect(own.bucket).toMatch(/^chronos-test-own-label-[0-9a-f]{8}$/);
    expect(own.endpoint).not.toBe(s3.endpoint);
    await own.storage.putJson('a/b.json', { ok: 1 });
    expect(existsSync(own.directory)).toBe(true);
    await own.stop();
    expect(existsSync(own.directory)).toBe(false);
    expect(await s3.storage.getJson('a/b.json')).toBeNull();
  });
});
