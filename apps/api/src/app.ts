import { randomUUID } from 'node:crypto';
import cors from 'cors';
import express, { type Express, type RequestHandler } from 'express';
import helmet from 'helmet';
import { mountAdmin } from './admin.ts';
import type { ApiDeps } from './deps.ts';
import { mountDocs } from './docs.ts';
import { ApiRouter } from './http/route.ts';
import { inFlightLimit } from './http/in-flight.ts';
import { errorHandler, notFound } from './http/problem.ts';
import './http/types.ts';
import { mountOps } from './ops.ts';
import { API_BASE, openApiDocument } from './openapi.ts';
import { ROUTE_MODULES } from './routes/index.ts';

/** A caller's X-Request-Id is kept when it is short and plain; otherwise a fresh UUID. */
const requestId: RequestHandler = (req, res, next) => {
  const given = req.get('x-request-id');
  req.id = given && /^[A-Za-z0-9._-]{1,128}$/.test(given) ? given : randomUUID();
  res.set('X-Request-Id', req.id);
  next();
};

export interface App {
  app: Express;
  /** The REST routes (for the OpenAPI document and its tests). */
  api: ApiRouter;
}

/** Builds the HTTP application; it does not listen (server.ts does). */
export function createApp(deps: ApiDeps): App {
  const app = express();
  app.disable('x-powered-by');
  // Nobody by default: X-Forwarded-For would otherwise let a client pick its own address (and get
  // past the per-IP sign-in throttle). TRUST_PROXY names the proxies in front of the API.
  const trust = deps.config.trustProxy;
  app.set('trust proxy', typeof trust === 'object' ? [...trust] : trust);
  app.use(requestId, deps.metrics.http);
  app.use((req, res, next) => {
    res.on('finish', () =>
      deps.log.debug(
        { requestId: req.id, method: req.method, url: req.originalUrl, status: res.statusCode },
        'request',
      ),
    );
    next();
  });

  // Probes first: they answer however many requests are in flight.
  mountOps(app, deps);
  // Security and CORS headers before the in-flight limit, so a browser can read its 503 too.
  app.use(
    API_BASE,
    helmet(),
    cors({
      // No origin is allowed unless CORS_ORIGINS lists it; `*` allows any (tokens travel in headers, not cookies).
      origin: deps.config.auth.corsOrigins.includes('*') ? true : [...deps.config.auth.corsOrigins],
      exposedHeaders: ['X-Request-Id', 'Retry-After', 'Location', 'ETag'],
      maxAge: 600,
    }),
  );
  app.use(inFlightLimit({ max: deps.config.maxInFlight, metrics: deps.metrics.load }));
  mountAdmin(app, deps);

  const api = new ApiRouter(deps.auth.authenticator.middleware);
  for (const register of ROUTE_MODULES) register(api, deps);
  api.closeMethods();
  const document = openApiDocument(api.routes, { version: '1' });

  app.use(
    API_BASE,
    express.json({
      limit: deps.config.bodyLimitBytes,
      // Any JSON value: a webhook may deliver a bare string or number; every API body is checked
      // against its schema anyway (a non-object answers 400 naming the field).
      strict: false,
      // Webhook signatures are computed over the exact bytes received.
      verify: (req, _res, buf) => {
        (req as express.Request).rawBody = buf;
      },
    }),
  );
  app.get(`${API_BASE}/openapi.json`, (_req, res) => {
    res.json(document);
  });
  mountDocs(app);
  app.use(API_BASE, api.router);

  app.use(notFound);
  app.use(errorHandler(deps.log));
  return { app, api };
}
