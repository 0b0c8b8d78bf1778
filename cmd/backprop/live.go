package main

import (
	"context"
	"net"
	"os"

	"github.com/backprop-dev/backprop/classroom"
	"github.com/backprop-dev/backprop/live"
)

// serveLive starts the browser view of a training job at addr (the
// --serve flag) and returns the store to publish into. The whole classroom
// is served, as by `backprop serve`, with the job shown at /train (the page
// watches it; it starts no jobs of its own). The listener is opened here so
// that a busy address fails the command at once; the server stops with
// ctx.
func serveLive(ctx context.Context, addr string) (*live.Store, error) {
	problems, err := classroom.DefaultProblems(nil)
	if err != nil {
		return nil, err
	}
	srv, err := classroom.New(classroom.Options{Problems: problems, Live: live.Default})
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	classroom.Announce(os.Stderr, ln.Addr(), "/train")
	go classroom.Serve(ctx, ln, srv, nil)
	return live.Default, nil
}
