package audit_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/anonlab/anonlab/steps/audit"
)

// event is an audit log line for a request sent with User-Agent ua.
func event(ua string) string {
	return fmt.Sprintf(`{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"Metadata","auditID":"id-%s","stage":"ResponseComplete","requestURI":"/api","verb":"get","user":{"username":"system:anonymous","groups":["system:unauthenticated"]},"userAgent":%q,"responseStatus":{"metadata":{},"code":403}}`+"\n", ua, ua)
}

func appendTo(t *testing.T, path, text string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(text); err != nil {
		t.Fatal(err)
	}
}

func follow(t *testing.T, path string, opts ...audit.FollowOption) *audit.Tail {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	tail, err := audit.Follow(ctx, path, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return tail
}

// expect receives the next observations and compares their user agents.
func expect(t *testing.T, tail *audit.Tail, uas ...string) {
	t.Helper()
	for _, want := range uas {
		select {
		case o, ok := <-tail.C():
			if !ok {
				t.Fatalf("the tail stopped (%v) before %q", tail.Err(), want)
			}
			if o.UserAgent != want {
				t.Fatalf("observed %q, want %q", o.UserAgent, want)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("%q not observed within 5s", want)
		}
	}
}

func TestFollowFromEnd(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "audit.log")
	appendTo(t, path, event("before"))
	tail := follow(t, path)
	appendTo(t, path, event("a")+event("b"))
	// "before" was there before Follow: the first one seen is "a".
	expect(t, tail, "a", "b")
}

// TestFollowFromEndMidLine: Follow that starts while kube-apiserver is
// writing a line (the file's end inside it) skips that line's rest instead
// of stopping on it as a bad line.
func TestFollowFromEndMidLine(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "audit.log")
	writing := event("writing")
	appendTo(t, path, event("before")+writing[:50])
	tail := follow(t, path)
	appendTo(t, path, writing[50:])
	appendTo(t, path, event("a"))
	expect(t, tail, "a")
	// The rest of the line may also come in pieces.
	path = filepath.Join(t.TempDir(), "audit.log")
	appendTo(t, path, writing[:50])
	tail = follow(t, path)
	appendTo(t, path, writing[50:60])
	appendTo(t, path, writing[60:]+event("b"))
	expect(t, tail, "b")
}

func TestFollowFromOffset(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "audit.log")
	first := event("first")
	appendTo(t, path, first+event("second"))
	tail := follow(t, path, audit.FromOffset(int64(len(first))))
	expect(t, tail, "second")
	tail = follow(t, path, audit.FromOffset(0))
	expect(t, tail, "first", "second")
}

// Lines written in pieces are one observation each (TestReaderPartialLines
// reads between the pieces for sure), and a line of a stage other than the
// last is no observation.
func TestFollowPiecesAndStages(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "audit.log")
	appendTo(t, path, "")
	tail := follow(t, path)
	a := event("a")
	received := strings.Replace(event("received"), "ResponseComplete", "RequestReceived", 1)
	appendTo(t, path, a[:40])
	appendTo(t, path, a[40:len(a)-1])
	appendTo(t, path, "\n"+received+event("b")[:10])
	appendTo(t, path, event("b")[10:])
	expect(t, tail, "a", "b")
}

func TestFollowCreatedLater(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "audit.log")
	tail := follow(t, path)
	appendTo(t, path, event("a"))
	expect(t, tail, "a")
}

// A rotation renames the log and starts a new one: the rest of the old
// one is read, then the new one from its start.
func TestFollowRotation(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "audit.log")
	appendTo(t, path, "")
	tail := follow(t, path)
	appendTo(t, path, event("a"))
	expect(t, tail, "a")
	appendTo(t, path, event("b"))
	if err := os.Rename(path, filepath.Join(dir, "audit-old.log")); err != nil {
		t.Fatal(err)
	}
	appendTo(t, path, event("c"))
	expect(t, tail, "b", "c")
}

func TestFollowStopsOnBadLine(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "audit.log")
	appendTo(t, path, "")
	tail := follow(t, path)
	appendTo(t, path, event("a")+"not an audit event\n")
	expect(t, tail, "a")
	select {
	case o, ok := <-tail.C():
		if ok {
			t.Fatalf("observed %+v after a bad line", o)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the tail did not stop on a bad line within 5s")
	}
	if err := tail.Err(); err == nil || !strings.Contains(err.Error(), fmt.Sprintf("line at byte %d", len(event("a")))) {
		t.Errorf("Err() = %v, want the bad line's offset", err)
	}
}

func TestFollowStopsWithContext(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "audit.log")
	ctx, cancel := context.WithCancel(context.Background())
	tail, err := audit.Follow(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	cancel()
	select {
	case <-tail.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("the tail did not stop within 5s of its context")
	}
	if _, ok := <-tail.C(); ok {
		t.Error("C is not closed after Done")
	}
	if err := tail.Err(); err != nil {
		t.Errorf("Err() = %v after the context ended, want nil", err)
	}
}

func TestFollowMissingDirectory(t *testing.T) {
	t.Parallel()
	if _, err := audit.Follow(context.Background(), filepath.Join(t.TempDir(), "no", "audit.log")); err == nil {
		t.Error("Follow in a missing directory: no error")
	}
}

func TestFind(t *testing.T) {
	t.Parallel()
	ch := make(chan audit.Observation, 3)
	ch <- audit.Observation{UserAgent: "other"}
	ch <- audit.Observation{UserAgent: audit.UserAgent("run", "step"), Code: 403}
	var skipped []string
	o, err := audit.Find(context.Background(), ch, audit.SentWith("anonlab/run/step"), time.Second, func(o audit.Observation) {
		skipped = append(skipped, o.UserAgent)
	})
	if err != nil || o.Code != 403 {
		t.Fatalf("Find = %+v, %v; want the 403", o, err)
	}
	if len(skipped) != 1 || skipped[0] != "other" {
		t.Errorf("skipped %q, want [other]", skipped)
	}

	if _, err := audit.Find(context.Background(), ch, audit.SentWith("x"), 10*time.Millisecond, nil); !errors.Is(err, audit.ErrNotObserved) {
		t.Errorf("Find with nothing to find: %v, want ErrNotObserved", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := audit.Find(ctx, ch, audit.SentWith("x"), time.Minute, nil); !errors.Is(err, context.Canceled) {
		t.Errorf("Find after the context ended: %v, want context.Canceled", err)
	}
	close(ch)
	if _, err := audit.Find(context.Background(), ch, audit.SentWith("x"), time.Minute, nil); err == nil || errors.Is(err, audit.ErrNotObserved) {
		t.Errorf("Find on a closed channel: %v, want an error that says so", err)
	}
}
