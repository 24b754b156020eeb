#!/usr/bin/env node
// An HTTP/2 (h2c, prior knowledge) backend for the HTTP/2 tests.
//
//   h2d.js PORT NAME [LOG]   serve on [::]:PORT. Each request is answered
//                            with a JSON body {name, method, path, headers,
//                            body_len} and x-served-by: NAME, except:
//     /status/CODE           answers CODE
//     /delay/MS              answers after MS milliseconds (at most 30 s)
//   NAME "fail-*" answers 503 to every request (a broken endpoint).
//   With LOG, one JSON line per request (method, path, headers) is appended
//   to LOG, so a test can check what reached the app.
'use strict';
const http2 = require('http2');
const fs = require('fs');

const [port, name, log] = [Number(process.argv[2]), process.argv[3] || '?', process.argv[4]];
const server = http2.createServer({maxSessionMemory: 64});
server.on('stream', (stream, headers) => {
    const chunks = [];
    stream.on('data', (c) => chunks.push(c));
    stream.on('error', () => {});
    stream.on('end', () => {
        const path = headers[':path'] || '/';
        const hdrs = {};
        for (const k of Object.keys(headers)) if (!k.startsWith(':')) hdrs[k] = String(headers[k]);
        const entry = {method: headers[':method'], path, authority: headers[':authority'], headers: hdrs};
        if (log) fs.appendFileSync(log, JSON.stringify(entry) + '\n');
        let status = name.startsWith('fail-') ? 503 : 200;
        let delay = 0;
        const m = /^\/status\/(\d{3})/.exec(path);
        if (m) status = Number(m[1]);
        const d = /^\/delay\/(\d+)/.exec(path);
        if (d) delay = Math.min(Number(d[1]), 30000);
        const body = JSON.stringify({name, method: headers[':method'], path, headers: hdrs,
                                     body_len: Buffer.concat(chunks).length}) + '\n';
        setTimeout(() => {
            if (stream.destroyed) return;
            stream.respond({':status': status, 'content-type': 'application/json', 'x-served-by': name});
            stream.end(body);
        }, delay);
    });
});
server.listen(port, '::');
