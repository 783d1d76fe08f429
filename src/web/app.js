// rigcam web page: plain JS, no build step. Everything comes from the HTTP API (/api/openapi.json).
'use strict';

const TOKEN_KEY = 'rigcam.token';
let token = localStorage.getItem(TOKEN_KEY) || '';
let cameras = [];
let events = null;
let statusTimer = null;

const $ = (id) => document.getElementById(id);

/** Build an element; text is always set as text (labels and names are user input). */
function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'text') e.textContent = v;
    else if (k === 'className') e.className = v;
    else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children) if (c) e.append(c);
  return e;
}

/** A URL for elements that cannot send headers (img, EventSource, links): the token goes in the query. */
function withToken(url) {
  return token ? `${url}${url.includes('?') ? '&' : '?'}token=${encodeURIComponent(token)}` : url;
}

// ---- token --------------------------------------------------------------------------------------------

let asking = null;
function askToken(problem) {
  asking ??= new Promise((resolve) => {
    const dlg = $('token-dialog');
    $('token-error').textContent = problem || '';
    $('token-input').value = '';
    dlg.addEventListener(
      'close',
      () => {
        token = $('token-input').value.trim();
        localStorage.setItem(TOKEN_KEY, token);
        asking = null;
        resolve();
      },
      { once: true },
    );
    dlg.showModal();
  });
  return asking;
}

/** fetch JSON from the API; a 401 asks for the token and tries again. */
async function api(path, { method = 'GET', body } = {}) {
  for (;;) {
    const headers = {};
    if (token) headers.authorization = `Bearer ${token}`;
    if (body !== undefined) headers['content-type'] = 'application/json';
    const res = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
    if (res.status === 401) {
      await askToken(token ? 'That token was refused.' : '');
      restartLive();
      continue;
    }
    let data = null;
    try {
      data = await res.json();
    } catch {
      data = { ok: false, error: `HTTP ${res.status}` };
    }
    return { status: res.status, data };
  }
}

function say(text, isError = false) {
  const m = $('message');
  m.textContent = text;
  m.className = `message${isError ? ' error' : ''}`;
}

// ---- status -------------------------------------------------------------------------------------------

function fmtBytes(n) {
  if (n == null) return '?';
  const u = ['B', 'kB', 'MB', 'GB', 'TB'];
  let i = 0;
  while (n >= 1000 && i < u.length - 1) (n /= 1000), i++;
  return `${n.toFixed(n < 10 && i ? 1 : 0)} ${u[i]}`;
}

function renderStatus(s) {
  const pill = $('rec-state');
  const state = s.recording ? (s.paused ? 'paused' : 'recording') : 'idle';
  pill.textContent = s.recording ? `${state === 'paused' ? '❚❚ paused' : '● recording'} · trial ${s.trial?.number ?? '?'}` : 'idle';
  pill.className = `pill ${state}`;
  $('start').disabled = Boolean(s.recording);
  $('stop').disabled = !s.recording;
  $('trial-info').textContent = s.trial
    ? `Session ${s.session?.name ?? '?'}, trial ${s.trial.number}${s.trial.label ? ` “${s.trial.label}”` : ''} (${s.trial.state}, ${s.trial.trigger_source})`
    : s.session
      ? `Session ${s.session.name} open`
      : 'No session open';
  const d = s.disk;
  const disk = $('disk');
  disk.textContent = d
    ? `disk: ${fmtBytes(d.free_bytes)} free${d.minutes_left != null ? ` · ~${Math.floor(d.minutes_left)} min of recording left` : ''}${d.start_refused ? ` · no trial can start: ${d.start_refused}` : ''}`
    : 'disk: unknown';
  disk.className = `disk ${d?.start_refused && d.level === 'ok' ? 'warn' : d?.level ?? ''}`;
  renderOffload(s.offload);
  renderSync(s.sync);
  for (const c of s.cameras || []) renderCameraStats(c);
}

