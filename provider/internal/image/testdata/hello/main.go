// Command hello is a small static program the image tests build into images: it links one
// module dependency, so its build info (and the SBOM made from it) lists a module.
package main

import (
	"context"
	"os"

	"golang.org/x/sync/errgroup"
)

func main() {
	g, _ := errgroup.WithContext(context.Background())
	g.Go(func() error { _, err := os.Stdout.WriteString("hello\n"); return err })
	if g.Wait() != nil {
		os.Exit(1)
	}
}
