package audit

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"

	"github.com/fsnotify/fsnotify"
)

type followOptions struct {
	offset int64 // < 0: the end of the file
}

// FollowOption configures Follow.
type FollowOption func(*followOptions)

// FromOffset starts reading at byte offset n (0: the whole log) instead of
// at the log's end.
func FromOffset(n int64) FollowOption { return func(o *followOptions) { o.offset = n } }

// Tail follows one audit log. Its channel carries one Observation per
// request logged after the start, in the log's order; it is closed when
// the context ends or reading fails (Err says which).
type Tail struct {
	c    chan Observation
	done chan struct{}
	mu   sync.Mutex
	err  error
}

// C is the channel of observations.
func (t *Tail) C() <-chan Observation { return t.c }

// Done is closed once the tail has stopped (after C is closed).
func (t *Tail) Done() <-chan struct{} { return t.done }

// Err is why the tail stopped: nil while it runs and after its context
// ended; otherwise the failure (a line that is no audit event, a watch
// error).
func (t *Tail) Err() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.err
}

// Follow tails the audit log at path from its current end (see
// FromOffset), emitting an Observation as soon as its line is complete.
// It waits on file-system notifications (inotify), not on a timer. The
// file may not exist yet (it is read from its start once created), and if
// it is replaced (a log rotation) the new file is read from its start.
// The directory must exist.
func Follow(ctx context.Context, path string, opts ...FollowOption) (*Tail, error) {
	o := followOptions{offset: -1}
	for _, opt := range opts {
		opt(&o)
	}
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return nil, fmt.Errorf("follow %s: %w", path, err)
	}
	// The directory, not the file: a rotation replaces the file, and the
	// file may not be there yet.
	if err := w.Add(filepath.Dir(path)); err != nil {
		w.Close()
		return nil, fmt.Errorf("follow %s: watch its directory: %w", path, err)
	}
	r := &reader{path: path}
	// Opened after the watch is set, so no write between the two is lost.
	if err := r.open(o.offset); err != nil {
		w.Close()
		return nil, fmt.Errorf("follow %s: %w", path, err)
	}
	t := &Tail{c: make(chan Observation, 64), done: make(chan struct{})}
	go func() {
		err := t.run(ctx, w, r)
		t.mu.Lock()
		t.err = err
		t.mu.Unlock()
		r.close()
		w.Close()
		close(t.c)
		close(t.done)
	}()
	return t, nil
}

func (t *Tail) run(ctx context.Context, w *fsnotify.Watcher, r *reader) error {
	// What the file holds from the offset, and what was written since.
	if err := t.drain(ctx, r); err != nil {
		return err
	}
	name := filepath.Clean(r.path)
	for {
		maybeReplaced := false
		select {
		case <-ctx.Done():
			return nil
		case err, ok := <-w.Errors:
			if !ok {
				return nil
			}
			if !errors.Is(err, fsnotify.ErrEventOverflow) {
				return fmt.Errorf("follow %s: %w", r.path, err)
			}
			// Notifications were lost while the consumer was slow. Every
			// read goes to the end of the file, so read once more; a lost
			// Create is found by looking at the file.
			maybeReplaced = true
		case ev, ok := <-w.Events:
			if !ok {
				return nil
			}
			if filepath.Clean(ev.Name) != name {
				continue
			}
			maybeReplaced = ev.Has(fsnotify.Create)
		}
		// The file read so far is finished before a new one is looked at.
		if err := t.drain(ctx, r); err != nil {
			return err
		}
		if !maybeReplaced {
			continue
		}
		if err := r.reopenIfReplaced(); err != nil {
			return fmt.Errorf("follow %s: %w", r.path, err)
		}
		if err := t.drain(ctx, r); err != nil {
			return err
		}
	}
}

// drain emits every complete line the reader can read now.
func (t *Tail) drain(ctx context.Context, r *reader) error {
	lines, err := r.lines()
	if err != nil {
		return fmt.Errorf("follow %s: %w", r.path, err)
	}
	for _, l := range lines {
		o, ok, err := Decode(l.text)
		if err != nil {
			return fmt.Errorf("follow %s: line at byte %d: %w", r.path, l.offset, err)
		}
		if !ok {
			continue
		}
		select {
		case t.c <- o:
		case <-ctx.Done():
			return nil
		}
	}
	return nil
}

// reader reads the complete lines appended to a file since the last read,
// keeping a partial last line until its newline is written.
type reader struct {
	path    string
	f       *os.File // nil while the file does not exist
	offset  int64    // of the first byte not yet returned in a line
	partial []byte
	midLine bool // opened at the end, inside a line: skip to its end
}

type line struct {
	offset int64
	text   []byte
}

// open opens the file at offset (< 0: its end). A missing file is no
// error: it is opened, from its start, when it is created.
func (r *reader) open(offset int64) error {
	r.partial = nil
	f, err := os.Open(r.path)
	if errors.Is(err, os.ErrNotExist) {
		r.f, r.offset = nil, 0
		return nil
	}
	if err != nil {
		return err
	}
	whence := io.SeekStart
	if offset < 0 {
		offset, whence = 0, io.SeekEnd
	}
	if r.offset, err = f.Seek(offset, whence); err != nil {
		f.Close()
		return fmt.Errorf("seek: %w", err)
	}
	// The end may be inside a line kube-apiserver is writing (the size
	// grows page by page during one write): its rest is no event, skipped.
	r.midLine = false
	if whence == io.SeekEnd && r.offset > 0 {
		last := make([]byte, 1)
		if _, err := f.ReadAt(last, r.offset-1); err != nil {
			f.Close()
			return fmt.Errorf("read: %w", err)
		}
		r.midLine = last[0] != '\n'
	}
	r.f = f
	return nil
}

// reopenIfReplaced opens the file now at path from its start when it is
// another file than the one being read (a rotation).
func (r *reader) reopenIfReplaced() error {
	if r.f != nil {
		open, err := r.f.Stat()
		if err != nil {
			return fmt.Errorf("stat: %w", err)
		}
		now, err := os.Stat(r.path)
		if errors.Is(err, os.ErrNotExist) {
			return nil // gone again; a later Create brings the next one
		}
		if err != nil {
			return fmt.Errorf("stat: %w", err)
		}
		if os.SameFile(open, now) {
			return nil
		}
	}
	r.close()
	return r.open(0)
}

func (r *reader) close() {
	if r.f != nil {
		r.f.Close()
		r.f = nil
	}
}

func (r *reader) lines() ([]line, error) {
	if r.f == nil {
		// Created between the watch and the open, or not yet.
		if err := r.open(0); err != nil || r.f == nil {
			return nil, err
		}
	}
	data, err := io.ReadAll(r.f)
	if err != nil {
		return nil, fmt.Errorf("read: %w", err)
	}
	data = append(r.partial, data...)
	if r.midLine {
		i := bytes.IndexByte(data, '\n')
		if i < 0 {
			r.offset += int64(len(data))
			r.partial = nil
			return nil, nil
		}
		r.offset += int64(i) + 1
		data, r.midLine = data[i+1:], false
	}
	var out []line
	for {
		i := bytes.IndexByte(data, '\n')
		if i < 0 {
			break
		}
		if i > 0 {
			out = append(out, line{offset: r.offset, text: data[:i]})
		}
		r.offset += int64(i) + 1
		data = data[i+1:]
	}
	r.partial = append([]byte(nil), data...)
	return out, nil
}