/** Backup: what waits to leave the box, the copy in progress, last success and error; the stale warning stands out. */
function renderOffload(o) {
  const e = $('offload');
  if (!o) return void (e.hidden = true);
  e.hidden = false;
  const copying = (o.recordings || []).find((r) => r.state === 'copying');
  const failed = (o.recordings || []).filter((r) => r.state === 'failed').length;
  const parts = [`backup (${o.mode}): ${o.pending_recordings ? `${o.pending_recordings} waiting, ${fmtBytes(o.bytes_pending)}` : 'all copied'}`];
  if (copying) parts.push(`copying #${copying.recording_id}`);
  else if (o.activity === 'paused') parts.push('paused while recording');
  if (failed) parts.push(`${failed} failed`);
  parts.push(`last success: ${o.last_success_at ? new Date(o.last_success_at).toLocaleString() : 'never'}`);
  e.textContent = parts.join(' · ');
  e.title = [o.warning, o.last_error ? `last error (${new Date(o.last_error.at).toLocaleString()}): ${o.last_error.message}` : null, o.target].filter(Boolean).join('\n');
  e.className = `offload ${o.warning ? 'warn' : failed ? 'failed' : ''}`;
  if (o.warning) e.textContent = `⚠ ${e.textContent}: ${o.warning}`;
}

/** Sync pulse health: per sync line, pulses seen and how long ago the last edge was (stale after 10 s). */
function renderSync(sync) {
  const span = $('sync');
  span.hidden = !sync;
  if (!sync) return;
  const lines = sync.lines || [];
  const stale = !lines.length || lines.some((l) => l.last_age_s > 10);
  span.textContent = lines.length
    ? `sync: ${lines.map((l) => `${l.direction} ${l.line}: ${l.pulses} pulses, last ${l.last_age_s < 60 ? `${l.last_age_s.toFixed(1)} s` : `${Math.round(l.last_age_s / 60)} min`} ago`).join(' · ')}`
    : 'sync: no pulses yet';
  span.className = `sync${stale ? ' stale' : ''}`;
}

function renderCameraStats(c) {
  const card = document.querySelector(`.camera[data-camera="${CSS.escape(c.camera_id)}"]`);
  if (!card) return;
  card.classList.toggle('recording', Boolean(c.recording));
  const parts = [
    c.state,
    `${Number(c.capture_fps ?? 0).toFixed(1)} fps`,
    c.recording ? `REC ${c.frames_recorded ?? 0} frames` : 'not recording',
    `${c.frames_dropped ?? 0} dropped`,
  ];
  if (c.last_error) parts.push(`error: ${c.last_error}`);
  card.querySelector('.stats').textContent = parts.join(' · ');
}

async function refreshStatus() {
  const { status, data } = await api('/api/status');
  if (status === 200) renderStatus(data);
}

// ---- cameras ------------------------------------------------------------------------------------------

function controlInput(cam, ctl) {
  const id = `ctl-${cam.camera_id}-${ctl.name}`;
  const valueText = el('span', { className: 'value', text: ctl.value ?? '' });
  const err = el('span', { className: 'err' });
  const send = async (value) => {
    err.textContent = '';
    const { data } = await api('/api/commands', { method: 'POST', body: { command: 'control_change', payload: { camera_id: cam.camera_id, control: ctl.name, value } } });
    if (!data.ok) err.textContent = data.error;
    else if (data.data?.value !== undefined) valueText.textContent = data.data.value;
  };
  let input;
  if (ctl.type === 'bool') {
    input = el('input', { type: 'checkbox', id, checked: Boolean(ctl.value), onchange: (e) => send(e.target.checked ? 1 : 0) });
  } else if ((ctl.type === 'menu' || ctl.type === 'intmenu') && ctl.menu) {
    input = el('select', { id, onchange: (e) => send(Number(e.target.value)) });
    for (const [v, name] of Object.entries(ctl.menu)) input.append(el('option', { value: v, text: name, selected: Number(v) === ctl.value }));
  } else if (ctl.type === 'button') {
    input = el('button', { type: 'button', id, className: 'small', text: 'press', onclick: () => send(1) });
  } else if (ctl.min != null && ctl.max != null) {
    input = el('input', {
      type: 'range', id, min: ctl.min, max: ctl.max, step: ctl.step || 1, value: ctl.value ?? ctl.default ?? ctl.min,
      oninput: (e) => (valueText.textContent = e.target.value),
      onchange: (e) => send(Number(e.target.value)),
    });
  } else return null;
  if (ctl.inactive) input.title = 'inactive: another control decides (e.g. auto exposure)';
  return el('div', { className: `control${ctl.inactive ? ' inactive' : ''}`, 'data-control': ctl.name }, el('label', { for: id, text: ctl.name }), valueText, input, err);
}

