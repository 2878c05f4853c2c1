import type { Principal } from '../auth/principal.ts';

declare global {
  // eslint-disable-next-line @typescript-eslint/no-namespace
  namespace Express {
    interface Request {
      /** Request id: the caller's `X-Request-Id` when sane, else a fresh one; echoed and logged. */
      id: string;
      /** The signed-in caller, set by `authenticate`. */
      principal?: Principal;
      /** The raw JSON body (webhook signatures are computed over it). */
      rawBody?: Buffer;
    }
  }
}

export {};
