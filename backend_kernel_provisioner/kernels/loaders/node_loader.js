// Loader of the Node.js session kernel (protocol: backend_kernel_provisioner/kernels/session.py).
// Cells are evaluated by the evaluator of Node's own REPL (top-level await, declarations that
// persist, require relative to the working directory), never through its prompt.
// A cell ends as a script would: once its value (or awaited promise) settled AND the asynchronous
// work it started that a script waits for is done: its timers (setTimeout/setInterval/setImmediate
// with a reference) and its readers of stdin (readline questions and 'line' listeners, 'data',
// 'readable' and 'keypress' listeners on process.stdin, unless it was paused), its file system calls
// and lookups in flight and its exec'd programs (node_pending.js). An interrupt or an error ends it at
// once and cancels that work (the timers are cleared, the stdin readers removed, the programs stopped).
'use strict';
const fs = require('fs');
const net = require('net');
const readline = require('readline');
const readlinePromises = require('readline/promises');
const repl = require('repl');
const util = require('util');
const { Writable, PassThrough, Readable } = require('stream');
const { inspectName } = require('./node_inspect.js');
const isComplete = require('./node_is_complete.js');

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

// display(), display.html(), display.png(), ...: rich output on the status channel (node_display.js).
require('./node_display.js')(server.context, report, require('path').dirname(statusPath));

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

let current = null; // {id, done, answer, timers, children} of the running cell

// File system calls, lookups and exec'd programs a cell started: it waits for them (node_pending.js).
const cellWork = require('./node_pending.js')(childProcess, () => current);

// -- timers a cell starts: the cell waits for them (an unref'd timer, as in a script, does not count) --
for (const [name, clear] of [['setTimeout', clearTimeout], ['setInterval', clearInterval],
  ['setImmediate', clearImmediate]]) {
  const original = globalThis[name];
  const tracked = {
    [name](...args) {
      const timer = original(...args);
      if (current) current.timers.push({ timer, clear });
      return timer;
    },
  }[name];
  if (original[util.promisify.custom]) tracked[util.promisify.custom] = original[util.promisify.custom];
  Object.defineProperty(server.context, name, { value: tracked, writable: true, configurable: true });
}

function timersPending(cell) {
  cell.timers = cell.timers.filter(({ timer }) => !timer._destroyed);
  return cell.timers.some(({ timer }) => typeof timer.hasRef !== 'function' || timer.hasRef());
}

// -- stdin: process.stdin reads the pipe only while a reader waits ------------------------------
// Node's own process.stdin (a net.Socket on fd 0) keeps fd 0 in libuv's epoll set from its first
// use on, whether anybody still reads or not; the kernel, which asks the frontend for input when
// the interpreter waits on stdin, would then ask in every later cell that awaits anything. So
// process.stdin is a stream of ours, fed by a socket on a second descriptor of the pipe that
// exists only while a reader waits (a synchronous read of fd 0, as input() does, is unaffected).
const interfaces = new Set(); // readline interfaces on process.stdin that are open
const readlineListeners = new WeakSet(); // stdin listeners those interfaces added
const OWN_LISTENERS = new Set(['ondata', 'onData', 'onkeypress']); // readline's, when not seen added

class SessionStdin extends Readable {
  constructor() {
    super();
    this.fd = 0;
    this.demand = false;
    this.source = null;
  }

  _read() {
    this.demand = true;
  }

  sync() {
    const run = this.demand && !this.destroyed && stdinWanted(this);
    if (run && !this.source) this.start();
    else if (!run && this.source) this.stop();
  }

  start() {
    let source;
    try {
      source = new net.Socket({ fd: fs.openSync('/proc/self/fd/0', 'r'), readable: true, writable: false });
    } catch (err) {
      this.destroy(err);
      return;
    }
    this.source = source;
    source.on('data', (chunk) => {
      if (this.destroyed) return;
      this.demand = false; // _read sets it again when the consumer wants more
      this.push(chunk);
      // Stop reading before the loop sleeps again, or the kernel would take the reader just served
      // for one still waiting; the next check starts it again if a reader still waits.
      if (!this.demand) this.stop();
    });
    source.on('end', () => { this.stop(); this.push(null); });
    source.on('error', (err) => { this.stop(); this.destroy(err); });
  }

  stop() {
    const source = this.source;
    this.source = null;
    if (source) source.destroy();
  }

  ref() { return this; }

  unref() { return this; }
}

let stdinStream = null;
try {
  if (fs.fstatSync(0).isFIFO()) {
    Object.defineProperty(process, 'stdin', {
      configurable: true, enumerable: true, get: () => stdinStream || (stdinStream = new SessionStdin()),
    });
  }
} catch (err) { /* no fd 0: Node's own process.stdin */ }

