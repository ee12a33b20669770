package main

// The oidc-provider peer: panva's node oidc-provider (a pinned version)
// in a node child process on a free loopback port, configured with
// fedas's client (internal/oidcprovider installs, caches and starts it).
// Node runs JavaScript on one thread: the peer uses one core (cluster
// could run more processes; the comparison is per process, as fedas is
// one).

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/fedas/fedas/internal/oidcprovider"
	"github.com/fedas/fedas/sdk"
)

// mintBatch is how many codes one /__bench/mint request asks for.
const mintBatch = 1000

func startOIDCProviderPeer(ctx context.Context, ps *peerSetup) (*peerServer, error) {
	client := map[string]any{"client_id": ps.creds.id, "redirect_uris": []string{parRedirect},
		"grant_types": []string{"authorization_code"}, "response_types": []string{"code"},
		"token_endpoint_auth_method": ps.creds.method, "id_token_signed_response_alg": "ES256"}
	if ps.creds.method == authJWT {
		client["jwks"] = json.RawMessage(ps.creds.pubJWKS)
		client["token_endpoint_auth_signing_alg"] = "ES256"
	} else {
		client["client_secret"] = ps.creds.secret
	}
	mintToken := randHex(16)
	op, err := oidcprovider.Start(ctx, oidcprovider.Config{Clients: []map[string]any{client}, CodeTTL: int(codeLifetime / time.Second), MintToken: mintToken},
		os.Getenv("FEDASBENCH_PEER_DEBUG") != "")
	if err != nil {
		return nil, err
	}
	fail := func(err error) (*peerServer, error) {
		op.Stop()
		return nil, fmt.Errorf("%w (node stderr: %s)", err, strings.TrimSpace(op.Stderr()))
	}
	hc := sdk.NewHTTPClient()
	var meta struct {
		Issuer        string `json:"issuer"`
		TokenEndpoint string `json:"token_endpoint"`
		PAREndpoint   string `json:"pushed_authorization_request_endpoint"`
	}
	if err := getJSON(ctx, hc, op.Issuer+"/.well-known/openid-configuration", &meta); err != nil {
		return fail(fmt.Errorf("discovery: %w", err))
	}
	if meta.Issuer != op.Issuer || meta.TokenEndpoint == "" || meta.PAREndpoint == "" {
		return fail(fmt.Errorf("discovery: unexpected metadata %+v", meta))
	}
	nv := op.NodeVersion
	note := "a node child process: one JavaScript thread, so one core (cluster could run more processes; the comparison is per process); oidc-provider's MemoryAdapter on an unbounded Map (its default LRU of 1000 entries would evict); its CPU is counted with the driver's"
	if strings.HasPrefix(nv, "v20.") || strings.HasPrefix(nv, "v21.") {
		note += "; oidc-provider 9 asks for Node 22 LTS and warns on " + nv
	}
	srv := &peerServer{issuer: meta.Issuer, parEndpoint: meta.PAREndpoint, tokenEndpoint: meta.TokenEndpoint,
		version: "oidc-provider " + oidcprovider.Version + " (node " + nv + ")",
		pid:     op.Pid,
		stop:    op.Stop,
		note:    note,
	}
	if ps.o.scenario == "token" {
		srv.codes = make(chan mintedCode, ps.codes)
		if err := oidcProviderMint(ctx, hc, srv, ps, mintToken); err != nil {
			return fail(fmt.Errorf("minting codes: %w", err))
		}
	}
	return srv, nil
}

// oidcProviderMint asks the node script for ps.codes codes, in batches.
func oidcProviderMint(ctx context.Context, hc *http.Client, srv *peerServer, ps *peerSetup, token string) error {
	for done := 0; done < ps.codes; {
		n := min(mintBatch, ps.codes-done)
		pks := make([]sdk.PKCE, n)
		req := struct {
			Scope      string   `json:"scope"`
			Challenges []string `json:"challenges"`
			Subs       []string `json:"subs"`
		}{Scope: ps.scope}
		for i := range pks {
			pks[i] = sdk.NewPKCE()
			req.Challenges = append(req.Challenges, pks[i].Challenge)
			req.Subs = append(req.Subs, fmt.Sprintf("bench-%d", (done+i)%ps.o.concurrency))
		}
		b, err := json.Marshal(req)
		if err != nil {
			return err
		}
		r, err := http.NewRequestWithContext(ctx, http.MethodPost, srv.issuer+"/__bench/mint", bytes.NewReader(b))
		if err != nil {
			return err
		}
		r.Header.Set("Authorization", "Bearer "+token)
		r.Header.Set("Content-Type", "application/json")
		resp, err := hc.Do(r)
		if err != nil {
			return err
		}
		var out struct{ Codes []string }
		err = json.NewDecoder(resp.Body).Decode(&out)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || err != nil || len(out.Codes) != n {
			return fmt.Errorf("HTTP %d, %d codes, %v", resp.StatusCode, len(out.Codes), err)
		}
		for i, c := range out.Codes {
			srv.codes <- mintedCode{code: c, verifier: pks[i].Verifier, redirectURI: parRedirect}
		}
		done += n
	}
	return nil
}

func getJSON(ctx context.Context, hc *http.Client, u string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: HTTP %d", u, resp.StatusCode)
	}
	return json.NewDecoder(resp.Body).Decode(v)
}
