package app

import (
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/thrive-loadtest/thrive/internal/hint"
	"github.com/thrive-loadtest/thrive/replay"
	"github.com/thrive-loadtest/thrive/report"
)

// The application layer is the only code that names thrive's flags: the
// engines return typed errors and data, and these hints say, in the
// command line's words, what the user can do about them.
const (
	portsHint    = "use --source-ips 127.0.0.2-127.0.0.9, fewer users per process (--shard i/n), or --shared-pool"
	memoryHint   = "run the users as shards (--shard i/n) on several machines"
	filesHint    = "run the users as shards in several processes (--shard i/n with a shared --start-at), or use --shared-pool"
	noTargetHint = "give one with --target, such as --target http://127.0.0.1:8000"
	mapHint      = "give --target only"
	lagHint      = "use fewer users per process (--shard i/n) or more cores"
	unfilledHint = "give the values with --users-file users.csv, or record with --keep-secrets"
	partialHint  = "--partial merges them all the same, and says so in the merged result"
)

// Hint returns err with the advice its kind calls for (hint.With), or err
// as it is.
func Hint(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, replay.ErrNoTarget):
		return hint.With(err, noTargetHint)
	case errors.Is(err, replay.ErrMapNoHost):
		return hint.With(err, mapHint)
	}
	if _, ok := errors.AsType[*replay.PortsError](err); ok {
		return hint.With(err, portsHint)
	}
	if _, ok := errors.AsType[*replay.MemoryError](err); ok {
		return hint.With(err, memoryHint)
	}
	return err
}

// resultHints are the hints a result's figures call for: the settings
// that would count or end things otherwise.
func resultHints(res *report.Result) []string {
	var out []string
	if res.AsRecorded > 0 {
		out = append(out, "--strict-status counts the 4xx answers that were 4xx when recorded too as failures, as Locust does")
	}
	for _, e := range res.Endpoints {
		if e.EndedBySilence > 0 {
			out = append(out, "--reply-idle sets the silence that ends a WebSocket reply")
			break
		}
	}
	return out
}

// flagOf names the flag, or the command and flag, that changes a setting
// a check's fix names (replay.Setting); "" for one it does not know.
func flagOf(setting string) string {
	switch setting {
	case replay.SetScale:
		return "--scale-time"
	case replay.SetReplyIdle:
		return "--reply-idle"
	case replay.SetCorrelationRules:
		return "--correlation-rules"
	case replay.SetUsersFile:
		return "--users-file"
	case replay.SetKeepSecrets:
		return "thrive capture --keep-secrets"
	case replay.SetIdle:
		return "thrive capture --session-idle"
	}
	return ""
}

// settingsText writes the flags that make settings, with their values:
// "--scale-time 1, or thrive capture --idle".
func settingsText(settings []replay.Setting) string {
	parts := make([]string, len(settings))
	for i, s := range settings {
		f := flagOf(s.Name)
		if f == "" {
			f = s.Name
		}
		if s.Value != "" {
			f += " " + s.Value
		}
		parts[i] = f
	}
	return strings.Join(parts, ", or ")
}

// writeHint writes a hint line.
func writeHint(w io.Writer, h string) { fmt.Fprintf(w, "hint: %s\n", h) }

// writeWarning writes a warning and, when not "", its hint.
func writeWarning(w io.Writer, warning, h string) {
	fmt.Fprintf(w, "warning: %s\n", warning)
	if h != "" {
		writeHint(w, h)
	}
}
