// An independent HBONE peer on Node's http2 module, for interop tests.
//   node hbone_peer.js server PORTFILE KEY CERT CA
//     HTTP/2 over TLS, client certificate required (verified against CA),
//     CONNECT tunnels to the :authority; anything else gets 405.
//   node hbone_peer.js client PORT KEY CERT CA AUTHORITY PAYLOAD
//     CONNECT through PORT to AUTHORITY, send PAYLOAD, half-close, print
//     {"status":N,"echo":"..."} once the tunnel ends.
'use strict';
const http2 = require('http2');
const net = require('net');
const fs = require('fs');

const [mode, a1, keyf, certf, caf, authority, payload] = process.argv.slice(2);
const tls = {key: fs.readFileSync(keyf), cert: fs.readFileSync(certf), ca: fs.readFileSync(caf)};
setTimeout(() => { console.error('timeout'); process.exit(3); }, 20000).unref();

if (mode === 'server') {
    const server = http2.createSecureServer({...tls, requestCert: true, rejectUnauthorized: true,
                                             allowHTTP1: false});
    server.on('stream', (stream, headers) => {
        if (headers[':method'] !== 'CONNECT') {
            stream.respond({':status': 405}, {endStream: true});
            return;
        }
        const [host, port] = headers[':authority'].split(':');
        const up = net.connect(Number(port), host, () => {
            stream.respond({':status': 200});
            stream.pipe(up);
            up.pipe(stream);
        });
        up.on('error', () => { if (!stream.headersSent) stream.respond({':status': 503}, {endStream: true}); });
    });
    server.listen(0, '127.0.0.1', () => fs.writeFileSync(a1, String(server.address().port)));
} else {
    const client = http2.connect('https://127.0.0.1:' + a1,
                                 {...tls, checkServerIdentity: () => undefined});
    client.on('error', (e) => { console.log(JSON.stringify({error: e.message})); process.exit(2); });
    const req = client.request({':method': 'CONNECT', ':authority': authority});
    let status = 0, echo = '';
    req.on('response', (h) => { status = h[':status']; req.end(payload); });
    req.on('data', (d) => { echo += d; });
    req.on('close', () => {
        console.log(JSON.stringify({status, echo}));
        client.close();
    });
}
