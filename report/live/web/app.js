// The live page of a thrive run: each server-sent event is a frame of
// the run's figures (report/live Frame), drawn as SVG charts and tables.
// Nothing is loaded from the network but this page's own server; its
// charts and tables are the HTML report's (chart.js).
"use strict";
const $ = id => document.getElementById(id);
let frames = 0, done = false;
const liveTable = (id, head, rows) => table(id, head, rows, "none yet");

// mode is what the form does now: "start" (the run waits for it),
// "users" (it changes the users of the run playing) or "" (hidden).
let mode = "";

// showForm shows the form of frame f, filled from it when its mode
// changes (not while someone may be typing in it).
function showForm(f) {
  const m = f.done || !f.form ? "" : f.waiting ? "start" : "users";
  $("runform").hidden = !m;
  if (m === mode) return;
  mode = m;
  if (!m) return;
  const form = f.form;
  $("f-users").value = form.users;
  $("f-rate").value = form.spawn_rate;
  $("f-runtime").value = form.run_time || "";
  $("f-mix").value = form.mix || "";
  for (const e of document.querySelectorAll(".runform .shape")) e.hidden = m === "start" && form.fixed;
  for (const e of document.querySelectorAll(".runform .before")) e.hidden = m !== "start";
  $("f-submit").textContent = m === "start" ? "Start" : "Change users";
  $("f-said").textContent = m === "start" ? "the run starts when you press Start" : "";
}

$("runform").addEventListener("submit", ev => {
  ev.preventDefault();
  const body = {users: Number($("f-users").value), spawn_rate: Number($("f-rate").value), run_time: $("f-runtime").value, mix: $("f-mix").value};
  const said = $("f-said"), button = $("f-submit"), what = mode;
  button.disabled = true;
  fetch(what, {method: "POST", headers: {"X-Thrive-Control": "1", "Content-Type": "application/json"}, body: JSON.stringify(body)})
    .then(r => r.ok ? (what === "start" ? "starting…" : `asked for ${body.users} users at ${body.spawn_rate}/s`) : r.text().then(t => "refused: " + t.trim()))
    .catch(e => "refused: " + e)
    .then(text => { said.textContent = text; document.body.dataset.said = text; button.disabled = false; });
});

// draw shows one frame.
function draw(f) {
  $("title").textContent = f.title;
  done = f.done;
  showForm(f);
  const st = $("state");
  if (f.waiting) {
    st.textContent = "waiting for Start";
    st.className = "state";
    document.body.dataset.waiting = "true";
    return;
  }
  document.body.dataset.waiting = "false";
  const v = f.view, series = v.series, t = series.map(s => s.t);
  st.textContent = f.done ? (f.stopped_by ? "stopped: " + f.stopped_by : "finished") : "running";
  st.className = "state " + (f.done ? "done" : "running");
  $("progress").textContent = `${fmt(f.elapsed_s, 0)} s of ${fmt(f.run_time_s, 0)} s · users ${f.users} · WebSockets open ${f.sockets}`;
  $("error").textContent = f.error || "";
  const stop = $("stop");
  stop.textContent = f.done ? "Close the page's server" : "Stop";
  stop.title = f.done ? "The run is over: end the process (its files are written)" : "Stop the run as Ctrl-C does: the results so far are written";
  $("files").innerHTML = (f.files || []).map(d => `<a download href="files/${encodeURIComponent(d.name)}">${esc(d.name)}</a>`).join("");

  lineChart("chart-rps", "Requests and failures per second", t, [{name: "requests/s", ys: series.map(s => s.rps)}, {name: "failures/s", ys: series.map(s => s.fps)}], "req/s", "seconds into the run");
  lineChart("chart-users", "Users", t, [{name: "users", ys: series.map(s => s.users)}], "users", "seconds into the run");
  lineChart("chart-latency", "Latency from when requests were due", t, [{name: "p50", ys: series.map(s => s.p50)}, {name: "p95", ys: series.map(s => s.p95)}, {name: "p99", ys: series.map(s => s.p99)}], "ms", "seconds into the run");
  lineChart("chart-lag", "Schedule lag (p99)", t, [{name: "lag p99", ys: series.map(s => s.lag)}], "ms", "seconds into the run");

  const tot = v.totals;
  $("cards").innerHTML = [
    ["requests", fmt(tot.requests, 0)], ["failures", fmt(tot.failures, 0) + " (" + fmt(tot.error_rate * 100, 2) + "%)"],
    ["req/s", fmt(tot.rps)], ["p50", fmt(tot.p50) + " ms"], ["p95", fmt(tot.p95) + " ms"], ["p99", fmt(tot.p99) + " ms"],
    ["lag p99", fmt(tot.lag_p99, 2) + " ms"]].map(([k, x]) => `<div class="card">${esc(k)}<b>${esc(x)}</b></div>`).join("");
  liveTable("criteria", ["criterion", "actual", "verdict"], v.criteria.map(c => [esc(c.criterion), esc(c.actual),
    c.pass ? "<span class=pass>pass</span>" : c.error ? "<span class=fail>FAIL (error)</span>" : "<span class=fail>FAIL</span>"]));
  $("verdict").innerHTML = !v.criteria.length ? "" : v.criteria.every(c => c.pass) ?
    `<p class=pass>verdict${f.done ? "" : " so far"}: PASS</p>` : `<p class=fail>verdict${f.done ? "" : " so far"}: FAIL</p>`;
  liveTable("endpoints", ["type", "name", "profile", "requests", "failures", "as recorded", "req/s", "p50 ms", "p95 ms", "p99 ms", "max ms"],
    v.endpoints.map(e => [esc(e.kind), esc(e.name), esc(e.profile), fmt(e.requests, 0), fmt(e.failures, 0), fmt(e.as_recorded, 0), fmt(e.rps), fmt(e.p50), fmt(e.p95), fmt(e.p99), fmt(e.max)]));
  liveTable("profiles", ["profile", "", "", "requests", "failures", "p50 ms", "p95 ms", "p99 ms"],
    v.profiles.map(p => [esc(p.name), "", "", fmt(p.requests, 0), fmt(p.failures, 0), fmt(p.p50), fmt(p.p95), fmt(p.p99)]));
  liveTable("status", ["status or error", "", "", "count"], v.status.map(s => [esc(s.name), "", "", fmt(s.count, 0)]));
  liveTable("websockets", ["figure", "", "", "value"], v.websockets.map(w => [esc(w.name), "", "", esc(w.value)]));
  $("summary").textContent = f.summary;
  document.body.dataset.frames = String(++frames);
  document.body.dataset.done = String(f.done);
}

$("stop").addEventListener("click", () => {
  $("stop").disabled = true;
  fetch("stop", {method: "POST", headers: {"X-Thrive-Control": "1"}}).finally(() => { $("stop").disabled = false; });
});

const events = new EventSource("events");
events.onmessage = e => draw(JSON.parse(e.data));
events.onerror = () => { if (done) { $("state").textContent = "finished; the page's server has closed"; events.close(); } };
