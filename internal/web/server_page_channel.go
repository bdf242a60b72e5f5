package web

import (
	"cmp"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/onair/onair/internal/onair"
)

// channelCard is a channel as the lists of pages show it.
type channelCard struct {
	Name       string
	Initial    string // first letter of Name, upper case, for the card's placeholder
	Title      string // the channel title, or its name
	Tags       []string
	Live       bool
	VideoCodec string
	AudioCodec string
	Resolution string // "1280×720", or ""
	FPS        string // "30 fps", or ""
	Viewers    int
	StartedAt  time.Time
	Since      string // "5 minutes ago"
	LastLiveAt *time.Time
}

// card builds the card of a channel; ci may be nil (a live stream without a channel row)
// and ls is its live stream, if live.
func (s *Server) card(name string, ci *onair.ChannelInfo, ls *onair.LiveStream) channelCard {
	c := channelCard{Name: name, Initial: initial(name), Title: name}
	if ci != nil {
		if ci.Title != "" {
			c.Title = ci.Title
		}
		c.Tags, c.LastLiveAt = ci.Tags, ci.LastLiveAt
	}
	if ls != nil {
		c.Live = true
		c.VideoCodec = strings.ToUpper(ls.VideoCodec)
		c.AudioCodec = strings.ToUpper(ls.AudioCodec)
		c.Viewers = ls.Viewers
		c.StartedAt = ls.StartedAt
		c.Since = ago(s.Now(), ls.StartedAt)
		if ls.Width > 0 && ls.Height > 0 {
			c.Resolution = fmt.Sprintf("%d×%d", ls.Width, ls.Height)
		}
		if ls.FPS > 0 {
			c.FPS = fmt.Sprintf("%g fps", ls.FPS)
		}
	}
	return c
}

// cards builds the cards of channels, live ones first (most viewers first), then by name.
func (s *Server) cards(list []*onair.ChannelInfo) []channelCard {
	out := make([]channelCard, 0, len(list))
	for _, ci := range list {
		var lsp *onair.LiveStream
		if ls, ok := s.liveStream(ci.Name); ok {
			lsp = &ls
		}
		out = append(out, s.card(ci.Name, ci, lsp))
	}
	slices.SortStableFunc(out, func(a, b channelCard) int {
		if a.Live != b.Live {
			if a.Live {
				return -1
			}
			return 1
		}
		return cmp.Or(cmp.Compare(b.Viewers, a.Viewers), cmp.Compare(a.Name, b.Name))
	})
	return out
}

// goLiveData explains how to publish, with this server's URLs.
type goLiveData struct {
	RTMPURL  string // e.g. rtmp://HOST/live
	Open     bool   // shown expanded
	SignedIn bool
}

type homeData struct {
	layoutData
	Streams   []channelCard
	Following []channelCard // followed channels that are live (signed-in users)
	Tags      []onair.TagCount
	GoLive    goLiveData
}

func (s *Server) handleHome(w http.ResponseWriter, r *http.Request) {
	live := s.liveStreams()
	data := homeData{
		layoutData: s.layout(r, "Live now"),
		Streams:    make([]channelCard, 0, len(live)),
		GoLive:     goLiveData{RTMPURL: s.RTMPURL(r), Open: len(live) == 0},
	}
	for _, ls := range live {
		ci, err := s.Platform.ChannelInfo(r.Context(), ls.Channel)
		if err != nil {
			ci = nil
			if onair.ErrorCode(err) != onair.ENOTFOUND {
				// The card still works without its title.
				s.Logger.Warn("find live channel failed", "channel", ls.Channel, "err", err)
			}
		}
		data.Streams = append(data.Streams, s.card(ls.Channel, ci, &ls))
	}
	if u := data.User; u != nil {
		data.GoLive.SignedIn = true
		following, err := s.Platform.Following(r.Context(), u.ID)
		if err != nil {
			s.writeErrorPage(w, r, err)
			return
		}
		for _, c := range s.cards(following) {
			if c.Live {
				data.Following = append(data.Following, c)
			}
		}
	}
	tags, err := s.Platform.PopularTags(r.Context(), popularTagCount)
	if err != nil {
		s.writeErrorPage(w, r, err)
		return
	}
	data.Tags = tags
	data.Scripts = append(data.Scripts, "home.js")
	s.render(w, r, http.StatusOK, "home", data)
}

// commentView is a comment with what the viewer may do with it.
type commentView struct {
	*onair.Comment
	CanEdit   bool
	CanDelete bool
}

