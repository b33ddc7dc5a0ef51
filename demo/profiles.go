package demo

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/gorilla/websocket"
)

// Profile is a kind of user, as a Locust user class is: its weight in the
// mix, its tasks with their weights, the wait between tasks, and how many
// tasks a session runs.
type Profile struct {
	Name             string
	Weight           int
	Tasks            []Task
	WaitMin, WaitMax time.Duration
	MinTasks         int
	MaxTasks         int
}

// Task is one thing a user does, with its weight among its profile's tasks.
type Task struct {
	Name   string
	Weight int
	run    func(*user, context.Context)
}

// Profiles returns the team's Locust model: browse 60, chat 30, import 10.
func Profiles() []Profile {
	return []Profile{
		{
			Name: "browse", Weight: 60, WaitMin: time.Second, WaitMax: 5 * time.Second, MinTasks: 5, MaxTasks: 15,
			Tasks: []Task{
				{"list projects", 50, (*user).listProjects},
				{"project detail", 30, (*user).projectDetail},
				{"tools", 20, (*user).tools},
				{"chat", 15, (*user).chatPost},
				{"search", 10, (*user).search},
			},
		},
		{
			Name: "chat", Weight: 30, WaitMin: 500 * time.Millisecond, WaitMax: 2 * time.Second, MinTasks: 4, MaxTasks: 10,
			Tasks: []Task{
				{"chat message", 80, (*user).chatSocket},
				{"quick browse", 20, (*user).quickBrowse},
			},
		},
		{
			Name: "import", Weight: 10, WaitMin: 3 * time.Second, WaitMax: 10 * time.Second, MinTasks: 2, MaxTasks: 5,
			Tasks: []Task{
				{"github import", 50, func(u *user, ctx context.Context) { u.importFrom(ctx, "github") }},
				{"youtube import", 30, func(u *user, ctx context.Context) { u.importFrom(ctx, "youtube") }},
				{"view created project", 20, (*user).viewCreated},
			},
		},
	}
}

func pickProfile(rng *rand.Rand) Profile {
	ps := Profiles()
	total := 0
	for _, p := range ps {
		total += p.Weight
	}
	n := rng.IntN(total)
	for _, p := range ps {
		if n < p.Weight {
			return p
		}
		n -= p.Weight
	}
	return ps[len(ps)-1]
}

func (p *Profile) pick(rng *rand.Rand) Task {
	total := 0
	for _, t := range p.Tasks {
		total += t.Weight
	}
	n := rng.IntN(total)
	for _, t := range p.Tasks {
		if n < t.Weight {
			return t
		}
		n -= t.Weight
	}
	return p.Tasks[len(p.Tasks)-1]
}

// queryWords are what users search for.
func queryWords() []string {
	return []string{"agent", "chat", "video", "data", "music", "portfolio", "tutor", "workflow", "vision", "notes"}
}

func (u *user) listProjects(ctx context.Context) {
	u.call(ctx, http.MethodGet, fmt.Sprintf("/api/projects/?page=%d", 1+u.rng.IntN(5)), "GET /api/projects/", nil, nil)
}

func (u *user) projectDetail(ctx context.Context) {
	// Popular projects get most views: the first 50 get half of them.
	id := 1 + u.rng.IntN(50)
	if u.rng.IntN(2) == 0 {
		id = 1 + u.rng.IntN(catalogueSize)
	}
	u.call(ctx, http.MethodGet, fmt.Sprintf("/api/projects/%d/", id), "GET /api/projects/{id}/", nil, nil)
}

func (u *user) tools(ctx context.Context) {
	u.call(ctx, http.MethodGet, "/api/tools/", "GET /api/tools/", nil, nil)
}

func (u *user) search(ctx context.Context) {
	q := queryWords()[u.rng.IntN(len(queryWords()))]
	u.call(ctx, http.MethodGet, "/api/search/?q="+url.QueryEscape(q), "GET /api/search/", nil, nil)
}

// chatMessages are what users ask the chat.
func chatMessages() []string {
	return []string{
		"How do I import my GitHub repository?",
		"Suggest a project that uses video summaries",
		"What tools work well for a study planner?",
		"Can you help me write a description for my portfolio?",
		"Which agents are popular this week?",
	}
}

