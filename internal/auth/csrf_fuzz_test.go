package auth_test

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/onair/onair/internal/auth"
	"github.com/onair/onair/internal/onair"
)

// FuzzMiddlewareForm feeds untrusted form bodies to the CSRF form reader: it must not
// panic, must accept only the right token, and must hand the handler the body unchanged.
func FuzzMiddlewareForm(f *testing.F) {
	const token = "tok3n"
	seeds := []struct{ ctype, body string }{
		{"application/x-www-form-urlencoded", "csrf_token=tok3n"},
		{"application/x-www-form-urlencoded", "a=1&csrf_token=tok3n&b=2"},
		{"application/x-www-form-urlencoded", "csrf%5Ftoken=tok%33n"},
		{"application/x-www-form-urlencoded", "csrf_token=%zz"},
		{"application/x-www-form-urlencoded; charset=utf-8", "csrf_token"},
		{"multipart/form-data; boundary=xx", "--xx\r\nContent-Disposition: form-data; name=\"csrf_token\"\r\n\r\ntok3n\r\n--xx--\r\n"},
		{"multipart/form-data; boundary=xx", "--xx\r\nContent-Disposition: form-data; name=\"csrf_token\"; filename=\"a\"\r\n\r\ntok3n\r\n--xx--\r\n"},
		{"multipart/form-data; boundary=xx", "--xx\r\nContent-Disposition: form-data; name=\"csrf_token\"\r\n\r\ntok"},
		{"multipart/form-data", "--xx--"},
		{"text/plain", "csrf_token=tok3n"},
		{"", ""},
	}
	for _, s := range seeds {
		f.Add(s.ctype, []byte(s.body))
	}
	sess := &onair.Session{Token: "cookie", CSRFToken: token, User: &onair.User{ID: 1, Username: "alice"}}
	a := &auth.Authenticator{Sessions: staleSessions{sess: sess}}
	f.Fuzz(func(t *testing.T, ctype string, body []byte) {
		var got []byte
		h := a.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			var err error
			if got, err = io.ReadAll(r.Body); err != nil {
				t.Fatal(err)
			}
		}))
		r := httptest.NewRequest("POST", "/", bytes.NewReader(body))
		r.Header.Set("Content-Type", ctype)
		r.AddCookie(&http.Cookie{Name: auth.DefaultCookieName, Value: "cookie"})
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		switch w.Code {
		case http.StatusOK:
			if !bytes.Equal(got, body) {
				t.Fatalf("handler read %q, want %q", got, body)
			}
		case http.StatusForbidden:
		default:
			t.Fatalf("status %d", w.Code)
		}
	})
}
