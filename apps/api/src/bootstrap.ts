import { randomBytes } from 'node:crypto';
import { BUILTIN_ROLES, newId } from '@chronos/core';
import type { Db } from '@chronos/db';
import { BCRYPT_COST, hashPassword } from './auth/passwords.ts';

export { BCRYPT_COST };

/** Creates or refreshes the built-in roles (ADMIN, OPERATOR, VIEWER, USER). Idempotent. */
export async function seedBuiltinRoles(db: Db): Promise<void> {
  for (const role of BUILTIN_ROLES) {
    await db.role.upsert({
      where: { name: role.name },
      create: {
        name: role.name,
        description: role.description,
        permissions: [...role.permissions],
        isBuiltin: true,
      },
      update: { description: role.description, permissions: [...role.permissions], isBuiltin: true },
    });
  }
}

export interface InitialAdmin {
  email: string;
  /** Set only when the password was generated: it must be shown once, then it is gone. */
  generatedPassword?: string;
}

/**
 * On first start (no user at all) creates an ADMIN user from the given e-mail and password, or with a
 * generated password that the caller prints once. Returns null when users already exist. Safe when
 * several API replicas start at once: a transaction-scoped advisory lock serialises them.
 */
export async function ensureInitialAdmin(
  db: Db,
  opts: { email: string; password?: string | undefined },
): Promise<InitialAdmin | null> {
  if ((await db.user.count()) > 0) return null;
  // Hashed before the transaction: bcrypt takes a while (longer on a loaded machine), and replicas
  // starting at once wait for the lock one after the other within their transaction's timeout.
  const generatedPassword = opts.password ? undefined : randomBytes(18).toString('base64url');
  const passwordHash = await hashPassword(opts.password ?? (generatedPassword as string), BCRYPT_COST);
  return db.$transaction(
    async (tx) => {
      await tx.$executeRaw`SELECT pg_advisory_xact_lock(hashtext('chronos:initial-admin'))`;
      if ((await tx.user.count()) > 0) return null;
      const admin = await tx.role.findUniqueOrThrow({ where: { name: 'ADMIN' } });
      await tx.user.create({
        data: {
          id: newId(),
          email: opts.email.toLowerCase(),
          passwordHash,
          displayName: 'Administrator',
          roles: { create: { roleId: admin.id } },
        },
      });
      return generatedPassword ? { email: opts.email, generatedPassword } : { email: opts.email };
    },
    { timeout: 30_000, maxWait: 30_000 },
  );
}