function renderCameras() {
  const box = $('cameras');
  box.replaceChildren();
  for (const cam of cameras) {
    const controls = (cam.capabilities?.controls || []).filter((c) => !c.read_only).map((c) => controlInput(cam, c)).filter(Boolean);
    const img = el('img', { className: 'preview', alt: `live preview of ${cam.camera_id}`, 'data-src': cam.urls.preview, 'data-testid': `preview-${cam.camera_id}` });
    box.append(
      el(
        'article',
        { className: 'camera', 'data-camera': cam.camera_id },
        img,
        el('div', { className: 'meta' }, el('strong', { text: cam.name }), el('span', { text: `${cam.resolution} @ ${cam.fps} · ${cam.encoder}` }), el('div', { className: 'stats', text: cam.state })),
        liveChartBox(cam.camera_id),
        controls.length ? el('details', {}, el('summary', { text: `controls (${controls.length})` }), ...controls) : null,
      ),
    );
  }
  setPreviews(document.visibilityState === 'visible');
}

/** Previews run only while the page is visible: a phone in a pocket costs the box nothing. */
function setPreviews(on) {
  for (const img of document.querySelectorAll('img.preview')) {
    if (on) img.src = withToken(img.dataset.src);
    else img.removeAttribute('src');
  }
}

async function loadCameras() {
  const { status, data } = await api('/api/cameras');
  if (status !== 200) return;
  cameras = data.cameras;
  renderCameras();
}

// ---- trial and markers --------------------------------------------------------------------------------

async function startTrial(e) {
  e.preventDefault();
  const body = {};
  const session = $('session').value.trim();
  const trial = $('trial').value.trim();
  const label = $('label').value.trim();
  if (session) body.session = session;
  if (trial) body.trial = Number(trial);
  if (label) body.label = label;
  $('start').disabled = true;
  const { data } = await api('/api/trials/start', { method: 'POST', body });
  if (data.ok) say(`Recording trial ${data.data.trial} of ${data.data.session}`);
  else say(data.error, true);
  $('trial').value = '';
  await refreshStatus();
}

async function stopTrial() {
  $('stop').disabled = true;
  const { data } = await api('/api/trials/stop', { method: 'POST', body: {} });
  if (data.ok) say(`Stopped trial ${data.data.trial}: ${data.data.recordings.map((r) => `${r.frames} frames`).join(', ')}`);
  else say(data.error, true);
  await refreshStatus();
  await loadSessions();
}

async function mark(e) {
  e.preventDefault();
  const label = $('marker-label').value.trim();
  if (!label) return;
  const { data } = await api('/api/markers', { method: 'POST', body: { label } });
  if (data.ok) {
    say(`Marker “${label}”${data.data.trial ? ` in trial ${data.data.trial}` : ''}`);
    $('marker-label').value = '';
  } else say(data.error, true);
}

// ---- sessions -----------------------------------------------------------------------------------------

function renderTrial(t, quality, maxDuration) {
  const recs = t.recordings.map((r) =>
    el(
      'div',
      { className: 'rec' },
      el('span', { text: `${r.camera_id}: ${r.frame_count} frames, ${r.dropped} dropped, ${fmtBytes(r.bytes)}, ${r.state}${r.deleted_at ? ', deleted after offload' : ''}` }),
      plotLink(t.id, r),
      r.deleted_at ? null : el('a', { href: withToken(r.urls.video), download: '', text: 'video' }),
      el('a', { href: withToken(r.urls.frames_csv), download: '', text: 'CSV', 'data-testid': `csv-${t.id}-${r.camera_id}` }),
    ),
  );
  const markers = t.markers.length ? el('div', { className: 'rec', text: `markers: ${t.markers.map((m) => m.label).join(', ')}` }) : null;
  return el(
    'div',
    { className: 'trial', 'data-trial': t.number },
    el('div', { text: `Trial ${t.number}${t.label ? ` “${t.label}”` : ''} — ${t.state}, ${t.started_at.replace('T', ' ').slice(0, 19)}` }),
    quality ? trialQualityRow(quality, maxDuration) : null,
    ...recs,
    markers,
  );
}

