import { newId } from '@chronos/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { withAuditRefused } from './admin-helpers.ts';
import { startTestApi, type Reply, type TestApi } from './harness.ts';
import { ownedJob } from './owned-job.ts';

let t: TestApi;
let admin: string;
let alice: { id: string; token: string };
let bob: { id: string; token: string };
let viewer: { id: string; token: string };
let aliceJob: string;

/** A sensitive value that must never come back in any answer or audit record. */
const SECRET = 'sk-live-7f3a9c1e5b2d';

function expectNoSecret(...replies: Reply[]) {
  for (const reply of replies) expect(reply.text).not.toContain(SECRET);
}

beforeAll(async () => {
  t = await startTestApi('variables');
  admin = await t.adminToken();
  [alice, bob, viewer] = await Promise.all([t.user(['USER']), t.user(['USER']), t.user(['VIEWER'])]);
  aliceJob = await ownedJob(t, alice.id);
});

afterAll(async () => {
  await t?.stop();
});

describe('global variables (/variables, administrators only)', () => {
  it('creates, reads, lists, replaces and deletes a plain variable, auditing each change', async () => {
    const created = await t.call('post', '/variables', {
      token: admin,
      body: { name: 'BASE_URL', value: 'https://example.test', description: 'where to call' },
    });
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({
      name: 'BASE_URL',
      scope: 'GLOBAL',
      jobId: null,
      value: 'https://example.test',
      isSensitive: false,
      description: 'where to call',
    });
    const id = created.body.id as string;

    const got = await t.call('get', `/variables/${id}`, { token: admin });
    expect(got.status).toBe(200);
    expect(got.body).toEqual(created.body);

    const list = await t.call('get', '/variables?name=base', { token: admin });
    expect(list.status).toBe(200);
    expect(list.body.items.map((v: { id: string }) => v.id)).toEqual([id]);

    const put = await t.call('put', `/variables/${id}`, {
      token: admin,
      body: { value: 'https://other.test', isSensitive: false },
    });
    expect(put.status).toBe(200);
    expect(put.body).toMatchObject({ value: 'https://other.test', description: null });

    const deleted = await t.call('delete', `/variables/${id}`, { token: admin });
    expect(deleted.status).toBe(204);
    expect((await t.call('get', `/variables/${id}`, { token: admin })).status).toBe(404);

    const events = await t.db.auditEvent.findMany({ where: { entityId: id }, orderBy: { timestamp: 'asc' } });
    expect(events.map((e) => e.action)).toEqual(['CREATED', 'UPDATED', 'DELETED']);
  });

  it('writes a change and its audit event together: when the event cannot be written, nothing changes', async () => {
    const name = `UNAUDITABLE_${Date.now()}`;
    await withAuditRefused(t, { name }, async () => {
      const refused = await t.call('post', '/variables', { token: admin, body: { name, value: 'v1' } });
      expect(refused.status).toBe(500);
      expect(await t.db.variable.count({ where: { name } })).toBe(0);
    });
    const created = await t.call('post', '/variables', { token: admin, body: { name, value: 'v1' } });
    expect(created.status).toBe(201);
    await withAuditRefused(t, { name }, async () => {
      for (const [method, body] of [
        ['put', { value: 'v2', isSensitive: false }],
        ['patch', { description: 'changed' }],
      ] as const) {
        const res = await t.call(method, `/variables/${created.body.id}`, { token: admin, body });
        expect(res.status, method).toBe(500);
      }
      const row = await t.db.variable.findUniqueOrThrow({ where: { id: created.body.id } });
      expect([row.value, row.description]).toEqual(['v1', null]);
    });
  });

  it('refuses anyone but an administrator (403), and anonymous callers (401)', async () => {
    expect((await t.call('get', '/variables', { token: alice.token })).status).toBe(403);
    const post = await t.call('post', '/variables', { token: alice.token, body: { name: 'X', value: 'y' } });
    expect(post.status).toBe(403);
    expect((await t.call('get', '/variables')).status).toBe(401);
  });

  it('gives a global variable to another owner when the admin says so, and checks the owner exists', async () => {
    const forAlice = await t.call('post', '/variables', {
      token: admin,
      body: { name: 'REGION', value: 'eu-1', ownerId: alice.id },
    });
    expect(forAlice.status).toBe(201);
    expect(forAlice.body.ownerId).toBe(alice.id);
    // Names are unique per owner: the admin's own REGION is another variable.
    const own = await t.call('post', '/variables', { token: admin, body: { name: 'REGION', value: 'us-1' } });
    expect(own.status).toBe(201);
    const again = await t.call('post', '/variables', {
      token: admin,
      body: { name: 'REGION', value: 'ap-1', ownerId: alice.id },
    });
    expect(again.status).toBe(409);
    const filtered = await t.call('get', `/variables?ownerId=${alice.id}`, { token: admin });
    expect(filtered.body.items.map((v: { id: string }) => v.id)).toEqual([forAlice.body.id]);

    const ghost = await t.call('post', '/variables', {
      token: admin,
      body: { name: 'GHOST', value: 'x', ownerId: newId() },
    });
    expect(ghost.status).toBe(400);
    expect(ghost.body.errors).toEqual([{ path: 'ownerId', message: 'no such user' }]);
  });

  it('refuses names a template cannot reference, naming the field', async () => {
    for (const name of ['1ABC', 'with-dash', 'a.b', '', 'x'.repeat(129)]) {
      const res = await t.call('post', '/variables', { token: admin, body: { name, value: 'v' } });
      expect(res.status, name).toBe(400);
      expect(res.body.errors.map((e: { path: string }) => e.path)).toEqual(['name']);
    }
    const missing = await t.call('post', '/variables', { token: admin, body: { name: 'OK_NAME' } });
    expect(missing.status).toBe(400);
    expect(missing.body.errors.map((e: { path: string }) => e.path)).toEqual(['value']);
  });
});

