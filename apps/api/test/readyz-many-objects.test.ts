// The second start: an API whose object store already holds thousands of objects (definitions and
// run contexts of earlier days) starts and is ready. Its storage check is a listing of one key,
// which then needs a continuation token — the local s3rver answered 500 to that until patched.
import { fillStorage, startTestStorage, type TestStorage } from '@chronos/storage/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApi, type TestApi } from './harness.ts';

const OBJECTS = 2500;

let s3: TestStorage;
let t: TestApi;

beforeAll(async () => {
  s3 = await startTestStorage('readyz-many');
  await fillStorage(s3.storage, OBJECTS, { prefix: 'runs/' });
  // The harness's own store is left empty; this one, full before the API starts, is the API's.
  t = await startTestApi('readyz-many', s3.env);
}, 180_000);

afterAll(async () => {
  await t?.stop();
  await s3?.stop();
});

describe('an API over a store of thousands of objects', () => {
  it('starts and answers /readyz 200 with storage up', async () => {
    expect(t.deps.storage.bucket).toBe(s3.bucket);
    const res = await fetch(`${t.base}/readyz`);
    expect(await res.json()).toEqual({
      status: 'ready',
      checks: { postgres: 'up', redis: 'up', storage: 'up' },
    });
    expect(res.status).toBe(200);
  });

  it('still lists every object of the store it serves', async () => {
    expect(await t.deps.storage.list('runs/')).toHaveLength(OBJECTS);
  });
});
