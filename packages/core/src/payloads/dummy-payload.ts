import { z } from 'zod';

/**
 * What a DUMMY job does (the `metadata` column): log `logLines` lines, sleep `sleepMs`, then
 * succeed with `output` or fail. The workhorse of tests and benchmarks.
 */
export const dummyMetadataSchema = z.strictObject({
  sleepMs: z.int().min(0).max(3_600_000).optional(),
  /** `true` is the older spelling of `'permanent'`. */
  fail: z
    .union([z.enum(['retryable', 'permanent']), z.boolean()])
    .transform((v) => (v === true ? 'permanent' : v))
    .optional(),
  /** The error code a failure carries; matched by retry_on. @defaultValue 'DUMMY_FAILURE' */
  failCode: z
    .string()
    .regex(/^[A-Z][A-Z0-9_]{0,63}$/, 'must be an UPPER_SNAKE_CASE code of at most 64 characters')
    .optional(),
  message: z.string().max(10_000).optional(),
  logLines: z.int().min(0).max(100_000).optional(),
  /** The run's output on success. @defaultValue `{ ok: true }` */
  output: z.unknown().optional(),
});
export type DummyMetadata = z.infer<typeof dummyMetadataSchema>;

export const dummyPayloadSchema = z.object({
  timeoutSeconds: z.int().min(1).max(86_400).nullish(),
  metadata: dummyMetadataSchema.nullish(),
});
export type DummyPayload = z.infer<typeof dummyPayloadSchema>;
export type DummyPayloadInput = z.input<typeof dummyPayloadSchema>;
