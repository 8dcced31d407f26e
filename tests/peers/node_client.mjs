#!/usr/bin/env node
// Independent WebSocket client peer for wshandle's tests, built on Node's `ws`
// (pinned in tests/peers/package-lock.json, installed into target/test-node by
// scripts/setup-test-env.sh).
//
// Usage:
//     NODE_PATH=$(bash scripts/setup-test-env.sh --print-node-path | tail -n 1) \
//         node tests/peers/node_client.mjs --url URL --scenario {echo,seed} [--deadline SECS]
//
// `ws` is loaded with createRequire, which honours NODE_PATH (an ESM `import`
// would not); without NODE_PATH it falls back to <repo>/target/test-node/node_modules.
//
// Connects to URL (perMessageDeflate: false, maxPayload: 0 = no limit), runs the
// scenario, prints one JSON object per line and exits 0 on success, 1 on failure
// (after an "error" line). If the deadline (default 60 s) passes first, it prints
// an "error" line and exits 1.
//
//     {"event":"echo","ok":true,"close_code":1000,"close_reason":"done"}
//     {"event":"seed","ok":true,"replies":33,"last":"Server got 0 bytes\n",
//      "close_code":1000,"close_reason":"","ms":812.3}
//     {"event":"error","where":"connect"|"echo"|"seed"|"io"|"deadline","error":"..."}
//
// close_code/close_reason are those of the server's close frame (1005 for an
// empty one), null if none was received (ws reports 1006 then).
//
// echo: sends text "hello", binary 00 01 02, an empty text, an empty binary, text
// "frag"+"ment"+"ed" as 3 fragments (send(data, {fin: false}) ... {fin: true}),
// binary de ad + be ef as 2 fragments and 1 MiB of random bytes; checks that each
// comes back as one message with the same type and bytes; then close(1000, "done").
//
// seed: the 'message' listener counts text replies while 1024 binary messages of
// 128 KiB are sent; then close(1000); ws still emits 'message' for data that
// arrives after its close frame, then 'close'. Success: 33 replies, the last one
// "Server got 0 bytes\n" received before 'close', and close code 1000.

