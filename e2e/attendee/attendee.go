// Package attendee plays a workshop attendee in tests of hands-on mode: one
// bash shell, kept open like a terminal, into which the commands the lab
// shows are typed verbatim, after eval "$(anonlab env)".
package attendee

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/anonlab/anonlab/steps/cluster/binaries"
)

// Shell is the attendee's bash.
type Shell struct {
	cmd     *exec.Cmd
	stdin   io.WriteCloser
	out     *bufio.Scanner
	anonlab string
	// EnvArgs are added to `anonlab env` (--run ID, where several labs may
	// run).
	EnvArgs []string
	n       int
}

// Start opens bash with env added to this process's environment; anonlab
// is the binary whose `env` the shell evaluates before each command, and
// path lists directories put first on $PATH (kubectl).
func Start(anonlab string, env []string, path ...string) (*Shell, error) {
	cmd := exec.Command("bash", "--norc", "--noprofile")
	cmd.Env = append(os.Environ(), env...)
	cmd.Env = append(cmd.Env, "PATH="+strings.Join(append(path, filepath.Dir(anonlab), os.Getenv("PATH")), string(os.PathListSeparator)))
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start bash: %w", err)
	}
	sc := bufio.NewScanner(stdout)
	sc.Buffer(nil, 1<<20)
	s := &Shell{cmd: cmd, stdin: stdin, out: sc, anonlab: anonlab}
	if _, _, err := s.Type("exec 2>&1"); err != nil {
		return nil, err
	}
	return s, nil
}

// Type runs command in the shell as typed, after eval "$(anonlab env)",
// and returns what it printed and its exit status.
func (s *Shell) Type(command string) (output string, status int, err error) {
	s.n++
	marker := "__attendee_done_" + strconv.Itoa(s.n)
	script := command + "\necho; echo " + marker + " $?\n"
	if s.n > 1 {
		script = `eval "$(` + strings.Join(append([]string{filepath.Base(s.anonlab), "env"}, s.EnvArgs...), " ") + `)"` + "\n" + script
	}
	if _, err := io.WriteString(s.stdin, script); err != nil {
		return "", 0, fmt.Errorf("type into bash: %w", err)
	}
	var b strings.Builder
	for s.out.Scan() {
		line := s.out.Text()
		if rest, ok := strings.CutPrefix(line, marker+" "); ok {
			status, _ := strconv.Atoi(rest)
			return strings.TrimSuffix(b.String(), "\n"), status, nil
		}
		b.WriteString(line + "\n")
	}
	return b.String(), 0, fmt.Errorf("bash ended: %v", s.out.Err())
}

// Close ends the shell.
func (s *Shell) Close() error {
	s.stdin.Close()
	return s.cmd.Wait()
}

// KubectlPath is where the attendee's kubectl comes from: the one `make
// kind-node-image` leaves in the binaries cache for version, else the
// one on $PATH (nil then); an error when there is none.
func KubectlPath(version string) ([]string, error) {
	if root, err := binaries.CacheRoot(); err == nil {
		dir := filepath.Join(root, version)
		if _, err := os.Stat(filepath.Join(dir, "kubectl")); err == nil {
			return []string{dir}, nil
		}
	}
	if _, err := exec.LookPath("kubectl"); err != nil {
		return nil, errors.New("the attendee types kubectl commands: no kubectl in the binaries cache (make kind-node-image builds one) or on $PATH")
	}
	return nil, nil
}

// Event holds what an attendee's test reads of a hands-on run's JSON
// lines (anonlab run --hands-on --output json).
type Event struct {
	Event     string `json:"event"`
	Step      string `json:"step"`
	Command   string `json:"command"`
	User      string `json:"user"`
	Status    int    `json:"status"`
	Decision  string `json:"decision"`
	Reason    string `json:"reason"`
	UserAgent string `json:"userAgent"`
	Matched   bool   `json:"matched"`
	Result    string `json:"result"`
	Error     string `json:"error"`
	Failed    *int   `json:"failed"`
}

// Play runs `anonlab run ARGS --hands-on --output json` with env added,
// and an attendee in this package's Shell who types, for each waiting
// event, its command as shown; before it, detour (if not nil) may type
// something else and says whether to type the shown command too. logf
// gets each command and what it printed. Play returns every event, and the
// run's error with what it wrote on stderr.
func Play(anonlab string, args, env, path []string, detour func(typeIt func(string), step string) bool, logf func(string, ...any)) ([]Event, error) {
	cmd := exec.Command(anonlab, append(append([]string{"run"}, args...), "--hands-on", "--output", "json")...)
	cmd.Env = append(os.Environ(), env...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	defer func() { _ = cmd.Process.Kill() }()
	sh, err := Start(anonlab, env, path...)
	if err != nil {
		return nil, err
	}
	defer func() { _ = sh.Close() }()
	var typeErr error
	typeIt := func(command string) {
		out, status, err := sh.Type(command)
		if err != nil && typeErr == nil {
			typeErr = err
		}
		logf("$ %s\n%s\n(exit %d)", command, out, status)
	}
	var events []Event
	sc := bufio.NewScanner(stdout)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var e Event
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			return events, fmt.Errorf("not a JSON line: %q: %w", sc.Text(), err)
		}
		events = append(events, e)
		if e.Event == "waiting" && (detour == nil || detour(typeIt, e.Step)) {
			typeIt(e.Command)
		}
	}
	if err := cmd.Wait(); err != nil {
		return events, fmt.Errorf("anonlab run --hands-on: %w; stderr:\n%s", err, stderr.String())
	}
	return events, typeErr
}
