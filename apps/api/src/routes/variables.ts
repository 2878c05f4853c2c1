import { NotFoundError, ValidationError } from '@chronos/core';
import type { Prisma, Variable } from '@chronos/db';
import { setVariable } from '@chronos/engine';
import type { Request } from 'express';
import { z } from 'zod';
import { findOwnedJob } from '../auth/owned-job.ts';
import { ownedBy, type Principal } from '../auth/principal.ts';
import type { ApiDeps } from '../deps.ts';
import { audit } from '../http/audit.ts';
import { pageOf, pageQuery, paginate } from '../http/pagination.ts';
import type { ApiRouter } from '../http/route.ts';
import { idParams, timestamp } from '../http/schemas.ts';

const nameSchema = z
  .string()
  .max(128)
  .regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'must match [A-Za-z_][A-Za-z0-9_]* (templates use {{var.NAME}})');
const valueSchema = z.string().max(65_536);
const descriptionSchema = z.string().max(1000).nullable();

const variableSchema = z
  .object({
    id: z.string(),
    name: z.string(),
    scope: z.enum(['GLOBAL', 'JOB']),
    jobId: z.string().nullable(),
    ownerId: z.string(),
    value: z.string().nullable().describe('null when isSensitive: sensitive values are write-only'),
    isSensitive: z.boolean(),
    description: z.string().nullable(),
    createdAt: timestamp,
    updatedAt: timestamp,
  })
  .meta({ id: 'Variable' });

const createBody = z.strictObject({
  name: nameSchema,
  value: valueSchema,
  isSensitive: z
    .boolean()
    .default(false)
    .describe('Stored encrypted and never returned again (needs ENCRYPTION_KEY)'),
  description: descriptionSchema.optional(),
});

const immutableName = nameSchema
  .optional()
  .describe('If given, must be the current name (names cannot change)');

const putBody = z.strictObject({
  name: immutableName,
  value: valueSchema,
  isSensitive: z.boolean(),
  description: descriptionSchema.default(null),
});

const patchBody = z.strictObject({
  name: immutableName,
  value: valueSchema.optional(),
  isSensitive: z.boolean().optional().describe('Changing true → false needs a new value'),
  description: descriptionSchema.optional(),
});

type CreateInput = z.output<typeof createBody> & { ownerId?: string | undefined };
type ChangeInput = z.output<typeof patchBody>;
type ListQuery = z.output<typeof pageQuery> & { name?: string | undefined; ownerId?: string | undefined };
type JobRef = { id?: string };

/** The variables of one scope that the caller may see, and who owns the ones created there. */
interface ScopeTarget {
  where: Prisma.VariableWhereInput;
  jobId: string | null;
  ownerId: string;
}

/** What differs between `/variables` (global) and `/jobs/:id/variables` (one job's). */
interface VariableScope {
  path: string;
  /** `global` / `job`, for summaries. */
  label: string;
  adminOnly: boolean;
  params: z.ZodType<JobRef>;
  itemParams: z.ZodType<JobRef & { varId: string }>;
  listQuery: z.ZodType<ListQuery>;
  createBody: z.ZodType<CreateInput>;
  target(principal: Principal, params: JobRef): Promise<ScopeTarget>;
}

function toDto(row: Variable) {
  return {
    id: row.id,
    name: row.name,
    scope: row.scope,
    jobId: row.jobId,
    ownerId: row.ownerId,
    value: row.isSensitive ? null : row.value,
    isSensitive: row.isSensitive,
    description: row.description,
    createdAt: row.createdAt,
    updatedAt: row.updatedAt,
  };
}

function requireEncryption(deps: ApiDeps, sensitive: boolean): void {
  if (sensitive && !deps.secretBox)
    throw new ValidationError('sensitive variables need ENCRYPTION_KEY to be configured on this deployment', [
      { path: 'isSensitive', message: 'ENCRYPTION_KEY is not set on this deployment' },
    ]);
}

async function findVariable(deps: ApiDeps, target: ScopeTarget, varId: string): Promise<Variable> {
  const row = await deps.db.variable.findFirst({ where: { id: varId, ...target.where } });
  if (!row) throw new NotFoundError('variable', varId);
  return row;
}

