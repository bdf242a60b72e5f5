package stats

import (
	"bytes"
	_ "embed" // stat.xsl
	"encoding/xml"
	"net/http"
	"runtime"
	"runtime/debug"
	"strconv"
	"time"
)

// statXSL renders /stat in a browser. It is adapted from nginx-rtmp-module's stat.xsl
// (BSD 2-clause, copyright Roman Arutyunyan; the notice is kept in the file).
//
//go:embed stat.xsl
var statXSL []byte

// StatHandler serves /stat: the live statistics in nginx-rtmp's XML schema (as its
// ngx_rtmp_stat_module writes them), so that stat.xsl pages and nginx-rtmp exporters
// keep working. One server, one application ("live"), its live streams with their RTMP
// clients (publisher and players). Times are in milliseconds, the uptime in seconds,
// rates in bits/s.
//
// It shows client IP addresses: mount it for admins only (or on a trusted network).
type StatHandler struct {
	// Collector provides the numbers. Required.
	Collector *Collector
	// Stylesheet is the href of the xml-stylesheet processing instruction; "-" leaves it
	// out. Default: "stat.xsl" (next to /stat).
	Stylesheet string
}

// ServeHTTP implements http.Handler.
func (h *StatHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, http.StatusText(http.StatusMethodNotAllowed), http.StatusMethodNotAllowed)
		return
	}
	css := h.Stylesheet
	if css == "" {
		css = "stat.xsl"
	}
	b := h.Collector.StatXML(css)
	hd := w.Header()
	hd.Set("Content-Type", "text/xml; charset=utf-8")
	hd.Set("Cache-Control", "no-store")
	hd.Set("Content-Length", strconv.Itoa(len(b)))
	if r.Method == http.MethodHead {
		return
	}
	_, _ = w.Write(b)
}

// StatXSLHandler serves /stat.xsl, the stylesheet that renders /stat in a browser.
type StatXSLHandler struct{}

// ServeHTTP implements http.Handler.
func (StatXSLHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	serveAsset(w, r, "text/xsl; charset=utf-8", statXSL)
}

// statJS opens and closes the rows of clients in the page stat.xsl renders.
//
//go:embed stat.js
var statJS []byte

// StatJSHandler serves /stat.js, the script stat.xsl loads (the Content-Security-Policy
// of /stat refuses the inline onclick of nginx-rtmp's stylesheet).
type StatJSHandler struct{}

// ServeHTTP implements http.Handler.
func (StatJSHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	serveAsset(w, r, "text/javascript; charset=utf-8", statJS)
}

// serveAsset serves a static file of /stat's page.
func serveAsset(w http.ResponseWriter, r *http.Request, contentType string, b []byte) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, http.StatusText(http.StatusMethodNotAllowed), http.StatusMethodNotAllowed)
		return
	}
	hd := w.Header()
	hd.Set("Content-Type", contentType)
	hd.Set("Cache-Control", "public, max-age=3600")
	hd.Set("Content-Length", strconv.Itoa(len(b)))
	if r.Method == http.MethodHead {
		return
	}
	_, _ = w.Write(b)
}

// xmlWriter writes nginx-rtmp's flat XML.
type xmlWriter struct{ bytes.Buffer }

func (x *xmlWriter) text(name, v string) {
	x.WriteByte('<')
	x.WriteString(name)
	x.WriteByte('>')
	_ = xml.EscapeText(x, []byte(v))
	x.WriteString("</")
	x.WriteString(name)
	x.WriteByte('>')
}

func (x *xmlWriter) uint(name string, v uint64) { x.text(name, strconv.FormatUint(v, 10)) }
func (x *xmlWriter) int(name string, v int64)   { x.text(name, strconv.FormatInt(v, 10)) }
func (x *xmlWriter) bits(name string, bps float64) {
	x.uint(name, uint64(max(bps, 0)+0.5))
}

func (x *xmlWriter) flag(name string, set bool) {
	if set {
		x.WriteByte('<')
		x.WriteString(name)
		x.WriteString("/>")
	}
}

