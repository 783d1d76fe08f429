// rigcam web page, quality views (issue 19): the recording timeline, the session rows and the live charts.
// Plain JS after app.js (it uses its api, el, withToken, fmtBytes); the plots are uPlot, served by the box.
'use strict';

const COLORS = { max: '#37474f', min: '#90a4ae', drop: '#c62828', trigger: '#2e7d32', stop: '#6a1b9a', marker: '#e65100', key: '#78909c', preroll: 'rgba(30, 136, 229, 0.12)', gap: 'rgba(0, 0, 0, 0.10)' };
/** Exposed for the browser tests and for poking at from the console: the charts and the data they draw. */
window.rigcam = { recording: null, live: {} };

const fmtS = (s) => (s == null ? '–' : `${s.toFixed(Math.abs(s) < 10 ? 3 : 1)} s`);
const fmtMs = (v) => (v == null ? '–' : `${v.toFixed(v < 100 ? 2 : 1)} ms`);

// ---- session view: one row per trial ------------------------------------------------------------------

/** ok: nothing dropped; warn: some; bad: 1 % or more, or the trial did not finish cleanly. */
function trialQualityClass(q) {
  if (q.dropped_percent >= 1 || q.state === 'interrupted') return 'q-bad';
  return q.dropped > 0 ? 'q-warn' : 'q-ok';
}

/** The quality line of a trial: a duration bar (scaled to the longest trial of the session) coloured by drops. */
function trialQualityRow(q, maxDuration) {
  const pct = maxDuration > 0 ? Math.min(100, Math.max(2, (q.duration_s / maxDuration) * 100)) : 0;
  const cls = trialQualityClass(q);
  const bar = el('span');
  bar.style.width = `${pct.toFixed(1)}%`; // CSSOM, not a style attribute: the page's CSP refuses inline styles
  const text = `${q.duration_s.toFixed(1)} s · ${q.frames} frames · ${q.dropped} dropped${q.dropped ? ` (${q.dropped_percent.toFixed(2)} %)` : ''} · ${q.markers} marker${q.markers === 1 ? '' : 's'}`;
  return el(
    'div',
    { className: `quality ${cls}`, 'data-testid': `quality-${q.number}`, 'data-dropped': q.dropped, title: cls === 'q-ok' ? 'no frame dropped' : 'frames were dropped' },
    el('div', { className: 'qbar' }, bar),
    el('span', { className: 'qtext', text }),
  );
}

/** Links that open a recording's timeline. */
function plotLink(trialId, r) {
  return el('a', { href: `#rec/${r.id}`, text: 'plot', 'data-testid': `plot-${trialId}-${r.camera_id}${r.segment ? `-${r.segment}` : ''}` });
}

// ---- recording view -----------------------------------------------------------------------------------

let recView = null; // { id, origin_us, full, u, fetching }

function seriesData(s) {
  const b = s.buckets;
  return [b.t, b.interval_max_ms, b.interval_min_ms, b.missing.map((m, i) => (m > 0 ? b.interval_max_ms[i] ?? s.frame_period_ms : null))];
}

/** Vertical line across the plot at x (data units), with an optional label at the top. */
function vline(u, x, color, label, dash, row = 0) {
  const ctx = u.ctx;
  const px = Math.round(u.valToPos(x, 'x', true));
  if (px < u.bbox.left - 1 || px > u.bbox.left + u.bbox.width + 1) return;
  ctx.save();
  ctx.strokeStyle = color;
  ctx.lineWidth = 1.5 * devicePixelRatio;
  ctx.setLineDash(dash ? dash.map((d) => d * devicePixelRatio) : []);
  ctx.beginPath();
  ctx.moveTo(px, u.bbox.top);
  ctx.lineTo(px, u.bbox.top + u.bbox.height);
  ctx.stroke();
  if (label) {
    ctx.setLineDash([]);
    ctx.fillStyle = color;
    ctx.font = `${11 * devicePixelRatio}px system-ui, sans-serif`;
    const w = ctx.measureText(label).width;
    const right = px + 3 * devicePixelRatio + w > u.bbox.left + u.bbox.width;
    ctx.textAlign = right ? 'right' : 'left';
    ctx.fillText(label, right ? px - 3 * devicePixelRatio : px + 3 * devicePixelRatio, u.bbox.top + (12 + 12 * row) * devicePixelRatio);
  }
  ctx.restore();
}

