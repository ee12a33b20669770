package admin

import (
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"gopkg.in/yaml.v3"

	"github.com/fedas/fedas/config"
)

// A console form edits one Resource: each field names its path in the
// resource ("auth.method"), which is also the input's name and what a
// Problem's Field matches, so validation problems land beside their
// input. Forms are turned into the same Resource maps the JSON API takes
// and go through the same Service methods: one validation path.

// control is how a field is edited and how its text maps to a value.
type control int

const (
	cText       control = iota // a string
	cURL                       // a string, <input type=url>
	cNumber                    // an integer
	cArea                      // a string, in a textarea
	cCheck                     // a boolean checkbox
	cSelect                    // a string from choices
	cLines                     // a list, one item per line
	cCSV                       // a list, items separated by commas or lines
	cPairs                     // a map, "ours=theirs" per line
	cChecks                    // a list of choices, as checkboxes
	cSecret                    // a write-only string, in a textarea
	cSecretLine                // a write-only string, on one line
	cKeyValue                  // {key, value} written "key=value"
	cYAML                      // any value, as YAML in a textarea
)

type choice struct{ Value, Label string }

// formEnv is what choices are made of: the policy's ids and the
// instance's scopes.
type formEnv struct {
	Downstreams, Clients, Apps, Scopes []string
}

func envOf(p config.Policy, base *config.Config) formEnv {
	var e formEnv
	for _, d := range p.Downstreams {
		e.Downstreams = append(e.Downstreams, d.ID)
	}
	for _, c := range p.Clients {
		e.Clients = append(e.Clients, c.ID)
	}
	for _, a := range p.Apps {
		e.Apps = append(e.Apps, a.ID)
	}
	e.Scopes = append(e.Scopes, base.Scopes...)
	return e
}

type fieldDef struct {
	// Name is the field's path in the resource and its input's name.
	Name, Label, Help string
	Control           control
	// Group is the legend of the fieldset the field sits in.
	Group   string
	Choices func(formEnv) []choice
	// Fixed fields (ids) cannot change once created.
	Fixed bool
	// Mono shows the value in a monospace font (keys, URLs, JSON).
	Mono bool
	// apply and values replace the control's mapping for a virtual
	// field (a route's target is one of three keys).
	apply  func(r Resource, form url.Values) *Problem
	values func(r Resource) []string
	// byOther fields are written by another field's apply (the prompt's
	// input texts, by its inputs).
	byOther bool
}

// formDef is one kind of resource's form.
type formDef struct {
	fields []fieldDef
	// alias sends problems about a resource path that is not an input to
	// the input that sets it.
	alias map[string]string
}

func fixed(cs ...string) func(formEnv) []choice {
	return func(formEnv) []choice {
		out := make([]choice, len(cs))
		for i, c := range cs {
			out[i] = choice{c, c}
		}
		return out
	}
}

func withBlank(label string, f func(formEnv) []choice) func(formEnv) []choice {
	return func(e formEnv) []choice { return append([]choice{{"", label}}, f(e)...) }
}

func idChoices(pick func(formEnv) []string) func(formEnv) []choice {
	return func(e formEnv) []choice {
		var out []choice
		for _, id := range pick(e) {
			out = append(out, choice{id, id})
		}
		return out
	}
}

var (
	clientChoices = idChoices(func(e formEnv) []string { return e.Clients })
	scopeChoices  = idChoices(func(e formEnv) []string { return e.Scopes })
)

