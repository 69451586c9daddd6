// The live status page: one Server-Sent Events stream of frames (one a second), drawn as tables (every value
// in text) and vega-lite charts. No polling: the server sends only while this page is open.
'use strict';

const keep = 300;
const series = { throughput: [], latency: [], weights: [], batches: [] };
const charts = {};

const fmt = (v, digits = 1) => (v === null || v === undefined || Number.isNaN(v) ? '–' : Number(v).toFixed(digits));
const pct = (v) => `${(100 * v).toFixed(1)}%`;

function cell(text, className) {
  const td = document.createElement('td');
  td.textContent = text;
  if (className) td.className = className;
  return td;
}

function fill(tableId, rows) {
  const body = document.querySelector(`#${tableId} tbody`);
  body.replaceChildren(
    ...rows.map((cells) => {
      const tr = document.createElement('tr');
      tr.replaceChildren(...cells);
      return tr;
    }),
  );
}

function lineSpec(title, y, color, extra = {}) {
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    description: title,
    width: 'container',
    height: 160,
    data: { name: 'points' },
    mark: { type: 'line', interpolate: 'linear', point: false },
    encoding: {
      x: { field: 't', type: 'temporal', title: null, axis: { format: '%H:%M:%S', labelOverlap: true } },
      y: { field: 'value', type: 'quantitative', title: y },
      color: { field: 'series', type: 'nominal', title: color, legend: { orient: 'bottom' } },
      tooltip: [{ field: 'series' }, { field: 'value', format: '.2f' }, { field: 't', type: 'temporal', format: '%H:%M:%S' }],
    },
    ...extra,
  };
}

async function ensureChart(name, spec) {
  if (charts[name] === undefined) {
    charts[name] = vegaEmbed(`#chart-${name}`, spec, { actions: false, renderer: 'svg' }).then((result) => result.view);
  }
  return charts[name];
}

async function draw(name, spec) {
  const view = await ensureChart(name, spec);
  const points = series[name];
  await view.data('points', points.slice()).runAsync();
  document.getElementById(`chart-${name}`).dataset.points = String(points.length);
}

function push(name, rows) {
  const s = series[name];
  s.push(...rows);
  const cutoff = rows.length > 0 ? rows[0].t - keep * 1000 : 0;
  while (s.length > 0 && s[0].t < cutoff) s.shift();
}

function record(frame) {
  const t = frame.at;
  if (frame.intervalMs > 0) {
    push('throughput', frame.apps.map((a) => ({ t, series: a.name, value: a.queriesPerSecond })));
    push('latency', frame.apps.flatMap((a) => (a.p99Ms === null ? [] : [{ t, series: `${a.name} p99`, value: a.p99Ms }, { t, series: `${a.name} SLO`, value: a.sloMs }])));
  }
  push('weights', frame.apps.flatMap((a) => Object.entries(a.weights ?? {}).map(([m, w]) => ({ t, series: `${a.name}: ${m}`, value: w }))));
  push('batches', frame.models.flatMap((m) => m.versions.filter((v) => v.current).flatMap((v) => v.replicas.map((r) => ({ t, series: r.name, value: r.batchLimit })))));
}

