#!/usr/bin/env node
// gRPC through the mesh with @grpc/grpc-js (tests/node/node_modules).
//
//   grpc_echo.js serve PORT NAME          the Echo service (echo.proto) on [::]:PORT
//                                         (Say "fail:N": status N; "meta:NAME": the
//                                         value of request header NAME; "sleep:MS":
//                                         answered MS ms later)
//   grpc_echo.js call HOST:PORT TEXT N    N unary calls over one channel; prints
//                                         {"ok": k, "codes": {code: count}, "servers": {...}}
'use strict';
const path = require('path');
const modules = path.join(__dirname, '..', '..', 'node', 'node_modules');
const grpc = require(path.join(modules, '@grpc', 'grpc-js'));
const loader = require(path.join(modules, '@grpc', 'proto-loader'));

const def = loader.loadSync(path.join(__dirname, 'echo.proto'), {keepCase: true});
const Echo = grpc.loadPackageDefinition(def).meshd.test.Echo;
const [mode, where, arg, count] = process.argv.slice(2);

if (mode === 'serve') {
    const server = new grpc.Server();
    server.addService(Echo.service, {
        Say: (call, cb) => {
            const m = /^fail:(\d+)$/.exec(call.request.text);
            if (m) return cb({code: Number(m[1]), details: 'failed as asked'});
            const meta = /^meta:(.+)$/.exec(call.request.text); // a request header's value
            if (meta) return cb(null, {text: String(call.metadata.get(meta[1])), server: arg});
            const sleep = /^sleep:(\d+)$/.exec(call.request.text); // answered that late
            if (sleep) return setTimeout(() => cb(null, {text: 'late', server: arg}), Number(sleep[1]));
            cb(null, {text: call.request.text, server: arg});
        },
        Count: (call) => { // written as the client's window allows ('drain')
            const [n, size] = call.request.text.split(':').map(Number);
            const text = 'x'.repeat(size);
            let i = 0;
            const more = () => {
                while (i < n) {
                    i++;
                    if (!call.write({text, server: arg})) return call.once('drain', more);
                }
                call.end();
            };
            more();
        },
        Sum: (call, cb) => {
            let n = 0, bytes = 0, fail = 0;
            call.on('data', (m) => {
                n++;
                bytes += m.text.length;
                const f = /^fail:(\d+)$/.exec(m.text);
                if (f) fail = Number(f[1]);
            });
            call.on('end', () => fail ? cb({code: fail, details: 'failed as asked'})
                : cb(null, {text: `${n}:${bytes}`, server: arg}));
        },
        Chat: (call) => {
            call.on('data', (m) => call.write({text: m.text, server: arg}));
            call.on('end', () => call.end());
        },
    });
    server.bindAsync(`[::]:${where}`, grpc.ServerCredentials.createInsecure(), (err) => {
        if (err) {
            console.error(err);
            process.exit(1);
        }
    });
} else {
    const client = new Echo(where, grpc.credentials.createInsecure());
    const n = Number(count || 1);
    const out = {ok: 0, codes: {}, servers: {}};
    let left = n;
    const deadline = () => new Date(Date.now() + 5000);
    const one = () => client.Say({text: arg}, {deadline: deadline()}, (err, res) => {
        const code = err ? err.code : 0;
        out.codes[code] = (out.codes[code] || 0) + 1;
        if (!err) {
            out.ok++;
            out.servers[res.server] = (out.servers[res.server] || 0) + 1;
        } else if (!out.details) {
            out.details = err.details;
        }
        if (--left === 0) {
            console.log(JSON.stringify(out));
            client.close();
        } else {
            one();
        }
    });
    one();
}