// forms are the forms of the collections, in the config file's keys
// (config.Downstream, config.Route, config.Client, config.App).
var forms = map[Kind]formDef{
	Downstreams: {fields: []fieldDef{
		{Name: "id", Label: "ID", Help: "A short identifier routes refer to (letters, digits, _). It cannot change later.", Fixed: true},
		{Name: "issuer", Label: "Issuer", Control: cURL, Mono: true, Help: "The downstream's issuer URL (RFC 8414); its metadata is fetched from there."},
		{Name: "name", Label: "Display name"},
		{Name: "logo", Label: "Logo URL", Control: cURL, Mono: true},
		{Name: "client_id", Label: "Our client ID there", Mono: true},
		{Name: "auth.method", Label: "Method", Group: "Client authentication", Control: cSelect, Choices: fixed("private_key_jwt", "client_secret_basic")},
		{Name: "auth.key", Label: "Private key (JWK, inline)", Group: "Client authentication", Control: cSecret, Mono: true, Help: "Write-only. Leave blank to keep the stored key."},
		{Name: "auth.key_env", Label: "Private key from environment variable", Group: "Client authentication", Mono: true},
		{Name: "auth.key_file", Label: "Private key from file", Group: "Client authentication", Mono: true},
		{Name: "auth.secret_env", Label: "Client secret from environment variable", Group: "Client authentication", Mono: true},
		{Name: "auth.secret_file", Label: "Client secret from file", Group: "Client authentication", Mono: true},
		{Name: "scopes", Label: "Scope mapping", Control: cPairs, Mono: true, Help: "One per line: ours=theirs. Unmapped scopes are not forwarded."},
		{Name: "claims", Label: "Claims copied from the ID token", Control: cCSV, Help: "Comma-separated, e.g. email, name."},
		{Name: "timeout", Label: "Timeout", Help: "Per call, e.g. 3s (blank: 3s)."},
		{Name: "id_token_algs", Label: "ID token algorithms", Control: cChecks, Choices: fixed("ES256", "PS256", "EdDSA", "RS256"), Help: "None checked: ES256, PS256, EdDSA."},
		{Name: "browser_federation", Label: "Allow browser federation when it has no native endpoint", Control: cCheck},
	}, alias: map[string]string{"auth": "auth.method", "auth.secret": "auth.secret_env"}},
	Routes: {fields: []fieldDef{
		{Name: "id", Label: "ID", Help: "Letters, digits, - and _. It cannot change later.", Fixed: true},
		{Name: "target", Label: "Send matching users to", Control: cSelect, Choices: routeTargets, apply: applyTarget, values: targetOf},
		{Name: "email_domains", Label: "Email domains", Control: cCSV, Help: "Comma-separated; matches the domain of the prompt's email answer."},
		{Name: "option", Label: "Prompt option", Control: cKeyValue, Mono: true, Help: "key=value of a prompt option's choice."},
		{Name: "clients", Label: "Requesting clients", Control: cChecks, Choices: clientChoices, Help: "None checked: any client."},
	}, alias: map[string]string{"downstream": "target", "local": "target", "app": "target", ".": "target"}},
	Clients: {fields: []fieldDef{
		{Name: "id", Label: "Client ID", Fixed: true, Mono: true},
		{Name: "name", Label: "Name"},
		{Name: "first_party", Label: "First party (may use the native endpoint)", Control: cCheck},
		{Name: "token_endpoint_auth_method", Label: "Token endpoint authentication", Group: "Authentication", Control: cSelect, Choices: fixed("none", "client_secret_basic", "client_secret_post", "private_key_jwt")},
		{Name: "secret_sha256", Label: "Secret SHA-256 (hex)", Group: "Authentication", Control: cSecretLine, Mono: true, Help: "Write-only: 64 hex digits. Leave blank to keep the stored one."},
		{Name: "secret_env", Label: "Secret from environment variable", Group: "Authentication", Mono: true},
		{Name: "secret_file", Label: "Secret from file", Group: "Authentication", Mono: true},
		{Name: "jwks", Label: "JWKS (inline JSON)", Group: "Authentication", Control: cArea, Mono: true, Help: "Public keys for private_key_jwt."},
		{Name: "jwks_file", Label: "JWKS from file", Group: "Authentication", Mono: true},
		{Name: "signing_alg", Label: "Assertion algorithm", Group: "Authentication", Control: cSelect, Choices: withBlank("default (ES256)", fixed("ES256", "PS256", "EdDSA"))},
		{Name: "scopes", Label: "Scopes", Control: cChecks, Choices: scopeChoices},
		{Name: "grant_types", Label: "Grant types", Control: cChecks, Choices: fixed("authorization_code", "refresh_token")},
		{Name: "refresh_token_rotation", Label: "Refresh token rotation", Control: cSelect, Choices: withBlank("default (auto)", fixed("auto", "always", "never")),
			Help: "auto: a public client's refresh tokens rotate unless DPoP-bound; always: every refresh token rotates; never: confidential clients only."},
		{Name: "redirect_uris", Label: "Redirect URIs", Control: cLines, Mono: true, Help: "One per line."},
		{Name: "native_callback_uris", Label: "Native callback URIs", Control: cLines, Mono: true, Help: "One per line."},
		{Name: "federating", Label: "Federating (another AS that federates to us)", Control: cCheck},
		{Name: "allow_credential_challenges", Label: "Allow password and OTP challenges (federating clients)", Control: cCheck},
		{Name: "authorization_details_types", Label: "Authorization details types (RFC 9396)", Control: cLines, Mono: true, Help: "One per line, each configured under authorization_details_types."},
		{Name: "digital_credentials", Label: "Digital credentials (YAML)", Control: cYAML, Mono: true, Help: "dialect, dc_api_origins, openid4vp_redirect_uris, disable_cross_device, cross_device_without_dpop, and rules [{login_hint, acr_value, authorization_details_type, query, acr}] asking this client for a presentation (docs/config.md)."},
	}, alias: map[string]string{".": "token_endpoint_auth_method"}},
	Apps: {fields: []fieldDef{
		{Name: "id", Label: "ID", Fixed: true},
		{Name: "client_id", Label: "The app's own client", Control: cSelect, Choices: withBlank("choose a first-party client", clientChoices)},
		{Name: "deep_link", Label: "Deep link", Control: cURL, Mono: true, Help: "The https base URL the app claims."},
		{Name: "downstream_role", Label: "Send users of federating clients to the app", Control: cCheck},
		{Name: "clients", Label: "Send local sign-ins of these clients to the app", Control: cChecks, Choices: clientChoices},
		{Name: "enrolled_only", Label: "Only users who enrolled the app", Control: cCheck},
	}},
}

