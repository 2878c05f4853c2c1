// GET /jobs: owner scoping, filters, sorts and cursor pagination (page size capped at 200).
import { newId } from '@chronos/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApi, type TestApi } from './harness.ts';
import { dummyJob, httpJob } from './jobs-fixtures.ts';

interface Item {
  id: string;
  name: string;
  type: string;
  status: string;
  priority: 'LOW' | 'MEDIUM' | 'HIGH';
  ownerId: string;
  nextFireAt: string | null;
  createdAt: string;
  updatedAt: string;
}

let t: TestApi;
let alice: { id: string; token: string };
let bob: { id: string; token: string };
/** Alice's jobs as the API answered them after the setup below. */
let mine: Item[];

/** Hours from now, as a daily cron at that UTC hour (distinct next fire times). */
const dailyAt = (hour: number) => ({ type: 'CRON', cronExpression: `0 ${hour} * * *`, timezone: 'UTC' });

beforeAll(async () => {
  t = await startTestApi('jobs-list');
  [alice, bob] = await Promise.all([t.user(['USER']), t.user(['USER'])]);
  const defs = [
    { ...dummyJob('alpha'), priority: 'HIGH', schedule: dailyAt(5) },
    { ...dummyJob('bravo'), priority: 'LOW', schedule: dailyAt(3) },
    { ...httpJob('charlie'), priority: 'MEDIUM' },
    { ...dummyJob('delta'), priority: 'HIGH', triggers: { scheduled: false } },
    { ...dummyJob('echo'), priority: 'LOW', schedule: dailyAt(7) },
    { ...dummyJob('foxtrot'), schedule: dailyAt(3) },
    { ...dummyJob('golf'), priority: 'HIGH', schedule: dailyAt(9) },
  ];
  for (const body of defs) {
    const res = await t.call('post', '/jobs', { token: alice.token, body });
    if (res.status !== 201) throw new Error(res.text);
  }
  const echo = await t.db.job.findFirstOrThrow({ where: { name: 'echo', ownerId: alice.id } });
  await t.call('post', `/jobs/${echo.id}/pause`, { token: alice.token });
  await t.call('post', '/jobs', { token: bob.token, body: dummyJob('bobs-alpha') });
  mine = (await t.call('get', '/jobs?limit=200', { token: alice.token })).body.items;
});

afterAll(async () => {
  await t?.stop();
});

/** Follows nextCursor from the first page to the last. */
async function walk(query: string, token: string, limit = 2): Promise<Item[]> {
  const all: Item[] = [];
  let cursor: string | null = null;
  do {
    const res: { status: number; body: { items: Item[]; nextCursor: string | null } } = await t.call(
      'get',
      `/jobs?${query}&limit=${limit}${cursor ? `&cursor=${cursor}` : ''}`,
      { token },
    );
    expect(res.status).toBe(200);
    expect(res.body.items.length).toBeLessThanOrEqual(limit);
    all.push(...res.body.items);
    cursor = res.body.nextCursor;
  } while (cursor);
  return all;
}

const RANK = { LOW: 0, MEDIUM: 1, HIGH: 2 };
/** The order each sort promises: the field, then id descending; no next fire time sorts last. */
function expected(sort: string): string[] {
  const desc = sort.startsWith('-');
  const field = sort.replace('-', '') as keyof Item;
  const key = (i: Item): string | number | null =>
    field === 'priority' ? RANK[i.priority] : field === 'nextFireAt' ? i.nextFireAt : (i[field] as string);
  return [...mine]
    .sort((a, b) => {
      const ka = key(a);
      const kb = key(b);
      if (ka === null || kb === null) {
        if (ka !== kb) return ka === null ? 1 : -1;
      } else if (ka !== kb) return (ka < kb ? -1 : 1) * (desc ? -1 : 1);
      return a.id < b.id ? 1 : -1;
    })
    .map((i) => i.name);
}

