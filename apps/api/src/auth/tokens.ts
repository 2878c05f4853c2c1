import { createHash, randomBytes } from 'node:crypto';
import { SignJWT, jwtVerify, errors as joseErrors } from 'jose';
import { unauthorized } from '../http/errors.ts';

/** Issuer and audience of Chronos's own access tokens; both are checked on every request. */
export const TOKEN_ISSUER = 'chronos';
export const TOKEN_AUDIENCE = 'chronos-api';
/** The only accepted algorithm (no `none`, no algorithm confusion). */
export const TOKEN_ALG = 'HS256';

export interface AccessClaims {
  sub: string;
  /** The user's token_version at issue: a password change bumps it and voids older tokens. */
  tv: number;
}

export interface TokenSigner {
  sign(claims: AccessClaims, audience?: string): Promise<string>;
  /** Verifies signature, algorithm, issuer, audience and expiry; anything wrong → 401. */
  verify(token: string, audience?: string): Promise<AccessClaims>;
  readonly ttlSeconds: number;
}

export function createTokenSigner(secret: string, ttlSeconds: number): TokenSigner {
  const key = new TextEncoder().encode(secret);
  return {
    ttlSeconds,
    async sign(claims, audience = TOKEN_AUDIENCE) {
      return new SignJWT({ tv: claims.tv })
        .setProtectedHeader({ alg: TOKEN_ALG, typ: 'JWT' })
        .setSubject(claims.sub)
        .setIssuer(TOKEN_ISSUER)
        .setAudience(audience)
        .setIssuedAt()
        .setJti(randomBytes(12).toString('base64url'))
        .setExpirationTime(`${ttlSeconds}s`)
        .sign(key);
    },
    async verify(token, audience = TOKEN_AUDIENCE) {
      try {
        const { payload } = await jwtVerify(token, key, {
          algorithms: [TOKEN_ALG],
          issuer: TOKEN_ISSUER,
          audience,
          requiredClaims: ['sub', 'exp', 'iat'],
        });
        if (typeof payload.tv !== 'number' || typeof payload.sub !== 'string')
          throw unauthorized('Malformed access token');
        return { sub: payload.sub, tv: payload.tv };
      } catch (err) {
        if (err instanceof joseErrors.JWTExpired)
          throw unauthorized('The access token has expired: refresh it');
        if (err instanceof joseErrors.JOSEError) throw unauthorized('Invalid access token');
        throw err;
      }
    },
  };
}

/** A fresh opaque refresh token (256 bits). */
export function newRefreshToken(): string {
  return randomBytes(32).toString('base64url');
}

/** What is stored for a refresh token: its SHA-256, never the token. */
export function hashToken(token: string): string {
  return createHash('sha256').update(token).digest('hex');
}
