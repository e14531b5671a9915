// Package scenarios holds the lab's scenario files, embedded into the binary.
package scenarios

import "embed"

// FS holds every *.yaml scenario of this directory.
//
//go:embed *.yaml
var FS embed.FS
