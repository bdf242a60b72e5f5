package loadgen

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"time"

	"github.com/bluenviron/gortmplib"
	"github.com/bluenviron/gortmplib/pkg/message"
)

// dialRTMP connects, handshakes and sends publish or play. The connection is closed when
// ctx ends, which unblocks any read or write.
func dialRTMP(ctx context.Context, raw string, publish bool, timeout time.Duration) (*gortmplib.Client, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("invalid rtmp url")
	}
	// gortmplib sends the whole path as the app unless the stream name is in the fragment:
	// send "rtmp://host/app/name" as app "app" and stream "name", like OBS and ffmpeg do.
	if u.Fragment == "" {
		if app, name, ok := strings.Cut(strings.TrimPrefix(u.Path, "/"), "/"); ok && name != "" {
			u.Path, u.RawPath, u.Fragment = "/"+app, "", name
		}
	}
	ictx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var conn net.Conn
	c := &gortmplib.Client{
		URL:     u,
		Publish: publish,
		DialContext: func(dctx context.Context, network, address string) (net.Conn, error) {
			nc, err := (&net.Dialer{}).DialContext(dctx, network, address)
			if err == nil {
				conn = nc
				// Handshake and commands honour the setup timeout.
				_ = nc.SetDeadline(time.Now().Add(timeout))
			}
			return nc, err
		},
	}
	if err := c.Initialize(ictx); err != nil {
		if conn != nil {
			conn.Close()
		}
		return nil, stripURL(err)
	}
	_ = conn.SetDeadline(time.Time{})
	context.AfterFunc(ctx, func() { conn.Close() })
	return c, nil
}

// stripURL drops a *url.Error's URL (it may hold a stream key).
func stripURL(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// runPublisher sends clip to pubURL at real-time pace, looping with continued timestamps,
// until ctx ends. Sequence headers go out once.
func runPublisher(ctx context.Context, cfg *Config, pubURL string, clip *Clip, r *ClientResult, live *liveCounters) {
	start := time.Now()
	c, err := dialRTMP(ctx, pubURL, true, cfg.ConnectTimeout)
	if err != nil {
		r.fail(ctx, err)
		return
	}
	defer c.Close()
	r.ConnectMS = ms(time.Since(start))
	live.active.Add(1)
	defer live.active.Add(-1)
	t0 := time.Now()
	var loopOff time.Duration
	var maxLate time.Duration
	var sent time.Duration
	timer := time.NewTimer(0)
	defer timer.Stop()
	defer func() {
		r.MaxLateMS = ms(maxLate)
		r.MediaS = sent.Seconds()
		r.WallS = time.Since(t0).Seconds()
		r.KeepUp = ratio(r.MediaS, r.WallS)
		r.KeptUp = r.Err == "" && maxLate <= cfg.MaxLag
	}()
	for loop := 0; ; loop++ {
		for i := range clip.msgs {
			m := &clip.msgs[i]
			if loop > 0 && m.header {
				continue
			}
			dts := m.dts + loopOff
			if d := time.Until(t0.Add(dts)); d > 0 {
				timer.Reset(d)
				select {
				case <-ctx.Done():
					return
				case <-timer.C:
				}
			} else if -d > maxLate {
				maxLate = -d
			}
			var msg message.Message
			var n int
			if m.video != nil {
				v := *m.video
				v.DTS = dts + cfg.TimestampOffset
				msg, n = &v, len(v.AU)
				if !m.header {
					r.Frames++
				}
			} else {
				a := *m.audio
				a.DTS = dts + cfg.TimestampOffset
				msg, n = &a, len(a.AU)
			}
			if err := c.Write(msg); err != nil {
				r.fail(ctx, err)
				return
			}
			if r.TTFFMS < 0 {
				r.TTFFMS = ms(time.Since(start))
			}
			sent = dts
			r.Bytes += int64(n)
			live.bytes.Add(int64(n))
		}
		loopOff += clip.Duration
	}
}

// runPlayer plays name until ctx ends and measures time to first frame and keep-up.
func runPlayer(ctx context.Context, cfg *Config, playURL string, r *ClientResult, live *liveCounters) {
	start := time.Now()
	c, err := dialRTMP(ctx, playURL, false, cfg.ConnectTimeout)
	if err != nil {
		r.fail(ctx, err)
		return
	}
	defer c.Close()
	r.ConnectMS = ms(time.Since(start))
	live.active.Add(1)
	defer live.active.Add(-1)
	var firstAt time.Time
	var firstDTS, lastDTS time.Duration
	var prev uint64
	defer func() {
		if firstAt.IsZero() {
			return
		}
		r.WallS = time.Since(firstAt).Seconds()
		r.MediaS = (lastDTS - firstDTS).Seconds()
		r.KeepUp = ratio(r.MediaS, r.WallS)
		r.KeptUp = r.Err == "" && r.WallS-r.MediaS <= cfg.MaxLag.Seconds()
	}()
	for {
		msg, err := c.Read()
		if n := c.BytesReceived(); n != prev {
			live.bytes.Add(int64(n - prev))
			r.Bytes += int64(n - prev)
			prev = n
		}
		if err != nil {
			r.fail(ctx, err)
			return
		}
		var dts time.Duration
		switch m := msg.(type) {
		case *message.Video:
			if m.Type != message.VideoTypeAU {
				continue
			}
			dts = m.DTS
		case *message.VideoExCodedFrames:
			dts = m.DTS
		case *message.VideoExFramesX:
			dts = m.DTS
		default:
			continue
		}
		r.Frames++
		if firstAt.IsZero() {
			firstAt = time.Now()
			firstDTS = dts
			r.TTFFMS = ms(firstAt.Sub(start))
			live.playing.Add(1)
		}
		lastDTS = max(lastDTS, dts)
	}
}
