package capture

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/thrive-loadtest/thrive/internal/files"
	"github.com/thrive-loadtest/thrive/traces"
	"go.yaml.in/yaml/v3"
)

// Rules label sessions with a profile. The first rule that matches the
// session wins; a session no rule matches gets Default.
type Rules struct {
	Rules   []Rule `yaml:"rules"`
	Default string `yaml:"default"`
}

// Rule names a profile and the exchanges that make a session belong to it. A
// rule matches an exchange when every condition it sets holds; a rule with no
// condition matches every exchange. The rule matches a session when at least
// MinShare of the session's exchanges match it (any one, when MinShare is 0).
type Rule struct {
	Profile string `yaml:"profile"`
	// Method is an HTTP method, such as POST; empty matches any.
	Method string `yaml:"method,omitempty"`
	// Path is a pattern for the URL path, in the syntax of
	// traces.MatchPath: a segment is a glob as in path.Match, {name} any
	// one segment, ** any number of segments, none included.
	Path string `yaml:"path,omitempty"`
	// WebSocket, when set, requires the exchange to be (true) or not to be
	// (false) a WebSocket upgrade.
	WebSocket *bool `yaml:"websocket,omitempty"`
	// MinShare is the share of the session's exchanges that must match, in
	// [0, 1].
	MinShare float64 `yaml:"min_share,omitempty"`
}

// DefaultRules label sessions with a WebSocket as chat, with a POST to an
// import path as import, with mostly chat calls as chat, and the rest as
// browse.
func DefaultRules() *Rules {
	yes := true
	return &Rules{
		Rules: []Rule{
			{Profile: "chat", WebSocket: &yes},
			{Profile: "import", Method: "POST", Path: "/**/import/**"},
			{Profile: "chat", Path: "/**/chat/**", MinShare: 0.5},
			{Profile: "browse"},
		},
		Default: "other",
	}
}

// Validate reports every problem with the rules.
func (rs *Rules) Validate() error {
	var errs []error
	for i, r := range rs.Rules {
		if r.Profile == "" {
			errs = append(errs, fmt.Errorf("rule %d: no profile", i+1))
		}
		if r.MinShare < 0 || r.MinShare > 1 {
			errs = append(errs, fmt.Errorf("rule %d (%s): min_share %g not in [0, 1]", i+1, r.Profile, r.MinShare))
		}
		if r.Path != "" {
			if err := traces.CheckPathPattern(r.Path); err != nil {
				errs = append(errs, fmt.Errorf("rule %d (%s): %w", i+1, r.Profile, err))
			}
		}
	}
	if rs.Default == "" {
		errs = append(errs, errors.New("no default profile"))
	}
	return errors.Join(errs...)
}

// LoadRulesFile reads the rules file at path (ParseRules), its path named
// in an error.
func LoadRulesFile(path string) (*Rules, error) {
	return files.Parse(path, ParseRules)
}

// ParseRules reads rules from YAML and validates them. A missing default
// profile is "other".
func ParseRules(r io.Reader) (*Rules, error) {
	var rs Rules
	dec := yaml.NewDecoder(r)
	dec.KnownFields(true)
	if err := dec.Decode(&rs); err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	if rs.Default == "" {
		rs.Default = "other"
	}
	if err := rs.Validate(); err != nil {
		return nil, err
	}
	return &rs, nil
}

// WriteYAML writes the rules as YAML (YAML), as --print-rules prints them.
func (rs *Rules) WriteYAML(w io.Writer) error {
	y, err := rs.YAML()
	if err == nil {
		_, err = w.Write(y)
	}
	return err
}

// YAML returns the rules as YAML, with a comment on how they apply.
func (rs *Rules) YAML() ([]byte, error) {
	var b bytes.Buffer
	b.WriteString("# thrive capture profile rules: the first rule that matches the session wins.\n")
	b.WriteString("# A rule matches an exchange when all its conditions hold (method, path, websocket),\n")
	b.WriteString("# and the session when at least min_share of its exchanges match (any one when unset).\n")
	b.WriteString("# In path, * matches within a segment and ** any number of segments.\n")
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(rs); err != nil {
		return nil, err
	}
	return b.Bytes(), enc.Close()
}

func (r *Rule) matches(ex *traces.Exchange) bool {
	if r.Method != "" && !strings.EqualFold(r.Method, ex.Method) {
		return false
	}
	if r.WebSocket != nil && *r.WebSocket != (ex.WebSocket != nil) {
		return false
	}
	if r.Path != "" && !traces.MatchPath(r.Path, ex.URL) {
		return false
	}
	return true
}

// Profile returns the profile the rules give s.
func (rs *Rules) Profile(s *traces.Session) string {
	var t tally
	rs.count(&t, s.Exchanges)
	return rs.profile(&t)
}

// tally counts the exchanges of a session, and those each rule matches:
// a session written in parts gets the profile all its parts give.
type tally struct {
	total   int
	matched []int
}

// count adds exchanges to t.
func (rs *Rules) count(t *tally, exchanges []traces.Exchange) {
	if t.matched == nil {
		t.matched = make([]int, len(rs.Rules))
	}
	for j := range exchanges {
		for i := range rs.Rules {
			if rs.Rules[i].matches(&exchanges[j]) {
				t.matched[i]++
			}
		}
	}
	t.total += len(exchanges)
}

// profile returns the profile of the first rule that matches at least its
// share of the exchanges t counted.
func (rs *Rules) profile(t *tally) string {
	for i := range rs.Rules {
		n := 0
		if t.matched != nil {
			n = t.matched[i]
		}
		if n > 0 && float64(n) >= rs.Rules[i].MinShare*float64(t.total) {
			return rs.Rules[i].Profile
		}
	}
	return rs.Default
}
