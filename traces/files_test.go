package traces_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/thrive-loadtest/thrive/traces"
	"github.com/thrive-loadtest/thrive/traces/synth"
)

// TestFilesOfATrace: a trace written, inspected, printed as JSON Lines and
// filtered, each from its path.
func TestFilesOfATrace(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "s.thrv")
	if _, err := synth.WriteFile(path, 30, 1); err != nil {
		t.Fatal(err)
	}
	in, err := traces.InspectFile(path, 5)
	if err != nil || in.Sessions != 30 || len(in.TopEndpoints) != 5 {
		t.Fatalf("inspect: %+v, %v", in, err)
	}
	f, err := traces.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	var lines bytes.Buffer
	if err := f.WriteJSONLines(&lines); err != nil {
		t.Fatal(err)
	}
	f.Close()
	n := 0
	sc := bufio.NewScanner(&lines)
	sc.Buffer(nil, 64<<20)
	for ; sc.Scan(); n++ {
		var s traces.Session
		if err := json.Unmarshal(sc.Bytes(), &s); err != nil || s.ID == "" {
			t.Fatalf("line %d: %v", n+1, err)
		}
	}
	if n != 30 || sc.Err() != nil {
		t.Errorf("%d lines, want 30", n)
	}
	chat := filepath.Join(dir, "chat.thrv")
	read, kept, err := traces.FilterFile(path, chat, traces.Filter{Profiles: []string{" chat", ""}})
	if err != nil || read != 30 || kept != in.Profiles["chat"] || kept == 0 {
		t.Fatalf("filter: read %d, kept %d of %d chat sessions: %v", read, kept, in.Profiles["chat"], err)
	}
	for _, tc := range []struct {
		name string
		err  error
		want error
		text string
	}{
		{"inspect a missing file", second(traces.InspectFile(filepath.Join(dir, "none.thrv"), 5)), os.ErrNotExist, "none.thrv"},
		{"inspect a directory", second(traces.InspectFile(dir, 5)), traces.ErrDirectory, dir},
		{"filter over its input", third(traces.FilterFile(path, path, traces.Filter{})), traces.ErrSameFile, path},
		{"filter over its input by another name", third(traces.FilterFile(path, filepath.Join(dir, ".", "s.thrv"), traces.Filter{})), traces.ErrSameFile, "is the input file"},
	} {
		if !errors.Is(tc.err, tc.want) || !strings.Contains(tc.err.Error(), tc.text) {
			t.Errorf("%s: %v, want %v naming %q", tc.name, tc.err, tc.want, tc.text)
		}
	}
	if in2, err := traces.InspectFile(path, 5); err != nil || in2.Sessions != 30 {
		t.Errorf("the trace after the refused filters: %v", err)
	}
}

func second[T any](_ T, err error) error        { return err }
func third[T, U any](_ T, _ U, err error) error { return err }
