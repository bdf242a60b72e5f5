package cmafstream

import (
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestServeBytes(t *testing.T) {
	chunks := [][]byte{[]byte("hello "), []byte("segment "), []byte("bytes")}
	const body = "hello segment bytes"
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ServeBytes(w, r, "video/mp2t", `"e1"`, chunks)
	}))
	defer srv.Close()

	do := func(method string, hdr map[string]string) (*http.Response, string) {
		req, err := http.NewRequest(method, srv.URL, nil)
		require.NoError(t, err)
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		resp, err := srv.Client().Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		return resp, string(b)
	}

	resp, b := do(http.MethodGet, nil)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, body, b)
	require.EqualValues(t, len(body), resp.ContentLength)
	require.Equal(t, "video/mp2t", resp.Header.Get("Content-Type"))
	require.Equal(t, `"e1"`, resp.Header.Get("ETag"))
	require.Equal(t, "bytes", resp.Header.Get("Accept-Ranges"))
	require.Contains(t, resp.Header.Get("Cache-Control"), "immutable")

	resp, b = do(http.MethodHead, nil)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Empty(t, b)
	require.EqualValues(t, len(body), resp.ContentLength)

	resp, b = do(http.MethodGet, map[string]string{"Range": "bytes=6-12"})
	require.Equal(t, http.StatusPartialContent, resp.StatusCode)
	require.Equal(t, "segment", b)

	resp, b = do(http.MethodGet, map[string]string{"If-None-Match": `"e1"`})
	require.Equal(t, http.StatusNotModified, resp.StatusCode)
	require.Empty(t, b)

	resp, b = do(http.MethodGet, map[string]string{"If-None-Match": `"other"`})
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, body, b)
}
