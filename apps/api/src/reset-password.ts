import { newId } from '@chronos/core';
import type { Db } from '@chronos/db';
import { BCRYPT_COST, hashPassword } from './auth/passwords.ts';

/** Who reset a password from the command line, for the audit trail. */
export interface ResetOrigin {
  /** The operating-system account that ran the command. */
  osUser: string;
  host: string;
}

/**
 * Sets a user's password from the server's command line (a lost admin password): stores its bcrypt
 * hash, bumps the token version and revokes every refresh token (every session signs in again),
 * and writes a PASSWORD_RESET audit event naming the command, in one transaction. The account's
 * roles and active flag are left as they are.
 * @returns null when no user has that e-mail (any case).
 */
export async function resetPassword(
  db: Db,
  input: { email: string; password: string; origin: ResetOrigin },
): Promise<{ userId: string; email: string } | null> {
  // Hashed before the transaction: bcrypt takes a while.
  const passwordHash = await hashPassword(input.password, BCRYPT_COST);
  return db.$transaction(async (tx) => {
    const user = await tx.user.findFirst({
      where: { email: { equals: input.email.trim(), mode: 'insensitive' } },
      select: { id: true, email: true },
    });
    if (!user) return null;
    await tx.user.update({
      where: { id: user.id },
      data: { passwordHash, tokenVersion: { increment: 1 } },
    });
    await tx.refreshToken.updateMany({
      where: { userId: user.id, revokedAt: null },
      data: { revokedAt: new Date() },
    });
    await tx.auditEvent.create({
      data: {
        id: newId(),
        entityType: 'user',
        entityId: user.id,
        action: 'PASSWORD_RESET',
        userId: null,
        userEmail: null,
        details: { via: 'admin:reset-password', osUser: input.origin.osUser, host: input.origin.host },
      },
    });
    return { userId: user.id, email: user.email };
  });
}
