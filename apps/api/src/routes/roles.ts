import { ConflictError, NotFoundError, PERMISSIONS, type Permission } from '@chronos/core';
import type { Db, Prisma } from '@chronos/db';
import { z } from 'zod';
import type { Principal } from '../auth/principal.ts';
import type { ApiDeps } from '../deps.ts';
import { audit } from '../http/audit.ts';
import { forbidden } from '../http/errors.ts';
import { pageOf, pageQuery, paginate } from '../http/pagination.ts';
import type { ApiRouter } from '../http/route.ts';
import { timestamp } from '../http/schemas.ts';

const TAG = 'roles';

/** Role ids are integers (roles.id is serial). */
const roleIdParams = z.object({ id: z.coerce.number().int().positive().max(2_147_483_647) });

/**
 * Role names are upper case: AUTH_MODE=oidc maps the provider's role claim to Chronos roles by
 * upper-cased name, so a lower-case name could never be matched. Input is upper-cased.
 */
const roleName = z
  .string()
  .trim()
  .regex(/^[A-Za-z][A-Za-z0-9_-]{1,63}$/, 'must be 2–64 letters, digits, "_" or "-", starting with a letter')
  .transform((s) => s.toUpperCase());

const permissionList = z
  .array(z.enum(PERMISSIONS))
  .max(PERMISSIONS.length * 2)
  .transform((ps) => [...new Set(ps)].sort());

export const roleSchema = z
  .object({
    id: z.number().int(),
    name: z.string(),
    description: z.string().nullable(),
    permissions: z.array(z.string()),
    isBuiltin: z.boolean().describe('ADMIN, OPERATOR, VIEWER and USER: cannot be changed or deleted'),
    userCount: z.number().int().describe('Users holding the role'),
    createdAt: timestamp,
    updatedAt: timestamp,
  })
  .meta({ id: 'Role' });

const roleSelect = {
  id: true,
  name: true,
  description: true,
  permissions: true,
  isBuiltin: true,
  createdAt: true,
  updatedAt: true,
  _count: { select: { users: true } },
} satisfies Prisma.RoleSelect;

type RoleRow = Prisma.RoleGetPayload<{ select: typeof roleSelect }>;

function toRole({ _count, ...row }: RoleRow): z.input<typeof roleSchema> {
  return {
    ...row,
    createdAt: row.createdAt.toISOString(),
    updatedAt: row.updatedAt.toISOString(),
    userCount: _count.users,
  };
}

/**
 * No privilege escalation through administration: a caller who is not ADMIN may only hand out
 * (in a role's definition or by assigning roles) permissions it holds itself.
 */
export function assertMayGrant(
  principal: Principal,
  permissions: Iterable<string>,
  refusal = 'You cannot grant permissions you do not hold',
): void {
  if (principal.isAdmin) return;
  const missing = [...new Set(permissions)].filter((p) => !principal.permissions.has(p as Permission));
  if (missing.length > 0) throw forbidden(`${refusal}: ${missing.sort().join(', ')}`);
}

/** Reading roles is for those who manage users or assign roles (one permission would not do). */
function assertMayReadRoles(principal: Principal): void {
  if (!principal.permissions.has('user:manage') && !principal.permissions.has('role:assign'))
    throw forbidden('Your roles grant neither user:manage nor role:assign');
}

/** The role, for a change: 404 when missing, 409 when built in. */
async function changeableRole(db: Db | Prisma.TransactionClient, id: number) {
  const role = await db.role.findUnique({ where: { id }, select: roleSelect });
  if (!role) throw new NotFoundError('role', String(id));
  if (role.isBuiltin)
    throw new ConflictError(`${role.name} is a built-in role: it cannot be changed or deleted`);
  return role;
}

