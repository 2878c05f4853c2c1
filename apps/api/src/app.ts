import { createBullBoard } from '@bull-board/api';
import { BullMQAdapter } from '@bull-board/api/bullMQAdapter';
import { ExpressAdapter } from '@bull-board/express';
import type { Db } from '@chronos/db';
import type { QueueSet } from '@chronos/queue';
import express, { type Express } from 'express';
import type { Logger } from 'pino';
import { requireAdminBasicAuth } from './admin-auth.ts';
import { errorHandler, notFound } from './problem.ts';

export interface AppDeps {
  db: Db;
  queues: QueueSet;
  log: Logger;
}

/** Path of the Bull Board dashboard. */
export const BULL_BOARD_PATH = '/admin/queues';

/** Builds the HTTP application; it does not listen (main.ts does). */
export function createApp({ db, queues, log }: AppDeps): Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('trust proxy', 'loopback');

  app.get('/healthz', (_req, res) => {
    res.json({ status: 'ok' });
  });

  const board = new ExpressAdapter();
  board.setBasePath(BULL_BOARD_PATH);
  createBullBoard({
    queues: [...queues.values()].map((q) => new BullMQAdapter(q, { readOnlyMode: false })),
    serverAdapter: board,
    options: { uiConfig: { boardTitle: 'Chronos queues' } },
  });
  app.use(BULL_BOARD_PATH, requireAdminBasicAuth(db), board.getRouter());

  app.use(express.json({ limit: '1mb' }));
  app.use(notFound);
  app.use(errorHandler(log));
  return app;
}
