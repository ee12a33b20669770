package admin

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/fedas/fedas/admin/probe"
	"github.com/fedas/fedas/config"
	"github.com/fedas/fedas/storage"
)

// Titles of the collections, singular and plural.
var kindNames = map[Kind][2]string{
	Downstreams: {"downstream", "Downstreams"},
	Routes:      {"route", "Routes"},
	Clients:     {"client", "Clients"},
	Apps:        {"app", "Apps"},
}

func kindPath(k Kind) string { return "/" + string(k) }

func itemPath(k Kind, id string) string {
	return PathConsole + kindPath(k) + "/" + url.PathEscape(id)
}

// env reads the head policy's ids for the forms' choices.
func (k *console) env(c echo.Context) (formEnv, config.Policy, uint64, error) {
	v, p, err := k.a.svc.head(c.Request().Context())
	if err != nil {
		return formEnv{}, p, 0, err
	}
	return envOf(p, k.a.svc.Base()), p, v, nil
}

type overviewData struct {
	Issuer       string
	Head         uint64
	Serving      uint64
	Counts       []countView
	Prompt       bool
	DefaultRoute string
}

type countView struct {
	Label string
	Path  string
	N     int
}

func (k *console) overview(c echo.Context, s *consoleSession) error {
	_, p, head, err := k.env(c)
	if err != nil {
		return k.failErr(c, s, err)
	}
	d := overviewData{Issuer: k.a.svc.Base().Issuer, Head: head, Prompt: p.Prompt != nil, DefaultRoute: p.DefaultRoute}
	if src := k.a.svc.o.Source; src != nil {
		if snap := src.Current(); snap != nil {
			d.Serving = snap.PolicyVersion
		}
	}
	if d.DefaultRoute == "" {
		d.DefaultRoute = "local"
	}
	for _, kind := range Kinds {
		d.Counts = append(d.Counts, countView{Label: kindNames[kind][1], Path: PathConsole + kindPath(kind), N: len(collections[kind].ids(p))})
	}
	return k.render(c, http.StatusOK, "overview", k.page(c, s, "Overview", "overview", d))
}

type listData struct {
	Kind     Kind
	Singular string
	Columns  []string
	Rows     []listRow
	NewURL   string
	// ETag of the list, for the route moves.
	ETag string
	// DefaultRoute is shown under the routes.
	DefaultRoute string
	Routes       bool
}

type listRow struct {
	ID      string
	EditURL string
	Cells   []string
	First   bool
	Last    bool
}

func (k *console) list(kind Kind) pageFunc {
	return func(c echo.Context, s *consoleSession) error {
		items, tag, _, err := k.a.svc.List(c.Request().Context(), kind)
		if err != nil {
			return k.failErr(c, s, err)
		}
		d := listData{Kind: kind, Singular: kindNames[kind][0], NewURL: PathConsole + kindPath(kind) + "/new", ETag: tag, Routes: kind == Routes}
		d.Columns = listColumns[kind]
		for i, r := range items {
			id, _ := r["id"].(string)
			d.Rows = append(d.Rows, listRow{ID: id, EditURL: itemPath(kind, id) + "/edit", Cells: listCells(kind, i, r), First: i == 0, Last: i == len(items)-1})
		}
		if kind == Routes {
			dr, _, err := k.a.svc.DefaultRoute(c.Request().Context())
			if err != nil {
				return k.failErr(c, s, err)
			}
			if dr == "" {
				dr = "local"
			}
			d.DefaultRoute = dr
		}
		return k.render(c, http.StatusOK, "list", k.page(c, s, kindNames[kind][1], string(kind), d))
	}
}

// listColumns follow the id column of each list.
var listColumns = map[Kind][]string{
	Downstreams: {"Name", "Issuer", "Client ID", "Authentication"},
	Routes:      {"Order", "When", "Target"},
	Clients:     {"Name", "Authentication", "Kind"},
	Apps:        {"Client", "Deep link"},
}

func str(r Resource, path string) string {
	v := getPath(r, path)
	if v == nil {
		return ""
	}
	return fmt.Sprint(v)
}

