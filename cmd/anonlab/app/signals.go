package app

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/anonlab/anonlab/steps/cluster"
)

// signalContext is cancelled by the first SIGINT or SIGTERM, so that the
// run stops and cleans up; a second signal exits at once.
func signalContext(parent context.Context, streams IOStreams) (context.Context, func()) {
	if parent == nil {
		parent = context.Background()
	}
	ctx, cancel := context.WithCancel(parent)
	ch := make(chan os.Signal, 2)
	signal.Notify(ch, os.Interrupt, syscall.SIGTERM)
	done := make(chan struct{})
	go func() {
		select {
		case <-done:
			return
		case sig := <-ch:
			fmt.Fprintf(streams.Err, "\nanonlab: %s: stopping and cleaning up (press Ctrl-C again to exit at once)\n", sig)
			cancel()
		}
		select {
		case <-done:
		case <-ch:
			fmt.Fprintln(streams.Err, "anonlab: exiting without cleanup; run 'anonlab cleanup' to remove what is left")
			os.Exit(130)
		}
	}()
	return ctx, func() {
		signal.Stop(ch)
		close(done)
		cancel()
	}
}

// progressPrinter prints backend progress to w, at most every 5 seconds
// unless the phase changes: a build reports every package it compiles.
func progressPrinter(w io.Writer) func(cluster.Progress) {
	var last time.Time
	var phase string
	return func(p cluster.Progress) {
		if p.Phase == phase && !p.Done && time.Since(last) < 5*time.Second {
			return
		}
		phase, last = p.Phase, time.Now()
		fmt.Fprintln(w, "… "+p.Line())
	}
}