type channelData struct {
	layoutData
	Name        string
	Title       string
	Description string
	Tags        []string
	Followers   int
	Following   bool
	IsOwner     bool
	CanModerate bool // owner or site admin: chat moderation, deleting comments
	Live        bool
	Stream      channelCard // when Live
	LastLiveAt  *time.Time
	LastLive    string // "3 days ago"
	HLSPath     string // /hls/NAME/index.m3u8, for the player
	HLSURL      string // absolute, for ffplay/VLC
	RTMPPlayURL string // rtmp://HOST/live/NAME
	APIPath     string // /api/v1/streams/NAME, polled by channel.js
	PlayerAsset bool   // vendor/hls.min.js is embedded
	Chat        bool
	ChatPath    string // /api/v1/channels/NAME/chat
	VideoID     int64  // the live video comments attach to; 0: no comments
	Comments    []commentView
	EmbedCode   string
	LoginURL    string
	Replays     []replayCard // newest first
	DVRPath     string       // the running recording's EVENT playlist; "" without recordings
}

// channelName checks the "@name" segment of a channel URL. It redirects upper case names
// and answers 404 for anything else that is not a username; ok is false when it answered.
func (s *Server) channelName(w http.ResponseWriter, r *http.Request, seg, prefix string) (string, bool) {
	name, ok := strings.CutPrefix(seg, "@")
	if !ok {
		s.handleNotFound(w, r)
		return "", false
	}
	if lower := strings.ToLower(name); lower != name && onair.ValidateUsername(lower) == nil {
		http.Redirect(w, r, prefix+"@"+lower, http.StatusMovedPermanently)
		return "", false
	}
	return name, true
}

func (s *Server) handleChannel(w http.ResponseWriter, r *http.Request) {
	name, ok := s.channelName(w, r, r.PathValue("name"), "/")
	if !ok {
		return
	}
	ci, err := s.channelInfo(r, name)
	if err != nil {
		s.writeErrorPage(w, r, err)
		return
	}
	title := ci.Title
	if title == "" {
		title = ci.Name
	}
	u := currentUser(r)
	data := channelData{
		layoutData:  s.layout(r, title),
		Name:        ci.Name,
		Title:       title,
		Description: ci.Description,
		Tags:        ci.Tags,
		Followers:   ci.Followers,
		IsOwner:     u != nil && u.ID == ci.UserID,
		LastLiveAt:  ci.LastLiveAt,
		HLSPath:     "/hls/" + ci.Name + "/index.m3u8",
		HLSURL:      baseURL(r) + "/hls/" + ci.Name + "/index.m3u8",
		RTMPPlayURL: s.RTMPURL(r) + "/" + ci.Name,
		APIPath:     "/api/v1/streams/" + ci.Name,
		PlayerAsset: s.playerAsset,
		Chat:        s.Chat != nil,
		ChatPath:    "/api/v1/channels/" + ci.Name + "/chat",
		LoginURL:    "/login?next=" + url.QueryEscape("/@"+ci.Name),
		EmbedCode: fmt.Sprintf(`<iframe src="%s/embed/@%s" width="640" height="360" `+
			`allow="autoplay; fullscreen" allowfullscreen title="@%s live"></iframe>`, baseURL(r), ci.Name, ci.Name),
	}
	data.CanModerate = data.IsOwner || (u != nil && u.IsAdmin)
	if u != nil && !data.IsOwner {
		if data.Following, err = s.Platform.IsFollowing(r.Context(), u.ID, ci.Name); err != nil {
			s.writeErrorPage(w, r, err)
			return
		}
	}
	if ci.LastLiveAt != nil {
		data.LastLive = ago(s.Now(), *ci.LastLiveAt)
	}
	if ls, ok := s.liveStream(ci.Name); ok {
		data.Live = true
		data.Stream = s.card(ci.Name, ci, &ls)
	}
	if err := s.loadComments(r, &data, u); err != nil {
		s.writeErrorPage(w, r, err)
		return
	}
	if data.Replays, err = s.replayCards(r, ci.Name); err != nil {
		s.writeErrorPage(w, r, err)
		return
	}
	if s.Recordings != nil {
		data.DVRPath = "/vod/live/" + ci.Name + "/index.m3u8"
	}
	if s.playerAsset {
		data.Scripts = append(data.Scripts, playerAssetPath)
	}
	data.Scripts = append(data.Scripts, "player.js", "channel.js")
	if data.Chat {
		data.Scripts = append(data.Scripts, "chat.js")
	}
	if data.VideoID != 0 {
		data.Scripts = append(data.Scripts, "comments.js")
	}
	s.render(w, r, http.StatusOK, "channel", data)
}