/** Only admins reach the global scope, and may create a global variable for another user. */
async function ownerOf(deps: ApiDeps, target: ScopeTarget, body: CreateInput): Promise<string> {
  if (!body.ownerId) return target.ownerId;
  const user = await deps.db.user.findUnique({ where: { id: body.ownerId }, select: { id: true } });
  if (!user)
    throw new ValidationError(`no user ${body.ownerId}`, [{ path: 'ownerId', message: 'no such user' }]);
  return user.id;
}

async function createVariable(deps: ApiDeps, req: Request, target: ScopeTarget, body: CreateInput) {
  requireEncryption(deps, body.isSensitive);
  const ownerId = await ownerOf(deps, target, body);
  // Names are unique per job, and per owner among global variables (the database enforces both).
  return setVariable(
    deps.db,
    deps.secretBox,
    {
      ownerId,
      name: body.name,
      value: body.value,
      sensitive: body.isSensitive,
      jobId: target.jobId,
      description: body.description ?? null,
    },
    {
      createOnly: true,
      withinTransaction: (tx, row) =>
        audit(tx, req, {
          entityType: 'variable',
          entityId: row.id,
          action: 'CREATED',
          details: {
            name: row.name,
            scope: row.scope,
            jobId: row.jobId,
            ownerId,
            isSensitive: row.isSensitive,
          },
        }),
    },
  );
}

/**
 * Applies a change to a variable. A sensitive value is never read back: turning it non-sensitive
 * needs a new value, while a plain value turning sensitive is re-stored encrypted as it is.
 */
async function updateVariable(deps: ApiDeps, req: Request, row: Variable, change: ChangeInput) {
  if (change.name !== undefined && change.name !== row.name)
    throw new ValidationError('a variable cannot be renamed', [
      { path: 'name', message: 'cannot be changed: create a variable with the new name and delete this one' },
    ]);
  const sensitive = change.isSensitive ?? row.isSensitive;
  const description = change.description !== undefined ? change.description : row.description;
  if (row.isSensitive && !sensitive && change.value === undefined)
    throw new ValidationError('a sensitive variable needs a new value to become non-sensitive', [
      {
        path: 'value',
        message: 'required when isSensitive changes from true to false (the old value is write-only)',
      },
    ]);
  const value = change.value ?? (sensitive && !row.isSensitive ? row.value : undefined);
  const changed = (['value', 'isSensitive', 'description'] as const).filter((k) => change[k] !== undefined);
  const audited = (tx: Prisma.TransactionClient) =>
    audit(tx, req, {
      entityType: 'variable',
      entityId: row.id,
      action: 'UPDATED',
      details: { name: row.name, scope: row.scope, jobId: row.jobId, isSensitive: sensitive, changed },
    });
  if (value !== undefined) {
    requireEncryption(deps, sensitive);
    return setVariable(
      deps.db,
      deps.secretBox,
      { ownerId: row.ownerId, name: row.name, value, sensitive, jobId: row.jobId, description },
      { withinTransaction: audited },
    );
  }
  return deps.db.$transaction(async (tx) => {
    const updated = await tx.variable.update({ where: { id: row.id }, data: { description } });
    await audited(tx);
    return updated;
  });
}

function listWhere(target: ScopeTarget, query: ListQuery): Prisma.VariableWhereInput {
  return {
    ...target.where,
    ...(query.name ? { name: { contains: query.name, mode: 'insensitive' } } : {}),
    ...(query.ownerId ? { ownerId: query.ownerId } : {}),
  };
}

