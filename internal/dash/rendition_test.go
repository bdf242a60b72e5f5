package dash

import (
	"encoding/xml"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/onair/onair/internal/hub"
	"github.com/onair/onair/internal/testutil"
)

// TestMPDRenditions lists a rendition's video as a second Representation of the video
// AdaptationSet, on the source's timeline, and serves its media under its directory.
func TestMPDRenditions(t *testing.T) {
	med := testutil.MustMedia(t, "h264_aac")
	e := MustEnv(t, 5*time.Second)
	e.startPublish(t, "alice", med, testutil.PublishOpts{Speed: 1, Loops: 20})
	// A stand-in for a transcoded rendition: a derived stream on the source's timeline.
	p, err := e.reg.PublishFrom("alice~180p", med.Tracks, hub.SourceDerived)
	require.NoError(t, err)
	go func() { _ = testutil.PublishMedia(t.Context(), p, med, testutil.PublishOpts{Speed: 1, Loops: 20}) }()
	e.srv.Renditions = func(name string) []Rendition {
		return []Rendition{{Name: "180p", Stream: "alice~180p", Bandwidth: 200000}, {Name: "evil", Stream: "bob~evil"}}
	}

	type rep struct {
		ID       string `xml:"id,attr"`
		Width    int    `xml:"width,attr"`
		Template struct {
			PTO            int64  `xml:"presentationTimeOffset,attr"`
			StartNumber    uint64 `xml:"startNumber,attr"`
			Initialization string `xml:"initialization,attr"`
			Media          string `xml:"media,attr"`
			Timeline       []struct {
				T *int64 `xml:"t,attr"`
			} `xml:"SegmentTimeline>S"`
		} `xml:"SegmentTemplate"`
	}
	var m struct {
		Periods []struct {
			Sets []struct {
				ContentType string `xml:"contentType,attr"`
				Reps        []rep  `xml:"Representation"`
			} `xml:"AdaptationSet"`
		} `xml:"Period"`
	}
	var video []rep
	require.Eventually(t, func() bool {
		res, body := e.get(t, "/dash/alice/index.mpd")
		if res.StatusCode != http.StatusOK {
			return false
		}
		require.NoError(t, xml.Unmarshal(body, &m), "%s", body)
		for _, set := range m.Periods[len(m.Periods)-1].Sets {
			if set.ContentType == "video" {
				video = set.Reps
			} else {
				require.Len(t, set.Reps, 1, "audio comes from the source only")
			}
		}
		return len(video) == 2
	}, 20*time.Second, 200*time.Millisecond)
	src, low := video[0], video[1]
	require.Equal(t, "180p", low.ID)
	require.Equal(t, 320, low.Width)
	require.Equal(t, src.Template.PTO, low.Template.PTO, "one timeline")
	require.True(t, strings.HasPrefix(low.Template.Media, "180p/"), low.Template.Media)

	// Its init and first segment are served.
	res, _ := e.get(t, "/dash/alice/"+low.Template.Initialization)
	require.Equal(t, http.StatusOK, res.StatusCode)
	seg := strings.Replace(low.Template.Media, "$Number$", strconv.FormatUint(low.Template.StartNumber, 10), 1)
	res, _ = e.get(t, "/dash/alice/"+seg)
	require.Equal(t, http.StatusOK, res.StatusCode)
	res, _ = e.get(t, "/dash/alice/180p/index.mpd")
	require.Equal(t, http.StatusNotFound, res.StatusCode)
}
