package admin

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/zap"

	"github.com/fedas/fedas/events"
	"github.com/fedas/fedas/tracing"
)

// Paths of the admin listener (docs/admin.md).
const (
	PathAPI     = "/admin/v1"
	PathOpenAPI = "/admin/openapi.json"
	PathConsole = "/console"
	// PathMetrics serves Options.Metrics, unauthenticated: the admin
	// listener belongs on loopback or a management network only.
	PathMetrics = "/metrics"
)

// Options are an Admin's dependencies.
type Options struct {
	Service *Service
	Tokens  *Tokens
	Log     *zap.Logger
	// SessionKey (32 bytes) seals console session cookies; instances
	// behind one load balancer must share it (derived from the HMAC
	// secret).
	SessionKey []byte
	Now        func() time.Time
	// TracerProvider makes a span per admin request (package tracing);
	// nil or a no-op provider means no tracing, at no cost.
	TracerProvider trace.TracerProvider
	// Metrics, when set, is served at GET /metrics (the Prometheus
	// exposition; docs/operations.md "Metrics"). When it also counts HTTP
	// requests (accesslog.HTTPMetrics, as *metrics.Metrics does), this
	// listener's requests are counted too.
	Metrics http.Handler
}

// Admin is the admin listener's HTTP surface: the REST API under
// /admin/v1 and the console under /console.
type Admin struct {
	svc    *Service
	tokens *Tokens
	log    *zap.Logger
	key    []byte
	now    func() time.Time
	echo   *echo.Echo
	http   *http.Server
}

// New builds the admin surface.
func New(o Options) (*Admin, error) {
	if o.Service == nil || o.Tokens == nil {
		return nil, errors.New("admin: service and tokens are required")
	}
	if len(o.SessionKey) != 32 {
		return nil, errors.New("admin: a 32-byte session key is required")
	}
	if o.Log == nil {
		o.Log = zap.NewNop()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	a := &Admin{svc: o.Service, tokens: o.Tokens, log: o.Log, key: o.SessionKey, now: o.Now}
	// Entity tags must agree on every instance behind the load balancer,
	// and must not be a plain digest of the entries (etagOf).
	tk := hmac.New(sha256.New, o.SessionKey)
	tk.Write([]byte("fedas/admin-etag/v1"))
	o.Service.keyTags(tk.Sum(nil))
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.HTTPErrorHandler = a.echoError
	e.Use(tracing.Middleware(o.TracerProvider, "admin"))
	e.Use(a.accessLog(o), a.recoverer, a.headers)
	a.echo = e
	e.GET(PathOpenAPI, a.openAPI)
	if o.Metrics != nil {
		e.GET(PathMetrics, echo.WrapHandler(o.Metrics))
	}
	// Authentication is route middleware, not group middleware: a group's
	// middleware makes echo register catch-all routes that answer 404 where
	// a known path with another method must answer 405.
	a.routesAPI(e.Group(PathAPI))
	a.registerConsole(e)
	a.http = &http.Server{Handler: e, ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 30 * time.Second, WriteTimeout: 60 * time.Second, IdleTimeout: 2 * time.Minute}
	return a, nil
}

// Handler returns the admin surface's HTTP handler.
func (a *Admin) Handler() http.Handler { return a.echo }

// Serve serves the admin surface on ln until Shutdown.
func (a *Admin) Serve(ln net.Listener) error {
	err := a.http.Serve(ln)
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// Shutdown stops the admin listener, draining requests in flight.
func (a *Admin) Shutdown(ctx context.Context) error { return a.http.Shutdown(ctx) }

func (a *Admin) routesAPI(g *echo.Group) {
	read, write := a.authorize(RoleRead), a.authorize(RoleWrite)
	g.GET("/status", a.status, read)
	g.GET("/prompt", a.getPrompt, read)
	g.PUT("/prompt", a.putPrompt, write)
	g.DELETE("/prompt", a.deletePrompt, write)
	g.GET("/default-route", a.getDefaultRoute, read)
	g.PUT("/default-route", a.putDefaultRoute, write)
	g.GET("/keys", a.getKeys, read)
	g.PUT("/keys/active", a.putActiveKey, write)
	g.POST("/route-test", a.routeTest, read)
	g.POST("/discover", a.discover, write)
	g.POST("/downstreams/:id/check", a.checkDownstream, write)
	g.GET("/versions", a.history, read)
	g.GET("/versions/:v", a.getVersion, read)
	g.POST("/versions/:v/rollback", a.rollback, write)
	g.GET("/export", a.export, write)
	g.POST("/import", a.importPolicy, write)
	g.GET("/audit", a.audit, read)
	g.PUT("/routes", a.replaceAll, write)
	// One route per collection, not "/:kind": a parameter would take
	// "export" or "prompt" for a collection and answer 404 where a known
	// path with another method must answer 405.
	for _, k := range Kinds {
		p := "/" + string(k)
		g.GET(p, a.list, read)
		g.POST(p, a.create, write)
		g.GET(p+"/:id", a.get, read)
		g.PUT(p+"/:id", a.update, write)
		g.DELETE(p+"/:id", a.remove, write)
	}
}

// authenticate admits requests with "Authorization: Bearer <admin
// token>" only. Cookies are never read here: the API has no ambient
// authority a cross-site page could borrow (CSRF-safe by construction).
func (a *Admin) authenticate(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		hs := c.Request().Header.Values("Authorization")
		if len(hs) > 1 {
			// Two credentials are one too many (RFC 6750 §3.1): a proxy
			// and this server could each read a different one.
			a.log.Warn("admin API: several Authorization headers refused", zap.String("remote", remote(c)), zap.String("path", c.Path()))
			c.Response().Header().Set("WWW-Authenticate", `Bearer realm="fedas-admin", error="invalid_token"`)
			return writeErr(c, errf(http.StatusUnauthorized, "invalid_token", "send exactly one Authorization header"))
		}
		h := c.Request().Header.Get("Authorization")
		scheme, raw, ok := strings.Cut(h, " ")
		if !ok || !strings.EqualFold(scheme, "Bearer") || raw == "" {
			c.Response().Header().Set("WWW-Authenticate", `Bearer realm="fedas-admin"`)
			return writeErr(c, errf(http.StatusUnauthorized, "invalid_token", "send an admin token: Authorization: Bearer <token>"))
		}
		tk, ok := a.tokens.Authenticate(strings.TrimSpace(raw))
		if !ok {
			events.For(c.Request().Context(), a.log).Warn("admin API: token refused", zap.String("remote", remote(c)), zap.String("path", c.Path()))
			c.Response().Header().Set("WWW-Authenticate", `Bearer realm="fedas-admin", error="invalid_token"`)
			return writeErr(c, errf(http.StatusUnauthorized, "invalid_token", "the admin token is not valid"))
		}
		c.Set("actor", Actor{Name: tk.Name, Role: tk.Role, Remote: remote(c), Via: "api"})
		return next(c)
	}
}

// authorize authenticates the request, then requires the role.
func (a *Admin) authorize(r Role) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc { return a.authenticate(need(r)(next)) }
}

