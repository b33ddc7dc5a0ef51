package demo

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// maxBody bounds the request bodies the backend reads.
const maxBody = 1 << 20

// Password returns the password the demo backend accepts for user: "pw-"
// followed by the user name. Any user name will do.
func Password(user string) string { return "pw-" + user }

func readJSON(r *http.Request, v any) error {
	return json.NewDecoder(io.LimitReader(r.Body, maxBody)).Decode(v)
}

func (s *Server) login(w http.ResponseWriter, r *http.Request, _ *call) {
	var in struct {
		Username string `json:"username"`
		Password string `json:"password"`
	}
	if err := readJSON(r, &in); err != nil {
		writeJSON(w, http.StatusBadRequest, `{"detail":"JSON parse error."}`)
		return
	}
	if in.Username == "" || strings.ContainsAny(in.Username, "|\x00") || in.Password != Password(in.Username) {
		writeJSON(w, http.StatusBadRequest, `{"non_field_errors":["Unable to log in with provided credentials."]}`)
		return
	}
	sid, err := s.keys.newSession(in.Username)
	if err != nil {
		writeJSON(w, http.StatusInternalServerError, `{"detail":"could not make a session"}`)
		return
	}
	s.metrics.logins.Inc()
	http.SetCookie(w, &http.Cookie{Name: SessionCookie, Value: sid, Path: "/", HttpOnly: true, SameSite: http.SameSiteLaxMode, MaxAge: 14 * 24 * 3600})
	http.SetCookie(w, &http.Cookie{Name: CSRFCookie, Value: s.keys.csrf(sid), Path: "/", SameSite: http.SameSiteLaxMode, MaxAge: 365 * 24 * 3600})
	body, _ := json.Marshal(map[string]any{"username": in.Username, "detail": "Logged in."})
	writeJSONBytes(w, http.StatusOK, body)
}

func (s *Server) logout(w http.ResponseWriter, _ *http.Request, _ *call) {
	http.SetCookie(w, &http.Cookie{Name: SessionCookie, Value: "", Path: "/", MaxAge: -1})
	writeJSON(w, http.StatusOK, `{"detail":"Logged out."}`)
}

func (s *Server) me(w http.ResponseWriter, _ *http.Request, c *call) {
	if c.session == "" {
		writeJSON(w, http.StatusForbidden, `{"detail":"Authentication credentials were not provided."}`)
		return
	}
	body, _ := json.Marshal(map[string]any{"username": c.user})
	writeJSONBytes(w, http.StatusOK, body)
}

// intParam reads a positive integer query parameter, or def when absent.
func intParam(r *http.Request, name string, def int) (int, bool) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return def, true
	}
	n, err := strconv.Atoi(v)
	return n, err == nil && n > 0
}

func (s *Server) projects(w http.ResponseWriter, r *http.Request, _ *call) {
	page, ok1 := intParam(r, "page", 1)
	size, ok2 := intParam(r, "page_size", 20)
	if !ok1 || !ok2 || size > 100 {
		writeJSON(w, http.StatusBadRequest, `{"detail":"page and page_size must be positive integers, page_size at most 100."}`)
		return
	}
	if (page-1)*size >= catalogueSize {
		writeJSON(w, http.StatusNotFound, `{"detail":"Invalid page."}`)
		return
	}
	writeJSONBytes(w, http.StatusOK, s.cat.page(make([]byte, 0, 700*size), page, size))
}

func (s *Server) project(w http.ResponseWriter, r *http.Request, c *call) {
	id, err := strconv.ParseUint(r.PathValue("id"), 10, 64)
	switch {
	case err != nil:
		writeJSON(w, http.StatusNotFound, `{"detail":"Not found."}`)
	case id >= 1 && id <= catalogueSize:
		writeJSONBytes(w, http.StatusOK, s.cat.detail[id-1])
	default:
		s.importedProject(w, c, id)
	}
}

func (s *Server) tools(w http.ResponseWriter, _ *http.Request, _ *call) {
	writeJSONBytes(w, http.StatusOK, s.cat.tools)
}

func (s *Server) search(w http.ResponseWriter, r *http.Request, _ *call) {
	q := strings.TrimSpace(r.URL.Query().Get("q"))
	if q == "" {
		writeJSON(w, http.StatusBadRequest, `{"detail":"q is required."}`)
		return
	}
	writeJSONBytes(w, http.StatusOK, s.cat.search(nil, q, 20))
}

