// Package metricstest reads fedas metrics in tests: a snapshot of every
// fedas_ series of a registry, and the difference between two, so that a
// test asserts exactly which series one action changed and by how much.
package metricstest

import (
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// Series maps a series, written name{label="value",…} with the labels
// sorted and empty ones left out, to its value: a counter's or gauge's
// value, a histogram's observation count under name_count.
type Series map[string]float64

// Key writes the series key of name with labels given as name, value
// pairs (empty values are left out, as Prometheus treats them).
func Key(name string, labels ...string) string {
	type kv struct{ k, v string }
	var l []kv
	for i := 0; i+1 < len(labels); i += 2 {
		if labels[i+1] != "" {
			l = append(l, kv{labels[i], labels[i+1]})
		}
	}
	sort.Slice(l, func(i, j int) bool { return l[i].k < l[j].k })
	var b strings.Builder
	b.WriteString(name)
	b.WriteByte('{')
	for i, p := range l {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(p.k + "=" + strconv.Quote(p.v))
	}
	b.WriteByte('}')
	return b.String()
}

// Snapshot gathers g and returns its fedas_ series.
func Snapshot(tb testing.TB, g prometheus.Gatherer) Series {
	tb.Helper()
	mfs, err := g.Gather()
	if err != nil {
		tb.Fatalf("metricstest: gather: %v", err)
	}
	out := Series{}
	for _, mf := range mfs {
		if !strings.HasPrefix(mf.GetName(), "fedas_") {
			continue
		}
		for _, m := range mf.GetMetric() {
			labels := make([]string, 0, 2*len(m.GetLabel()))
			for _, lp := range m.GetLabel() {
				labels = append(labels, lp.GetName(), lp.GetValue())
			}
			switch mf.GetType() {
			case dto.MetricType_COUNTER:
				out[Key(mf.GetName(), labels...)] = m.GetCounter().GetValue()
			case dto.MetricType_GAUGE:
				out[Key(mf.GetName(), labels...)] = m.GetGauge().GetValue()
			case dto.MetricType_HISTOGRAM:
				out[Key(mf.GetName()+"_count", labels...)] = float64(m.GetHistogram().GetSampleCount())
			}
		}
	}
	return out
}

// Delta returns the series whose value differs between before and after,
// with after minus before (a series new in after counts from 0).
func Delta(before, after Series) Series {
	d := Series{}
	for k, v := range after {
		if v != before[k] {
			d[k] = v - before[k]
		}
	}
	for k, v := range before {
		if _, ok := after[k]; !ok && v != 0 {
			d[k] = -v
		}
	}
	return d
}

// Add adds n to the series key of name and labels in s (building the
// expected delta of a test).
func (s Series) Add(n float64, name string, labels ...string) Series {
	s[Key(name, labels...)] += n
	return s
}

// HTTP adds one request to the expected delta: its fedas_http_requests_total
// series and its fedas_http_request_duration_seconds count.
func (s Series) HTTP(listener, route, method string, status int) Series {
	s.Add(1, "fedas_http_requests_total", "listener", listener, "route", route, "method", method, "status", strconv.Itoa(status))
	return s.Add(1, "fedas_http_request_duration_seconds_count", "listener", listener, "route", route, "method", method)
}
