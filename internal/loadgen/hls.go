package loadgen

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// mediaPlaylist is the part of an HLS media playlist a viewer needs.
type mediaPlaylist struct {
	target     time.Duration
	partTarget time.Duration
	mediaSeq   uint64
	mapURI     string
	segs       []hlsSeg
	ended      bool
}

type hlsSeg struct {
	msn   uint64
	dur   time.Duration
	uri   string
	wall  time.Time // EXT-X-PROGRAM-DATE-TIME (zero if absent)
	parts []hlsPart
}

type hlsPart struct {
	dur         time.Duration
	uri         string
	independent bool
}

func parseMediaPlaylist(body string) (*mediaPlaylist, error) {
	if !strings.HasPrefix(body, "#EXTM3U") {
		return nil, fmt.Errorf("not a playlist")
	}
	p := &mediaPlaylist{}
	var cur hlsSeg
	first := true
	sc := bufio.NewScanner(strings.NewReader(body))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		l := strings.TrimSpace(sc.Text())
		tag, val, _ := strings.Cut(l, ":")
		switch tag {
		case "":
		case "#EXT-X-TARGETDURATION":
			p.target = secs(val)
		case "#EXT-X-PART-INF":
			p.partTarget = secs(attr(val, "PART-TARGET"))
		case "#EXT-X-MEDIA-SEQUENCE":
			p.mediaSeq, _ = strconv.ParseUint(val, 10, 64)
		case "#EXT-X-MAP":
			p.mapURI = attr(val, "URI")
		case "#EXT-X-PROGRAM-DATE-TIME":
			cur.wall, _ = time.Parse(time.RFC3339Nano, val)
		case "#EXT-X-PART":
			cur.parts = append(cur.parts, hlsPart{
				dur: secs(attr(val, "DURATION")), uri: attr(val, "URI"),
				independent: attr(val, "INDEPENDENT") == "YES",
			})
		case "#EXTINF":
			d, _, _ := strings.Cut(val, ",")
			cur.dur = secs(d)
		case "#EXT-X-ENDLIST":
			p.ended = true
		case "#EXT-X-SKIP":
			n, _ := strconv.ParseUint(attr(val, "SKIPPED-SEGMENTS"), 10, 64)
			p.mediaSeq += n
		default:
			if strings.HasPrefix(l, "#") {
				continue
			}
			if first {
				cur.msn, first = p.mediaSeq, false
			}
			cur.uri = l
			p.segs = append(p.segs, cur)
			cur = hlsSeg{msn: cur.msn + 1}
		}
	}
	if first {
		cur.msn = p.mediaSeq
	}
	if len(cur.parts) > 0 { // the open segment: parts only
		p.segs = append(p.segs, cur)
	}
	return p, nil
}

// attr returns the value of key in an attribute list (quotes removed).
func attr(list, key string) string {
	for list != "" {
		var kv string
		// values may be quoted and hold commas
		eq := strings.IndexByte(list, '=')
		if eq < 0 {
			return ""
		}
		k := list[:eq]
		rest := list[eq+1:]
		if strings.HasPrefix(rest, `"`) {
			end := strings.IndexByte(rest[1:], '"')
			if end < 0 {
				return ""
			}
			kv, list = rest[1:end+1], strings.TrimPrefix(rest[end+2:], ",")
		} else {
			kv, list, _ = strings.Cut(rest, ",")
		}
		if k == key {
			return kv
		}
	}
	return ""
}

func secs(s string) time.Duration {
	f, _ := strconv.ParseFloat(s, 64)
	return time.Duration(f * float64(time.Second))
}

type hlsViewer struct {
	cfg    *Config
	client *http.Client
	r      *ClientResult
	live   *liveCounters
	start  time.Time
	first  time.Time     // first media fetched
	media  time.Duration // media fetched since first
	lats   []float64
}

