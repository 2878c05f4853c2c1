import { z } from 'zod';

/** `:id` path parameter (ULIDs and numeric ids alike arrive as strings). */
export const idParams = z.object({ id: z.string().min(1).max(64) });

/** An ISO-8601 timestamp with zone in input, as a Date. */
export const isoDate = z.iso
  .datetime({ offset: true, message: 'must be an ISO-8601 timestamp with a zone, e.g. 2026-01-31T09:00:00Z' })
  .transform((s) => new Date(s));

/** Timestamps in responses: ISO-8601 UTC strings. */
export const timestamp = z.iso.datetime();

/** The problem document every error answers with. */
export const problemSchema = z
  .object({
    type: z.string(),
    title: z.string(),
    status: z.number().int(),
    detail: z.string().optional(),
    instance: z.string().optional(),
    requestId: z.string().optional(),
    errors: z.array(z.object({ path: z.string(), message: z.string() })).optional(),
    dependency: z
      .enum(['database', 'redis'])
      .optional()
      .describe('503 only: the service the API cannot reach right now'),
  })
  .meta({ id: 'Problem' });
