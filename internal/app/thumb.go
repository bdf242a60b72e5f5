package app

import (
	"fmt"

	"github.com/onair/onair/internal/thumb"
)

// startThumbs starts the live thumbnailer (issue 8) unless thumbnail_interval is 0.
// Without ffmpeg it runs empty: /thumb/ answers 404 and the cards show their placeholder.
func (s *Server) startThumbs() error {
	if s.Config.ThumbnailInterval == 0 {
		return nil
	}
	t := &thumb.Thumbnailer{
		Hub:      s.hub,
		Interval: s.Config.ThumbnailInterval.D(),
		Logger:   s.Logger.With("component", "thumb"),
	}
	if err := t.Start(); err != nil {
		return fmt.Errorf("start thumbnails: %w", err)
	}
	s.thumbs = t
	return nil
}

// closeThumbs stops the thumbnailer and its ffmpeg processes.
func (s *Server) closeThumbs() {
	if s.thumbs != nil {
		s.thumbs.Close()
	}
}

// thumbHandler serves /thumb/{channel}.jpg and /thumb/{channel}/preview.jpg (404 when off).
func (s *Server) thumbHandler() *thumb.Thumbnailer {
	if s.thumbs == nil {
		return &thumb.Thumbnailer{} // no thumbnails: every request is a 404
	}
	return s.thumbs
}
