import { loadConfigOrExit } from '@chronos/config';
import { logDestination, routeConsoleTo, stopOnSignals } from '@chronos/core';
import { pino } from 'pino';
import { createSchedulerService } from './scheduler.ts';

const config = loadConfigOrExit('chronos-scheduler');
const log = pino({ name: 'chronos-scheduler', level: config.logLevel }, logDestination(config.logFormat));
routeConsoleTo(log);
const scheduler = createSchedulerService(config, log);
stopOnSignals(scheduler, log, { forceAfterMs: 15_000 });
try {
  await scheduler.start();
} catch (err) {
  log.fatal({ err }, `scheduler failed to start: ${(err as Error).message}`);
  await scheduler.stop().catch(() => {});
  process.exit(1);
}