// importKinds are the sources an import can come from, with the hosts their
// URLs may name.
func importHosts(kind string) []string {
	switch kind {
	case "github":
		return []string{"github.com", "www.github.com"}
	case "youtube":
		return []string{"youtube.com", "www.youtube.com", "youtu.be"}
	}
	return nil
}

func (s *Server) startImport(w http.ResponseWriter, r *http.Request, c *call) {
	kind := r.PathValue("kind")
	hosts := importHosts(kind)
	if hosts == nil {
		writeJSON(w, http.StatusNotFound, `{"detail":"Not found."}`)
		return
	}
	var in struct {
		URL string `json:"url"`
	}
	if err := readJSON(r, &in); err != nil {
		writeJSON(w, http.StatusBadRequest, `{"detail":"JSON parse error."}`)
		return
	}
	if !urlOnHosts(in.URL, hosts) {
		body, _ := json.Marshal(map[string]any{"url": []string{fmt.Sprintf("Enter a %s URL.", kind)}})
		writeJSONBytes(w, http.StatusBadRequest, body)
		return
	}
	seq := s.keys.nextSeq(time.Now())
	job := s.keys.importID(c.session, "job-"+kind, seq)
	proj := s.keys.importID(c.session, "project-"+kind, seq)
	w.Header().Set("Location", fmt.Sprintf("/api/import/jobs/%d/", job))
	writeJSONBytes(w, http.StatusAccepted, fmt.Appendf(nil, `{"job_id":%d,"project_id":%d,"status":"pending"}`, job, proj))
}

func urlOnHosts(raw string, hosts []string) bool {
	rest, ok := strings.CutPrefix(raw, "https://")
	if !ok {
		return false
	}
	host, _, _ := strings.Cut(rest, "/")
	for _, h := range hosts {
		if host == h {
			return true
		}
	}
	return false
}

// lookupImport finds the import that id names for the caller's session: its
// kind and sequence number.
func (s *Server) lookupImport(c *call, what string, id uint64) (kind string, seq uint64, ok bool) {
	if c.session == "" {
		return "", 0, false
	}
	for _, k := range []string{"github", "youtube"} {
		if seq, ok := s.keys.importSeq(c.session, what+"-"+k, id); ok {
			return k, seq, true
		}
	}
	return "", 0, false
}

// importProgress says how far an import started with seq has come, in [0, 1].
func (s *Server) importProgress(seq uint64, now time.Time) float64 {
	took := time.Duration(float64(s.cfg.latency[ClassJob].Median) * s.cfg.latencyScale)
	if took <= 0 {
		return 1
	}
	return min(1, float64(now.Sub(s.keys.seqTime(seq)))/float64(took))
}

func (s *Server) job(w http.ResponseWriter, r *http.Request, c *call) {
	id, err := strconv.ParseUint(r.PathValue("id"), 10, 64)
	if err != nil {
		writeJSON(w, http.StatusNotFound, `{"detail":"Not found."}`)
		return
	}
	kind, seq, ok := s.lookupImport(c, "job", id)
	if !ok {
		writeJSON(w, http.StatusNotFound, `{"detail":"Not found."}`)
		return
	}
	p := s.importProgress(seq, time.Now())
	status := "pending"
	if p >= 1 {
		status = "done"
	}
	proj := s.keys.importID(c.session, "project-"+kind, seq)
	writeJSONBytes(w, http.StatusOK, fmt.Appendf(nil, `{"job_id":%d,"project_id":%d,"source":%q,"status":%q,"progress":%d}`,
		id, proj, kind, status, int(p*100)))
}

func (s *Server) importedProject(w http.ResponseWriter, c *call, id uint64) {
	kind, seq, ok := s.lookupImport(c, "project", id)
	if !ok {
		writeJSON(w, http.StatusNotFound, `{"detail":"Not found."}`)
		return
	}
	status := "importing"
	if s.importProgress(seq, time.Now()) >= 1 {
		status = "ready"
	}
	owner, _ := json.Marshal(c.user)
	writeJSONBytes(w, http.StatusOK, fmt.Appendf(nil, `{"id":%d,"title":"Imported from %s","source":%q,"status":%q,"owner":{"username":%s},"is_public":false}`,
		id, kind, kind, status, owner))
}