// promptForm edits the prompt (config.Prompt). Its inputs are closed to
// email and phone, so each is a checkbox with its texts.
var promptForm = formDef{fields: []fieldDef{
	{Name: "logo", Label: "Logo URL", Control: cURL, Mono: true},
	{Name: "inputs.email", Label: "Ask for an email address", Group: "Email input", Control: cCheck, apply: applyInputs, values: inputValue("email", "")},
	{Name: "inputs.email.title", Label: "Title", Group: "Email input", values: inputValue("email", "title"), byOther: true},
	{Name: "inputs.email.hint", Label: "Hint", Group: "Email input", values: inputValue("email", "hint"), byOther: true},
	{Name: "inputs.email.description", Label: "Description", Group: "Email input", values: inputValue("email", "description"), byOther: true},
	{Name: "inputs.phone", Label: "Ask for a phone number", Group: "Phone input", Control: cCheck, values: inputValue("phone", ""), byOther: true},
	{Name: "inputs.phone.title", Label: "Title", Group: "Phone input", values: inputValue("phone", "title"), byOther: true},
	{Name: "inputs.phone.hint", Label: "Hint", Group: "Phone input", values: inputValue("phone", "hint"), byOther: true},
	{Name: "inputs.phone.description", Label: "Description", Group: "Phone input", values: inputValue("phone", "description"), byOther: true},
	{Name: "options", Label: "Options (YAML)", Control: cYAML, Mono: true, Help: "A list of {key, title, description, values: [{value, name, logo}]}."},
	{Name: "max_attempts", Label: "Maximum invalid answers", Control: cNumber, Help: "Blank: 5."},
}, alias: map[string]string{".": "inputs.email", "inputs": "inputs.email"}}

// defaultRouteForm edits default_route.
var defaultRouteForm = formDef{fields: []fieldDef{
	{Name: "default_route", Label: "When no route matches", Control: cSelect, Choices: func(e formEnv) []choice {
		out := []choice{{"local", "local sign-in"}, {"deny", "deny"}}
		for _, d := range e.Downstreams {
			out = append(out, choice{d, "downstream " + d})
		}
		return out
	}},
}}

// routeTargets are the choices of a route's target, encoded
// "downstream:<id>", "app:<id>" or "local".
func routeTargets(e formEnv) []choice {
	out := []choice{{"", "choose a target"}}
	for _, d := range e.Downstreams {
		out = append(out, choice{"downstream:" + d, "downstream " + d})
	}
	out = append(out, choice{"local", "local sign-in"})
	for _, a := range e.Apps {
		out = append(out, choice{"app:" + a, "app " + a})
	}
	return out
}

