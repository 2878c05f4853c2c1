import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { newId } from '@chronos/core';
import { createTestDatabase, type TestDatabase } from '@chronos/db/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hashPassword, verifyPassword } from '../src/auth/passwords.ts';
import { seedBuiltinRoles } from '../src/bootstrap.ts';

const CLI = fileURLToPath(new URL('../src/reset-password-cli.ts', import.meta.url));
let tdb: TestDatabase;

beforeAll(async () => {
  tdb = await createTestDatabase('reset-password');
  await seedBuiltinRoles(tdb.db);
});

afterAll(async () => {
  await tdb?.drop();
});

/** Runs the command as `pnpm admin:reset-password` does, with `stdin` piped in (or none). */
function run(args: string[], opts: { stdin?: string; env?: Record<string, string> } = {}) {
  return new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', CLI, ...args], {
      env: { ...process.env, DATABASE_URL: tdb.url, CHRONOS_NEW_PASSWORD: '', ...opts.env },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
    child.stdin.end(opts.stdin ?? '');
  });
}

async function admin(email: string) {
  const id = newId();
  const role = await tdb.db.role.findUniqueOrThrow({ where: { name: 'ADMIN' } });
  await tdb.db.user.create({
    data: {
      id,
      email,
      passwordHash: await hashPassword('the lost one', 4),
      roles: { create: { roleId: role.id } },
    },
  });
  await tdb.db.refreshToken.create({
    data: {
      id: newId(),
      userId: id,
      familyId: newId(),
      tokenHash: newId().padEnd(64, '0'),
      tokenVersion: 0,
      expiresAt: new Date(Date.now() + 86_400_000),
    },
  });
  return id;
}

describe('pnpm admin:reset-password <email>', () => {
  it('sets the password read from stdin, signs every session out and audits it', async () => {
    const id = await admin('lost@example.test');
    const res = await run(['LOST@example.test'], { stdin: 'a new long password\n' });
    expect(res.stderr).toBe('');
    expect(res.code).toBe(0);
    expect(res.stdout).toBe(
      'admin:reset-password: password of lost@example.test set; every session of theirs is signed out\n',
    );
    const user = await tdb.db.user.findUniqueOrThrow({ where: { id } });
    expect(await verifyPassword('a new long password', user.passwordHash)).toBe(true);
    expect(await verifyPassword('the lost one', user.passwordHash)).toBe(false);
    expect(user.passwordHash).toMatch(/^\$2b\$12\$/);
    expect(user.tokenVersion).toBe(1);
    expect(await tdb.db.refreshToken.count({ where: { userId: id, revokedAt: null } })).toBe(0);
    const events = await tdb.db.auditEvent.findMany({ where: { entityId: id, action: 'PASSWORD_RESET' } });
    expect(events).toHaveLength(1);
    expect(events[0]?.details).toMatchObject({ via: 'admin:reset-password' });
  });

  it('takes the password from CHRONOS_NEW_PASSWORD', async () => {
    const id = await admin('env@example.test');
    const res = await run(['env@example.test'], { env: { CHRONOS_NEW_PASSWORD: 'from the environment' } });
    expect(res.code).toBe(0);
    const user = await tdb.db.user.findUniqueOrThrow({ where: { id } });
    expect(await verifyPassword('from the environment', user.passwordHash)).toBe(true);
  });

  it('refuses an unknown e-mail, a short password and a missing e-mail in one line, changing nothing', async () => {
    const id = await admin('kept@example.test');
    const before = await tdb.db.user.findUniqueOrThrow({ where: { id } });
    const unknown = await run(['ghost@example.test'], { stdin: 'a new long password' });
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toBe('admin:reset-password: no user has the e-mail "ghost@example.test"\n');
    const short = await run(['kept@example.test'], { stdin: 'short' });
    expect(short.code).toBe(1);
    expect(short.stderr).toBe('admin:reset-password: the new password must be at least 8 characters\n');
    const none = await run([]);
    expect(none.code).toBe(1);
    expect(none.stderr).toMatch(/^admin:reset-password: usage: pnpm admin:reset-password <email>/);
    const after = await tdb.db.user.findUniqueOrThrow({ where: { id } });
    expect(after.passwordHash).toBe(before.passwordHash);
    expect(after.tokenVersion).toBe(before.tokenVersion);
    expect(await tdb.db.auditEvent.count({ where: { entityId: id, action: 'PASSWORD_RESET' } })).toBe(0);
  });
});
