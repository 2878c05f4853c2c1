import type { z } from 'zod';
import { ValidationError, type FieldIssue } from '../errors.ts';
import { noteKnownFields, unknownFieldIssues } from '../unknown-fields.ts';
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

/**
 * zod issues as Chronos field issues, paths dotted (`httpAuth.tokenUrl`, `httpHeaders.X-Key`); an
 * object's unknown fields one issue each, with a suggestion when the parse noted its known fields
 * (`parseFields`).
 */
export function fieldIssues(error: z.ZodError, pathPrefix = ''): FieldIssue[] {
  return error.issues.flatMap((issue) => {
    const unknown = unknownFieldIssues(issue, pathPrefix);
    if (unknown) return unknown;
    const path = [pathPrefix, ...issue.path.map(String)].filter((p) => p !== '').join('.');
    return [{ path, message: issue.message }];
  });
}

/**
 * Parses input with a schema; on failure, its field issues (paths under `pathPrefix`, unknown
 * fields named one by one with a suggestion of the field meant).
 */
export function parseFields<T extends z.ZodType>(
  schema: T,
  input: unknown,
  pathPrefix = '',
): { success: true; data: z.output<T> } | { success: false; issues: FieldIssue[] } {
  const result = schema.safeParse(input, { error: noteKnownFields });
  if (result.success) return { success: true, data: result.data };
  return { success: false, issues: fieldIssues(result.error, pathPrefix) };
}

/**
 * The payload schema of each type as input is checked: its own fields only (`cacheTtlSeconds` on a
 * CACHE job is refused, not dropped). The schemas in `payloadSchemas` take a job_payloads row's
 * set columns, which hold other types' columns (defaults, `type`) that are not the type's payload.
 */
const payloadInputSchemas = Object.fromEntries(
  Object.entries(payloadSchemas).map(([type, schema]) => [type, schema.strict()]),
) as unknown as PayloadSchemas;

/**
 * Validates a payload with its type's schema and returns it with defaults applied. `input`
 * (a definition, from a caller) must hold the type's fields only; `columns` (a job_payloads row's
 * set columns) may hold other columns too, which are left out.
 * @throws ValidationError listing every issue with its field path (prefixed with `pathPrefix`).
 */
export function parsePayload<T extends keyof PayloadSchemas>(
  type: T,
  input: unknown,
  pathPrefix = '',
  from: 'input' | 'columns' = 'columns',
): z.infer<PayloadSchemas[T]> {
  const schema = from === 'input' ? payloadInputSchemas[type] : payloadSchemas[type];
  const result = parseFields(schema, input, pathPrefix);
  if (result.success) return result.data as z.infer<PayloadSchemas[T]>;
  const { issues } = result;
  throw new ValidationError(
    `invalid ${type} payload: ${issues.map((i) => `${i.path || '(root)'}: ${i.message}`).join('; ')}`,
    issues,
  );
}
