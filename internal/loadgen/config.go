// Package loadgen is onair's load generator: P publishers that send one FLV file at
// real-time pace, N RTMP players and K HLS viewers (MPEG-TS polling or LL-HLS with
// blocking reloads), all against a server on loopback. It measures per client keep-up,
// time to first frame, latency and errors, prints progress lines and ends with a
// Report (table or JSON). Every run is bounded in time and in client count.
package loadgen

import (
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Hard limits: a run never exceeds them, whatever the Config says.
const (
	MaxClients  = 5000
	MaxDuration = time.Hour
)

// Defaults of the Config fields left zero.
const (
	DefaultHTTPBase         = "http://127.0.0.1:8080"
	DefaultTSPlaylist       = "/hls/{name}/ts/index.m3u8"
	DefaultDuration         = 30 * time.Second
	DefaultRamp             = 5 * time.Second
	DefaultProgressInterval = 5 * time.Second
	DefaultMaxLag           = time.Second
	DefaultConnectTimeout   = 10 * time.Second
)

// Config describes one run.
type Config struct {
	// MediaFile is an FLV file with H.264 (+ AAC), e.g. from
	// `ffmpeg -f lavfi -i testsrc2=size=1280x720:rate=30 -f lavfi -i sine -c:v libx264 -g 60
	// -c:a aac -t 60 -f flv clip.flv`. Required when there are publishers.
	MediaFile string
	// PublishURLs are the RTMP publish URLs, e.g. "rtmp://127.0.0.1:1935/live/{streamKey}",
	// one publisher each. A single URL containing "{i}" is a template expanded to
	// Publishers URLs with i = 0..Publishers-1.
	PublishURLs []string
	// Publishers is the number of publishers when PublishURLs is a template. Default:
	// len(PublishURLs).
	Publishers int
	// PlayNames are the public stream names (usernames) players and viewers watch; index i
	// is the stream published by PublishURLs[i]. Clients are spread round-robin over them.
	// A single name containing "{i}" is expanded like PublishURLs. Default: none (then
	// only publishers run).
	PlayNames []string
	// RTMPBase is the base URL of players: they play RTMPBase + "/" + name.
	// Default: the scheme, host and app of the first publish URL ("rtmp://127.0.0.1:1935/live").
	RTMPBase string
	// HTTPBase is the HLS origin: viewers load HTTPBase + "/hls/{name}/ts/index.m3u8"
	// (TS) or "/hls/{name}/stream.m3u8" (LL-HLS). Default: DefaultHTTPBase.
	HTTPBase string
	// TSPlaylist is the path of a stream's MPEG-TS media playlist under HTTPBase, with
	// "{name}" replaced by the play name; segment URIs are resolved against it. Another
	// server's layout can be given, e.g. "/hls/{name}.m3u8" for nginx-rtmp. Default:
	// DefaultTSPlaylist.
	TSPlaylist string
	// Players is the number of RTMP players.
	Players int
	// HLSViewers is the number of legacy HLS viewers (MPEG-TS playlist polling).
	HLSViewers int
	// LLHLSViewers is the number of LL-HLS viewers (blocking playlist reloads, parts).
	LLHLSViewers int
	// Duration is how long clients run after the publishers started (the ramp included).
	// Default: DefaultDuration; at most MaxDuration.
	Duration time.Duration
	// Ramp spreads the start of players and viewers evenly over this time. Default:
	// DefaultRamp (capped at Duration/2).
	Ramp time.Duration
	// StartDelay is the time between publishers starting and the first player or viewer,
	// so that the streams are live (and HLS has a segment). Default: 2 s (4 s with HLS
	// viewers).
	StartDelay time.Duration
	// ProgressInterval is the time between progress lines. Default:
	// DefaultProgressInterval; negative: none.
	ProgressInterval time.Duration
	// MaxLag is how far a client's received media may fall behind wall time and still count
	// as keeping up (HLS viewers add one target duration). Default: DefaultMaxLag.
	MaxLag time.Duration
	// ConnectTimeout bounds a connection setup or an HTTP request (blocking playlist
	// requests add the part target). Default: DefaultConnectTimeout.
	ConnectTimeout time.Duration
	// TimestampOffset is added to every timestamp publishers send, to start a stream near
	// RTMP's extended timestamp boundary (0xFFFFFF ms) or its 32-bit wrap (2^32 ms,
	// 49.7 days) without waiting that long. Default: 0.
	TimestampOffset time.Duration
}

// withDefaults returns a copy of c with defaults set and URLs expanded, or an error when
// the Config is out of bounds or targets a non-loopback host.
func (c Config) withDefaults() (Config, error) {
	var err error
	if c.PublishURLs, err = expand(c.PublishURLs, c.Publishers); err != nil {
		return c, fmt.Errorf("publish urls: %w", err)
	}
	c.Publishers = len(c.PublishURLs)
	if c.PlayNames, err = expand(c.PlayNames, c.Publishers); err != nil {
		return c, fmt.Errorf("play names: %w", err)
	}
	if c.Players < 0 || c.HLSViewers < 0 || c.LLHLSViewers < 0 {
		return c, fmt.Errorf("negative client count")
	}
	total := c.Publishers + c.Players + c.HLSViewers + c.LLHLSViewers
	if total == 0 {
		return c, fmt.Errorf("no clients")
	}
	if total > MaxClients {
		return c, fmt.Errorf("%d clients exceed the limit of %d", total, MaxClients)
	}
	if c.Players+c.HLSViewers+c.LLHLSViewers > 0 && len(c.PlayNames) == 0 {
		return c, fmt.Errorf("players and viewers need play names")
	}
	if c.Publishers > 0 && c.MediaFile == "" {
		return c, fmt.Errorf("publishers need a media file")
	}
	if c.Duration == 0 {
		c.Duration = DefaultDuration
	}
	if c.Duration < 0 || c.Duration > MaxDuration {
		return c, fmt.Errorf("duration %v outside (0, %v]", c.Duration, MaxDuration)
	}
	if c.Ramp == 0 {
		c.Ramp = DefaultRamp
	}
	c.Ramp = min(max(c.Ramp, 0), c.Duration/2)
	if c.StartDelay == 0 {
		c.StartDelay = 2 * time.Second
		if c.HLSViewers+c.LLHLSViewers > 0 {
			c.StartDelay = 4 * time.Second
		}
	}
	c.StartDelay = min(max(c.StartDelay, 0), c.Duration/2)
	if c.ProgressInterval == 0 {
		c.ProgressInterval = DefaultProgressInterval
	}
	if c.MaxLag <= 0 {
		c.MaxLag = DefaultMaxLag
	}
	if c.ConnectTimeout <= 0 {
		c.ConnectTimeout = DefaultConnectTimeout
	}
	if c.TSPlaylist == "" {
		c.TSPlaylist = DefaultTSPlaylist
	}
	if !strings.HasPrefix(c.TSPlaylist, "/") || !strings.Contains(c.TSPlaylist, "{name}") {
		return c, fmt.Errorf("loadgen: TS playlist path %q must start with / and contain {name}", c.TSPlaylist)
	}
	if c.HTTPBase == "" {
		c.HTTPBase = DefaultHTTPBase
	}
	c.HTTPBase = strings.TrimRight(c.HTTPBase, "/")
	if c.RTMPBase == "" && len(c.PublishURLs) > 0 {
		u, err := url.Parse(c.PublishURLs[0])
		if err == nil {
			app, _, _ := strings.Cut(strings.TrimPrefix(u.Path, "/"), "/")
			c.RTMPBase = u.Scheme + "://" + u.Host + "/" + app
		}
	}
	if c.RTMPBase == "" {
		c.RTMPBase = "rtmp://127.0.0.1:1935/live"
	}
	c.RTMPBase = strings.TrimRight(c.RTMPBase, "/")
	for _, u := range append([]string{c.RTMPBase, c.HTTPBase}, c.PublishURLs...) {
		if err := checkLoopback(u); err != nil {
			return c, err
		}
	}
	return c, nil
}

// expand turns a single "{i}" template into n entries.
func expand(list []string, n int) ([]string, error) {
	if len(list) == 1 && strings.Contains(list[0], "{i}") {
		if n <= 0 {
			return nil, fmt.Errorf("a {i} template needs a count")
		}
		if n > MaxClients {
			return nil, fmt.Errorf("count %d exceeds the limit of %d", n, MaxClients)
		}
		out := make([]string, n)
		for i := range out {
			out[i] = strings.ReplaceAll(list[0], "{i}", strconv.Itoa(i))
		}
		return out, nil
	}
	if n > 0 && len(list) > 0 && len(list) != n {
		return nil, fmt.Errorf("%d entries for a count of %d", len(list), n)
	}
	return list, nil
}

// checkLoopback refuses URLs whose host is not a loopback address or "localhost". The
// error never repeats the URL: publish URLs hold stream keys.
func checkLoopback(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("invalid url")
	}
	switch u.Scheme {
	case "rtmp", "http":
	default:
		return fmt.Errorf("unsupported url scheme %q", u.Scheme)
	}
	host := u.Hostname()
	if host == "localhost" {
		return nil
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("host %q is not a loopback address", host)
	}
	return nil
}
