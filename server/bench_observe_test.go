package server_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/fedas/fedas/config"
	"github.com/fedas/fedas/sdk"
	"github.com/fedas/fedas/server"
	"github.com/fedas/fedas/storage/memory"
)

// BenchmarkAccessLine: the initial native request (memory store) with
// the logging fedas serve does — the production JSON encoder at info
// level, so one access line per request, written to io.Discard — against
// a no-op logger (what BenchmarkNative measures). The difference is the
// cost of the access line itself.
//
//	go test ./server/ -run '^$' -bench '^BenchmarkAccessLine$' -benchmem
func BenchmarkAccessLine(b *testing.B) {
	ec := zap.NewProductionEncoderConfig()
	ec.EncodeTime = zapcore.ISO8601TimeEncoder
	for _, tc := range []struct {
		name string
		log  *zap.Logger
	}{
		{"nop", zap.NewNop()},
		{"info-json", zap.New(zapcore.NewCore(zapcore.NewJSONEncoder(ec), zapcore.AddSync(io.Discard), zap.InfoLevel))},
	} {
		b.Run(tc.name, func(b *testing.B) {
			m := memory.New()
			b.Cleanup(func() { _ = m.Close() })
			cfg := config.Default()
			testConfig(cfg)
			srv, err := server.New(server.Options{Config: cfg, Store: m, Logger: tc.log})
			if err != nil {
				b.Fatal(err)
			}
			body := initialForm(sdk.NewPKCE(), "").Encode()
			b.ReportAllocs()
			for b.Loop() {
				req := httptest.NewRequest(http.MethodPost, server.PathNative, strings.NewReader(body))
				req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
				rec := httptest.NewRecorder()
				srv.Handler().ServeHTTP(rec, req)
				if rec.Code != http.StatusForbidden {
					b.Fatalf("initial: %d %s", rec.Code, rec.Body)
				}
			}
		})
	}
}
