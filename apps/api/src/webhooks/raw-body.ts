import express, { type Request, type Response } from 'express';

/**
 * The exact bytes of a request body. The API's JSON parser keeps them for `application/json`
 * (`req.rawBody`); any other content type is read here, with the same size limit (413 beyond it).
 */
export async function readRawBody(req: Request, res: Response, limitBytes: number): Promise<Buffer> {
  if (req.rawBody) return req.rawBody;
  const parser = express.raw({ type: () => true, limit: limitBytes });
  await new Promise<void>((resolve, reject) => {
    void parser(req, res, (err?: unknown) => (err ? reject(err as Error) : resolve()));
  });
  req.rawBody = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
  return req.rawBody;
}

/**
 * The body as the run sees it in `{{trigger.body…}}`: parsed JSON (`application/json` and `+json`
 * types), the fields of a form (`application/x-www-form-urlencoded`; a repeated field keeps its last
 * value), else the UTF-8 text. Undefined when the body is empty.
 */
export function decodeBody(req: Request, raw: Buffer): unknown {
  if (raw.length === 0) return undefined;
  if (!Buffer.isBuffer(req.body) && req.body !== undefined) return req.body; // parsed by the JSON parser
  const text = raw.toString('utf8');
  if (req.is(['json', '+json'])) {
    try {
      return JSON.parse(text) as unknown;
    } catch {
      return text;
    }
  }
  if (req.is('urlencoded')) return Object.fromEntries(new URLSearchParams(text));
  return text;
}