describe('sensitive variables', () => {
  it('are write-only: masked in every answer and audit record, ciphertext in the database', async () => {
    const created = await t.call('post', `/jobs/${aliceJob}/variables`, {
      token: alice.token,
      body: { name: 'API_KEY', value: SECRET, isSensitive: true },
    });
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({ name: 'API_KEY', value: null, isSensitive: true, jobId: aliceJob });
    const id = created.body.id as string;

    const row = await t.db.variable.findUniqueOrThrow({ where: { id } });
    expect(row.value).not.toContain(SECRET);
    expect(row.value).toMatch(/^v1:/);
    expect(row.keyId).toBe(t.deps.secretBox?.currentKeyId);
    expect(t.deps.secretBox?.decrypt(row.value, id)).toBe(SECRET);

    const replies = [
      created,
      await t.call('get', `/jobs/${aliceJob}/variables/${id}`, { token: alice.token }),
      await t.call('get', `/jobs/${aliceJob}/variables`, { token: alice.token }),
      await t.call('get', `/jobs/${aliceJob}/variables`, { token: admin }),
      await t.call('patch', `/jobs/${aliceJob}/variables/${id}`, {
        token: alice.token,
        body: { description: 'the partner API key' },
      }),
      await t.call('get', `/jobs/${aliceJob}`, { token: alice.token }),
    ];
    expect(replies.map((r) => r.status)).toEqual([201, 200, 200, 200, 200, 200]);
    expectNoSecret(...replies);
    expect(replies[1]?.body.value).toBeNull();
    expect(replies[4]?.body).toMatchObject({
      value: null,
      isSensitive: true,
      description: 'the partner API key',
    });
    // A description-only change leaves the ciphertext as it was.
    expect((await t.db.variable.findUniqueOrThrow({ where: { id } })).value).toBe(row.value);

    const audits = await t.db.auditEvent.findMany({ where: { entityType: 'variable', entityId: id } });
    expect(audits.length).toBeGreaterThanOrEqual(2);
    expect(JSON.stringify(audits)).not.toContain(SECRET);
  });

  it('become non-sensitive only with a new value; a plain value turning sensitive is encrypted', async () => {
    const created = await t.call('post', `/jobs/${aliceJob}/variables`, {
      token: alice.token,
      body: { name: 'TOKEN', value: SECRET, isSensitive: true },
    });
    const path = `/jobs/${aliceJob}/variables/${created.body.id}`;
    const bare = await t.call('patch', path, { token: alice.token, body: { isSensitive: false } });
    expect(bare.status).toBe(400);
    expect(bare.body.errors.map((e: { path: string }) => e.path)).toEqual(['value']);

    const plain = await t.call('patch', path, {
      token: alice.token,
      body: { isSensitive: false, value: 'public' },
    });
    expect(plain.status).toBe(200);
    expect(plain.body).toMatchObject({ value: 'public', isSensitive: false });
    expect((await t.db.variable.findUniqueOrThrow({ where: { id: created.body.id } })).value).toBe('public');

    const sealed = await t.call('patch', path, { token: alice.token, body: { isSensitive: true } });
    expect(sealed.status).toBe(200);
    expect(sealed.body).toMatchObject({ value: null, isSensitive: true });
    const row = await t.db.variable.findUniqueOrThrow({ where: { id: created.body.id } });
    expect(row.value).not.toBe('public');
    expect(t.deps.secretBox?.decrypt(row.value, row.id)).toBe('public');
  });

  it('are refused with a clear message when the deployment has no ENCRYPTION_KEY', async () => {
    const box = t.deps.secretBox;
    t.deps.secretBox = undefined;
    try {
      const res = await t.call('post', `/jobs/${aliceJob}/variables`, {
        token: alice.token,
        body: { name: 'NO_KEY', value: SECRET, isSensitive: true },
      });
      expect(res.status).toBe(400);
      expect(res.body.detail).toMatch(/ENCRYPTION_KEY/);
      expect(res.body.errors.map((e: { path: string }) => e.path)).toEqual(['isSensitive']);
    } finally {
      t.deps.secretBox = box;
    }
    expect(await t.db.variable.count({ where: { name: 'NO_KEY' } })).toBe(0);
  });

  it('need a value long enough to be masked', async () => {
    const res = await t.call('post', `/jobs/${aliceJob}/variables`, {
      token: alice.token,
      body: { name: 'SHORT', value: 'ab', isSensitive: true },
    });
    expect(res.status).toBe(400);
    expect(res.body.errors.map((e: { path: string }) => e.path)).toEqual(['value']);
  });
});

