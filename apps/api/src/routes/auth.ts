import { z } from 'zod';
import type { ApiDeps } from '../deps.ts';
import { HttpError } from '../http/errors.ts';
import type { ApiRouter } from '../http/route.ts';

const tokenPair = z
  .object({
    tokenType: z.literal('Bearer'),
    accessToken: z.string(),
    expiresIn: z.number().int().describe('seconds'),
    refreshToken: z.string(),
    refreshExpiresIn: z.number().int().describe('seconds'),
  })
  .meta({ id: 'TokenPair' });

export const meSchema = z
  .object({
    id: z.string(),
    email: z.string(),
    displayName: z.string().nullable(),
    roles: z.array(z.string()),
    permissions: z.array(z.string()),
    isAdmin: z.boolean(),
  })
  .meta({ id: 'Me' });

/** Passwords: 8–128 characters (bcrypt reads at most 72 bytes; longer is refused, not truncated). */
export const passwordSchema = z
  .string()
  .min(8, 'must be at least 8 characters')
  .refine((p) => Buffer.byteLength(p, 'utf8') <= 72, 'must be at most 72 bytes');

function localOnly(deps: ApiDeps) {
  if (!deps.auth.sessions)
    throw new HttpError(
      400,
      'Bad Request',
      'Local sign-in is disabled (AUTH_MODE=oidc): use the identity provider',
    );
  return deps.auth.sessions;
}

/** `/auth/*`: sign-in, refresh rotation, sign-out, who am I, password change. */
export function registerAuthRoutes(api: ApiRouter, deps: ApiDeps): void {
  api.add({
    method: 'post',
    path: '/auth/login',
    tag: 'auth',
    summary: 'Sign in with e-mail and password',
    description:
      'Throttled per account and per client IP across replicas (429 with Retry-After). Unknown e-mail and wrong password get the same answer.',
    auth: 'none',
    body: z.strictObject({ email: z.string().min(1).max(255), password: z.string().min(1).max(1024) }),
    responses: {
      200: { description: 'Signed in', schema: tokenPair },
      401: { description: 'Wrong e-mail or password' },
      429: { description: 'Too many failures' },
    },
    handler: ({ body, req }) => localOnly(deps).login(body.email, body.password, req),
  });

  api.add({
    method: 'post',
    path: '/auth/refresh',
    tag: 'auth',
    summary: 'Exchange a refresh token for a new pair (rotation)',
    description: 'Each refresh token works once. Presenting a used one revokes every token of its sign-in.',
    auth: 'none',
    body: z.strictObject({ refreshToken: z.string().min(1).max(512) }),
    responses: {
      200: { description: 'New pair', schema: tokenPair },
      401: { description: 'Unknown, used, revoked or expired' },
    },
    handler: ({ body, req }) => localOnly(deps).refresh(body.refreshToken, req),
  });

  api.add({
    method: 'post',
    path: '/auth/logout',
    tag: 'auth',
    summary: 'Sign out: revoke a refresh token’s sign-in, or every session',
    body: z.strictObject({
      refreshToken: z.string().max(512).optional(),
      everywhere: z.boolean().default(false).describe('Also voids every access token issued so far'),
    }),
    responses: { 204: { description: 'Signed out' } },
    handler: async ({ body, principal }) => {
      await localOnly(deps).logout(principal.userId, body.refreshToken, body.everywhere);
      return null;
    },
  });

  api.add({
    method: 'get',
    path: '/auth/me',
    tag: 'auth',
    summary: 'The signed-in user, roles and permissions',
    responses: { 200: { description: 'The caller', schema: meSchema } },
    handler: async ({ principal }) => {
      const user = await deps.db.user.findUniqueOrThrow({
        where: { id: principal.userId },
        select: { displayName: true },
      });
      return {
        id: principal.userId,
        email: principal.email,
        displayName: user.displayName,
        roles: principal.roles,
        permissions: [...principal.permissions].sort(),
        isAdmin: principal.isAdmin,
      };
    },
  });

  api.add({
    method: 'post',
    path: '/auth/password',
    tag: 'auth',
    summary: 'Change the password; every earlier token is revoked',
    body: z.strictObject({ currentPassword: z.string().min(1).max(1024), newPassword: passwordSchema }),
    responses: { 200: { description: 'Changed; a fresh pair for this session', schema: tokenPair } },
    handler: ({ body, principal, req }) =>
      localOnly(deps).changePassword(principal.userId, body.currentPassword, body.newPassword, req),
  });
}
