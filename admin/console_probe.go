package admin

import (
	"context"
	"net/http"
)

// The downstream check and discovery live in package admin/probe, which
// is not in this tree yet. The console is written against these shapes
// and the two Service methods below.
//
// TODO: replaced when probe lands: make probeStep and probeReport
// aliases (type probeStep = probe.Step; type probeReport = probe.Report)
// and delete the two stub methods in favour of the real ones.

// probeStep mirrors probe.Step: one check, its status ("ok", "warn",
// "fail", "skipped"), plain words, and the URL it concerned.
type probeStep struct {
	Name   string `json:"name"`
	Status string `json:"status"`
	Detail string `json:"detail"`
	URL    string `json:"url,omitempty"`
}

// probeReport mirrors probe.Report.
type probeReport struct {
	Issuer string      `json:"issuer"`
	OK     bool        `json:"ok"`
	Native bool        `json:"native"`
	Steps  []probeStep `json:"steps"`
}

// CheckDownstream checks a configured downstream: metadata, endpoints,
// keys and a test PAR.
//
// TODO: replaced when probe lands.
func (s *Service) CheckDownstream(ctx context.Context, id string) (probeReport, error) {
	return probeReport{}, errf(http.StatusNotImplemented, "not_implemented", "The downstream check is not available in this build yet.")
}

// Discover reads an issuer's metadata and proposes a downstream entry
// for it, with the steps it took.
//
// TODO: replaced when probe lands.
func (s *Service) Discover(ctx context.Context, issuer string) (Resource, []probeStep, error) {
	return nil, nil, errf(http.StatusNotImplemented, "not_implemented", "Discovery is not available in this build yet.")
}
