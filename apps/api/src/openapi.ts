import { z } from 'zod';
import type { RouteSpec } from './http/route.ts';
import { problemSchema } from './http/schemas.ts';

/** Base path of the REST API. */
export const API_BASE = '/api/v1';

type JsonSchema = Record<string, unknown>;

/** Named schemas (`.meta({ id })`) collected while converting, for `components.schemas`. */
type Components = Record<string, JsonSchema>;

/** Rewrites `#/$defs/X` references to `#/components/schemas/X` everywhere in a converted schema. */
function relink(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(relink);
  if (value && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value))
      out[k] =
        k === '$ref' && typeof v === 'string' ? v.replace('#/$defs/', '#/components/schemas/') : relink(v);
    return out;
  }
  return value;
}

function jsonSchema(schema: z.ZodType, io: 'input' | 'output', components: Components): JsonSchema {
  const s = z.toJSONSchema(schema, {
    target: 'draft-2020-12',
    io,
    unrepresentable: 'any',
    reused: 'inline',
  }) as JsonSchema;
  delete s.$schema;
  const defs = (s.$defs ?? {}) as Record<string, JsonSchema>;
  delete s.$defs;
  // The first conversion of a named schema wins (input and output forms differ only in defaults).
  for (const [name, def] of Object.entries(defs)) components[name] ??= relink(def) as JsonSchema;
  return relink(s) as JsonSchema;
}

/** `/jobs/:id` → `/jobs/{id}` */
export function openApiPath(path: string): string {
  return path.replace(/:([A-Za-z0-9_]+)/g, '{$1}');
}

function parameters(spec: RouteSpec, components: Components): JsonSchema[] {
  const out: JsonSchema[] = [];
  for (const [where, schema] of [
    ['path', spec.params],
    ['query', spec.query],
  ] as const) {
    if (!schema) continue;
    const js = jsonSchema(schema, 'input', components) as {
      properties?: Record<string, JsonSchema>;
      required?: string[];
    };
    for (const [name, prop] of Object.entries(js.properties ?? {})) {
      const { description, ...rest } = prop as { description?: string };
      out.push({
        name,
        in: where,
        required: where === 'path' || (js.required ?? []).includes(name),
        ...(description ? { description } : {}),
        schema: rest,
      });
    }
  }
  return out;
}

/** The OpenAPI 3.1 document of every route in the table, from the same zod schemas that validate. */
export function openApiDocument(routes: readonly RouteSpec[], info: { version: string }): JsonSchema {
  const paths: Record<string, Record<string, JsonSchema>> = {};
  const components: Components = {};
  for (const spec of routes) {
    const responses: Record<string, JsonSchema> = {};
    for (const [status, r] of Object.entries(spec.responses)) {
      responses[status] = {
        description: r.description,
        ...(r.schema
          ? {
              content: {
                [r.contentType ?? 'application/json']: { schema: jsonSchema(r.schema, 'output', components) },
              },
            }
          : {}),
      };
    }
    const problem = {
      content: { 'application/problem+json': { schema: { $ref: '#/components/schemas/Problem' } } },
    };
    const errors: Record<string, string> = {
      ...(spec.params || spec.query || spec.body
        ? {
            400: spec.body
              ? 'Invalid input (the body not valid JSON, a field unknown or wrong); `errors[]` names each field'
              : 'Invalid input; `errors[]` names each field',
          }
        : {}),
      ...(spec.body ? { 415: 'The body is not application/json' } : {}),
      ...(spec.auth === 'none' ? {} : { 401: 'Not signed in, or the token is invalid' }),
      ...(spec.permission || spec.adminOnly ? { 403: 'The caller’s roles do not allow this' } : {}),
      ...(spec.params ? { 404: 'Not found (or owned by someone else)' } : {}),
    };
    for (const [status, description] of Object.entries(errors))
      responses[status] = { ...(responses[status] ?? { description }), ...problem };
    // Any route: the process is at API_MAX_IN_FLIGHT, or PostgreSQL or Redis cannot be reached.
    responses['503'] = {
      description:
        'Unavailable for now: too many requests in flight (API_MAX_IN_FLIGHT), or the database or Redis cannot be reached (`dependency` says which); retry after `Retry-After` seconds',
      headers: { 'Retry-After': { $ref: '#/components/headers/RetryAfter' } },
      ...problem,
    };
    const op: JsonSchema = {
      operationId: `${spec.method}${openApiPath(spec.path)
        .replace(/[{}]/g, '')
        .replace(/[/:-](\w)/g, (_, c: string) => c.toUpperCase())}`,
      tags: [spec.tag],
      summary: spec.summary,
      ...(spec.description ? { description: spec.description } : {}),
      ...(spec.permission ? { 'x-permission': spec.permission } : {}),
      ...(spec.adminOnly ? { 'x-admin-only': true } : {}),
      security: spec.auth === 'none' ? [] : [{ bearer: [] }],
      parameters: parameters(spec, components),
      ...(spec.body
        ? {
            requestBody: {
              required: true,
              content: { 'application/json': { schema: jsonSchema(spec.body, 'input', components) } },
            },
          }
        : {}),
      responses,
    };
    (paths[openApiPath(spec.path)] ??= {})[spec.method] = op;
  }
  return {
    openapi: '3.1.0',
    info: {
      title: 'Chronos API',
      version: info.version,
      description:
        'Distributed job scheduler. JSON in camelCase, ISO-8601 UTC timestamps, cursor pagination (`?limit=&cursor=` → `{ items, nextCursor }`, limit capped at 200), errors as RFC 9457 problem+json.',
    },
    servers: [{ url: API_BASE }],
    paths,
    components: {
      securitySchemes: { bearer: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT' } },
      headers: {
        RetryAfter: {
          description: 'Seconds to wait before trying again',
          schema: { type: 'integer', minimum: 1 },
        },
      },
      schemas: { ...components, Problem: jsonSchema(problemSchema, 'output', components) },
    },
  };
}