func applyTarget(r Resource, form url.Values) *Problem {
	delete(r, "downstream")
	delete(r, "local")
	delete(r, "app")
	v := strings.TrimSpace(form.Get("target"))
	switch {
	case v == "":
	case v == "local":
		r["local"] = true
	case strings.HasPrefix(v, "downstream:"):
		r["downstream"] = strings.TrimPrefix(v, "downstream:")
	case strings.HasPrefix(v, "app:"):
		r["app"] = strings.TrimPrefix(v, "app:")
	default:
		return &Problem{Field: "target", Message: "choose a downstream, local sign-in or an app"}
	}
	return nil
}

func targetOf(r Resource) []string {
	if d, _ := r["downstream"].(string); d != "" {
		return []string{"downstream:" + d}
	}
	if a, _ := r["app"].(string); a != "" {
		return []string{"app:" + a}
	}
	if l, _ := r["local"].(bool); l {
		return []string{"local"}
	}
	return nil
}

// applyInputs builds the prompt's inputs list from the email and phone
// fields.
func applyInputs(r Resource, form url.Values) *Problem {
	var inputs []any
	for _, key := range []string{"email", "phone"} {
		if !checked(form, "inputs."+key) {
			continue
		}
		in := map[string]any{"key": key}
		for _, f := range []string{"title", "hint", "description"} {
			if v := strings.TrimSpace(form.Get("inputs." + key + "." + f)); v != "" {
				in[f] = v
			}
		}
		inputs = append(inputs, in)
	}
	if len(inputs) == 0 {
		delete(r, "inputs")
	} else {
		r["inputs"] = inputs
	}
	return nil
}

func inputValue(key, member string) func(Resource) []string {
	return func(r Resource) []string {
		list, _ := r["inputs"].([]any)
		for _, x := range list {
			m, _ := x.(map[string]any)
			if k, _ := m["key"].(string); k != key {
				continue
			}
			if member == "" {
				return []string{"on"}
			}
			if s, _ := m[member].(string); s != "" {
				return []string{s}
			}
		}
		return nil
	}
}

func checked(form url.Values, name string) bool {
	v := form.Get(name)
	return v == "on" || v == "true" || v == "1"
}

// resource overlays the submitted form on base (the stored resource,
// or nil to create), so that keys the form does not show survive an
// edit. Read-only "_set" flags are dropped; a blank write-only secret is
// left out, which keeps the stored one.
func (f formDef) resource(base Resource, form url.Values) (Resource, []Problem) {
	r := cloneResource(base)
	dropSetFlags(r)
	var problems []Problem
	for _, d := range f.fields {
		if d.apply != nil {
			if p := d.apply(r, form); p != nil {
				problems = append(problems, *p)
			}
			continue
		}
		if d.byOther {
			continue
		}
		v, p := d.parse(form)
		if p != nil {
			problems = append(problems, *p)
			continue
		}
		if v == nil {
			if d.Control != cSecret && d.Control != cSecretLine {
				deletePath(r, d.Name)
			}
			continue
		}
		setPath(r, d.Name, v)
	}
	return r, problems
}

var splitList = regexp.MustCompile(`[,\n\r]+`)

