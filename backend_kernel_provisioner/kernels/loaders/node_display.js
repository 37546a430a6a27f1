// Rich output of the Node.js session kernel: the global `display` of the cells (loaded by node_loader.js).
// Each call writes one {"display": ...} line on the status channel (protocol:
// backend_kernel_provisioner/kernels/interpreter.py) and waits for the kernel's line on the FIFO
// display-ack: Node writes to pipes synchronously on Linux, so what the cell printed before comes first,
// and what it prints after comes after.
//
//   display(value)               the value as text (util.inspect), like a cell's result
//   display.html(s)  display.markdown(s)  display.latex(s)  display.svg(s)  display.text(s)
//   display.json(objectOrJsonText)
//   display.png(bufferOrPath)  display.jpeg(bufferOrPath)  display.gif(bufferOrPath)
//   display.mime({'text/html': ..., 'text/plain': ...})   any bundle
// Each takes an optional last argument `metadata` (for example {width: 200} for an image).
'use strict';
const fs = require('fs');
const path = require('path');
const util = require('util');

module.exports = function install(context, send, folder) {
  const ackPath = path.join(folder, 'display-ack');

  function awaitAck() {
    const fd = fs.openSync(ackPath, 'r'); // the kernel holds it open: this open does not wait
    try {
      const byte = Buffer.alloc(1);
      while (fs.readSync(fd, byte, 0, 1, null) === 1 && byte[0] !== 10);
    } finally {
      fs.closeSync(fd);
    }
  }

  function publish(data, metadata) {
    send({ display: { data, metadata: metadata || {} } });
    awaitAck();
  }

  function text(value, name) {
    if (typeof value !== 'string') throw new TypeError(`display.${name}() takes a string`);
    return value;
  }

  function image(value, name) {
    if (Buffer.isBuffer(value) || value instanceof Uint8Array) return Buffer.from(value).toString('base64');
    if (typeof value === 'string') return fs.readFileSync(path.resolve(value)).toString('base64');
    throw new TypeError(`display.${name}() takes a Buffer or the path of an image file`);
  }

  const display = function display(value, metadata) {
    publish({ 'text/plain': util.inspect(value, { colors: false, depth: 4 }) }, metadata);
  };
  const textTypes = { html: 'text/html', markdown: 'text/markdown', latex: 'text/latex', svg: 'image/svg+xml',
    text: 'text/plain', javascript: 'application/javascript' };
  for (const [name, mime] of Object.entries(textTypes)) {
    display[name] = (value, metadata) => publish({ [mime]: text(value, name) }, metadata);
  }
  for (const [name, mime] of Object.entries({ png: 'image/png', jpeg: 'image/jpeg', gif: 'image/gif' })) {
    display[name] = (value, metadata) => publish({ [mime]: image(value, name) }, metadata);
  }
  display.json = (value, metadata) => publish({ 'application/json': value === undefined ? null : value }, metadata);
  display.mime = (bundle, metadata) => {
    if (!bundle || typeof bundle !== 'object') throw new TypeError('display.mime() takes {mime: value, ...}');
    publish({ ...bundle }, metadata);
  };
  context.display = display;
};
