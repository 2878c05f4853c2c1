import { z } from 'zod';
import { templatedHttpUrlSchema } from './template.ts';

export const HTTP_METHODS = ['GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'HEAD', 'OPTIONS'] as const;
export type HttpMethod = (typeof HTTP_METHODS)[number];

/** RFC 9110 `token`: the characters a header name may hold. */
const HEADER_NAME = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
/** CR, LF and NUL would split or corrupt the request. */
const HEADER_VALUE = /^[^\r\n\0]*$/;

const secret = (what: string) => z.string().min(1, `${what} is required`).max(4096);

export const httpAuthSchema = z.discriminatedUnion('type', [
  z.strictObject({ type: z.literal('NONE') }),
  z.strictObject({
    type: z.literal('BASIC'),
    username: z.string().max(1024),
    password: z.string().max(4096),
  }),
  z.strictObject({ type: z.literal('BEARER'), token: secret('token') }),
  z.strictObject({
    type: z.literal('OAUTH2_CLIENT_CREDENTIALS'),
    tokenUrl: templatedHttpUrlSchema,
    clientId: secret('clientId'),
    clientSecret: secret('clientSecret'),
    scope: z.string().max(2048).optional(),
    audience: z.string().max(2048).optional(),
    /**
     * How the client authenticates at the token endpoint (RFC 6749 §2.3.1): HTTP Basic, or
     * client_id/client_secret in the form body.
     * @defaultValue 'BASIC'
     */
    clientAuth: z.enum(['BASIC', 'BODY']).default('BASIC'),
  }),
]);
export type HttpAuth = z.infer<typeof httpAuthSchema>;

const queryValue = z.union([z.string(), z.number(), z.boolean()]);

/**
 * An HTTP job's payload: the `http*` columns of job_payloads plus `timeoutSeconds` and `metadata`.
 * Optional columns accept `null` (as stored) as well as absence. String fields may hold
 * `{{var.X}}` templates, resolved before the executor runs.
 */
export const httpPayloadSchema = z.object({
  httpUrl: templatedHttpUrlSchema,
  httpMethod: z.enum(HTTP_METHODS).default('GET'),
  httpHeaders: z
    .record(z.string(), z.string().max(16_384).regex(HEADER_VALUE, 'must not contain CR, LF or NUL'))
    .superRefine((headers, ctx) => {
      for (const name of Object.keys(headers)) {
        if (!HEADER_NAME.test(name)) {
          ctx.addIssue({ code: 'custom', path: [name], message: 'is not a valid header name' });
        }
      }
    })
    .nullish(),
  httpBody: z
    .string()
    .max(10 * 1024 * 1024, 'must be at most 10 MiB')
    .nullish(),
  httpQueryParams: z.record(z.string().min(1), z.union([queryValue, z.array(queryValue)])).nullish(),
  httpAuth: httpAuthSchema.nullish(),
  /** Statuses that count as success; absent means any 2xx. */
  httpExpectedStatuses: z
    .array(z.int().min(100, 'must be a status 100–599').max(599, 'must be a status 100–599'))
    .min(1, 'must list at least one status (or be omitted for any 2xx)')
    .max(500)
    .nullish(),
  httpFollowRedirects: z.boolean().default(true),
  timeoutSeconds: z.int().min(1).max(86_400).nullish(),
  metadata: z.record(z.string(), z.unknown()).nullish(),
});
export type HttpPayload = z.infer<typeof httpPayloadSchema>;
export type HttpPayloadInput = z.input<typeof httpPayloadSchema>;
