package main

import (
	"context"
	"net"
	"os"

	"github.com/backprop-dev/backprop/classroom"
	"github.com/backprop-dev/backprop/live"
)

// serveLive starts the browser view of a training job at addr (the
// --serve flag) and returns the store to publish into. The listener is
// opened here so that a busy address fails the command at once; the server
// stops with ctx.
func serveLive(ctx context.Context, addr string) (*live.Store, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	go classroom.Serve(ctx, ln, live.Default.Handler(), os.Stderr)
	return live.Default, nil
}
