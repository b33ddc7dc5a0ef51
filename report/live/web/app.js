// The live page of a thrive run: each server-sent event is a frame of
// the run's figures (report/live Frame), drawn as SVG charts and tables.
// Nothing is loaded from the network but this page's own server.
"use strict";
const $ = id => document.getElementById(id);
const esc = s => String(s).replace(/[&<>"]/g, c => ({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;"}[c]));
const fmt = (v, d = 1) => v == null ? "–" : Number(v).toLocaleString("en-US", {maximumFractionDigits: d, minimumFractionDigits: d});
const colors = ["#2d6cdf", "#e08a1e", "#c0262d", "#0a7d32", "#7a3fd1"];
let frames = 0, done = false;

// lineChart draws series over xs as an SVG line chart in the element id.
function lineChart(id, title, xs, series, unit) {
  const W = 560, H = 220, L = 56, R = 12, T = 16, B = 32;
  let ymax = 0;
  for (const s of series) for (const v of s.ys) if (v != null && v > ymax) ymax = v;
  ymax = ymax > 0 ? ymax * 1.08 : 1;
  const xmin = xs.length ? xs[0] : 0, xmax = xs.length > 1 ? xs[xs.length - 1] : xmin + 1;
  const sx = x => L + (x - xmin) / (xmax - xmin) * (W - L - R);
  const sy = y => H - B - y / ymax * (H - T - B);
  let g = `<svg viewBox="0 0 ${W} ${H}" role="img" aria-label="${esc(title)}">`;
  for (let i = 0; i <= 4; i++) {
    const v = ymax * i / 4, y = sy(v);
    g += `<line x1="${L}" x2="${W - R}" y1="${y}" y2="${y}" stroke="#eceef4"/>`;
    g += `<text x="${L - 6}" y="${y + 4}" font-size="11" text-anchor="end" fill="#667">${fmt(v, v < 10 ? 1 : 0)}</text>`;
  }
  for (let i = 0; i <= 4 && xs.length > 1; i++) {
    const x = xmin + (xmax - xmin) * i / 4;
    g += `<text x="${sx(x)}" y="${H - B + 14}" font-size="11" text-anchor="middle" fill="#667">${fmt(x, 0)}</text>`;
  }
  g += `<text x="${(L + W - R) / 2}" y="${H - 4}" font-size="11" text-anchor="middle" fill="#667">seconds into the run</text>`;
  g += `<text x="${L}" y="${T - 4}" font-size="11" fill="#667">${esc(unit)}</text>`;
  series.forEach((s, k) => {
    let d = "", pen = false;
    xs.forEach((x, i) => {
      const v = s.ys[i];
      if (v == null) { pen = false; return; }
      d += (pen ? "L" : "M") + sx(x).toFixed(1) + "," + sy(v).toFixed(1);
      pen = true;
    });
    const c = colors[k % colors.length];
    g += `<path class="series" d="${d}" fill="none" stroke="${c}" stroke-width="1.8"/>`;
    g += `<rect x="${L + 8 + k * 100}" y="${T + 2}" width="10" height="10" fill="${c}"/>`;
    g += `<text x="${L + 22 + k * 100}" y="${T + 11}" font-size="11">${esc(s.name)}</text>`;
  });
  $(id).innerHTML = `<h3>${esc(title)}</h3>` + g + "</svg>";
}

// table fills the element id with a table of head and rows (cells are
// HTML, escaped by the caller).
function table(id, head, rows) {
  if (!rows.length) { $(id).innerHTML = "<p class=meta>none yet</p>"; return; }
  let h = "<table><thead><tr>" + head.map(c => `<th>${esc(c)}</th>`).join("") + "</tr></thead><tbody>";
  for (const r of rows) h += "<tr>" + r.map(c => `<td>${c}</td>`).join("") + "</tr>";
  $(id).innerHTML = h + "</tbody></table>";
}

