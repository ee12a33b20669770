package metrics

// RateLimitUnavailable counts one request the rate limiter let through
// unchecked because its storage did not answer (docs/security.md "Rate
// limits": the limiter fails open; the request's own storage work then
// answers 503 if the outage is real).
func (m *Metrics) RateLimitUnavailable() { m.rateFailOpen.Inc() }
