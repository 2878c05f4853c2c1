import { newId, type Permission } from '@chronos/core';
import type { Db } from '@chronos/db';
import type { Request, RequestHandler } from 'express';
import { randomBytes } from 'node:crypto';
import { unauthorized } from '../http/errors.ts';
import type { OidcIdentity, OidcVerifier } from './oidc.ts';
import { hashPassword } from './passwords.ts';
import { loadPrincipal, type Principal } from './principal.ts';
import type { TokenSigner } from './tokens.ts';

/** The bearer token of a request, or undefined. */
export function bearerToken(req: Request): string | undefined {
  const m = /^Bearer\s+(\S+)$/i.exec(req.get('authorization') ?? '');
  return m?.[1];
}

export interface Authenticator {
  /** Resolves a token to the caller, or throws 401. */
  principalOf(token: string, audience?: string): Promise<Principal>;
  /** Sets `req.principal` from the Authorization header (401 without a valid one). */
  middleware: RequestHandler;
}

/** Local accounts: Chronos-signed JWTs, user and roles re-read per request. */
export function localAuthenticator(db: Db, signer: TokenSigner): Authenticator {
  const principalOf = async (token: string, audience?: string) => {
    const claims = await signer.verify(token, audience);
    const principal = await loadPrincipal(db, claims.sub);
    if (!principal) throw unauthorized('The account is disabled or gone');
    if (principal.tokenVersion !== claims.tv)
      throw unauthorized('The access token was revoked (password changed or signed out everywhere)');
    return principal;
  };
  return { principalOf, middleware: middlewareOf(principalOf) };
}

/**
 * AUTH_MODE=oidc: tokens of the external provider. The user row (objects need an owner) is
 * created on first sight, matched by e-mail; roles come from the token's claim, mapped to Chronos
 * roles by name (case-insensitive), so a role change at the provider applies with the next token.
 */
export function oidcAuthenticator(db: Db, verifier: OidcVerifier): Authenticator {
  const userIds = new Map<string, string>();

  async function userIdOf(identity: OidcIdentity): Promise<string> {
    const cached = userIds.get(identity.subject);
    if (cached) return cached;
    const user = await db.user.upsert({
      where: { email: identity.email },
      create: {
        id: newId(),
        email: identity.email,
        displayName: identity.name ?? null,
        // Never usable for a local sign-in: nobody knows this password.
        passwordHash: await hashPassword(randomBytes(24).toString('hex'), 4),
      },
      update: {},
      select: { id: true, isActive: true },
    });
    if (!user.isActive) throw unauthorized('The account is disabled');
    userIds.set(identity.subject, user.id);
    return user.id;
  }

  const principalOf = async (token: string) => {
    const identity = await verifier.verify(token);
    const userId = await userIdOf(identity);
    const wanted = identity.roles.map((r) => r.toUpperCase());
    const roles = await db.role.findMany({
      where: { name: { in: wanted } },
      select: { name: true, permissions: true },
    });
    const user = await db.user.findUnique({ where: { id: userId }, select: { isActive: true } });
    if (!user?.isActive) {
      userIds.delete(identity.subject);
      throw unauthorized('The account is disabled');
    }
    const names = roles.map((r) => r.name).sort();
    return {
      userId,
      email: identity.email,
      roles: names,
      permissions: new Set(roles.flatMap((r) => r.permissions) as Permission[]),
      isAdmin: names.includes('ADMIN'),
      tokenVersion: 0,
    } satisfies Principal;
  };
  return { principalOf, middleware: middlewareOf(principalOf) };
}

function middlewareOf(principalOf: (token: string) => Promise<Principal>): RequestHandler {
  return async (req, _res, next) => {
    const token = bearerToken(req);
    if (!token) throw unauthorized();
    req.principal = await principalOf(token);
    next();
  };
}