func listCells(kind Kind, i int, r Resource) []string {
	switch kind {
	case Downstreams:
		return []string{str(r, "name"), str(r, "issuer"), str(r, "client_id"), str(r, "auth.method")}
	case Routes:
		return []string{strconv.Itoa(i + 1), routeConditions(r), routeTarget(r)}
	case Clients:
		var flags []string
		if b, _ := r["first_party"].(bool); b {
			flags = append(flags, "first party")
		}
		if b, _ := r["federating"].(bool); b {
			flags = append(flags, "federating")
		}
		return []string{str(r, "name"), str(r, "token_endpoint_auth_method"), strings.Join(flags, ", ")}
	case Apps:
		return []string{str(r, "client_id"), str(r, "deep_link")}
	}
	return nil
}

func routeConditions(r Resource) string {
	var parts []string
	if ds := strList(r["email_domains"]); len(ds) > 0 {
		parts = append(parts, "email @"+strings.Join(ds, ", @"))
	}
	if o, ok := r["option"].(map[string]any); ok {
		parts = append(parts, fmt.Sprintf("%v = %v", o["key"], o["value"]))
	}
	if cs := strList(r["clients"]); len(cs) > 0 {
		parts = append(parts, "client "+strings.Join(cs, ", "))
	}
	return strings.Join(parts, "; and ")
}

func routeTarget(r Resource) string {
	t := targetOf(r)
	if len(t) == 0 {
		return ""
	}
	return strings.Replace(t[0], ":", " ", 1)
}

// formData is a resource form page.
type formData struct {
	Kind     Kind
	Singular string
	Action   string
	Edit     bool
	ID       string
	ETag     string
	ListURL  string
	Form     formState
	// Steps are the discovery steps that prefilled a new downstream.
	Steps []probe.Step
	// Downstream pages offer the check.
	CheckURL  string
	DeleteURL string
}

func (k *console) showForm(c echo.Context, s *consoleSession, status int, kind Kind, edit bool, id, etag string, vals url.Values, stored Resource, err *Error, steps []probe.Step) error {
	env, _, _, e := k.env(c)
	if e != nil {
		return k.failErr(c, s, e)
	}
	f := forms[kind]
	d := formData{Kind: kind, Singular: kindNames[kind][0], Edit: edit, ID: id, ETag: etag, ListURL: PathConsole + kindPath(kind), Steps: steps}
	d.Form = f.build(env, vals, stored, edit, err)
	title := "New " + d.Singular
	if edit {
		d.Action = itemPath(kind, id) + "/edit"
		d.DeleteURL = itemPath(kind, id) + "/delete"
		if kind == Downstreams {
			d.CheckURL = itemPath(kind, id) + "/check"
		}
		title = kindNames[kind][0] + " " + id
		title = strings.ToUpper(title[:1]) + title[1:]
	} else {
		d.Action = PathConsole + kindPath(kind) + "/new"
	}
	return k.render(c, status, "form", k.page(c, s, title, string(kind), d))
}

func (k *console) newForm(kind Kind) pageFunc {
	return func(c echo.Context, s *consoleSession) error {
		vals := url.Values{}
		if kind == Routes {
			_, p, _, err := k.env(c)
			if err != nil {
				return k.failErr(c, s, err)
			}
			vals.Set("id", nextRouteID(p))
		}
		if kind == Downstreams {
			vals.Set("auth.method", "private_key_jwt")
		}
		if kind == Clients {
			vals.Set("token_endpoint_auth_method", "none")
			vals["grant_types"] = []string{"authorization_code", "refresh_token"}
		}
		return k.showForm(c, s, http.StatusOK, kind, false, "", "", vals, nil, nil, nil)
	}
}

// nextRouteID proposes route-N for a new route.
func nextRouteID(p config.Policy) string {
	taken := map[string]bool{}
	for _, r := range p.Routes {
		taken[r.ID] = true
	}
	for n := len(p.Routes) + 1; ; n++ {
		if id := "route-" + strconv.Itoa(n); !taken[id] {
			return id
		}
	}
}

