// Loader of the Node.js session kernel (protocol: backend_kernel_provisioner/kernels/session.py).
// Cells are evaluated by the evaluator of Node's own REPL (top-level await, declarations that
// persist, require relative to the working directory), never through its prompt.
'use strict';
const fs = require('fs');
const net = require('net');
const repl = require('repl');
const util = require('util');
const { Writable, PassThrough } = require('stream');

const cellsPath = process.env.BACKEND_SESSION_CELLS;
const statusPath = process.env.BACKEND_SESSION_STATUS;
for (const name of ['BACKEND_SESSION_CELLS', 'BACKEND_SESSION_STATUS', 'BACKEND_SESSION_DIR']) {
  delete process.env[name];
}
const statusFd = fs.openSync(statusPath, 'w');
const report = (answer) => fs.writeSync(statusFd, JSON.stringify(answer) + '\n');

// Errors the REPL reports on its own (a throw in a timer callback) go to stderr; no prompt is shown.
const toStderr = new Writable({ write(chunk, encoding, done) { process.stderr.write(chunk, done); } });
const server = repl.start({
  input: new PassThrough(), output: toStderr, prompt: '', terminal: false,
  useGlobal: false, breakEvalOnSigint: true, ignoreUndefined: true,
});

// The REPL's console writes to the REPL's output: cells use the process's own console instead.
Object.defineProperty(server.context, 'console', { value: console, writable: true, configurable: true });

// A throw inside eval (or in a callback the cell scheduled) reaches the REPL's domain, not the
// eval callback: it ends the running cell with that error (between cells it is printed on stderr).
if (server._domain) {
  server._domain.removeAllListeners('error');
  server._domain.on('error', (err) => {
    if (current) current.finish(errorAnswer(current.id, err));
    else process.stderr.write(`Uncaught ${err && err.stack ? err.stack : util.inspect(err)}\n`);
  });
}

// input(prompt): one line from standard input, synchronously (the kernel answers by input_request).
server.context.input = function input(prompt) {
  if (prompt) fs.writeSync(1, String(prompt));
  const bytes = [];
  const one = Buffer.alloc(1);
  for (;;) {
    let n;
    try {
      n = fs.readSync(0, one, 0, 1, null);
    } catch (err) {
      if (err.code === 'EINTR') {
        awaitInterrupt();
        continue;
      }
      if (err.code !== 'EAGAIN') throw err;
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 20);
      continue;
    }
    if (n === 0) return bytes.length ? Buffer.from(bytes).toString('utf8') : null;
    if (one[0] === 10) return Buffer.from(bytes).toString('utf8');
    bytes.push(one[0]);
  }
};

// A SIGINT woke the read: Node's SIGINT watchdog (a thread of its own) is about to terminate the
// cell. Wait for it here, in a wait that termination interrupts: ending the cell first would let
// the late termination land in the *next* cell. Without a watchdog (input() called from a callback)
// the interrupt is ours to raise.
function awaitInterrupt() {
  const cell = new Int32Array(new SharedArrayBuffer(4));
  for (let i = 0; i < 200; i++) Atomics.wait(cell, 0, 0, 5);
  throw Object.assign(new Error('interrupted'), { code: 'ERR_SCRIPT_EXECUTION_INTERRUPTED' });
}

// The kernel's interrupt signals the cell's programs too: a synchronous child that died of it
// returns to a cell whose termination is still on its way. Wait for it in the same way.
const childProcess = require('child_process');
for (const name of ['spawnSync', 'execSync', 'execFileSync']) {
  const original = childProcess[name];
  childProcess[name] = function interruptible(...args) {
    let result;
    try {
      result = original.apply(this, args);
    } catch (err) {
      if (err && err.signal === 'SIGINT') awaitInterrupt();
      throw err;
    }
    if (result && result.signal === 'SIGINT') awaitInterrupt();
    return result;
  };
}

let current = null; // {id, done} of the running cell

function errorAnswer(id, err) {
  if (err instanceof repl.Recoverable) err = err.err;
  const interrupted = err && (err.code === 'ERR_SCRIPT_EXECUTION_INTERRUPTED'
    || /Script execution (was )?interrupted/.test(String(err.message)));
  if (interrupted) return { id, status: 'error', ename: 'KeyboardInterrupt', evalue: 'interrupted', exit_code: 130 };
  const isError = err instanceof Error || (err && typeof err.stack === 'string');
  const ename = isError ? (err.name || 'Error') : 'Uncaught';
  const evalue = isError ? String(err.message) : util.inspect(err);
  // The stack without the frames of Node's REPL and of this loader.
  const stack = isError && typeof err.stack === 'string'
    ? err.stack.split('\n').filter((line, i) => i === 0 || !(/\(node:|at node:/.test(line) || line.includes(__filename)))
    : [`${ename}: ${evalue}`];
  return { id, status: 'error', ename, evalue, exit_code: 1, traceback: stack };
}

function run(id, code) {
  const cell = { id, done: false };
  current = cell;
  const finish = (answer) => {
    if (cell.done) return;
    cell.done = true;
    if (current === cell) current = null;
    if (cell.cleanup) cell.cleanup();
    report(answer);
  };
  cell.finish = finish;
  try {
    server.eval(code, server.context, `cell[${id}]`, (err, result) => {
      if (err) return finish(errorAnswer(id, err));
      const answer = { id, status: 'ok' };
      if (result !== undefined) answer.result = util.inspect(result, { colors: false, depth: 4 });
      finish(answer);
    });
  } catch (err) {
    finish(errorAnswer(id, err));
  }
  // SIGINT during synchronous code is handled by breakEvalOnSigint. While the cell awaits, this
  // listener ends it. It exists only then: a SIGINT listener removed while the REPL's watchdog
  // runs would reset SIGINT to its default action and kill the session.
  if (!cell.done) {
    const onSigint = () => finish(errorAnswer(id, Object.assign(new Error('interrupted'),
      { code: 'ERR_SCRIPT_EXECUTION_INTERRUPTED' })));
    process.on('SIGINT', onSigint);
    cell.cleanup = () => process.removeListener('SIGINT', onSigint);
  }
}

function complete(id, text) {
  server.complete(text, (err, found) => {
    if (err || !found) return report({ id, status: 'ok', matches: [] });
    const [matches, token] = found;
    report({ id, status: 'ok', matches: matches.filter((m) => m), token });
  });
}


const channel = new net.Socket({ fd: fs.openSync(cellsPath, 'r'), readable: true, writable: false });
let pending = '';
channel.on('data', (chunk) => {
  pending += chunk.toString('utf8');
  let newline;
  while ((newline = pending.indexOf('\n')) >= 0) {
    const line = pending.slice(0, newline);
    pending = pending.slice(newline + 1);
    const match = /^(\d+) (\w+) (.*)$/.exec(line);
    if (!match) continue;
    const id = Number(match[1]);
    const text = fs.readFileSync(match[3], 'utf8');
    if (match[2] === 'run') run(id, text);
    else if (match[2] === 'complete') complete(id, text);
    else report({ id, status: 'error', ename: 'ProtocolError', evalue: `unknown request ${match[2]}` });
  }
});
report({ status: 'ready' });
