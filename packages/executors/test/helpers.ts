import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { CircuitBreakers, type ExecContext, type ExecLogger, type OutboundPolicy } from '../src/index.ts';

export interface RecordedRequest {
  method: string;
  url: string;
  headers: IncomingMessage['headers'];
  body: string;
}

export interface TestServer {
  port: number;
  /** `http://127.0.0.1:<port>` */
  origin: string;
  requests: RecordedRequest[];
  close(): Promise<void>;
}

type Handler = (req: IncomingMessage, res: ServerResponse, body: string) => unknown;

/** A real HTTP server on 127.0.0.1 (random port) that records every request it sees. */
export async function startServer(handler: Handler): Promise<TestServer> {
  const requests: RecordedRequest[] = [];
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      requests.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, body });
      void Promise.resolve(handler(req, res, body)).catch((err: unknown) => {
        res.statusCode = 599;
        res.end(String(err));
      });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    port,
    origin: `http://127.0.0.1:${port}`,
    requests,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

export interface LogLine {
  level: keyof ExecLogger;
  msg: string;
  context?: Record<string, unknown>;
}

export function memoryLogger(): ExecLogger & { lines: LogLine[] } {
  const lines: LogLine[] = [];
  const at =
    (level: keyof ExecLogger) =>
    (msg: string, context?: Record<string, unknown>): void => {
      lines.push({ level, msg, context });
    };
  return {
    lines,
    trace: at('trace'),
    debug: at('debug'),
    info: at('info'),
    warn: at('warn'),
    error: at('error'),
  };
}

/** Only the test servers' address is reachable: 127.0.0.1 and nothing else internal. */
export const LOCAL_ONLY: OutboundPolicy = { allowHosts: ['127.0.0.1'], allowCidrs: [] };
export const NOTHING_INTERNAL: OutboundPolicy = { allowHosts: [], allowCidrs: [] };

export function makeCtx(
  overrides: Partial<ExecContext> = {},
): ExecContext & { log: ReturnType<typeof memoryLogger> } {
  return {
    runId: '01JRUN0000000000000000000A',
    jobId: '01JJOB0000000000000000000A',
    attempt: 1,
    idempotencyKey: '01JJOB0000000000000000000A-1767225600000',
    signal: new AbortController().signal,
    outbound: LOCAL_ONLY,
    breakers: new CircuitBreakers(),
    ...overrides,
    log: memoryLogger(),
  };
}

/** Runs `fn` and returns what it threw (fails the test when it does not throw). */
export async function rejection(fn: () => Promise<unknown>): Promise<Error & Record<string, unknown>> {
  try {
    await fn();
  } catch (err) {
    return err as Error & Record<string, unknown>;
  }
  throw new Error('expected a rejection');
}