describe('job variables (/jobs/:id/variables)', () => {
  it('belong to the job’s owner whatever the body says (mass assignment is refused)', async () => {
    const refused = await t.call('post', `/jobs/${aliceJob}/variables`, {
      token: alice.token,
      body: { name: 'OWNED', value: 'v', ownerId: bob.id, scope: 'GLOBAL', jobId: 'x', id: 'y' },
    });
    expect(refused.status, refused.text).toBe(400);
    expect(refused.body.errors.map((e: { path: string }) => e.path).sort()).toEqual([
      'id',
      'jobId',
      'ownerId',
      'scope',
    ]);
    expect(await t.db.variable.count({ where: { name: 'OWNED' } })).toBe(0);
    const res = await t.call('post', `/jobs/${aliceJob}/variables`, {
      token: alice.token,
      body: { name: 'OWNED', value: 'v' },
    });
    expect(res.status).toBe(201);
    expect(res.body).toMatchObject({ ownerId: alice.id, scope: 'JOB', jobId: aliceJob });
    expect(res.body.id).not.toBe('y');
    // An admin working on alice's job creates alice's variable too.
    const byAdmin = await t.call('post', `/jobs/${aliceJob}/variables`, {
      token: admin,
      body: { name: 'BY_ADMIN', value: 'v' },
    });
    expect(byAdmin.body.ownerId).toBe(alice.id);
  });

  it('answers 404 to another owner for every endpoint, and leaves the variable alone', async () => {
    const created = await t.call('post', `/jobs/${aliceJob}/variables`, {
      token: alice.token,
      body: { name: 'MINE', value: 'v' },
    });
    const item = `/jobs/${aliceJob}/variables/${created.body.id}`;
    const replies = await Promise.all([
      t.call('get', `/jobs/${aliceJob}/variables`, { token: bob.token }),
      t.call('post', `/jobs/${aliceJob}/variables`, { token: bob.token, body: { name: 'HIS', value: 'v' } }),
      t.call('get', item, { token: bob.token }),
      t.call('put', item, { token: bob.token, body: { value: 'x', isSensitive: false } }),
      t.call('patch', item, { token: bob.token, body: { value: 'x' } }),
      t.call('delete', item, { token: bob.token }),
    ]);
    expect(replies.map((r) => r.status)).toEqual([404, 404, 404, 404, 404, 404]);
    expect((await t.call('get', item, { token: alice.token })).body.value).toBe('v');
    // A variable id of another job does not open through this job either.
    const bobJob = await ownedJob(t, bob.id);
    expect(
      (await t.call('get', `/jobs/${bobJob}/variables/${created.body.id}`, { token: bob.token })).status,
    ).toBe(404);
  });

  it('needs variable:read / variable:write (403) and a token (401)', async () => {
    expect((await t.call('get', `/jobs/${aliceJob}/variables`, { token: viewer.token })).status).toBe(403);
    const post = await t.call('post', `/jobs/${aliceJob}/variables`, {
      token: viewer.token,
      body: { name: 'V', value: 'v' },
    });
    expect(post.status).toBe(403);
    expect((await t.call('get', `/jobs/${aliceJob}/variables`)).status).toBe(401);
  });

  it('keeps names unique per job (409) and unchangeable (400)', async () => {
    const first = await t.call('post', `/jobs/${aliceJob}/variables`, {
      token: alice.token,
      body: { name: 'ONCE_ONLY', value: 'a' },
    });
    const dup = await t.call('post', `/jobs/${aliceJob}/variables`, {
      token: alice.token,
      body: { name: 'ONCE_ONLY', value: 'b' },
    });
    expect(dup.status).toBe(409);
    const other = await ownedJob(t, alice.id);
    const elsewhere = await t.call('post', `/jobs/${other}/variables`, {
      token: alice.token,
      body: { name: 'ONCE_ONLY', value: 'c' },
    });
    expect(elsewhere.status).toBe(201);

    const item = `/jobs/${aliceJob}/variables/${first.body.id}`;
    const rename = await t.call('patch', item, { token: alice.token, body: { name: 'RENAMED' } });
    expect(rename.status).toBe(400);
    expect(rename.body.errors.map((e: { path: string }) => e.path)).toEqual(['name']);
    const same = await t.call('put', item, {
      token: alice.token,
      body: { name: 'ONCE_ONLY', value: 'z', isSensitive: false, description: 'd' },
    });
    expect(same.status).toBe(200);
    expect(same.body).toMatchObject({ name: 'ONCE_ONLY', value: 'z', description: 'd' });
    const incomplete = await t.call('put', item, { token: alice.token, body: { value: 'z' } });
    expect(incomplete.status).toBe(400);
    expect(incomplete.body.errors.map((e: { path: string }) => e.path)).toEqual(['isSensitive']);
  });

  it('caps the page size at 200 and pages on with the cursor', async () => {
    const job = await ownedJob(t, alice.id);
    await t.db.variable.createMany({
      data: Array.from({ length: 205 }, (_, i) => ({
        id: newId(),
        name: `V_${String(i).padStart(3, '0')}`,
        value: String(i),
        scope: 'JOB' as const,
        ownerId: alice.id,
        jobId: job,
      })),
    });
    const first = await t.call('get', `/jobs/${job}/variables?limit=1000`, { token: alice.token });
    expect(first.status).toBe(200);
    expect(first.body.items).toHaveLength(200);
    expect(first.body.items[0].name).toBe('V_000');
    const rest = await t.call('get', `/jobs/${job}/variables?limit=1000&cursor=${first.body.nextCursor}`, {
      token: alice.token,
    });
    expect(rest.body.items.map((v: { name: string }) => v.name)).toEqual([
      'V_200',
      'V_201',
      'V_202',
      'V_203',
      'V_204',
    ]);
    expect(rest.body.nextCursor).toBeNull();
  });

  it('answers 404 for a job that does not exist', async () => {
    expect((await t.call('get', `/jobs/${newId()}/variables`, { token: admin })).status).toBe(404);
  });
});
