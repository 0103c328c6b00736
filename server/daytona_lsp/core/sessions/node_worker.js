// A persistent Node.js `vm` context speaking the session protocol (protocol.py), run under driver.py:
//   node node_worker.js javascript|typescript     (commands: JSON lines on fd 3; answers: JSON lines on fd 4)
// driver.py owns this process's stdout/stderr pipes (writes to pipes are synchronous on Linux), so output written
// before an answer is forwarded before it.
//
// Top-level `let`/`const`/`class` of a cell become `var`s of the context (as a browser console would keep them), so
// a later cell sees them and re-running a cell that declares them does not fail. A cell using top-level `await` runs
// as an async function whose top-level declarations are rewritten to assignments to the context's globals (the
// technique of Node's REPL, lib/internal/repl/await.js). V8 itself is the parser of last resort: the trailing
// expression of an async cell is found by asking vm.Script whether the last top-level statement compiles as one.
// TypeScript is transpiled per cell: Node's own module.stripTypeScriptTypes (Node >= 22.13, keeps every position),
// else esbuild (found next to $DAYTONA_LSP_TSX, i.e. tsx's own, or from the working directory), else `typescript`.
//
// Each cell has a stdin of its own (CellStdin below): `process.stdin` is a fresh stream.Readable fed by the protocol
// (the execute's preset, then `input` commands), and a cell is not over while its code consumes that stream.
'use strict';
const fs = require('fs');
const path = require('path');
const { Readable } = require('stream');
const util = require('util');
const vm = require('vm');
const Module = require('module');

const language = process.argv[2] || 'javascript';
const CMD_FD = 3, ANSWER_FD = 4;
const answer = (m) => fs.writeSync(ANSWER_FD, JSON.stringify(m) + '\n');

class ExitRequest { constructor(code) { this.code = code; } }
process.exit = (code) => { throw new ExitRequest(code === undefined ? (process.exitCode ?? 0) : code); };

const context = vm.createContext({});
for (const name of ['console', 'process', 'Buffer', 'URL', 'URLSearchParams', 'TextEncoder', 'TextDecoder', 'fetch',
  'structuredClone', 'AbortController', 'performance', 'queueMicrotask', 'setTimeout', 'clearTimeout',
  'setInterval', 'clearInterval', 'setImmediate', 'clearImmediate']) {
  if (name in globalThis) context[name] = globalThis[name];
}
// a document's session requires as the document itself would (client.py SESSION_FILE_ENV), else from the cwd
const script = process.env.DAYTONA_LSP_SESSION_FILE || '';
delete process.env.DAYTONA_LSP_SESSION_FILE;
context.require = Module.createRequire(script || path.join(process.cwd(), '<session>'));
if (script) Object.assign(context, { __filename: script, __dirname: path.dirname(script) });
context.global = vm.runInContext('globalThis', context);

// ---- a small scanner: top-level statement starts and declarations ------------------------------------------------
const CONTINUES = new Set('=+-*/%&|^!~?:,.(<>['.split(''));

