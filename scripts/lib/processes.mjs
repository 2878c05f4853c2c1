// Child processes of the launcher: prefixed output, bounded stops, command lookup.
import { spawn } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';
import { createInterface } from 'node:readline';

/** Copies each line of `stream` to `out`, prefixed. */
export function pipeLines(stream, out, prefix) {
  const rl = createInterface({ input: stream, crlfDelay: Infinity });
  rl.on('line', (line) => out.write(`${prefix}${line}\n`));
}

/**
 * Starts a long-running child in its own process group, so that Ctrl-C in the terminal reaches
 * only the launcher, which then stops the children in order (a child hit by the terminal's SIGINT
 * and then by our SIGTERM would take the second signal as "exit now").
 */
export function spawnService(name, command, args, { cwd, env }) {
  const child = spawn(command, args, { cwd, env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
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
