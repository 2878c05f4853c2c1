import { randomBytes } from 'node:crypto';
import { createBullBoard } from '@bull-board/api';
import { BullMQAdapter } from '@bull-board/api/bullMQAdapter';
import { ExpressAdapter } from '@bull-board/express';
import express, { type Express, type Request, type RequestHandler, type Response } from 'express';
import helmet from 'helmet';
import { bearerToken } from './auth/authenticate.ts';
import { loadPrincipal } from './auth/principal.ts';
import type { ApiDeps } from './deps.ts';
import { HttpError, unauthorized } from './http/errors.ts';

/** Path of the Bull Board dashboard. */
export const BULL_BOARD_PATH = '/admin/queues';
export const ADMIN_LOGIN_PATH = '/admin/login';
/** Audience of the dashboard's session cookie: an API access token is not a dashboard session. */
export const ADMIN_AUDIENCE = 'chronos-admin';
const COOKIE = 'chronos_admin';
/** The dashboard session's id: its record in Redis is what sign-out ends. */
const SID_COOKIE = 'chronos_admin_sid';
/** The longest a dashboard session lasts, however active it is. */
const SESSION_MAX_SECONDS = 12 * 3600;

function cookieOf(req: Request, name: string): string | undefined {
  for (const part of (req.get('cookie') ?? '').split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === name) return decodeURIComponent(part.slice(eq + 1).trim());
  }
  return undefined;
}

