import { createTestDatabase, type TestDatabase } from '@chronos/db/testing';
import bcrypt from 'bcrypt';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { ensureInitialAdmin, seedBuiltinRoles } from '../src/bootstrap.ts';

let tdb: TestDatabase;

beforeAll(async () => {
  tdb = await createTestDatabase('bootstrap');
});
afterAll(async () => {
  await tdb?.drop();
});
beforeEach(async () => {
  await tdb.db.user.deleteMany();
  await seedBuiltinRoles(tdb.db);
});

describe('first start', () => {
  it('with no password configured creates an admin with a generated password, once', async () => {
    const first = await ensureInitialAdmin(tdb.db, { email: 'Admin@Example.test' });
    expect(first?.generatedPassword).toMatch(/^[A-Za-z0-9_-]{24}$/);
    const user = await tdb.db.user.findUniqueOrThrow({ where: { email: 'admin@example.test' } });
    expect(await bcrypt.compare(first?.generatedPassword ?? '', user.passwordHash)).toBe(true);

    expect(await ensureInitialAdmin(tdb.db, { email: 'other@example.test' })).toBeNull();
    expect(await tdb.db.user.count()).toBe(1);
  });

  it('creates exactly one admin when several API replicas start at once', async () => {
    const results = await Promise.all(
      Array.from({ length: 4 }, (_, i) =>
        ensureInitialAdmin(tdb.db, { email: `admin${i}@example.test`, password: 'a-long-password' }),
      ),
    );
    expect(results.filter(Boolean)).toHaveLength(1);
    expect(await tdb.db.user.count()).toBe(1);
  });

  it('seeding roles twice changes nothing', async () => {
    const before = await tdb.db.role.findMany({ orderBy: { id: 'asc' } });
    await seedBuiltinRoles(tdb.db);
    const after = await tdb.db.role.findMany({ orderBy: { id: 'asc' } });
    expect(after.map(({ updatedAt: _u, ...r }) => r)).toEqual(before.map(({ updatedAt: _u, ...r }) => r));
  });
});
