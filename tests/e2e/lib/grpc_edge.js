#!/usr/bin/env node
// A gRPC client over TLS (ALPN h2) to an ingress gateway, with
// @grpc/grpc-js (tests/node/node_modules) and the Echo service of
// echo.proto (served by grpc_echo.js). Every call has a 10 s deadline.
//
//   grpc_edge.js IP:PORT CA AUTHORITY BACKEND MODE ARGS...
//     BACKEND: sent as the x-backend metadata (routing at the gateway)
//     unary TEXT N         N calls of Say; {"ok", "codes", "details", "servers", "text"}
//     server-stream N SIZE Count: N messages of SIZE bytes; {"code", "messages", "bytes"}
//     client-stream N SIZE [fail:K]
//                          Sum: N messages of SIZE bytes (then "fail:K");
//                          {"code", "details", "text"}
//     bidi N               Chat, ping-pong: each message sent once the
//                          previous one's echo arrived; {"code", "echoed", "inorder"}
'use strict';
const fs = require('fs');
const path = require('path');
const modules = path.join(__dirname, '..', '..', 'node', 'node_modules');
const grpc = require(path.join(modules, '@grpc', 'grpc-js'));
const loader = require(path.join(modules, '@grpc', 'proto-loader'));

const def = loader.loadSync(path.join(__dirname, 'echo.proto'), {keepCase: true});
const Echo = grpc.loadPackageDefinition(def).meshd.test.Echo;
const [target, ca, authority, backend, mode, ...args] = process.argv.slice(2);

const client = new Echo(target, grpc.credentials.createSsl(fs.readFileSync(ca)), {
    'grpc.ssl_target_name_override': authority,
    'grpc.default_authority': authority,
});
const md = new grpc.Metadata();
md.set('x-backend', backend);
const opts = () => ({deadline: new Date(Date.now() + 10000)});
const done = (out) => {
    console.log(JSON.stringify(out));
    client.close();
};

if (mode === 'unary') {
    const [text, count] = args;
    const out = {ok: 0, codes: {}, servers: {}};
    let left = Number(count || 1);
    const one = () => client.Say({text}, md, opts(), (err, res) => {
        const code = err ? err.code : 0;
        out.codes[code] = (out.codes[code] || 0) + 1;
        if (!err) {
            out.ok++;
            out.text = res.text;
            out.servers[res.server] = (out.servers[res.server] || 0) + 1;
        } else if (!out.details) {
            out.details = err.details;
        }
        if (--left === 0) done(out);
        else one();
    });
    one();
} else if (mode === 'server-stream') {
    const [n, size] = args;
    const out = {code: null, messages: 0, bytes: 0};
    const call = client.Count({text: `${n}:${size}`}, md, opts());
    call.on('data', (m) => {
        out.messages++;
        out.bytes += m.text.length;
    });
    call.on('error', () => {}); // told by 'status' too
    call.on('status', (s) => {
        out.code = s.code;
        if (s.code) out.details = s.details;
        done(out);
    });
} else if (mode === 'client-stream') {
    const [n, size, last] = args;
    const out = {};
    const call = client.Sum(md, opts(), (err, res) => {
        out.code = err ? err.code : 0;
        if (err) out.details = err.details;
        else out.text = res.text;
        done(out);
    });
    const text = 'y'.repeat(Number(size));
    let i = 0;
    const more = () => { // as the gateway's window allows ('drain')
        while (i < Number(n)) {
            i++;
            if (!call.write({text})) return call.once('drain', more);
        }
        if (last) call.write({text: last});
        call.end();
    };
    more();
} else if (mode === 'bidi') {
    const n = Number(args[0]);
    const out = {code: null, echoed: 0, inorder: true};
    const call = client.Chat(md, opts());
    let sent = 0;
    const send = () => call.write({text: `m${++sent}`});
    call.on('data', (m) => {
        out.echoed++;
        if (m.text !== `m${out.echoed}`) out.inorder = false;
        if (sent < n) send();
        else call.end();
    });
    call.on('error', () => {}); // told by 'status' too
    call.on('status', (s) => {
        out.code = s.code;
        if (s.code) out.details = s.details;
        done(out);
    });
    send();
} else {
    console.error(`unknown mode ${mode}`);
    process.exit(2);
}
