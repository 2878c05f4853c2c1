import type { z } from 'zod';
import { ValidationError, type FieldIssue } from '../errors.ts';
import type { JobTypeName, RunnableJobType } from '../job-types.ts';
import { cachePayloadSchema } from './cache-payload.ts';
import { databasePayloadSchema } from './database-payload.ts';
import { dummyPayloadSchema } from './dummy-payload.ts';
import { fileSystemPayloadSchema } from './file-system-payload.ts';
import { httpPayloadSchema } from './http-payload.ts';
import { scriptPayloadSchema } from './script-payload.ts';

export * from './cache-payload.ts';
export * from './database-payload.ts';
export * from './dummy-payload.ts';
export * from './file-system-payload.ts';
export * from './http-payload.ts';
export * from './script-payload.ts';
export { hasTemplate, templatedHttpUrlSchema, triggerInCode } from './template.ts';

/**
 * The payload schema of each job type this version runs: exactly `RUNNABLE_JOB_TYPES` (`satisfies`
 * refuses a missing type and, the literal's excess-property check, an extra one).
 */
export const payloadSchemas = {
  HTTP: httpPayloadSchema,
  DUMMY: dummyPayloadSchema,
  CACHE: cachePayloadSchema,
  DATABASE: databasePayloadSchema,
  FILE_SYSTEM: fileSystemPayloadSchema,
  SCRIPT: scriptPayloadSchema,
} as const satisfies Record<RunnableJobType, z.ZodType>;

type PayloadSchemas = typeof payloadSchemas;
export type PayloadSchemaFor<T extends JobTypeName> = T extends keyof PayloadSchemas
  ? PayloadSchemas[T]
  : undefined;

/** The zod schema of a job type's payload, or undefined for types without one yet. */
export function payloadSchemaFor<T extends JobTypeName>(type: T): PayloadSchemaFor<T> {
  return (payloadSchemas as Partial<Record<JobTypeName, z.ZodType>>)[type] as PayloadSchemaFor<T>;
}

/** zod issues as Chronos field issues, paths dotted (`httpAuth.tokenUrl`, `httpHeaders.X-Key`). */
export function fieldIssues(error: z.ZodError, pathPrefix = ''): FieldIssue[] {
  return error.issues.map((issue) => {
    const path = [pathPrefix, ...issue.path.map(String)].filter((p) => p !== '').join('.');
    return { path, message: issue.message };
  });
}

/**
 * Validates a payload with its type's schema and returns it with defaults applied.
 * @throws ValidationError listing every issue with its field path (prefixed with `pathPrefix`).
 */
export function parsePayload<T extends keyof PayloadSchemas>(
  type: T,
  input: unknown,
  pathPrefix = '',
): z.infer<PayloadSchemas[T]> {
  const result = payloadSchemas[type].safeParse(input);
  if (result.success) return result.data as z.infer<PayloadSchemas[T]>;
  const issues = fieldIssues(result.error, pathPrefix);
  throw new ValidationError(
    `invalid ${type} payload: ${issues.map((i) => `${i.path || '(root)'}: ${i.message}`).join('; ')}`,
    issues,
  );
}