// StatXML renders the /stat document with an xml-stylesheet reference to stylesheet
// (none when it is "-").
func (c *Collector) StatXML(stylesheet string) []byte {
	snap := c.Source.Snapshot()
	now := c.Now()
	bwIn, bwOut, _, _ := c.rates()

	var x xmlWriter
	x.WriteString("<?xml version=\"1.0\" encoding=\"utf-8\" ?>\r\n")
	if stylesheet != "-" {
		x.WriteString("<?xml-stylesheet type=\"text/xsl\" href=\"")
		_ = xml.EscapeText(&x, []byte(stylesheet))
		x.WriteString("\" ?>\r\n")
	}
	x.WriteString("<rtmp>\r\n")
	version := c.Version
	if version == "" {
		version = "dev"
	}
	x.text("nginx_version", "onair "+version)
	x.WriteString("\r\n")
	x.text("nginx_rtmp_version", version)
	x.WriteString("\r\n")
	x.text("compiler", runtime.Version())
	x.WriteString("\r\n")
	x.text("built", buildTime())
	x.WriteString("\r\n")
	x.int("pid", int64(pid))
	x.WriteString("\r\n")
	x.int("uptime", int64(now.Sub(c.started)/time.Second))
	x.WriteString("\r\n")
	x.uint("naccepted", snap.Accepted)
	x.WriteString("\r\n")
	x.bits("bw_in", bwIn)
	x.WriteString("\r\n")
	x.uint("bytes_in", snap.BytesIn)
	x.WriteString("\r\n")
	x.bits("bw_out", bwOut)
	x.WriteString("\r\n")
	x.uint("bytes_out", c.totalBytesOut(&snap))
	x.WriteString("\r\n")

	x.WriteString("<server>\r\n<application>\r\n")
	x.text("name", "live")
	x.WriteString("\r\n<live>\r\n")

	clients := make(map[string][]*Conn)
	for i := range snap.Conns {
		cc := &snap.Conns[i]
		if cc.Channel != "" && (cc.State == StatePublishing || cc.State == StatePlaying) {
			clients[cc.Channel] = append(clients[cc.Channel], cc)
		}
	}
	total := 0
	for i := range snap.Streams {
		st := &snap.Streams[i]
		x.WriteString("<stream>\r\n")
		x.text("name", st.Name)
		x.WriteString("\r\n")
		x.int("time", now.Sub(st.StartedAt).Milliseconds())
		x.bits("bw_in", st.VideoBitrate+st.AudioBitrate)
		x.WriteString("\r\n")
		x.uint("bytes_in", st.BytesIn)
		x.WriteString("\r\n")
		x.bits("bw_out", c.streamBandwidthOut(st.Name))
		x.WriteString("\r\n")
		x.uint("bytes_out", c.streamBytesOut(st))
		x.WriteString("\r\n")
		x.bits("bw_audio", st.AudioBitrate)
		x.WriteString("\r\n")
		x.bits("bw_video", st.VideoBitrate)
		x.WriteString("\r\n")
		cs := clients[st.Name]
		for _, cc := range cs {
			x.WriteString("<client>")
			x.uint("id", cc.ID)
			x.text("address", cc.Addr)
			x.int("time", now.Sub(cc.Start).Milliseconds())
			if cc.FlashVer != "" {
				x.text("flashver", cc.FlashVer)
			}
			x.uint("dropped", cc.Dropped)
			x.int("avsync", cc.AVSync.Milliseconds())
			x.int("timestamp", cc.Timestamp.Milliseconds())
			x.flag("publishing", cc.State == StatePublishing)
			x.flag("active", cc.Active)
			x.WriteString("</client>\r\n")
		}
		if st.Video != nil || st.Audio != nil {
			writeMeta(&x, st)
		}
		x.int("nclients", int64(len(cs)))
		x.WriteString("\r\n")
		total += len(cs)
		if st.Publishing {
			x.WriteString("<publishing/>\r\n<active/>\r\n")
		}
		x.WriteString("</stream>\r\n")
	}
	x.int("nclients", int64(total))
	x.WriteString("\r\n</live>\r\n</application>\r\n</server>\r\n</rtmp>\r\n")
	return x.Bytes()
}

func writeMeta(x *xmlWriter, st *Stream) {
	x.WriteString("<meta>")
	x.WriteString("<video>")
	if v := st.Video; v != nil {
		x.int("width", int64(v.Width))
		x.int("height", int64(v.Height))
		x.int("frame_rate", int64(st.FPS+0.5))
		x.text("codec", v.Codec)
		if v.Profile != "" {
			x.text("profile", v.Profile)
		}
		if v.Level != "" {
			x.int("compat", int64(v.Compat))
			x.text("level", v.Level)
		}
	}
	x.WriteString("</video>")
	x.WriteString("<audio>")
	if a := st.Audio; a != nil {
		x.text("codec", a.Codec)
		if a.Profile != "" {
			x.text("profile", a.Profile)
		}
		if a.Channels > 0 {
			x.int("channels", int64(a.Channels))
		}
		if a.SampleRate > 0 {
			x.int("sample_rate", int64(a.SampleRate))
		}
	}
	x.WriteString("</audio>")
	x.WriteString("</meta>\r\n")
}

// buildTime returns the commit time of the build (vcs.time), or "".
func buildTime() string {
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "vcs.time" {
				return s.Value
			}
		}
	}
	return ""
}
