import type { Prisma } from '@chronos/db';
import { z } from 'zod';
import type { ApiDeps } from '../deps.ts';
import { pageOf, pageQuery, paginate } from '../http/pagination.ts';
import type { ApiRouter } from '../http/route.ts';
import { isoDate, timestamp } from '../http/schemas.ts';

export const auditEventSchema = z
  .object({
    id: z.string(),
    entityType: z.string().describe('job, run, user, role, variable, webhook, dlq, auth …'),
    entityId: z.string(),
    action: z.string().describe('CREATED, UPDATED, DELETED, LOGIN_SUCCEEDED, LOGIN_FAILED …'),
    userId: z
      .string()
      .nullable()
      .describe('Who acted (null when nobody was signed in, or the user is deleted)'),
    userEmail: z.string().nullable(),
    ipAddress: z.string().nullable(),
    userAgent: z.string().nullable(),
    timestamp,
    details: z.unknown().nullable(),
  })
  .meta({ id: 'AuditEvent' });

type AuditRow = Prisma.AuditEventGetPayload<object>;

const toAuditEvent = (row: AuditRow): z.input<typeof auditEventSchema> => ({
  ...row,
  timestamp: row.timestamp.toISOString(),
});

const auditQuery = pageQuery
  .extend({
    entityType: z.string().max(50).optional(),
    entityId: z.string().max(255).optional(),
    userId: z.string().max(64).optional().describe('Who acted'),
    action: z.string().max(50).optional(),
    from: isoDate.optional().describe('Events at or after this instant'),
    to: isoDate.optional().describe('Events before this instant'),
  })
  .refine((q) => !q.from || !q.to || q.from < q.to, { path: ['to'], message: 'must be after from' });

/** `/audit-events`: the trail of every change and sign-in (audit:read). */
export function registerAuditRoutes(api: ApiRouter, deps: ApiDeps): void {
  api.add({
    method: 'get',
    path: '/audit-events',
    tag: 'audit',
    summary: 'Audit events, newest first',
    description:
      'Every change made through the API, and every sign-in (success and failure) with client IP and user agent.',
    permission: 'audit:read',
    query: auditQuery,
    responses: { 200: { description: 'A page of audit events', schema: pageOf(auditEventSchema) } },
    handler: ({ query }) => {
      const where: Prisma.AuditEventWhereInput = {
        ...(query.entityType ? { entityType: query.entityType } : {}),
        ...(query.entityId ? { entityId: query.entityId } : {}),
        ...(query.userId ? { userId: query.userId } : {}),
        ...(query.action ? { action: query.action.toUpperCase() } : {}),
        ...(query.from || query.to
          ? {
              timestamp: {
                ...(query.from ? { gte: query.from } : {}),
                ...(query.to ? { lt: query.to } : {}),
              },
            }
          : {}),
      };
      return paginate<AuditRow, string, z.input<typeof auditEventSchema>>(
        query,
        (args) =>
          deps.db.auditEvent.findMany({ ...args, where, orderBy: [{ timestamp: 'desc' }, { id: 'desc' }] }),
        toAuditEvent,
      );
    },
  });
}
