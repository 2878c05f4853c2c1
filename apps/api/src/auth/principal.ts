import type { Permission } from '@chronos/core';
import type { Db } from '@chronos/db';

/** The signed-in caller as the routes see it: re-read from Postgres on every request. */
export interface Principal {
  userId: string;
  email: string;
  roles: string[];
  permissions: ReadonlySet<Permission>;
  /** ADMIN sees and changes every owner's objects; everyone else only their own. */
  isAdmin: boolean;
  tokenVersion: number;
}

/**
 * Loads an active user's roles and permissions. Called per request, so a role change applies to
 * the very next request. Null when the user is gone or deactivated.
 */
export async function loadPrincipal(db: Db, userId: string): Promise<Principal | null> {
  const user = await db.user.findUnique({
    where: { id: userId },
    select: {
      id: true,
      email: true,
      isActive: true,
      tokenVersion: true,
      roles: { select: { role: { select: { name: true, permissions: true } } } },
    },
  });
  if (!user?.isActive) return null;
  const roles = user.roles.map((r) => r.role.name).sort();
  return {
    userId: user.id,
    email: user.email,
    roles,
    permissions: new Set(user.roles.flatMap((r) => r.role.permissions) as Permission[]),
    isAdmin: roles.includes('ADMIN'),
    tokenVersion: user.tokenVersion,
  };
}

/**
 * The owner filter for a list or lookup: nothing for ADMIN, else the caller's own objects. Routes
 * use it so another owner's object answers 404 (never 403, never the object).
 */
export function ownedBy(p: Principal): { ownerId?: string } {
  return p.isAdmin ? {} : { ownerId: p.userId };
}
