package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/onair/onair/internal/auth"
	"github.com/onair/onair/internal/bus"
	"github.com/onair/onair/internal/chat"
	"github.com/onair/onair/internal/cmafstream"
	"github.com/onair/onair/internal/config"
	"github.com/onair/onair/internal/dash"
	"github.com/onair/onair/internal/hls"
	"github.com/onair/onair/internal/hub"
	"github.com/onair/onair/internal/onair"
	"github.com/onair/onair/internal/record"
	"github.com/onair/onair/internal/relay"
	"github.com/onair/onair/internal/rtmp"
	"github.com/onair/onair/internal/stats"
	"github.com/onair/onair/internal/stats/source"
	"github.com/onair/onair/internal/store"
	"github.com/onair/onair/internal/thumb"
	"github.com/onair/onair/internal/transcode"
	"github.com/onair/onair/internal/vod"
	"github.com/onair/onair/internal/web"
	"github.com/onair/onair/internal/webhook"
)

// Server is a running onair: store, hub, RTMP, HLS and web, wired together.
type Server struct {
	Config config.Config
	Logger *slog.Logger

	db            *store.DB
	users         *store.UserService
	sessions      *store.SessionService
	keys          *store.StreamKeyService
	channels      *store.ChannelService
	chatStore     *store.ChatService
	comments      *store.CommentService
	notifications *store.NotificationService
	settings      *store.SettingsService
	bus           bus.Bus
	cluster       *clusterNode // nil on a single node
	hub           *hub.Registry
	cmaf          *cmafstream.Manager
	rtmp          *rtmp.Server
	relay         *relay.Puller // cluster mode only (startRelay)
	hls           *hls.Server
	dash          *dash.Server
	auth          *auth.Authenticator
	chat          *chat.Server
	recordings    *store.RecordingService
	recorder      *record.Recorder
	cleaner       *record.Cleaner
	vod           *vod.Server
	thumbs        *thumb.Thumbnailer
	stats         *stats.Collector
	webhooks      *webhook.Dispatcher
	transcode     *transcode.Manager
	web           *web.Server
	http          *http.Server
	httpLn        net.Listener
	net           netState

	ctx       context.Context
	cancel    context.CancelFunc
	wg        sync.WaitGroup
	events    chan liveEvent
	closeOnce sync.Once
}

