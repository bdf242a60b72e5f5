package web

import (
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/onair/onair/internal/onair"
)

// maxChannelReplays is how many replays a channel page lists (newest first).
const maxChannelReplays = 24

// replayCard is a recording as the channel page's list and the replay page show it.
type replayCard struct {
	ID        int64
	URL       string // /@NAME/replays/ID
	Title     string // the recording's title, or "Broadcast of DATE"
	StartedAt time.Time
	Date      string // "14 Mar 2026 11:43 UTC"
	Duration  string // "1:02:03", "4:05"
	Seconds   float64
	Views     int
	Recording bool   // still being written: its playlist is an EVENT playlist
	Failed    bool   // stopped early (Reason says why, to the owner and admins)
	Poster    string // the poster image's address, or "" (channel page list only)
}

func (s *Server) replayCard(rec *onair.Recording) replayCard {
	c := replayCard{
		ID:        rec.ID,
		URL:       replayPath(rec.Channel, rec.ID),
		Title:     rec.Title,
		StartedAt: rec.StartedAt,
		Date:      rec.StartedAt.UTC().Format("2 Jan 2006 15:04 MST"),
		Duration:  clock(rec.Duration),
		Seconds:   rec.Duration.Seconds(),
		Views:     rec.Views,
		Recording: rec.Status == onair.RecordingActive,
		Failed:    rec.Status == onair.RecordingFailed,
	}
	if strings.TrimSpace(c.Title) == "" {
		c.Title = "Broadcast of " + rec.StartedAt.UTC().Format("2 Jan 2006")
	}
	return c
}

// replayPath is the address of a replay's page.
func replayPath(channel string, id int64) string {
	return "/@" + channel + "/replays/" + strconv.FormatInt(id, 10)
}

// replayCards lists the channel's newest replays; none when s.Recordings is nil.
func (s *Server) replayCards(r *http.Request, channel string) ([]replayCard, error) {
	if s.Recordings == nil {
		return nil, nil
	}
	list, err := s.Recordings.RecordingsByChannel(r.Context(), channel, 0, maxChannelReplays)
	if onair.ErrorCode(err) == onair.ENOTFOUND {
		return nil, nil
	} else if err != nil {
		return nil, err
	}
	out := make([]replayCard, len(list))
	for i, rec := range list {
		out[i] = s.replayCard(rec)
		if s.Posters != nil && !out[i].Recording {
			out[i].Poster = s.Posters.PosterPath(r.Context(), rec.ID)
		}
	}
	return out, nil
}

// clock formats a duration as a player does: "4:05", "1:02:03".
func clock(d time.Duration) string {
	if d < 0 {
		d = 0
	}
	sec := int64(d.Round(time.Second) / time.Second)
	h, m, sc := sec/3600, sec/60%60, sec%60
	if h > 0 {
		return fmt.Sprintf("%d:%02d:%02d", h, m, sc)
	}
	return fmt.Sprintf("%d:%02d", m, sc)
}

type replayData struct {
	layoutData
	Name         string // the channel
	ChannelTitle string
	Replay       replayCard
	Src          string // the HLS playlist (EVENT while recording, VOD after)
	Manifest     string // the DASH MPD, once ended
	Download     string // the MP4, once ended
	Base         string // scheme and host, for the addresses shown to copy
	PlayerAsset  bool
	IsOwner      bool // may rename and delete
	CanDelete    bool // the owner or a site admin
	CanModerate  bool // comments: the owner or a site admin
	Reason       string
	VideoID      int64
	Comments     []commentView
	LoginURL     string
}

// handleOther serves the pages whose paths the router's patterns can not express
// (GET /@{name}/replays/{id}) and the 404 page for everything else.
func (s *Server) handleOther(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodGet || r.Method == http.MethodHead {
		parts := strings.Split(strings.TrimPrefix(r.URL.Path, "/"), "/")
		if len(parts) == 3 && strings.HasPrefix(parts[0], "@") && parts[1] == "replays" {
			r.SetPathValue("name", parts[0])
			r.SetPathValue("id", parts[2])
			s.handleReplay(w, r)
			return
		}
	}
	s.handleNotFound(w, r)
}

// handleReplay serves a replay's page: GET /@{name}/replays/{id}.
func (s *Server) handleReplay(w http.ResponseWriter, r *http.Request) {
	name, ok := strings.CutPrefix(r.PathValue("name"), "@")
	idText := r.PathValue("id")
	id, err := strconv.ParseInt(idText, 10, 64)
	if !ok || err != nil || id <= 0 || s.Recordings == nil {
		s.handleNotFound(w, r)
		return
	}
	rec, err := s.Recordings.FindRecording(r.Context(), id)
	if err != nil {
		if onair.ErrorCode(err) == onair.ENOTFOUND {
			err = onair.Errorf(onair.ENOTFOUND, "There is no such replay: it may have been deleted.")
		}
		s.writeErrorPage(w, r, err)
		return
	}
	if rec.Channel != name || idText != strconv.FormatInt(id, 10) {
		// Upper case names, another channel's name, "007": the one address of the replay.
		http.Redirect(w, r, replayPath(rec.Channel, rec.ID), http.StatusMovedPermanently)
		return
	}
	ci, err := s.channelInfo(r, rec.Channel)
	if err != nil {
		s.writeErrorPage(w, r, err)
		return
	}
	card := s.replayCard(rec)
	u := currentUser(r)
	base := "/vod/" + strconv.FormatInt(rec.ID, 10) + "/"
	data := replayData{
		layoutData:   s.layout(r, card.Title),
		Name:         rec.Channel,
		ChannelTitle: ci.Title,
		Replay:       card,
		Src:          base + "index.m3u8",
		Base:         baseURL(r),
		PlayerAsset:  s.playerAsset,
		IsOwner:      u != nil && u.ID == rec.UserID,
		VideoID:      rec.VideoID,
		LoginURL:     "/login?next=" + url.QueryEscape(card.URL),
	}
	if data.ChannelTitle == "" {
		data.ChannelTitle = rec.Channel
	}
	data.CanDelete = data.IsOwner || (u != nil && u.IsAdmin)
	data.CanModerate = data.CanDelete
	if data.CanDelete {
		data.Reason = rec.Reason
	}
	if !card.Recording {
		data.Manifest = base + "index.mpd"
		data.Download = base + "download.mp4"
	}
	if rec.VideoID != 0 {
		if data.Comments, err = s.commentViews(r, rec.VideoID, u, data.CanModerate); err != nil {
			s.writeErrorPage(w, r, err)
			return
		}
	}
	if s.playerAsset {
		data.Scripts = append(data.Scripts, playerAssetPath)
	}
	data.Scripts = append(data.Scripts, "replay.js")
	if data.VideoID != 0 {
		data.Scripts = append(data.Scripts, "comments.js")
	}
	s.render(w, r, http.StatusOK, "replay", data)
}
