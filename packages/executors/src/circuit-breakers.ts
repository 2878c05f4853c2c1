import { CircuitOpenError } from './errors.ts';

export interface CircuitBreakersOptions {
  /** Consecutive failures that open a host's circuit. @defaultValue 5 */
  failureThreshold?: number;
  /** How long an open circuit fails fast before it lets one trial request through. @defaultValue 30_000 */
  coolDownMs?: number;
  /** Milliseconds since the epoch. @defaultValue Date.now */
  clock?: () => number;
  /** Called on every state change (for logs and metrics). */
  onStateChange?: (key: string, from: CircuitState, to: CircuitState) => void;
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
  state: CircuitState;
  failures: number;
  openedAt: number;
  trialInFlight: boolean;
}

/**
 * Circuit breakers keyed by target (`host:port`), one set per worker process so that every run
 * towards a failing host fails fast instead of piling up. Closed → (N consecutive failures) → open
 * → (cool-down) → half-open: one trial request; success closes, failure re-opens.
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
   * Lets one request towards `key` through, or throws `CircuitOpenError` (code CIRCUIT_OPEN) without
   * anything being sent when the circuit is open or its half-open trial is already in flight.
   */
  acquire(key: string): CircuitPermit {
    const circuit = this.circuits.get(key);
    let trial = false;
    if (circuit && circuit.state !== 'closed') {
      const retryAt = circuit.openedAt + this.coolDownMs;
      if (circuit.state === 'open' && this.clock() >= retryAt) {
        this.transition(key, circuit, 'half-open');
      }
      if (circuit.state === 'open' || circuit.trialInFlight) {
        throw new CircuitOpenError(
          key,
          new Date(circuit.openedAt),
          new Date(Math.max(retryAt, this.clock())),
        );
      }
      circuit.trialInFlight = true;
      trial = true;
    }
    let settled = false;
    const settle = (outcome: 'success' | 'failure' | 'release') => {
      if (settled) return;
      settled = true;
      this.record(key, outcome, trial);
    };
    return {
      success: () => settle('success'),
      failure: () => settle('failure'),
      release: () => settle('release'),
    };
  }

  /** The circuit of `key` as it stands (a key never seen is closed). */
  snapshot(key: string): CircuitSnapshot {
    const c = this.circuits.get(key);
    if (!c) return { state: 'closed', consecutiveFailures: 0, openedAt: null, retryAt: null };
    const open = c.state !== 'closed';
    return {
      state: c.state,
      consecutiveFailures: c.failures,
      openedAt: open ? new Date(c.openedAt) : null,
      retryAt: open ? new Date(c.openedAt + this.coolDownMs) : null,
    };
  }

  private record(key: string, outcome: 'success' | 'failure' | 'release', trial: boolean): void {
    const circuit = this.circuits.get(key);
    if (trial && circuit) circuit.trialInFlight = false;
    if (outcome === 'release') return;
    if (outcome === 'success') {
      if (!circuit) return;
      // A success seen while the circuit is open came from a request let through before it opened:
      // it does not close the circuit; only the half-open trial does.
      if (circuit.state === 'open') return;
      if (circuit.state === 'half-open' && !trial) return;
      if (circuit.state !== 'closed') this.transition(key, circuit, 'closed');
      // Closed with no failures is the default: forget the host rather than grow the map.
      this.circuits.delete(key);
      return;
    }
    const c = circuit ?? { state: 'closed' as CircuitState, failures: 0, openedAt: 0, trialInFlight: false };
    if (!circuit) this.circuits.set(key, c);
    c.failures++;
    if (c.state === 'half-open' ? trial : c.state === 'closed' && c.failures >= this.failureThreshold) {
      c.openedAt = this.clock();
      this.transition(key, c, 'open');
    }
  }

  private transition(key: string, circuit: Circuit, to: CircuitState): void {
    const from = circuit.state;
    circuit.state = to;
    if (from !== to) this.onStateChange?.(key, from, to);
  }
}
