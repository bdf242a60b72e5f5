// Package auth resolves who makes an HTTP request and protects cookie-authenticated
// requests against cross-site request forgery (CSRF). It also provides Throttle, a
// bounded per-key failure counter for login and stream-key rate limits.
//
// # Identities
//
// A request is made by one of:
//
//   - a browser session: the "onair_session" cookie holds the session token created by
//     onair.SessionService at login (StartSession). The cookie is HttpOnly (scripts cannot
//     read it), SameSite=Lax (browsers do not send it on cross-site subrequests or
//     cross-site POSTs), Path=/, Secure when the request came over TLS, and its Max-Age is
//     the session's remaining life. A cookie the store does not know, or whose session
//     has expired, makes the request anonymous and is cleared in the response.
//   - an API client: "Authorization: Bearer TOKEN" with a personal API token. A bad
//     token is answered 401 at once: an explicit credential that fails never silently
//     turns into an anonymous request. Bearer requests carry no ambient credential (a
//     browser never adds the header by itself), so they need no CSRF token.
//   - nobody: the request is anonymous. Banned users are treated as anonymous.
//
// Middleware puts the user (and, for cookies, the session) in the request context, where
// UserFromContext and SessionFromContext find them. Handlers decide what an anonymous
// request may do (login and register are anonymous by nature).
//
// # CSRF
//
// Every state-changing request (any method but GET, HEAD, OPTIONS and TRACE) that is not
// a bearer request goes through two checks:
//
//  1. Origin: a browser marks cross-origin requests. When Sec-Fetch-Site says
//     "cross-site" or "same-site", or, without Sec-Fetch-Site, when the Origin header
//     (or, when there is no Origin, the Referer header) names a host other than the
//     request's Host, the request is refused with 403. Requests without any of these
//     headers (curl, old browsers behind privacy settings) pass this check. This check
//     also covers anonymous requests, which stops login CSRF (a forged login into the
//     attacker's account). A reverse proxy in front of onair must pass the original Host
//     header on.
//  2. Token: a request with a session cookie must carry the session's CSRF token, in the
//     X-CSRF-Token header (JavaScript and the JSON API) or in the csrf_token field of an
//     application/x-www-form-urlencoded or multipart/form-data body (HTML forms; the
//     field must come within the body's first MiB, so put it first in the form). The
//     token is compared in constant time. It is random per session, is never in a URL,
//     and is returned by login ({csrf_token}) and rendered into pages by the web layer.
//     A form body read for the token is given back to the handler untouched.
//
// Failures are answered with the API's error shape:
// {"error":{"code":"forbidden","message":"Missing or bad CSRF token."}}.
//
// Tokens are secrets: they are never logged. Middleware logs at Debug the outcome of each
// authentication with the user_id only.
package auth