// formError turns a refused write into what the form shows: the
// Service's problems, a taken id on the id field.
func formError(err error) (*Error, bool) {
	var e *Error
	if !errors.As(err, &e) {
		return nil, false
	}
	if e.Status == http.StatusConflict && len(e.Problems) == 0 {
		c := *e
		c.Problems = []Problem{{Field: "id", Message: e.Description}}
		e = &c
	}
	return e, true
}

func (k *console) create(kind Kind) pageFunc {
	return func(c echo.Context, s *consoleSession) error {
		form := c.Request().PostForm
		f := forms[kind]
		r, problems := f.resource(nil, form)
		if len(problems) > 0 {
			return k.showForm(c, s, http.StatusBadRequest, kind, false, "", "", form, nil, &Error{Status: 400, Description: "Some fields could not be read; nothing was saved.", Problems: problems}, nil)
		}
		res, _, err := k.a.svc.Create(c.Request().Context(), actorOfSession(c, s), kind, r)
		if err != nil {
			e, ok := formError(err)
			if !ok {
				return k.failErr(c, s, err)
			}
			return k.showForm(c, s, e.Status, kind, false, "", "", form, nil, e, nil)
		}
		return c.Redirect(http.StatusSeeOther, savedURL(kindPath(kind), res, false))
	}
}

func (k *console) edit(kind Kind) pageFunc {
	return func(c echo.Context, s *consoleSession) error {
		id := idParam(c)
		r, tag, err := k.a.svc.Get(c.Request().Context(), kind, id)
		if err != nil {
			return k.failErr(c, s, err)
		}
		return k.showForm(c, s, http.StatusOK, kind, true, id, tag, forms[kind].values(r), r, nil, nil)
	}
}

func (k *console) update(kind Kind) pageFunc {
	return func(c echo.Context, s *consoleSession) error {
		ctx := c.Request().Context()
		id := idParam(c)
		form := c.Request().PostForm
		etag := form.Get("etag")
		stored, _, err := k.a.svc.Get(ctx, kind, id)
		if err != nil {
			return k.failErr(c, s, err)
		}
		f := forms[kind]
		r, problems := f.resource(stored, form)
		r["id"] = id
		if len(problems) > 0 {
			return k.showForm(c, s, http.StatusBadRequest, kind, true, id, etag, form, stored, &Error{Status: 400, Description: "Some fields could not be read; nothing was saved.", Problems: problems}, nil)
		}
		if etag == "" {
			return k.showForm(c, s, http.StatusPreconditionRequired, kind, true, id, etag, form, stored, errNoIfMatch(), nil)
		}
		res, _, err := k.a.svc.Update(ctx, actorOfSession(c, s), kind, id, etag, r)
		if err != nil {
			e, ok := formError(err)
			if !ok {
				return k.failErr(c, s, err)
			}
			return k.showForm(c, s, e.Status, kind, true, id, etag, form, stored, e, nil)
		}
		return c.Redirect(http.StatusSeeOther, savedURL(kindPath(kind), res, false))
	}
}

type deleteData struct {
	Kind     Kind
	Singular string
	ID       string
	ETag     string
	Action   string
	Cancel   string
	Form     formState
}

func (k *console) showDelete(c echo.Context, s *consoleSession, status int, kind Kind, id, etag string, err *Error) error {
	d := deleteData{Kind: kind, Singular: kindNames[kind][0], ID: id, ETag: etag, Action: itemPath(kind, id) + "/delete", Cancel: itemPath(kind, id) + "/edit"}
	d.Form = formDef{}.build(formEnv{}, nil, nil, false, err)
	return k.render(c, status, "delete", k.page(c, s, "Delete "+d.Singular+" "+id, string(kind), d))
}

func (k *console) confirmDelete(kind Kind) pageFunc {
	return func(c echo.Context, s *consoleSession) error {
		id := idParam(c)
		_, tag, err := k.a.svc.Get(c.Request().Context(), kind, id)
		if err != nil {
			return k.failErr(c, s, err)
		}
		return k.showDelete(c, s, http.StatusOK, kind, id, tag, nil)
	}
}

