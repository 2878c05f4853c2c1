import { newId } from '@chronos/core';
import type { Db, Prisma } from '@chronos/db';
import type { Request } from 'express';

export interface AuditEntry {
  /** `job`, `run`, `user`, `role`, `variable`, `webhook`, `dlq`, `auth` … */
  entityType: string;
  entityId: string;
  /** Upper snake case verb: CREATED, UPDATED, DELETED, PAUSED, LOGIN_SUCCEEDED … */
  action: string;
  details?: Prisma.InputJsonValue;
  /** For events without a signed-in caller (a failed sign-in): who it was about. */
  userId?: string | null;
  userEmail?: string | null;
}

/** Writes one audit event with the caller, client IP and user agent of the request. */
export async function audit(
  db: Db | Prisma.TransactionClient,
  req: Request,
  entry: AuditEntry,
): Promise<void> {
  await db.auditEvent.create({
    data: {
      id: newId(),
      entityType: entry.entityType,
      entityId: entry.entityId,
      action: entry.action,
      userId: entry.userId !== undefined ? entry.userId : (req.principal?.userId ?? null),
      userEmail: entry.userEmail !== undefined ? entry.userEmail : (req.principal?.email ?? null),
      ipAddress: req.ip ?? null,
      userAgent: req.get('user-agent')?.slice(0, 512) ?? null,
      ...(entry.details !== undefined ? { details: entry.details } : {}),
    },
  });
}
