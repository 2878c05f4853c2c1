import { loadConfigOrExit } from '@chronos/config';
import { logDestination, routeConsoleTo, stopOnSignals } from '@chronos/core';
import { pino } from 'pino';
import { createApiServer } from './server.ts';

const config = loadConfigOrExit('chronos-api');
const log = pino({ name: 'chronos-api', level: config.logLevel }, logDestination(config.logFormat));
routeConsoleTo(log);
const api = createApiServer(config, log);
stopOnSignals(api, log, { forceAfterMs: config.worker.shutdownGraceMs + 5000 });
try {
  await api.start();
} catch (err) {
  log.fatal({ err }, `api failed to start: ${(err as Error).message}`);
  await api.stop().catch(() => {});
  process.exit(1);
}