function scan(code) {
  const starts = [0], decls = [];
  let depth = 0, i = 0, prev = '', lineBreak = false;
  const stack = [];
  const atStart = () => depth === 0 && (prev === '' || prev === ';' || prev === '}' || (lineBreak && !CONTINUES.has(prev)));
  while (i < code.length) {
    const c = code[i];
    if (c === '\n') { lineBreak = true; i++; continue; }
    if (/\s/.test(c)) { i++; continue; }
    if (c === '/' && code[i + 1] === '/') { while (i < code.length && code[i] !== '\n') i++; continue; }
    if (c === '/' && code[i + 1] === '*') { const e = code.indexOf('*/', i + 2); i = e < 0 ? code.length : e + 2; continue; }
    const startHere = atStart();
    if (startHere && lineBreak && starts[starts.length - 1] !== i) starts.push(i);
    lineBreak = false;
    if (c === '"' || c === "'" || c === '`') {
      i++;
      while (i < code.length && code[i] !== c) {
        if (code[i] === '\\') i++;
        else if (c === '`' && code[i] === '$' && code[i + 1] === '{') { stack.push(depth); depth++; i += 2; break; }
        i++;
      }
      if (code[i] === c) i++;
      prev = 'x'; continue;
    }
    if (c === '/' && (prev === '' || CONTINUES.has(prev) || prev === ';' || prev === '{' || prev === '}')) {
      i++;  // a regular expression literal
      let cls = false;
      while (i < code.length && code[i] !== '\n' && (cls || code[i] !== '/')) {
        if (code[i] === '\\') i++; else if (code[i] === '[') cls = true; else if (code[i] === ']') cls = false;
        i++;
      }
      i++; while (/\w/.test(code[i] || '')) i++;
      prev = 'x'; continue;
    }
    const word = /^[A-Za-z_$][\w$]*/.exec(code.slice(i, i + 64));
    if (word) {
      if (startHere && ['let', 'const', 'var', 'class', 'function', 'async'].includes(word[0])) {
        decls.push({ at: i, keyword: word[0] });
      }
      i += word[0].length; prev = 'x'; continue;
    }
    if (c === '(' || c === '[' || c === '{') depth++;
    if (c === ')' || c === ']' || c === '}') {
      if (c === '}' && stack.length && depth - 1 === stack[stack.length - 1]) {
        stack.pop(); depth--; // back inside a template literal: skip to its end or next ${
        i++;
        while (i < code.length && code[i] !== '`') {
          if (code[i] === '\\') i++;
          else if (code[i] === '$' && code[i + 1] === '{') { stack.push(depth); depth++; i += 2; break; }
          i++;
        }
        if (code[i] === '`') i++;
        prev = 'x'; continue;
      }
      depth = Math.max(depth - 1, 0);
    }
    const wasDepth = depth;
    i++; prev = c;
    if ((c === ';' || c === '}') && wasDepth === 0 && starts[starts.length - 1] !== i) starts.push(i);
  }
  return { starts, decls };
}

const names = (text) => (text.match(/[A-Za-z_$][\w$]*/) || [])[0];

