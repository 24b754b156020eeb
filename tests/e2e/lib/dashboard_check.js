// Loads meshctl's dashboards in headless Chromium (puppeteer-core) and
// checks what they show; fails on any JavaScript error or console error in
// a page. Prints "ok: ..." lines and the screenshots' paths; exit 1 on the
// first failure.
//
//   node dashboard_check.js --out DIR [--kiali URL --expect JSON]
//        [--jaeger URL --trace ID --order SVC,SVC,... [--kinds KIND,KIND,...]]
//        [--prometheus URL]
//
// --expect: {"nodes": [ids], "edges": [[source, target], ...], "denied":
// [[source, target], ...], "panel": id}: each edge must show a non-zero
// request or byte rate and the mTLS mark; each denied edge its denials.
// --order: the services of the trace's first spans, each the child of the
// one before (depth 0, 1, 2, ...); --kinds: their kinds (client, server)
// as the waterfall labels them.
'use strict';

const path = require('path');
const puppeteer = require(path.join(__dirname, '../../node/node_modules/puppeteer-core'));

const args = {};
for (let i = 2; i < process.argv.length; i += 2) args[process.argv[i].replace(/^--/, '')] = process.argv[i + 1];
const WAIT_MS = Number(args.wait || 45000);

function fail(msg) {
  console.log('FAIL: ' + msg);
  process.exitCode = 1;
  throw new Error(msg);
}

async function openPage(browser, name, url) {
  const page = await browser.newPage();
  await page.setViewport({ width: 1400, height: 900 });
  const errors = [];
  page.on('pageerror', (e) => errors.push('pageerror: ' + e.message));
  page.on('console', (m) => { if (m.type() === 'error') errors.push('console: ' + m.text()); });
  await page.goto(url, { waitUntil: 'load', timeout: 15000 });
  return { page, errors, name };
}

async function finish(p) {
  const shot = path.join(args.out, p.name + '.png');
  await p.page.screenshot({ path: shot, fullPage: true });
  console.log('screenshot: ' + shot);
  // Prometheus's own page, as Debian packages it: its /classic/static/popper.js
  // is popper's ES-module build loaded as a classic script (a packaging
  // defect, not ours). That one error is named and tolerated there, only.
  const known = p.name === 'prometheus' ? p.errors.filter((e) => e === "pageerror: Unexpected token 'export'") : [];
  if (known.length) console.log('known: ' + p.name + ": Debian's popper.min.js is an ES module: " + known.length + ' error(s) tolerated');
  const errors = p.errors.filter((e) => !known.includes(e));
  if (errors.length) fail(p.name + ': JavaScript errors: ' + errors.join(' | '));
  await p.page.close();
}