describe('GET /jobs', () => {
  it('shows a user only their own jobs, newest first, without payloads', async () => {
    expect(mine.map((j) => j.name)).toEqual([
      'golf',
      'foxtrot',
      'echo',
      'delta',
      'charlie',
      'bravo',
      'alpha',
    ]);
    expect(mine.every((j) => j.ownerId === alice.id)).toBe(true);
    expect(mine[0]).not.toHaveProperty('payload');
    const bobs = (await t.call('get', '/jobs', { token: bob.token })).body.items;
    expect(bobs.map((j: Item) => j.name)).toEqual(['bobs-alpha']);
  });

  it('filters by type, status, priority and name (contains, any case)', async () => {
    const names = async (q: string) =>
      (await t.call('get', `/jobs?${q}`, { token: alice.token })).body.items.map((j: Item) => j.name);
    expect(await names('type=HTTP')).toEqual(['charlie']);
    expect(await names('status=PAUSED')).toEqual(['echo']);
    expect(await names('status=PENDING')).toEqual(['delta']);
    expect(await names('priority=HIGH')).toEqual(['golf', 'delta', 'alpha']);
    expect(await names('name=LPH')).toEqual(['alpha']);
    expect(await names('name=o&priority=LOW')).toEqual(['echo', 'bravo']);
  });

  it('filters by next run between two instants', async () => {
    const bravo = mine.find((j) => j.name === 'bravo') as Item;
    const names = (
      await t.call('get', `/jobs?nextRunFrom=${bravo.nextFireAt}&nextRunTo=${bravo.nextFireAt}`, {
        token: alice.token,
      })
    ).body.items.map((j: Item) => j.name);
    expect(names).toEqual(['foxtrot', 'bravo']);
  });

  it('lets an admin see every owner, or one with ownerId; a user’s ownerId is ignored', async () => {
    const admin = await t.adminToken();
    const all = (await t.call('get', '/jobs?limit=200', { token: admin })).body.items;
    expect(all).toHaveLength(8);
    const bobs = (await t.call('get', `/jobs?ownerId=${bob.id}`, { token: admin })).body.items;
    expect(bobs.map((j: Item) => j.name)).toEqual(['bobs-alpha']);
    const sneaky = (await t.call('get', `/jobs?ownerId=${bob.id}`, { token: alice.token })).body.items;
    expect(sneaky).toHaveLength(7);
    expect(sneaky.every((j: Item) => j.ownerId === alice.id)).toBe(true);
  });

  for (const sort of [
    'name',
    '-name',
    'createdAt',
    '-createdAt',
    'updatedAt',
    'priority',
    '-priority',
    'nextFireAt',
    '-nextFireAt',
  ]) {
    it(`sorts by ${sort} and walks every job exactly once page by page`, async () => {
      const walked = await walk(`sort=${sort}`, alice.token);
      expect(walked.map((j) => j.name)).toEqual(expected(sort));
    });
  }

  it('refuses an unknown sort, filter value or cursor with the field named', async () => {
    for (const [q, path] of [
      ['sort=owner', 'sort'],
      ['status=DONE', 'status'],
      ['nextRunFrom=yesterday', 'nextRunFrom'],
      ['cursor=nonsense', 'cursor'],
    ]) {
      const res = await t.call('get', `/jobs?${q}`, { token: alice.token });
      expect(res.status, q).toBe(400);
      expect(res.body.errors.map((e: { path: string }) => e.path)).toEqual([path]);
    }
    expect((await t.call('get', '/jobs')).status).toBe(401);
  });

  it('caps a page at 200 items however many are asked for', async () => {
    const carol = await t.user(['USER']);
    const ids = Array.from({ length: 205 }, () => newId());
    await t.db.job.createMany({
      data: ids.map((id, i) => ({ id, ownerId: carol.id, name: `bulk${i}`, type: 'DUMMY' })),
    });
    await t.db.jobSchedule.createMany({
      data: ids.map((jobId) => ({ jobId, scheduleType: 'INTERVAL', intervalSeconds: 60 })),
    });
    const first = await t.call('get', '/jobs?limit=1000', { token: carol.token });
    expect(first.status).toBe(200);
    expect(first.body.items).toHaveLength(200);
    const rest = await t.call('get', `/jobs?limit=1000&cursor=${first.body.nextCursor}`, {
      token: carol.token,
    });
    expect(rest.body.items).toHaveLength(5);
    expect(rest.body.nextCursor).toBeNull();
    const seen = new Set([...first.body.items, ...rest.body.items].map((j: Item) => j.id));
    expect(seen.size).toBe(205);
  });
});