function render(frame, events) {
  fill(
    'apps-table',
    frame.apps.map((a) => [
      cell(a.name),
      cell(fmt(a.queriesPerSecond), 'num'),
      cell(fmt(a.p50Ms, 2), 'num'),
      cell(fmt(a.p99Ms, 2), a.p99Ms !== null && a.p99Ms > a.sloMs ? 'num over' : 'num'),
      cell(String(a.sloMs), 'num'),
      cell(pct(a.defaultRate), 'num'),
      cell(pct(a.refusalRate), 'num'),
      cell(pct(a.cacheHitRate), 'num'),
      cell(a.policy),
      cell(a.linkedModels.join(', ') || '–'),
    ]),
  );
  fill(
    'policies-table',
    frame.apps.map((a) => [
      cell(a.name),
      cell(a.policy),
      cell(a.weights === null ? '–' : Object.entries(a.weights).map(([m, w]) => `${m} ${w.toFixed(3)}`).join(', ')),
      cell(a.users === null ? '–' : String(a.users), 'num'),
    ]),
  );
  fill(
    'models-table',
    frame.models.flatMap((m) =>
      m.versions.flatMap((v) =>
        (v.replicas.length === 0 ? [null] : v.replicas).map((r) => [
          cell(m.name),
          cell(v.current ? `${v.version} (current)` : v.version),
          cell(r === null ? '–' : r.name),
          cell(r === null ? 'stopped' : r.ready ? 'ready' : r.status),
          cell(r === null ? '–' : String(r.batchLimit), 'num'),
          cell(r === null ? '–' : fmt(r.meanBatch), 'num'),
          cell(r === null ? '–' : String(r.queued), 'num'),
          cell(r === null ? '–' : String(r.restarts), 'num'),
        ]),
      ),
    ),
  );
  const cluster = frame.cluster;
  document.getElementById('cluster').hidden = cluster === undefined;
  if (cluster !== undefined) {
    const since = (iso) => (iso ? new Date(iso).toLocaleTimeString() : '–');
    fill(
      'frontends-table',
      cluster.frontends.map((f) => [cell(f.id === cluster.self ? `${f.id} (this one)` : f.id), cell(f.host), cell(f.queryUrl), cell(f.adminUrl), cell(since(f.startedAt))]),
    );
    fill(
      'containers-table',
      cluster.containers.length === 0 ? [[cell('none'), cell('–'), cell('–'), cell('–'), cell('–')]] : cluster.containers.map((c) => [cell(c.id), cell(c.model), cell(c.version), cell(c.host), cell(since(c.startedAt))]),
    );
  }
  const list = document.getElementById('events-list');
  list.replaceChildren(
    ...(events.length === 0 ? [Object.assign(document.createElement('li'), { textContent: 'none yet' })] : events.slice().reverse().map((e) => {
      const li = document.createElement('li');
      li.textContent = `${new Date(e.at).toLocaleTimeString()} ${e.child}: ${e.type}, ${e.detail}`;
      return li;
    })),
  );
  document.getElementById('latest-throughput').textContent = frame.apps.map((a) => `${a.name} ${fmt(a.queriesPerSecond)}/s`).join(', ');
  document.getElementById('latest-latency').textContent = frame.apps.map((a) => `${a.name} ${fmt(a.p99Ms, 2)} ms (SLO ${a.sloMs})`).join(', ');
  document.getElementById('latest-weights').textContent = frame.apps.filter((a) => a.weights !== null).map((a) => `${a.name}: ${Object.entries(a.weights).map(([m, w]) => `${m} ${w.toFixed(2)}`).join(', ')}`).join('; ') || 'no learned weights';
  document.getElementById('latest-batches').textContent = frame.models.flatMap((m) => m.versions.filter((v) => v.current).flatMap((v) => v.replicas.map((r) => `${r.name} ${r.batchLimit}`))).join(', ');
}

let queue = Promise.resolve();
function update(frames, events) {
  // Frames are drawn in order; a slow chart update never interleaves with the next frame's.
  queue = queue.then(async () => {
    for (const f of frames) record(f);
    const last = frames[frames.length - 1];
    if (last === undefined) return;
    render(last, events);
    await Promise.all([
      draw('throughput', lineSpec('Queries per second', 'queries/s', 'application')),
      draw('latency', lineSpec('p99 latency against the SLO', 'ms', 'series')),
      draw('weights', lineSpec('Policy weights', 'weight', 'application: model', { encoding: { ...lineSpec('', 'weight', 'application: model').encoding, y: { field: 'value', type: 'quantitative', title: 'weight', scale: { domain: [0, 1] } } } })),
      draw('batches', lineSpec('AIMD batch limit', 'rows', 'replica')),
    ]);
    document.body.dataset.frames = String(Number(document.body.dataset.frames ?? 0) + frames.length);
  }).catch((error) => console.error(error));
}

function connect() {
  const status = document.getElementById('connection');
  const source = new EventSource('/status/events');
  source.addEventListener('open', () => (status.textContent = 'live, updating every second'));
  source.addEventListener('history', (e) => {
    const { frames, events } = JSON.parse(e.data);
    update(frames, events);
  });
  source.addEventListener('frame', (e) => {
    const { frame, events } = JSON.parse(e.data);
    update([frame], events);
  });
  source.addEventListener('error', () => (status.textContent = 'disconnected; reconnecting…'));
}

window.addEventListener('DOMContentLoaded', connect);
