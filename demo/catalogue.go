package demo

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strings"
	"time"
)

// catalogueSize is how many public projects the backend serves; their ids
// are 1..catalogueSize.
const catalogueSize = 500

// toolCount is how many tools /api/tools/ lists.
const toolCount = 40

// project is a public catalogue entry.
type project struct {
	ID          int       `json:"id"`
	Slug        string    `json:"slug"`
	Title       string    `json:"title"`
	Description string    `json:"description"`
	Owner       owner     `json:"owner"`
	Tags        []string  `json:"tags"`
	Tools       []int     `json:"tools"`
	Stars       int       `json:"stars"`
	CreatedAt   time.Time `json:"created_at"`
	URL         string    `json:"url"`
}

type owner struct {
	ID       int    `json:"id"`
	Username string `json:"username"`
}

// catalogue holds the public projects and tools, rendered to JSON once at
// start-up so that serving them costs a copy. It is read-only after
// newCatalogue, so safe for concurrent use.
type catalogue struct {
	projects [][]byte // JSON of project i+1
	detail   [][]byte // JSON of project i+1 with what a detail view adds
	text     []string // lower-case title and description, for search
	tools    []byte   // the whole /api/tools/ answer
}

func newCatalogue() (*catalogue, error) {
	words := strings.Fields(`agent api app assistant audio bot build chat cloud code data design dev docs
		editor engine flow game graph guide image kit lab learn lens map model music note open pipeline
		planner portfolio prompt react research robot search sheet site sketch stack story studio study
		summary sync task teach tool tracker tutor video vision voice web widget workflow writer`)
	rng := rand.New(rand.NewPCG(2026, 11))
	pick := func() string { return words[rng.IntN(len(words))] }
	sentence := func(n int) string {
		ws := make([]string, n)
		for i := range ws {
			ws[i] = pick()
		}
		return strings.Join(ws, " ")
	}
	c := &catalogue{}
	base := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	for id := 1; id <= catalogueSize; id++ {
		title := strings.ToUpper(sentence(1)[:1]) + sentence(3)[1:]
		p := project{
			ID: id, Title: title, Description: sentence(12 + rng.IntN(20)),
			Slug:      strings.ReplaceAll(title, " ", "-") + fmt.Sprintf("-%d", id),
			Owner:     owner{ID: 100 + rng.IntN(400), Username: pick() + fmt.Sprint(rng.IntN(100))},
			Tags:      []string{pick(), pick()},
			Tools:     []int{1 + rng.IntN(toolCount), 1 + rng.IntN(toolCount)},
			Stars:     rng.IntN(2000),
			CreatedAt: base.Add(time.Duration(rng.IntN(600*24)) * time.Hour),
			URL:       fmt.Sprintf("/projects/%d/", id),
		}
		js, err := json.Marshal(p)
		if err != nil {
			return nil, err
		}
		c.projects = append(c.projects, js)
		c.text = append(c.text, strings.ToLower(p.Title+" "+p.Description))
		readme := make([]string, 4+rng.IntN(12))
		for i := range readme {
			readme[i] = sentence(10 + rng.IntN(10))
		}
		d, err := json.Marshal(struct {
			project
			Readme string `json:"readme"`
		}{p, strings.Join(readme, ". ") + "."})
		if err != nil {
			return nil, err
		}
		c.detail = append(c.detail, d)
	}
	type tool struct {
		ID       int    `json:"id"`
		Name     string `json:"name"`
		Category string `json:"category"`
		Summary  string `json:"summary"`
	}
	tools := make([]tool, toolCount)
	for i := range tools {
		tools[i] = tool{ID: i + 1, Name: strings.ToUpper(pick()[:1]) + pick(), Category: pick(), Summary: sentence(8)}
	}
	var err error
	if c.tools, err = json.Marshal(map[string]any{"count": toolCount, "results": tools}); err != nil {
		return nil, err
	}
	return c, nil
}

// page appends the JSON of a page of the catalogue to dst.
func (c *catalogue) page(dst []byte, page, size int) []byte {
	start := (page - 1) * size
	dst = fmt.Appendf(dst, `{"count":%d,"page":%d,"page_size":%d,"results":[`, catalogueSize, page, size)
	for i := start; i < start+size && i < catalogueSize; i++ {
		if i > start {
			dst = append(dst, ',')
		}
		dst = append(dst, c.projects[i]...)
	}
	return append(dst, "]}"...)
}

// search appends the JSON of at most limit projects whose title or
// description contains q, case-insensitively.
func (c *catalogue) search(dst []byte, q string, limit int) []byte {
	q = strings.ToLower(q)
	dst = append(dst, `{"query":`...)
	dst, _ = appendJSONString(dst, q)
	dst = append(dst, `,"results":[`...)
	n := 0
	for i, t := range c.text {
		if n == limit {
			break
		}
		if strings.Contains(t, q) {
			if n > 0 {
				dst = append(dst, ',')
			}
			dst = append(dst, c.projects[i]...)
			n++
		}
	}
	return fmt.Appendf(dst, `],"count":%d}`, n)
}

func appendJSONString(dst []byte, s string) ([]byte, error) {
	b, err := json.Marshal(s)
	return append(dst, b...), err
}
