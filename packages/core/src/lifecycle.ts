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
 *
 * A process started with an IPC channel (the launcher, scripts/start.mjs, starts the apps so)
 * treats the channel's end as its supervisor's death — also a SIGKILL, which no handler sees — and
 * stops the same way, within `supervisorGoneForceMs`: nobody is left to stop it or read its output.
 */
export function stopOnSignals(
  service: Pick<Service, 'stop'>,
  log: MinimalLogger,
  opts: {
    forceAfterMs: number;
    /** @defaultValue 10_000 */
    supervisorGoneForceMs?: number;
    exit?: (code: number) => void;
  },
): void {
  const exit = opts.exit ?? ((code: number) => process.exit(code));
  let stopping = false;
  const stopNow = (reason: { signal: NodeJS.Signals } | { supervisor: 'gone' }, forceAfterMs: number) => {
    stopping = true;
    log.info(reason, 'stopping');
    const timer = setTimeout(() => {
      log.error({ forceAfterMs }, 'stop took too long: exiting');
      exit(1);
    }, forceAfterMs);
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
  const onSignal = (signal: NodeJS.Signals) => {
    if (stopping) {
      log.error({ signal }, 'second signal: exiting now');
      return exit(1);
    }
    stopNow({ signal }, opts.forceAfterMs);
  };
  process.once('SIGTERM', onSignal);
  process.once('SIGINT', onSignal);
  if (process.channel) {
    process.once('disconnect', () => {
      if (!stopping)
        stopNow({ supervisor: 'gone' }, Math.min(opts.forceAfterMs, opts.supervisorGoneForceMs ?? 10_000));
    });
  }
}
