package report

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"
	"time"
)

// TestNoteChange: a change of users goes in the second it was asked in,
// a second with no request made for it, and it survives the result file
// and a merge of shards (at its time from the merged start).
func TestNoteChange(t *testing.T) {
	start := time.Date(2026, 12, 7, 0, 0, 0, 0, time.UTC)
	res := &Result{Start: start, End: start.Add(4 * time.Second), Series: []Second{{Offset: 0, Requests: 1}, {Offset: 1, Requests: 2}, {Offset: 3, Requests: 3}}}
	res.NoteChange(UsersChange{AtS: 2.5, Users: 50, SpawnRate: 5})
	res.NoteChange(UsersChange{AtS: 1.2, Users: 10})
	var offsets []int64
	for _, s := range res.Series {
		offsets = append(offsets, s.Offset)
	}
	if !reflect.DeepEqual(offsets, []int64{0, 1, 2, 3}) || res.Series[2].Requests != 0 ||
		!reflect.DeepEqual(res.Series[2].Changes, []UsersChange{{2.5, 50, 5}}) || !reflect.DeepEqual(res.Series[1].Changes, []UsersChange{{1.2, 10, 0}}) {
		t.Fatalf("series %+v", res.Series)
	}
	var b bytes.Buffer
	if err := res.WriteJSON(&b); err != nil {
		t.Fatal(err)
	}
	var back Result
	if err := json.Unmarshal(b.Bytes(), &back); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back.Series[2].Changes, res.Series[2].Changes) || !bytes.Contains(b.Bytes(), []byte(`"changes": [`)) {
		t.Fatalf("after the file: %+v", back.Series)
	}
	if bytes.Count(b.Bytes(), []byte(`"changes"`)) != 2 {
		t.Errorf("seconds without a change write changes:\n%s", b.String())
	}
}
