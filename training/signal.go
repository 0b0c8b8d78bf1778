package training

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

// InterruptContext returns a context cancelled by the first Ctrl-C
// (SIGINT) or SIGTERM, so that a Loop stops between two steps and saves
// its checkpoint. The second signal is no longer caught and kills the
// process at once; checkpoint writes are atomic, so that is safe too. stop
// releases the signal handler.
func InterruptContext(parent context.Context) (ctx context.Context, stop context.CancelFunc) {
	if parent == nil {
		parent = context.Background()
	}
	ctx, stop = signal.NotifyContext(parent, os.Interrupt, syscall.SIGTERM)
	go func() {
		<-ctx.Done()
		stop()
	}()
	return ctx, stop
}
