import { ConflictError, NotFoundError, ValidationError, newId } from '@chronos/core';
import type { Db, Prisma } from '@chronos/db';
import { z } from 'zod';
import type { Principal } from '../auth/principal.ts';
import { BCRYPT_COST, hashPassword } from '../auth/passwords.ts';
import type { ApiDeps } from '../deps.ts';
import { audit } from '../http/audit.ts';
import { forbidden } from '../http/errors.ts';
import { pageOf, pageQuery, paginate } from '../http/pagination.ts';
import type { ApiRouter } from '../http/route.ts';
import { idParams, timestamp } from '../http/schemas.ts';
import { passwordSchema } from './auth.ts';
import { assertMayGrant } from './roles.ts';

const TAG = 'users';
const ADMIN_ROLE = 'ADMIN';

type Tx = Prisma.TransactionClient;

export const userSchema = z
  .object({
    id: z.string(),
    email: z.string(),
    displayName: z.string().nullable(),
    isActive: z.boolean(),
    roles: z.array(z.string()),
    lastLoginAt: timestamp.nullable(),
    createdAt: timestamp,
    updatedAt: timestamp,
  })
  .meta({ id: 'User' });

// Never the password hash or token version: responses are built from this selection only.
const userSelect = {
  id: true,
  email: true,
  displayName: true,
  isActive: true,
  lastLoginAt: true,
  createdAt: true,
  updatedAt: true,
  roles: { select: { role: { select: { name: true, permissions: true } } } },
} satisfies Prisma.UserSelect;

type UserRow = Prisma.UserGetPayload<{ select: typeof userSelect }>;

function toUser(row: UserRow): z.input<typeof userSchema> {
  return {
    ...row,
    roles: row.roles.map((r) => r.role.name).sort(),
    lastLoginAt: row.lastLoginAt?.toISOString() ?? null,
    createdAt: row.createdAt.toISOString(),
    updatedAt: row.updatedAt.toISOString(),
  };
}

const roleNames = z
  .array(z.string().trim().min(1).max(64))
  .max(32)
  .transform((names) => [...new Set(names.map((n) => n.toUpperCase()))]);

/** Role rows for the given names; unknown names are a 400 naming each `roles.<index>`. */
async function resolveRoles(db: Db | Tx, names: readonly string[]) {
  const rows = await db.role.findMany({
    where: { name: { in: [...names] } },
    select: { id: true, name: true, permissions: true },
  });
  const known = new Set(rows.map((r) => r.name));
  const unknown = names.flatMap((n, i) =>
    known.has(n) ? [] : [{ path: `roles.${i}`, message: `no role named ${n}` }],
  );
  if (unknown.length > 0)
    throw new ValidationError(`unknown role(s): ${unknown.map((u) => u.message).join('; ')}`, unknown);
  return rows;
}

/** Roles may only be handed out within the caller's own permissions; ADMIN only by an ADMIN. */
function assertMayAssign(
  principal: Principal,
  roles: readonly { name: string; permissions: string[] }[],
): void {
  if (!principal.isAdmin && roles.some((r) => r.name === ADMIN_ROLE))
    throw forbidden('Only administrators may grant or take the ADMIN role');
  assertMayGrant(
    principal,
    roles.flatMap((r) => r.permissions),
  );
}

async function findUser(db: Db | Tx, id: string): Promise<UserRow> {
  const user = await db.user.findUnique({ where: { id }, select: userSelect });
  if (!user) throw new NotFoundError('user', id);
  return user;
}

const isAdminRow = (user: UserRow) => user.roles.some((r) => r.role.name === ADMIN_ROLE);

/**
 * The target, when the caller may administer it: an administrator only by an administrator, and
 * anyone else only by a caller holding every permission the target holds — resetting a password
 * or reassigning roles must not hand the caller a more powerful identity.
 */
async function administrable(db: Db | Tx, principal: Principal, id: string): Promise<UserRow> {
  const user = await findUser(db, id);
  if (principal.isAdmin) return user;
  if (isAdminRow(user)) throw forbidden('Only administrators may change an administrator');
  assertMayGrant(
    principal,
    user.roles.flatMap((r) => r.role.permissions),
    'You cannot change a user who holds permissions you do not',
  );
  return user;
}

/**
 * Serialises every change that could remove an active administrator (delete, deactivate, role
 * change), so two concurrent changes cannot each believe the other administrator remains.
 */
async function lockAdmins(tx: Tx): Promise<void> {
  await tx.$executeRaw`SELECT pg_advisory_xact_lock(hashtext('chronos:active-admins'))`;
}

/** 409 unless an active administrator other than `userId` remains. Call under `lockAdmins`. */
async function assertAnotherAdmin(tx: Tx, userId: string, what: string): Promise<void> {
  const others = await tx.user.count({
    where: { id: { not: userId }, isActive: true, roles: { some: { role: { name: ADMIN_ROLE } } } },
  });
  if (others === 0) throw new ConflictError(`${what}: this is the last active administrator`);
}

