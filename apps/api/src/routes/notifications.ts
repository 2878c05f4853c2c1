import { NotificationChannel, NotificationStatus, type Prisma } from '@chronos/db';
import { z } from 'zod';
import type { ApiDeps } from '../deps.ts';
import { pageOf, pageQuery, paginate } from '../http/pagination.ts';
import type { ApiRouter } from '../http/route.ts';
import { timestamp } from '../http/schemas.ts';

export const notificationSchema = z
  .object({
    id: z.number().int(),
    jobId: z.string().nullable(),
    runId: z.string().nullable(),
    channel: z.enum(NotificationChannel),
    target: z.string().describe('Address the notice goes to (e-mail, URL, phone number)'),
    templateCode: z.string().describe('JOB_FAILING, JOB_RECOVERED, RUN_DEAD_LETTERED …'),
    payload: z.unknown().nullable().describe('The template’s data'),
    status: z.enum(NotificationStatus),
    attempts: z.number().int(),
    lastError: z.string().nullable(),
    createdAt: timestamp,
    sentAt: timestamp.nullable(),
  })
  .meta({ id: 'Notification' });

type NotificationRow = Prisma.NotificationGetPayload<object>;

function toNotification({ userId: _owner, ...row }: NotificationRow): z.input<typeof notificationSchema> {
  return { ...row, createdAt: row.createdAt.toISOString(), sentAt: row.sentAt?.toISOString() ?? null };
}

/** `/notifications`: the notices addressed to the caller (alerts, recoveries, dead letters). */
export function registerNotificationRoutes(api: ApiRouter, deps: ApiDeps): void {
  api.add({
    method: 'get',
    path: '/notifications',
    tag: 'notifications',
    summary: 'The caller’s notifications, newest first',
    description: 'Only the caller’s own, administrators included.',
    query: pageQuery.extend({
      status: z.enum(NotificationStatus).optional(),
      jobId: z.string().max(64).optional(),
    }),
    responses: { 200: { description: 'A page of notifications', schema: pageOf(notificationSchema) } },
    handler: ({ query, principal }) => {
      const where: Prisma.NotificationWhereInput = {
        userId: principal.userId,
        ...(query.status ? { status: query.status } : {}),
        ...(query.jobId ? { jobId: query.jobId } : {}),
      };
      return paginate<NotificationRow, number, z.input<typeof notificationSchema>>(
        query,
        (args) =>
          deps.db.notification.findMany({ ...args, where, orderBy: [{ createdAt: 'desc' }, { id: 'desc' }] }),
        toNotification,
        'int',
      );
    },
  });
}
