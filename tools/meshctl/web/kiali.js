// meshctl dashboard kiali: polls /api/graph (meshctl's aggregate of every
// agent's Istio metrics) and draws it with cytoscape, plus an edge table
// and a panel per node. window.meshGraph holds the latest graph for tests.
'use strict';

const POLL_MS = 2000;
const state = { graph: null, selected: null, cy: null };
window.meshGraph = { nodes: [], edges: [], updates: 0 };

const $ = (sel) => document.querySelector(sel);
const fmt = (x, digits = 1) => (x == null ? '-' : Number(x).toFixed(digits));
const bytes = (x) => (x >= 1048576 ? fmt(x / 1048576) + ' MiB' : x >= 1024 ? fmt(x / 1024) + ' KiB' : fmt(x, 0) + ' B');

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  for (const c of children) e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return e;
}

function nodeLabel(n) {
  if (n.type === 'service') return n.name + ' (svc)';
  return n.version ? n.name + ' ' + n.version : n.name;
}

function edgeLabel(e) {
  const parts = [];
  if (e.mtls >= 0.5) parts.push('mTLS');
  if (e.protocol !== 'tcp') parts.push(fmt(e.rps, 2) + ' rps', fmt(e.error_rate * 100) + '% err');
  if (e.p99_ms != null) parts.push('p99 ' + fmt(e.p99_ms) + 'ms');
  if (e.tcp_bytes_ps > 0) parts.push(bytes(e.tcp_bytes_ps) + '/s');
  if (e.denied_ps > 0 || e.denied_total > 0) parts.push('denied ' + fmt(e.denied_total, 0));
  return parts.join(' ');
}

function edgeClasses(e) {
  const c = [e.mtls >= 0.5 ? 'mtls' : 'plain'];
  if (e.denied_ps > 0) c.push('denied');
  else if (e.error_rate > 0.01 || e.tcp_failed_ps > 0) c.push('failing');
  return c.join(' ');
}

function initGraph() {
  if (typeof window.cytoscape !== 'function') {
    $('#graph').textContent = 'cytoscape was not built in (make deps): the table below has the edges.';
    return null;
  }
  const cy = window.cytoscape({
    container: $('#graph'),
    style: [
      { selector: 'node', style: { label: 'data(label)', 'font-size': 11, 'text-valign': 'bottom', 'background-color': '#5c6bc0', width: 28, height: 28 } },
      { selector: 'node[type = "service"]', style: { shape: 'triangle', 'background-color': '#26a69a' } },
      { selector: 'node[type = "unknown"]', style: { shape: 'diamond', 'background-color': '#9e9e9e' } },
      { selector: 'node:selected', style: { 'border-width': 3, 'border-color': '#ffb300' } },
      { selector: 'edge', style: { label: 'data(label)', 'font-size': 9, 'curve-style': 'bezier', 'target-arrow-shape': 'triangle', width: 2, 'line-color': '#90a4ae', 'target-arrow-color': '#90a4ae', 'text-background-color': '#fff', 'text-background-opacity': 0.8 } },
      { selector: 'edge.plain', style: { 'line-style': 'dashed' } },
      { selector: 'edge.mtls', style: { 'line-color': '#43a047', 'target-arrow-color': '#43a047' } },
      { selector: 'edge.failing', style: { 'line-color': '#fb8c00', 'target-arrow-color': '#fb8c00' } },
      { selector: 'edge.denied', style: { 'line-color': '#e53935', 'target-arrow-color': '#e53935' } },
    ],
  });
  cy.on('tap', 'node', (ev) => { state.selected = ev.target.id(); showPanel(); });
  return cy;
}

function updateGraph(g) {
  const cy = state.cy;
  if (!cy) return;
  let added = false;
  const want = new Set();
  cy.batch(() => {
    for (const n of g.nodes) {
      want.add(n.id);
      const data = { id: n.id, label: nodeLabel(n), type: n.type };
      const have = cy.getElementById(n.id);
      if (have.nonempty()) have.data(data);
      else { cy.add({ group: 'nodes', data }); added = true; }
    }
    for (const e of g.edges) {
      want.add(e.id);
      const data = { id: e.id, source: e.source, target: e.target, label: edgeLabel(e) };
      const have = cy.getElementById(e.id);
      if (have.nonempty()) have.data(data);
      else { cy.add({ group: 'edges', data }); added = true; }
      cy.getElementById(e.id).classes(edgeClasses(e));
    }
    cy.elements().filter((x) => !want.has(x.id())).remove();
  });
  if (added) cy.layout({ name: 'breadthfirst', directed: true, spacingFactor: 1.3, padding: 20 }).run();
}

