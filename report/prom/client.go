package prom

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// ErrNoData says a query returned no series over the time asked.
var ErrNoData = errors.New("the query returned nothing")

// Client asks one Prometheus server. It is safe for concurrent use.
type Client struct {
	base string // the server's URL, without a trailing slash
	http *http.Client
}

// New returns a Client of the Prometheus server at rawURL (http or https,
// as http://127.0.0.1:9090, or with the path prefix of a server behind a
// proxy). Every call of the client times out after timeout.
func New(rawURL string, timeout time.Duration) (*Client, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("prometheus URL %q: want http://HOST:PORT or https://HOST:PORT: %w", rawURL, err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("prometheus URL %q: want http://HOST:PORT or https://HOST:PORT", rawURL)
	}
	return &Client{base: strings.TrimSuffix(u.String(), "/"), http: &http.Client{Timeout: timeout}}, nil
}

// Point is a query's value at one time.
type Point struct {
	T time.Time
	V float64
}

// Series is one series of a query's answer: its labels and its values
// over time (one, for an instant query).
type Series struct {
	Labels map[string]string
	Points []Point
}

// apiResponse is the envelope of every answer of the HTTP API.
type apiResponse struct {
	Status    string `json:"status"`
	ErrorType string `json:"errorType"`
	Error     string `json:"error"`
	Data      struct {
		ResultType string          `json:"resultType"`
		Result     json.RawMessage `json:"result"`
	} `json:"data"`
}

// apiSeries is one series of a vector or a matrix.
type apiSeries struct {
	Metric     map[string]string   `json:"metric"`
	Value      []json.RawMessage   `json:"value"`
	Values     [][]json.RawMessage `json:"values"`
	Histograms json.RawMessage     `json:"histograms"`
	Histogram  json.RawMessage     `json:"histogram"`
}

// QueryRange evaluates query at every step from start to end (the API's
// query_range).
func (c *Client) QueryRange(ctx context.Context, query string, start, end time.Time, step time.Duration) ([]Series, error) {
	form := url.Values{"query": {query}, "start": {unixSeconds(start)}, "end": {unixSeconds(end)},
		"step": {strconv.FormatFloat(step.Seconds(), 'f', -1, 64)}}
	return c.ask(ctx, "query_range", form)
}

// Query evaluates query at one time (the API's query).
func (c *Client) Query(ctx context.Context, query string, at time.Time) ([]Series, error) {
	return c.ask(ctx, "query", url.Values{"query": {query}, "time": {unixSeconds(at)}})
}

func unixSeconds(t time.Time) string {
	return strconv.FormatFloat(float64(t.UnixNano())/1e9, 'f', 3, 64)
}

// ask posts form to the API's endpoint and reads its answer: a matrix, a
// vector or a scalar, as series. The error says what the server said.
func (c *Client) ask(ctx context.Context, endpoint string, form url.Values) ([]Series, error) {
	where := c.base + "/api/v1/" + endpoint
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, where, strings.NewReader(form.Encode()))
	if err != nil {
		return nil, fmt.Errorf("prometheus %s: %w", where, err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("prometheus: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return nil, fmt.Errorf("prometheus %s: reading the answer: %w", where, err)
	}
	var ar apiResponse
	if err := json.Unmarshal(body, &ar); err != nil {
		return nil, fmt.Errorf("prometheus %s: %s, not an answer of the Prometheus API (%.80q)", where, resp.Status, body)
	}
	if ar.Status != "success" {
		return nil, fmt.Errorf("prometheus: %s: %s", ar.ErrorType, ar.Error)
	}
	var result []apiSeries
	switch ar.Data.ResultType {
	case "scalar":
		var pair []json.RawMessage
		if err := json.Unmarshal(ar.Data.Result, &pair); err != nil {
			return nil, fmt.Errorf("prometheus: a scalar: %w", err)
		}
		p, err := parsePair(pair)
		if err != nil {
			return nil, fmt.Errorf("prometheus: %w", err)
		}
		return []Series{{Points: []Point{p}}}, nil
	case "vector", "matrix":
		if err := json.Unmarshal(ar.Data.Result, &result); err != nil {
			return nil, fmt.Errorf("prometheus: a %s: %w", ar.Data.ResultType, err)
		}
	default:
		return nil, fmt.Errorf("prometheus: a result of type %q, not numbers", ar.Data.ResultType)
	}
	var out []Series
	for _, r := range result {
		if len(r.Histograms) > 0 || len(r.Histogram) > 0 {
			return nil, fmt.Errorf("prometheus: the query returns native histograms, not numbers (take a histogram_quantile or histogram_count of them)")
		}
		s := Series{Labels: r.Metric}
		pairs := r.Values
		if r.Value != nil {
			pairs = [][]json.RawMessage{r.Value}
		}
		for _, pair := range pairs {
			p, err := parsePair(pair)
			if err != nil {
				return nil, fmt.Errorf("prometheus: %w", err)
			}
			s.Points = append(s.Points, p)
		}
		out = append(out, s)
	}
	return out, nil
}

// parsePair reads a sample as the API writes it: [unix seconds, "value"].
func parsePair(pair []json.RawMessage) (Point, error) {
	if len(pair) != 2 {
		return Point{}, fmt.Errorf("a sample of %d fields, want [time, value]", len(pair))
	}
	var at float64
	var val string
	if err := json.Unmarshal(pair[0], &at); err != nil {
		return Point{}, fmt.Errorf("a sample's time %s: %w", pair[0], err)
	}
	if err := json.Unmarshal(pair[1], &val); err != nil {
		return Point{}, fmt.Errorf("a sample's value %s: %w", pair[1], err)
	}
	v, err := strconv.ParseFloat(val, 64)
	if err != nil {
		return Point{}, fmt.Errorf("a sample's value %q: %w", val, err)
	}
	return Point{T: seconds(at), V: v}, nil
}

// WaitScraped waits, asking every poll, until every target of the server
// has been scraped at or after t (the oldest of the last scrapes,
// timestamp(up), is not before t), so that what the targets did until t
// is in the server. It returns the time of the newest last scrape: a
// query evaluated then sees every target's scrape past t. When ctx ends
// first, the error says how far the scrapes had come.
func (c *Client) WaitScraped(ctx context.Context, t time.Time, poll time.Duration) (time.Time, error) {
	tick := time.NewTicker(poll)
	defer tick.Stop()
	var oldest time.Time
	for {
		ss, err := c.Query(ctx, "timestamp(up)", time.Now())
		if err != nil && ctx.Err() == nil {
			return time.Time{}, err
		}
		if err == nil && len(ss) > 0 {
			var newest time.Time
			oldest = time.Time{}
			for _, s := range ss {
				for _, p := range s.Points {
					at := seconds(p.V)
					if oldest.IsZero() || at.Before(oldest) {
						oldest = at
					}
					if at.After(newest) {
						newest = at
					}
				}
			}
			if !oldest.Before(t) {
				return newest, nil
			}
		}
		select {
		case <-ctx.Done():
			if oldest.IsZero() {
				return time.Time{}, fmt.Errorf("prometheus: no target scraped (no up series): %w", context.Cause(ctx))
			}
			return time.Time{}, fmt.Errorf("prometheus: a target's last scrape is at %s, before %s: %w",
				oldest.UTC().Format(time.RFC3339Nano), t.UTC().Format(time.RFC3339Nano), context.Cause(ctx))
		case <-tick.C:
		}
	}
}

// seconds returns the time of v seconds since the Unix epoch.
func seconds(v float64) time.Time {
	sec, frac := math.Modf(v)
	return time.Unix(int64(sec), int64(math.Round(frac*1e9)))
}
