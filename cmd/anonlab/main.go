// Command anonlab shows, on a real kube-apiserver, how anonymous requests
// are treated. See README.md.
package main

import "github.com/anonlab/anonlab/cmd/anonlab/app"

func main() { app.Main() }