func (k *console) remove(kind Kind) pageFunc {
	return func(c echo.Context, s *consoleSession) error {
		id := idParam(c)
		etag := c.Request().PostForm.Get("etag")
		if etag == "" {
			return k.showDelete(c, s, http.StatusPreconditionRequired, kind, id, etag, errNoIfMatch())
		}
		res, err := k.a.svc.Delete(c.Request().Context(), actorOfSession(c, s), kind, id, etag)
		if err != nil {
			e, ok := formError(err)
			if !ok || e.Status == http.StatusNotFound {
				return k.failErr(c, s, err)
			}
			return k.showDelete(c, s, e.Status, kind, id, etag, e)
		}
		return c.Redirect(http.StatusSeeOther, savedURL(kindPath(kind), res, true))
	}
}

// moveRoute moves a route one place up or down: the order decides the
// first match, so it is a replacement of the whole list under its ETag.
func (k *console) moveRoute(c echo.Context, s *consoleSession) error {
	ctx := c.Request().Context()
	form := c.Request().PostForm
	items, tag, _, err := k.a.svc.List(ctx, Routes)
	if err != nil {
		return k.failErr(c, s, err)
	}
	if form.Get("etag") != tag {
		return k.fail(c, s, http.StatusPreconditionFailed, "The routes changed since you opened the list: reload it and move the route again.")
	}
	i := -1
	for j, r := range items {
		if r["id"] == idParam(c) {
			i = j
		}
	}
	if i < 0 {
		return k.failErr(c, s, errNotFound("route "+strconv.Quote(idParam(c))))
	}
	j := i - 1
	if form.Get("dir") == "down" {
		j = i + 1
	}
	if j < 0 || j >= len(items) {
		return c.Redirect(http.StatusSeeOther, PathConsole+"/routes")
	}
	items[i], items[j] = items[j], items[i]
	res, _, err := k.a.svc.ReplaceAll(ctx, actorOfSession(c, s), Routes, tag, items)
	if err != nil {
		return k.failErr(c, s, err)
	}
	return c.Redirect(http.StatusSeeOther, savedURL("/routes", res, false))
}

type checkData struct {
	ID     string
	Issuer string
	Report *probe.Report
	// Error and Problems say why the check could not run (the policy
	// does not compose here: a key file missing on this instance).
	Error    string
	Problems []Problem
	Back     string
}

// check runs the downstream check (outbound requests: the write role).
func (k *console) check(c echo.Context, s *consoleSession) error {
	id := idParam(c)
	r, _, err := k.a.svc.Get(c.Request().Context(), Downstreams, id)
	if err != nil {
		return k.failErr(c, s, err)
	}
	d := checkData{ID: id, Issuer: str(r, "issuer"), Back: itemPath(Downstreams, id) + "/edit"}
	rep, err := k.a.svc.CheckDownstream(c.Request().Context(), id)
	status := http.StatusOK
	if err != nil {
		var e *Error
		if !errors.As(err, &e) {
			return k.failErr(c, s, err)
		}
		d.Error, d.Problems, status = sentence(e.Description), e.Problems, e.Status
	} else {
		d.Report = &rep
	}
	return k.render(c, status, "check", k.page(c, s, "Check downstream "+id, string(Downstreams), d))
}

type discoverData struct {
	Form  formState
	Steps []probe.Step
}

var discoverForm = formDef{fields: []fieldDef{
	{Name: "issuer", Label: "Issuer URL", Control: cURL, Mono: true, Help: "fedas fetches its metadata and prefills a new downstream from it."},
}}

func (k *console) discoverPage(c echo.Context, s *consoleSession) error {
	d := discoverData{Form: discoverForm.build(formEnv{}, nil, nil, false, nil)}
	return k.render(c, http.StatusOK, "discover", k.page(c, s, "Import from discovery", string(Downstreams), d))
}

