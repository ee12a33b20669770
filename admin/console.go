package admin

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/subtle"
	"embed"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"mime"
	"net/http"
	"net/url"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
	"go.uber.org/zap"
)

// The console (docs/admin.md) is server-rendered HTML on the
// admin listener: no script, one stylesheet, every page behind a sealed
// session cookie, every write through the same Service methods as the
// REST API.

//go:embed web
var webFS embed.FS

const (
	// consoleCSP allows the console's own stylesheet and images and
	// nothing else: no script runs on a console page at all.
	consoleCSP = "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
	// SessionCookie is the console session cookie's name.
	SessionCookie = "fedas_console"
	// loginCookie carries the sign-in form's CSRF value (double submit):
	// there is no session to hold it yet.
	loginCookie = "fedas_console_login"
	// SessionLifetime bounds a console session, whatever the browser
	// does with the cookie.
	SessionLifetime = 8 * time.Hour
	sessionAAD      = "fedas/console-session/v1"
)

// console is the web console's state: the parsed pages and the cookie
// sealer, beside the Admin whose service and tokens it uses.
type console struct {
	a     *Admin
	aead  cipher.AEAD
	pages map[string]*template.Template
}

// consoleSession is what the sealed cookie carries. The token itself is
// never stored: its name and digest are checked against the tokens file
// on every request, so deleting the token's line ends its sessions.
type consoleSession struct {
	Name   string `json:"n"`
	Digest []byte `json:"d"`
	Role   Role   `json:"r"`
	Exp    int64  `json:"e"`
	CSRF   []byte `json:"c"`
}

func (s *consoleSession) canWrite() bool { return s != nil && s.Role.can(RoleWrite) }

// csrfToken is the value every POST form of the session carries.
func (s *consoleSession) csrfToken() string { return base64.RawURLEncoding.EncodeToString(s.CSRF) }

type pageFunc func(c echo.Context, s *consoleSession) error

// registerConsole mounts the web console (docs/admin.md): a sign-in page,
// then every page behind a session.
func (a *Admin) registerConsole(e *echo.Echo) {
	e.GET("/", func(c echo.Context) error { return c.Redirect(http.StatusSeeOther, PathConsole+"/") })
	block, err := aes.NewCipher(a.key)
	if err != nil {
		panic("admin console: " + err.Error()) // New checked the key's length
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		panic("admin console: " + err.Error())
	}
	k := &console{a: a, aead: aead, pages: consolePages}
	g := e.Group(PathConsole, k.headers)
	g.RouteNotFound("/*", k.withSession(k.notFound, false))
	g.GET("", func(c echo.Context) error { return c.Redirect(http.StatusSeeOther, PathConsole+"/") })
	g.GET("/static/console.css", k.stylesheet)
	g.GET("/login", k.loginPage)
	g.POST("/login", k.login)

	get := func(path string, h pageFunc) { g.GET(path, k.withSession(h, false)) }
	write := func(path string, h pageFunc) { g.POST(path, k.withSession(h, true)) }
	g.POST("/logout", k.withSession(k.logout, false))
	get("/", k.overview)
	for _, kind := range Kinds {
		base := "/" + string(kind)
		get(base, k.list(kind))
		get(base+"/new", k.newForm(kind))
		write(base+"/new", k.create(kind))
		get(base+"/:id/edit", k.edit(kind))
		write(base+"/:id/edit", k.update(kind))
		get(base+"/:id/delete", k.confirmDelete(kind))
		write(base+"/:id/delete", k.remove(kind))
	}
	write("/routes/:id/move", k.moveRoute)
	write("/downstreams/:id/check", k.check)
	get("/discover", k.discoverPage)
	write("/discover", k.discover)
	get("/prompt", k.promptPage)
	write("/prompt", k.savePrompt)
	write("/prompt/delete", k.deletePrompt)
	get("/default-route", k.defaultRoutePage)
	write("/default-route", k.saveDefaultRoute)
	get("/route-test", k.routeTest)
	get("/audit", k.audit)
	get("/versions", k.versions)
	get("/versions/:v", k.version)
	write("/versions/:v/rollback", k.rollback)
	get("/export", k.export)
}

// consolePages are the page templates, parsed once: each page file
// defines "content" inside the shared layout and form partials.
var consolePages = parsePages()

