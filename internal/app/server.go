package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/onair/onair/internal/config"
	"github.com/onair/onair/internal/hls"
	"github.com/onair/onair/internal/hub"
	"github.com/onair/onair/internal/onair"
	"github.com/onair/onair/internal/rtmp"
	"github.com/onair/onair/internal/store"
	"github.com/onair/onair/internal/web"
)

// Server is a running onair: store, hub, RTMP, HLS and web, wired together.
type Server struct {
	Config config.Config
	Logger *slog.Logger

	db       *store.DB
	users    *store.UserService
	keys     *store.StreamKeyService
	channels *store.ChannelService
	hub      *hub.Registry
	rtmp     *rtmp.Server
	hls      *hls.Server
	web      *web.Server
	http     *http.Server
	httpLn   net.Listener

	ctx    context.Context
	cancel context.CancelFunc
	wg        sync.WaitGroup
	events    chan liveEvent
	closeOnce sync.Once
}

type liveEvent struct {
	channel string
	at      time.Time
}

// Open starts every component. On error, what was started is closed again.
func (s *Server) Open(ctx context.Context) (err error) {
	defer func() {
		if err != nil {
			s.Close()
		}
	}()
	c := s.Config
	s.ctx, s.cancel = context.WithCancel(context.WithoutCancel(ctx))
	s.events = make(chan liveEvent, 256)

	if err := os.MkdirAll(c.Data, 0o750); err != nil {
		return fmt.Errorf("create data directory: %w", err)
	}
	if s.db, err = openDB(ctx, c, s.Logger); err != nil {
		return err
	}
	s.users = store.NewUserService(s.db)
	s.keys = store.NewStreamKeyService(s.db)
	s.channels = store.NewChannelService(s.db)

	s.hub = &hub.Registry{
		Logger:      s.Logger.With("component", "hub"),
		GracePeriod: c.GracePeriod.D(),
		OnStart:     s.onStreamStart,
	}
	if c.GracePeriod == 0 {
		s.hub.GracePeriod = -1
	}
	if err := s.hub.Start(); err != nil {
		return fmt.Errorf("start hub: %w", err)
	}
	s.wg.Add(1)
	go s.runEvents()

	s.hls = &hls.Server{
		Hub:             s.hub,
		Logger:          s.Logger.With("component", "hls"),
		SegmentDuration: c.HLSSegmentDuration.D(),
		PlaylistSize:    c.HLSPlaylistSize,
	}
	if err := s.hls.Start(); err != nil {
		return fmt.Errorf("start hls: %w", err)
	}

	s.web = &web.Server{
		Logger:   s.Logger.With("component", "web"),
		SiteName: c.SiteName,
		Channels: s.channels,
		Live:     &directory{hub: s.hub},
		HLS:      s.hls,
		Version:  Version,
	}
	if c.PublicRTMPURL != "" {
		u := strings.TrimRight(c.PublicRTMPURL, "/")
		s.web.RTMPURL = func(*http.Request) string { return u }
	}
	if err := s.web.Start(); err != nil {
		return fmt.Errorf("start web: %w", err)
	}

	s.rtmp = &rtmp.Server{
		Addr:      c.RTMPAddr,
		Hub:       s.hub,
		Authorize: s.authorizeKey,
		Logger:    s.Logger.With("component", "rtmp"),
	}
	if err := s.rtmp.Start(); err != nil {
		return fmt.Errorf("start rtmp: %w", err)
	}

	s.httpLn, err = net.Listen("tcp", c.HTTPAddr)
	if err != nil {
		return fmt.Errorf("listen http: %w", err)
	}
	s.http = &http.Server{
		Handler:           s.web,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(s.Logger.With("component", "http").Handler(), slog.LevelWarn),
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		if err := s.http.Serve(s.httpLn); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.Logger.Error("http server stopped", "err", err)
		}
	}()
	s.Logger.Info("onair started", "version", Version, "rtmp_addr", s.RTMPAddr().String(),
		"http_addr", s.HTTPAddr().String(), "data", c.Data, "db", redactDSN(c.DB))
	return nil
}