func (k *console) discover(c echo.Context, s *consoleSession) error {
	form := c.Request().PostForm
	issuer := strings.TrimSpace(form.Get("issuer"))
	fail := func(status int, e *Error) error {
		d := discoverData{Form: discoverForm.build(formEnv{}, form, nil, false, e)}
		return k.render(c, status, "discover", k.page(c, s, "Import from discovery", string(Downstreams), d))
	}
	if issuer == "" {
		return fail(http.StatusBadRequest, &Error{Status: 400, Description: "Enter the issuer URL.", Problems: []Problem{{Field: "issuer", Message: "required"}}})
	}
	r, steps, err := k.a.svc.Discover(c.Request().Context(), issuer)
	if err != nil {
		var e *Error
		if !errors.As(err, &e) {
			return k.failErr(c, s, err)
		}
		if len(e.Problems) == 0 {
			c := *e
			c.Problems = []Problem{{Field: "issuer", Message: e.Description}}
			e = &c
		}
		return fail(e.Status, e)
	}
	if r == nil {
		// Discovery stopped at a failed step: show the steps instead of a
		// form built from nothing.
		d := discoverData{Form: discoverForm.build(formEnv{}, form, nil, false, &Error{Status: 400, Description: "Discovery failed: see the steps below.", Problems: []Problem{{Field: "issuer", Message: "no usable metadata at this issuer"}}}), Steps: steps}
		return k.render(c, http.StatusBadRequest, "discover", k.page(c, s, "Import from discovery", string(Downstreams), d))
	}
	return k.showForm(c, s, http.StatusOK, Downstreams, false, "", "", forms[Downstreams].values(r), nil, nil, steps)
}

type promptData struct {
	ETag   string
	Exists bool
	Form   formState
}

func (k *console) showPrompt(c echo.Context, s *consoleSession, status int, vals url.Values, etag string, exists bool, err *Error) error {
	d := promptData{ETag: etag, Exists: exists, Form: promptForm.build(formEnv{}, vals, nil, false, err)}
	return k.render(c, status, "prompt", k.page(c, s, "Prompt", "prompt", d))
}

func (k *console) promptPage(c echo.Context, s *consoleSession) error {
	r, tag, err := k.a.svc.Prompt(c.Request().Context())
	if err != nil {
		return k.failErr(c, s, err)
	}
	return k.showPrompt(c, s, http.StatusOK, promptForm.values(r), tag, r != nil, nil)
}

func (k *console) savePrompt(c echo.Context, s *consoleSession) error {
	ctx := c.Request().Context()
	form := c.Request().PostForm
	stored, _, err := k.a.svc.Prompt(ctx)
	if err != nil {
		return k.failErr(c, s, err)
	}
	etag := form.Get("etag")
	r, problems := promptForm.resource(stored, form)
	if len(problems) > 0 {
		return k.showPrompt(c, s, http.StatusBadRequest, form, etag, stored != nil, &Error{Status: 400, Description: "Some fields could not be read; nothing was saved.", Problems: problems})
	}
	res, _, err := k.a.svc.SetPrompt(ctx, actorOfSession(c, s), etag, r)
	if err != nil {
		e, ok := formError(err)
		if !ok {
			return k.failErr(c, s, err)
		}
		return k.showPrompt(c, s, e.Status, form, etag, stored != nil, e)
	}
	return c.Redirect(http.StatusSeeOther, savedURL("/prompt", res, false))
}

func (k *console) deletePrompt(c echo.Context, s *consoleSession) error {
	ctx := c.Request().Context()
	etag := c.Request().PostForm.Get("etag")
	res, _, err := k.a.svc.SetPrompt(ctx, actorOfSession(c, s), etag, nil)
	if err != nil {
		e, ok := formError(err)
		if !ok {
			return k.failErr(c, s, err)
		}
		r, _, _ := k.a.svc.Prompt(ctx)
		return k.showPrompt(c, s, e.Status, promptForm.values(r), etag, r != nil, e)
	}
	return c.Redirect(http.StatusSeeOther, savedURL("/prompt", res, true))
}

type defaultRouteData struct {
	ETag string
	Form formState
}

func (k *console) showDefaultRoute(c echo.Context, s *consoleSession, status int, vals url.Values, etag string, err *Error) error {
	env, _, _, e := k.env(c)
	if e != nil {
		return k.failErr(c, s, e)
	}
	d := defaultRouteData{ETag: etag, Form: defaultRouteForm.build(env, vals, nil, false, err)}
	return k.render(c, status, "default_route", k.page(c, s, "Default route", string(Routes), d))
}

