// Child processes of the launcher: prefixed output, bounded stops, command lookup.
import { execFileSync, spawn } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { platform } from 'node:os';
import { clearInterval, setInterval } from 'node:timers';
import { basename, delimiter, join } from 'node:path';
import { createInterface } from 'node:readline';

/** Copies each line of `stream` to `out`, prefixed. */
export function pipeLines(stream, out, prefix) {
  const rl = createInterface({ input: stream, crlfDelay: Infinity });
  rl.on('line', (line) => out.write(`${prefix}${line}\n`));
}

/**
 * Starts a long-running child in its own process group, so that Ctrl-C in the terminal reaches
 * only the launcher, which then stops the children in order (a child hit by the terminal's SIGINT
 * and then by our SIGTERM would take the second signal as "exit now"). The child gets an IPC
 * channel it never reads: when the launcher dies, even by SIGKILL, the channel closes and the
 * child stops itself (stopOnSignals in @chronos/core).
 */
export function spawnService(name, command, args, { cwd, env }) {
  const child = spawn(command, args, {
    cwd,
    env,
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
  });
  const prefix = `[${name}] `;
  pipeLines(child.stdout, process.stdout, prefix);
  pipeLines(child.stderr, process.stderr, prefix);
  const exited = new Promise((resolve) => {
    child.once('exit', (code, signal) => resolve({ code, signal }));
    child.once('error', (err) => resolve({ code: null, signal: null, error: err }));
  });
  return { name, child, exited, running: () => child.exitCode === null && child.signalCode === null };
}

/**
 * Signals the process group a detached child leads (the child and whatever it started). With
 * `orChild`, a child that leads no group is signalled alone: only for a child not yet reaped, as
 * a reaped child's pid may already belong to another process.
 */
export function signalGroup(pid, signal, { orChild = false } = {}) {
  try {
    process.kill(-pid, signal);
    return true;
  } catch {
    if (!orChild) return false;
    try {
      process.kill(pid, signal);
      return true;
    } catch {
      return false;
    }
  }
}

/**
 * Sends `signal` to a child and waits for it to exit; after `graceMs` kills its whole process
 * group. Afterwards any process left in the group (something the child started) is killed too.
 */
export async function stopChild(child, exited, { signal = 'SIGTERM', graceMs = 30_000 } = {}) {
  if (child.exitCode === null && child.signalCode === null && child.pid) {
    try {
      process.kill(child.pid, signal);
    } catch {
      // already gone
    }
    let timer;
    const timeout = new Promise((resolve) => {
      timer = setTimeout(() => resolve('timeout'), graceMs);
    });
    const result = await Promise.race([exited.then(() => 'exited'), timeout]);
    clearTimeout(timer);
    if (result === 'timeout') {
      signalGroup(child.pid, 'SIGKILL', { orChild: true });
      await exited;
    }
  }
  if (child.pid) signalGroup(child.pid, 'SIGKILL');
}

/**
 * Runs a one-shot command (install, generate, migrate). With `prefix` its output is shown line by
 * line; without, it is captured and returned. Returns the child (so a signal can stop it) and a
 * promise of its exit code and captured output.
 */
export function runCommand(command, args, { cwd, env, prefix }) {
  const child = spawn(command, args, { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  if (prefix !== undefined) {
    pipeLines(child.stdout, process.stdout, prefix);
    pipeLines(child.stderr, process.stderr, prefix);
  } else {
    child.stdout.on('data', (d) => (output += d));
    child.stderr.on('data', (d) => (output += d));
  }
  const done = new Promise((resolve) => {
    child.once('error', (err) => resolve({ code: null, output: `${output}${err.message}\n` }));
    child.once('close', (code, signal) => resolve({ code: code ?? `signal ${signal}`, output }));
  });
  return { child, done };
}

/** Absolute path of an executable found on PATH, or undefined. */
export function which(name, path = process.env.PATH ?? '') {
  for (const dir of path.split(delimiter)) {
    if (!dir) continue;
    const candidate = join(dir, name);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not here
    }
  }
  return undefined;
}

/**
 * `[command, args]` that run `command` with a parent-death signal: when the launcher dies (even by
 * SIGKILL) the kernel sends `signal` to the child. Linux only, through util-linux's setpriv; where
 * there is none the command runs as given and `wrapped` is false.
 */
export function withParentDeathSignal(command, args, signal, path = process.env.PATH ?? '') {
  const setpriv = platform() === 'linux' ? which('setpriv', path) : undefined;
  if (!setpriv) return { command, args, wrapped: false };
  return { command: setpriv, args: ['--pdeathsig', signal, '--', command, ...args], wrapped: true };
}

/** The parent pid and command line of `pid`, from ps (Linux and macOS alike). */
function parentOf(pid) {
  try {
    const line = execFileSync('ps', ['-o', 'ppid=,args=', '-p', String(pid)], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
    }).trim();
    const m = /^(\d+)\s+(.*)$/.exec(line);
    return m ? { ppid: Number(m[1]), args: m[2] } : undefined;
  } catch {
    return undefined;
  }
}

const WRAPPERS = new Set([
  'pnpm',
  'pnpm.cjs',
  'pnpm.js',
  'pnpm.mjs',
  'npm',
  'npm-cli.js',
  'npx',
  'npx-cli.js',
  'corepack',
  'yarn',
  'yarn.js',
]);

/** Is this command line a package manager, or a `sh -c` one runs a script with? */
function isWrapper(args) {
  const [first = '', second = ''] = args.trim().split(/\s+/);
  const name = basename(first);
  if (/^(sh|dash|bash|zsh)$/.test(name)) return second === '-c';
  if (WRAPPERS.has(name) || /^npm (exec|run|start)\b/.test(args)) return true;
  return /^node(js)?$/.test(name) && WRAPPERS.has(basename(second));
}

/**
 * The processes between the launcher and whoever started it that only wrap it: `pnpm start`,
 * the `sh -c` it runs scripts with, `npx pnpm@10 start`. Their pids, nearest first.
 */
export function wrapperAncestors() {
  const found = [];
  let pid = process.ppid;
  for (let depth = 0; depth < 8 && pid > 1; depth++) {
    const info = parentOf(pid);
    if (!info || !isWrapper(info.args)) break;
    found.push(pid);
    pid = info.ppid;
  }
  return found;
}

/**
 * Calls `onGone` once when any of `pids` has exited: a wrapper that was stopped (npx forwards no
 * signal to pnpm) or killed must not leave the launcher and its children running.
 */
export function watchPids(pids, onGone, intervalMs = 1000) {
  if (pids.length === 0) return () => {};
  const timer = setInterval(() => {
    for (const pid of pids) {
      try {
        process.kill(pid, 0);
      } catch (err) {
        if (err.code === 'EPERM') continue;
        clearInterval(timer);
        onGone(pid);
        return;
      }
    }
  }, intervalMs);
  timer.unref();
  return () => clearInterval(timer);
}