// parse reads a field's value from the form: nil means "not set".
func (d fieldDef) parse(form url.Values) (any, *Problem) {
	raw := form.Get(d.Name)
	s := strings.TrimSpace(raw)
	switch d.Control {
	case cCheck:
		return checked(form, d.Name), nil
	case cNumber:
		if s == "" {
			return nil, nil
		}
		n, err := strconv.Atoi(s)
		if err != nil {
			return nil, &Problem{Field: d.Name, Message: "must be a whole number"}
		}
		return n, nil
	case cLines, cCSV:
		var items []any
		for _, it := range splitList.Split(raw, -1) {
			if it = strings.TrimSpace(it); it != "" {
				items = append(items, it)
			}
		}
		if len(items) == 0 {
			return nil, nil
		}
		return items, nil
	case cChecks:
		var items []any
		for _, it := range form[d.Name] {
			if it = strings.TrimSpace(it); it != "" {
				items = append(items, it)
			}
		}
		if len(items) == 0 {
			return nil, nil
		}
		return items, nil
	case cPairs:
		m := map[string]any{}
		for i, line := range strings.Split(raw, "\n") {
			line = strings.TrimSpace(line)
			if line == "" {
				continue
			}
			a, b, ok := strings.Cut(line, "=")
			a, b = strings.TrimSpace(a), strings.TrimSpace(b)
			if !ok || a == "" || b == "" {
				return nil, &Problem{Field: d.Name, Message: fmt.Sprintf("line %d: write ours=theirs", i+1)}
			}
			if _, dup := m[a]; dup {
				return nil, &Problem{Field: d.Name, Message: fmt.Sprintf("line %d: %q is mapped twice", i+1, a)}
			}
			m[a] = b
		}
		if len(m) == 0 {
			return nil, nil
		}
		return m, nil
	case cKeyValue:
		if s == "" {
			return nil, nil
		}
		a, b, ok := strings.Cut(s, "=")
		a, b = strings.TrimSpace(a), strings.TrimSpace(b)
		if !ok || a == "" || b == "" {
			return nil, &Problem{Field: d.Name, Message: "write key=value"}
		}
		return map[string]any{"key": a, "value": b}, nil
	case cYAML:
		if s == "" {
			return nil, nil
		}
		var v any
		n, err := parseYAML([]byte(raw))
		if err == nil && n != nil {
			err = n.Decode(&v)
		}
		if err != nil {
			msg := strings.TrimPrefix(strings.TrimPrefix(err.Error(), "yaml: "), "not valid YAML: ")
			return nil, &Problem{Field: d.Name, Message: "not valid YAML: " + msg}
		}
		return v, nil
	case cArea, cSecret:
		if s == "" {
			return nil, nil
		}
		return strings.TrimRight(strings.ReplaceAll(raw, "\r\n", "\n"), "\n "), nil
	}
	if s == "" {
		return nil, nil
	}
	return s, nil
}

// values renders a resource as the form's submitted values would be,
// so that one path shows both a stored entry and a refused submission.
func (f formDef) values(r Resource) url.Values {
	out := url.Values{}
	for _, d := range f.fields {
		var vs []string
		if d.values != nil {
			vs = d.values(r)
		} else {
			vs = d.show(getPath(r, d.Name))
		}
		if len(vs) > 0 {
			out[d.Name] = vs
		}
	}
	return out
}