/** `/roles`: named sets of permissions. Built-in roles are read-only. */
export function registerRoleRoutes(api: ApiRouter, deps: ApiDeps): void {
  const { db } = deps;

  api.add({
    method: 'get',
    path: '/roles',
    tag: TAG,
    summary: 'List roles with their permissions',
    description: 'For callers with user:manage or role:assign. Ordered by id.',
    query: pageQuery,
    responses: {
      200: { description: 'A page of roles', schema: pageOf(roleSchema) },
      403: { description: 'Neither user:manage nor role:assign' },
    },
    handler: ({ query, principal }) => {
      assertMayReadRoles(principal);
      return paginate<RoleRow, number, z.input<typeof roleSchema>>(
        query,
        (args) => db.role.findMany({ ...args, select: roleSelect, orderBy: [{ id: 'asc' }] }),
        toRole,
        'int',
      );
    },
  });

  api.add({
    method: 'post',
    path: '/roles',
    tag: TAG,
    summary: 'Create a role',
    description:
      'The name is stored upper case (OIDC role claims are matched by upper-cased name). A caller who is not ADMIN can only include permissions it holds.',
    permission: 'user:manage',
    body: z.strictObject({
      name: roleName,
      description: z.string().max(1000).nullable().optional(),
      permissions: permissionList,
    }),
    status: 201,
    responses: {
      201: { description: 'Created', schema: roleSchema },
      409: { description: 'A role with this name exists' },
    },
    handler: async ({ body, principal, req, res }) => {
      assertMayGrant(principal, body.permissions);
      if (await db.role.findUnique({ where: { name: body.name }, select: { id: true } }))
        throw new ConflictError(`a role named ${body.name} already exists`);
      const role = await db.$transaction(async (tx) => {
        const created = await tx.role.create({
          data: { name: body.name, description: body.description ?? null, permissions: body.permissions },
          select: roleSelect,
        });
        await audit(tx, req, {
          entityType: 'role',
          entityId: String(created.id),
          action: 'CREATED',
          details: { name: created.name, permissions: created.permissions },
        });
        return created;
      });
      res.location(`${req.baseUrl}/roles/${role.id}`);
      return toRole(role);
    },
  });

  api.add({
    method: 'get',
    path: '/roles/:id',
    tag: TAG,
    summary: 'One role',
    description: 'For callers with user:manage or role:assign.',
    params: roleIdParams,
    responses: {
      200: { description: 'The role', schema: roleSchema },
      403: { description: 'Neither user:manage nor role:assign' },
    },
    handler: async ({ params, principal }) => {
      assertMayReadRoles(principal);
      const role = await db.role.findUnique({ where: { id: params.id }, select: roleSelect });
      if (!role) throw new NotFoundError('role', String(params.id));
      return toRole(role);
    },
  });

  api.add({
    method: 'patch',
    path: '/roles/:id',
    tag: TAG,
    summary: 'Change a role’s name, description or permissions',
    description:
      'Built-in roles answer 409. Holders of the role get the new permissions on their next request.',
    permission: 'user:manage',
    params: roleIdParams,
    body: z.strictObject({
      name: roleName.optional(),
      description: z.string().max(1000).nullable().optional(),
      permissions: permissionList.optional(),
    }),
    responses: {
      200: { description: 'Changed', schema: roleSchema },
      409: { description: 'Built-in role, or the new name is taken' },
    },
    handler: async ({ params, body, principal, req }) => {
      if (body.permissions) assertMayGrant(principal, body.permissions);
      const role = await db.$transaction(async (tx) => {
        const before = await changeableRole(tx, params.id);
        if (body.name && body.name !== before.name) {
          const taken = await tx.role.findUnique({ where: { name: body.name }, select: { id: true } });
          if (taken) throw new ConflictError(`a role named ${body.name} already exists`);
        }
        const after = await tx.role.update({
          where: { id: params.id },
          data: {
            ...(body.name !== undefined ? { name: body.name } : {}),
            ...(body.description !== undefined ? { description: body.description } : {}),
            ...(body.permissions !== undefined ? { permissions: body.permissions } : {}),
          },
          select: roleSelect,
        });
        await audit(tx, req, {
          entityType: 'role',
          entityId: String(after.id),
          action: 'UPDATED',
          details: {
            before: { name: before.name, description: before.description, permissions: before.permissions },
            after: { name: after.name, description: after.description, permissions: after.permissions },
          },
        });
        return after;
      });
      return toRole(role);
    },
  });

  api.add({
    method: 'delete',
    path: '/roles/:id',
    tag: TAG,
    summary: 'Delete a role that nobody holds',
    description:
      'Built-in roles answer 409, and so does a role still assigned to a user: take it from its holders first (PUT /users/{id}/roles), so nobody loses access as a side effect.',
    permission: 'user:manage',
    params: roleIdParams,
    responses: {
      204: { description: 'Deleted' },
      409: { description: 'Built-in, or still assigned' },
    },
    handler: async ({ params, req }) => {
      await db.$transaction(async (tx) => {
        const role = await changeableRole(tx, params.id);
        // Locks the role row so an assignment cannot slip in between the count and the delete.
        await tx.$executeRaw`SELECT 1 FROM roles WHERE id = ${params.id} FOR UPDATE`;
        const holders = await tx.userRole.count({ where: { roleId: params.id } });
        if (holders > 0)
          throw new ConflictError(`${role.name} is still assigned to ${holders} user(s): unassign it first`);
        await tx.role.delete({ where: { id: params.id } });
        await audit(tx, req, {
          entityType: 'role',
          entityId: String(params.id),
          action: 'DELETED',
          details: { name: role.name },
        });
      });
      return null;
    },
  });
}
