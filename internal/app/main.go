// Package app wires onair's concrete components together and implements the command line.
// It is the only package that knows every concrete type.
package app

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"

	"github.com/onair/onair/internal/config"
)

// Version is set at build time with -ldflags "-X github.com/onair/onair/internal/app.Version=…".
var Version = "dev"

// Main runs one onair command. It returns the process exit code.
type Main struct {
	Stdin  io.Reader
	Stdout io.Writer
	Stderr io.Writer
	// Environ is the environment (os.Environ()), read for ONAIR_* settings.
	Environ []string
}

const usage = `onair: a self-hosted live-streaming server.

Usage:
  onair serve [flags]                          run the server
  onair user create NAME [--email E] [--admin] --password-stdin
                                               create a user and its channel; prints the stream key last
  onair user key NAME                          print NAME's stream key
  onair user reset-key NAME                    replace NAME's stream key and print the new one
  onair migrate [flags]                        apply database migrations
  onair bench --clip F --publish URLs --names N [--players N] [--hls N] [--llhls N] [--duration D]
                                               load generator against a server on loopback
  onair version                                print the version

Flags of serve, user and migrate:
  --config FILE      TOML config file
  --data DIR         data directory (default onair-data)
  --db DSN           sqlite:PATH (default sqlite:DATA/onair.db), postgres://… or mysql://…
  --rtmp-addr ADDR   RTMP listen address (default :1935)
  --http-addr ADDR   HTTP listen address (default :8080)
  --log-level LEVEL  debug, info, warn or error
Cluster flags of serve (see docs/deploy/cluster.md):
  --nats URL               NATS server(s): joins a cluster (needs a postgres:// or mysql:// --db)
  --node NAME              this node's unique name (default: the host name)
  --advertise-rtmp H:P     where other nodes reach this node's RTMP (default: --rtmp-addr)
  --advertise-http H:P     where other nodes reach this node's HTTP (default: --http-addr)
Every setting can also come from the environment as ONAIR_<NAME> (ONAIR_DATA, ONAIR_DB, ONAIR_RTMP_ADDR, …).
`

// Run runs the command in args (without the program name).
func (m *Main) Run(ctx context.Context, args []string) int {
	if len(args) == 0 {
		fmt.Fprint(m.Stderr, usage)
		return 2
	}
	var err error
	switch args[0] {
	case "serve":
		err = m.runServe(ctx, args[1:])
	case "user":
		err = m.runUser(ctx, args[1:])
	case "migrate":
		err = m.runMigrate(ctx, args[1:])
	case "bench":
		err = m.runBench(ctx, args[1:])
	case "version", "--version", "-version":
		fmt.Fprintln(m.Stdout, "onair", Version)
	case "help", "-h", "--help":
		fmt.Fprint(m.Stdout, usage)
	default:
		fmt.Fprintf(m.Stderr, "onair: unknown command %q\n\n%s", args[0], usage)
		return 2
	}
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 2
		}
		fmt.Fprintln(m.Stderr, "onair:", err)
		return 1
	}
	return 0
}

// loadConfig builds the configuration: defaults < file < env < flags.
// fs must already be parsed; set holds the flags given on the command line.
func (m *Main) loadConfig(fs *flag.FlagSet, configPath string) (config.Config, error) {
	c := config.Default()
	if err := config.Load(&c, configPath, m.Environ); err != nil {
		return c, err
	}
	var errs []error
	fs.Visit(func(f *flag.Flag) {
		key := strings.ReplaceAll(f.Name, "-", "_")
		if key == "config" || !settingFlags[f.Name] {
			return
		}
		if err := c.Set(key, f.Value.String()); err != nil {
			errs = append(errs, fmt.Errorf("--%s: %w", f.Name, err))
		}
	})
	if err := errors.Join(errs...); err != nil {
		return c, err
	}
	if err := c.Validate(); err != nil {
		return c, fmt.Errorf("invalid configuration:\n%w", err)
	}
	return c, nil
}

// settingFlags are the flags that map onto config keys.
var settingFlags = map[string]bool{
	"data": true, "db": true, "rtmp-addr": true, "http-addr": true, "log-level": true,
	"nats": true, "node": true, "advertise-rtmp": true, "advertise-http": true,
}

// newFlagSet returns a flag set with the config flags shared by every command.
func (m *Main) newFlagSet(name string) (*flag.FlagSet, *string) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(m.Stderr)
	configPath := fs.String("config", "", "TOML config file")
	d := config.Default()
	fs.String("data", d.Data, "data directory")
	fs.String("db", "", "database DSN (default sqlite:DATA/onair.db)")
	fs.String("rtmp-addr", d.RTMPAddr, "RTMP listen address")
	fs.String("http-addr", d.HTTPAddr, "HTTP listen address")
	fs.String("log-level", d.LogLevel, "log level: debug, info, warn or error")
	fs.String("nats", "", "NATS server URL(s): run as a cluster node")
	fs.String("node", "", "cluster node name (default: the host name)")
	fs.String("advertise-rtmp", "", "host:port other nodes reach this node's RTMP on")
	fs.String("advertise-http", "", "host:port other nodes reach this node's HTTP on")
	return fs, configPath
}

// parseInterspersed parses flags that may come before or after positional arguments.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}

func newLogger(c config.Config, w io.Writer) *slog.Logger {
	var lvl slog.Level
	_ = lvl.UnmarshalText([]byte(c.LogLevel))
	opts := &slog.HandlerOptions{Level: lvl}
	if c.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// Stdio returns a Main on the process's standard streams and environment.
func Stdio() *Main {
	return &Main{Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr, Environ: os.Environ()}
}
