import { ValidationError } from '@chronos/core';
import { z } from 'zod';

/** Largest page any list returns, whatever `limit` asks for. */
export const MAX_PAGE_SIZE = 200;
export const DEFAULT_PAGE_SIZE = 50;

/** `?limit=&cursor=`: limit defaults to 50 and is capped at 200 (a larger one is not an error). */
export const pageQuery = z.object({
  limit: z.coerce
    .number()
    .int()
    .min(1)
    .default(DEFAULT_PAGE_SIZE)
    .transform((n) => Math.min(n, MAX_PAGE_SIZE))
    .describe(`Page size, 1–${MAX_PAGE_SIZE} (larger values are capped)`),
  cursor: z.string().optional().describe('`nextCursor` of the previous page'),
});

/** What `paginate` hands its fetch: Prisma's `take` / `cursor` / `skip`. */
export interface PageArgs<Id extends string | number> {
  take: number;
  cursor?: { id: Id };
  skip?: number;
}

export interface Page<T> {
  items: T[];
  /** Pass as `cursor` for the next page; null on the last page. */
  nextCursor: string | null;
}

/** JSON schema of a page of `item`s, for the OpenAPI document. */
export function pageOf<T extends z.ZodType>(item: T) {
  return z.object({ items: z.array(item), nextCursor: z.string().nullable() });
}

export function encodeCursor(id: string | number): string {
  return Buffer.from(JSON.stringify([id]), 'utf8').toString('base64url');
}

/** What ids a list pages by: text, a 32-bit serial (`int`) or a 64-bit one (`bigint`, as a number). */
export type IdKind = 'string' | 'int' | 'bigint';

const MAX_ID: Record<Exclude<IdKind, 'string'>, number> = {
  int: 2 ** 31 - 1,
  bigint: Number.MAX_SAFE_INTEGER,
};

export function decodeCursor<Id extends string | number>(cursor: string, kind: IdKind): Id {
  try {
    const [id] = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')) as unknown[];
    // Numeric ids are positive integers within their column's range (else BigInt() or Prisma would
    // answer a 500).
    if (
      kind === 'string'
        ? typeof id === 'string'
        : Number.isSafeInteger(id) && (id as number) > 0 && (id as number) <= MAX_ID[kind]
    )
      return id as Id;
  } catch {
    // fall through
  }
  throw new ValidationError('invalid cursor', [
    { path: 'cursor', message: 'is not a cursor this API returned' },
  ]);
}

/**
 * Keyset pagination over a Prisma `findMany`: the cursor is the last row's id, rows are fetched
 * after it in the query's order (whose last key must be the id, so the order is total).
 * `fetch` receives Prisma's `take` / `cursor` / `skip`.
 */
export async function paginate<Row extends { id: Id }, Id extends string | number, Out = Row>(
  query: { limit: number; cursor?: string | undefined },
  fetch: (args: PageArgs<Id>) => Promise<Row[]>,
  map: (row: Row) => Out = (row) => row as unknown as Out,
  idKind: IdKind = 'string',
): Promise<Page<Out>> {
  const args: PageArgs<Id> = { take: query.limit + 1 };
  if (query.cursor) {
    args.cursor = { id: decodeCursor<Id>(query.cursor, idKind) };
    args.skip = 1;
  }
  const rows = await fetch(args);
  const more = rows.length > query.limit;
  const items = more ? rows.slice(0, query.limit) : rows;
  const last = items.at(-1);
  return { items: items.map(map), nextCursor: more && last ? encodeCursor(last.id) : null };
}