// RTMPAddr returns the bound RTMP address.
func (s *Server) RTMPAddr() net.Addr { return s.rtmp.ListenAddr() }

// HTTPAddr returns the bound HTTP address.
func (s *Server) HTTPAddr() net.Addr { return s.httpLn.Addr() }

// Hub returns the live hub (for tests and tools).
func (s *Server) Hub() *hub.Registry { return s.hub }

// Close shuts down in order: no new publishers or players, streams end (players get
// end-of-stream, live playlists get EXT-X-ENDLIST), HTTP drains, then the DB closes.
func (s *Server) Close() {
	s.closeOnce.Do(s.close)
}

func (s *Server) close() {
	timeout := s.Config.ShutdownTimeout.D()
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	if s.rtmp != nil {
		s.rtmp.Close()
	}
	if s.hub != nil {
		s.hub.Close()
	}
	if s.hls != nil {
		s.hls.Close()
	}
	if s.http != nil {
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		if err := s.http.Shutdown(ctx); err != nil {
			s.Logger.Warn("http shutdown", "err", err)
			_ = s.http.Close()
		}
		cancel()
	} else if s.httpLn != nil {
		_ = s.httpLn.Close()
	}
	if s.cancel != nil {
		s.cancel()
	}
	s.wg.Wait()
	if s.db != nil {
		if err := s.db.Close(); err != nil {
			s.Logger.Error("close database", "err", err)
		}
	}
}

// authorizeKey maps a stream key to its channel name.
func (s *Server) authorizeKey(ctx context.Context, key onair.StreamKey) (string, error) {
	ch, err := s.keys.ChannelByStreamKey(ctx, key)
	if err != nil {
		return "", err
	}
	return ch.Name, nil
}

// onStreamStart runs inside the hub: it must not block, so the DB write happens in runEvents.
func (s *Server) onStreamStart(name string) {
	select {
	case s.events <- liveEvent{channel: name, at: time.Now()}:
	default:
		s.Logger.Warn("live event dropped", "channel", name)
	}
}

func (s *Server) runEvents() {
	defer s.wg.Done()
	for {
		select {
		case <-s.ctx.Done():
			return
		case ev := <-s.events:
			ctx, cancel := context.WithTimeout(s.ctx, 5*time.Second)
			if err := s.channels.MarkChannelLive(ctx, ev.channel, ev.at); err != nil {
				s.Logger.Warn("mark channel live", "channel", ev.channel, "err", err)
			}
			cancel()
		}
	}
}

// openDB opens the store named by the config, creating the secret key on first run.
func openDB(ctx context.Context, c config.Config, logger *slog.Logger) (*store.DB, error) {
	if err := os.MkdirAll(c.Data, 0o750); err != nil {
		return nil, fmt.Errorf("create data directory: %w", err)
	}
	secret, err := store.ReadOrCreateSecret(filepath.Join(c.Data, "secret.key"))
	if err != nil {
		return nil, fmt.Errorf("secret key: %w", err)
	}
	db := &store.DB{DSN: c.DB, Secret: secret, Logger: logger.With("component", "store")}
	if err := db.Open(ctx); err != nil {
		return nil, fmt.Errorf("open database: %w", err)
	}
	return db, nil
}

// redactDSN hides a password in a DSN for logs.
func redactDSN(dsn string) string {
	if i := strings.Index(dsn, "://"); i >= 0 {
		rest := dsn[i+3:]
		if at := strings.LastIndex(rest, "@"); at >= 0 {
			if colon := strings.Index(rest[:at], ":"); colon >= 0 {
				return dsn[:i+3] + rest[:colon] + ":REDACTED" + rest[at:]
			}
		}
	}
	return dsn
}
