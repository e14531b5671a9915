// Package manifests holds the Kubernetes objects and configuration files
// the scenarios apply, embedded into the binary.
package manifests

import "embed"

// FS holds every *.yaml file of this directory.
//
//go:embed *.yaml
var FS embed.FS
