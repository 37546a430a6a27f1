// Inspect (Shift-Tab) for the Node.js session kernel: what a name of the session is, as
// ijavascript users expect: a function's signature and the head of its source, a class's
// constructor, else the value's type and a summary (util.inspect). The name (a dotted path the
// kernel checked) is evaluated in the REPL's context, so `let`/`const` bindings of cells are seen;
// getters may run, as they would in the REPL, but nothing is called.
'use strict';
const util = require('util');
const vm = require('vm');

const NAME = /^[A-Za-z_$][\w$]*(\.[A-Za-z_$][\w$]*)*$/;
const SOURCE_LINES = 12;

// The parameter list of a function's source: `(a, b = 2)` of `function f(a, b = 2) {`, of an
// arrow `(a) =>`, or `x` of `x => ...`; a class's constructor's; null for native code.
function parameters(source) {
  if (/\{\s*\[native code\]\s*\}\s*$/.test(source)) return null;
  let text = source;
  if (/^class\b/.test(text)) {
    const ctor = /\bconstructor\s*\(/.exec(text);
    if (!ctor) return '()';
    text = text.slice(ctor.index + ctor[0].length - 1);
  } else {
    const single = /^(?:async\s+)?([A-Za-z_$][\w$]*)\s*=>/.exec(text);
    if (single) return `(${single[1]})`;
    const open = text.indexOf('(');
    if (open < 0) return null;
    text = text.slice(open);
  }
  let depth = 0;
  for (let i = 0; i < text.length; i++) {
    if ('([{'.includes(text[i])) depth++;
    else if (')]}'.includes(text[i]) && --depth === 0) return text.slice(0, i + 1);
  }
  return null;
}

function describeFunction(name, fn, detail) {
  const source = Function.prototype.toString.call(fn);
  const isClass = /^class\b/.test(source);
  const params = parameters(source);
  const shown = name.split('.').pop();
  const lines = [];
  if (params !== null) lines.push(`Signature: ${isClass ? 'new ' : ''}${shown}${params.replace(/\s+/g, ' ')}`);
  else lines.push(`Signature: ${shown}(${Array.from({ length: fn.length }, (_, i) => `arg${i + 1}`).join(', ')})`
    + `  [native code, ${fn.length} declared parameter${fn.length === 1 ? '' : 's'}]`);
  const kind = fn.constructor && fn.constructor.name !== 'Function' ? fn.constructor.name : 'function';
  lines.push(`Type:      ${isClass ? 'class' : kind}`);
  if (fn.name && fn.name !== shown) lines.push(`Name:      ${fn.name}`);
  const statics = Object.getOwnPropertyNames(fn).filter((k) => !['length', 'name', 'prototype', 'caller', 'arguments'].includes(k));
  if (statics.length) lines.push(`Members:   ${statics.slice(0, 30).join(', ')}${statics.length > 30 ? ', ...' : ''}`);
  if (isClass || (fn.prototype && Object.getOwnPropertyNames(fn.prototype).length > 1)) {
    const methods = Object.getOwnPropertyNames(fn.prototype || {}).filter((k) => k !== 'constructor');
    if (methods.length) lines.push(`Methods:   ${methods.slice(0, 30).join(', ')}${methods.length > 30 ? ', ...' : ''}`);
  }
  if (params !== null) {
    const body = source.split('\n');
    const cut = detail > 0 ? body : body.slice(0, SOURCE_LINES);
    lines.push('Source:', ...cut.map((line) => `  ${line}`));
    if (cut.length < body.length) lines.push(`  ... (${body.length - cut.length} more lines; inspect with detail for all)`);
  }
  return lines.join('\n');
}

function describeValue(value, detail) {
  const type = value === null ? 'null' : typeof value;
  const kind = type === 'object' && value.constructor && value.constructor.name ? value.constructor.name : type;
  const lines = [`Type:      ${kind}`];
  if (Array.isArray(value) || ArrayBuffer.isView(value)) lines.push(`Length:    ${value.length}`);
  else if (value instanceof Map || value instanceof Set) lines.push(`Size:      ${value.size}`);
  else if (type === 'string') lines.push(`Length:    ${value.length}`);
  const shown = util.inspect(value, { depth: detail > 0 ? 4 : 1, breakLength: 80, maxArrayLength: 50, maxStringLength: 2000 });
  lines.push(`Value:     ${shown.split('\n').join('\n           ')}`);
  return lines.join('\n');
}

// The answer for one request: {found, text}.
function inspectName(name, detail, context) {
  if (!NAME.test(name)) return { found: false };
  let value;
  try {
    value = vm.runInContext(name, context, { timeout: 1000 });
  } catch (err) {
    return { found: false };
  }
  const text = typeof value === 'function' ? describeFunction(name, value, detail) : describeValue(value, detail);
  return { found: true, text };
}

module.exports = { inspectName, parameters };
