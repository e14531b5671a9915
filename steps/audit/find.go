package audit

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// ErrNotObserved is returned by Find when no observation matched in time.
var ErrNotObserved = errors.New("not observed in the audit log")

// UserAgent is the User-Agent the lab sends with the requests of step
// stepID in run runID, "anonlab/<run-id>/<step-id>", so that their
// observations can be told from any other client's.
func UserAgent(runID, stepID string) string {
	return "anonlab/" + runID + "/" + stepID
}

// SentWith matches the observations of requests sent with User-Agent ua.
func SentWith(ua string) func(Observation) bool {
	return func(o Observation) bool { return o.UserAgent == ua }
}

// Find receives from obs (a Tail's C) until an observation matches and
// returns it. The others it receives are passed to skipped, if not nil, so
// that a caller can still report them. It gives up with ErrNotObserved
// after within, with the context's error when ctx ends, and with an error
// when obs is closed.
func Find(ctx context.Context, obs <-chan Observation, match func(Observation) bool, within time.Duration, skipped func(Observation)) (Observation, error) {
	timer := time.NewTimer(within)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return Observation{}, fmt.Errorf("find an audit observation: %w", ctx.Err())
		case <-timer.C:
			return Observation{}, fmt.Errorf("find an audit observation: %w within %s", ErrNotObserved, within)
		case o, ok := <-obs:
			if !ok {
				return Observation{}, errors.New("find an audit observation: the audit log is no longer followed")
			}
			if match(o) {
				return o, nil
			}
			if skipped != nil {
				skipped(o)
			}
		}
	}
}
