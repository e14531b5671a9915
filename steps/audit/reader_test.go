package audit

import (
	"os"
	"path/filepath"
	"testing"
)

// A line written in pieces is returned once, when its newline is there,
// with its offset in the file.
func TestReaderPartialLines(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "audit.log")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r := &reader{path: path}
	if err := r.open(0); err != nil {
		t.Fatal(err)
	}
	defer r.close()
	steps := []struct {
		write string
		want  []line
	}{
		{"first", nil},
		{" half", nil},
		{"\nsecond\nthi", []line{{0, []byte("first half")}, {11, []byte("second")}}},
		{"rd\n\n", []line{{18, []byte("third")}}},
	}
	for i, s := range steps {
		if _, err := f.WriteString(s.write); err != nil {
			t.Fatal(err)
		}
		got, err := r.lines()
		if err != nil {
			t.Fatalf("write %d: %v", i, err)
		}
		if len(got) != len(s.want) {
			t.Fatalf("after write %d (%q): %d lines %+v, want %+v", i, s.write, len(got), got, s.want)
		}
		for j := range got {
			if got[j].offset != s.want[j].offset || string(got[j].text) != string(s.want[j].text) {
				t.Errorf("after write %d: line %d = %d %q, want %d %q", i, j, got[j].offset, got[j].text, s.want[j].offset, s.want[j].text)
			}
		}
	}
}
