package web

import (
	"net/http"
	"strings"
	"unicode/utf8"

	"github.com/onair/onair/internal/onair"
)

// Limits of list calls.
const (
	maxListChannels = 100
	maxSearchLen    = 100
	popularTagCount = 20
)

// handleAPIStreams writes the live streams as a JSON array (never null), most viewers
// first, then by channel.
func (s *Server) handleAPIStreams(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, s.liveStreams())
}

// handleAPIStream writes one live stream, or a 404 error when it is not live.
func (s *Server) handleAPIStream(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("username")
	if ls, ok := s.liveStream(name); ok {
		writeJSON(w, http.StatusOK, ls)
		return
	}
	if onair.ValidateUsername(name) != nil {
		s.writeAPIError(w, r, onair.Errorf(onair.ENOTFOUND, "No such stream."))
		return
	}
	s.writeAPIError(w, r, onair.Errorf(onair.ENOTFOUND, "Stream %q is not live.", name))
}

// channelInfo looks a channel up by a name from a URL.
func (s *Server) channelInfo(r *http.Request, name string) (*onair.ChannelInfo, error) {
	if onair.ValidateUsername(name) != nil {
		return nil, onair.Errorf(onair.ENOTFOUND, "There is no channel @%s.", clip(name, 64))
	}
	ci, err := s.Platform.ChannelInfo(r.Context(), name)
	if onair.ErrorCode(err) == onair.ENOTFOUND {
		return nil, onair.Errorf(onair.ENOTFOUND, "There is no channel @%s.", name)
	}
	return ci, err
}

// handleAPIChannel writes a channel with its live state, viewers and followers, and for
// a signed-in caller whether they follow it.
func (s *Server) handleAPIChannel(w http.ResponseWriter, r *http.Request) {
	ci, err := s.channelInfo(r, r.PathValue("username"))
	if err != nil {
		s.writeAPIError(w, r, err)
		return
	}
	c := s.channelJSON(ci)
	if u := currentUser(r); u != nil {
		following, err := s.Platform.IsFollowing(r.Context(), u.ID, ci.Name)
		if err != nil {
			s.writeAPIError(w, r, err)
			return
		}
		c.Following = &following
	}
	writeJSON(w, http.StatusOK, c)
}

type followResponse struct {
	Following bool `json:"following"`
	Followers int  `json:"followers"`
}

func (s *Server) handleAPIFollow(w http.ResponseWriter, r *http.Request)   { s.setFollow(w, r, true) }
func (s *Server) handleAPIUnfollow(w http.ResponseWriter, r *http.Request) { s.setFollow(w, r, false) }

// setFollow follows or unfollows a channel (idempotent) and answers with the new state.
func (s *Server) setFollow(w http.ResponseWriter, r *http.Request, follow bool) {
	u := s.requireUser(w, r)
	if u == nil {
		return
	}
	ci, err := s.channelInfo(r, r.PathValue("username"))
	if err != nil {
		s.writeAPIError(w, r, err)
		return
	}
	if follow {
		err = s.Platform.Follow(r.Context(), u, ci.Name)
	} else {
		err = s.Platform.Unfollow(r.Context(), u, ci.Name)
	}
	if err != nil {
		s.writeAPIError(w, r, err)
		return
	}
	if ci, err = s.Platform.ChannelInfo(r.Context(), ci.Name); err != nil {
		s.writeAPIError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, followResponse{Following: follow, Followers: ci.Followers})
}

// handleAPIFollowing writes the channels the signed-in user follows, live ones first.
func (s *Server) handleAPIFollowing(w http.ResponseWriter, r *http.Request) {
	u := s.requireUser(w, r)
	if u == nil {
		return
	}
	list, err := s.Platform.Following(r.Context(), u.ID)
	if err != nil {
		s.writeAPIError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, s.channelsJSON(list))
}

// handleAPITag writes the channels carrying a tag, live ones first.
func (s *Server) handleAPITag(w http.ResponseWriter, r *http.Request) {
	tag := strings.ToLower(r.PathValue("tag"))
	list, err := s.Platform.ChannelsByTag(r.Context(), tag, maxListChannels)
	if err != nil {
		s.writeAPIError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, s.channelsJSON(list))
}

// handleAPITags writes the popular tags with their channel counts.
func (s *Server) handleAPITags(w http.ResponseWriter, r *http.Request) {
	tags, err := s.Platform.PopularTags(r.Context(), popularTagCount)
	if err != nil {
		s.writeAPIError(w, r, err)
		return
	}
	if tags == nil {
		tags = []onair.TagCount{}
	}
	writeJSON(w, http.StatusOK, tags)
}

// handleAPISearch writes the channels whose name or title contains q, live ones first.
func (s *Server) handleAPISearch(w http.ResponseWriter, r *http.Request) {
	q, err := searchQuery(r)
	if err != nil {
		s.writeAPIError(w, r, err)
		return
	}
	if q == "" {
		s.writeAPIError(w, r, onair.Errorf(onair.EINVALID, "Give a search term: ?q=…"))
		return
	}
	list, err := s.Platform.SearchChannels(r.Context(), q, maxListChannels)
	if err != nil {
		s.writeAPIError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, s.channelsJSON(list))
}

// searchQuery returns the trimmed ?q= of a search.
func searchQuery(r *http.Request) (string, error) {
	q := strings.TrimSpace(r.URL.Query().Get("q"))
	if utf8.RuneCountInString(q) > maxSearchLen {
		return "", onair.Errorf(onair.EINVALID, "Search terms must be at most %d characters.", maxSearchLen)
	}
	return q, nil
}

func (s *Server) handleAPINotFound(w http.ResponseWriter, r *http.Request) {
	s.writeAPIError(w, r, onair.Errorf(onair.ENOTFOUND, "No such API endpoint."))
}