async function checkKiali(browser) {
  const expect = JSON.parse(args.expect);
  const p = await openPage(browser, 'kiali', args.kiali);
  try {
    await p.page.waitForFunction((exp) => {
      const g = window.meshGraph;
      if (!g || !g.interval_s) return false;
      const ids = new Set(g.nodes.map((n) => n.id));
      return exp.nodes.every((n) => ids.has(n)) && exp.edges.every(([s, t]) =>
        g.edges.some((e) => e.source === s && e.target === t && (e.rps > 0 || e.tcp_bytes_ps > 0) && e.mtls >= 0.5));
    }, { timeout: WAIT_MS, polling: 500 }, expect);
  } catch (e) {
    const g = await p.page.evaluate(() => JSON.stringify(window.meshGraph));
    await finish(p).catch(() => {});
    fail('kiali: expected nodes/edges not shown within ' + WAIT_MS + ' ms; graph: ' + g);
  }
  const g = await p.page.evaluate(() => window.meshGraph);
  for (const [s, t] of expect.edges) {
    const e = g.edges.find((x) => x.source === s && x.target === t);
    console.log(`ok: kiali edge ${s} -> ${t}: ${e.rps.toFixed(2)} rps, error rate ${e.error_rate.toFixed(3)}, p99 ${e.p99_ms} ms, ${e.tcp_bytes_ps.toFixed(0)} B/s, mtls ${e.mtls}`);
  }
  // The page itself: the canvas drawn, the table's mTLS marks, one panel.
  const dom = await p.page.evaluate(() => ({
    canvas: document.querySelectorAll('#graph canvas').length,
    mtlsRows: document.querySelectorAll('#edges tbody tr[data-mtls="true"]').length,
    rows: document.querySelectorAll('#edges tbody tr').length,
    cyNodes: window.meshCy ? window.meshCy.nodes().length : 0,
    cyMtls: window.meshCy ? window.meshCy.edges('.mtls').length : 0,
  }));
  if (!dom.canvas || dom.rows < expect.edges.length || dom.mtlsRows < expect.edges.length || dom.cyNodes < expect.nodes.length || dom.cyMtls < expect.edges.length)
    fail('kiali: the page does not show the graph: ' + JSON.stringify(dom));
  console.log('ok: kiali page: ' + JSON.stringify(dom));
  // Denied traffic shown on its edge: the drawn label and the table row.
  for (const [s, t] of expect.denied || []) {
    const shown = await p.page.evaluate((src, dst) => {
      const e = window.meshCy.edges().filter((x) => x.data('source') === src && x.data('target') === dst);
      const row = document.querySelector('#edges tbody tr[data-edge="' + src + '->' + dst + '"]');
      return { label: e.nonempty() ? e.data('label') : '', row: row ? row.innerText : '' };
    }, s, t);
    if (!/denied [1-9]/.test(shown.label) || !shown.row) fail('kiali: denied traffic not shown on ' + s + ' -> ' + t + ': ' + JSON.stringify(shown));
    console.log('ok: kiali denied on ' + s + ' -> ' + t + ': ' + shown.label);
  }
  const wl = expect.panel || expect.nodes[0];
  await p.page.evaluate((id) => window.meshCy.getElementById(id).emit('tap'), wl);
  await p.page.waitForFunction(() => document.querySelectorAll('#panel #connections tr').length > 1, { timeout: 10000 })
    .catch(() => fail('kiali: the panel of ' + wl + ' lists no connection'));
  const panel = await p.page.evaluate(() => document.querySelector('#panel').innerText);
  if (!/Inbound/.test(panel) || !/Outbound/.test(panel)) fail('kiali: panel without metrics: ' + panel);
  console.log('ok: kiali panel of ' + wl + ' lists recent connections');
  await finish(p);
}

