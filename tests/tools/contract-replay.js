#!/usr/bin/env node
// contract-replay.js DIR REPLAY_PORT PROXY_URL — replays the responses the
// HTTP suites received (recorded in DIR by tests/http.sh's contract_record)
// through Prism's validating proxy, and reports every response that violates
// api/openapi.yaml. Called by tests/contract.sh, which starts the proxy with
// this program's server as its upstream.
//
// Why a replay and not the proxy in front of ledgerd: Prism parses and
// re-serializes request bodies, so the hostile requests the suites send on
// purpose (invalid JSON, duplicate keys, invalid UTF-8, 10,000 nested arrays)
// would reach ledgerd changed, or not at all. Replaying keeps the tests honest
// and still lets Prism judge each response exactly as ledgerd sent it: the
// operation is matched by the recorded method and path, the status, headers
// and body are the recorded bytes.
//
// DIR/index has one line per exchange: ID \t METHOD \t PATH; DIR/ID.hdr holds
// the response's status line and headers (curl -D), DIR/ID.body its body.
// Output: one line per violation, then a summary; exit 1 on any violation or
// when an exchange could not be replayed.
'use strict';
const fs = require('fs');
const http = require('http');
const path = require('path');

const [dir, replayPort, proxyUrl] = process.argv.slice(2);
if (!dir || !replayPort || !proxyUrl) {
    console.error('usage: contract-replay.js DIR REPLAY_PORT PROXY_URL');
    process.exit(2);
}
const REQUEST_TIMEOUT_MS = 10000;
const PROXY_WAIT_MS = 60000;
// Hop-by-hop and framing headers are the replay server's own, not the record's.
const DROP = new Set(['connection', 'keep-alive', 'transfer-encoding', 'content-length', 'date']);

function readIndex() {
    const lines = fs.readFileSync(path.join(dir, 'index'), 'utf8').split('\n').filter(Boolean);
    return lines.map((l) => {
        const [id, method, target] = l.split('\t');
        return { id, method, target };
    });
}

// The last header block of a curl -D dump (after any 100 Continue).
function parseHeaders(text) {
    const blocks = text.split(/\r?\n\r?\n/).filter((b) => /^HTTP\//.test(b));
    if (blocks.length === 0) throw new Error('no status line');
    const lines = blocks[blocks.length - 1].split(/\r?\n/);
    const status = Number(lines[0].split(' ')[1]);
    const headers = {};
    for (const line of lines.slice(1)) {
        const i = line.indexOf(':');
        if (i <= 0) continue;
        const name = line.slice(0, i).trim().toLowerCase();
        if (!DROP.has(name)) headers[name] = line.slice(i + 1).trim();
    }
    return { status, headers };
}

function serveRecords() {
    const server = http.createServer((req, res) => {
        req.resume();
        const id = req.headers['x-contract-replay'];
        if (!id || !/^[0-9.]+$/.test(id)) {
            res.writeHead(599).end(); // a probe (the proxy's start) or a stray request
            return;
        }
        try {
            const { status, headers } = parseHeaders(fs.readFileSync(path.join(dir, `${id}.hdr`), 'latin1'));
            const body = fs.readFileSync(path.join(dir, `${id}.body`));
            res.writeHead(status, headers).end(body);
        } catch (e) {
            res.writeHead(598, { 'content-type': 'text/plain' }).end(`replay ${id}: ${e.message}`);
        }
    });
    return new Promise((resolve) => server.listen(Number(replayPort), '127.0.0.1', () => resolve(server)));
}

function send(target, method, headers, body) {
    return new Promise((resolve, reject) => {
        const req = http.request(new URL(target, proxyUrl), { method, headers, timeout: REQUEST_TIMEOUT_MS }, (res) => {
            res.resume();
            res.on('end', () => resolve(res));
        });
        req.on('timeout', () => req.destroy(new Error('timed out')));
        req.on('error', reject);
        req.end(body);
    });
}

async function waitForProxy() {
    const deadline = Date.now() + PROXY_WAIT_MS;
    for (;;) {
        try {
            return await send('/healthz', 'GET', {});
        } catch (e) {
            if (Date.now() > deadline) throw new Error(`the proxy at ${proxyUrl} did not answer: ${e.message}`);
            await new Promise((r) => setTimeout(r, 200));
        }
    }
}

// One exchange through the proxy: its violations (Prism's sl-violations header).
async function replay(x) {
    const headers = { 'x-contract-replay': x.id };
    // A body only so that the proxy forwards the request as a client would send
    // it; requests are not validated (tests/contract.sh: --validate-request=false).
    const body = ['POST', 'PUT', 'PATCH'].includes(x.method) ? '{}' : undefined;
    if (body) headers['content-type'] = 'application/json';
    const res = await send(x.target, x.method, headers, body);
    if (res.statusCode >= 598) throw new Error(`replay failed (${res.statusCode})`);
    const v = res.headers['sl-violations'];
    // Request findings (no token, unknown route) are the hostile tests' point, not the contract's.
    if (!v) return [];
    let all;
    try {
        all = JSON.parse(v);
    } catch (e) {
        return [{ location: ['response'], message: v }]; // e.g. Prism's "Too many violations"
    }
    return all.filter((x) => (x.location || [])[0] === 'response');
}

async function main() {
    const records = readIndex();
    const server = await serveRecords();
    await waitForProxy();
    let bad = 0;
    let failed = 0;
    const seen = new Map();
    for (const x of records) {
        const status = parseHeaders(fs.readFileSync(path.join(dir, `${x.id}.hdr`), 'latin1')).status;
        const what = `${x.method} ${x.target.split('?')[0]} -> ${status}`;
        let violations;
        try {
            violations = await replay(x);
        } catch (e) {
            failed++;
            console.log(`FAIL ${what} (record ${x.id}): ${e.message}`);
            continue;
        }
        if (violations.length) bad++;
        for (const v of violations) {
            const line = `${what}: ${(v.location || []).join('.')}: ${v.message}`;
            seen.set(line, (seen.get(line) || 0) + 1);
        }
    }
    server.close();
    for (const [line, n] of seen) console.log(`VIOLATION ${line}${n > 1 ? ` (x${n})` : ''}`);
    console.log(`${records.length} responses replayed: ${bad} with violations, ${failed} not replayed`);
    process.exit(bad || failed ? 1 : 0);
}

main().catch((e) => {
    console.error(`contract-replay: ${e.message}`);
    process.exit(1);
});
