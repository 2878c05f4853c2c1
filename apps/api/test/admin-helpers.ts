// Helpers for the administration, audit, stats and operations tests (pure functions over a TestApi).
import { newId, type Permission } from '@chronos/core';
import { expect } from 'vitest';
import { TEST_ENCRYPTION_KEY, TEST_JWT_SECRET, type Reply, type TestApi } from './harness.ts';

/** A bcrypt hash in any form ($2a$, $2b$, $2y$). */
const BCRYPT_HASH = /\$2[aby]\$\d{2}\$/;

/** No password hash, token version, signing secret or encryption key in an answer. */
export function expectNoSecrets(reply: Pick<Reply, 'text'>): void {
  expect(reply.text).not.toMatch(BCRYPT_HASH);
  expect(reply.text).not.toMatch(/passwordHash|password_hash|tokenVersion/);
  expect(reply.text).not.toContain(TEST_JWT_SECRET);
  expect(reply.text).not.toContain(TEST_ENCRYPTION_KEY);
}

/** A custom role straight in the database (for callers with unusual permission sets). */
export async function customRole(t: TestApi, permissions: Permission[], prefix = 'CUSTOM'): Promise<string> {
  const name = `${prefix}_${newId()}`;
  await t.db.role.create({ data: { name, permissions } });
  return name;
}

/** A 400 whose `errors[]` names exactly these field paths. */
export function expectFieldErrors(reply: Reply, paths: string[]): void {
  expect(reply.status, reply.text).toBe(400);
  expect(reply.headers.get('content-type')).toMatch(/^application\/problem\+json/);
  expect((reply.body.errors as { path: string }[]).map((e) => e.path).sort()).toEqual([...paths].sort());
}

/** Follows `nextCursor` from `path` until the last page; returns every item. */
export async function allPages<T>(t: TestApi, token: string, path: string): Promise<T[]> {
  const items: T[] = [];
  let cursor: string | null = null;
  do {
    const sep = path.includes('?') ? '&' : '?';
    const res: Reply = await t.call('get', cursor ? `${path}${sep}cursor=${cursor}` : path, { token });
    expect(res.status, res.text).toBe(200);
    items.push(...(res.body.items as T[]));
    cursor = res.body.nextCursor as string | null;
  } while (cursor);
  return items;
}

/** A page larger than the cap returns 200 items and a cursor to the rest. */
export async function expectPageCapped(t: TestApi, token: string, path: string): Promise<void> {
  const sep = path.includes('?') ? '&' : '?';
  const res = await t.call('get', `${path}${sep}limit=1000`, { token });
  expect(res.status, res.text).toBe(200);
  expect(res.body.items).toHaveLength(200);
  expect(res.body.nextCursor).toEqual(expect.any(String));
}

/**
 * Runs `fn` while this test file's database refuses the audit events of one entity, or whose
 * details name `name` (a trigger, dropped afterwards): for showing that a change and its audit event
 * commit together.
 */
export async function withAuditRefused(
  t: TestApi,
  of: { entityId: string } | { name: string },
  fn: () => Promise<void>,
): Promise<void> {
  const literal = (v: string) => `'${v.replaceAll("'", "''")}'`;
  const test =
    'entityId' in of
      ? `NEW.entity_id = ${literal(of.entityId)}`
      : `NEW.details->>'name' = ${literal(of.name)}`;
  await t.db.$executeRawUnsafe(`
    CREATE FUNCTION refuse_audit() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      IF ${test} THEN RAISE EXCEPTION 'audit refused'; END IF;
      RETURN NEW;
    END $$`);
  await t.db.$executeRawUnsafe(
    'CREATE TRIGGER refuse_audit BEFORE INSERT ON audit_events FOR EACH ROW EXECUTE FUNCTION refuse_audit()',
  );
  try {
    await fn();
  } finally {
    await t.db.$executeRawUnsafe('DROP TRIGGER refuse_audit ON audit_events');
    await t.db.$executeRawUnsafe('DROP FUNCTION refuse_audit()');
  }
}
