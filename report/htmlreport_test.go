package report

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestHTMLReportInChromium renders a report of a known result, opens it in
// headless Chromium (Debian's, which .ci/run installs) with the network
// off, and checks that the page logged no console error, that every chart
// drew its lines, and that the tables hold the figures; it saves a
// screenshot next to the report. Without Chromium it fails when
// THRIVE_REQUIRE_CHROMIUM is set (CI), else it skips.
func TestHTMLReportInChromium(t *testing.T) {
	chromium, err := exec.LookPath("chromium")
	if err != nil {
		if os.Getenv("THRIVE_REQUIRE_CHROMIUM") != "" {
			t.Fatal("chromium is not installed, and THRIVE_REQUIRE_CHROMIUM is set")
		}
		t.Skip("chromium is not installed")
	}
	res := knownResult()
	c, _ := ParseCriterion("p95<1s")
	res.Criteria = CheckAll([]Criterion{c}, res)
	dir := t.TempDir()
	page := filepath.Join(dir, "report.html")
	var b bytes.Buffer
	if err := WriteHTML(&b, res); err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(b.Bytes(), []byte("http://")) && bytes.Contains(b.Bytes(), []byte("<script src")) {
		t.Fatal("the report loads a script from the network")
	}
	if err := os.WriteFile(page, b.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	args := []string{"--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--user-data-dir=" + filepath.Join(dir, "profile"),
		"--proxy-server=127.0.0.1:9", "--enable-logging=stderr", "--v=0", "--window-size=1280,2400"}
	dom, err := exec.CommandContext(ctx, chromium, append(args, "--dump-dom", "file://"+page)...).Output()
	if err != nil {
		t.Fatalf("chromium --dump-dom: %v", err)
	}
	cmd := exec.CommandContext(ctx, chromium, append(args, "--screenshot="+filepath.Join(dir, "report.png"), "file://"+page)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("chromium --screenshot: %v\n%s", err, stderr.String())
	}
	if m := regexp.MustCompile(`(?m)^.*CONSOLE.*$`).FindAllString(stderr.String(), -1); len(m) > 0 {
		t.Fatalf("console messages:\n%s", strings.Join(m, "\n"))
	}
	html := string(dom)
	if !strings.Contains(html, `data-charts="5"`) {
		t.Fatalf("not every chart drew: %s", regexp.MustCompile(`<body[^>]*>`).FindString(html))
	}
	if n := strings.Count(html, `class="series" d="M`); n < 8 {
		t.Fatalf("%d chart lines drawn, want 8 or more", n)
	}
	// What the script rendered (the DOM holds the script's text too, so
	// look for the elements it made).
	for _, want := range []string{"<td>GET /a</td>", "<td>GET /b</td>", "<td>status 429</td>", "<td>p95&lt;1s</td>",
		`<div id="verdict"><p class="pass">verdict: PASS</p></div>`, "<b>1,010</b>", "<td>1,000</td>"} {
		if !strings.Contains(html, want) {
			t.Errorf("the page lacks %s", want)
		}
	}
	if st, err := os.Stat(filepath.Join(dir, "report.png")); err != nil || st.Size() < 10_000 {
		t.Fatalf("screenshot: %v", err)
	}
	if out := os.Getenv("THRIVE_REPORT_SCREENSHOT"); out != "" {
		png, _ := os.ReadFile(filepath.Join(dir, "report.png"))
		_ = os.WriteFile(out, png, 0o600)
	}
}
