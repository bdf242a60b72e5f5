package app

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"

	"github.com/onair/onair/internal/loadgen"
)

// runBench runs the load generator (internal/loadgen) against a running onair on loopback.
func (m *Main) runBench(ctx context.Context, args []string) error {
	var cfg loadgen.Config
	var publish, names, jsonPath string
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(m.Stderr)
	fs.StringVar(&cfg.MediaFile, "clip", "", "FLV clip (H.264 + AAC) the publishers loop at real-time pace")
	fs.StringVar(&publish, "publish", "", "comma-separated publish URLs (rtmp://127.0.0.1/live/KEY), or one with {i}")
	fs.IntVar(&cfg.Publishers, "publishers", 0, "publishers when --publish is a {i} template")
	fs.StringVar(&names, "names", "", "comma-separated play names (usernames), or one with {i}")
	fs.StringVar(&cfg.HTTPBase, "http", loadgen.DefaultHTTPBase, "HTTP base URL of the server")
	fs.IntVar(&cfg.Players, "players", 0, "RTMP players")
	fs.IntVar(&cfg.HLSViewers, "hls", 0, "MPEG-TS HLS viewers")
	fs.StringVar(&cfg.TSPlaylist, "ts-playlist", loadgen.DefaultTSPlaylist, "path of the MPEG-TS playlist ({name}: play name)")
	fs.IntVar(&cfg.LLHLSViewers, "llhls", 0, "LL-HLS viewers")
	fs.DurationVar(&cfg.Duration, "duration", loadgen.DefaultDuration, "run time (at most 1h)")
	fs.DurationVar(&cfg.Ramp, "ramp", loadgen.DefaultRamp, "client start ramp")
	fs.StringVar(&jsonPath, "json", "", "also write the JSON report to this file")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if publish != "" {
		cfg.PublishURLs = strings.Split(publish, ",")
	}
	if names != "" {
		cfg.PlayNames = strings.Split(names, ",")
	}
	rep, err := loadgen.Run(ctx, cfg, m.Stderr)
	if err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	if err := rep.WriteTable(m.Stdout); err != nil {
		return err
	}
	if jsonPath != "" {
		f, err := os.Create(jsonPath)
		if err != nil {
			return fmt.Errorf("bench: %w", err)
		}
		err = rep.WriteJSON(f)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return fmt.Errorf("bench: %w", err)
		}
	}
	if !rep.AllKeptUp() {
		return errors.New("bench: some clients did not keep up (see the table)")
	}
	return nil
}