func (v *hlsViewer) get(ctx context.Context, u string, timeout time.Duration) ([]byte, error) {
	rctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(rctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	res, err := v.client.Do(req)
	if err != nil {
		return nil, stripURL(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	v.r.Bytes += int64(len(b))
	v.live.bytes.Add(int64(len(b)))
	v.r.Requests++
	if err != nil {
		return nil, stripURL(err)
	}
	if res.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s: status %d", u[strings.LastIndexByte(u, '/')+1:], res.StatusCode)
	}
	return b, nil
}

func (v *hlsViewer) gotMedia(d time.Duration) {
	now := time.Now()
	if v.first.IsZero() {
		v.first = now
		v.r.TTFFMS = ms(now.Sub(v.start))
		v.live.playing.Add(1)
	}
	v.media += d
	v.r.Frames++
}

func (v *hlsViewer) finish() {
	v.r.LatencyP50MS, v.r.LatencyMaxMS = percentile(v.lats, 0.5), percentile(v.lats, 1)
	v.r.LatencySamples = len(v.lats)
	if v.first.IsZero() {
		return
	}
	v.r.WallS = time.Since(v.first).Seconds()
	v.r.MediaS = v.media.Seconds()
	v.r.KeepUp = ratio(v.r.MediaS, v.r.WallS)
	tol := v.cfg.MaxLag + time.Duration(v.r.targetS*float64(time.Second))
	v.r.KeptUp = v.r.Err == "" && v.r.WallS-v.r.MediaS <= tol.Seconds()
}

// runTSViewer polls the MPEG-TS playlist like a player: joins at the newest segment,
// fetches every new one, reloads after half a target duration when nothing was new.
func runTSViewer(ctx context.Context, cfg *Config, client *http.Client, name string, r *ClientResult, live *liveCounters) {
	v := &hlsViewer{cfg: cfg, client: client, r: r, live: live, start: time.Now()}
	defer v.finish()
	live.active.Add(1)
	defer live.active.Add(-1)
	path := strings.ReplaceAll(cfg.TSPlaylist, "{name}", url.PathEscape(name))
	cut := strings.LastIndexByte(path, '/') + 1
	base, playlist := cfg.HTTPBase+path[:cut], path[cut:]
	var next uint64
	joined := false
	for ctx.Err() == nil {
		b, err := v.get(ctx, base+playlist, cfg.ConnectTimeout)
		if err != nil {
			r.fail(ctx, err)
			return
		}
		seen := time.Now()
		pl, err := parseMediaPlaylist(string(b))
		if err != nil {
			r.fail(ctx, err)
			return
		}
		r.targetS = pl.target.Seconds()
		// segments listed at the join are old news: no latency sample for them
		measure := joined
		if !joined && len(pl.segs) > 0 {
			next, joined = pl.segs[len(pl.segs)-1].msn, true
		}
		progressed := false
		for _, sg := range pl.segs {
			if !joined || sg.msn < next {
				continue
			}
			if measure && !sg.wall.IsZero() {
				v.lats = append(v.lats, ms(seen.Sub(sg.wall.Add(sg.dur))))
			}
			if _, err := v.get(ctx, base+sg.uri, cfg.ConnectTimeout); err != nil {
				r.fail(ctx, err)
				return
			}
			v.gotMedia(sg.dur)
			next, progressed = sg.msn+1, true
		}
		if pl.ended {
			r.fail(ctx, fmt.Errorf("stream ended"))
			return
		}
		wait := max(pl.target/2, 100*time.Millisecond)
		if progressed {
			wait = max(pl.target/4, 100*time.Millisecond)
		}
		select {
		case <-ctx.Done():
		case <-time.After(wait):
		}
	}
}

// runLLViewer follows the LL-HLS playlist like hls.js at the live edge: it fetches the
// init section and the parts from the newest independent part on, then asks for the next
// part with a blocking reload (_HLS_msn/_HLS_part) and fetches each new part.
func runLLViewer(ctx context.Context, cfg *Config, client *http.Client, name string, r *ClientResult, live *liveCounters) {
	v := &hlsViewer{cfg: cfg, client: client, r: r, live: live, start: time.Now()}
	defer v.finish()
	live.active.Add(1)
	defer live.active.Add(-1)
	base := cfg.HTTPBase + "/hls/" + url.PathEscape(name) + "/"
	// position of the next part wanted: segment msn, part index within it
	var msn uint64
	var part int
	joined := false
	mapURI := ""
	query := ""
	for ctx.Err() == nil {
		b, err := v.get(ctx, base+"stream.m3u8"+query, cfg.ConnectTimeout+2*time.Second)
		if err != nil {
			r.fail(ctx, err)
			return
		}
		seen := time.Now()
		pl, err := parseMediaPlaylist(string(b))
		if err != nil {
			r.fail(ctx, err)
			return
		}
		r.targetS = pl.target.Seconds()
		if pl.ended {
			r.fail(ctx, fmt.Errorf("stream ended"))
			return
		}
		if pl.partTarget <= 0 {
			r.fail(ctx, fmt.Errorf("playlist has no parts"))
			return
		}
		if pl.mapURI != "" && pl.mapURI != mapURI {
			if _, err := v.get(ctx, base+pl.mapURI, cfg.ConnectTimeout); err != nil {
				r.fail(ctx, err)
				return
			}
			mapURI = pl.mapURI
		}
		measure := joined // parts listed at the join are old news: no latency sample
		if !joined {
			// the newest independent part
			for _, sg := range pl.segs {
				for i, pt := range sg.parts {
					if pt.independent {
						msn, part, joined = sg.msn, i, true
					}
				}
			}
			if !joined {
				select {
				case <-ctx.Done():
				case <-time.After(pl.partTarget):
				}
				continue
			}
		}
		for _, sg := range pl.segs {
			if sg.msn < msn {
				continue
			}
			wall := sg.wall
			for i, pt := range sg.parts {
				end := wall.Add(pt.dur)
				wall = end
				if sg.msn == msn && i < part {
					continue
				}
				if measure && !sg.wall.IsZero() {
					v.lats = append(v.lats, ms(seen.Sub(end)))
				}
				if _, err := v.get(ctx, base+pt.uri, cfg.ConnectTimeout); err != nil {
					r.fail(ctx, err)
					return
				}
				v.gotMedia(pt.dur)
				msn, part = sg.msn, i+1
			}
			if sg.uri != "" && sg.msn == msn && part >= len(sg.parts) && len(sg.parts) > 0 {
				msn, part = sg.msn+1, 0 // segment complete: next part is the next segment's first
			} else if sg.msn > msn {
				// a segment listed without parts (older than the part window) was skipped
				msn, part = sg.msn, 0
			}
		}
		query = "?_HLS_msn=" + strconv.FormatUint(msn, 10) + "&_HLS_part=" + strconv.Itoa(part)
	}
}
