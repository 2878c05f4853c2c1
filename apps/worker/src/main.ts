import { loadConfigOrExit } from '@chronos/config';
import { logDestination, routeConsoleTo, stopOnSignals } from '@chronos/core';
import { pino } from 'pino';
import { createWorkerService } from './worker.ts';

const config = loadConfigOrExit('chronos-worker');
const log = pino({ name: 'chronos-worker', level: config.logLevel }, logDestination(config.logFormat));
routeConsoleTo(log);
const worker = createWorkerService(config, log);
stopOnSignals(worker, log, { forceAfterMs: config.worker.shutdownGraceMs + 10_000 });
try {
  await worker.start();
} catch (err) {
  log.fatal({ err }, `worker failed to start: ${(err as Error).message}`);
  await worker.stop().catch(() => {});
  process.exit(1);
}