type liveEvent struct {
	channel string
	live    bool
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
	s.sessions = store.NewSessionService(s.db)
	s.keys = store.NewStreamKeyService(s.db)
	s.channels = store.NewChannelService(s.db)
	s.chatStore = store.NewChatService(s.db)
	s.comments = store.NewCommentService(s.db)
	s.notifications = store.NewNotificationService(s.db)
	s.settings = store.NewSettingsService(s.db)
	s.recordings = store.NewRecordingService(s.db)
	if err := s.openBus(); err != nil {
		return err
	}

	s.hub = &hub.Registry{
		Logger:      s.Logger.With("component", "hub"),
		GracePeriod: c.GracePeriod.D(),
		OnStart: func(name string) {
			s.onStream(name, true)
			s.recorder.StreamStarted(name) // nil-safe until the recorder exists
		},
		OnEnd: func(name string) { s.onStream(name, false) },
	}
	if c.GracePeriod == 0 {
		s.hub.GracePeriod = -1
	}
	if err := s.hub.Start(); err != nil {
		return fmt.Errorf("start hub: %w", err)
	}
	s.wg.Add(1)
	go s.runEvents()

	// The RTMP server is built here (and started last) because stats read its connections.
	s.rtmp = &rtmp.Server{
		Addr:             c.RTMPAddr,
		Hub:              s.hub,
		Authorize:        s.authorizeKey,
		Logger:           s.Logger.With("component", "rtmp"),
		WriteMergeWindow: c.RTMPWriteMerge.D(),
	}
	if c.PublishAuth.URL != "" {
		pa := &webhook.PublishAuth{
			URL:      c.PublishAuth.URL,
			Secret:   c.PublishAuth.Secret,
			Timeout:  c.PublishAuth.Timeout.D(),
			FailOpen: c.PublishAuth.FailOpen,
			Logger:   s.Logger.With("component", "publish_auth"),
		}
		s.rtmp.AuthorizePublish = pa.Check
	}
	hlsViewers := &stats.Sessions{Protocol: stats.ProtoHLS, Logger: s.Logger.With("component", "stats")}
	dashViewers := &stats.Sessions{Protocol: stats.ProtoDASH, Logger: s.Logger.With("component", "stats")}
	s.stats = &stats.Collector{
		Source:  &source.Media{Hub: s.hub, RTMP: s.rtmp},
		HLS:     hlsViewers,
		DASH:    dashViewers,
		DB:      s.db.SQL(),
		Version: Version,
		Logger:  s.Logger.With("component", "stats"),
	}
	if err := s.stats.Start(); err != nil {
		return fmt.Errorf("start stats: %w", err)
	}

	s.cmaf = &cmafstream.Manager{
		Hub:    s.hub,
		Logger: s.Logger.With("component", "cmaf"),
		OnSegment: func(name string, sg *cmafstream.Segment) {
			s.stats.ObserveCMAFSegment(name, source.CMAFBuildTime(sg))
		},
	}
	if err := s.cmaf.Start(); err != nil {
		return fmt.Errorf("start cmaf: %w", err)
	}
	storage, err := s.recordingStorage(ctx)
	if err != nil {
		return err
	}
	s.recorder = &record.Recorder{
		CMAF:         s.cmaf,
		Channels:     s.channels,
		Recordings:   s.recordings,
		Storage:      storage,
		Node:         s.recordingNode(),
		MinFreeBytes: int64(c.RecordingMinFreeMB) << 20,
		Logger:       s.Logger.With("component", "record"),
	}
	if err := s.recorder.Start(); err != nil {
		return fmt.Errorf("start recorder: %w", err)
	}
	s.cleaner = &record.Cleaner{
		Recordings: s.recordings,
		Storage:    storage,
		MaxAge:     c.RecordingsMaxAge.D(),
		MaxBytes:   int64(c.RecordingsMaxMB) << 20,
		UserQuota:  int64(c.RecordingsUserQuotaMB) << 20,
		Logger:     s.Logger.With("component", "retention"),
	}
	if err := s.cleaner.Start(); err != nil {
		return fmt.Errorf("start retention cleaner: %w", err)
	}
	s.vod = &vod.Server{
		Recordings:  s.recordings,
		Storage:     storage,
		Live:        s.recorder,
		CurrentUser: func(r *http.Request) *onair.User { return auth.UserFromContext(r.Context()) },
		Logger:      s.Logger.With("component", "vod"),
	}
	if err := s.vod.Start(); err != nil {
		return fmt.Errorf("start vod: %w", err)
	}

	if err := s.startTranscode(); err != nil {
		return err
	}
	s.hls = &hls.Server{
		Hub:             s.hub,
		CMAF:            s.cmaf,
		PartTarget:      s.cmaf.PartTarget,
		Logger:          s.Logger.With("component", "hls"),
		SegmentDuration: c.HLSSegmentDuration.D(),
		PlaylistSize:    c.HLSPlaylistSize,
		Viewers:         hlsViewers,
		OnRequest:       s.stats.ObserveHLS,
		OnSegment:       s.stats.ObserveTSSegment,
		Renditions:      s.hlsRenditions,
	}
	if err := s.hls.Start(); err != nil {
		return fmt.Errorf("start hls: %w", err)
	}
	s.dash = &dash.Server{
		CMAF:          s.cmaf,
		PartTarget:    s.cmaf.PartTarget,
		SegmentTarget: s.cmaf.SegmentTarget,
		Logger:        s.Logger.With("component", "dash"),
		Viewers:       dashViewers,
		OnRequest:     s.stats.ObserveDASH,
		Renditions:    s.dashRenditions,
	}
	if err := s.dash.Start(); err != nil {
		return fmt.Errorf("start dash: %w", err)
	}

	if err := s.startThumbs(); err != nil {
		return err
	}

	s.auth = &auth.Authenticator{
		Sessions: s.sessions,
		Accounts: s.users,
		Logger:   s.Logger.With("component", "auth"),
	}
	s.chat = &chat.Server{
		Chat:        s.chatStore,
		Channels:    s.channels,
		Bus:         s.bus,
		CurrentUser: func(r *http.Request) *onair.User { return auth.UserFromContext(r.Context()) },
		Logger:      s.Logger.With("component", "chat"),
	}
	if err := s.chat.Start(); err != nil {
		return fmt.Errorf("start chat: %w", err)
	}
	s.stats.ChatClients = s.chat.Clients
	s.stats.ChatConnections = s.chat.Connections

	if len(c.Webhooks) > 0 {
		wc := webhook.Config{}
		for _, w := range c.Webhooks {
			wc.Endpoints = append(wc.Endpoints, webhook.Endpoint{URL: w.URL, Secret: w.Secret, Events: w.Events})
		}
		s.webhooks = &webhook.Dispatcher{Config: wc, Bus: s.eventBus(), Logger: s.Logger.With("component", "webhook")}
		if err := s.webhooks.Start(); err != nil {
			return fmt.Errorf("start webhooks: %w", err)
		}
	}

	s.web = &web.Server{
		Logger:           s.Logger.With("component", "web"),
		SiteName:         c.SiteName,
		Channels:         s.channels,
		Live:             &directory{hub: s.hub, viewers: s.stats.Viewers},
		Users:            s.users,
		Accounts:         s.users,
		Sessions:         s.sessions,
		Keys:             s.keys,
		Platform:         &followEvents{PlatformChannelService: s.channels, bus: s.bus, logger: s.Logger},
		Comments:         s.comments,
		Notifications:    s.notifications,
		Settings:         s.settings,
		Recordings:       s.recordings,
		Posters:          s.vod,
		Auth:             s.auth,
		LoginThrottle:    &auth.Throttle{Max: 5, Window: 15 * time.Minute},
		LoginIPThrottle:  &auth.Throttle{Max: 20, Window: 15 * time.Minute},
		RegisterThrottle: &auth.Throttle{Max: 10, Window: time.Hour},
		Chat:             s.chat,
		HLS:              s.hls,
		DASH:             s.dash,
		EndStream:        s.hub.End,
		Transcoding:      s.transcodeStatus,
		Version:          Version,
	}
	if c.PublicRTMPURL != "" {
		u := strings.TrimRight(c.PublicRTMPURL, "/")
		s.web.RTMPURL = func(*http.Request) string { return u }
	} else {
		s.web.RTMPURL = s.rtmpURLFor
	}
	s.web.RTMPSURL = s.rtmpsURLFor
	if err := s.web.Start(); err != nil {
		return fmt.Errorf("start web: %w", err)
	}

	if err := s.startCluster(ctx); err != nil {
		return err
	}
	if err := s.prepareNet(); err != nil {
		return err
	}
	if err := s.rtmp.Start(); err != nil {
		return fmt.Errorf("start rtmp: %w", err)
	}
	if err := s.startHTTP(); err != nil {
		return err
	}
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
	if s.relay != nil {
		s.relay.Close()
	}
	if s.transcode != nil {
		s.transcode.Close() // before the hub: children are killed, not left to finish
	}
	s.closeThumbs()
	if s.hub != nil {
		s.hub.Close()
	}
	if s.hls != nil {
		s.hls.Close()
	}
	if s.dash != nil {
		s.dash.Close()
	}
	if s.recorder != nil {
		s.recorder.Close()
	}
	if s.cleaner != nil {
		s.cleaner.Close()
	}
	if s.cmaf != nil {
		s.cmaf.Close()
	}
	if s.chat != nil {
		s.chat.Close()
	}
	if s.webhooks != nil {
		s.webhooks.Close()
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
	s.closeHTTPS(timeout)
	if s.cancel != nil {
		s.cancel()
	}
	s.wg.Wait()
	if s.stats != nil {
		s.stats.Close()
	}
	s.closeCluster()
	if s.bus != nil {
		s.closeBus()
	}
	if s.db != nil {
		if err := s.db.Close(); err != nil {
			s.Logger.Error("close database", "err", err)
		}
	}
}

// rtmpURLFor returns the RTMP server URL to show broadcasters: the host they reached the
// web site on, with the RTMP port when it is not the default 1935.
func (s *Server) rtmpURLFor(r *http.Request) string {
	var a net.Addr
	if s.rtmp != nil {
		a = s.rtmp.ListenAddr()
	}
	return ingestURL("rtmp", r.Host, a, 1935, "/live")
}

// rtmpsURLFor returns the RTMPS server URL to show broadcasters, or "" when RTMPS is
// off: the host of public_rtmp_url when set (unless it is RTMPS already), else the host
// they reached the web site on, with the RTMPS port when it is not the default 443.
func (s *Server) rtmpsURLFor(r *http.Request) string {
	if s.rtmp == nil || s.rtmp.TLSListenAddr() == nil {
		return ""
	}
	host, path := r.Host, "/live"
	if pub := s.Config.PublicRTMPURL; pub != "" {
		u, err := url.Parse(pub)
		if err != nil || u.Scheme != "rtmp" {
			return "" // rtmps already, shown as the server URL
		}
		host, path = u.Host, strings.TrimRight(u.Path, "/")
	}
	return ingestURL("rtmps", host, s.rtmp.TLSListenAddr(), 443, path)
}

// ingestURL returns scheme://HOST[:PORT]PATH for the host of hostport (a Host header,
// "localhost" when empty) and the port of listen, left out when it is the scheme's
// default.
func ingestURL(scheme, hostport string, listen net.Addr, defaultPort int, path string) string {
	host := hostport
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	if host == "" {
		host = "localhost"
	}
	if strings.Contains(host, ":") && !strings.HasPrefix(host, "[") {
		host = "[" + host + "]"
	}
	if a, ok := listen.(*net.TCPAddr); ok && a.Port != defaultPort {
		host += ":" + strconv.Itoa(a.Port)
	}
	return scheme + "://" + host + path
}

// authorizeKey maps a stream key to its channel name.
func (s *Server) authorizeKey(ctx context.Context, key onair.StreamKey) (string, error) {
	ch, err := s.keys.ChannelByStreamKey(ctx, key)
	if err != nil {
		return "", err
	}
	return ch.Name, nil
}

// onStream runs inside the hub when a stream starts or ends: it must not block, so the
// DB writes and notifications happen in runEvents.
func (s *Server) onStream(name string, live bool) {
	select {
	case s.events <- liveEvent{channel: name, live: live, at: time.Now()}:
	default:
		s.Logger.Warn("live event dropped", "channel", name, "live", live)
	}
}

// runEvents records live state, notifies followers, publishes live/offline on the bus,
// and prunes expired sessions.
func (s *Server) runEvents() {
	defer s.wg.Done()
	prune := time.NewTicker(time.Hour)
	defer prune.Stop()
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-prune.C:
			ctx, cancel := context.WithTimeout(s.ctx, time.Minute)
			if n, err := s.sessions.PruneSessions(ctx); err != nil {
				s.Logger.Warn("prune sessions", "err", err)
			} else if n > 0 {
				s.Logger.Info("sessions pruned", "count", n)
			}
			cancel()
		case ev := <-s.events:
			ctx, cancel := context.WithTimeout(s.ctx, 10*time.Second)
			s.handleLiveEvent(ctx, ev)
			cancel()
		}
	}
}