func (u *user) message() string {
	qs := chatMessages()
	return qs[u.rng.IntN(len(qs))]
}

func (u *user) chatPost(ctx context.Context) {
	u.call(ctx, http.MethodPost, "/api/chat/", "POST /api/chat/", map[string]string{"message": u.message()}, nil)
}

func (u *user) quickBrowse(ctx context.Context) {
	if u.rng.IntN(2) == 0 {
		u.listProjects(ctx)
		return
	}
	u.projectDetail(ctx)
}

// chatSocket sends one message over the session's WebSocket, opening it on
// first use, and reads the streamed reply to its done message.
func (u *user) chatSocket(ctx context.Context) {
	const endpoint = "WS /ws/chat/"
	if u.ws == nil {
		ws := *u.base
		ws.Scheme = strings.Replace(ws.Scheme, "http", "ws", 1)
		ws.Path += "/ws/chat/"
		dialer := websocket.Dialer{Jar: u.jar, HandshakeTimeout: u.client.Timeout}
		u.st.Requests++
		u.st.Endpoints[endpoint]++
		conn, resp, err := dialer.DialContext(ctx, ws.String(), nil)
		if resp != nil {
			u.st.Status[resp.StatusCode]++
			resp.Body.Close()
		}
		if err != nil {
			u.fail(endpoint, err)
			return
		}
		u.ws = conn
	}
	msg, _ := json.Marshal(map[string]string{"type": "message", "message": u.message()})
	deadline := time.Now().Add(u.client.Timeout)
	_ = u.ws.SetWriteDeadline(deadline)
	if err := u.ws.WriteMessage(websocket.TextMessage, msg); err != nil {
		u.fail(endpoint, err)
		u.dropSocket()
		return
	}
	u.st.ChatMessages++
	_ = u.ws.SetReadDeadline(deadline)
	for {
		_, data, err := u.ws.ReadMessage()
		if err != nil {
			u.fail(endpoint, err)
			u.dropSocket()
			return
		}
		var m struct {
			Type string `json:"type"`
		}
		if json.Unmarshal(data, &m) != nil {
			u.fail(endpoint, fmt.Errorf("unreadable chat message %.40q", data))
			continue
		}
		switch m.Type {
		case "token":
			u.st.ChatTokens++
		case "done":
			return
		}
	}
}

func (u *user) dropSocket() {
	if u.ws != nil {
		u.ws.Close()
		u.ws = nil
	}
}

// importFrom starts an import and polls its job until it is done, as the
// app's page does, then remembers the new project.
func (u *user) importFrom(ctx context.Context, kind string) {
	src := "https://github.com/" + queryWords()[u.rng.IntN(10)] + "/" + queryWords()[u.rng.IntN(10)]
	if kind == "youtube" {
		src = fmt.Sprintf("https://www.youtube.com/watch?v=%011x", u.rng.Uint64()&(1<<44-1))
	}
	var started struct {
		JobID     uint64 `json:"job_id"`
		ProjectID uint64 `json:"project_id"`
	}
	if _, ok := u.call(ctx, http.MethodPost, "/api/import/"+kind+"/", "POST /api/import/"+kind+"/", map[string]string{"url": src}, &started); !ok {
		return
	}
	u.st.Imports++
	u.lastProject = started.ProjectID
	for range 60 {
		var job struct {
			Status string `json:"status"`
		}
		if _, ok := u.call(ctx, http.MethodGet, fmt.Sprintf("/api/import/jobs/%d/", started.JobID), "GET /api/import/jobs/{id}/", nil, &job); !ok {
			return
		}
		if job.Status == "done" {
			u.st.ImportsDone++
			return
		}
		if !u.wait(ctx, time.Second, time.Second) {
			return
		}
	}
}

func (u *user) viewCreated(ctx context.Context) {
	if u.lastProject == 0 {
		u.projectDetail(ctx)
		return
	}
	u.call(ctx, http.MethodGet, fmt.Sprintf("/api/projects/%d/", u.lastProject), "GET /api/projects/{id}/", nil, nil)
}
