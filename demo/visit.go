package demo

import (
	"encoding/json"
	"net/http"
	"strconv"
)

// visitProfile is what the visit page's script knows of a profile: its
// tasks with their weights, the waits between them in milliseconds, and
// how many it runs.
type visitProfile struct {
	Name     string      `json:"name"`
	Tasks    []visitTask `json:"tasks"`
	WaitMin  int64       `json:"waitMin"`
	WaitMax  int64       `json:"waitMax"`
	MinTasks int         `json:"minTasks"`
	MaxTasks int         `json:"maxTasks"`
}

// visitTask is a task of a visitProfile.
type visitTask struct {
	Name   string `json:"name"`
	Weight int    `json:"weight"`
}

// visitData is what the visit page's script plays a session from: the
// profiles (see Profiles), what users search for and ask the chat. It is
// JSON that json.Marshal made safe in HTML (no <, > or &), so that it can
// stand in a script element as it is.
func visitData() []byte {
	var ps []visitProfile
	for _, p := range Profiles() {
		vp := visitProfile{Name: p.Name, WaitMin: p.WaitMin.Milliseconds(), WaitMax: p.WaitMax.Milliseconds(), MinTasks: p.MinTasks, MaxTasks: p.MaxTasks}
		for _, t := range p.Tasks {
			vp.Tasks = append(vp.Tasks, visitTask{Name: t.Name, Weight: t.Weight})
		}
		ps = append(ps, vp)
	}
	b, _ := json.Marshal(map[string]any{"profiles": ps, "words": queryWords(), "messages": chatMessages(), "catalogue": catalogueSize})
	return b
}

// visit serves a page a browser visits to play one session of a profile
// as the Driver's user does (the same login, endpoints, chat messages
// over a WebSocket and imports), from /visit?profile=NAME&u=USER, its
// waits divided by the query's scale (1 when absent). The page's script
// is inline and nothing else is loaded (its icon is a data: URL); when the
// session is over, with its WebSocket closed, the element root says
// "done", or "error: ..." at the first failure.
func (s *Server) visit(w http.ResponseWriter, _ *http.Request, _ *call) {
	body := `<!doctype html><html><head><meta charset="utf-8"><title>thrive demo visit</title><link rel="icon" href="data:,">` +
		`<script type="application/json" id="data">` + string(visitData()) + `</script></head>` +
		`<body><div id="root"></div><script>` + visitJS + `</script></body></html>`
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write([]byte(body))
}

// visitJS is the visit page's script: the Driver's user, in a browser.
const visitJS = `(async () => {
  const D = JSON.parse(document.getElementById("data").textContent);
  const q = new URLSearchParams(location.search), root = document.getElementById("root");
  const user = q.get("u") || "", scale = +(q.get("scale") || 1), p = D.profiles.find(x => x.name === q.get("profile"));
  const rnd = n => Math.floor(Math.random() * n), any = xs => xs[rnd(xs.length)];
  const pick = ts => { let n = rnd(ts.reduce((a, t) => a + t.weight, 0)); for (const t of ts) { if (n < t.weight) return t; n -= t.weight; } };
  const sleep = ms => new Promise(ok => setTimeout(ok, ms / scale));
  const csrf = () => (document.cookie.match(/(?:^|; )csrftoken=([^;]*)/) || [])[1] || "";
  const call = async (method, path, body) => {
    const h = {Accept: "application/json"};
    if (body !== undefined) h["Content-Type"] = "application/json";
    if (method !== "GET") h["X-CSRFToken"] = csrf();
    const r = await fetch(path, {method, headers: h, body: body === undefined ? undefined : JSON.stringify(body)});
    const text = await r.text();
    if (r.status >= 400) throw new Error(method + " " + path + ": " + r.status + " " + text);
    return text ? JSON.parse(text) : null;
  };
  let ws = null, lastProject = 0, onMessage = null;
  const openSocket = () => new Promise((ok, fail) => {
    const s = new WebSocket((location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/ws/chat/");
    s.onopen = () => ok(s);
    s.onerror = () => fail(new Error("the chat socket failed"));
    s.onmessage = m => onMessage && onMessage(JSON.parse(m.data));
  });
  const chatSocket = async () => {
    if (!ws) ws = await openSocket();
    await new Promise(ok => {
      onMessage = m => { if (m.type === "done") { onMessage = null; ok(); } };
      ws.send(JSON.stringify({type: "message", message: any(D.messages)}));
    });
  };
  const detail = () => call("GET", "/api/projects/" + (rnd(2) ? 1 + rnd(50) : 1 + rnd(D.catalogue)) + "/");
  const list = () => call("GET", "/api/projects/?page=" + (1 + rnd(5)));
  const importFrom = async kind => {
    const src = kind === "github" ? "https://github.com/" + any(D.words) + "/" + any(D.words)
      : "https://www.youtube.com/watch?v=" + Array.from({length: 11}, () => rnd(16).toString(16)).join("");
    const started = await call("POST", "/api/import/" + kind + "/", {url: src});
    lastProject = started.project_id;
    for (let i = 0; i < 60; i++) {
      if ((await call("GET", "/api/import/jobs/" + started.job_id + "/")).status === "done") return;
      await sleep(1000);
    }
  };
  const tasks = {
    "list projects": list, "project detail": detail, "tools": () => call("GET", "/api/tools/"),
    "chat": () => call("POST", "/api/chat/", {message: any(D.messages)}),
    "search": () => call("GET", "/api/search/?q=" + encodeURIComponent(any(D.words))),
    "chat message": chatSocket, "quick browse": () => rnd(2) ? list() : detail(),
    "github import": () => importFrom("github"), "youtube import": () => importFrom("youtube"),
    "view created project": () => lastProject ? call("GET", "/api/projects/" + lastProject + "/") : detail(),
  };
  try {
    if (!p) throw new Error("no profile " + q.get("profile"));
    await call("POST", "/api/auth/login/", {username: user, password: "pw-" + user});
    for (let n = p.minTasks + rnd(p.maxTasks - p.minTasks + 1); n > 0; n--) {
      await sleep(p.waitMin + Math.random() * (p.waitMax - p.waitMin));
      await tasks[pick(p.tasks).name]();
    }
    if (ws) await new Promise(ok => { ws.onclose = ok; ws.close(1000); });
    root.textContent = "done";
  } catch (e) {
    root.textContent = "error: " + e.message;
  }
})();`
