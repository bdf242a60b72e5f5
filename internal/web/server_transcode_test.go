package web

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestAdminPageTranscoding(t *testing.T) {
	cases := []struct {
		name   string
		status *TranscodeStatus
		want   []string
		not    []string
	}{
		{name: "no transcoding", not: []string{`id="transcoding"`}},
		{name: "off", status: &TranscodeStatus{Available: true}, want: []string{`data-state="off"`}},
		{name: "no ffmpeg", status: &TranscodeStatus{Enabled: true}, want: []string{`data-state="no-ffmpeg"`, "ffmpeg was not found"}},
		{name: "running", status: &TranscodeStatus{Enabled: true, Available: true, Encoder: "libx264", Ladder: []string{"720p", "audio"},
			Transcoders: []Transcoder{
				{Channel: "alice", PID: 4242, CPUPercent: 61.4, Renditions: []string{"720p", "audio"}, Encoder: "libx264", Restarts: 1},
				{Channel: "bob", CPUPercent: -1, Renditions: []string{"audio"}, Encoder: "libx264"},
			}},
			want: []string{`data-state="on"`, "On with libx264: 720p, audio. 2 running, using 61 % of a core.",
				`<tr data-channel="alice">`, "<td>61 %</td>", "<td>4242</td>", "<td>–</td>", "<td>restarting</td>"}},
	}
	for _, ca := range cases {
		t.Run(ca.name, func(t *testing.T) {
			e := mustEnv(t, false, func(s *Server) {
				if ca.status != nil {
					s.Transcoding = func() TranscodeStatus { return *ca.status }
				}
			})
			root, err := e.users.FindUserByUsername(context.Background(), "boss")
			require.NoError(t, err)
			body := requireStatus(t, e.as(root).do("GET", "/admin", nil), 200)
			for _, w := range ca.want {
				require.Contains(t, body, w)
			}
			for _, n := range ca.not {
				require.NotContains(t, body, n)
			}
		})
	}
}
