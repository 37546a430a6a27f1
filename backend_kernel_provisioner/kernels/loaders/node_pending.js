// The work a Node.js cell started that `node file.js` would wait for, besides its timers and its readers
// of stdin (node_loader.js counts those): operations in flight (file system calls, DNS lookups, connects,
// writes: libuv requests, as process.getActiveResourcesInfo() lists them) and the programs started by
// child_process.exec/execFile until they closed (their callback runs then). So
// `fs.readFile(f, (e, d) => console.log(d.length))` prints in its own cell, not in a later one.
// Servers, open sockets and spawn()ed programs do not count, so a cell can still start a server or a
// program that outlives it and end; an unref()'d program does not count either, as in a script.
'use strict';
const util = require('util');

// Requests (one operation each): FSReqCallback, FSReqPromise, GetAddrInfoReqWrap, FileHandleCloseReq,
// TCPConnectWrap, WriteWrap, ShutdownWrap, ... Handles (PipeWrap, TCPWrap, ProcessWrap, Timeout) are not.
const REQUEST = /Req(Callback|Promise|Wrap)?$|ConnectWrap$|^WriteWrap$|^ShutdownWrap$/;

// Wrap exec and execFile of `childProcess` so the running cell (`currentCell()`, with a `children` set)
// knows their programs until they close; returns `workPending(cell)` and `cancel(cell)`.
module.exports = function trackPending(childProcess, currentCell) {
  function track(child) {
    const cell = currentCell();
    if (cell && child && typeof child.once === 'function') {
      cell.children.add(child);
      child.once('close', () => cell.children.delete(child));
    }
    return child;
  }

  for (const name of ['exec', 'execFile']) {
    const original = childProcess[name];
    const tracked = {
      [name](...args) {
        return track(original.apply(this, args));
      },
    }[name];
    const promised = original[util.promisify.custom]; // its promise has the program as `child`
    if (promised) {
      tracked[util.promisify.custom] = function promisedTracked(...args) {
        const promise = promised.apply(this, args);
        track(promise && promise.child);
        return promise;
      };
    }
    childProcess[name] = tracked;
  }

  function workPending(cell) {
    for (const child of cell.children) {
      const handle = child._handle;
      if (!handle || typeof handle.hasRef !== 'function' || handle.hasRef()) return true;
    }
    if (typeof process.getActiveResourcesInfo !== 'function') return false;
    return process.getActiveResourcesInfo().some((type) => REQUEST.test(type));
  }

  // An interrupted (or failed) cell's programs are cancelled: their callbacks never run (in a later cell)
  // and what still runs of them gets SIGTERM (the interrupt's SIGINT may have ended them already).
  function cancel(cell) {
    for (const child of cell.children) {
      child.removeAllListeners('exit');
      child.removeAllListeners('close');
      child.on('error', () => {});
      for (const stream of [child.stdout, child.stderr]) if (stream) stream.removeAllListeners('data');
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    }
    cell.children.clear();
  }

  return { workPending, cancel };
};
