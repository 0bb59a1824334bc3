// The live page (live_page.h): one self-contained document, polled JSON,
// plots drawn on canvases by the small script below (no library).
#include "server/service/live_page.h"

namespace gameopt {

const char* const kLivePageHtml = R"HTML(<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>gameopt live</title>
<style>
body{font:14px system-ui,sans-serif;margin:16px;color:#222;background:#fafafa}
h1{font-size:20px;margin:0 0 8px}h2{font-size:16px;margin:16px 0 8px}
#status{font-size:13px;color:#666;font-weight:normal;margin-left:12px}
table{border-collapse:collapse;background:#fff}
td,th{border:1px solid #ddd;padding:3px 8px;text-align:right}
th{background:#eee}td.l{text-align:left}
tr.session{cursor:pointer}tr.selected{background:#e3efff}
.grid{display:flex;flex-wrap:wrap;gap:12px}
figure{margin:0;background:#fff;border:1px solid #ddd;padding:6px}
figcaption{font-size:13px;color:#444;margin-bottom:4px}
#spectrum-info{font-size:12px;color:#555;max-width:460px}
</style></head>
<body>
<h1>gameopt training<span id="status">connecting</span></h1>
<table id="sessions"><thead><tr><th>session</th><th>name</th>
<th>algorithm</th><th>step</th><th>workers</th><th>L = &frac12;|&xi;|&sup2;</th>
<th>|correction|</th><th>|J<sup>T</sup>&xi;|/|&xi;|</th><th>rotation</th>
<th>bias</th><th>&gamma;</th><th>steps/s</th><th>spectra</th>
</tr></thead><tbody></tbody></table>
<h2 id="selected">no session</h2>
<div class="grid">
<figure><figcaption>|&xi;| per player (log)</figcaption>
<canvas id="plot-xi" width="460" height="230"></canvas></figure>
<figure><figcaption>L = &frac12;|&xi;|&sup2; (log)</figcaption>
<canvas id="plot-loss" width="460" height="230"></canvas></figure>
<figure><figcaption>correction norm (log)</figcaption>
<canvas id="plot-correction" width="460" height="230"></canvas></figure>
<figure><figcaption>|&xi;| and |J<sup>T</sup>&xi;| (log; small
|J<sup>T</sup>&xi;| with large |&xi;|: spurious stationary point)</figcaption>
<canvas id="plot-stationarity" width="460" height="230"></canvas></figure>
<figure><figcaption>rotation index |A<sup>T</sup>&xi;| / |S&xi;| (log; SGA)
</figcaption>
<canvas id="plot-rotation" width="460" height="230"></canvas></figure>
<figure><figcaption>&gamma; (ConOpt, moves with adaptive &gamma;) /
&lambda; (SGA)</figcaption>
<canvas id="plot-gamma" width="460" height="230"></canvas></figure>
<figure><figcaption>cancellation &minus;&lang;&xi;, c&rang; / |&xi;|&sup2;
(1: spurious stationary point; adaptive &gamma; lowers &gamma; above its
max_cancellation)</figcaption>
<canvas id="plot-cancellation" width="460" height="230"></canvas></figure>
<figure><figcaption>estimator bias |P &minus; U| / |P| (pooled minus
leave-one-out J<sup>T</sup>&xi;; log; with bias_meter)</figcaption>
<canvas id="plot-bias" width="460" height="230"></canvas></figure>
<figure><figcaption>steps per second</figcaption>
<canvas id="plot-rate" width="460" height="230"></canvas></figure>
<figure><figcaption>latest spectrum, complex plane</figcaption>
<canvas id="plot-spectrum" width="460" height="230"></canvas>
<div id="spectrum-info">no estimate yet (gameopt_client spectrum, or
EstimateSpectrum)</div></figure>
</div>
<script>
"use strict";
const COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e",
                "#8c564b", "#e377c2", "#17becf"];
let selected = decodeURIComponent(location.hash.slice(1)) || null;

function fmt(v) {
  if (v === null || v === undefined) return "-";
  if (Number.isInteger(v) && Math.abs(v) < 1e7) return String(v);
  const a = Math.abs(v);
  return a >= 1e4 || a < 1e-3 ? v.toExponential(2) : v.toPrecision(4);
}

// Lines of `series` ([{name, ys, color}]) against xs; log: log10 y axis
// (values <= 0 are skipped). Sets canvas.dataset.points to the number of
// points drawn.
function linePlot(canvas, xs, series, log) {
  const ctx = canvas.getContext("2d");
  const W = canvas.width, H = canvas.height, L = 62, R = 10, T = 8, B = 24;
  ctx.clearRect(0, 0, W, H);
  const tf = v => (v === null || !isFinite(v) || (log && v <= 0)) ? null
                  : (log ? Math.log10(v) : v);
  let x0 = Infinity, x1 = -Infinity, y0 = Infinity, y1 = -Infinity;
  for (const s of series) s.ys.forEach((v, i) => {
    x0 = Math.min(x0, xs[i]); x1 = Math.max(x1, xs[i]);
    const y = tf(v);
    if (y === null) return;
    y0 = Math.min(y0, y); y1 = Math.max(y1, y);
  });
  ctx.strokeStyle = "#999"; ctx.strokeRect(L, T, W - L - R, H - T - B);
  ctx.fillStyle = "#444"; ctx.font = "11px sans-serif";
  if (!isFinite(y0)) {
    ctx.fillText("no data yet", L + 10, T + 20);
    canvas.dataset.points = "0";
    return;
  }
  if (x1 === x0) x1 = x0 + 1;
  if (y1 === y0) { y0 -= log ? 0.5 : Math.abs(y0) * 0.1 + 1e-12;
                   y1 += log ? 0.5 : Math.abs(y1) * 0.1 + 1e-12; }
  const px = x => L + (x - x0) / (x1 - x0) * (W - L - R);
  const py = y => H - B - (y - y0) / (y1 - y0) * (H - T - B);
  const label = y => log ? "1e" + y.toFixed(1) : fmt(y);
  for (let k = 0; k <= 4; ++k) {
    const y = y0 + (y1 - y0) * k / 4;
    ctx.fillText(label(y), 2, py(y) + 4);
    ctx.strokeStyle = "#eee"; ctx.beginPath();
    ctx.moveTo(L + 1, py(y)); ctx.lineTo(W - R - 1, py(y)); ctx.stroke();
  }
  ctx.fillText("step " + fmt(x0), L, H - 6);
  const right = "step " + fmt(x1);
  ctx.fillText(right, W - R - ctx.measureText(right).width, H - 6);
  let drawn = 0;
  series.forEach((s, n) => {
    ctx.strokeStyle = s.color || COLORS[n % COLORS.length];
    ctx.lineWidth = 1.5; ctx.beginPath();
    let pen = false;
    s.ys.forEach((v, i) => {
      const y = tf(v);
      if (y === null) { pen = false; return; }
      pen ? ctx.lineTo(px(xs[i]), py(y)) : ctx.moveTo(px(xs[i]), py(y));
      pen = true; ++drawn;
    });
    ctx.stroke();
    if (series.length > 1) {
      ctx.fillStyle = ctx.strokeStyle;
      ctx.fillText(s.name, W - R - 90, T + 14 + 13 * n);
    }
  });
  canvas.dataset.points = String(drawn);
}

// Eigenvalue estimates in the complex plane, axes through 0.
function spectrumPlot(canvas, groups) {
  const ctx = canvas.getContext("2d");
  const W = canvas.width, H = canvas.height, M = 30;
  ctx.clearRect(0, 0, W, H);
  const pts = [];
  groups.forEach((g, n) => g.values.forEach(v =>
      pts.push({re: v.re, im: v.im, color: COLORS[n], group: g.name})));
  let r = 1e-12, i = 1e-12;
  for (const p of pts) { r = Math.max(r, Math.abs(p.re));
                         i = Math.max(i, Math.abs(p.im)); }
  r *= 1.15; i *= 1.15;
  const px = x => W / 2 + x / r * (W / 2 - M);
  const py = y => H / 2 - y / i * (H / 2 - M / 2);
  ctx.strokeStyle = "#bbb"; ctx.beginPath();
  ctx.moveTo(M / 2, H / 2); ctx.lineTo(W - M / 2, H / 2);
  ctx.moveTo(W / 2, 4); ctx.lineTo(W / 2, H - 4); ctx.stroke();
  ctx.fillStyle = "#444"; ctx.font = "11px sans-serif";
  ctx.fillText("Re " + fmt(r), W - M - 40, H / 2 - 4);
  ctx.fillText("Im " + fmt(i), W / 2 + 4, 14);
  for (const p of pts) {
    ctx.fillStyle = p.color; ctx.beginPath();
    ctx.arc(px(p.re), py(p.im), 4, 0, 2 * Math.PI); ctx.fill();
  }
  groups.forEach((g, n) => { ctx.fillStyle = COLORS[n];
                             ctx.fillText(g.name, 6, 14 + 13 * n); });
  canvas.dataset.points = String(pts.length);
}

function renderTable(sessions) {
  const body = document.querySelector("#sessions tbody");
  body.innerHTML = "";
  for (const s of sessions) {
    const tr = document.createElement("tr");
    tr.className = "session" + (s.id === selected ? " selected" : "");
    tr.dataset.session = s.id;
    const cells = [s.id, s.name, s.algorithm,
                   s.step + (s.max_steps ? "/" + s.max_steps : "") +
                   (s.done ? " done" : ""),
                   s.workers_active + "/" + s.workers_per_round,
                   fmt(s.loss), fmt(s.correction_norm),
                   fmt(s.diagnostics && s.diagnostics.stationarity_ratio),
                   fmt(s.diagnostics && s.diagnostics.rotation_index),
                   fmt(s.diagnostics && s.diagnostics.relative_bias),
                   fmt(s.gamma),
                   fmt(s.steps_per_second), String(s.spectra)];
    cells.forEach((c, k) => {
      const td = document.createElement("td");
      td.textContent = c;
      if (k < 3) td.className = "l";
      tr.appendChild(td);
    });
    tr.onclick = () => { selected = s.id; location.hash = s.id; poll(); };
    body.appendChild(tr);
  }
}

function renderSession(s) {
  document.getElementById("selected").textContent = s
      ? "session " + s.id + (s.name ? " (" + s.name + ")" : "") + ", " +
        s.algorithm + ", step " + s.step
      : "no session";
  const h = s ? s.history : {step: [], xi_norm: [], loss: [],
                             correction_norm: [], gamma: [],
                             steps_per_second: [], jt_xi_norm: [],
                             rotation_index: [], cancellation: [],
                             relative_bias: []};
  const players = s ? s.players : [];
  linePlot(document.getElementById("plot-xi"), h.step,
           h.xi_norm.map((ys, p) => ({name: players[p] || "player " + p,
                                      ys})), true);
  linePlot(document.getElementById("plot-loss"), h.step,
           [{name: "L", ys: h.loss}], true);
  linePlot(document.getElementById("plot-correction"), h.step,
           [{name: "correction", ys: h.correction_norm}], true);
  linePlot(document.getElementById("plot-stationarity"), h.step,
           [{name: "|xi|", ys: h.loss.map(l => l === null ? null
                                                 : Math.sqrt(2 * l))},
            {name: "|J^T xi|", ys: h.jt_xi_norm}], true);
  linePlot(document.getElementById("plot-rotation"), h.step,
           [{name: "rotation", ys: h.rotation_index}], true);
  linePlot(document.getElementById("plot-gamma"), h.step,
           [{name: "gamma", ys: h.gamma}], false);
  linePlot(document.getElementById("plot-cancellation"), h.step,
           [{name: "cancellation", ys: h.cancellation}], false);
  linePlot(document.getElementById("plot-bias"), h.step,
           [{name: "relative bias", ys: h.relative_bias}], true);
  linePlot(document.getElementById("plot-rate"), h.step,
           [{name: "steps/s", ys: h.steps_per_second}], false);
}

async function renderSpectrum(s) {
  const canvas = document.getElementById("plot-spectrum");
  const info = document.getElementById("spectrum-info");
  if (!s || !s.spectra) { spectrumPlot(canvas, []); return; }
  const r = await fetch("/api/spectrum?session=" + encodeURIComponent(s.id),
                        {cache: "no-store"});
  const e = await r.json();
  if (!e.available) { spectrumPlot(canvas, []); return; }
  spectrumPlot(canvas, [{name: "largest real", values: e.largest_real},
                        {name: "largest imag", values: e.largest_imag},
                        {name: "largest modulus", values: e.largest_modulus},
                        {name: "smallest real", values: e.smallest_real}]);
  info.textContent = e.description + " at step " + e.step + ", " +
      e.applications + " products, " +
      (e.converged ? "converged" : "not converged") +
      (e.diagnostics ? ", rotation index |A^T xi|/|S xi| " +
                       fmt(e.diagnostics.rotation_index) +
                       ", |J^T xi|/|xi| " +
                       fmt(e.diagnostics.stationarity_ratio) : "");
}

let timer = null;
async function poll() {
  clearTimeout(timer);
  try {
    const r = await fetch("/api/sessions", {cache: "no-store"});
    const data = await r.json();
    const sessions = data.sessions;
    if (!sessions.some(s => s.id === selected)) {
      const running = sessions.find(s => !s.done);
      selected = (running || sessions[0] || {}).id || null;
    }
    const s = sessions.find(x => x.id === selected) || null;
    renderTable(sessions);
    renderSession(s);
    await renderSpectrum(s);
    document.getElementById("status").textContent =
        sessions.length + " session(s), updated " +
        new Date().toLocaleTimeString();
  } catch (e) {
    document.getElementById("status").textContent = "disconnected: " + e;
  }
  timer = setTimeout(poll, 1000);
}
poll();
</script>
</body></html>
)HTML";

}  // namespace gameopt
