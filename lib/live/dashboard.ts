/**
 * The live dashboard served at GET /: one self-contained HTML page (inline CSS and JS, no CDN, no external
 * font), so it works on an offline machine. It polls /api/stats once a second and shows lines/s, the anomaly
 * rate, a score-over-time chart (max score per second and the threshold) drawn on a canvas, and the latest
 * alerts with their context window. A scale-out worker's page (its /api/stats has `owned`) also names the
 * worker, the partitions it owns and their lag, per partition in a table. Text from logs is only ever inserted with textContent (never as HTML).
 */
export const DASHBOARD_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>DeepSentry live</title>
<link rel="icon" href="data:,">
<style>
  :root { color-scheme: light dark; --fg:#1d2330; --muted:#667085; --bg:#f6f7f9; --card:#fff; --line:#d0d5dd; --bad:#d92d20; --ok:#12b76a; --acc:#2e90fa; }
  @media (prefers-color-scheme: dark) { :root { --fg:#e4e7ec; --muted:#98a2b3; --bg:#101828; --card:#1d2939; --line:#344054; } }
  * { box-sizing: border-box; }
  body { margin:0; font: 14px/1.4 system-ui, -apple-system, "Segoe UI", sans-serif; background:var(--bg); color:var(--fg); }
  header { display:flex; align-items:baseline; gap:1em; padding:12px 20px; border-bottom:1px solid var(--line); }
  header h1 { font-size:18px; margin:0; }
  #status { color:var(--muted); }
  #status.down { color:var(--bad); }
  main { padding:16px 20px; display:grid; gap:16px; }
  .cards { display:grid; grid-template-columns:repeat(auto-fill, minmax(150px, 1fr)); gap:12px; }
  .card { background:var(--card); border:1px solid var(--line); border-radius:8px; padding:10px 12px; }
  .card .k { color:var(--muted); font-size:12px; text-transform:uppercase; letter-spacing:.04em; }
  .card .v { font-size:22px; font-variant-numeric:tabular-nums; }
  section { background:var(--card); border:1px solid var(--line); border-radius:8px; padding:12px; }
  section h2 { font-size:14px; margin:0 0 8px; }
  canvas { width:100%; height:220px; display:block; }
  .legend span { margin-right:1.2em; color:var(--muted); }
  .legend i { display:inline-block; width:12px; height:3px; vertical-align:middle; margin-right:4px; }
  .alert { border-top:1px solid var(--line); padding:8px 0; }
  .alert:first-child { border-top:0; }
  .alert .h { font-weight:600; }
  .alert .h .s { color:var(--bad); }
  .alert pre { margin:4px 0 0; padding:6px 8px; background:var(--bg); border-radius:4px; overflow-x:auto; font-size:12px; }
  .alert .exp { color:var(--muted); font-size:12px; margin-top:4px; }
  .empty { color:var(--muted); }
  table { border-collapse:collapse; width:100%; font-variant-numeric:tabular-nums; }
  th, td { text-align:right; padding:3px 8px; border-top:1px solid var(--line); }
  th { color:var(--muted); font-weight:normal; font-size:12px; border-top:0; }
</style>
</head>
<body>
<header><h1>DeepSentry live</h1><span id="source"></span><span id="status">connecting…</span></header>
<main>
  <div class="cards">
    <div class="card"><div class="k">lines / s</div><div class="v" id="lps">–</div></div>
    <div class="card"><div class="k">anomaly rate (60 s)</div><div class="v" id="rate">–</div></div>
    <div class="card"><div class="k">lines</div><div class="v" id="lines">–</div></div>
    <div class="card"><div class="k">anomalies</div><div class="v" id="anomalies">–</div></div>
    <div class="card"><div class="k">open sessions</div><div class="v" id="open">–</div></div>
    <div class="card"><div class="k">threshold</div><div class="v" id="threshold">–</div></div>
    <div class="card"><div class="k">dropped lines</div><div class="v" id="dropped">–</div></div>
    <div class="card"><div class="k">event-loop p99</div><div class="v" id="eld">–</div></div>
  </div>
  <section>
    <h2>Score over time</h2>
    <div class="legend"><span><i style="background:#2e90fa"></i>max score / s</span><span><i style="background:#12b76a"></i>mean score / s</span><span><i style="background:#d92d20"></i>threshold</span></div>
    <canvas id="chart" width="900" height="220"></canvas>
  </section>
  <section id="parts" hidden>
    <h2 id="partsTitle">Owned partitions</h2>
    <table><thead><tr><th>partition</th><th>lag (lines)</th><th>last stream seq</th><th>lines</th><th>alerts</th><th>open sessions</th></tr></thead><tbody id="partRows"></tbody></table>
  </section>
  <section>
    <h2>Latest alerts</h2>
    <div id="alerts"><div class="empty">no alerts yet</div></div>
  </section>
</main>
<script>
(function () {
  'use strict';
  var token = new URLSearchParams(location.search).get('token');
  var statsUrl = 'api/stats' + (token ? '?token=' + encodeURIComponent(token) : '');
  function $(id) { return document.getElementById(id); }
  function fmt(x) {
    if (x === null || x === undefined || !isFinite(x)) return '–';
    var a = Math.abs(x);
    if (a >= 1e6) return (x / 1e6).toFixed(2) + 'M';
    if (a >= 1e4) return (x / 1e3).toFixed(1) + 'k';
    if (a >= 100 || Number.isInteger(x)) return x.toFixed(0);
    return x.toFixed(a >= 10 ? 1 : 3);
  }
  function el(tag, cls, text) { var e = document.createElement(tag); if (cls) e.className = cls; if (text !== undefined) e.textContent = text; return e; }
  var lastAlertKey = '';
  var lastNow = 0;
  function render(s) {
    $('source').textContent = s.source + (s.owned ? ' · worker ' + s.worker + ' · owns ' + s.owned.length + ' of ' + s.partitions + ' partitions · lag ' + fmt(s.lag) : '') +
      ' · ' + s.scorer + ' · threshold ' + s.thresholdMode + (s.warmingUp ? ' (warming up)' : '');
    if (s.owned) renderPartitions(s);
    var h = s.history, now = s.now;
    // lines/s over the last 10 complete seconds
    var n = 0, ev = 0, an = 0;
    for (var i = h.length - 1; i >= 0; i--) {
      var b = h[i];
      if (b.t < now - 10) break;
      if (b.t < now) n += b.lines;
    }
    for (var j = h.length - 1; j >= 0 && h[j].t > now - 60; j--) { ev += h[j].events; an += h[j].anomalies; }
    // seconds with no bucket had no lines: divide by the whole span since the stream started (at most 10 s)
    var span = Math.min(10, Math.max(1, now - (h.length ? h[0].t : now)));
    $('lps').textContent = fmt(h.length ? n / span : 0);
    $('rate').textContent = ev ? (100 * an / ev).toFixed(2) + ' %' : '–';
    $('lines').textContent = fmt(s.lines);
    $('anomalies').textContent = fmt(s.anomalies);
    $('open').textContent = fmt(s.sessions.openSessions) + (s.sessions.evictedSessions ? ' (' + fmt(s.sessions.evictedSessions) + ' evicted)' : '');
    $('threshold').textContent = fmt(s.threshold);
    $('dropped').textContent = fmt(s.droppedLines);
    $('eld').textContent = s.eventLoopDelayMs.p99.toFixed(1) + ' ms';
    lastNow = now;
    draw(h);
    var key = s.alerts.length ? s.alerts[0].id + '/' + s.alerts.length : '';
    if (key !== lastAlertKey) { lastAlertKey = key; renderAlerts(s.alerts); }
  }
  function renderPartitions(s) {
    $('parts').hidden = false;
    $('partsTitle').textContent = 'Owned partitions: ' + s.owned.length + ' of ' + s.partitions + ' · lag ' + fmt(s.lag) + ' line(s)';
    var body = $('partRows');
    body.textContent = '';
    s.owned.forEach(function (p) {
      var tr = el('tr');
      [p.partition, p.lag, p.lastSeq, p.lines, p.alerts, p.openSessions].forEach(function (v) { tr.appendChild(el('td', '', String(v))); });
      body.appendChild(tr);
    });
  }
  function renderAlerts(alerts) {
    var box = $('alerts');
    box.textContent = '';
    if (!alerts.length) { box.appendChild(el('div', 'empty', 'no alerts yet')); return; }
    alerts.slice(0, 20).forEach(function (a) {
      var d = el('div', 'alert');
      var h = el('div', 'h');
      h.appendChild(el('span', 's', 'score ' + fmt(a.score)));
      h.appendChild(document.createTextNode(' > ' + fmt(a.threshold) + ' · ' + (a.isSessionEnd ? 'session end (' + (a.endReason || '') + ')' : 'line') +
        ' · session ' + a.session + ' · ' + a.source + ':' + a.lineNo + ' · ' + a.time));
      d.appendChild(h);
      d.appendChild(el('pre', '', a.window.slice(-6).join('\\n')));
      if (a.expected !== undefined) d.appendChild(el('div', 'exp', 'expected: ' + a.expected));
      box.appendChild(d);
    });
  }
  function draw(h) {
    var c = $('chart'), dpr = window.devicePixelRatio || 1;
    var w = c.clientWidth || 900, hh = c.clientHeight || 220;
    if (c.width !== Math.round(w * dpr)) { c.width = Math.round(w * dpr); c.height = Math.round(hh * dpr); }
    var g = c.getContext('2d');
    g.setTransform(dpr, 0, 0, dpr, 0, 0);
    g.clearRect(0, 0, w, hh);
    var pts = h.slice(-300);
    var max = 0;
    pts.forEach(function (b) { if (b.maxScore !== null) max = Math.max(max, b.maxScore); if (b.threshold !== null) max = Math.max(max, b.threshold); });
    if (!pts.length || max <= 0) { g.fillStyle = '#98a2b3'; g.fillText('waiting for scores…', 10, 20); return; }
    max *= 1.1;
    var t1 = Math.max(pts[pts.length - 1].t, lastNow), t0 = Math.min(pts[0].t, t1 - 60), span = Math.max(1, t1 - t0);
    var L = 40, B = hh - 18;
    g.strokeStyle = '#d0d5dd'; g.lineWidth = 1; g.fillStyle = '#667085'; g.font = '11px sans-serif';
    for (var k = 0; k <= 4; k++) { var y = B - (B - 6) * k / 4; g.beginPath(); g.moveTo(L, y); g.lineTo(w, y); g.stroke(); g.fillText(fmt(max * k / 4), 2, y + 4); }
    g.fillText('-' + span + ' s', L, hh - 4); g.fillText('now', w - 24, hh - 4);
    function X(t) { return L + (w - L - 4) * (t - t0) / span; }
    function Y(v) { return B - (B - 6) * v / max; }
    function line(field, color) {
      g.strokeStyle = color; g.lineWidth = 1.5; g.beginPath(); var on = false;
      pts.forEach(function (b) { var v = b[field]; if (v === null) { on = false; return; } if (!on) { g.moveTo(X(b.t), Y(v)); on = true; } else g.lineTo(X(b.t), Y(v)); });
      g.stroke();
    }
    line('meanScore', '#12b76a'); line('maxScore', '#2e90fa'); line('threshold', '#d92d20');
    g.fillStyle = '#d92d20';
    pts.forEach(function (b) { if (b.anomalies > 0 && b.maxScore !== null) { g.beginPath(); g.arc(X(b.t), Y(b.maxScore), 3, 0, 6.2832); g.fill(); } });
  }
  function poll() {
    fetch(statsUrl, { cache: 'no-store' }).then(function (r) {
      if (!r.ok) throw new Error('HTTP ' + r.status);
      return r.json();
    }).then(function (s) {
      $('status').textContent = s.ready ? 'live' : 'not ready';
      $('status').className = s.ready ? '' : 'down';
      render(s);
    }).catch(function (e) {
      $('status').textContent = 'disconnected (' + e.message + ')';
      $('status').className = 'down';
    }).then(function () { setTimeout(poll, 1000); });
  }
  poll();
})();
</script>
</body>
</html>
`;