/** Shade [x0, x1] (data units) over the plot's height. */
function shade(u, x0, x1, color) {
  const a = Math.max(u.bbox.left, u.valToPos(x0, 'x', true));
  const b = Math.min(u.bbox.left + u.bbox.width, u.valToPos(x1, 'x', true));
  if (b <= a) return;
  u.ctx.save();
  u.ctx.fillStyle = color;
  u.ctx.fillRect(a, u.bbox.top, b - a, u.bbox.height);
  u.ctx.restore();
}

/** What uPlot does not draw itself: pre-roll, gaps, keyframe ticks (under the series); trigger, stop, markers (over). */
const overlays = {
  drawAxes: [
    (u) => {
      const s = recView?.series;
      if (!s) return;
      if (s.preroll) shade(u, s.preroll.from_t, s.preroll.to_t, COLORS.preroll);
      for (const g of s.gaps) shade(u, g.t - (g.gap_ms ?? 0) / 1000, g.t, COLORS.gap);
      const b = s.buckets;
      u.ctx.save();
      u.ctx.fillStyle = COLORS.key;
      for (let i = 0; i < b.t.length; i++) {
        if (!b.keyframes[i]) continue;
        const px = u.valToPos(b.t[i], 'x', true);
        if (px >= u.bbox.left && px <= u.bbox.left + u.bbox.width) u.ctx.fillRect(px, u.bbox.top + u.bbox.height - 5 * devicePixelRatio, Math.max(1, devicePixelRatio), 5 * devicePixelRatio);
      }
      u.ctx.restore();
    },
  ],
  draw: [
    (u) => {
      const s = recView?.series;
      if (!s) return;
      if (s.trigger) vline(u, s.trigger.t, COLORS.trigger, 'trigger', null, 0);
      if (s.stop) vline(u, s.stop.t, COLORS.stop, 'stop', null, 0);
      s.markers.forEach((m, i) => vline(u, m.t, COLORS.marker, m.label, [4, 3], 1 + (i % 3)));
    },
  ],
};

function chartSize(box) {
  const w = Math.max(260, box.clientWidth);
  return { width: w, height: Math.round(Math.min(360, Math.max(200, w * 0.45))) };
}

function makeRecordingChart(box, s) {
  const yMin = s.frame_period_ms ? s.frame_period_ms * 2.2 : 1;
  const opts = {
    ...chartSize(box),
    pxAlign: 0,
    cursor: { drag: { x: true, y: false, setScale: true }, points: { size: 6 } },
    scales: { x: { time: false }, y: { range: (u, min, max) => [0, Math.max(yMin, (max ?? 0) * 1.1)] } },
    axes: [{ label: s.origin === 'trigger' ? 's from trigger' : 's from first frame', size: 40 }, { label: 'frame interval, ms', size: 52 }],
    legend: { live: true },
    series: [
      { label: 't', value: (u, v) => (v == null ? '–' : `${v.toFixed(3)} s`) },
      { label: 'max interval', stroke: COLORS.max, width: 1.25, value: (u, v) => fmtMs(v) },
      { label: 'min interval', stroke: COLORS.min, width: 1, value: (u, v) => fmtMs(v) },
      { label: 'drop', stroke: COLORS.drop, fill: COLORS.drop, width: 0, paths: () => null, points: { show: true, size: 8, fill: COLORS.drop, stroke: COLORS.drop }, value: (u, v) => (v == null ? '–' : '●') },
    ],
    hooks: {
      ...overlays,
      setScale: [
        (u, key) => {
          if (key === 'x' && recView && !recView.settingData) zoomTo(u.scales.x.min, u.scales.x.max);
        },
      ],
    },
  };
  return new uPlot(opts, seriesData(s), box);
}