func parsePages() map[string]*template.Template {
	base := template.Must(template.New("").Funcs(template.FuncMap{
		"diffLines": diffLines,
		"when":      func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05 UTC") },
		"iso":       func(t time.Time) string { return t.UTC().Format(time.RFC3339) },
		"add1":      func(i int) int { return i + 1 },
	}).ParseFS(webFS, "web/layout.html", "web/partials.html"))
	names, err := fs.Glob(webFS, "web/*.html")
	if err != nil {
		panic(err)
	}
	out := map[string]*template.Template{}
	for _, n := range names {
		name := strings.TrimSuffix(strings.TrimPrefix(n, "web/"), ".html")
		if name == "layout" || name == "partials" {
			continue
		}
		out[name] = template.Must(template.Must(base.Clone()).ParseFS(webFS, n))
	}
	return out
}

// headers sets the console's own CSP on every response under /console
// (the API's headers middleware leaves it to us). The referrer policy is
// same-origin, not the API's no-referrer: under no-referrer a browser
// sends "Origin: null" even on a same-origin form POST (Fetch,
// "append a request Origin header"), and the Origin check needs the
// real one; console URLs still never reach another site.
func (k *console) headers(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		h := c.Response().Header()
		h.Set("Content-Security-Policy", consoleCSP)
		h.Set("Referrer-Policy", "same-origin")
		h.Set("Cross-Origin-Opener-Policy", "same-origin")
		h.Set("Cross-Origin-Resource-Policy", "same-origin")
		return next(c)
	}
}

func (k *console) stylesheet(c echo.Context) error {
	b, err := webFS.ReadFile("web/console.css")
	if err != nil {
		return err
	}
	return c.Blob(http.StatusOK, "text/css; charset=utf-8", b)
}

// withSession admits requests with a valid session; others are sent to
// the sign-in page. For POSTs (write or not) it also refuses foreign
// origins and a missing or wrong CSRF value, and, when write is set, a
// session without the write role: the REST API's roles, enforced here
// on the form posts.
func (k *console) withSession(h pageFunc, write bool) echo.HandlerFunc {
	return func(c echo.Context) error {
		r := c.Request()
		s := k.open(r)
		if s == nil {
			next := ""
			if r.Method == http.MethodGet {
				next = r.URL.RequestURI()
			}
			return c.Redirect(http.StatusSeeOther, loginURL(next))
		}
		if r.Method == http.MethodPost {
			if !sameOrigin(r) {
				k.a.log.Warn("console: cross-origin POST refused", zap.String("remote", remote(c)), zap.String("origin", r.Header.Get("Origin")), zap.String("path", r.URL.Path))
				return k.fail(c, s, http.StatusForbidden, "This request came from another site and was refused.")
			}
			if err := parseForm(c); err != nil {
				return k.fail(c, s, err.Status, err.Description)
			}
			got := r.PostForm.Get("csrf")
			if subtle.ConstantTimeCompare([]byte(got), []byte(s.csrfToken())) != 1 {
				k.a.log.Warn("console: POST without a valid CSRF value refused", zap.String("remote", remote(c)), zap.String("path", r.URL.Path))
				return k.fail(c, s, http.StatusForbidden, "The form expired or did not come from this console. Reload the page and try again.")
			}
			if write && !s.canWrite() {
				return k.fail(c, s, http.StatusForbidden, "Your admin token has the read role: it cannot change anything.")
			}
		}
		return h(c, s)
	}
}

// parseForm reads a bounded urlencoded body into r.PostForm.
func parseForm(c echo.Context) *Error {
	r := c.Request()
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if mt != "application/x-www-form-urlencoded" {
		return errf(http.StatusUnsupportedMediaType, "invalid_request", "Forms must be sent as application/x-www-form-urlencoded.")
	}
	r.Body = http.MaxBytesReader(c.Response(), r.Body, maxBody)
	if err := r.ParseForm(); err != nil {
		return errf(http.StatusBadRequest, "invalid_request", "The form could not be read.")
	}
	return nil
}

// sameOrigin refuses a POST whose Origin (or, without one, Sec-Fetch-Site)
// says it came from another site. Behind a TLS-terminating proxy the
// browser's origin is https while we see plain HTTP, so on a plain
// listener both schemes of our own host are ours; on a TLS listener only
// https is.
func sameOrigin(r *http.Request) bool {
	o := r.Header.Get("Origin")
	if o == "" {
		site := r.Header.Get("Sec-Fetch-Site")
		return site == "" || site == "same-origin" || site == "none"
	}
	// An origin is exactly scheme "://" host[":" port] (RFC 6454 §6.1):
	// no userinfo, path, query or fragment, which a browser never sends.
	scheme, host, ok := strings.Cut(o, "://")
	if !ok || !strings.EqualFold(host, r.Host) {
		return false
	}
	scheme = strings.ToLower(scheme)
	if r.TLS != nil {
		return scheme == "https"
	}
	return scheme == "http" || scheme == "https"
}

func loginURL(next string) string {
	if next == "" || next == PathConsole+"/" {
		return PathConsole + "/login"
	}
	return PathConsole + "/login?" + url.Values{"next": {next}}.Encode()
}

