// meshctl dashboard jaeger: trace search over meshctl's OTLP collector and
// a waterfall of one trace's spans (parents before children, siblings by
// start). window.meshTraces holds what is shown, for tests.
'use strict';

window.meshTraces = { results: [], trace: null, spans: [] };
const $ = (sel) => document.querySelector(sel);
const KINDS = ['unspecified', 'internal', 'server', 'client', 'producer', 'consumer'];

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  for (const c of children) e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return e;
}

const us = (nano) => Number(BigInt(nano) / 1000n); // microseconds since the epoch

function setStatus(text, bad) {
  $('#status').textContent = text;
  $('#status').className = 'status' + (bad ? ' error' : '');
}

async function search(ev) {
  if (ev) ev.preventDefault();
  const q = new URLSearchParams({
    service: $('#service').value,
    minDurationUs: String(Math.round(Number($('#minDuration').value || 0) * 1000)),
    limit: $('#limit').value || '20',
  });
  try {
    const r = await fetch('/api/traces?' + q);
    if (!r.ok) throw new Error('HTTP ' + r.status);
    const doc = await r.json();
    const sel = $('#service');
    const current = sel.value;
    sel.replaceChildren(el('option', { value: '' }, '(any)'), ...doc.services.map((s) => el('option', { value: s }, s)));
    sel.value = doc.services.includes(current) ? current : '';
    $('#results tbody').replaceChildren(...doc.traces.map((t) => {
      const tr = el('tr', { 'data-trace': t.traceId },
        el('td', {}, t.traceId.slice(0, 16)), el('td', {}, t.service + ': ' + t.name),
        el('td', {}, t.services.join(', ')), el('td', { class: 'num' }, t.spans),
        el('td', { class: 'num' + (t.errors ? ' bad' : '') }, t.errors),
        el('td', { class: 'num' }, (t.durationUs / 1000).toFixed(2)),
        el('td', {}, new Date(us(t.startUnixNano) / 1000).toISOString()));
      tr.addEventListener('click', () => { location.hash = 'trace=' + t.traceId; });
      return tr;
    }));
    window.meshTraces.results = doc.traces;
    const s = doc.stats;
    setStatus(doc.traces.length + ' traces; ' + s.stored + ' spans stored, ' + s.evicted + ' evicted, ' + s.rejected + ' rejected');
  } catch (err) {
    setStatus('cannot reach meshctl: ' + err.message, true);
  }
}

// Depth-first from the roots; a span whose parent is not stored is a root.
function ordered(spans) {
  const ids = new Set(spans.map((s) => s.spanId));
  const children = new Map();
  for (const s of spans) {
    const p = s.parentSpanId && ids.has(s.parentSpanId) ? s.parentSpanId : '';
    if (!children.has(p)) children.set(p, []);
    children.get(p).push(s);
  }
  const out = [];
  const walk = (parent, depth) => {
    for (const s of children.get(parent) || []) {
      if (out.length > spans.length) return; // a cycle of ids: stop
      out.push({ ...s, depth });
      walk(s.spanId, depth + 1);
    }
  };
  walk('', 0);
  return out;
}

function attrTable(attrs) {
  return el('table', {}, ...Object.entries(attrs).map(([k, v]) => el('tr', {}, el('th', {}, k), el('td', {}, JSON.stringify(v)))));
}

async function showTrace(id) {
  const r = await fetch('/api/traces/' + encodeURIComponent(id));
  if (!r.ok) { setStatus('trace ' + id + ' not found', true); return; }
  const t = await r.json();
  const spans = ordered(t.spans);
  const start = Math.min(...spans.map((s) => us(s.startUnixNano)));
  const end = Math.max(...spans.map((s) => us(s.startUnixNano) + s.durationUs));
  const total = Math.max(end - start, 1);
  $('#trace-title').textContent = 'Trace ' + t.traceId + ': ' + spans.length + ' spans, ' + (total / 1000).toFixed(2) + ' ms';
  $('#waterfall').replaceChildren(...spans.map((s) => {
    const left = ((us(s.startUnixNano) - start) / total) * 100;
    const width = (s.durationUs / total) * 100;
    const label = el('div', { class: 'label', style: 'padding-left:' + (6 + s.depth * 16) + 'px', title: s.name },
      s.service + ': ' + s.name + ' (' + (KINDS[s.kind] || s.kind) + ')');
    const row = el('div', { class: 'span-row', 'data-span': s.spanId, 'data-depth': s.depth }, label,
      el('div', { class: 'track' }, el('div', { class: 'bar' + (s.error ? ' error' : ''), style: 'left:' + left + '%;width:' + width + '%' }),
        el('span', { class: 'dur', style: 'left:' + Math.min(left + width, 90) + '%' }, ' ' + (s.durationUs / 1000).toFixed(2) + ' ms')),
      el('div', { class: 'attrs' }, attrTable(s.attributes)));
    label.addEventListener('click', () => row.classList.toggle('open'));
    return row;
  }));
  window.meshTraces.trace = t.traceId;
  window.meshTraces.spans = spans;
}

function route() {
  const m = /trace=([0-9a-fA-F]+)/.exec(location.hash);
  if (m) showTrace(m[1]);
}

$('#search').addEventListener('submit', search);
window.addEventListener('hashchange', route);
search().then(route);