func (k *console) defaultRoutePage(c echo.Context, s *consoleSession) error {
	r, tag, err := k.a.svc.DefaultRoute(c.Request().Context())
	if err != nil {
		return k.failErr(c, s, err)
	}
	if r == "" {
		r = "local"
	}
	return k.showDefaultRoute(c, s, http.StatusOK, url.Values{"default_route": {r}}, tag, nil)
}

func (k *console) saveDefaultRoute(c echo.Context, s *consoleSession) error {
	ctx := c.Request().Context()
	form := c.Request().PostForm
	etag := form.Get("etag")
	cur, _, err := k.a.svc.DefaultRoute(ctx)
	if err != nil {
		return k.failErr(c, s, err)
	}
	r := strings.TrimSpace(form.Get("default_route"))
	if r == "local" && cur == "" {
		r = "" // the same route: no new version for a spelling
	}
	res, _, err := k.a.svc.SetDefaultRoute(ctx, actorOfSession(c, s), etag, r)
	if err != nil {
		e, ok := formError(err)
		if !ok {
			return k.failErr(c, s, err)
		}
		return k.showDefaultRoute(c, s, e.Status, form, etag, e)
	}
	return c.Redirect(http.StatusSeeOther, savedURL("/routes", res, false))
}

type routeTestData struct {
	Form   formState
	Answer *RouteAnswer
}

var routeTestForm = formDef{fields: []fieldDef{
	{Name: "client_id", Label: "Client", Control: cSelect, Choices: withBlank("no client", clientChoices)},
	{Name: "email", Label: "Email answer", Help: "What the user would type at the prompt, e.g. jane@example.com."},
	{Name: "phone", Label: "Phone answer"},
	{Name: "options", Label: "Option answers", Control: cPairs, Mono: true, Help: "One per line: key=value."},
}}

// routeTest answers with the live policy of this instance; it changes
// nothing, so it is a GET any session may run.
func (k *console) routeTest(c echo.Context, s *consoleSession) error {
	env, _, _, err := k.env(c)
	if err != nil {
		return k.failErr(c, s, err)
	}
	f := routeTestForm
	q := c.QueryParams()
	d := routeTestData{}
	status := http.StatusOK
	if q.Has("run") {
		rq := RouteQuery{ClientID: strings.TrimSpace(q.Get("client_id")), Email: strings.TrimSpace(q.Get("email")), Phone: strings.TrimSpace(q.Get("phone"))}
		opts, p := f.fields[3].parse(q)
		var e *Error
		if p != nil {
			e = &Error{Status: 400, Description: "The question could not be read.", Problems: []Problem{*p}}
		} else {
			if m, ok := opts.(map[string]any); ok {
				rq.Options = map[string]string{}
				for key, v := range m {
					rq.Options[key] = fmt.Sprint(v)
				}
			}
			ans, err := k.a.svc.TestRoute(rq)
			if err != nil && !errors.As(err, &e) {
				return k.failErr(c, s, err)
			}
			if err == nil {
				d.Answer = &ans
			}
		}
		if e != nil {
			status = e.Status
		}
		d.Form = f.build(env, q, nil, false, e)
	} else {
		d.Form = f.build(env, q, nil, false, nil)
	}
	return k.render(c, status, "route_test", k.page(c, s, "Route tester", "route-test", d))
}

type auditData struct {
	Entries []storage.AuditEntry
	Older   string
}

func pageQuery(c echo.Context) uint64 {
	n, _ := strconv.ParseUint(c.QueryParam("before"), 10, 64)
	return n
}

const consolePageSize = 25

func (k *console) audit(c echo.Context, s *consoleSession) error {
	es, err := k.a.svc.Audit(c.Request().Context(), pageQuery(c), consolePageSize)
	if err != nil {
		return k.failErr(c, s, err)
	}
	d := auditData{Entries: es}
	if n := len(es); n == consolePageSize && es[n-1].Version > 1 {
		d.Older = PathConsole + "/audit?before=" + strconv.FormatUint(es[n-1].Version, 10)
	}
	return k.render(c, http.StatusOK, "audit", k.page(c, s, "Audit log", "audit", d))
}

