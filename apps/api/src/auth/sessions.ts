import { randomBytes } from 'node:crypto';
import { ValidationError, newId } from '@chronos/core';
import type { Db } from '@chronos/db';
import type { Request } from 'express';
import { BCRYPT_COST, hashPassword, verifyPassword } from './passwords.ts';
import { audit } from '../http/audit.ts';
import { unauthorized } from '../http/errors.ts';
import type { LoginThrottle } from './throttle.ts';
import { hashToken, newRefreshToken, type TokenSigner } from './tokens.ts';

export interface TokenPair {
  tokenType: 'Bearer';
  accessToken: string;
  /** Seconds until the access token expires. */
  expiresIn: number;
  refreshToken: string;
  refreshExpiresIn: number;
}

const BAD_CREDENTIALS = 'Wrong e-mail or password';

/**
 * Sign-in, refresh-token rotation with reuse detection, sign-out and password change for local
 * accounts (AUTH_MODE=local).
 */
export function createSessions(deps: {
  db: Db;
  signer: TokenSigner;
  throttle: LoginThrottle;
  refreshTtlSeconds: number;
}) {
  const { db, signer, throttle } = deps;
  // Unknown e-mails pay the same bcrypt price as wrong passwords (no user enumeration by timing).
  const dummyHash = hashPassword(randomBytes(16).toString('hex'), BCRYPT_COST);

  async function issue(
    user: { id: string; tokenVersion: number },
    req: Request,
    familyId: string = newId(),
  ): Promise<TokenPair> {
    const refreshToken = newRefreshToken();
    await db.refreshToken.create({
      data: {
        id: newId(),
        userId: user.id,
        familyId,
        tokenHash: hashToken(refreshToken),
        tokenVersion: user.tokenVersion,
        expiresAt: new Date(Date.now() + deps.refreshTtlSeconds * 1000),
        ipAddress: req.ip ?? null,
        userAgent: req.get('user-agent')?.slice(0, 512) ?? null,
      },
    });
    return {
      tokenType: 'Bearer',
      accessToken: await signer.sign({ sub: user.id, tv: user.tokenVersion }),
      expiresIn: signer.ttlSeconds,
      refreshToken,
      refreshExpiresIn: deps.refreshTtlSeconds,
    };
  }

  return {
    issue,

    /**
     * Checks e-mail and password (throttled, audited, same answer for unknown user and wrong
     * password) and returns the user. Used by API sign-in and the dashboard's sign-in page.
     */
    async verifyCredentials(email: string, password: string, req: Request) {
      const ip = req.ip ?? 'unknown';
      email = email.toLowerCase();
      await throttle.reserve(email, ip);
      const user = await db.user.findUnique({
        where: { email },
        select: { id: true, email: true, passwordHash: true, isActive: true, tokenVersion: true },
      });
      const ok = user?.isActive
        ? await verifyPassword(password, user.passwordHash)
        : (await verifyPassword(password, await dummyHash), false);
      if (!user || !ok) {
        await audit(db, req, {
          entityType: 'auth',
          entityId: user?.id ?? email,
          action: 'LOGIN_FAILED',
          userId: user?.id ?? null,
          userEmail: email,
          details: { reason: !user ? 'unknown user' : !user.isActive ? 'inactive user' : 'wrong password' },
        });
        throw unauthorized(BAD_CREDENTIALS);
      }
      await throttle.recordSuccess(email, ip);
      await db.user.update({ where: { id: user.id }, data: { lastLoginAt: new Date() } });
      await audit(db, req, {
        entityType: 'auth',
        entityId: user.id,
        action: 'LOGIN_SUCCEEDED',
        userId: user.id,
        userEmail: user.email,
      });
      return user;
    },

    async login(email: string, password: string, req: Request): Promise<TokenPair> {
      return issue(await this.verifyCredentials(email, password, req), req);
    },

    /**
     * Exchanges a refresh token for a new pair. Each token works once: presenting a used (or
     * revoked) one means a copy is in someone else's hands, so the whole family is revoked.
     */
    async refresh(token: string, req: Request): Promise<TokenPair> {
      const row = await db.refreshToken.findUnique({
        where: { tokenHash: hashToken(token) },
        include: { user: { select: { id: true, email: true, isActive: true, tokenVersion: true } } },
      });
      if (!row) throw unauthorized('Unknown refresh token');
      if (row.revokedAt && !row.usedAt) throw unauthorized('The refresh token was revoked: sign in again');
      if (row.usedAt) {
        await db.refreshToken.updateMany({
          where: { familyId: row.familyId, revokedAt: null },
          data: { revokedAt: new Date() },
        });
        await audit(db, req, {
          entityType: 'auth',
          entityId: row.userId,
          action: 'REFRESH_TOKEN_REUSED',
          userId: row.userId,
          userEmail: row.user.email,
          details: { familyId: row.familyId },
        });
        throw unauthorized('This refresh token was already used; every session of its sign-in is revoked');
      }
      if (row.expiresAt <= new Date()) throw unauthorized('The refresh token has expired: sign in again');
      if (!row.user.isActive || row.tokenVersion !== row.user.tokenVersion)
        throw unauthorized('The refresh token was revoked: sign in again');
      // Only one concurrent exchange wins; the loser is treated as reuse on its next try.
      const claimed = await db.refreshToken.updateMany({
        where: { id: row.id, usedAt: null, revokedAt: null },
        data: { usedAt: new Date() },
      });
      if (claimed.count !== 1) throw unauthorized('This refresh token was already used');
      return issue(row.user, req, row.familyId);
    },

    /** Revokes the family of the given refresh token (one device), or every session of the user. */
    async logout(userId: string, refreshToken: string | undefined, everywhere: boolean): Promise<void> {
      if (everywhere) {
        await db.$transaction([
          db.user.update({ where: { id: userId }, data: { tokenVersion: { increment: 1 } } }),
          db.refreshToken.updateMany({ where: { userId, revokedAt: null }, data: { revokedAt: new Date() } }),
        ]);
        return;
      }
      if (!refreshToken) return;
      const row = await db.refreshToken.findUnique({ where: { tokenHash: hashToken(refreshToken) } });
      if (!row || row.userId !== userId) return;
      await db.refreshToken.updateMany({
        where: { familyId: row.familyId, revokedAt: null },
        data: { revokedAt: new Date() },
      });
    },

    /** Verifies the current password, stores the new hash and voids every earlier token. */
    async changePassword(userId: string, current: string, next: string, req: Request): Promise<TokenPair> {
      const user = await db.user.findUniqueOrThrow({ where: { id: userId } });
      // The same throttle as sign-in (a stolen access token must not guess the password freely).
      const ip = req.ip ?? 'unknown';
      await throttle.reserve(user.email, ip);
      if (!(await verifyPassword(current, user.passwordHash))) {
        await audit(db, req, {
          entityType: 'user',
          entityId: userId,
          action: 'PASSWORD_CHANGE_FAILED',
          details: { reason: 'wrong current password' },
        });
        throw new ValidationError('The current password is wrong', [
          { path: 'currentPassword', message: 'is wrong' },
        ]);
      }
      await throttle.recordSuccess(user.email, ip);
      const updated = await db.$transaction(async (tx) => {
        const u = await tx.user.update({
          where: { id: userId },
          data: { passwordHash: await hashPassword(next, BCRYPT_COST), tokenVersion: { increment: 1 } },
        });
        await tx.refreshToken.updateMany({
          where: { userId, revokedAt: null },
          data: { revokedAt: new Date() },
        });
        await audit(tx, req, { entityType: 'user', entityId: userId, action: 'PASSWORD_CHANGED' });
        return u;
      });
      return issue(updated, req);
    },
  };
}

export type Sessions = ReturnType<typeof createSessions>;
