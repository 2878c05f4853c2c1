import type { Permission } from '@chronos/core';
import { ValidationError, parseFields } from '@chronos/core';
import { Router, type Request, type RequestHandler, type Response } from 'express';
import type { z } from 'zod';
import type { Principal } from '../auth/principal.ts';
import { forbidden, unauthorized, unsupportedMediaType } from './errors.ts';
import { sendProblem } from './problem.ts';

export type Method = 'get' | 'post' | 'put' | 'patch' | 'delete';

/** A documented response of a route. */
export interface ResponseSpec {
  description: string;
  /** JSON body schema (omit for no body). */
  schema?: z.ZodType;
  /** Defaults to application/json; e.g. text/event-stream for SSE. */
  contentType?: string;
}

/** Everything about one route: Express mounts it and the OpenAPI document describes it from the same object. */
export interface RouteSpec<
  P extends z.ZodType = z.ZodType,
  Q extends z.ZodType = z.ZodType,
  B extends z.ZodType = z.ZodType,
> {
  method: Method;
  /** Express path under /api/v1, e.g. `/jobs/:id`. */
  path: string;
  summary: string;
  description?: string;
  tag: string;
  /** `none`: public (sign-in, webhooks). Default: a signed-in caller. */
  auth?: 'none' | 'user';
  /** The permission the caller's roles must grant (403 otherwise). */
  permission?: Permission;
  /** Only ADMIN (user and role administration, global variables). */
  adminOnly?: boolean;
  params?: P;
  query?: Q;
  body?: B;
  /** Success status when the handler returns a value. @defaultValue 200 */
  status?: number;
  responses: Record<number, ResponseSpec>;
  handler: (input: RouteInput<z.output<P>, z.output<Q>, z.output<B>>) => Promise<unknown>;
}

export interface RouteInput<P, Q, B> {
  req: Request;
  res: Response;
  params: P;
  query: Q;
  body: B;
  /** The signed-in caller; for `auth: 'none'` routes it is a placeholder that must not be used. */
  principal: Principal;
}

function parse<T extends z.ZodType>(schema: T | undefined, value: unknown, where: string): z.output<T> {
  if (!schema) return undefined as z.output<T>;
  // Strict objects refuse unknown fields; parseFields names each with the field it likely meant.
  const result = parseFields(schema, value ?? {});
  if (result.success) return result.data;
  const { issues } = result;
  throw new ValidationError(
    `invalid ${where}: ${issues.map((i) => `${i.path || '(root)'}: ${i.message}`).join('; ')}`,
    issues,
  );
}

/** True when the request carries body bytes (a POST without a body still says `Content-Length: 0`). */
function hasBody(req: Request): boolean {
  return req.get('Transfer-Encoding') !== undefined || Number(req.get('Content-Length') ?? 0) > 0;
}

const NO_PRINCIPAL = new Proxy({} as Principal, {
  get() {
    throw new Error('this route is public: it has no principal');
  },
});

/**
 * The API's route table. `add` mounts a route on the router (auth → permission → validation →
 * handler) and keeps its spec for the OpenAPI document, so a route cannot exist undocumented.
 */
export class ApiRouter {
  readonly router = Router();
  readonly routes: RouteSpec[] = [];

  constructor(private readonly authenticate: RequestHandler) {}

  add<P extends z.ZodType, Q extends z.ZodType, B extends z.ZodType>(spec: RouteSpec<P, Q, B>): void {
    this.routes.push(spec as unknown as RouteSpec);
    const chain: RequestHandler[] = [];
    if (spec.auth !== 'none') chain.push(this.authenticate);
    chain.push(async (req, res) => {
      let principal = NO_PRINCIPAL;
      if (spec.auth !== 'none') {
        if (!req.principal) throw unauthorized();
        principal = req.principal;
        if (spec.adminOnly && !principal.isAdmin) throw forbidden('Only administrators may do this');
        if (spec.permission && !principal.permissions.has(spec.permission))
          throw forbidden(`Your roles do not grant ${spec.permission}`);
      }
      // A body that is not JSON is refused as such, not read as an empty one (which would answer
      // with field errors about a body the caller did send). No body at all is an empty one.
      if (spec.body && hasBody(req) && !req.is('application/json'))
        throw unsupportedMediaType(
          `The request body is ${req.get('Content-Type') ?? 'of no declared type'}; send application/json`,
        );
      const params = parse(spec.params, req.params, 'path parameters');
      const query = parse(spec.query, req.query, 'query');
      const body = parse(spec.body, req.body, 'body');
      const result = await spec.handler({ req, res, params, query, body, principal });
      if (res.headersSent || result === undefined) return;
      if (result === null) res.status(spec.status ?? 204).end();
      else res.status(spec.status ?? 200).json(result);
    });
    this.router[spec.method](spec.path, ...chain);
  }

  /**
   * Answers the methods a path does not have with 405 and an `Allow` header (instead of 404). Call
   * once, after every route is added: these handlers only see what no route took.
   */
  closeMethods(): void {
    const byPath = new Map<string, Set<string>>();
    for (const r of this.routes) {
      const methods = byPath.get(r.path) ?? new Set<string>();
      methods.add(r.method.toUpperCase());
      if (r.method === 'get') methods.add('HEAD');
      byPath.set(r.path, methods);
    }
    for (const [path, methods] of byPath) {
      const allow = [...methods].sort().join(', ');
      this.router.all(path, (req, res) => {
        res.set('Allow', allow);
        sendProblem(req, res, {
          type: 'about:blank',
          title: 'Method Not Allowed',
          status: 405,
          detail: `${req.method} is not allowed on ${req.path}; allowed: ${allow}`,
        });
      });
    }
  }
}
