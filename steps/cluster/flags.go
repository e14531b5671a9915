package cluster

import "strings"

// ApplyFlags returns args with change applied: flags in change.Remove are
// dropped, flags in change.Set replace any of the same name or are added at
// the end, and FilesDirPlaceholder is replaced by filesDir.
func ApplyFlags(args []string, change APIServerChange, filesDir string) []string {
	drop := map[string]bool{}
	for _, f := range change.Remove {
		drop[FlagName(f)] = true
	}
	for _, f := range change.Set {
		drop[FlagName(f)] = true
	}
	var out []string
	for _, a := range args {
		if !drop[FlagName(a)] {
			out = append(out, a)
		}
	}
	return append(out, change.SetIn(filesDir)...)
}

// FlagName is the name part of "--name=value" (or of "--name").
func FlagName(flag string) string {
	name, _, _ := strings.Cut(flag, "=")
	return name
}

// AnonymousAuth tells from kube-apiserver's flags how it treats requests
// without credentials: "off" (--anonymous-auth=false), "per
// AuthenticationConfiguration" (--authentication-config decides), or "on".
func AnonymousAuth(args []string) string {
	state := "on"
	for _, a := range args {
		switch {
		case a == "--anonymous-auth=false":
			return "off"
		case FlagName(a) == "--authentication-config":
			state = "per AuthenticationConfiguration"
		}
	}
	return state
}

// ShellQuote quotes s as one word for a POSIX shell, leaving plain words
// as they are, for the commands the lab shows.
func ShellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./:=,@%+") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