func (s *Server) handleLiveEvent(ctx context.Context, ev liveEvent) {
	typ := bus.TypeOffline
	if ev.live {
		typ = bus.TypeLive
		if err := s.channels.MarkChannelLive(ctx, ev.channel, ev.at); err != nil {
			s.Logger.Warn("mark channel live", "channel", ev.channel, "err", err)
		}
		if err := s.notifyFollowers(ctx, ev.channel); err != nil {
			s.Logger.Warn("notify followers", "channel", ev.channel, "err", err)
		}
	}
	if err := s.bus.Publish(ctx, "live", bus.Event{Type: typ, Channel: ev.channel}); err != nil && !errors.Is(err, bus.ErrClosed) {
		s.Logger.Warn("publish live event", "channel", ev.channel, "err", err)
	}
	if !ev.live {
		s.clusterStreamEnded(ctx, ev.channel)
	}
}

// notifyFollowers leaves a "live" notification for every follower of the channel.
func (s *Server) notifyFollowers(ctx context.Context, channel string) error {
	ids, err := s.channels.FollowerIDs(ctx, channel)
	if err != nil || len(ids) == 0 {
		return err
	}
	text := channel + " is live"
	if info, err := s.channels.ChannelInfo(ctx, channel); err == nil && info.Title != "" {
		text += ": " + info.Title
	}
	return s.notifications.Notify(ctx, ids, onair.Notification{Kind: "live", Channel: channel, Text: text})
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
