package app

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/x/term"
	"github.com/spf13/cobra"
	"k8s.io/klog/v2"

	"github.com/anonlab/anonlab/cmd/anonlab/tui"
	"github.com/anonlab/anonlab/steps"
)

func newTUI(streams IOStreams) *cobra.Command {
	f := &runFlags{output: "text"}
	cmd := &cobra.Command{
		Use:   "tui [SCENARIO]",
		Short: "Walk through a scenario step by step in a terminal UI (without SCENARIO, pick one)",
		Long: `Walk through a scenario step by step on a real control plane: each step's
explanation, the command a person would type, the request and the answer.
Keys: enter runs the next step, a runs all the rest, r re-runs a failed step,
j/k move through the steps, ? shows every key, q quits after cleaning up.

When standard output is not a terminal, the scenario runs as "anonlab run"
would, with text output.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			return runTUI(c.Context(), streams, f, args)
		},
	}
	f.add(cmd.Flags())
	return cmd
}

// pickOnTerminal is what anonlab does without a subcommand: the picker on
// a terminal, as tui with its flags' defaults, else the help.
func pickOnTerminal(streams IOStreams) func(*cobra.Command, []string) error {
	cmd := newTUI(streams)
	return func(c *cobra.Command, _ []string) error {
		if !isTerminal(streams.Out) {
			return c.Help()
		}
		return cmd.RunE(c, nil)
	}
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(f.Fd())
}

func runTUI(parent context.Context, streams IOStreams, f *runFlags, args []string) error {
	if !isTerminal(streams.Out) {
		if len(args) == 0 {
			return usageError("tui needs a terminal to pick a scenario: give one to print its run as text")
		}
		return runScenario(parent, streams, f, args)
	}
	if err := f.validate(); err != nil {
		return err
	}
	// Everything that can be wrong is found before the screen is taken.
	var sc *steps.Scenario
	var all []*steps.Scenario
	var err error
	if len(args) == 1 {
		sc, err = steps.Load(args[0])
	} else {
		all, err = steps.List()
	}
	if err != nil {
		return err
	}
	b, err := f.newBackend(parent, streams)
	if err != nil {
		return err
	}

	var eng *tui.Engine
	var name string
	start := func(sc *steps.Scenario) tui.Controller {
		name = sc.Name
		eng = tui.Start(parent, sc, b, f.runOptions()...)
		return eng
	}
	var model tea.Model
	if sc != nil {
		model = tui.NewWalkthrough(start(sc))
	} else {
		model = tui.NewPicker(all, f.lang, start)
	}
	// client-go's own complaints (klog, to stderr) would scribble over the
	// screen; what they say reaches the walkthrough as a failed step.
	klog.LogToStderr(false)
	klog.SetOutput(io.Discard)
	p := tea.NewProgram(model, tea.WithOutput(streams.Out), tea.WithoutSignalHandler())
	defer forwardSignals(p)()
	final, err := p.Run()
	if eng == nil {
		return err // the picker was left without a pick
	}

	select {
	case <-eng.Done():
	default:
		fmt.Fprintln(streams.Err, "anonlab: finishing the cleanup…")
	}
	sum := eng.Close()
	if !f.keep || !b.Info().Disposable {
		// The net under the scenario's own cleanup, as in run.
		if derr := b.Destroy(context.WithoutCancel(parent)); derr != nil {
			return derr
		}
	}
	if err != nil {
		return err
	}
	end := "cleaned up"
	if f.keep {
		end = "the cluster runs on (--keep)"
	}
	fmt.Fprintf(streams.Out, "%s: %d passed, %d failed, %d skipped; %s\n", name, sum.Passed, sum.Failed, sum.Skipped, end)
	// A person who quits has not failed; a run that ends on its own has
	// if a step did.
	if w, ok := final.(tui.Walkthrough); ok && w.QuitEarly() || sum.OK() {
		return nil
	}
	return errFailed
}

// forwardSignals makes SIGINT and SIGTERM do what Ctrl-C does on the
// screen: quit after the cleanup, and at once the second time. It returns
// the function that stops forwarding.
func forwardSignals(p *tea.Program) func() {
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	done := make(chan struct{})
	go func() {
		for {
			select {
			case <-done:
				return
			case <-sigs:
				p.Send(tea.KeyPressMsg{Code: 'c', Mod: tea.ModCtrl})
			}
		}
	}()
	return func() {
		signal.Stop(sigs)
		close(done)
	}
}