func (d fieldDef) show(v any) []string {
	if v == nil {
		return nil
	}
	switch d.Control {
	case cSecret, cSecretLine:
		return nil
	case cCheck:
		if b, _ := v.(bool); b {
			return []string{"on"}
		}
		return nil
	case cChecks:
		return strList(v)
	case cLines:
		return []string{strings.Join(strList(v), "\n")}
	case cCSV:
		return []string{strings.Join(strList(v), ", ")}
	case cPairs:
		m, _ := v.(map[string]any)
		keys := make([]string, 0, len(m))
		for k := range m {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		lines := make([]string, len(keys))
		for i, k := range keys {
			lines[i] = k + "=" + fmt.Sprint(m[k])
		}
		return []string{strings.Join(lines, "\n")}
	case cKeyValue:
		m, _ := v.(map[string]any)
		if m == nil {
			return nil
		}
		return []string{fmt.Sprintf("%v=%v", m["key"], m["value"])}
	case cYAML:
		if l, ok := v.([]any); ok && len(l) == 0 {
			return nil
		}
		b, err := yaml.Marshal(v)
		if err != nil {
			return nil
		}
		return []string{string(b)}
	}
	if l, ok := v.([]any); ok && len(l) == 0 {
		return nil
	}
	s := fmt.Sprint(v)
	if s == "" || (d.Control == cNumber && s == "0") || (d.Name == "timeout" && s == "0s") {
		return nil
	}
	return []string{s}
}

func strList(v any) []string {
	l, _ := v.([]any)
	out := make([]string, 0, len(l))
	for _, x := range l {
		out = append(out, fmt.Sprint(x))
	}
	return out
}

// fieldView is one input as the template draws it.
type fieldView struct {
	fieldDef
	ID      string
	Value   string
	Checked bool
	Choices []choiceView
	// Error is set when the field has problems, each of Errors.
	Error  string
	Errors []string
	// SecretSet says a write-only secret is stored; SecretDropped that
	// one was typed into a refused form and must be entered again (a
	// secret is never sent back to the browser, even the one just typed).
	SecretSet, SecretDropped bool
	ReadOnly                 bool
}

type choiceView struct {
	choice
	ID       string
	Selected bool
}

// Kind names for the template.
func (v fieldView) IsText() bool {
	return v.Control == cText || v.Control == cURL || v.Control == cNumber || v.Control == cCSV || v.Control == cKeyValue || v.Control == cSecretLine
}

// InputType is the type attribute of a one-line input.
func (v fieldView) InputType() string {
	switch v.Control {
	case cURL:
		return "url"
	case cNumber:
		return "number"
	}
	return "text"
}

// IsArea reports a textarea.
func (v fieldView) IsArea() bool {
	return v.Control == cArea || v.Control == cLines || v.Control == cPairs || v.Control == cYAML || v.Control == cSecret
}

// IsCheck reports a single checkbox.
func (v fieldView) IsCheck() bool { return v.Control == cCheck }

// IsSelect reports a select.
func (v fieldView) IsSelect() bool { return v.Control == cSelect }

// IsChecks reports a checkbox group.
func (v fieldView) IsChecks() bool { return v.Control == cChecks }

// IsSecret reports a write-only field.
func (v fieldView) IsSecret() bool { return v.Control == cSecret || v.Control == cSecretLine }

// Rows sizes a textarea.
func (v fieldView) Rows() int {
	switch v.Control {
	case cSecret, cYAML:
		return 8
	case cArea:
		return 6
	}
	return 4
}

// DescribedBy is the aria-describedby of the input: its error first,
// then its help.
func (v fieldView) DescribedBy() string {
	var ids []string
	if v.Error != "" {
		ids = append(ids, v.ID+"-error")
	}
	if v.Help != "" || v.IsSecret() {
		ids = append(ids, v.ID+"-help")
	}
	return strings.Join(ids, " ")
}

// section is a run of fields under one fieldset legend ("" for none).
type section struct {
	Legend string
	Fields []fieldView
}

// problemView is one problem of the summary, linked to its input when
// it has one.
type problemView struct {
	Label, Anchor, Message string
}

func inputID(name string) string { return "f-" + strings.NewReplacer(".", "-", "_", "-").Replace(name) }

var indexPart = regexp.MustCompile(`\[\d+\]`)

// match finds the input a problem's Field is about: the field itself,
// its alias, the first input of a group ("auth" → auth.method), or the
// input that holds it ("option.key" → option).
func (f formDef) match(field string) (string, bool) {
	if field == "" {
		return "", false
	}
	s := indexPart.ReplaceAllString(field, "")
	for _, c := range []string{field, s} {
		if a, ok := f.alias[c]; ok {
			return a, true
		}
		if f.has(c) {
			return c, true
		}
	}
	if s == "." {
		return "", false
	}
	for _, d := range f.fields {
		if strings.HasPrefix(d.Name, s+".") {
			return d.Name, true
		}
	}
	parts := strings.Split(s, ".")
	for n := len(parts) - 1; n > 0; n-- {
		p := strings.Join(parts[:n], ".")
		if a, ok := f.alias[p]; ok {
			return a, true
		}
		if f.has(p) {
			return p, true
		}
	}
	return "", false
}

func (f formDef) has(name string) bool {
	for _, d := range f.fields {
		if d.Name == name {
			return true
		}
	}
	return false
}

func (f formDef) label(name string) string {
	for _, d := range f.fields {
		if d.Name == name {
			if d.Group != "" {
				return d.Group + ": " + d.Label
			}
			return d.Label
		}
	}
	return name
}

// formState is a form as drawn: its values (stored, discovered or just
// submitted), the problems of a refused write, and the stored resource
// for the "set" state of write-only secrets.
type formState struct {
	Sections []section
	Problems []problemView
	// Description heads the problem summary.
	Description string
	// Conflict marks a refused write whose ETag no longer matched.
	Conflict  bool
	HasErrors bool
}

// build lays out the form. fixedID makes the id read-only (an edit).
func (f formDef) build(env formEnv, vals url.Values, stored Resource, fixedID bool, err *Error) formState {
	st := formState{}
	byField := map[string][]string{}
	if err != nil {
		st.Description = sentence(err.Description)
		st.HasErrors = true
		st.Conflict = err.Status == http.StatusPreconditionFailed
		for _, p := range err.Problems {
			if name, ok := f.match(p.Field); ok {
				byField[name] = append(byField[name], p.Message)
				st.Problems = append(st.Problems, problemView{Label: f.label(name), Anchor: "#" + inputID(name), Message: p.Message})
				continue
			}
			label := p.Path
			if label == "" && p.Field != "" && p.Field != "." {
				label = p.Field
			}
			st.Problems = append(st.Problems, problemView{Label: label, Message: p.Message})
		}
	}
	for _, d := range f.fields {
		v := fieldView{fieldDef: d, ID: inputID(d.Name), Errors: byField[d.Name], Error: strings.Join(byField[d.Name], "; ")}
		v.Value = vals.Get(d.Name)
		v.Checked = checked(vals, d.Name)
		v.ReadOnly = d.Fixed && fixedID
		if d.IsSecretField() {
			v.SecretDropped = err != nil && strings.TrimSpace(v.Value) != ""
			v.Value = ""
			set, _ := getPath(stored, d.Name+"_set").(bool)
			v.SecretSet = set
		}
		if d.Choices != nil {
			sel := map[string]bool{}
			for _, x := range vals[d.Name] {
				sel[x] = true
			}
			seen := map[string]bool{}
			for i, ch := range d.Choices(env) {
				seen[ch.Value] = true
				v.Choices = append(v.Choices, choiceView{choice: ch, ID: fmt.Sprintf("%s-%d", v.ID, i), Selected: sel[ch.Value]})
			}
			// A value the choices no longer offer (a deleted client) is
			// still shown, so that saving does not drop it unseen.
			for _, x := range vals[d.Name] {
				if !seen[x] && x != "" {
					seen[x] = true
					v.Choices = append(v.Choices, choiceView{choice: choice{x, x + " (unknown)"}, ID: fmt.Sprintf("%s-%d", v.ID, len(v.Choices)), Selected: true})
				}
			}
		}
		if n := len(st.Sections); n == 0 || st.Sections[n-1].Legend != d.Group {
			st.Sections = append(st.Sections, section{Legend: d.Group})
		}
		s := &st.Sections[len(st.Sections)-1]
		s.Fields = append(s.Fields, v)
	}
	return st
}

// IsSecretField reports a write-only field.
func (d fieldDef) IsSecretField() bool { return d.Control == cSecret || d.Control == cSecretLine }

func cloneResource(r Resource) Resource {
	out := Resource{}
	for k, v := range r {
		out[k] = cloneValue(v)
	}
	return out
}

func cloneValue(v any) any {
	switch x := v.(type) {
	case map[string]any:
		return cloneResource(x)
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = cloneValue(e)
		}
		return out
	}
	return v
}

