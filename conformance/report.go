package conformance

import (
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
)

// WriteTable writes the terminal table: one line per check (ID, status,
// spec, title: the title last, so that a narrow terminal wraps only it),
// then the failures' first lines, why checks did not apply, the totals
// and the spec abbreviations used.
func (r *Report) WriteTable(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tSTATUS\tSPEC\tTITLE")
	abbreviated := map[string]bool{}
	for _, c := range r.Results {
		spec := c.Spec
		for _, a := range specAbbreviations {
			if strings.Contains(spec, a.long) {
				spec, abbreviated[a.short] = strings.ReplaceAll(spec, a.long, a.short), true
			}
		}
		if strings.Contains(spec, "fed-draft-00") {
			abbreviated["fed-draft-00"] = true
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", c.ID, c.Status, spec, c.Title)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if _, f, _ := r.counts(); f > 0 {
		fmt.Fprintf(w, "\nfailed (%d):\n", f)
		for _, c := range r.Results {
			if c.Status == Fail {
				fmt.Fprintf(w, "  %s: %s\n", c.ID, firstLine(c.Detail))
			}
		}
	}
	// Why checks did not apply, once per reason: usually one missing
	// flag or metadata member accounts for many checks.
	var reasons []string
	ids := map[string][]string{}
	for _, c := range r.Results {
		if c.Status == NotApplicable {
			reason := firstLine(c.Detail)
			if ids[reason] == nil {
				reasons = append(reasons, reason)
			}
			ids[reason] = append(ids[reason], c.ID)
		}
	}
	if len(reasons) > 0 {
		fmt.Fprintln(w)
	}
	for _, reason := range reasons {
		fmt.Fprintf(w, "not applicable (%d): %s\n", len(ids[reason]), reason)
	}
	p, f, n := r.counts()
	fmt.Fprintf(w, "\n%s: %d passed, %d failed, %d not applicable\n", r.Issuer, p, f, n)
	var legend []string
	for _, a := range specAbbreviations {
		if abbreviated[a.short] {
			legend = append(legend, a.short+" is "+a.long)
		}
	}
	if len(legend) > 0 {
		fmt.Fprintf(w, "(%s; --json and --markdown have the details and exchanges)\n", strings.Join(legend, ", "))
	}
	return nil
}

// specAbbreviations shorten the table's spec column.
var specAbbreviations = []struct{ short, long string }{
	{"FiPA-04", "draft-ietf-oauth-first-party-apps-04"},
	{"fed-draft-00", "draft-zehavi-oauth-native-clients-direct-interation-with-federation-00"},
}

func (r *Report) counts() (pass, fail, na int) {
	for _, c := range r.Results {
		switch c.Status {
		case Pass:
			pass++
		case Fail:
			fail++
		default:
			na++
		}
	}
	return
}

func firstLine(s string) string {
	l, _, _ := strings.Cut(s, "\n")
	return l
}

// WriteJSON writes the report as JSON (every result with its exchanges).
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false) // URLs and form bodies stay readable
	return enc.Encode(r)
}

// WriteMarkdown writes the report as Markdown: the table, then each
// failure with its detail and the exchanges that decided it.
func (r *Report) WriteMarkdown(w io.Writer) error {
	p, f, n := r.counts()
	fmt.Fprintf(w, "# Conformance report for %s\n\n%d passed, %d failed, %d not applicable (profiles: %s).\n\n", r.Issuer, p, f, n, joinProfiles(r.Profiles))
	fmt.Fprintln(w, "| ID | status | title | spec |\n|---|---|---|---|")
	for _, c := range r.Results {
		fmt.Fprintf(w, "| `%s` | %s | %s | %s |\n", c.ID, c.Status, mdCell(c.Title), mdCell(c.Spec))
	}
	for _, c := range r.Results {
		if c.Status != Fail {
			continue
		}
		fmt.Fprintf(w, "\n## `%s` failed\n\n%s (%s)\n\n%s\n", c.ID, c.Title, c.Spec, c.Detail)
		for i, ex := range c.Exchanges {
			fmt.Fprintf(w, "\n**Exchange %d**\n\n```http\n%s %s\n%s", i+1, ex.Method, ex.URL, headerLines(ex.RequestHeaders))
			if ex.RequestBody != "" {
				fmt.Fprintf(w, "\n%s\n", ex.RequestBody)
			}
			fmt.Fprintln(w, "```")
			if ex.Error != "" {
				fmt.Fprintf(w, "\nno response: %s\n", ex.Error)
				continue
			}
			fmt.Fprintf(w, "\n```http\nHTTP %d\n%s\n%s\n```\n", ex.Status, headerLines(ex.ResponseHeaders), ex.ResponseBody)
		}
	}
	return nil
}

func joinProfiles(ps []Profile) string {
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = string(p)
	}
	return strings.Join(s, ", ")
}

func mdCell(s string) string { return strings.ReplaceAll(s, "|", `\|`) }

func headerLines(h map[string]string) string {
	keys := make([]string, 0, len(h))
	for k := range h {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, "%s: %s\n", k, h[k])
	}
	return b.String()
}

// ParseProfiles parses a comma-separated list of profile names.
func ParseProfiles(s string) ([]Profile, error) {
	var out []Profile
	for _, name := range strings.Split(s, ",") {
		name = strings.TrimSpace(name)
		found := false
		for _, p := range Profiles {
			if string(p) == name {
				out, found = append(out, p), true
			}
		}
		if !found {
			return nil, fmt.Errorf("unknown profile %q (want fipa, federation or downstream)", name)
		}
	}
	return out, nil
}