// loadComments fills the comments of the channel's live video. A channel without a video
// shows no comments.
func (s *Server) loadComments(r *http.Request, data *channelData, u *onair.User) error {
	v, err := s.Comments.ChannelVideo(r.Context(), data.Name)
	if onair.ErrorCode(err) == onair.ENOTFOUND {
		return nil
	} else if err != nil {
		return err
	}
	list, err := s.commentViews(r, v.ID, u, data.CanModerate)
	if err != nil {
		return err
	}
	data.VideoID, data.Comments = v.ID, list
	return nil
}

// commentViews returns the comments of a video with what u may do with each.
func (s *Server) commentViews(r *http.Request, videoID int64, u *onair.User, canModerate bool) ([]commentView, error) {
	list, err := s.Comments.Comments(r.Context(), videoID, 0, maxComments)
	if err != nil {
		return nil, err
	}
	out := make([]commentView, 0, len(list))
	for _, c := range list {
		mine := u != nil && u.ID == c.UserID
		out = append(out, commentView{Comment: c, CanEdit: mine, CanDelete: mine || canModerate})
	}
	return out, nil
}

type embedData struct {
	SiteName    string
	Name        string
	Title       string
	Live        bool
	HLSPath     string
	APIPath     string
	ChannelURL  string
	PlayerAsset bool
	Scripts     []string
}

// handleEmbed serves the bare player page that other sites may frame.
func (s *Server) handleEmbed(w http.ResponseWriter, r *http.Request) {
	allowFraming(w)
	name, ok := s.channelName(w, r, r.PathValue("name"), "/embed/")
	if !ok {
		return
	}
	ci, err := s.channelInfo(r, name)
	if err != nil {
		s.writeErrorPage(w, r, err)
		return
	}
	title := ci.Title
	if title == "" {
		title = ci.Name
	}
	_, live := s.Live.LiveStream(ci.Name)
	data := embedData{
		SiteName:    s.siteName(r),
		Name:        ci.Name,
		Title:       title,
		Live:        live,
		HLSPath:     "/hls/" + ci.Name + "/index.m3u8",
		APIPath:     "/api/v1/streams/" + ci.Name,
		ChannelURL:  baseURL(r) + "/@" + ci.Name,
		PlayerAsset: s.playerAsset,
	}
	if s.playerAsset {
		data.Scripts = append(data.Scripts, playerAssetPath)
	}
	data.Scripts = append(data.Scripts, "player.js", "channel.js")
	s.render(w, r, http.StatusOK, "embed", data)
}

type channelsData struct {
	layoutData
	Heading  string
	Intro    string
	Search   bool // the page is the search page
	Query    string
	Channels []channelCard
	Empty    string
}

// handleTagPage lists the channels with a tag.
func (s *Server) handleTagPage(w http.ResponseWriter, r *http.Request) {
	tag := r.PathValue("tag")
	if lower := strings.ToLower(tag); lower != tag {
		http.Redirect(w, r, "/tags/"+url.PathEscape(lower), http.StatusMovedPermanently)
		return
	}
	list, err := s.Platform.ChannelsByTag(r.Context(), tag, maxListChannels)
	if err != nil {
		s.writeErrorPage(w, r, err)
		return
	}
	data := channelsData{
		layoutData: s.layout(r, "#"+tag),
		Heading:    "#" + tag,
		Intro:      "Channels tagged " + tag + ", live ones first.",
		Channels:   s.cards(list),
		Empty:      "No channel carries this tag yet.",
	}
	s.render(w, r, http.StatusOK, "channels", data)
}

// handleSearchPage searches channels by name or title.
func (s *Server) handleSearchPage(w http.ResponseWriter, r *http.Request) {
	q, err := searchQuery(r)
	if err != nil {
		s.writeErrorPage(w, r, err)
		return
	}
	data := channelsData{
		layoutData: s.layout(r, "Search"),
		Heading:    "Search",
		Search:     true,
		Query:      q,
	}
	data.layoutData.Query = q
	if q != "" {
		data.PageTitle = "Search: " + q
		list, err := s.Platform.SearchChannels(r.Context(), q, maxListChannels)
		if err != nil {
			s.writeErrorPage(w, r, err)
			return
		}
		data.Channels = s.cards(list)
		data.Empty = "No channel matches “" + q + "”."
	}
	s.render(w, r, http.StatusOK, "channels", data)
}