/** After a drag-zoom: ask the box for the span at full width, so detail appears as you zoom in. */
let zoomTimer = null;
function zoomTo(min, max) {
  clearTimeout(zoomTimer);
  const v = recView;
  const full = v.full.buckets.t;
  if (min == null || max == null || !full.length) return;
  const whole = min <= full[0] && max >= v.full.buckets.t_end[full.length - 1];
  if (whole && v.series === v.full) return;
  const seq = (v.zoomSeq = (v.zoomSeq ?? 0) + 1);
  zoomTimer = setTimeout(async () => {
    const s = whole ? v.full : await fetchSeries(v.id, Math.floor(v.origin_us + min * 1e6), Math.ceil(v.origin_us + max * 1e6));
    if (!s || recView !== v || v.zoomSeq !== seq) return; // closed, or a newer zoom was asked for meanwhile
    showSeries(s, false);
  }, 150);
}

async function fetchSeries(id, fromUs, toUs) {
  const w = Math.round(Math.max(100, Math.min(4000, ($('rec-chart').clientWidth || 800) * devicePixelRatio)));
  const q = fromUs != null && toUs > fromUs ? `&from_us=${fromUs}&to_us=${toUs}` : '';
  const { status, data } = await api(`/api/recordings/${id}/series?width=${w}${q}`);
  if (status !== 200) {
    $('rec-message').textContent = data.error;
    return null;
  }
  return data;
}

function showSeries(s, resetScales) {
  const v = recView;
  v.series = s;
  window.rigcam.recording = { chart: v.u, series: s, full: v.full };
  v.settingData = true;
  v.u.setData(seriesData(s), resetScales);
  v.settingData = false;
  renderRecordingLists(s);
}

function renderRecordingLists(s) {
  const drops = $('rec-drops');
  const shown = s.drops.slice(0, 200);
  drops.replaceChildren(
    ...shown.map((d) => el('li', { 'data-frame': d.frame_index, 'data-t': d.t, text: `frame ${d.frame_index} at ${fmtS(d.t)}: ${d.missing} missing (${fmtMs(d.interval_ms)} interval)` })),
    ...(s.drops.length > shown.length || s.drops_truncated ? [el('li', { className: 'more', text: `… ${s.drops_truncated ? 'more than ' : ''}${s.drops.length - shown.length} more in this span` })] : []),
  );
  $('rec-drops-h').textContent = s.drops.length ? `Drops in view (${s.drops.length}${s.drops_truncated ? '+' : ''})` : 'No drops in view';
  const markers = $('rec-markers');
  markers.replaceChildren(...s.markers.map((m) => el('li', { 'data-frame': m.frame_index ?? '', 'data-t': m.t, text: `${m.label} at ${fmtS(m.t)}${m.frame_index ? ` (frame ${m.frame_index})` : ''}` })));
  $('rec-markers-h').textContent = s.markers.length ? `Markers (${s.markers.length})` : 'No markers';
}