// need refuses a token without the role (RFC 6750 §3.1
// insufficient_scope).
func need(r Role) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			if !actorOf(c).Role.can(r) {
				return writeErr(c, errf(http.StatusForbidden, "insufficient_scope", "this needs an admin token with the "+string(r)+" role"))
			}
			return next(c)
		}
	}
}

func actorOf(c echo.Context) Actor {
	a, _ := c.Get("actor").(Actor)
	return a
}

// remote is the peer address: the admin listener sits on loopback or a
// management network, and forwarded headers are never trusted.
func remote(c echo.Context) string {
	host, _, err := net.SplitHostPort(c.Request().RemoteAddr)
	if err != nil {
		return c.Request().RemoteAddr
	}
	return host
}

func (a *Admin) headers(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		h := c.Response().Header()
		h.Set("Cache-Control", "no-store")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("X-Frame-Options", "DENY")
		if !strings.HasPrefix(c.Request().URL.Path, PathConsole) {
			h.Set("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'")
		}
		return next(c)
	}
}

func (a *Admin) recoverer(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) (err error) {
		defer func() {
			if r := recover(); r != nil {
				a.log.Error("admin: panic", zap.Any("panic", r), zap.String("path", c.Path()))
				err = writeErr(c, errf(http.StatusInternalServerError, "server_error", "internal error"))
			}
		}()
		return next(c)
	}
}

