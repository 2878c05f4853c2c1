import { CircuitOpenError } from './errors.ts';

export interface CircuitBreakersOptions {
  /** Consecutive failures that open a host's circuit. @defaultValue 5 */
  failureThreshold?: number;
  /** How long an open circuit fails fast before it lets one trial request through. @defaultValue 30_000 */
  coolDownMs?: number;
  /** Milliseconds since the epoch. @defaultValue Date.now */
  clock?: () => number;
  /** Called on every state change (for logs and metrics), with the target and the breaker's scope. */
  onStateChange?: (target: string, from: CircuitState, to: CircuitState, scope: string) => void;
}

export type CircuitState = 'closed' | 'open' | 'half-open';

export interface CircuitSnapshot {
  state: CircuitState;
  consecutiveFailures: number;
  openedAt: Date | null;
  retryAt: Date | null;
}

/**
 * A pass for one request through a host's breaker. Settle it exactly once: `success()` when the host
 * answered sensibly (including 4xx), `failure()` on 5xx, 429 or a network error, `release()` when
 * the outcome says nothing about the host (the run was aborted). Later calls are ignored.
 */
export interface CircuitPermit {
  success(): void;
  failure(): void;
  release(): void;
}

interface Circuit {
  target: string;
  scope: string;
  state: CircuitState;
  failures: number;
  openedAt: number;
  trialInFlight: boolean;
}

/**
 * Circuit breakers keyed by scope and target (`host:port`), one set per worker process so that the
 * runs towards a failing host fail fast instead of piling up. Closed → (N consecutive failures) →
 * open → (cool-down) → half-open: one trial request; success closes, failure re-opens.
 *
 * The HTTP executor scopes every breaker to the job that sends the request (`ctx.jobId`): a host is
 * shared by jobs whose endpoints fail independently (one job's `/fail` must not fail another job's
 * `/ok` on the same host), and a job's failures are the only evidence about that job's endpoint.
 * The price is that N jobs towards one dead host each pay their own N failures before failing fast.
 */
export class CircuitBreakers {
  readonly failureThreshold: number;
  readonly coolDownMs: number;
  private readonly clock: () => number;
  private readonly onStateChange: CircuitBreakersOptions['onStateChange'];
  private readonly circuits = new Map<string, Circuit>();

  constructor(options: CircuitBreakersOptions = {}) {
    this.failureThreshold = options.failureThreshold ?? 5;
    this.coolDownMs = options.coolDownMs ?? 30_000;
    this.clock = options.clock ?? Date.now;
    this.onStateChange = options.onStateChange;
    if (!(Number.isSafeInteger(this.failureThreshold) && this.failureThreshold >= 1)) {
      throw new RangeError('failureThreshold must be a positive integer');
    }
    if (!(this.coolDownMs >= 0)) throw new RangeError('coolDownMs must be >= 0');
  }

  /**
   * Lets one request towards `target` through the breaker of `scope` (the HTTP executor passes the
   * job id; requests with the same scope and target share one breaker), or throws `CircuitOpenError`
   * (code CIRCUIT_OPEN) without anything being sent when the circuit is open or its half-open trial
   * is already in flight.
   */
  acquire(target: string, scope = ''): CircuitPermit {
    const key = circuitKey(scope, target);
    const circuit = this.circuits.get(key);
    let trial = false;
    if (circuit && circuit.state !== 'closed') {
      const retryAt = circuit.openedAt + this.coolDownMs;
      if (circuit.state === 'open' && this.clock() >= retryAt) {
        this.transition(circuit, 'half-open');
      }
      if (circuit.state === 'open' || circuit.trialInFlight) {
        const now = this.clock();
        throw new CircuitOpenError(target, new Date(circuit.openedAt), new Date(Math.max(retryAt, now)), now);
      }
      circuit.trialInFlight = true;
      trial = true;
    }
    let settled = false;
    const settle = (outcome: 'success' | 'failure' | 'release') => {
      if (settled) return;
      settled = true;
      this.record(scope, target, outcome, trial);
    };
    return {
      success: () => settle('success'),
      failure: () => settle('failure'),
      release: () => settle('release'),
    };
  }

  /** The circuit of `target` in `scope` as it stands (one never seen is closed). */
  snapshot(target: string, scope = ''): CircuitSnapshot {
    const c = this.circuits.get(circuitKey(scope, target));
    if (!c) return { state: 'closed', consecutiveFailures: 0, openedAt: null, retryAt: null };
    const open = c.state !== 'closed';
    return {
      state: c.state,
      consecutiveFailures: c.failures,
      openedAt: open ? new Date(c.openedAt) : null,
      retryAt: open ? new Date(c.openedAt + this.coolDownMs) : null,
    };
  }

  private record(
    scope: string,
    target: string,
    outcome: 'success' | 'failure' | 'release',
    trial: boolean,
  ): void {
    const key = circuitKey(scope, target);
    const circuit = this.circuits.get(key);
    if (trial && circuit) circuit.trialInFlight = false;
    if (outcome === 'release') return;
    if (outcome === 'success') {
      if (!circuit) return;
      // A success seen while the circuit is open came from a request let through before it opened:
      // it does not close the circuit; only the half-open trial does.
      if (circuit.state === 'open') return;
      if (circuit.state === 'half-open' && !trial) return;
      if (circuit.state !== 'closed') this.transition(circuit, 'closed');
      // Closed with no failures is the default: forget the host rather than grow the map.
      this.circuits.delete(key);
      return;
    }
    const c: Circuit = circuit ?? {
      target,
      scope,
      state: 'closed',
      failures: 0,
      openedAt: 0,
      trialInFlight: false,
    };
    if (!circuit) this.circuits.set(key, c);
    c.failures++;
    if (c.state === 'half-open' ? trial : c.state === 'closed' && c.failures >= this.failureThreshold) {
      c.openedAt = this.clock();
      this.transition(c, 'open');
    }
  }

  private transition(circuit: Circuit, to: CircuitState): void {
    const from = circuit.state;
    circuit.state = to;
    if (from !== to) this.onStateChange?.(circuit.target, from, to, circuit.scope);
  }
}

/** Job ids (ULIDs) never contain a space, so scope and target cannot run into each other. */
function circuitKey(scope: string, target: string): string {
  return `${scope} ${target}`;
}
