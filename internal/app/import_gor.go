package app

import (
	"cmp"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/thrive-loadtest/thrive/capture"
	"github.com/thrive-loadtest/thrive/capture/importer"
)

// isGor tells a GoReplay file by its name: .gor or .gor.gz, or a chunk of
// one (requests_0.gor, and requests.gor_0.gz, as GoReplay numbers the
// chunks of requests.gor.gz).
func isGor(path string) bool {
	p := strings.ToLower(path)
	_, _, chunk := gorChunk(path)
	return strings.HasSuffix(p, ".gor") || strings.HasSuffix(p, ".gor.gz") || chunk
}

// gor imports GoReplay files, each exchange as the second of its payloads
// is read: memory holds the payloads waiting for their pair, not the
// files; with Ports, only the exchanges to those servers' ports. The
// trace's target is Target ("" when not given: GoReplay does not write the
// server's address).
func (im *Import) gor() error {
	imp, err := capture.NewImport("gor", im.Target, im.Sink, im.Options...)
	if err != nil {
		return err
	}
	rd := importer.GorReader{Add: imp.Add, Ports: im.Ports}
	var readErr error
	for _, path := range gorChunks(im.Files) {
		readErr = errors.Join(readErr, im.readGor(&rd, path))
	}
	st := rd.End()
	if st.Unanswered > 0 || st.Unasked > 0 {
		fmt.Fprintf(im.Out, "left out: %d requests with no response, %d responses with no request\n", st.Unanswered, st.Unasked)
	}
	if st.Requests > 0 && st.Responses == 0 {
		writeWarning(im.Out, "the GoReplay files hold requests and no responses, which a trace needs",
			"record with gor --input-raw :PORT --input-raw-track-response --output-file requests.gor")
	}
	return errors.Join(readErr, im.close(imp))
}

// readGor reads the GoReplay file at path with rd, and says what it held
// and what of it was left out.
func (im *Import) readGor(rd *importer.GorReader, path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := rd.Read(im.counted(f), path)
	fmt.Fprintf(im.Out, "%s: %d records (%d requests, %d responses), %d exchanges whole, %d incomplete",
		path, st.Records, st.Requests, st.Responses, st.Exchanges, st.Incomplete)
	for _, n := range []struct {
		n    int
		what string
	}{{st.Replayed, "responses to a replay (kind 3) left out"}, {st.NotHTTP, "exchanges not HTTP/1.x left out"},
		{st.OtherPorts, fmt.Sprintf("exchanges to ports other than %v left out", im.Ports)}} {
		if n.n > 0 {
			fmt.Fprintf(im.Out, "; %d %s", n.n, n.what)
		}
	}
	fmt.Fprintln(im.Out)
	return err
}

// gorChunks returns files in the order GoReplay wrote them: the chunks of
// one name (requests_0.gor, requests_1.gor, ..., requests_10.gor) by their
// number, which a shell's sorting of requests_*.gor does not keep, in the
// places the chunks of that name were given; other files where they were.
func gorChunks(files []string) []string {
	out := slices.Clone(files)
	places := map[string][]int{} // a name's chunks' places in files
	for i, f := range files {
		if name, _, ok := gorChunk(f); ok {
			places[name] = append(places[name], i)
		}
	}
	for _, at := range places {
		chunks := make([]string, len(at))
		for j, i := range at {
			chunks[j] = files[i]
		}
		slices.SortStableFunc(chunks, func(a, b string) int {
			_, na, _ := gorChunk(a)
			_, nb, _ := gorChunk(b)
			return cmp.Compare(na, nb)
		})
		for j, i := range at {
			out[i] = chunks[j]
		}
	}
	return out
}

// gorChunk splits a chunk's name into the name GoReplay was given and the
// chunk's number: "requests_3.gor" is "requests.gor" and 3,
// "requests.gor_3.gz" "requests.gor.gz" and 3.
func gorChunk(path string) (name string, n int, ok bool) {
	lower := strings.ToLower(path)
	ext := filepath.Ext(lower)
	if strings.HasSuffix(lower, ".gor.gz") {
		ext = ".gor.gz"
	}
	stem := path[:len(path)-len(ext)]
	i := strings.LastIndexByte(stem, '_')
	if i < 0 || ext != ".gor" && ext != ".gor.gz" && (ext != ".gz" || !strings.HasSuffix(strings.ToLower(stem[:i]), ".gor")) {
		return "", 0, false
	}
	n, err := strconv.Atoi(stem[i+1:])
	if err != nil || n < 0 {
		return "", 0, false
	}
	return stem[:i] + path[len(stem):], n, true
}