async function checkJaeger(browser) {
  const p = await openPage(browser, 'jaeger', args.jaeger + '#trace=' + args.trace);
  const order = args.order.split(',');
  try {
    await p.page.waitForFunction((n) => window.meshTraces.spans.length >= n &&
      document.querySelectorAll('#results tbody tr').length > 0, { timeout: WAIT_MS, polling: 500 }, order.length);
  } catch (e) {
    await finish(p).catch(() => {});
    fail('jaeger: the trace ' + args.trace + ' is not shown');
  }
  // The search form: the first span's service, the latest 500 (traffic
  // keeps coming: the trace may be older than the default 20).
  await p.page.select('#service', order[0]).catch(() => fail('jaeger: no service ' + order[0] + ' to search'));
  await p.page.$eval('#limit', (e) => { e.value = '500'; });
  await p.page.click('#search button[type=submit]');
  // Done when the table is the new search's: every row has the service.
  await p.page.waitForFunction((t, svc) => {
    const rows = [...document.querySelectorAll('#results tbody tr')];
    return rows.some((r) => r.getAttribute('data-trace') === t) &&
      rows.every((r) => r.querySelector('td:nth-child(3)').textContent.split(', ').includes(svc));
  }, { timeout: 10000, polling: 250 }, args.trace, order[0]).catch(() => {});
  const shown = await p.page.evaluate(() => ({
    spans: window.meshTraces.spans.map((s) => ({ service: s.service, depth: s.depth, attrs: Object.keys(s.attributes).length })),
    rows: [...document.querySelectorAll('#waterfall .span-row')].map((r) => r.querySelector('.label').textContent),
    results: [...document.querySelectorAll('#results tbody tr')].map((r) => r.getAttribute('data-trace')),
    resultServices: [...document.querySelectorAll('#results tbody tr td:nth-child(3)')].map((td) => td.textContent),
  }));
  const services = shown.spans.map((s) => s.service);
  const prefix = services.slice(0, order.length).join(',');
  if (prefix !== order.join(',') || shown.spans.slice(0, order.length).some((s, i) => s.depth !== i))
    fail('jaeger: spans not in order ' + order.join(' -> ') + ': ' + JSON.stringify(shown.spans));
  if (shown.rows.length !== shown.spans.length || shown.rows.slice(0, order.length).some((r, i) => !r.startsWith(order[i] + ':')))
    fail('jaeger: the waterfall does not show the spans: ' + JSON.stringify(shown.rows));
  const kinds = args.kinds ? args.kinds.split(',') : [];
  if (kinds.some((k, i) => !shown.rows[i] || !shown.rows[i].toLowerCase().endsWith('(' + k.toLowerCase() + ')')))
    fail('jaeger: the waterfall does not show the kinds ' + kinds.join(',') + ': ' + JSON.stringify(shown.rows));
  if (!shown.results.includes(args.trace)) fail('jaeger: search results without the trace');
  if (shown.resultServices.some((t) => !t.split(', ').includes(order[0])))
    fail('jaeger: a search result without the service searched: ' + JSON.stringify(shown.resultServices));
  console.log('ok: jaeger search by service ' + order[0] + ': ' + shown.results.length + ' traces, the trace among them');
  if (shown.spans.some((s) => s.attrs === 0)) fail('jaeger: a span without attributes');
  console.log('ok: jaeger waterfall ' + shown.rows.join(' | '));
  await p.page.click('#waterfall .span-row .label');
  const attrs = await p.page.evaluate(() => document.querySelector('#waterfall .span-row.open .attrs').innerText);
  for (const k of ['http.method', 'http.status_code', 'istio.canonical_service', 'upstream_cluster'])
    if (!attrs.includes(k)) fail('jaeger: the root span\'s ' + k + ' does not show: ' + attrs);
  console.log('ok: jaeger attributes of the root span shown');
  await finish(p);
}

async function checkPrometheus(browser) {
  const q = 'istio_requests_total';
  const p = await openPage(browser, 'prometheus', args.prometheus.replace(/\/$/, '') + '/graph?g0.expr=' + encodeURIComponent(q) + '&g0.tab=1');
  let n = 0;
  const deadline = Date.now() + WAIT_MS;
  while (Date.now() < deadline) {
    n = await p.page.evaluate(async (query) => {
      const r = await fetch('/api/v1/query?query=' + encodeURIComponent(query));
      const doc = await r.json();
      return doc.status === 'success' ? doc.data.result.length : -1;
    }, q);
    if (n > 0) break;
    await new Promise((r) => setTimeout(r, 1000));
  }
  if (n <= 0) { await finish(p).catch(() => {}); fail('prometheus: no ' + q + ' series'); }
  await p.page.reload({ waitUntil: 'load' });
  await p.page.waitForFunction((query) => document.body.innerText.includes(query + '{'), { timeout: 15000 }, q)
    .catch(() => fail('prometheus: the graph page does not list the ' + q + ' series'));
  console.log('ok: prometheus answers ' + q + ' with ' + n + ' series, shown on its page');
  await finish(p);
}

(async () => {
  const browser = await puppeteer.launch({
    executablePath: args.chromium || '/usr/bin/chromium',
    headless: 'new',
    args: ['--no-sandbox', '--headless=new', '--disable-gpu', '--disable-dev-shm-usage', '--no-first-run'],
    timeout: 30000,
  });
  const timer = setTimeout(() => { console.log('FAIL: dashboard_check timed out'); process.exit(1); }, 4 * WAIT_MS);
  try {
    if (args.kiali) await checkKiali(browser);
    if (args.jaeger) await checkJaeger(browser);
    if (args.prometheus) await checkPrometheus(browser);
  } catch (e) {
    if (!process.exitCode) console.log('FAIL: ' + e.message);
    process.exitCode = 1;
  } finally {
    clearTimeout(timer);
    await browser.close();
  }
})();