const escapeHtml = (s: string) =>
  s.replace(
    /[&<>"']/g,
    (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c] as string,
  );

/** Only same-site relative paths under /admin may be a post-sign-in destination (no open redirect). */
function safeNext(next: unknown): string {
  return typeof next === 'string' && next.startsWith('/admin/') && !next.startsWith('//')
    ? next
    : BULL_BOARD_PATH;
}

function loginPage(res: Response, opts: { next: string; error?: string; status?: number }) {
  res.status(opts.status ?? 200).type('html').send(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Chronos — sign in</title>
<meta name="viewport" content="width=device-width,initial-scale=1"></head>
<body style="font-family:system-ui,sans-serif;max-width:22rem;margin:4rem auto">
<h1>Chronos</h1><p>Sign in to the queue dashboard (administrators only).</p>
${opts.error ? `<p role="alert" style="color:#b00">${escapeHtml(opts.error)}</p>` : ''}
<form method="post" action="${ADMIN_LOGIN_PATH}">
<input type="hidden" name="next" value="${escapeHtml(opts.next)}">
<p><label>E-mail<br><input name="email" type="email" autocomplete="username" required></label></p>
<p><label>Password<br><input name="password" type="password" autocomplete="current-password" required></label></p>
<p><button type="submit">Sign in</button></p>
</form></body></html>`);
}

/**
 * Bull Board behind sign-in: a browser signs in on /admin/login (an ADMIN's e-mail and password,
 * throttled like the API's sign-in) and gets an HttpOnly, SameSite=Strict session cookie; programs
 * may send an admin's bearer token instead. Anonymous visitors are sent to the sign-in page (or get
 * 401), signed-in non-admins get 403.
 */
export function mountAdmin(app: Express, deps: ApiDeps): void {
  const { authenticator, sessions, signer } = deps.auth;
  const cookieTtl = signer?.ttlSeconds ?? 900;

  const sessionKey = (sid: string) => `${deps.config.redis.prefix}:admin-session:${sid}`;
  // Secure whenever the request came over TLS, and always in production (a TLS proxy that is not
  // on loopback is not trusted to say so).
  const cookieOptions = (req: Request, maxAgeSeconds: number) => ({
    httpOnly: true,
    sameSite: 'strict' as const,
    secure: req.secure || deps.config.isProduction,
    path: '/admin',
    maxAge: maxAgeSeconds * 1000,
  });

  const setSession = async (req: Request, res: Response, user: { id: string; tokenVersion: number }) => {
    if (!signer) return;
    const token = await signer.sign({ sub: user.id, tv: user.tokenVersion }, ADMIN_AUDIENCE);
    res.cookie(COOKIE, token, cookieOptions(req, cookieTtl));
  };

  /** A new dashboard session of `userId`: recorded in Redis until sign-out or its maximum age. */
  const openSession = async (req: Request, res: Response, userId: string) => {
    const sid = randomBytes(24).toString('base64url');
    await deps.redis.set(sessionKey(sid), userId, 'EX', SESSION_MAX_SECONDS);
    res.cookie(SID_COOKIE, sid, cookieOptions(req, SESSION_MAX_SECONDS));
  };

  /** Whether the request carries a live dashboard session of `userId`. */
  const sessionIsLive = async (req: Request, userId: string) => {
    const sid = cookieOf(req, SID_COOKIE);
    return sid !== undefined && (await deps.redis.get(sessionKey(sid))) === userId;
  };

  const requireAdmin: RequestHandler = async (req, res, next) => {
    const cookie = cookieOf(req, COOKIE);
    const bearer = bearerToken(req);
    try {
      if (!cookie && !bearer) throw unauthorized('Sign in as an administrator');
      const principal = bearer
        ? await authenticator.principalOf(bearer)
        : await authenticator.principalOf(cookie as string, ADMIN_AUDIENCE);
      if (!bearer && !(await sessionIsLive(req, principal.userId)))
        throw unauthorized('The dashboard session has ended: sign in again');
      if (!principal.isAdmin)
        throw new HttpError(403, 'Forbidden', 'The queue dashboard is for administrators');
      // Sliding session: each page view renews the cookie (within the session's maximum age).
      if (cookie) await setSession(req, res, { id: principal.userId, tokenVersion: principal.tokenVersion });
      next();
    } catch (err) {
      if (err instanceof HttpError && err.status === 401 && req.accepts(['html', 'json']) === 'html') {
        res.clearCookie(COOKIE, { path: '/admin' });
        res.clearCookie(SID_COOKIE, { path: '/admin' });
        return res.redirect(303, `${ADMIN_LOGIN_PATH}?next=${encodeURIComponent(req.originalUrl)}`);
      }
      throw err;
    }
  };

  const adminHelmet = helmet({ contentSecurityPolicy: false });
  app.get(ADMIN_LOGIN_PATH, adminHelmet, (req, res) => loginPage(res, { next: safeNext(req.query.next) }));
  app.post(
    ADMIN_LOGIN_PATH,
    adminHelmet,
    express.urlencoded({ extended: false, limit: '4kb' }),
    async (req, res) => {
      const body = (req.body ?? {}) as Record<string, unknown>;
      const next = safeNext(body.next);
      if (!sessions)
        return loginPage(res, { next, status: 400, error: 'Sign-in here is disabled with AUTH_MODE=oidc.' });
      try {
        const user = await sessions.verifyCredentials(
          String(body.email ?? ''),
          String(body.password ?? ''),
          req,
        );
        const principal = await loadPrincipal(deps.db, user.id);
        if (!principal?.isAdmin)
          return loginPage(res, { next, status: 403, error: 'The queue dashboard is for administrators.' });
        await openSession(req, res, user.id);
        await setSession(req, res, user);
        res.redirect(303, next);
      } catch (err) {
        if (err instanceof HttpError) {
          if (err.headers['Retry-After']) res.set('Retry-After', err.headers['Retry-After']);
          return loginPage(res, { next, status: err.status, error: err.message });
        }
        throw err;
      }
    },
  );
  app.post('/admin/logout', adminHelmet, async (req, res) => {
    // The session ends here, not only in this browser: a copy of its cookies no longer works.
    const sid = cookieOf(req, SID_COOKIE);
    if (sid) await deps.redis.del(sessionKey(sid));
    res.clearCookie(COOKIE, { path: '/admin' });
    res.clearCookie(SID_COOKIE, { path: '/admin' });
    res.redirect(303, ADMIN_LOGIN_PATH);
  });

  const board = new ExpressAdapter();
  board.setBasePath(BULL_BOARD_PATH);
  createBullBoard({
    // Read-only: a queue job is one side of a run whose record lives in Postgres. Emptying, removing,
    // retrying or promoting jobs here would bypass the run lifecycle (a dead-lettered run run again,
    // a slot fired early, a QUEUED run with no job) and the audit trail; cancel, replay and backfill
    // go through the REST API.
    queues: [...deps.queues.values()].map((q) => new BullMQAdapter(q, { readOnlyMode: true })),
    serverAdapter: board,
    options: { uiConfig: { boardTitle: 'Chronos queues' } },
  });
  app.use(BULL_BOARD_PATH, adminHelmet, requireAdmin, board.getRouter());
}
