package main

import (
	"context"
	"io"
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
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	if err := serveLiveOn(ctx, ln, live.Default, os.Stderr); err != nil {
		ln.Close()
		return nil, err
	}
	return live.Default, nil
}

// serveLiveOn serves the classroom with store's job at /train on ln
// until ctx ends, after writing the view's URL to out.
func serveLiveOn(ctx context.Context, ln net.Listener, store *live.Store, out io.Writer) error {
	problems, err := classroom.DefaultProblems(nil)
	if err != nil {
		return err
	}
	srv, err := classroom.New(classroom.Options{Problems: problems, Live: store})
	if err != nil {
		return err
	}
	classroom.Announce(out, ln.Addr(), "/train")
	go classroom.Serve(ctx, ln, srv, nil)
	return nil
}
