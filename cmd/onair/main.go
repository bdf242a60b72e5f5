// Command onair is a self-hosted live-streaming server: RTMP in, HLS and RTMP out, and a
// web site around it, in one binary.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/onair/onair/internal/app"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := app.Stdio().Run(ctx, os.Args[1:])
	stop()
	os.Exit(code)
}
