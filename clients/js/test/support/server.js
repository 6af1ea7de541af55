// Starts the real Python signedws server of demo/serve.py as a subprocess on
// 127.0.0.1 and talks to its demo issuer. Used by the Node <-> Python and the
// Chromium tests.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

const REPO = fileURLToPath(new URL('../../../../', import.meta.url));
const SERVE = fileURLToPath(new URL('../../demo/serve.py', import.meta.url));

/** The Python that has signedws installed: $SIGNEDWS_PYTHON, the repo's venv, or python3. */
export function python() {
  if (process.env.SIGNEDWS_PYTHON) return process.env.SIGNEDWS_PYTHON;
  const venv = `${REPO}.venv/bin/python`;
  return existsSync(venv) ? venv : 'python3';
}

/**
 * Start demo/serve.py; resolves with where it listens and a `stop()`.
 *
 * @param {string[]} args extra arguments
 */
export async function startServer(args = []) {
  const child = spawn(python(), [SERVE, '--port', '0', ...args], {
    cwd: REPO,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (chunk) => {
    stderr += chunk;
  });
  const lines = createInterface({ input: child.stdout });
  const where = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`server did not start:\n${stderr}`)), 15000);
    lines.once('line', (line) => {
      clearTimeout(timer);
      resolve(JSON.parse(line));
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`server exited with ${code}:\n${stderr}`));
    });
  });
  const exited = new Promise((resolve) => child.once('exit', resolve));
  return {
    ...where,
    /** The server's log so far. */
    log: () => stderr,
    async stop() {
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(timer);
    },
    /** @param {string} path @param {object} [body] */
    async post(path, body = {}) {
      const response = await fetch(`${where.http}${path}`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify(body),
      });
      if (!response.ok) throw new Error(`${path}: HTTP ${response.status}`);
      return response.json();
    },
    async config() {
      return (await fetch(`${where.http}/config`)).json();
    },
    /** What the server verified and refused so far. */
    async events() {
      return (await fetch(`${where.http}/events`)).json();
    },
  };
}