// safeNext keeps a post-login redirect inside the console: a path of
// ours, no other host, no dot segments climbing out of /console.
func safeNext(next string) string {
	u, err := url.Parse(next)
	if err != nil || u.Scheme != "" || u.Host != "" || u.Opaque != "" || !strings.HasPrefix(u.Path, PathConsole+"/") ||
		(path.Clean(u.Path) != strings.TrimSuffix(u.Path, "/") && path.Clean(u.Path) != u.Path) ||
		strings.Contains(next, "//") || strings.Contains(next, `\`) || strings.HasPrefix(u.Path, PathConsole+"/login") {
		return PathConsole + "/"
	}
	return next
}

// seal encrypts a session into a cookie value (AES-256-GCM, random
// nonce): the browser can neither read nor forge it.
func (k *console) seal(s *consoleSession) (string, error) {
	b, err := json.Marshal(s)
	if err != nil {
		return "", err
	}
	nonce := make([]byte, k.aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return "", err
	}
	out := k.aead.Seal(nonce, nonce, b, []byte(sessionAAD))
	return base64.RawURLEncoding.EncodeToString(out), nil
}

// open returns the request's session, or nil when it has none, it does
// not decrypt, it expired, or its token is no longer in the tokens file.
// The role is the file's, so a changed line takes effect at once.
func (k *console) open(r *http.Request) *consoleSession {
	ck, err := r.Cookie(SessionCookie)
	if err != nil || len(ck.Value) > 4096 {
		return nil
	}
	raw, err := base64.RawURLEncoding.DecodeString(ck.Value)
	ns := k.aead.NonceSize()
	if err != nil || len(raw) < ns+k.aead.Overhead() {
		return nil
	}
	b, err := k.aead.Open(nil, raw[:ns], raw[ns:], []byte(sessionAAD))
	if err != nil {
		return nil
	}
	var s consoleSession
	if err := json.Unmarshal(b, &s); err != nil || len(s.Digest) != 32 || len(s.CSRF) != 32 {
		return nil
	}
	if k.a.now().Unix() >= s.Exp {
		return nil
	}
	var d [32]byte
	copy(d[:], s.Digest)
	tk, ok := k.a.tokens.Lookup(s.Name, d)
	if !ok {
		return nil
	}
	s.Role = tk.Role
	return &s
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic("admin console: no randomness: " + err.Error())
	}
	return b
}

func secureCookie(r *http.Request) bool { return r.TLS != nil }

type loginData struct {
	Next  string
	Error string
	CSRF  string
}

// loginPage shows the sign-in form, with a fresh double-submit value in
// a cookie scoped to the form's own path.
func (k *console) loginPage(c echo.Context) error {
	if s := k.open(c.Request()); s != nil {
		return c.Redirect(http.StatusSeeOther, safeNext(c.QueryParam("next")))
	}
	return k.showLogin(c, http.StatusOK, c.QueryParam("next"), "")
}

func (k *console) showLogin(c echo.Context, status int, next, msg string) error {
	v := base64.RawURLEncoding.EncodeToString(randomBytes(32))
	c.SetCookie(&http.Cookie{Name: loginCookie, Value: v, Path: PathConsole + "/login", HttpOnly: true, Secure: secureCookie(c.Request()), SameSite: http.SameSiteStrictMode})
	return k.render(c, status, "login", &view{Title: "Sign in", Data: loginData{Next: safeNext(next), Error: msg, CSRF: v}})
}

func (k *console) login(c echo.Context) error {
	r := c.Request()
	if !sameOrigin(r) {
		return k.fail(c, nil, http.StatusForbidden, "This request came from another site and was refused.")
	}
	if err := parseForm(c); err != nil {
		return k.fail(c, nil, err.Status, err.Description)
	}
	next := r.PostForm.Get("next")
	ck, err := r.Cookie(loginCookie)
	if err != nil || ck.Value == "" || subtle.ConstantTimeCompare([]byte(ck.Value), []byte(r.PostForm.Get("csrf"))) != 1 {
		return k.showLogin(c, http.StatusForbidden, next, "The sign-in form expired. Enter your token again.")
	}
	tk, ok := k.a.tokens.Authenticate(strings.TrimSpace(r.PostForm.Get("token")))
	if !ok {
		k.a.log.Warn("console: sign-in refused", zap.String("remote", remote(c)))
		return k.showLogin(c, http.StatusUnauthorized, next, "That admin token is not valid.")
	}
	d := tk.Digest()
	s := &consoleSession{Name: tk.Name, Digest: d[:], Role: tk.Role, Exp: k.a.now().Add(SessionLifetime).Unix(), CSRF: randomBytes(32)}
	val, err := k.seal(s)
	if err != nil {
		return err
	}
	c.SetCookie(&http.Cookie{Name: SessionCookie, Value: val, Path: PathConsole, HttpOnly: true, Secure: secureCookie(r), SameSite: http.SameSiteStrictMode})
	c.SetCookie(&http.Cookie{Name: loginCookie, Value: "", Path: PathConsole + "/login", MaxAge: -1, HttpOnly: true, Secure: secureCookie(r), SameSite: http.SameSiteStrictMode})
	k.a.log.Info("console: signed in", zap.String("actor", tk.Name), zap.String("role", string(tk.Role)), zap.String("remote", remote(c)))
	return c.Redirect(http.StatusSeeOther, safeNext(next))
}

func (k *console) logout(c echo.Context, s *consoleSession) error {
	c.SetCookie(&http.Cookie{Name: SessionCookie, Value: "", Path: PathConsole, MaxAge: -1, HttpOnly: true, Secure: secureCookie(c.Request()), SameSite: http.SameSiteStrictMode})
	k.a.log.Info("console: signed out", zap.String("actor", s.Name), zap.String("remote", remote(c)))
	return c.Redirect(http.StatusSeeOther, PathConsole+"/login")
}

// view is what every page template gets: the layout's data and the
// page's own in Data.
type view struct {
	Title string
	// Nav names the active section of the navigation.
	Nav      string
	User     string
	Role     Role
	CanWrite bool
	CSRF     string
	Flash    string
	Data     any
}

// page builds a view for a signed-in session.
func (k *console) page(c echo.Context, s *consoleSession, title, nav string, data any) *view {
	v := &view{Title: title, Nav: nav, Data: data}
	if s != nil {
		v.User, v.Role, v.CanWrite, v.CSRF = s.Name, s.Role, s.canWrite(), s.csrfToken()
	}
	v.Flash = flashOf(c)
	return v
}

// flashOf turns the redirect's query (?saved=N) into the message shown
// after a write; only numbers are taken from the URL.
func flashOf(c echo.Context) string {
	q := c.QueryParams()
	for _, f := range []struct{ key, text string }{
		{"saved", "Saved: version %d."},
		{"deleted", "Deleted: version %d."},
		{"unchanged", "Nothing changed: still version %d."},
		{"rolledback", "Rolled back: version %d is in force."},
	} {
		if s := q.Get(f.key); s != "" {
			if n, err := strconv.ParseUint(s, 10, 64); err == nil {
				return fmt.Sprintf(f.text, n)
			}
		}
	}
	return ""
}

// savedURL is where a successful write sends the browser (303).
func savedURL(path string, res Committed, deleted bool) string {
	key := "saved"
	switch {
	case !res.Changed:
		key = "unchanged"
	case deleted:
		key = "deleted"
	}
	return PathConsole + path + "?" + key + "=" + strconv.FormatUint(res.Version, 10)
}

func (k *console) render(c echo.Context, status int, name string, v *view) error {
	t, ok := k.pages[name]
	if !ok {
		return fmt.Errorf("admin console: no page %q", name)
	}
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, "layout", v); err != nil {
		k.a.log.Error("console: page failed to render", zap.String("page", name), zap.Error(err))
		return c.String(http.StatusInternalServerError, "internal error")
	}
	return c.HTMLBlob(status, buf.Bytes())
}

type failData struct {
	Status  int
	Message string
}

// fail shows an error page.
func (k *console) fail(c echo.Context, s *consoleSession, status int, msg string) error {
	return k.render(c, status, "error", k.page(c, s, http.StatusText(status), "", failData{Status: status, Message: msg}))
}

// failErr shows a Service error that is not about a form's fields.
func (k *console) failErr(c echo.Context, s *consoleSession, err error) error {
	var e *Error
	if !errors.As(err, &e) {
		k.a.log.Error("console: request failed", zap.String("path", c.Request().URL.Path), zap.Error(err))
		return k.fail(c, s, http.StatusInternalServerError, "Something went wrong on the server; nothing was changed.")
	}
	if e.Status == http.StatusServiceUnavailable {
		c.Response().Header().Set("Retry-After", strconv.Itoa(max(e.RetryAfter, 2)))
	}
	return k.fail(c, s, e.Status, sentence(e.Description))
}

func (k *console) notFound(c echo.Context, s *consoleSession) error {
	return k.fail(c, s, http.StatusNotFound, "There is no such console page.")
}

func actorOfSession(c echo.Context, s *consoleSession) Actor {
	return Actor{Name: s.Name, Role: s.Role, Remote: remote(c), Via: "console"}
}