// draw shows one frame.
function draw(f) {
  const v = f.view, series = v.series, t = series.map(s => s.t);
  $("title").textContent = f.title;
  done = f.done;
  const st = $("state");
  st.textContent = f.done ? (f.stopped_by ? "stopped: " + f.stopped_by : "finished") : "running";
  st.className = "state " + (f.done ? "done" : "running");
  $("progress").textContent = `${fmt(f.elapsed_s, 0)} s of ${fmt(f.run_time_s, 0)} s · users ${f.users} · WebSockets open ${f.sockets}`;
  $("error").textContent = f.error || "";
  const stop = $("stop");
  stop.textContent = f.done ? "Close the page's server" : "Stop";
  stop.title = f.done ? "The run is over: end the process (its files are written)" : "Stop the run as Ctrl-C does: the results so far are written";
  $("files").innerHTML = (f.files || []).map(d => `<a download href="files/${encodeURIComponent(d.name)}">${esc(d.name)}</a>`).join("");

  lineChart("chart-rps", "Requests and failures per second", t, [{name: "requests/s", ys: series.map(s => s.rps)}, {name: "failures/s", ys: series.map(s => s.fps)}], "req/s");
  lineChart("chart-users", "Users", t, [{name: "users", ys: series.map(s => s.users)}], "users");
  lineChart("chart-latency", "Latency from when requests were due", t, [{name: "p50", ys: series.map(s => s.p50)}, {name: "p95", ys: series.map(s => s.p95)}, {name: "p99", ys: series.map(s => s.p99)}], "ms");
  lineChart("chart-lag", "Schedule lag (p99)", t, [{name: "lag p99", ys: series.map(s => s.lag)}], "ms");

  const tot = v.totals;
  $("cards").innerHTML = [
    ["requests", fmt(tot.requests, 0)], ["failures", fmt(tot.failures, 0) + " (" + fmt(tot.error_rate * 100, 2) + "%)"],
    ["req/s", fmt(tot.rps)], ["p50", fmt(tot.p50) + " ms"], ["p95", fmt(tot.p95) + " ms"], ["p99", fmt(tot.p99) + " ms"],
    ["lag p99", fmt(tot.lag_p99, 2) + " ms"]].map(([k, x]) => `<div class="card">${esc(k)}<b>${esc(x)}</b></div>`).join("");
  table("criteria", ["criterion", "actual", "verdict"], v.criteria.map(c => [esc(c.criterion), esc(c.actual),
    c.pass ? "<span class=pass>pass</span>" : c.error ? "<span class=fail>FAIL (error)</span>" : "<span class=fail>FAIL</span>"]));
  $("verdict").innerHTML = !v.criteria.length ? "" : v.criteria.every(c => c.pass) ?
    `<p class=pass>verdict${f.done ? "" : " so far"}: PASS</p>` : `<p class=fail>verdict${f.done ? "" : " so far"}: FAIL</p>`;
  table("endpoints", ["type", "name", "profile", "requests", "failures", "as recorded", "req/s", "p50 ms", "p95 ms", "p99 ms", "max ms"],
    v.endpoints.map(e => [esc(e.kind), esc(e.name), esc(e.profile), fmt(e.requests, 0), fmt(e.failures, 0), fmt(e.as_recorded, 0), fmt(e.rps), fmt(e.p50), fmt(e.p95), fmt(e.p99), fmt(e.max)]));
  table("profiles", ["profile", "", "", "requests", "failures", "p50 ms", "p95 ms", "p99 ms"],
    v.profiles.map(p => [esc(p.name), "", "", fmt(p.requests, 0), fmt(p.failures, 0), fmt(p.p50), fmt(p.p95), fmt(p.p99)]));
  table("status", ["status or error", "", "", "count"], v.status.map(s => [esc(s.name), "", "", fmt(s.count, 0)]));
  table("websockets", ["figure", "", "", "value"], v.websockets.map(w => [esc(w.name), "", "", esc(w.value)]));
  $("summary").textContent = f.summary;
  document.body.dataset.frames = String(++frames);
  document.body.dataset.done = String(f.done);
}

$("stop").addEventListener("click", () => {
  $("stop").disabled = true;
  fetch("stop", {method: "POST", headers: {"X-Thrive-Stop": "1"}}).finally(() => { $("stop").disabled = false; });
});

const events = new EventSource("events");
events.onmessage = e => draw(JSON.parse(e.data));
events.onerror = () => { if (done) { $("state").textContent = "finished; the page's server has closed"; events.close(); } };
