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
// title, spec), then the totals.
func (r *Report) WriteTable(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tSTATUS\tTITLE\tSPEC")
	for _, c := range r.Results {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", c.ID, c.Status, c.Title, c.Spec)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, c := range r.Results {
		if c.Status == Fail {
			fmt.Fprintf(w, "\n%s: %s\n", c.ID, firstLine(c.Detail))
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
	for _, reason := range reasons {
		fmt.Fprintf(w, "\nnot applicable (%d): %s\n", len(ids[reason]), reason)
	}
	p, f, n := r.counts()
	_, err := fmt.Fprintf(w, "\n%s: %d passed, %d failed, %d not applicable\n", r.Issuer, p, f, n)
	return err
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
