'use strict';
// is_complete for the Node.js session kernel (used by node_loader.js for an `is_complete` request):
// V8's parser says whether the text ends early. vm.Script compiles without running. A cell with
// top-level await is compiled as the body of an async function, as the REPL runs it; there an error
// on the wrapper's closing line (after the text) means the text is still open.
const vm = require('vm');

const AT_END = /^(Unexpected end of input|Unterminated template literal|Missing } in template expression)/;

function compileError(source) {
  try {
    new vm.Script(source, { filename: 'cell' });
    return null;
  } catch (err) {
    return err;
  }
}

function errorLine(err) {
  const match = /^cell:(\d+)/.exec(String(err && err.stack));
  return match ? Number(match[1]) : 0;
}

module.exports = function isComplete(text) {
  const err = compileError(text);
  if (!err) return 'complete';
  if (AT_END.test(err.message)) return 'incomplete';
  if (/\bawait\b/.test(text)) {
    const wrapped = compileError(`(async () => {\n${text}\n})`);
    if (!wrapped) return 'complete';
    return errorLine(wrapped) > 1 + text.split('\n').length ? 'incomplete' : 'invalid';
  }
  // `f("a"` ends in "missing ) after argument list", `/* note` in "Invalid or unexpected token":
  // open only if what would close them makes the text compile (or still just end early).
  for (const closer of ['\n)', '*/']) {
    const again = compileError(text + closer);
    if (!again || AT_END.test(again.message)) return 'incomplete';
  }
  return 'invalid';
};
