import { createHash } from 'node:crypto';
import type { Db } from '@chronos/db';
import bcrypt from 'bcryptjs';
import type { RequestHandler } from 'express';

const CACHE_MS = 60_000;

/**
 * HTTP Basic authentication for the operator pages (Bull Board): only an active user holding the
 * ADMIN role gets in. A verified credential is remembered for a minute so the dashboard's polling
 * does not pay a bcrypt hash per request; a wrong one is never cached.
 */
export function requireAdminBasicAuth(db: Db, realm = 'Chronos admin'): RequestHandler {
  const verified = new Map<string, { until: number; tokenVersion: number }>();

  const challenge = (res: Parameters<RequestHandler>[1]) => {
    res.setHeader('WWW-Authenticate', `Basic realm="${realm}", charset="UTF-8"`);
    res.status(401).type('application/problem+json').json({
      type: 'about:blank',
      title: 'Unauthorized',
      status: 401,
      detail: 'Sign in with the e-mail and password of an admin user',
    });
  };

  return async (req, res, next) => {
    const header = req.headers.authorization ?? '';
    const m = /^Basic ([A-Za-z0-9+/=]+)$/.exec(header);
    if (!m?.[1]) return challenge(res);
    const decoded = Buffer.from(m[1], 'base64').toString('utf8');
    const sep = decoded.indexOf(':');
    if (sep < 1) return challenge(res);
    const email = decoded.slice(0, sep).toLowerCase();
    const password = decoded.slice(sep + 1);
    const cacheKey = createHash('sha256').update(decoded).digest('hex');

    const user = await db.user.findUnique({
      where: { email },
      select: { passwordHash: true, isActive: true, tokenVersion: true, roles: { select: { role: true } } },
    });
    const isAdmin = !!user?.isActive && user.roles.some((r) => r.role.name === 'ADMIN');
    if (!user || !isAdmin) {
      // Same work for unknown users as for wrong passwords.
      await bcrypt.compare(password, '$2b$10$CwTycUXWue0Thq9StjUM0uJ8lqAJHnEQmK3H2Jq5dC6bQ1dU4h2Iu');
      return challenge(res);
    }
    const hit = verified.get(cacheKey);
    if (hit && hit.until > Date.now() && hit.tokenVersion === user.tokenVersion) return next();
    if (!(await bcrypt.compare(password, user.passwordHash))) return challenge(res);
    verified.set(cacheKey, { until: Date.now() + CACHE_MS, tokenVersion: user.tokenVersion });
    return next();
  };
}
