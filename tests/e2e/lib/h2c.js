#!/usr/bin/env node
// An HTTP/2 (h2c prior knowledge) client for the HTTP/2 tests: the PATHs
// are requested one after the other over ONE connection; one line per
// response: "STATUS BODY" (BODY cut at 60 bytes, newlines dropped).
//
//   h2c.js HOST:PORT PATH...
'use strict';
const http2 = require('http2');

const [where, ...paths] = process.argv.slice(2);
const session = http2.connect(`http://${where}`);
session.on('error', (e) => {
    console.log(`000 ${e.code || e.message}`);
    process.exit(1);
});
const next = (i) => {
    if (i === paths.length) {
        session.close();
        return;
    }
    const req = session.request({':path': paths[i]});
    let status = 0;
    const chunks = [];
    req.on('response', (h) => (status = h[':status']));
    req.on('data', (c) => chunks.push(c));
    req.on('error', (e) => {
        console.log(`000 ${e.code || e.message}`);
        next(i + 1);
    });
    req.on('end', () => {
        const body = Buffer.concat(chunks).toString().replace(/\n/g, '').slice(0, 60);
        console.log(`${status} ${body}`);
        next(i + 1);
    });
    req.setTimeout(5000, () => req.close());
};
next(0);