function summaryList(sum) {
  const dd = (k, v, cls) => [el('dt', { text: k }), el('dd', { text: v, className: cls })];
  const a = sum.agreement;
  const checks = el('ul', { className: 'checks' }, ...a.checks.map((c) => el('li', { className: c.ok === false ? 'bad' : c.ok ? 'ok' : '', text: `${c.ok === false ? '✗' : c.ok ? '✓' : '·'} ${c.name}: ${c.detail}` })));
  const links = el(
    'dd',
    {},
    el('a', { href: withToken(sum.links.video), download: '', text: 'video' }),
    ' ',
    el('a', { href: withToken(sum.links.video_ts), download: '', text: '.ts' }),
    ' ',
    el('a', { href: withToken(sum.links.frames_csv), download: '', text: 'frames CSV' }),
  );
  return el(
    'dl',
    { className: 'summary' },
    ...dd('Frames', `${sum.frames} in ${fmtS(sum.duration_s)}`),
    ...dd('Dropped', `${sum.dropped} (${sum.dropped_percent.toFixed(3)} %) before ${sum.frames_after_drops} frame${sum.frames_after_drops === 1 ? '' : 's'}`, sum.dropped ? 'bad' : 'ok'),
    ...dd('Interval', `p50 ${fmtMs(sum.interval_ms.p50)} · p99 ${fmtMs(sum.interval_ms.p99)} · max ${fmtMs(sum.interval_ms.max)}`),
    ...dd('Effective fps', `${sum.effective_fps ?? '–'} (nominal ${sum.fps_nominal})`),
    ...dd('Clock', sum.clock),
    ...dd('Latency', sum.pipeline_latency_ms == null ? 'not stored (live: camera chart)' : fmtMs(sum.pipeline_latency_ms)),
    ...dd('Pre-roll', fmtS(sum.preroll_s)),
    ...dd('Segments', sum.segments.map((g) => `#${g.segment} ${g.frames} frames${g.this ? ' (this)' : ''}`).join(', ')),
    ...dd('Gaps', sum.gaps.length ? sum.gaps.map((g) => `${g.kind} ${fmtMs(g.gap_ms)} at ${fmtS(g.t)}`).join(', ') : 'none'),
    ...dd('Agreement', a.ok === null ? 'still recording' : a.ok ? 'file, CSV and database agree' : 'DISAGREE', a.ok === false ? 'bad' : 'ok'),
    el('dd', { className: 'wide' }, checks),
    el('dt', { text: 'Download' }),
    links,
  );
}

let openSeq = 0;
async function openRecording(id) {
  const seq = ++openSeq;
  const panel = $('recording-panel');
  panel.hidden = false;
  $('rec-title').textContent = `Recording ${id}`;
  $('rec-message').textContent = 'loading…';
  recView?.u?.destroy();
  recView = null;
  $('rec-chart').replaceChildren();
  $('rec-summary').replaceChildren();
  const [info, s, sum] = await Promise.all([api(`/api/recordings/${id}`), fetchSeries(id), api(`/api/recordings/${id}/summary`)]);
  if (seq !== openSeq) return; // another recording was opened (or this one closed) meanwhile
  if (info.status !== 200 || !s) {
    $('rec-message').textContent = info.data?.error ?? 'cannot load the recording';
    return;
  }
  const r = info.data.recording;
  $('rec-title').textContent = `${info.data.session?.name ?? 'no session'} · trial ${info.data.trial?.number ?? '?'} · ${r.camera_id}${r.segment ? ` seg ${r.segment}` : ''}`;
  $('rec-message').textContent = '';
  recView = { id, origin_us: s.origin_us, full: s, series: s, u: null, settingData: false };
  recView.u = makeRecordingChart($('rec-chart'), s);
  window.rigcam.recording = { chart: recView.u, series: s, full: s };
  renderRecordingLists(s);
  if (sum.status === 200) $('rec-summary').replaceChildren(summaryList(sum.data));
  else $('rec-summary').textContent = sum.data.error;
  panel.dataset.ready = String(id);
  panel.scrollIntoView({ block: 'start' });
}

function closeRecording() {
  openSeq++;
  recView?.u?.destroy();
  recView = null;
  window.rigcam.recording = null;
  $('recording-panel').hidden = true;
  delete $('recording-panel').dataset.ready;
}

/** PNG of the plot as drawn (white behind it: the canvas is transparent). */
function exportPng() {
  if (!recView) return;
  const src = recView.u.ctx.canvas;
  const c = document.createElement('canvas');
  c.width = src.width;
  c.height = src.height;
  const ctx = c.getContext('2d');
  ctx.fillStyle = '#fff';
  ctx.fillRect(0, 0, c.width, c.height);
  ctx.drawImage(src, 0, 0);
  const a = el('a', { href: c.toDataURL('image/png'), download: `rigcam-recording-${recView.id}.png` });
  document.body.append(a);
  a.click();
  a.remove();
}

