// Package app is anonlab's command line: cobra commands over the steps
// engine. Only Main exits; Run is what tests call.
package app

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/anonlab/anonlab/steps"
	"github.com/anonlab/anonlab/steps/cluster"
)

// Exit codes (docs/architecture.md).
const (
	ExitOK       = 0
	ExitFailed   = 1
	ExitBadUsage = 2
)

// IOStreams are the command's standard streams.
type IOStreams struct {
	In       io.Reader
	Out, Err io.Writer
}

// Main runs the command line with the process's streams and exits.
func Main() {
	// A closed pipe (anonlab run ... | head) must not kill the process
	// before its cleanup: writes fail instead, and the run goes on to clean
	// up.
	signal.Ignore(syscall.SIGPIPE)
	os.Exit(Run(IOStreams{In: os.Stdin, Out: os.Stdout, Err: os.Stderr}, os.Args[1:]))
}

// exitError carries an exit code out of a command.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

// usageError marks bad usage: exit 2, nothing started.
func usageError(format string, args ...any) error {
	return &exitError{code: ExitBadUsage, err: fmt.Errorf(format, args...)}
}

// errFailed is returned when a run ended with a failed step: the report
// already said why.
var errFailed = &exitError{code: ExitFailed, err: errors.New("a step failed")}

// Run executes the command line and returns the exit code. A panic that
// escapes a command (the engine turns one inside a step into a failed
// step) exits 1 with its stack, after the deferred cleanups of the command
// have run.
func Run(streams IOStreams, args []string) (code int) {
	defer func() {
		if p := recover(); p != nil {
			fmt.Fprintf(streams.Err, "anonlab: internal error: %v\n%s", p, debug.Stack())
			code = ExitFailed
		}
	}()
	root := newRoot(streams)
	root.SetArgs(args)
	err := root.Execute()
	if err == nil {
		return ExitOK
	}
	var ee *exitError
	code = ExitFailed
	switch {
	case errors.As(err, &ee):
		code = ee.code
	case errors.Is(err, steps.ErrInvalidScenario), errors.Is(err, cluster.ErrNotAvailable):
		code = ExitBadUsage
	case isCobraUsage(err):
		code = ExitBadUsage
	}
	if err != errFailed {
		fmt.Fprintln(streams.Err, "anonlab: "+err.Error())
	}
	return code
}

func newRoot(streams IOStreams) *cobra.Command {
	root := &cobra.Command{
		Use:   "anonlab",
		Short: "See how kube-apiserver treats anonymous requests, on a real control plane",
		Long: `anonlab walks through how kube-apiserver treats requests without credentials:
the 403 for system:anonymous, the RBAC grant that lets anonymous list
namespaces, and the 401 once --anonymous-auth=false is set, on a real
control plane (local processes or kind).`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetOut(streams.Out)
	root.SetErr(streams.Err)
	root.SetIn(streams.In)
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return &exitError{code: ExitBadUsage, err: err} })
	root.AddCommand(newList(streams))
	root.AddCommand(newRun(streams))
	root.AddCommand(newBinaries(streams))
	root.AddCommand(newPack(streams))
	root.AddCommand(newUnpack(streams))
	root.AddCommand(newTUI(streams))
	root.RunE = pickOnTerminal(streams)
	root.AddCommand(newStatus(streams))
	root.AddCommand(newCleanup(streams))
	root.AddCommand(newEnv(streams))
	root.AddCommand(newVersion(streams))
	root.Version = version()
	root.SetVersionTemplate(versionText()) // --version says what `anonlab version` says
	root.AddCommand(newExport(streams))
	root.AddCommand(newMatrix(streams))
	return root
}

// isCobraUsage recognises cobra's own errors about arguments and
// subcommands, which it returns as plain errors.
func isCobraUsage(err error) bool {
	msg := err.Error()
	for _, prefix := range []string{"unknown command", "accepts ", "requires ", "invalid argument"} {
		if strings.HasPrefix(msg, prefix) {
			return true
		}
	}
	return false
}