for (const module of [readline, readlinePromises]) {
  const create = module.createInterface;
  module.createInterface = function createInterface(...args) {
    const input = stdinStream;
    const before = input ? new Set([...input.listeners('data'), ...input.listeners('keypress')]) : null;
    const rl = create.apply(this, args);
    if (input && rl.input === input) {
      for (const f of [...input.listeners('data'), ...input.listeners('keypress')]) {
        if (!before.has(f)) readlineListeners.add(f);
      }
      interfaces.add(rl);
      rl.once('close', () => interfaces.delete(rl));
    }
    return rl;
  };
}

function interfaceSymbol(rl, names) {
  for (let object = rl; object; object = Object.getPrototypeOf(object)) {
    const found = Object.getOwnPropertySymbols(object).find((sym) => names.includes(sym.description));
    if (found) return found;
  }
  return null;
}

function questionPending(rl) {
  if (rl._questionCallback) return true;
  const key = interfaceSymbol(rl, ['_questionCallback', 'kQuestionCallback']);
  return Boolean(key && rl[key]);
}

function rawListeners(stdin, event) {
  return stdin.listeners(event).filter((f) => !readlineListeners.has(f) && !OWN_LISTENERS.has(f.name));
}

// Somebody waits for a line of stdin (and would keep a script running for it).
function stdinWanted(stdin) {
  if (!stdin || stdin.destroyed || stdin.readableEnded) return false;
  // A listener of a stream the program paused waits for nothing (a script with only that exits).
  const flowing = stdin.readableFlowing !== false;
  if (flowing && (rawListeners(stdin, 'data').length || rawListeners(stdin, 'keypress').length)) return true;
  if (stdin.listenerCount('readable') > 0 || (stdin._readableState?.pipes?.length ?? 0) > 0) return true;
  for (const rl of interfaces) {
    if (questionPending(rl) || rl.listenerCount('line') > 0) return true;
  }
  return false;
}

// The cell is over: what it left waiting for stdin gives up (a question is cancelled, an interface
// read line by line is closed, listeners are removed), and its timers are cleared.
function abandon(cell) {
  for (const { timer, clear } of cell.timers) clear(timer);
  cell.timers = [];
  cellWork.cancel(cell);
  const stdin = stdinStream;
  if (!stdin) return;
  for (const event of ['data', 'keypress', 'readable']) {
    for (const f of event === 'readable' ? stdin.listeners(event) : rawListeners(stdin, event)) {
      stdin.removeListener(event, f);
    }
  }
  for (const rl of interfaces) {
    const cancel = questionPending(rl) && interfaceSymbol(rl, ['kQuestionCancel']);
    if (cancel) rl[cancel]();
    if (questionPending(rl) || rl.listenerCount('line') > 0) rl.close();
  }
  stdin.sync();
}

// While a cell is not over: serve its stdin readers, and end it once its work is done.
function checkCell(cell) {
  if (cell.done) return;
  if (stdinStream) stdinStream.sync();
  if (cell.answer && !timersPending(cell) && !stdinWanted(stdinStream) && !cellWork.workPending(cell)) {
    cell.finish(cell.answer);
    return;
  }
  cell.poll = setTimeout(checkCell, 10, cell);
  cell.poll.unref();
}

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
  const cell = { id, done: false, answer: null, timers: [], children: new Set(), poll: null };
  current = cell;
  const finish = (answer) => {
    if (cell.done) return;
    cell.done = true;
    if (current === cell) current = null;
    if (cell.poll) clearTimeout(cell.poll);
    if (answer.status !== 'ok') abandon(cell);
    if (cell.cleanup) cell.cleanup();
    report(answer);
  };
  cell.finish = finish;
  try {
    server.eval(code, server.context, `cell[${id}]`, (err, result) => {
      if (err) return finish(errorAnswer(id, err));
      const answer = { id, status: 'ok' };
      if (result !== undefined) answer.result = util.inspect(result, { colors: false, depth: 4 });
      cell.answer = answer;
      if (cell.poll) clearTimeout(cell.poll);
      checkCell(cell); // a plain cell ends here and now
    });
  } catch (err) {
    finish(errorAnswer(id, err));
  }
  if (!cell.done && !cell.poll) checkCell(cell); // an awaiting cell's stdin readers are served meanwhile
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

// Inspect: the file holds the name and the detail level, one a line (node_inspect.js answers).
function inspect(id, text) {
  const [name, detail] = text.split('\n');
  report({ id, status: 'ok', ...inspectName(name.trim(), Number(detail) || 0, server.context) });
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
    else if (match[2] === 'inspect') inspect(id, text);
    else if (match[2] === 'is_complete') report({ id, status: 'ok', complete: isComplete(text) });
    else report({ id, status: 'error', ename: 'ProtocolError', evalue: `unknown request ${match[2]}` });
  }
});
report({ status: 'ready' });