type versionsData struct {
	Versions []VersionInfo
	Head     uint64
	Older    string
}

func (k *console) versions(c echo.Context, s *consoleSession) error {
	vs, head, err := k.a.svc.History(c.Request().Context(), pageQuery(c), consolePageSize)
	if err != nil {
		return k.failErr(c, s, err)
	}
	d := versionsData{Versions: vs, Head: head}
	if n := len(vs); n == consolePageSize && vs[n-1].Version > 1 {
		d.Older = PathConsole + "/versions?before=" + strconv.FormatUint(vs[n-1].Version, 10)
	}
	return k.render(c, http.StatusOK, "versions", k.page(c, s, "Versions", "versions", d))
}

type versionData struct {
	VersionDetail
	HeadETag string
	Action   string
	Problems formState
}

func (k *console) showVersion(c echo.Context, s *consoleSession, status int, v uint64, err *Error) error {
	ctx := c.Request().Context()
	det, e := k.a.svc.Version(ctx, v)
	if e != nil {
		return k.failErr(c, s, e)
	}
	head, e := k.a.svc.Head(ctx)
	if e != nil {
		return k.failErr(c, s, e)
	}
	d := versionData{VersionDetail: det, HeadETag: HeadETag(head), Action: fmt.Sprintf("%s/versions/%d/rollback", PathConsole, v)}
	d.Problems = formDef{}.build(formEnv{}, nil, nil, false, err)
	return k.render(c, status, "version", k.page(c, s, fmt.Sprintf("Version %d", v), "versions", d))
}

func consoleVersionParam(c echo.Context) (uint64, bool) {
	v, err := strconv.ParseUint(c.Param("v"), 10, 64)
	return v, err == nil && v > 0
}

func (k *console) version(c echo.Context, s *consoleSession) error {
	v, ok := consoleVersionParam(c)
	if !ok {
		return k.notFound(c, s)
	}
	return k.showVersion(c, s, http.StatusOK, v, nil)
}

func (k *console) rollback(c echo.Context, s *consoleSession) error {
	v, ok := consoleVersionParam(c)
	if !ok {
		return k.notFound(c, s)
	}
	etag := c.Request().PostForm.Get("etag")
	if etag == "" {
		return k.showVersion(c, s, http.StatusPreconditionRequired, v, errNoIfMatch())
	}
	res, err := k.a.svc.Rollback(c.Request().Context(), actorOfSession(c, s), v, etag)
	if err != nil {
		e, ok := formError(err)
		if !ok || e.Status == http.StatusNotFound {
			return k.failErr(c, s, err)
		}
		return k.showVersion(c, s, e.Status, v, e)
	}
	if !res.Changed {
		return c.Redirect(http.StatusSeeOther, savedURL("/versions", res, false))
	}
	return c.Redirect(http.StatusSeeOther, PathConsole+"/versions?rolledback="+strconv.FormatUint(res.Version, 10))
}

// export downloads the head policy; like the API's export it shows
// inline keys, so it needs the write role.
func (k *console) export(c echo.Context, s *consoleSession) error {
	if !s.canWrite() {
		return k.fail(c, s, http.StatusForbidden, "Exporting the policy needs an admin token with the write role: it contains inline keys.")
	}
	b, v, err := k.a.svc.Export(c.Request().Context())
	if err != nil {
		return k.failErr(c, s, err)
	}
	c.Response().Header().Set("Content-Disposition", fmt.Sprintf(`attachment; filename="fedas-policy-v%d.yaml"`, v))
	return c.Blob(http.StatusOK, "application/yaml", b)
}

// diffLine is one line of a diff as drawn: its class says added,
// removed, hunk header or context.
type diffLine struct {
	Class, Text string
}

func diffLines(diff string) []diffLine {
	var out []diffLine
	for _, l := range splitLines(diff) {
		cls := "ctx"
		switch {
		case strings.HasPrefix(l, "@@"):
			cls = "hunk"
		case strings.HasPrefix(l, "+"):
			cls = "add"
		case strings.HasPrefix(l, "-"):
			cls = "del"
		}
		out = append(out, diffLine{cls, l})
	}
	return out
}
