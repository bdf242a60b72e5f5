package app

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"encoding/xml"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/onair/onair/internal/config"
	"github.com/onair/onair/internal/testutil"
)

// TestOperatorEndpoints checks /stat, /metrics and /api/v1/stats on a live stream, their
// access rules, and that webhooks for stream start and follow arrive signed.
func TestOperatorEndpoints(t *testing.T) {
	testutil.RequireFFmpeg(t)
	var mu sync.Mutex
	var events []string
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mac := hmac.New(sha256.New, []byte("hook-secret"))
		mac.Write([]byte(r.Header.Get("X-Onair-Timestamp") + "." + string(body)))
		if r.Header.Get("X-Onair-Signature") != "sha256="+hex.EncodeToString(mac.Sum(nil)) {
			http.Error(w, "bad signature", http.StatusUnauthorized)
			return
		}
		mu.Lock()
		events = append(events, r.Header.Get("X-Onair-Event"))
		mu.Unlock()
	}))
	defer hook.Close()

	ts := mustStartServer(t, func(c *config.Config) {
		c.Webhooks = []config.Webhook{{URL: hook.URL, Secret: "hook-secret"}}
	})
	key := mustCreateUser(t, ts, "alice")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	publish(t, ctx, ts.rtmpURL("/live/"+key), defaultPublish)
	waitLive(t, ts, "alice")

	// /stat: nginx-rtmp's schema, readable from loopback (stat_allow) without logging in.
	var stat struct {
		XMLName xml.Name `xml:"rtmp"`
		Server  struct {
			Application []struct {
				Name string `xml:"name"`
				Live struct {
					Streams []struct {
						Name       string    `xml:"name"`
						BytesIn    int64     `xml:"bytes_in"`
						Publishing *struct{} `xml:"publishing"`
					} `xml:"stream"`
				} `xml:"live"`
			} `xml:"application"`
		} `xml:"server"`
	}
	require.Eventually(t, func() bool {
		code, body, _ := getBody(t, ts.httpURL("/stat"))
		if code != http.StatusOK || xml.Unmarshal([]byte(body), &stat) != nil || len(stat.Server.Application) == 0 {
			return false
		}
		ss := stat.Server.Application[0].Live.Streams
		return len(ss) == 1 && ss[0].BytesIn > 0
	}, 10*time.Second, 200*time.Millisecond)
	require.Equal(t, "live", stat.Server.Application[0].Name)
	require.Equal(t, "alice", stat.Server.Application[0].Live.Streams[0].Name)
	require.NotNil(t, stat.Server.Application[0].Live.Streams[0].Publishing)
	_, statBody, _ := getBody(t, ts.httpURL("/stat"))
	require.NotContains(t, statBody, key)

	code, metrics, _ := getBody(t, ts.httpURL("/metrics"))
	require.Equal(t, http.StatusOK, code)
	require.Contains(t, metrics, "go_goroutines")
	require.NotContains(t, metrics, key)

	// The JSON stats are for admins only.
	code, _, _ = getBody(t, ts.httpURL("/api/v1/stats"))
	require.Equal(t, http.StatusUnauthorized, code)

	// A follow (through the API, as bob) and the stream start reach the webhook, signed.
	mustCreateUser(t, ts, "bob")
	token := mustLoginToken(t, ts, "bob")
	req, _ := http.NewRequest(http.MethodPut, ts.httpURL("/api/v1/channels/alice/follow"), nil)
	req.Header.Set("Authorization", "Bearer "+token)
	res, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	res.Body.Close()
	require.Less(t, res.StatusCode, 300)
	require.Eventually(t, func() bool {
		mu.Lock()
		defer mu.Unlock()
		got := strings.Join(events, ",")
		return strings.Contains(got, "stream.started") && strings.Contains(got, "follow")
	}, 15*time.Second, 100*time.Millisecond)
}

// mustLoginToken logs in through the API and returns a personal API token.
func mustLoginToken(t *testing.T, ts *testServer, name string) string {
	t.Helper()
	jar := &cookieJar{}
	client := &http.Client{Jar: jar}
	res, err := client.Post(ts.httpURL("/api/v1/login"), "application/json",
		strings.NewReader(`{"username":"`+name+`","password":"correct horse battery"}`))
	require.NoError(t, err)
	var login struct {
		CSRF string `json:"csrf_token"`
	}
	require.NoError(t, json.NewDecoder(res.Body).Decode(&login))
	res.Body.Close()
	require.Equal(t, http.StatusOK, res.StatusCode)
	req, _ := http.NewRequest(http.MethodPost, ts.httpURL("/api/v1/tokens"), strings.NewReader(`{}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-CSRF-Token", login.CSRF)
	req.Header.Set("Origin", ts.httpURL(""))
	res, err = client.Do(req)
	require.NoError(t, err)
	defer res.Body.Close()
	var tok struct {
		Token string `json:"token"`
	}
	require.NoError(t, json.NewDecoder(res.Body).Decode(&tok))
	require.Equal(t, http.StatusCreated, res.StatusCode)
	require.NotEmpty(t, tok.Token)
	return tok.Token
}

// cookieJar is a minimal jar for one host.
type cookieJar struct {
	mu      sync.Mutex
	cookies []*http.Cookie
}

func (j *cookieJar) SetCookies(_ *url.URL, cs []*http.Cookie) {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.cookies = append(j.cookies, cs...)
}

func (j *cookieJar) Cookies(_ *url.URL) []*http.Cookie {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.cookies
}