async function openSession(details, id) {
  const body = details.querySelector('.trials');
  // The quality rows are paged like the trials (same after_trial): each page of trials comes with its rows.
  const [{ status, data }, quality] = await Promise.all([api(`/api/sessions/${id}`), api(`/api/sessions/${id}/quality`)]);
  if (status !== 200) {
    body.textContent = data.error;
    return;
  }
  const q = new Map();
  const addQuality = (page) => {
    if (page.status === 200) for (const r of page.data.trials) q.set(r.trial_id, r);
  };
  addQuality(quality);
  // Bars are scaled to the longest trial of the first page; a longer one later fills its bar.
  const maxDuration = Math.max(0, ...[...q.values()].map((r) => r.duration_s));
  body.replaceChildren(...(data.trials.length ? data.trials.map((t) => renderTrial(t, q.get(t.id), maxDuration)) : [el('div', { className: 'trial', text: 'no trials' })]));
  // Sessions are paged on the box: a long one loads its next trials on request.
  let after = data.next_after_trial;
  const more = () => {
    if (after === null) return;
    const button = el('button', { className: 'more-trials', text: `more trials (${data.trials_total} in all)` });
    button.addEventListener('click', async () => {
      const [page, pageQuality] = await Promise.all([api(`/api/sessions/${id}?after_trial=${after}`), api(`/api/sessions/${id}/quality?after_trial=${after}`)]);
      button.remove();
      if (page.status !== 200) return;
      addQuality(pageQuality);
      body.append(...page.data.trials.map((t) => renderTrial(t, q.get(t.id), maxDuration)));
      after = page.data.next_after_trial;
      more();
    });
    body.append(button);
  };
  more();
}

async function loadSessions() {
  const { status, data } = await api('/api/sessions');
  if (status !== 200) return;
  const list = $('sessions');
  const open = new Set([...list.querySelectorAll('details[open]')].map((d) => d.dataset.session));
  list.replaceChildren();
  if (!data.sessions.length) list.append(el('p', { className: 'info', text: 'No sessions yet.' }));
  data.sessions.forEach((s, i) => {
    const details = el('details', { 'data-session': s.id }, el('summary', { text: `${s.name} — ${s.trials} trial${s.trials === 1 ? '' : 's'}` }), el('div', { className: 'trials', text: '…' }));
    details.addEventListener('toggle', () => details.open && openSession(details, s.id));
    list.append(details);
    if (open.has(String(s.id)) || (i === 0 && !open.size)) details.open = true;
  });
}

// ---- live events --------------------------------------------------------------------------------------

function summary(m) {
  const d = m.data || {};
  if (m.status === 'error') return d.error || d.message || '';
  if (m.status === 'telemetry') return `${d.capture_fps} fps, ${d.frames_recorded ?? '-'} frames`;
  if (m.status === 'offload_telemetry') return `backup: ${d.pending_recordings} waiting, ${fmtBytes(d.bytes_pending)}${d.stale ? ', stale' : ''}`;
  const keys = ['session', 'trial', 'label', 'camera_id', 'control', 'value', 'state', 'reason', 'message'];
  return keys.filter((k) => d[k] !== undefined && d[k] !== null && d[k] !== '').map((k) => `${k}=${d[k]}`).join(' ');
}

function logEvent(m) {
  if ((m.status === 'telemetry' || m.status === 'offload_telemetry') && !$('show-telemetry').checked) return;
  const log = $('log');
  const time = new Date(m.timestamp * 1000).toLocaleTimeString();
  log.prepend(el('li', { className: m.status === 'error' ? 'error' : '', text: `${time} ${m.status}${m.camera_id ? ` [${m.camera_id}]` : ''} ${summary(m)}` }));
  while (log.children.length > 200) log.lastChild.remove();
}

function connectEvents() {
  events?.close();
  events = new EventSource(withToken('/api/events'));
  events.onmessage = (e) => {
    let m;
    try {
      m = JSON.parse(e.data);
    } catch {
      return;
    }
    logEvent(m);
    if (m.status === 'telemetry') return liveTelemetry(m);
    if (/^recording_|^session_|^marker$/.test(m.status)) refreshStatus();
    if (/^recording_(started|stopped)$|^session_started$|^remux_done$/.test(m.status)) loadSessions();
    if (/^device_|^config_applied$|^capabilities$|^control_changed$/.test(m.status)) loadCameras();
  };
}

/** After a token change every stream opened with the old one is reopened. */
function restartLive() {
  connectEvents();
  setPreviews(document.visibilityState === 'visible');
}

// ---- start --------------------------------------------------------------------------------------------

async function main() {
  $('trial-form').addEventListener('submit', startTrial);
  $('stop').addEventListener('click', stopTrial);
  $('marker-form').addEventListener('submit', mark);
  $('reload-sessions').addEventListener('click', loadSessions);
  document.addEventListener('visibilitychange', () => setPreviews(document.visibilityState === 'visible'));
  const health = await (await fetch('/api/health')).json();
  if (health.auth_required && !token) await askToken();
  await loadCameras();
  await refreshStatus();
  await loadSessions();
  connectEvents();
  statusTimer = setInterval(refreshStatus, 1000);
}

main().catch((err) => say(`cannot reach the box: ${err.message}`, true));