/** Voids every access and refresh token of the user (password reset, deactivation). */
async function revokeTokens(tx: Tx, userId: string): Promise<void> {
  await tx.user.update({ where: { id: userId }, data: { tokenVersion: { increment: 1 } } });
  await tx.refreshToken.updateMany({ where: { userId, revokedAt: null }, data: { revokedAt: new Date() } });
}

const listQuery = pageQuery.extend({
  email: z.string().max(255).optional().describe('E-mail contains (case-insensitive)'),
  role: z.string().max(64).optional().describe('Holds this role'),
  isActive: z
    .enum(['true', 'false'])
    .transform((v) => v === 'true')
    .optional(),
});

const createBody = z.strictObject({
  email: z
    .email()
    .max(255)
    .transform((e) => e.toLowerCase()),
  password: passwordSchema,
  displayName: z.string().trim().max(255).nullable().optional(),
  roles: roleNames.default(['USER']).describe('Role names; USER when omitted'),
});

const patchBody = z.strictObject({
  displayName: z.string().trim().max(255).nullable().optional(),
  isActive: z.boolean().optional().describe('false signs the user out everywhere'),
  password: passwordSchema.optional().describe('Reset: revokes every token the user holds'),
});

/** `/users`: account administration (user:manage; role assignment needs role:assign). */
export function registerUserRoutes(api: ApiRouter, deps: ApiDeps): void {
  const { db } = deps;

  api.add({
    method: 'get',
    path: '/users',
    tag: TAG,
    summary: 'List users, newest first',
    permission: 'user:manage',
    query: listQuery,
    responses: { 200: { description: 'A page of users', schema: pageOf(userSchema) } },
    handler: ({ query }) => {
      const where: Prisma.UserWhereInput = {
        ...(query.email ? { email: { contains: query.email, mode: 'insensitive' } } : {}),
        ...(query.role ? { roles: { some: { role: { name: query.role.toUpperCase() } } } } : {}),
        ...(query.isActive !== undefined ? { isActive: query.isActive } : {}),
      };
      return paginate<UserRow, string, z.input<typeof userSchema>>(
        query,
        (args) =>
          db.user.findMany({
            ...args,
            where,
            select: userSelect,
            orderBy: [{ createdAt: 'desc' }, { id: 'desc' }],
          }),
        toUser,
      );
    },
  });

  api.add({
    method: 'post',
    path: '/users',
    tag: TAG,
    summary: 'Create a user',
    description:
      'A caller who is not ADMIN can only give roles whose permissions it holds itself, and never ADMIN.',
    permission: 'user:manage',
    body: createBody,
    status: 201,
    responses: {
      201: { description: 'Created', schema: userSchema },
      409: { description: 'The e-mail is taken' },
    },
    handler: async ({ body, principal, req, res }) => {
      const roles = await resolveRoles(db, body.roles);
      assertMayAssign(principal, roles);
      if (await db.user.findUnique({ where: { email: body.email }, select: { id: true } }))
        throw new ConflictError(`a user with e-mail ${body.email} already exists`);
      const passwordHash = await hashPassword(body.password, BCRYPT_COST);
      const user = await db.$transaction(async (tx) => {
        const created = await tx.user.create({
          data: {
            id: newId(),
            email: body.email,
            passwordHash,
            displayName: body.displayName ?? null,
            roles: { create: roles.map((r) => ({ roleId: r.id, assignedById: principal.userId })) },
          },
          select: userSelect,
        });
        await audit(tx, req, {
          entityType: 'user',
          entityId: created.id,
          action: 'CREATED',
          details: { email: created.email, roles: roles.map((r) => r.name).sort() },
        });
        return created;
      });
      res.location(`${req.baseUrl}/users/${user.id}`);
      return toUser(user);
    },
  });

  api.add({
    method: 'get',
    path: '/users/:id',
    tag: TAG,
    summary: 'One user',
    permission: 'user:manage',
    params: idParams,
    responses: { 200: { description: 'The user', schema: userSchema } },
    handler: async ({ params }) => toUser(await findUser(db, params.id)),
  });

  api.add({
    method: 'patch',
    path: '/users/:id',
    tag: TAG,
    summary: 'Change a user’s display name, active flag or password',
    description:
      'A password reset or a deactivation revokes every access and refresh token of the user. You cannot deactivate yourself or the last active administrator (409).',
    permission: 'user:manage',
    params: idParams,
    body: patchBody,
    responses: {
      200: { description: 'Changed', schema: userSchema },
      409: { description: 'Would deactivate yourself or the last active administrator' },
    },
    handler: async ({ params, body, principal, req }) => {
      await administrable(db, principal, params.id);
      if (body.isActive === false && params.id === principal.userId)
        throw new ConflictError('You cannot deactivate yourself');
      // bcrypt is slow: hash before the transaction holds the admin lock.
      const passwordHash = body.password ? await hashPassword(body.password, BCRYPT_COST) : undefined;
      const user = await db.$transaction(async (tx) => {
        const before = await administrable(tx, principal, params.id);
        const deactivating = body.isActive === false && before.isActive;
        if (deactivating && isAdminRow(before)) {
          await lockAdmins(tx);
          await assertAnotherAdmin(tx, before.id, 'cannot deactivate');
        }
        await tx.user.update({
          where: { id: before.id },
          data: {
            ...(body.displayName !== undefined ? { displayName: body.displayName } : {}),
            ...(body.isActive !== undefined ? { isActive: body.isActive } : {}),
            ...(passwordHash ? { passwordHash } : {}),
          },
        });
        if (passwordHash || deactivating) await revokeTokens(tx, before.id);
        await audit(tx, req, {
          entityType: 'user',
          entityId: before.id,
          action: passwordHash ? 'PASSWORD_RESET' : 'UPDATED',
          details: {
            ...(body.displayName !== undefined ? { displayName: body.displayName } : {}),
            ...(body.isActive !== undefined ? { isActive: body.isActive } : {}),
            passwordReset: passwordHash !== undefined,
          },
        });
        return findUser(tx, before.id);
      });
      return toUser(user);
    },
  });

  api.add({
    method: 'delete',
    path: '/users/:id',
    tag: TAG,
    summary: 'Delete a user',
    description:
      'Not yourself, not the last active administrator, and not a user who still owns jobs or variables (deleting would delete them too): 409. Deactivate instead (PATCH isActive=false), or move or delete their jobs first. Audit events keep the user’s e-mail.',
    permission: 'user:manage',
    params: idParams,
    responses: {
      204: { description: 'Deleted' },
      409: { description: 'Yourself, the last active administrator, or an owner of jobs or variables' },
    },
    handler: async ({ params, principal, req }) => {
      if (params.id === principal.userId) throw new ConflictError('You cannot delete yourself');
      await db.$transaction(async (tx) => {
        // Always serialised (deletes are rare): two callers deleting each other would deadlock otherwise.
        await lockAdmins(tx);
        const user = await administrable(tx, principal, params.id);
        if (isAdminRow(user) && user.isActive) await assertAnotherAdmin(tx, user.id, 'cannot delete');
        const jobs = await tx.job.count({ where: { ownerId: user.id } });
        const variables = await tx.variable.count({ where: { ownerId: user.id } });
        if (jobs + variables > 0)
          throw new ConflictError(
            `${user.email} owns ${jobs} job(s) and ${variables} variable(s): deactivate the user instead, or move or delete them first`,
          );
        await tx.user.delete({ where: { id: user.id } });
        await audit(tx, req, {
          entityType: 'user',
          entityId: user.id,
          action: 'DELETED',
          details: { email: user.email },
        });
      });
      return null;
    },
  });

  api.add({
    method: 'put',
    path: '/users/:id/roles',
    tag: TAG,
    summary: 'Replace a user’s roles',
    description:
      'Takes effect on the user’s next request (roles are re-read per request). Only an ADMIN grants or takes ADMIN; others only grant roles within their own permissions. Taking ADMIN from the last active administrator answers 409.',
    permission: 'role:assign',
    params: idParams,
    body: z.strictObject({ roles: roleNames }),
    responses: {
      200: { description: 'The user with the new roles', schema: userSchema },
      409: { description: 'Would leave no active administrator' },
    },
    handler: async ({ params, body, principal, req }) => {
      const wanted = await resolveRoles(db, body.roles);
      const user = await db.$transaction(async (tx) => {
        const before = await administrable(tx, principal, params.id);
        const held = new Set(before.roles.map((r) => r.role.name));
        const added = wanted.filter((r) => !held.has(r.name));
        assertMayAssign(principal, added);
        const losesAdmin = held.has(ADMIN_ROLE) && !wanted.some((r) => r.name === ADMIN_ROLE);
        if (losesAdmin) {
          await lockAdmins(tx);
          if (before.isActive) await assertAnotherAdmin(tx, before.id, 'cannot take ADMIN');
        }
        await tx.userRole.deleteMany({
          where: { userId: before.id, roleId: { notIn: wanted.map((r) => r.id) } },
        });
        await tx.userRole.createMany({
          data: added.map((r) => ({ userId: before.id, roleId: r.id, assignedById: principal.userId })),
          skipDuplicates: true,
        });
        await audit(tx, req, {
          entityType: 'user',
          entityId: before.id,
          action: 'ROLES_CHANGED',
          details: { before: [...held].sort(), after: wanted.map((r) => r.name).sort() },
        });
        return findUser(tx, before.id);
      });
      return toUser(user);
    },
  });
}