function registerScope(api: ApiRouter, deps: ApiDeps, scope: VariableScope): void {
  const item = `${scope.path}/:varId`;
  const access = {
    tag: 'variables',
    ...(scope.adminOnly ? { adminOnly: true } : {}),
  };

  api.add({
    ...access,
    method: 'get',
    path: scope.path,
    summary: `List ${scope.label} variables`,
    permission: 'variable:read',
    params: scope.params,
    query: scope.listQuery,
    responses: {
      200: { description: 'A page of variables (sensitive values masked)', schema: pageOf(variableSchema) },
    },
    handler: async ({ params, query, principal }) => {
      const target = await scope.target(principal, params);
      const where = listWhere(target, query);
      return paginate<Variable, string, ReturnType<typeof toDto>>(
        query,
        (args) => deps.db.variable.findMany({ ...args, where, orderBy: [{ name: 'asc' }, { id: 'asc' }] }),
        toDto,
      );
    },
  });

  api.add({
    ...access,
    method: 'post',
    path: scope.path,
    summary: `Create a ${scope.label} variable`,
    description:
      'Templates reference it as `{{var.NAME}}`. A sensitive value is stored encrypted and never returned.',
    permission: 'variable:write',
    params: scope.params,
    body: scope.createBody,
    status: 201,
    responses: {
      201: { description: 'Created', schema: variableSchema },
      409: { description: 'A variable with this name exists in the scope' },
    },
    handler: async ({ req, params, body, principal }) =>
      toDto(await createVariable(deps, req, await scope.target(principal, params), body)),
  });

  api.add({
    ...access,
    method: 'get',
    path: item,
    summary: `Get a ${scope.label} variable`,
    permission: 'variable:read',
    params: scope.itemParams,
    responses: { 200: { description: 'The variable (a sensitive value is null)', schema: variableSchema } },
    handler: async ({ params, principal }) =>
      toDto(await findVariable(deps, await scope.target(principal, params), params.varId)),
  });

  for (const [method, body, summary] of [
    ['put', putBody, `Replace a ${scope.label} variable’s value, sensitivity and description`],
    ['patch', patchBody, `Change some of a ${scope.label} variable’s value, sensitivity and description`],
  ] as const) {
    api.add({
      ...access,
      method,
      path: item,
      summary,
      description:
        'The name cannot change. A sensitive variable becomes non-sensitive only with a new value.',
      permission: 'variable:write',
      params: scope.itemParams,
      body,
      responses: { 200: { description: 'Updated', schema: variableSchema } },
      handler: async ({ req, params, body: change, principal }) => {
        const row = await findVariable(deps, await scope.target(principal, params), params.varId);
        return toDto(await updateVariable(deps, req, row, change));
      },
    });
  }

  api.add({
    ...access,
    method: 'delete',
    path: item,
    summary: `Delete a ${scope.label} variable`,
    permission: 'variable:write',
    params: scope.itemParams,
    responses: { 204: { description: 'Deleted' } },
    handler: async ({ req, params, principal }) => {
      const row = await findVariable(deps, await scope.target(principal, params), params.varId);
      await deps.db.$transaction(async (tx) => {
        await tx.variable.delete({ where: { id: row.id } });
        await audit(tx, req, {
          entityType: 'variable',
          entityId: row.id,
          action: 'DELETED',
          details: { name: row.name, scope: row.scope, jobId: row.jobId, ownerId: row.ownerId },
        });
      });
      return null;
    },
  });
}

const varIdParam = { varId: z.string().min(1).max(64) };
const nameFilter = { name: z.string().max(128).optional().describe('Name contains (case-insensitive)') };

/**
 * `/variables` (global, administrators only) and `/jobs/:id/variables` (a job's, for its owner).
 * A global variable belongs to an owner (default: the admin creating it) and serves every job of that
 * owner; a job variable of the same name overrides it for its job.
 */
export function registerVariableRoutes(api: ApiRouter, deps: ApiDeps): void {
  registerScope(api, deps, {
    path: '/variables',
    label: 'global',
    adminOnly: true,
    params: z.object({}),
    itemParams: z.object(varIdParam),
    listQuery: pageQuery.extend({
      ...nameFilter,
      ownerId: z.string().max(64).optional().describe('Only this owner’s variables'),
    }),
    createBody: createBody.extend({
      ownerId: z
        .string()
        .min(1)
        .max(64)
        .optional()
        .describe('Whose jobs see it (default: the calling admin)'),
    }),
    target: async (principal) => ({
      where: { scope: 'GLOBAL', ...ownedBy(principal) },
      jobId: null,
      ownerId: principal.userId,
    }),
  });

  registerScope(api, deps, {
    path: '/jobs/:id/variables',
    label: 'job',
    adminOnly: false,
    params: idParams,
    itemParams: idParams.extend(varIdParam),
    listQuery: pageQuery.extend(nameFilter),
    createBody,
    target: async (principal, params) => {
      const jobId = params.id ?? '';
      const job = await findOwnedJob(deps.db, principal, jobId, { select: { id: true, ownerId: true } });
      return { where: { scope: 'JOB', jobId: job.id }, jobId: job.id, ownerId: job.ownerId };
    },
  });
}
