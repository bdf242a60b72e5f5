package app

import (
	"context"
	"fmt"
	"time"

	"github.com/onair/onair/internal/bus"
	"github.com/onair/onair/internal/dash"
	"github.com/onair/onair/internal/hls"
	"github.com/onair/onair/internal/hub"
	"github.com/onair/onair/internal/transcode"
	"github.com/onair/onair/internal/web"
)

// startTranscode starts the transcoding ladder when the site turns it on. Without ffmpeg
// onair runs anyway, passthrough only, and says so once here (and on the admin page).
// Channels whose owner turned transcoding off are not transcoded.
func (s *Server) startTranscode() error {
	c := s.Config.Transcode
	ladder := make([]transcode.Rung, len(c.Ladder))
	for i, r := range c.Ladder {
		ladder[i] = transcode.Rung{Name: r.Name, Height: r.Height, Kbps: r.Kbps}
	}
	m := &transcode.Manager{
		Hub:         s.hub,
		FFmpeg:      c.FFmpeg,
		Ladder:      ladder,
		Encoder:     c.Encoder,
		Preset:      c.Preset,
		VAAPIDevice: c.VAAPIDevice,
		Logger:      s.Logger.With("component", "transcode"),
	}
	if err := m.Start(); err != nil {
		return fmt.Errorf("start transcoding: %w", err)
	}
	s.transcode = m
	if !c.Enabled {
		return nil
	}
	if !m.Available() {
		s.Logger.Warn("ffmpeg not found: transcoding is off, streams are passthrough only",
			"ffmpeg", c.FFmpeg, "err", m.LookupError())
		return nil
	}
	sub, err := s.bus.Subscribe("live", 64)
	if err != nil {
		return fmt.Errorf("start transcoding: %w", err)
	}
	s.wg.Add(1)
	go s.runTranscode(sub)
	return nil
}

// runTranscode starts a transcoder for each stream that goes live on this node when its
// channel has transcoding on.
func (s *Server) runTranscode(sub bus.Subscription) {
	defer s.wg.Done()
	defer sub.Close()
	for {
		select {
		case <-s.ctx.Done():
			return
		case ev, ok := <-sub.C():
			if !ok {
				return
			}
			if ev.Type != bus.TypeLive {
				continue
			}
			st := s.hub.Stream(ev.Channel)
			if st == nil || st.Source() != hub.SourceIngest {
				continue // ended already, or live on another node
			}
			ctx, cancel := context.WithTimeout(s.ctx, 5*time.Second)
			info, err := s.channels.ChannelInfo(ctx, ev.Channel)
			cancel()
			if err != nil {
				s.Logger.Warn("transcode: read channel", "channel", ev.Channel, "err", err)
				continue
			}
			if info.Transcode {
				s.transcode.Transcode(ev.Channel)
			}
		}
	}
}

// hlsRenditions lists a stream's renditions for the HLS multivariant playlist.
func (s *Server) hlsRenditions(name string) []hls.Rendition {
	rs := s.transcode.Renditions(name)
	out := make([]hls.Rendition, len(rs))
	for i, r := range rs {
		bw := r.Kbps * 1000
		if r.Height > 0 {
			bw += 128000 // the audio beside the video
		}
		out[i] = hls.Rendition{Name: r.Name, Stream: r.Stream, Width: r.Width, Height: r.Height, Bandwidth: bw}
	}
	return out
}

// dashRenditions lists a stream's video renditions for the DASH manifest.
func (s *Server) dashRenditions(name string) []dash.Rendition {
	var out []dash.Rendition
	for _, r := range s.transcode.Renditions(name) {
		if r.Height > 0 {
			out = append(out, dash.Rendition{Name: r.Name, Stream: r.Stream, Bandwidth: r.Kbps * 1000})
		}
	}
	return out
}

// transcodeStatus is the transcoding state for the admin page.
func (s *Server) transcodeStatus() web.TranscodeStatus {
	c := s.Config.Transcode
	st := web.TranscodeStatus{Enabled: c.Enabled, Available: s.transcode.Available(), Encoder: c.Encoder}
	for _, r := range c.Ladder {
		st.Ladder = append(st.Ladder, r.Name)
	}
	for _, t := range s.transcode.Status() {
		st.Transcoders = append(st.Transcoders, web.Transcoder{Channel: t.Channel, PID: t.PID, CPUPercent: t.CPUPercent,
			Renditions: t.Renditions, Encoder: t.Encoder, Restarts: t.Restarts, Uptime: t.Uptime})
	}
	return st
}