import { createRequire } from 'node:module';
import { randomBytes } from 'node:crypto';
import { writeSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const SEED_MESSAGES = 1024;
const SEED_SIZE = 128 * 1024;
const SEED_REPLIES = 33;
const SEED_LAST = 'Server got 0 bytes\n';

function emit(obj) {
  // Synchronous, so that nothing is lost when process.exit() follows.
  writeSync(1, JSON.stringify(obj) + '\n');
}

function fail(where, error) {
  emit({ event: 'error', where, error: String(error) });
  process.exit(1);
}

function loadWs() {
  const require = createRequire(import.meta.url);
  try {
    return require('ws');
  } catch (e) {
    if (e.code !== 'MODULE_NOT_FOUND') throw e;
  }
  const here = path.dirname(fileURLToPath(import.meta.url));
  const fallback = path.resolve(here, '..', '..', 'target', 'test-node', 'node_modules', 'ws');
  try {
    return require(fallback);
  } catch (e) {
    fail('connect', `cannot load ws (set NODE_PATH, see scripts/setup-test-env.sh --print-node-path): ${e.message}`);
  }
}

let args;
try {
  ({ values: args } = parseArgs({
    options: {
      url: { type: 'string' },
      scenario: { type: 'string' },
      deadline: { type: 'string', default: '60' },
    },
  }));
} catch (e) {
  process.stderr.write(`node_client.mjs: ${e.message}\n`);
  process.exit(2);
}
const deadline = Number(args.deadline);
if (!args.url || !['echo', 'seed'].includes(args.scenario) || !(deadline > 0)) {
  process.stderr.write(
    'usage: node_client.mjs --url URL --scenario {echo,seed} [--deadline SECS]\n');
  process.exit(2);
}

// Watchdog; unref'd so that it never keeps the process alive by itself.
setTimeout(() => fail('deadline', `not done after ${deadline} s`), deadline * 1000).unref();

const WebSocket = loadWs();

function describe(isBinary, buf) {
  return `${isBinary ? 'binary' : 'text'} len=${buf.length} head=${buf.subarray(0, 16).toString('hex')}`;
}

function closeInfo(code, reason) {
  // 1006 never travels on the wire: ws reports it when no close frame came.
  if (code === 1006) return { close_code: null, close_reason: null };
  return { close_code: code, close_reason: reason.toString('utf8') };
}

const ws = new WebSocket(args.url, {
  perMessageDeflate: false,
  maxPayload: 0, // no limit
  handshakeTimeout: deadline * 1000,
});

let where = 'connect';
let closed = null; // {code, reason} once 'close' fired
const closeWaiters = [];
ws.on('error', (err) => fail(where === 'connect' ? 'connect' : 'io', err.message || err));
ws.on('close', (code, reason) => {
  closed = { code, reason };
  for (const w of closeWaiters.splice(0)) w();
});
const whenClosed = () => new Promise((resolve) => {
  if (closed) resolve();
  else closeWaiters.push(resolve);
});

const sendAsync = (data, opts) => new Promise((resolve, reject) => {
  ws.send(data, opts, (err) => (err ? reject(err) : resolve()));
});

async function runEcho() {
  const inbox = [];
  let wake = null;
  ws.on('message', (data, isBinary) => {
    inbox.push({ data, isBinary });
    if (wake) wake();
  });
  ws.on('close', () => { if (wake) wake(); });
  const nextMessage = async () => {
    while (inbox.length === 0) {
      if (closed) return null;
      await new Promise((resolve) => { wake = resolve; });
      wake = null;
    }
    return inbox.shift();
  };

  const big = randomBytes(1 << 20);
  const B = (bytes) => Buffer.from(bytes);
  // [name, [[data, options], ...], expected isBinary, expected bytes]
  const steps = [
    ['text', [['hello', {}]], false, B('hello')],
    ['binary', [[B([0, 1, 2]), { binary: true }]], true, B([0, 1, 2])],
    ['empty-text', [['', {}]], false, B('')],
    ['empty-binary', [[Buffer.alloc(0), { binary: true }]], true, Buffer.alloc(0)],
    ['fragmented-text', [['frag', { fin: false }], ['ment', { fin: false }], ['ed', { fin: true }]],
      false, B('fragmented')],
    ['fragmented-binary', [[B([0xde, 0xad]), { binary: true, fin: false }],
      [B([0xbe, 0xef]), { binary: true, fin: true }]], true, B([0xde, 0xad, 0xbe, 0xef])],
    ['1mib-binary', [[big, { binary: true }]], true, big],
  ];
  for (const [name, sends, wantBinary, want] of steps) {
    for (const [data, opts] of sends) await sendAsync(data, opts);
    const msg = await nextMessage();
    if (msg === null) fail('echo', `${name}: connection closed before the echo (code ${closed.code})`);
    if (msg.isBinary !== wantBinary || !want.equals(msg.data)) {
      fail('echo', `${name}: expected ${describe(wantBinary, want)}, got ${describe(msg.isBinary, msg.data)}`);
    }
  }
  ws.close(1000, 'done');
  await whenClosed();
  emit({ event: 'echo', ok: true, ...closeInfo(closed.code, closed.reason) });
}

async function runSeed() {
  let replies = 0;
  let binary = 0;
  let last = null;
  let afterClose = 0;
  ws.on('message', (data, isBinary) => {
    if (closed) afterClose += 1; // cannot happen: 'close' is the last event
    if (isBinary) {
      binary += 1;
    } else {
      replies += 1;
      last = data.toString('utf8');
    }
  });
  const t0 = process.hrtime.bigint();
  const payload = Buffer.alloc(SEED_SIZE);
  for (let i = 0; i < SEED_SIZE; i++) payload[i] = i & 0xff;
  for (let i = 0; i < SEED_MESSAGES; i++) {
    // Wait for each write to reach the socket so that at most one message is buffered.
    await sendAsync(payload, { binary: true });
  }
  ws.close(1000);
  await whenClosed();
  const ms = Math.round(Number(process.hrtime.bigint() - t0) / 1e5) / 10;
  const info = closeInfo(closed.code, closed.reason);
  const ok = binary === 0 && afterClose === 0 && replies === SEED_REPLIES
    && last === SEED_LAST && info.close_code === 1000;
  emit({ event: 'seed', ok, replies, last, ...info, ms });
  if (!ok) {
    const why = [];
    if (binary) why.push(`${binary} unexpected binary replies`);
    if (afterClose) why.push(`${afterClose} replies after 'close'`);
    if (replies !== SEED_REPLIES) why.push(`${replies} replies, expected ${SEED_REPLIES}`);
    if (last !== SEED_LAST) why.push(`last reply ${JSON.stringify(last)}, expected ${JSON.stringify(SEED_LAST)}`);
    if (info.close_code !== 1000) why.push(`close code ${info.close_code}, expected 1000`);
    fail('seed', why.join('; '));
  }
}

ws.on('open', () => {
  where = args.scenario;
  (args.scenario === 'echo' ? runEcho() : runSeed())
    .then(() => process.exit(0))
    .catch((e) => fail(where, e && e.message ? e.message : e));
});
ws.on('close', () => {
  if (where === 'connect') fail('connect', `connection closed before the handshake completed (code ${closed.code})`);
});
