package apptest

import "fmt"

// The pages of CeleryImports, as its Django templates render them. Each
// links an empty data: icon, so that a browser asks for no /favicon.ico.

const celeryHead = `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>%s | Contacts</title>
<link rel="icon" href="data:,">
</head>
`

// celeryNotFound is Django's page_not_found with DEBUG off.
const celeryNotFound = `<!doctype html>
<html lang="en">
<head>
  <title>Not Found</title>
</head>
<body>
  <h1>Not Found</h1><p>The requested resource was not found on this server.</p>
</body>
</html>
`

// celeryCSRFPage is django.views.csrf.csrf_failure with DEBUG off.
const celeryCSRFPage = `<!DOCTYPE html>
<html lang="en">
<head>
  <meta http-equiv="content-type" content="text/html; charset=utf-8">
  <meta name="robots" content="NONE,NOARCHIVE">
  <title>403 Forbidden</title>
</head>
<body>
<div id="summary">
  <h1>Forbidden <span>(403)</span></h1>
  <p>CSRF verification failed. Request aborted.</p>
</div>

<div id="explanation">
  <p><small>More information is available with DEBUG=True.</small></p>
</div>
</body>
</html>
`

// celeryLoginScript logs in as the u of the start URL (carried in next),
// with the form, as a person would.
const celeryLoginScript = `<script>
(function () {
  var root = document.getElementById('root');
  var form = document.getElementById('login-form');
  var u = new URLSearchParams(location.search).get('u');
  var next = form.elements.next.value;
  if (!u && next) {
    try { u = new URL(next, location.href).searchParams.get('u'); } catch (e) {}
  }
  if (!u) return;
  if (document.querySelector('.errorlist')) {
    sessionStorage.removeItem('celery-visit');
    root.textContent = 'error: login refused for ' + u;
    return;
  }
  setTimeout(function () {
    form.elements.username.value = u;
    form.elements.password.value = 'pw-' + u;
    form.submit();
  }, 200);
})();
</script>
`

func celeryLoginPage(token, next, user, errs string) string {
	return fmt.Sprintf(celeryHead, "Log in") + fmt.Sprintf(`<body>
<main>
<h1>Log in</h1>
%s<form method="post" action="/accounts/login/" id="login-form"><input type="hidden" name="csrfmiddlewaretoken" value="%s">
<p><label for="id_username">Username:</label> <input type="text" name="username"%s autofocus autocapitalize="none" autocomplete="username" maxlength="150" required id="id_username"></p>
<p><label for="id_password">Password:</label> <input type="password" name="password" autocomplete="current-password" required id="id_password"></p>
<input type="hidden" name="next" value="%s">
<button type="submit">Log in</button>
</form>
<div id="root"></div>
</main>
`, errs, token, celeryValueAttr(user), celeryEsc(next)) + celeryLoginScript + "</body>\n</html>\n"
}

func celeryValueAttr(v string) string {
	if v == "" {
		return ""
	}
	return ` value="` + celeryEsc(v) + `"`
}

