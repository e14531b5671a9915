//go:build !linux

package local

import (
	"os/exec"
	"syscall"
)

// startChild starts cmd in a process group of its own (a Ctrl-C on the
// terminal reaches the lab, which then stops its children in order). These
// systems have no parent-death signal: the children of a lab that is
// killed outright run on until `anonlab cleanup` stops them (the run's
// ledger entry names them).
func startChild(cmd *exec.Cmd, _ bool) error {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	return cmd.Start()
}