// sync cells: `let`/`const` → `var`, `class A` → `var A = class A` (the class expression ends where the statement does)
function rewriteSync(code) {
  const { decls } = scan(code);
  for (const d of decls.reverse()) {
    const after = code.slice(d.at + d.keyword.length);
    if (d.keyword === 'let' || d.keyword === 'const') {
      if (/^\s*[\[{A-Za-z_$]/.test(after)) code = code.slice(0, d.at) + 'var' + code.slice(d.at + d.keyword.length);
    } else if (d.keyword === 'class') {
      const name = names(after);
      if (name && name !== 'extends') code = code.slice(0, d.at) + `var ${name} = ` + code.slice(d.at);
    }
  }
  return code;
}

// async cells: declarations become assignments to the context's globals; functions and classes too
function rewriteAsync(code) {
  const { starts, decls } = scan(code);
  for (const d of decls.reverse()) {
    const after = code.slice(d.at + d.keyword.length);
    if (['let', 'const', 'var'].includes(d.keyword)) {
      // `let a = 1, b;` → `void (a = 1, b = undefined);` for simple declarators; `[a, b] = x` works as is
      const end = starts.find((s) => s > d.at) ?? code.length;
      let body = code.slice(d.at + d.keyword.length, end).replace(/;\s*$/, '');
      if (/^\s*\{/.test(body)) body = `(${body})`;
      else body = body.replace(/(^|,)(\s*[A-Za-z_$][\w$]*\s*)(?=,|$)/g, '$1$2= undefined');
      code = code.slice(0, d.at) + `void (${body});` + code.slice(end).replace(/^;/, '');
    } else {
      const fn = /^(\s*function\s*\*?\s*|\s+function\s*\*?\s*)([A-Za-z_$][\w$]*)/.exec(d.keyword === 'async' ? after : ' ' + d.keyword + after);
      const name = d.keyword === 'class' ? names(after) : fn && fn[2];
      if (name && name !== 'extends') code = code.slice(0, d.at) + `globalThis.${name} = ` + code.slice(d.at);
    }
  }
  // the trailing expression: the last top-level statement, if V8 compiles it as an expression
  const { starts: s2 } = scan(code);
  for (let k = s2.length - 1; k >= 0; k--) {
    const tail = code.slice(s2[k]).trim().replace(/;$/, '');
    if (!tail) continue;
    try {
      new vm.Script(`(async () => (${tail}\n))`);
      return `(async () => {${code.slice(0, s2[k])}\nreturn (${tail}\n);})()`;
    } catch { break; }
  }
  return `(async () => {${code}\n})()`;
}

// ---- TypeScript ------------------------------------------------------------------------------------------------
let transpile = null;
function typescriptTranspiler() {
  if (typeof Module.stripTypeScriptTypes === 'function') {
    return (code) => Module.stripTypeScriptTypes(code, { mode: 'transform' });
  }
  const paths = [process.cwd()];
  if (process.env.DAYTONA_LSP_TSX) paths.unshift(path.resolve(fs.realpathSync(process.env.DAYTONA_LSP_TSX), '..', '..', '..'));
  // no long-lived esbuild service: it would share our process group and die of the interrupts meant for a cell
  process.env.ESBUILD_WORKER_THREADS = '0';
  for (const name of ['esbuild', 'typescript']) {
    let found;
    try { found = require(require.resolve(name, { paths })); } catch { continue; }
    if (name === 'esbuild') {
      return (code, file) => {
        const out = found.transformSync(code, { loader: 'ts', sourcefile: file, sourcemap: 'external' });
        return { code: out.code, lines: generatedToSourceLines(JSON.parse(out.map).mappings) };
      };
    }
    return (code, file) => found.transpileModule(code, {
      fileName: file, compilerOptions: { target: found.ScriptTarget.ES2022, module: found.ModuleKind.ESNext } }).outputText;
  }
  throw new Error('TypeScript needs Node.js >= 22.13, esbuild (tsx has it: set DAYTONA_LSP_TSX) or typescript');
}

// esbuild reprints the code (blank lines and comments go): its source map says which buffer line each printed line
// came from. Decodes only what that needs: the source-line field of each line's first segment (base64 VLQ).
function generatedToSourceLines(mappings) {
  const B64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
  const lines = [];
  let sourceLine = 0;
  for (const line of mappings.split(';')) {
    let first = null;
    for (const segment of line.split(',').filter(Boolean)) {
      const fields = [];
      for (let i = 0, value = 0, shift = 0; i < segment.length; i++) {
        const digit = B64.indexOf(segment[i]);
        value += (digit & 31) << shift;
        if (digit & 32) { shift += 5; continue; }
        fields.push(value & 1 ? -(value >>> 1) : value >>> 1);
        value = 0; shift = 0;
      }
      if (fields.length >= 4) { sourceLine += fields[2]; if (first === null) first = sourceLine; }
    }
    lines.push(first ?? sourceLine);
  }
  return lines;
}

function mapStack(text, filename, lines, offset) {
  if (!lines || typeof text !== 'string') return text;
  const escaped = filename.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  return text.replace(new RegExp(escaped + ':(\\d+)', 'g'), (_, n) => `${filename}:${(lines[n - 1 - offset] ?? n - 1 - offset) + 1 + offset}`);
}

// ---- a cell's stdin -------------------------------------------------------------------------------------------
// The preset is pushed when the stream is first read; with nothing left, a wait counts once the code is seen to
// consume the stream (a 'data' listener while flowing, or a 'readable' listener: readline, for await, .on('data')),
// not when the stream merely reads ahead (it does so after readline's close() paused it): then it is EOF (not
// interactive: `stdin_closed`) or one `input_request` (interactive) until input arrives. The checks run in a
// setImmediate after each change of the stream, so the code's synchronous reaction to an event comes first.
const consuming = (s) => !s.destroyed && !s.readableEnded
  && (s.listenerCount('readable') > 0 || (s.listenerCount('data') > 0 && s.readableFlowing === true));

class CellStdin {
  constructor(id, preset, interactive) {
    Object.assign(this, { id, interactive, pending: preset ? [preset] : [], eof: false, done: false });
    Object.assign(this, { wanting: false, requested: false, closedRead: false, scheduled: false, onIdle: null });
    this.stream = new Readable({ read: () => { this.wanting = true; this.pump(); } });
    const schedule = () => this.schedule();
    for (const event of ['resume', 'pause', 'end', 'close', 'newListener', 'removeListener']) this.stream.on(event, schedule);
  }

  pump() {
    if (this.done || !this.wanting) return;
    if (this.pending.length) {
      const text = this.pending.join('');
      Object.assign(this, { pending: [], wanting: false, requested: false });
      this.stream.push(Buffer.from(text));
    } else if (this.eof) {
      this.wanting = false;
      this.stream.push(null);
    } else {
      this.schedule();
    }
  }

  feed(text, eof) {  // an `input` command
    if (this.done || this.eof) return;
    if (text) this.pending.push(text);
    if (eof) this.eof = true;
    this.pump();
  }

  schedule() {
    if (!this.scheduled && !this.done) { this.scheduled = true; setImmediate(() => this.check()); }
  }

  check() {
    this.scheduled = false;
    if (this.done) return;
    const consumed = consuming(this.stream);
    if (consumed && this.wanting && !this.pending.length && !this.eof) {
      if (!this.interactive) {
        Object.assign(this, { closedRead: true, eof: true });
        this.pump();
      } else if (!this.requested) {
        this.requested = true;
        answer({ event: 'input_request', id: this.id });
      }
    }
    if (!consumed && this.onIdle) this.onIdle();
  }

  idle() {  // resolves once the code no longer consumes the stream (ended, destroyed, paused, no listeners)
    return new Promise((resolve) => { this.onIdle = resolve; this.schedule(); });
  }

  // fs.readFileSync(0) and '/dev/stdin': what is left now. A synchronous read cannot wait for interactive input
  // (that arrives on the event loop, which the read blocks), so it returns what has come so far.
  takeAll(options) {
    const data = Buffer.from(this.pending.join(''));
    this.pending = [];
    if (!this.interactive) {
      if (!data.length && !this.eof) this.closedRead = true;
      this.eof = true;
    }
    const encoding = typeof options === 'string' ? options : options && options.encoding;
    return encoding ? data.toString(encoding) : data;
  }

  finish() {  // the cell has ended: unread input is dropped, whatever still holds the stream reads nothing more
    Object.assign(this, { done: true, pending: [], onIdle: null });
    this.stream.destroy();
  }
}

const cells = new Map();  // id → CellStdin of the cells received and not yet finished (input may come before the run)
let current = new CellStdin(0, '', false);
current.finish();
Object.defineProperty(process, 'stdin', { configurable: true, enumerable: true, get: () => current.stream });
const STDIN_FILES = new Set([0, '/dev/stdin', '/dev/fd/0', '/proc/self/fd/0']);
const readFileSync = fs.readFileSync;
fs.readFileSync = function (file, options) {
  if (STDIN_FILES.has(file) && !current.done) return current.takeAll(options);
  return readFileSync.apply(this, arguments);
};

// ---- executing -------------------------------------------------------------------------------------------------
// A SIGINT lands in one of three places: inside runInContext (breakOnSigint throws), while a cell is awaited (its
// async code or its stdin: abortWait rejects the wait), or in between (remembered, and the cell stops at its next step).
let abortWait = null, interruptRequested = false;
const onInterrupt = () => { if (abortWait) abortWait(interrupted()); else interruptRequested = true; };
process.on('SIGINT', onInterrupt);
const interrupted = () => Object.assign(new Error('Script execution interrupted.'), { code: 'ERR_SCRIPT_EXECUTION_INTERRUPTED' });
const checkInterrupt = () => { if (interruptRequested) throw interrupted(); };
const waitFor = (promise) => new Promise((resolve, reject) => { abortWait = reject; promise.then(resolve, reject); });

function describe(err) {
  if (err instanceof Error || (err && typeof err.stack === 'string')) return err.stack;
  return 'Uncaught ' + util.inspect(err);
}

async function execute(cmd, stdin) {
  const filename = cmd.filename || '<cell>';
  const cap = cmd.value_cap || 2000;
  const result = { event: 'result', id: cmd.id, status: 'ok' };
  let lines = null;
  interruptRequested = false;
  current = stdin;
  // as `node FILE ARG...` sets them (every cell anew)
  process.argv = [process.execPath, script || filename, ...(Array.isArray(cmd.args) ? cmd.args.map(String) : [])];
  try {
    let code = cmd.code;
    if (language === 'typescript') {
      const out = (transpile ??= typescriptTranspiler())(code, filename);
      if (typeof out === 'string') code = out; else ({ code, lines } = out);
    }
    const options = { filename, lineOffset: cmd.line_offset || 0 };
    let script, isAsync = false;
    try { script = new vm.Script(rewriteSync(code), options); } catch (e) {
      if (!/await/.test(code)) throw e;
      script = new vm.Script(rewriteAsync(code), options); isAsync = true;
    }
    checkInterrupt();
    // breakOnSigint only for sync cells: a SIGINT that lands just as the sync part of an async cell returns would be
    // swallowed by vm's watchdog, and the cell awaited forever. Code running after an `await` (as any code in a
    // microtask) cannot be interrupted: the host kills the worker after its grace period.
    let value = script.runInContext(context, { breakOnSigint: !isAsync });
    if (isAsync) {
      checkInterrupt();
      value = await waitFor(value);
    }
    checkInterrupt();
    await waitFor(stdin.idle());  // as a `node` process lives until its stdin ends, while it reads it
    if (value !== undefined) {
      context._ = value;
      const text = util.inspect(value, { depth: 4 });
      result.value = text.length <= cap ? text : text.slice(0, Math.max(cap - 1, 0)) + '…';
    }
  } catch (e) {
    if (e instanceof ExitRequest) { result.status = 'exited'; result.exit_code = Number(e.code) || 0; }
    else if (e && e.code === 'ERR_SCRIPT_EXECUTION_INTERRUPTED') { result.status = 'interrupted'; result.error = describe(e); }
    else { result.status = 'error'; result.error = mapStack(describe(e), filename, lines, cmd.line_offset || 0); }
  } finally {
    abortWait = null;
    stdin.finish();
    cells.delete(cmd.id);
  }
  if (stdin.closedRead) result.stdin_closed = true;
  answer(result);
}

// thrown by a handler of the cell's stdin while the cell waits (process.exit() in rl.on('line'), an error): the cell
// ends with it, as a `node` process would
process.on('uncaughtException', (e) => {
  if (abortWait) abortWait(e);
  else if (!(e instanceof ExitRequest)) process.stderr.write(describe(e) + '\n');
});
process.on('unhandledRejection', (e) => { if (!(e instanceof ExitRequest)) process.stderr.write(describe(e) + '\n'); });

answer({ event: 'ready', language, pid: process.pid });
let queue = Promise.resolve(), buffered = '';
// a socket, not fs.createReadStream: that reads in libuv's thread pool, where a SIGINT's EINTR ends the stream
new (require('net').Socket)({ fd: CMD_FD, readable: true, writable: false }).setEncoding('utf8').on('data', (chunk) => {
  buffered += chunk;
  const lines = buffered.split('\n'); buffered = lines.pop();
  for (const line of lines) {
    if (!line.trim()) continue;
    const cmd = JSON.parse(line);
    if (cmd.op === 'interrupt') onInterrupt();  // from driver.py, which got the SIGINT too: see there
    else if (cmd.op === 'input') cells.get(cmd.id)?.feed(String(cmd.text ?? ''), cmd.eof === true);
    else {
      const stdin = new CellStdin(cmd.id, String(cmd.stdin ?? ''), cmd.interactive === true);
      cells.set(cmd.id, stdin);
      queue = queue.then(() => execute(cmd, stdin));
    }
  }
}).on('end', () => process.reallyExit(0));
