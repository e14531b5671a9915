package local

import (
	"os/exec"
	"runtime"
	"sync"
	"syscall"
)

// startChild starts cmd in a process group of its own (a Ctrl-C on the
// terminal reaches the lab, which then stops its children in order). Unless
// the cluster is kept, the kernel also SIGKILLs the child when the lab dies,
// however it dies (kill -9, a crash, a test timeout).
func startChild(cmd *exec.Cmd, dieWithLab bool) error {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if !dieWithLab {
		return cmd.Start()
	}
	cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
	return spawn(cmd)
}

// spawner starts children from one goroutine locked to its OS thread for
// the life of the process. The parent-death signal fires when the thread
// that forked the child exits, not the process (golang/go#27505), and the Go
// runtime ends a thread when a goroutine locked to it returns: a child
// forked from an ordinary goroutine could be killed when some unrelated
// locked goroutine later ends on the same thread. This thread never ends
// before the process does.
var spawner struct {
	once sync.Once
	reqs chan spawnRequest
}

type spawnRequest struct {
	cmd  *exec.Cmd
	done chan<- error
}

func spawn(cmd *exec.Cmd) error {
	spawner.once.Do(func() {
		spawner.reqs = make(chan spawnRequest)
		go func() {
			runtime.LockOSThread() // never unlocked: the thread must outlive every child
			for r := range spawner.reqs {
				r.done <- r.cmd.Start()
			}
		}()
	})
	done := make(chan error, 1)
	spawner.reqs <- spawnRequest{cmd: cmd, done: done}
	return <-done
}
