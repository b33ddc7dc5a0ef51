// Charts and tables drawn as SVG and HTML, shared by the HTML report
// (inlined into it) and the live page of a run (served to it): nothing
// comes from the network.
"use strict";
const esc = s => String(s).replace(/[&<>"]/g, c => ({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;"}[c]));
const fmt = (v, d = 1) => v == null ? "–" : Number(v).toLocaleString("en-US", {maximumFractionDigits: d, minimumFractionDigits: d});
const colors = ["#2d6cdf", "#e08a1e", "#c0262d", "#0a7d32", "#7a3fd1"];
let chartsDrawn = 0;

// lineChart draws series ({name, ys}) over xs as an SVG line chart in the
// element id, its y axis in unit and its x axis named xlabel.
function lineChart(id, title, xs, series, unit, xlabel) {
  const W = 560, H = 230, L = 56, R = 12, T = 16, B = 34;
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
  g += `<text x="${(L + W - R) / 2}" y="${H - 4}" font-size="11" text-anchor="middle" fill="#667">${esc(xlabel)}</text>`;
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
    g += `<rect x="${L + 8 + k * 105}" y="${T + 2}" width="10" height="10" fill="${c}"/>`;
    g += `<text x="${L + 22 + k * 105}" y="${T + 11}" font-size="11">${esc(s.name)}</text>`;
  });
  document.getElementById(id).innerHTML = `<h3>${esc(title)}</h3>` + g + "</svg>";
  chartsDrawn++;
}

// table fills the element id with a table of head and rows (cells are
// HTML, escaped by the caller), or says empty when there are no rows.
function table(id, head, rows, empty = "none") {
  const el = document.getElementById(id);
  if (!rows.length) { el.innerHTML = `<p class=meta>${esc(empty)}</p>`; return; }
  let h = "<table><thead><tr>" + head.map(c => `<th>${esc(c)}</th>`).join("") + "</tr></thead><tbody>";
  for (const r of rows) h += "<tr>" + r.map(c => `<td>${c}</td>`).join("") + "</tr>";
  el.innerHTML = h + "</tbody></table>";
}
