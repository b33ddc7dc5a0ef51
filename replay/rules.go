package replay

import (
	"errors"
	"fmt"
	"io"
	"path"
	"regexp"
	"strconv"
	"strings"

	"github.com/thrive-loadtest/thrive/internal/files"
	"go.yaml.in/yaml/v3"
)

// CorrelationRules change what correlation finds, from a YAML file:
//
//	disable:                      # rules as thrive traces correlations names them
//	  - "GET /api/projects/{id}/ $.activity[0].kind"
//	  - "GET /api/search/ *"      # * and ? match as in file names
//	add:
//	  - from: "GET /login/"       # the answer's endpoint, as the reports name it
//	    regex: 'name="csrfmiddlewaretoken" value="([^"]+)"'
//	  - from: "POST /api/token/"
//	    json: "$.access"
//	  - from: "POST /api/items/"
//	    header: "X-Item-Id"
//
// An added rule takes its value from every answer of its endpoint, of any
// length, and carries it into the later requests that send it.
type CorrelationRules struct {
	Disable []string    `yaml:"disable"`
	Add     []AddedRule `yaml:"add"`
}

// AddedRule is a correlation written by hand: where a value comes from.
type AddedRule struct {
	From   string `yaml:"from"`
	JSON   string `yaml:"json,omitempty"`
	Header string `yaml:"header,omitempty"`
	Regex  string `yaml:"regex,omitempty"`

	place place
}

// LoadCorrelationRulesFile reads and checks the rules file at path, its
// path named in an error.
func LoadCorrelationRulesFile(path string) (*CorrelationRules, error) {
	return files.Parse(path, LoadCorrelationRules)
}

// LoadCorrelationRules reads and checks a rules file.
func LoadCorrelationRules(r io.Reader) (*CorrelationRules, error) {
	var rs CorrelationRules
	dec := yaml.NewDecoder(r)
	dec.KnownFields(true)
	if err := dec.Decode(&rs); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("correlation rules: %w", err)
	}
	var errs []error
	for _, d := range rs.Disable {
		if _, err := path.Match(d, ""); err != nil {
			errs = append(errs, fmt.Errorf("disable %q: %w", d, err))
		}
	}
	for i := range rs.Add {
		a := &rs.Add[i]
		n := 0
		for _, s := range []string{a.JSON, a.Header, a.Regex} {
			if s != "" {
				n++
			}
		}
		if a.From == "" || n != 1 {
			errs = append(errs, fmt.Errorf("add %d: want from and one of json, header or regex", i+1))
			continue
		}
		switch {
		case a.Header != "":
			a.place = place{header: a.Header}
		case a.JSON != "":
			p, err := parseJSONPath(a.JSON)
			if err != nil {
				errs = append(errs, fmt.Errorf("add %d: %w", i+1, err))
				continue
			}
			a.place = place{path: p}
		default:
			re, err := regexp.Compile(a.Regex)
			if err != nil || re.NumSubexp() != 1 {
				errs = append(errs, fmt.Errorf("add %d: regex %q: want a valid expression with one group around the value", i+1, a.Regex))
				continue
			}
			a.place = place{regex: re}
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("correlation rules: %w", err)
	}
	return &rs, nil
}

// parseJSONPath reads $.a.b[0].c.
func parseJSONPath(s string) ([]any, error) {
	rest, ok := strings.CutPrefix(s, "$")
	if !ok {
		return nil, fmt.Errorf("json path %q: want it to start with $", s)
	}
	var out []any
	for rest != "" {
		switch rest[0] {
		case '.':
			end := strings.IndexAny(rest[1:], ".[")
			if end < 0 {
				end = len(rest) - 1
			}
			key := rest[1 : end+1]
			if key == "" {
				return nil, fmt.Errorf("json path %q: empty key", s)
			}
			out = append(out, key)
			rest = rest[end+1:]
		case '[':
			end := strings.IndexByte(rest, ']')
			n, err := strconv.Atoi(rest[1:max(end, 1)])
			if end < 0 || err != nil || n < 0 {
				return nil, fmt.Errorf("json path %q: bad index", s)
			}
			out = append(out, n)
			rest = rest[end+1:]
		default:
			return nil, fmt.Errorf("json path %q: unexpected %q", s, rest[0])
		}
	}
	return out, nil
}

// disabled reports whether a rule name is switched off.
func (rs *CorrelationRules) disabled(rule string) bool {
	if rs == nil {
		return false
	}
	for _, d := range rs.Disable {
		if ok, _ := path.Match(d, rule); ok || d == rule {
			return true
		}
	}
	return false
}