// echoError maps echo's own errors (unknown route, wrong method) to the
// same error bodies.
func (a *Admin) echoError(err error, c echo.Context) {
	if c.Response().Committed {
		return
	}
	var he *echo.HTTPError
	if errors.As(err, &he) {
		code := "invalid_request"
		desc := http.StatusText(he.Code)
		switch he.Code {
		case http.StatusNotFound:
			code, desc = "not_found", "no such admin endpoint"
		case http.StatusMethodNotAllowed:
			desc = "method not allowed on this endpoint"
		}
		_ = writeErr(c, errf(he.Code, code, desc))
		return
	}
	_ = writeErr(c, err)
}

// requireIfMatch returns the request's If-Match (RFC 9110 §13.1.1), or
// 428: a write without it could overwrite a change it never saw.
func requireIfMatch(c echo.Context) (string, error) {
	v := c.Request().Header.Get("If-Match")
	if v == "" {
		return "", errNoIfMatch()
	}
	return v, nil
}

// jsonObject reads the request's body as one strict JSON object.
func jsonObject(c echo.Context) (Resource, error) {
	b, err := readBody(c.Request(), "application/json")
	if err != nil {
		return nil, err
	}
	return decodeObject(b)
}

// writeErr writes err as an RFC 6749 §5.2-style JSON body: the one error
// mapping of the admin API.
func writeErr(c echo.Context, err error) error {
	var e *Error
	if !errors.As(err, &e) {
		e = errf(http.StatusInternalServerError, "server_error", "internal error")
	}
	if e.Status == http.StatusServiceUnavailable {
		ra := e.RetryAfter
		if ra <= 0 {
			ra = 2
		}
		c.Response().Header().Set("Retry-After", strconv.Itoa(ra))
	}
	c.Response().Header().Set("Cache-Control", "no-store")
	return c.JSON(e.Status, e)
}

// idParam is the entry id of the path, decoded: echo matches the raw
// path when it holds escapes the decoded one cannot (a client id with
// "/" arrives as %2F) and then leaves the parameter escaped.
func idParam(c echo.Context) string {
	id := c.Param("id")
	if c.Request().URL.RawPath == "" {
		return id
	}
	if u, err := url.PathUnescape(id); err == nil {
		return u
	}
	return id
}

// kindParam is the collection of the route matched: /admin/v1/<kind>….
func kindParam(c echo.Context) (Kind, error) {
	name, _, _ := strings.Cut(strings.TrimPrefix(c.Path(), PathAPI+"/"), "/")
	k := Kind(name)
	if _, ok := collections[k]; !ok {
		return "", errNotFound("collection " + strconv.Quote(string(k)))
	}
	return k, nil
}

func (a *Admin) list(c echo.Context) error {
	k, err := kindParam(c)
	if err != nil {
		return writeErr(c, err)
	}
	items, tag, v, err := a.svc.List(c.Request().Context(), k)
	if err != nil {
		return writeErr(c, err)
	}
	c.Response().Header().Set("ETag", tag)
	return c.JSON(http.StatusOK, map[string]any{"items": items, "version": v})
}

func (a *Admin) get(c echo.Context) error {
	k, err := kindParam(c)
	if err != nil {
		return writeErr(c, err)
	}
	r, tag, err := a.svc.Get(c.Request().Context(), k, idParam(c))
	if err != nil {
		return writeErr(c, err)
	}
	c.Response().Header().Set("ETag", tag)
	return c.JSON(http.StatusOK, r)
}

// written answers a successful write with the new version and, for
// entries, the entry as stored.
func (a *Admin) written(c echo.Context, status int, res Committed, tag string, item Resource) error {
	if tag != "" {
		c.Response().Header().Set("ETag", tag)
	}
	body := map[string]any{"version": res.Version, "changed": res.Changed}
	if res.Summary != "" {
		body["summary"] = res.Summary
	}
	if item != nil {
		body["item"] = item
	}
	return c.JSON(status, body)
}

func (a *Admin) create(c echo.Context) error {
	k, err := kindParam(c)
	if err != nil {
		return writeErr(c, err)
	}
	body, err := jsonObject(c)
	if err != nil {
		return writeErr(c, err)
	}
	ctx := c.Request().Context()
	res, tag, err := a.svc.Create(ctx, actorOf(c), k, body)
	if err != nil {
		return writeErr(c, err)
	}
	id := body["id"].(string)
	item, _, _ := a.svc.Get(ctx, k, id)
	c.Response().Header().Set("Location", PathAPI+"/"+string(k)+"/"+url.PathEscape(id))
	return a.written(c, http.StatusCreated, res, tag, item)
}

