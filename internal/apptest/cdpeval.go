package apptest

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"regexp"
	"time"
)

// Eval evaluates the script expr in the page, waits for it if it is a
// promise, and decodes its value (as JSON) into v. It waits up to
// timeout, and through a navigation that replaced the page's context.
func (p *Page) Eval(expr string, v any, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		res, err := p.b.call(p.session, "Runtime.evaluate", map[string]any{"expression": expr, "awaitPromise": true, "returnByValue": true}, time.Until(deadline))
		if err != nil {
			if time.Now().Before(deadline) && regexp.MustCompile(`context|destroyed|navigat`).MatchString(err.Error()) {
				continue
			}
			return err
		}
		var r struct {
			Result struct {
				Value json.RawMessage `json:"value"`
			} `json:"result"`
			Exception *struct {
				Text      string `json:"text"`
				Exception struct {
					Description string `json:"description"`
				} `json:"exception"`
			} `json:"exceptionDetails"`
		}
		if err := json.Unmarshal(res, &r); err != nil {
			return fmt.Errorf("evaluate: %w", err)
		}
		if e := r.Exception; e != nil {
			return fmt.Errorf("evaluate: %s %s", e.Text, e.Exception.Description)
		}
		if v == nil {
			return nil
		}
		return json.Unmarshal(r.Result.Value, v)
	}
}

// Screenshot returns the page as it is drawn now, as PNG, width pixels
// wide and as high as its content.
func (p *Page) Screenshot(width int, timeout time.Duration) ([]byte, error) {
	// The page is laid out at width first, then measured.
	size := func(height int) error {
		_, err := p.b.call(p.session, "Emulation.setDeviceMetricsOverride",
			map[string]any{"width": width, "height": height, "deviceScaleFactor": 1, "mobile": false}, timeout)
		return err
	}
	var height int
	err := size(600)
	if err == nil {
		err = p.Eval("document.body.scrollHeight + 40", &height, timeout)
	}
	if err == nil {
		err = size(height)
	}
	if err != nil {
		return nil, fmt.Errorf("screenshot: %w", err)
	}
	res, err := p.b.call(p.session, "Page.captureScreenshot", map[string]any{"format": "png", "captureBeyondViewport": true}, timeout)
	if err != nil {
		return nil, fmt.Errorf("screenshot: %w", err)
	}
	var shot struct {
		Data string `json:"data"`
	}
	if err := json.Unmarshal(res, &shot); err != nil {
		return nil, fmt.Errorf("screenshot: %w", err)
	}
	return base64.StdEncoding.DecodeString(shot.Data)
}
