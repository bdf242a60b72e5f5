package app

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/netip"

	"github.com/onair/onair/internal/auth"
	"github.com/onair/onair/internal/bus"
	"github.com/onair/onair/internal/onair"
	"github.com/onair/onair/internal/stats"
	"github.com/onair/onair/internal/webhook"
)

// routes puts the operator endpoints (/stat, /metrics, /api/v1/stats…) in front of the
// web site. They share the web's session cookie (auth middleware) for their access checks.
func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	operator := func(h http.Handler) http.Handler {
		return s.auth.Middleware(s.allowOperator(h))
	}
	admin := func(h http.Handler) http.Handler {
		return s.auth.Middleware(requireUser(func(u *onair.User, _ *http.Request) bool { return u.IsAdmin }, h))
	}
	mux.Handle("GET /stat", statCSP(operator(&stats.StatHandler{Collector: s.stats})))
	mux.Handle("GET /stat.xsl", statCSP(stats.StatXSLHandler{}))
	mux.Handle("GET /stat.js", statCSP(stats.StatJSHandler{}))
	mux.Handle("GET /metrics", operator(s.stats.MetricsHandler()))
	mux.Handle("GET /api/v1/stats", admin(&stats.StatsHandler{Collector: s.stats}))
	mux.Handle("GET /api/v1/stats/history", admin(&stats.HistoryHandler{Collector: s.stats}))
	mux.Handle("GET /api/v1/stats/streams/{name}/history", s.auth.Middleware(requireUser(
		func(u *onair.User, r *http.Request) bool { return u.IsAdmin || u.Username == r.PathValue("name") },
		&stats.StreamHistoryHandler{Collector: s.stats})))
	// Replays: media without auth (like /hls/), the JSON API behind the session middleware.
	mux.Handle("/vod/", s.vod)
	vodAPI := s.auth.Middleware(s.vod)
	mux.Handle("GET /api/v1/channels/{username}/recordings", vodAPI)
	mux.Handle("GET /api/v1/recordings/{id}", vodAPI)
	mux.Handle("PATCH /api/v1/recordings/{id}", vodAPI)
	mux.Handle("DELETE /api/v1/recordings/{id}", vodAPI)
	mux.Handle("/thumb/", s.thumbHandler())
	mux.Handle("/", s.web)
	return mux
}

// allowOperator lets site admins and clients from the stat_allow networks through.
func (s *Server) allowOperator(next http.Handler) http.Handler {
	var nets []netip.Prefix
	for _, n := range s.Config.StatAllow {
		if p, err := netip.ParsePrefix(n); err == nil {
			nets = append(nets, p.Masked())
		}
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if u := auth.UserFromContext(r.Context()); u != nil && u.IsAdmin {
			next.ServeHTTP(w, r)
			return
		}
		if host, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
			if ip, err := netip.ParseAddr(host); err == nil {
				ip = ip.Unmap()
				for _, p := range nets {
					if p.Contains(ip) {
						next.ServeHTTP(w, r)
						return
					}
				}
			}
		}
		writeAPIError(w, http.StatusForbidden, onair.EFORBIDDEN, "Only site admins and allowed networks may read this.")
	})
}

// requireUser answers 401 to anonymous requests and 403 when ok says no.
func requireUser(ok func(*onair.User, *http.Request) bool, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u := auth.UserFromContext(r.Context())
		switch {
		case u == nil:
			writeAPIError(w, http.StatusUnauthorized, onair.EUNAUTHORIZED, "Log in first.")
		case !ok(u, r):
			writeAPIError(w, http.StatusForbidden, onair.EFORBIDDEN, "You may not read this.")
		default:
			next.ServeHTTP(w, r)
		}
	})
}

func writeAPIError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"error": map[string]string{"code": code, "message": msg}})
}

// followEvents publishes a bus event for every new follow (webhooks listen to it).
type followEvents struct {
	onair.PlatformChannelService
	bus    bus.Bus
	logger *slog.Logger
}

func (f *followEvents) Follow(ctx context.Context, actor *onair.User, channel string) error {
	if actor == nil {
		return f.PlatformChannelService.Follow(ctx, actor, channel)
	}
	following, _ := f.IsFollowing(ctx, actor.ID, channel)
	if err := f.PlatformChannelService.Follow(ctx, actor, channel); err != nil {
		return err
	}
	if following {
		return nil
	}
	data, _ := json.Marshal(map[string]string{"follower": actor.Username})
	err := f.bus.Publish(ctx, webhook.TopicFollow, bus.Event{Type: webhook.TypeFollow, Channel: channel, Data: data})
	if err != nil && !errors.Is(err, bus.ErrClosed) {
		f.logger.Warn("publish follow event", "channel", channel, "err", err)
	}
	return nil
}