func (a *Admin) update(c echo.Context) error {
	k, err := kindParam(c)
	if err != nil {
		return writeErr(c, err)
	}
	ifMatch, err := requireIfMatch(c)
	if err != nil {
		return writeErr(c, err)
	}
	body, err := jsonObject(c)
	if err != nil {
		return writeErr(c, err)
	}
	ctx := c.Request().Context()
	res, tag, err := a.svc.Update(ctx, actorOf(c), k, idParam(c), ifMatch, body)
	if err != nil {
		return writeErr(c, err)
	}
	item, _, _ := a.svc.Get(ctx, k, idParam(c))
	return a.written(c, http.StatusOK, res, tag, item)
}

func (a *Admin) remove(c echo.Context) error {
	k, err := kindParam(c)
	if err != nil {
		return writeErr(c, err)
	}
	ifMatch, err := requireIfMatch(c)
	if err != nil {
		return writeErr(c, err)
	}
	res, err := a.svc.Delete(c.Request().Context(), actorOf(c), k, idParam(c), ifMatch)
	if err != nil {
		return writeErr(c, err)
	}
	return a.written(c, http.StatusOK, res, "", nil)
}

func (a *Admin) replaceAll(c echo.Context) error {
	ifMatch, err := requireIfMatch(c)
	if err != nil {
		return writeErr(c, err)
	}
	b, err := readBody(c.Request(), "application/json")
	if err != nil {
		return writeErr(c, err)
	}
	items, err := decodeArray(b)
	if err != nil {
		return writeErr(c, err)
	}
	res, tag, err := a.svc.ReplaceAll(c.Request().Context(), actorOf(c), Routes, ifMatch, items)
	if err != nil {
		return writeErr(c, err)
	}
	return a.written(c, http.StatusOK, res, tag, nil)
}

func (a *Admin) status(c echo.Context) error {
	head, err := a.svc.Head(c.Request().Context())
	if err != nil {
		return writeErr(c, err)
	}
	snap := a.svc.o.Source.Current()
	act := actorOf(c)
	c.Response().Header().Set("ETag", HeadETag(head))
	return c.JSON(http.StatusOK, map[string]any{
		"version": head, "serving": snap.PolicyVersion, "issuer": a.svc.o.Base.Issuer,
		"actor": act.Name, "role": act.Role,
	})
}

func (a *Admin) getPrompt(c echo.Context) error {
	r, tag, err := a.svc.Prompt(c.Request().Context())
	if err != nil {
		return writeErr(c, err)
	}
	c.Response().Header().Set("ETag", tag)
	if r == nil {
		return writeErr(c, errNotFound("the prompt"))
	}
	return c.JSON(http.StatusOK, r)
}

func (a *Admin) putPrompt(c echo.Context) error {
	ifMatch, err := requireIfMatch(c)
	if err != nil {
		return writeErr(c, err)
	}
	body, err := jsonObject(c)
	if err != nil {
		return writeErr(c, err)
	}
	res, tag, err := a.svc.SetPrompt(c.Request().Context(), actorOf(c), ifMatch, body)
	if err != nil {
		return writeErr(c, err)
	}
	item, _, _ := a.svc.Prompt(c.Request().Context())
	return a.written(c, http.StatusOK, res, tag, item)
}

func (a *Admin) deletePrompt(c echo.Context) error {
	ifMatch, err := requireIfMatch(c)
	if err != nil {
		return writeErr(c, err)
	}
	res, _, err := a.svc.SetPrompt(c.Request().Context(), actorOf(c), ifMatch, nil)
	if err != nil {
		return writeErr(c, err)
	}
	return a.written(c, http.StatusOK, res, "", nil)
}

func (a *Admin) getDefaultRoute(c echo.Context) error {
	r, tag, err := a.svc.DefaultRoute(c.Request().Context())
	if err != nil {
		return writeErr(c, err)
	}
	c.Response().Header().Set("ETag", tag)
	return c.JSON(http.StatusOK, map[string]string{"default_route": r})
}

func (a *Admin) putDefaultRoute(c echo.Context) error {
	ifMatch, err := requireIfMatch(c)
	if err != nil {
		return writeErr(c, err)
	}
	body, err := jsonObject(c)
	if err != nil {
		return writeErr(c, err)
	}
	r, ok := body["default_route"].(string)
	if !ok || len(body) != 1 {
		return writeErr(c, &Error{Status: 400, Code: "invalid_request", Description: "the body must be {\"default_route\": \"local|deny|<downstream id>\"}", Problems: []Problem{{Path: "default_route", Field: "default_route", Message: "required, a string"}}})
	}
	res, tag, err := a.svc.SetDefaultRoute(c.Request().Context(), actorOf(c), ifMatch, r)
	if err != nil {
		return writeErr(c, err)
	}
	return a.written(c, http.StatusOK, res, tag, nil)
}