// dropSetFlags removes the read-only "<secret>_set" flags at every level:
// they describe a stored resource and are not part of what one writes.
func dropSetFlags(r map[string]any) {
	for k, v := range r {
		if strings.HasSuffix(k, "_set") {
			if _, ok := v.(bool); ok {
				delete(r, k)
				continue
			}
		}
		if m, ok := v.(map[string]any); ok {
			dropSetFlags(m)
		}
	}
}

func getPath(r map[string]any, path string) any {
	var cur any = r
	for _, p := range strings.Split(path, ".") {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil
		}
		cur = m[p]
	}
	return cur
}

func setPath(r map[string]any, path string, v any) {
	parts := strings.Split(path, ".")
	m := r
	for _, p := range parts[:len(parts)-1] {
		next, ok := m[p].(map[string]any)
		if !ok {
			next = map[string]any{}
			m[p] = next
		}
		m = next
	}
	m[parts[len(parts)-1]] = v
}

func deletePath(r map[string]any, path string) {
	parts := strings.Split(path, ".")
	m := r
	for _, p := range parts[:len(parts)-1] {
		next, ok := m[p].(map[string]any)
		if !ok {
			return
		}
		m = next
	}
	delete(m, parts[len(parts)-1])
}

// sentence capitalises the Service's lower-case descriptions for a page.
func sentence(s string) string {
	if s == "" {
		return s
	}
	r, n := utf8.DecodeRuneInString(s)
	return string(unicode.ToUpper(r)) + s[n:]
}