// celeryImportsScript does the visit's work: two imports, each a CSV
// posted with fetch() and the X-CSRFToken header from the cookie (as
// Django's docs show), its task polled every 250 ms until SUCCESS, its rows
// read; then the logout form.
const celeryImportsScript = `<script>
(function () {
  var root = document.getElementById('root');
  var log = document.getElementById('log');
  var want = new URLSearchParams(location.search).get('u');
  var me = document.body.dataset.user;
  if (!want) return;
  function fail(msg) {
    sessionStorage.removeItem('celery-visit');
    root.textContent = 'error: ' + msg;
  }
  if (want !== me) { fail('logged in as ' + me + ', not ' + want); return; }

  function getCookie(name) {
    let cookieValue = null;
    if (document.cookie && document.cookie !== '') {
      const cookies = document.cookie.split(';');
      for (let i = 0; i < cookies.length; i++) {
        const cookie = cookies[i].trim();
        if (cookie.substring(0, name.length + 1) === (name + '=')) {
          cookieValue = decodeURIComponent(cookie.substring(name.length + 1));
          break;
        }
      }
    }
    return cookieValue;
  }
  const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
  const pick = (a) => a[Math.floor(Math.random() * a.length)];
  async function answer(resp, status, what) {
    const text = await resp.text();
    if (resp.status !== status) throw new Error(what + ': ' + resp.status + ' ' + text);
    return JSON.parse(text);
  }
  function makeCSV() {
    const first = ['Ann', 'Ben', 'Cleo', 'Dev', 'Eve', 'Finn', 'Gia', 'Hugo'];
    const last = ['Lee', 'Kim', 'Park', 'Shaw', 'Diaz', 'Moss', 'Ito'];
    const rows = [];
    const n = 3 + Math.floor(Math.random() * 4);
    for (let i = 0; i < n; i++) {
      const f = pick(first), l = pick(last);
      const mail = f.toLowerCase() + '.' + l.toLowerCase() + Math.floor(Math.random() * 1000) + '@example.test';
      rows.push({name: f + ' ' + l, email: mail, amount: (Math.random() * 500).toFixed(2)});
    }
    const csv = 'name,email,amount\r\n' + rows.map((r) => r.name + ',' + r.email + ',' + r.amount + '\r\n').join('');
    return {csv, rows};
  }
  async function importOnce(n) {
    const {csv, rows} = makeCSV();
    const body = new FormData();
    body.append('file', new Blob([csv], {type: 'text/csv'}), 'contacts-' + n + '.csv');
    let resp = await fetch('/api/imports/', {
      method: 'POST', body, credentials: 'same-origin',
      headers: {'Accept': 'application/json', 'X-CSRFToken': getCookie('csrftoken')},
    });
    const job = await answer(resp, 202, 'POST /api/imports/');
    log.textContent += 'import ' + n + ': task ' + job.task_id + '\n';
    let st;
    for (;;) {
      resp = await fetch(job.status_url, {headers: {'Accept': 'application/json'}, credentials: 'same-origin'});
      st = await answer(resp, 200, 'GET ' + job.status_url);
      const p = st.info && st.info.total ? ' ' + st.info.current + '/' + st.info.total : '';
      log.textContent += '  ' + st.state + p + '\n';
      if (st.state === 'SUCCESS') break;
      if (st.state === 'FAILURE') throw new Error('task ' + job.task_id + ' failed: ' + JSON.stringify(st.info));
      await sleep(250);
    }
    const url = '/api/imports/' + st.result.import_id + '/rows/';
    resp = await fetch(url, {headers: {'Accept': 'application/json'}, credentials: 'same-origin'});
    const page = await answer(resp, 200, 'GET ' + url);
    if (page.count !== rows.length || st.result.rows !== rows.length) throw new Error(url + ': ' + page.count + ' rows, posted ' + rows.length);
    page.results.forEach((r, i) => {
      if (r.name !== rows[i].name || r.email !== rows[i].email || r.amount !== rows[i].amount) throw new Error(url + ': row ' + (i + 1) + ' is ' + JSON.stringify(r));
    });
    log.textContent += '  ' + page.count + ' rows in import ' + st.result.import_id + '\n';
  }
  (async () => {
    await sleep(150);
    for (let n = 1; n <= 2; n++) {
      await importOnce(n);
      await sleep(200);
    }
    sessionStorage.setItem('celery-visit', 'ok');
    document.getElementById('logout-form').submit();
  })().catch((e) => fail(e.message));
})();
</script>
`

func celeryImportsPage(user, token string, done, total int) string {
	return fmt.Sprintf(celeryHead, "Imports") + fmt.Sprintf(`<body data-user="%s">
<header>Logged in as <strong>%s</strong>.
<form id="logout-form" method="post" action="/accounts/logout/"><input type="hidden" name="csrfmiddlewaretoken" value="%s"><button type="submit">Log out</button></form>
</header>
<main>
<h1>CSV imports</h1>
<p id="summary">%d of your %d imports are done.</p>
<pre id="log"></pre>
<div id="root"></div>
</main>
`, celeryEsc(user), celeryEsc(user), token, done, total) + celeryImportsScript + "</body>\n</html>\n"
}

// celeryLoggedOutScript ends a visit that the imports page finished.
const celeryLoggedOutScript = `<script>
(function () {
  var v = sessionStorage.getItem('celery-visit');
  sessionStorage.removeItem('celery-visit');
  if (v !== null) document.getElementById('root').textContent = v === 'ok' ? 'done' : 'error: ' + v;
})();
</script>
`

// celeryLoggedOutPage is registration/logged_out.html.
func celeryLoggedOutPage(user string) string {
	who := ""
	if user != "" {
		who = ", " + celeryEsc(user)
	}
	return fmt.Sprintf(celeryHead, "Logged out") + fmt.Sprintf(`<body>
<main>
<h1>Logged out</h1>
<p>Thanks for spending some quality time with the web site today%s.</p>
<p><a href="/accounts/login/">Log in again</a></p>
<div id="root"></div>
</main>
`, who) + celeryLoggedOutScript + "</body>\n</html>\n"
}
