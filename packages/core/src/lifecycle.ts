/** Something that starts and stops cleanly. */
export interface Service {
  start(): Promise<void>;
  stop(): Promise<void>;
}

interface MinimalLogger {
  info(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

/**
 * Wires SIGTERM / SIGINT to `stop()` for a process's main service: the first signal stops it
 * cleanly (bounded by `forceAfterMs`) and exits 0; a second signal or the deadline exits 1.
 */
export function stopOnSignals(
  service: Pick<Service, 'stop'>,
  log: MinimalLogger,
  opts: { forceAfterMs: number; exit?: (code: number) => void },
): void {
  const exit = opts.exit ?? ((code: number) => process.exit(code));
  let stopping = false;
  const onSignal = (signal: NodeJS.Signals) => {
    if (stopping) {
      log.error({ signal }, 'second signal: exiting now');
      return exit(1);
    }
    stopping = true;
    log.info({ signal }, 'stopping');
    const timer = setTimeout(() => {
      log.error({ forceAfterMs: opts.forceAfterMs }, 'stop took too long: exiting');
      exit(1);
    }, opts.forceAfterMs);
    timer.unref();
    service.stop().then(
      () => {
        clearTimeout(timer);
        log.info({}, 'stopped');
        exit(0);
      },
      (err: unknown) => {
        log.error({ err }, 'stop failed');
        exit(1);
      },
    );
  };
  process.once('SIGTERM', onSignal);
  process.once('SIGINT', onSignal);
}
