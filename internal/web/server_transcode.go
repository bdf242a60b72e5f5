package web

import "time"

// TranscodeStatus is the transcoding state shown to site admins: whether the site
// transcodes, whether ffmpeg is there, and the load of the running transcoders.
type TranscodeStatus struct {
	Enabled   bool     // the site configuration turns transcoding on
	Available bool     // ffmpeg was found; without it streams are passthrough only
	Encoder   string   // the configured encoder
	Ladder    []string // the configured renditions
	// Transcoders are the running ones, by channel.
	Transcoders []Transcoder
}

// Transcoder is one running transcoder (an ffmpeg child process).
type Transcoder struct {
	Channel    string
	PID        int
	CPUPercent float64 // of one core; negative when unknown
	Renditions []string
	Encoder    string
	Restarts   int
	Uptime     time.Duration
}

// CPUTotal is the CPU used by every transcoder, in percent of one core.
func (t TranscodeStatus) CPUTotal() float64 {
	var sum float64
	for _, tr := range t.Transcoders {
		if tr.CPUPercent > 0 {
			sum += tr.CPUPercent
		}
	}
	return sum
}