function updateTable(g) {
  const names = Object.fromEntries(g.nodes.map((n) => [n.id, nodeLabel(n)]));
  const rows = g.edges.map((e) => {
    const tr = el('tr', { 'data-edge': e.id, 'data-mtls': String(e.mtls >= 0.5), class: e.denied_ps > 0 ? 'denied' : '' },
      el('td', {}, names[e.source] || e.source), el('td', {}, names[e.target] || e.target),
      el('td', {}, e.protocol),
      el('td', { class: e.mtls >= 0.5 ? 'mtls' : 'plain' }, e.mtls >= 0.5 ? 'mTLS' : 'plaintext'),
      el('td', { class: 'num' }, fmt(e.rps, 2)), el('td', { class: 'num' + (e.error_rate > 0 ? ' bad' : '') }, fmt(e.error_rate * 100) + '%'),
      el('td', { class: 'num' }, fmt(e.denied_ps, 2)), el('td', { class: 'num' }, fmt(e.p99_ms)),
      el('td', { class: 'num' }, bytes(e.tcp_bytes_ps)), el('td', { class: 'num' }, fmt(e.tcp_failed_ps, 2)),
      el('td', { class: 'num' }, fmt(e.requests_total, 0)));
    return tr;
  });
  $('#edges tbody').replaceChildren(...rows);
}

function sums(edges) {
  const s = { rps: 0, errors_ps: 0, denied_ps: 0, tcp_bytes_ps: 0, requests_total: 0 };
  for (const e of edges) for (const k of Object.keys(s)) s[k] += e[k] || 0;
  return s;
}

async function showPanel() {
  const g = state.graph;
  const n = g && g.nodes.find((x) => x.id === state.selected);
  if (!n) return;
  const inbound = g.edges.filter((e) => e.target === n.id);
  const outbound = g.edges.filter((e) => e.source === n.id);
  const metrics = (title, list) => {
    const s = sums(list);
    return el('div', {}, el('h4', {}, title + ' (' + list.length + ' edges)'),
      el('div', {}, fmt(s.rps, 2) + ' req/s, ' + fmt(s.errors_ps, 2) + ' errors/s, ' + fmt(s.denied_ps, 2) + ' denied/s, ' + bytes(s.tcp_bytes_ps) + '/s TCP, ' + fmt(s.requests_total, 0) + ' requests'));
  };
  const panel = $('#panel');
  panel.replaceChildren(el('h3', {}, nodeLabel(n)),
    el('div', {}, n.type + (n.namespace ? ' in ' + n.namespace : '') + (n.app ? ', app ' + n.app : '')),
    metrics('Inbound', inbound), metrics('Outbound', outbound), el('h4', {}, 'Recent connections'));
  const agents = (n.agents || []);
  if (agents.length === 0) { panel.append(el('div', {}, 'No agent reports this node as local.')); return; }
  // The agents where the workload is local: their newest connections in its namespace.
  const table = el('table', { id: 'connections' }, el('tr', {}, ...['node', 'dir', 'pod', 'source', 'destination', 'state', 'flags', 'sent', 'recv'].map((h) => el('th', {}, h))));
  for (const i of agents) {
    const r = await fetch('/api/connections?agent=' + i);
    if (!r.ok) continue;
    for (const c of (await r.json()).reverse()) {
      if (n.namespace && c.pod && !c.pod.startsWith(n.namespace + '/')) continue;
      table.append(el('tr', {}, el('td', {}, c.node), el('td', {}, c.direction), el('td', {}, c.pod), el('td', {}, c.src),
        el('td', {}, c.original_dst), el('td', {}, c.state), el('td', {}, c.response_flags), el('td', { class: 'num' }, c.bytes_sent), el('td', { class: 'num' }, c.bytes_received)));
    }
  }
  panel.append(table);
}

async function poll() {
  try {
    const r = await fetch('/api/graph');
    if (!r.ok) throw new Error('HTTP ' + r.status);
    const g = await r.json();
    state.graph = g;
    updateGraph(g);
    updateTable(g);
    const up = g.agents.filter((a) => a.up).length;
    const status = $('#status');
    status.textContent = g.nodes.length + ' nodes, ' + g.edges.length + ' edges; ' + (g.source === 'agents' ? up + '/' + g.agents.length + ' agents' : g.source) + (g.interval_s ? ', rates over ' + fmt(g.interval_s) + ' s' : ', waiting for a second scrape') + (g.error ? '; ' + g.error : '');
    status.className = 'status' + (g.error ? ' error' : '');
    window.meshGraph = { nodes: g.nodes, edges: g.edges, interval_s: g.interval_s, updates: window.meshGraph.updates + 1 };
  } catch (err) {
    $('#status').textContent = 'cannot reach meshctl: ' + err.message;
    $('#status').className = 'status error';
  }
  setTimeout(poll, POLL_MS);
}

state.cy = initGraph();
window.meshCy = state.cy; // for tests: select a node as a click would
poll();