func (a *Admin) routeTest(c echo.Context) error {
	body, err := jsonObject(c)
	if err != nil {
		return writeErr(c, err)
	}
	var q RouteQuery
	if err := fromResource(body, &q); err != nil {
		return writeErr(c, err)
	}
	ans, err := a.svc.TestRoute(q)
	if err != nil {
		return writeErr(c, err)
	}
	return c.JSON(http.StatusOK, ans)
}

func pageParams(c echo.Context) (uint64, int, error) {
	var before uint64
	var limit int
	if s := c.QueryParam("before"); s != "" {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			return 0, 0, &Error{Status: 400, Code: "invalid_request", Description: "before must be a version number", Problems: []Problem{{Path: "before", Message: "not a number"}}}
		}
		before = v
	}
	if s := c.QueryParam("limit"); s != "" {
		v, err := strconv.Atoi(s)
		if err != nil || v < 1 || v > 200 {
			return 0, 0, &Error{Status: 400, Code: "invalid_request", Description: "limit must be between 1 and 200", Problems: []Problem{{Path: "limit", Message: "between 1 and 200"}}}
		}
		limit = v
	}
	return before, limit, nil
}

func (a *Admin) history(c echo.Context) error {
	before, limit, err := pageParams(c)
	if err != nil {
		return writeErr(c, err)
	}
	vs, head, err := a.svc.History(c.Request().Context(), before, limit)
	if err != nil {
		return writeErr(c, err)
	}
	c.Response().Header().Set("ETag", HeadETag(head))
	return c.JSON(http.StatusOK, map[string]any{"items": vs, "version": head})
}

func versionParam(c echo.Context) (uint64, error) {
	v, err := strconv.ParseUint(c.Param("v"), 10, 64)
	if err != nil || v == 0 {
		return 0, errNotFound("version " + strconv.Quote(c.Param("v")))
	}
	return v, nil
}

func (a *Admin) getVersion(c echo.Context) error {
	v, err := versionParam(c)
	if err != nil {
		return writeErr(c, err)
	}
	d, err := a.svc.Version(c.Request().Context(), v)
	if err != nil {
		return writeErr(c, err)
	}
	return c.JSON(http.StatusOK, d)
}

func (a *Admin) rollback(c echo.Context) error {
	v, err := versionParam(c)
	if err != nil {
		return writeErr(c, err)
	}
	ifMatch, err := requireIfMatch(c)
	if err != nil {
		return writeErr(c, err)
	}
	res, err := a.svc.Rollback(c.Request().Context(), actorOf(c), v, ifMatch)
	if err != nil {
		return writeErr(c, err)
	}
	return a.written(c, http.StatusOK, res, HeadETag(res.Version), nil)
}

func (a *Admin) export(c echo.Context) error {
	b, v, err := a.svc.Export(c.Request().Context())
	if err != nil {
		return writeErr(c, err)
	}
	h := c.Response().Header()
	h.Set("ETag", HeadETag(v))
	h.Set("Content-Disposition", fmt.Sprintf(`attachment; filename="fedas-policy-v%d.yaml"`, v))
	return c.Blob(http.StatusOK, "application/yaml", b)
}

func (a *Admin) importPolicy(c echo.Context) error {
	ifMatch, err := requireIfMatch(c)
	if err != nil {
		return writeErr(c, err)
	}
	b, err := readBody(c.Request(), "application/yaml")
	if err != nil {
		return writeErr(c, err)
	}
	res, err := a.svc.Import(c.Request().Context(), actorOf(c), b, ifMatch)
	if err != nil {
		return writeErr(c, err)
	}
	return a.written(c, http.StatusOK, res, HeadETag(res.Version), nil)
}

func (a *Admin) audit(c echo.Context) error {
	before, limit, err := pageParams(c)
	if err != nil {
		return writeErr(c, err)
	}
	es, err := a.svc.Audit(c.Request().Context(), before, limit)
	if err != nil {
		return writeErr(c, err)
	}
	return c.JSON(http.StatusOK, map[string]any{"items": es})
}