function routeFromHash() {
  const m = /^#rec\/([1-9][0-9]{0,9})$/.exec(location.hash);
  if (m) openRecording(Number(m[1]));
  else if (recView || !$('recording-panel').hidden) closeRecording();
}

function initQualityViews() {
  $('rec-close').addEventListener('click', () => {
    history.replaceState(null, '', location.pathname + location.search);
    closeRecording();
  });
  $('rec-reset').addEventListener('click', () => {
    if (!recView) return;
    recView.zoomSeq = (recView.zoomSeq ?? 0) + 1;
    showSeries(recView.full, true);
  });
  $('rec-png').addEventListener('click', exportPng);
  window.addEventListener('hashchange', routeFromHash);
  let resizeTimer = null;
  window.addEventListener('resize', () => {
    clearTimeout(resizeTimer);
    resizeTimer = setTimeout(() => {
      if (recView) recView.u.setSize(chartSize($('rec-chart')));
      for (const l of Object.values(window.rigcam.live)) l.chart.setSize(liveSize(l.box));
    }, 200);
  });
  routeFromHash();
}

// ---- live: capture fps and latency per camera ---------------------------------------------------------

const LIVE_SECONDS = 300;

function liveSize(box) {
  return { width: Math.max(200, box.clientWidth), height: 110 };
}

/** The box for a camera's live chart; the chart itself is made on the first telemetry (it needs a width). */
function liveChartBox(cameraId) {
  const box = el('div', { className: 'live-chart', 'data-testid': `live-${cameraId}` });
  const old = window.rigcam.live[cameraId];
  if (old) {
    old.chart?.destroy();
    old.chart = null;
    old.box = box;
  }
  return box;
}

function liveTelemetry(m) {
  const id = m.camera_id || m.data?.camera_id;
  if (!id) return;
  const d = m.data || {};
  let l = window.rigcam.live[id];
  if (!l) l = window.rigcam.live[id] = { t: [], fps: [], latency: [], chart: null, box: null, drawn: 0 };
  l.t.push(m.timestamp);
  l.fps.push(d.capture_fps ?? null);
  l.latency.push(d.latency_ms ?? null);
  while (l.t.length && l.t[0] < m.timestamp - LIVE_SECONDS) for (const a of [l.t, l.fps, l.latency]) a.shift();
  if (!l.box) l.box = document.querySelector(`[data-testid="live-${CSS.escape(id)}"]`);
  if (!l.box || !l.box.isConnected || document.visibilityState !== 'visible') return;
  if (!l.chart) {
    l.chart = new uPlot(
      {
        ...liveSize(l.box),
        cursor: { show: false },
        legend: { show: true, live: false },
        scales: { x: { time: true }, fps: { range: (u, min, max) => [0, Math.max(1, (max ?? 0) * 1.2)] }, ms: { range: (u, min, max) => [0, Math.max(10, (max ?? 0) * 1.2)] } },
        axes: [{ size: 24, font: '10px system-ui' }, { scale: 'fps', size: 36, font: '10px system-ui' }, { scale: 'ms', side: 1, size: 40, font: '10px system-ui', grid: { show: false } }],
        series: [{}, { label: 'capture fps', scale: 'fps', stroke: '#2e7d32', width: 1.5 }, { label: 'latency ms', scale: 'ms', stroke: '#e65100', width: 1 }],
      },
      [l.t, l.fps, l.latency],
      l.box,
    );
  } else if (Date.now() - l.drawn > 900) {
    l.chart.setData([l.t, l.fps, l.latency]);
    l.drawn = Date.now();
  }
}

// Deferred after app.js: the DOM is parsed; app.js calls into this file only after its first await.
initQualityViews();
