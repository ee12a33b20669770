package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"go.uber.org/zap"

	"github.com/fedas/fedas/config"
	"github.com/fedas/fedas/dc/dctest"
	"github.com/fedas/fedas/dpop"
	"github.com/fedas/fedas/internal/loopbackcert"
	"github.com/fedas/fedas/internal/offsetclock"
	"github.com/fedas/fedas/sdk"
	"github.com/fedas/fedas/server"
	"github.com/fedas/fedas/storage/memory"
)

// demoWalletReturn is the demo app's openid4vp_redirect_uri: where the
// wallet sends the user back on the same device.
const demoWalletReturn = "https://app.example/wallet-return"

// demoPayment is the payment the third run approves (RFC 9396 §2).
const demoPayment = `[{"type":"payment_initiation","instructedAmount":{"currency":"EUR","amount":"42.00"},"creditorName":"Coffee Corner"}]`

// demoWallet is `fedas demo wallet`: one fedas instance over HTTPS on
// loopback with the internal OpenID4VP verifier, a simulated credential
// issuer (dc/dctest) and a simulated wallet holding a PID from it; a
// scripted native app signs in on the same device, then across devices
// (polling), then approves a payment with its credential (RAR
// authorization_details mapped to transaction_data), printing every
// request and answer (docs/protocol.md "Digital credentials").
func demoWallet(out io.Writer) error {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var cleanups []func()
	defer func() {
		for i := len(cleanups) - 1; i >= 0; i-- {
			cleanups[i]()
		}
	}()
	cleanup := func(f func()) { cleanups = append(cleanups, f) }
	// Real time plus what the app "waited" between polls, so that the
	// cross-device run shows polling without making anyone wait.
	clock := &offsetclock.Clock{}

	iss, err := dctest.NewIssuerFor(cleanup, dctest.IssuerOptions{Now: clock.Now})
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "fedas-demo-wallet-")
	if err != nil {
		return err
	}
	cleanup(func() { _ = os.RemoveAll(dir) })
	// The verifier's request-signing key and certificate (client_id
	// x509_hash:…), and the TLS certificate of the instance.
	vKey, vCert, err := demoCert("fedas demo verifier", true)
	if err != nil {
		return err
	}
	keyFile, chainFile, err := writeKeyPair(dir, vKey, vCert)
	if err != nil {
		return err
	}
	tKey, tCert, err := demoCert("fedas demo", false)
	if err != nil {
		return err
	}
	jwks, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{iss.PublicJWK()}})
	statusPrefix := strings.TrimSuffix(iss.StatusURI, "/status/1") + "/"

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	cfg := config.Default()
	cfg.Issuer, cfg.Listen = "https://"+ln.Addr().String(), ln.Addr().String()
	cfg.DigitalCredentials = config.DigitalCredentials{Enabled: true, SigningKeyFile: keyFile, CertificateChainFile: chainFile,
		PollInterval: 5 * time.Second,
		TrustedIssuers: []config.TrustedIssuer{{Issuer: iss.ID, JWKS: string(jwks), VCTValues: []string{iss.VCT}, SubjectClaim: "sub",
			StatusLists: []string{statusPrefix}, Claims: map[string]string{"given_name": "given_name", "family_name": "family_name"}}},
		Queries: map[string]string{"pid": `{"credentials":[{"id":"pid","format":"dc+sd-jwt","meta":{"vct_values":["` + iss.VCT + `"]},` +
			`"claims":[{"path":["given_name"]},{"path":["family_name"]}]}]}`},
		Rules: []config.DCRule{
			{AuthorizationDetailsType: "payment_initiation", Query: "pid", ACR: "urn:fedas:acr:wallet"},
			{LoginHint: "wallet", Query: "pid", ACR: "urn:fedas:acr:wallet"},
		}}
	cfg.AuthorizationDetailsTypes = []config.AuthorizationDetailsType{{Type: "payment_initiation",
		Fields: map[string]config.AuthorizationDetailsField{
			"instructedAmount": {Required: true, Type: "object"},
			"creditorName":     {Required: true, Type: "string"},
		},
		TransactionData: &config.TransactionDataMapping{Type: "urn:eudi:sca:payment:1", Payload: map[string]string{"payee": "creditorName", "amount": "instructedAmount"}}}}
	for i := range cfg.Clients {
		if cfg.Clients[i].ID == "demo-app" {
			cfg.Clients[i].DigitalCredentials = &config.ClientDC{OpenID4VPRedirectURIs: []string{demoWalletReturn}}
			cfg.Clients[i].AuthorizationDetailsTypes = []string{"payment_initiation"}
		}
	}
	if err := cfg.Validate(); err != nil {
		ln.Close()
		return err
	}
	st := memory.NewWithClock(clock.Now)
	cleanup(func() { _ = st.Close() })
	srv, err := server.New(server.Options{Config: cfg, Store: st, Logger: zap.NewNop(), Now: clock.Now,
		DC: server.DCOptions{HTTP: iss.HTTPClient(), StatusCheckURL: func(u string) error {
			// The simulated issuer serves its status list on loopback,
			// which the production check refuses.
			if u != iss.StatusURI {
				return errors.New("not the demo issuer's status list")
			}
			return nil
		}}})
	if err != nil {
		ln.Close()
		return err
	}
	tlsLn := tls.NewListener(ln, &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{tCert.Raw}, PrivateKey: tKey, Leaf: tCert}}, MinVersion: tls.VersionTLS12})
	go func() { _ = srv.Serve(tlsLn) }()
	cleanup(func() {
		c, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = srv.Shutdown(c)
	})

	roots := x509.NewCertPool()
	roots.AddCert(tCert)
	hc := sdk.NewHTTPClient()
	hc.Transport = &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}}
	verifierRoots := x509.NewCertPool()
	verifierRoots.AddCert(vCert)
	w := dctest.NewWallet()
	w.HTTP, w.Now, w.VerifierRoots = hc, clock.Now, verifierRoots
	if _, err := w.Receive(iss, map[string]any{"sub": "pid-4711", "given_name": "Erika", "family_name": "Mustermann", "birthdate": "1964-08-12"}, dctest.IssueOptions{}); err != nil {
		return err
	}
	fmt.Fprintf(out, "fedas     %s (internal OpenID4VP verifier)\nissuer    %s (simulated; status list %s)\nwallet    holds a PID for Erika Mustermann (given_name, family_name, birthdate)\n\n", cfg.Issuer, iss.ID, iss.StatusURI)

	meta, err := sdk.Discover(ctx, hc, cfg.Issuer)
	if err != nil {
		return err
	}
	pk, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	key, err := dpop.NewKey(pk, jose.ES256)
	if err != nil {
		return err
	}
	step := 0
	client := &sdk.Client{HTTP: hc, ClientID: "demo-app", Meta: meta, DPoP: key,
		OnExchange: func(method, u string, form url.Values, status int, body []byte) {
			step++
			shown := url.Values{}
			for k, v := range form {
				if k == "code_verifier" {
					v = []string{"…"}
				}
				shown[k] = v
			}
			fmt.Fprintf(out, "── %d. %s %s\n   %s\n   → HTTP %d %s\n\n", step, method, u, shown.Encode(), status, strings.TrimSpace(string(body)))
		}}
	present := func(ctx context.Context, walletURL string) (*dctest.Answer, error) {
		ans, err := w.Present(ctx, walletURL)
		if err != nil {
			return nil, err
		}
		if ans.Status != http.StatusOK {
			return nil, fmt.Errorf("the verifier answered the wallet HTTP %d: %s", ans.Status, ans.Body)
		}
		fmt.Fprintf(out, "── the wallet fetched the signed request (POST %s%s…), asked the user to share given_name and family_name", cfg.Issuer, server.PathDCRequest)
		if td := describeTD(ans); td != "" {
			fmt.Fprintf(out, " and to approve %s", td)
		}
		fmt.Fprintf(out, ",\n   and posted the encrypted response to %s%s → HTTP %d %s\n\n", cfg.Issuer, server.PathDCResponse, ans.Status, strings.TrimSpace(string(ans.Body)))
		return ans, nil
	}
	var qr string
	polls := 0
	client.Wallet = &sdk.WalletHooks{
		OpenWallet: func(ctx context.Context, walletURL string) (url.Values, error) {
			fmt.Fprintf(out, "── the OS opens the wallet app on this device with\n   %s\n\n", walletURL)
			ans, err := present(ctx, walletURL)
			if err != nil {
				return nil, err
			}
			fmt.Fprintf(out, "── the wallet sends the user back to the app's openid4vp_redirect_uri\n   %s\n\n", ans.RedirectURI)
			ru, err := url.Parse(ans.RedirectURI)
			if err != nil {
				return nil, err
			}
			return ru.Query(), nil
		},
		ShowQR: func(_ context.Context, walletURL string) error {
			qr = walletURL
			fmt.Fprintf(out, "── the app shows a QR code for the wallet on the user's phone\n   %s\n\n", walletURL)
			return nil
		},
		Sleep: func(ctx context.Context, d time.Duration) error {
			polls++
			if polls == 2 {
				fmt.Fprintf(out, "── the user scans the QR code with the wallet on the phone\n\n")
				if _, err := present(ctx, qr); err != nil {
					return err
				}
			}
			fmt.Fprintf(out, "   (the app waits %s before polling)\n\n", d)
			clock.Advance(d)
			return nil
		},
	}
	noUI := func(_ context.Context, r sdk.Response) (url.Values, error) {
		return nil, fmt.Errorf("unexpected %s", r.Error)
	}
	run := func(title string, params url.Values) (sdk.Token, error) {
		fmt.Fprintf(out, "════ %s\n\n", title)
		code, pkce, err := client.Authorize(ctx, params, noUI)
		if err != nil {
			return sdk.Token{}, err
		}
		return client.Exchange(ctx, code, pkce)
	}

	tok, err := run("1. Sign-in with the wallet on the same device", url.Values{"scope": {"openid profile"}, "login_hint": {"wallet"},
		"openid4vp_flow_type": {"same_device"}, "openid4vp_redirect_uri": {demoWalletReturn}})
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "Signed in on the same device: %s\n\n", idSummary(tok))
	tok, err = run("2. Sign-in with a wallet on another device (QR code, polling)", url.Values{"scope": {"openid profile"}, "login_hint": {"wallet"},
		"openid4vp_flow_type": {"cross_device"}})
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "Signed in across devices: %s\n\n", idSummary(tok))
	tok, err = run("3. Payment approval with the credential (RAR authorization_details → transaction_data)", url.Values{"scope": {"openid"},
		"authorization_details": {demoPayment}, "openid4vp_flow_type": {"same_device"}, "openid4vp_redirect_uri": {demoWalletReturn}})
	if err != nil {
		return err
	}
	if len(tok.AuthorizationDetails) == 0 {
		return errors.New("the token response carries no authorization_details")
	}
	fmt.Fprintf(out, "Payment approved: the token response grants authorization_details %s\n", tok.AuthorizationDetails)
	return nil
}

// describeTD names the transaction data the wallet was asked to approve.
func describeTD(ans *dctest.Answer) string {
	if ans.Request == nil || len(ans.Request.TransactionData) == 0 {
		return ""
	}
	var parts []string
	for _, td := range ans.Request.TransactionData {
		b, err := base64.RawURLEncoding.DecodeString(td)
		if err != nil {
			continue
		}
		parts = append(parts, string(b))
	}
	return "the transaction data " + strings.Join(parts, ", ")
}

// idSummary shows who an ID token names (the demo's own server signed
// it over TLS; the claims are shown, not verified here).
func idSummary(tok sdk.Token) string {
	parts := strings.Split(tok.IDToken, ".")
	if len(parts) != 3 {
		return "access token " + tok.AccessToken[:12] + "…"
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return "?"
	}
	var c map[string]any
	if json.Unmarshal(b, &c) != nil {
		return "?"
	}
	return fmt.Sprintf("sub %v, given_name %v, family_name %v, acr %v, amr %v", c["sub"], c["given_name"], c["family_name"], c["acr"], c["amr"])
}

// demoCert makes a P-256 key and a self-signed certificate for 127.0.0.1:
// for signing, or (signing false) for TLS.
func demoCert(cn string, signing bool) (*ecdsa.PrivateKey, *x509.Certificate, error) {
	return loopbackcert.New(cn, !signing, 24*time.Hour)
}

// writeKeyPair writes a key and its certificate as PEM files (what
// digital_credentials.signing_key_file and certificate_chain_file read).
func writeKeyPair(dir string, k *ecdsa.PrivateKey, cert *x509.Certificate) (string, string, error) {
	der, err := x509.MarshalECPrivateKey(k)
	if err != nil {
		return "", "", err
	}
	keyFile, chainFile := filepath.Join(dir, "verifier.key"), filepath.Join(dir, "verifier.pem")
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		return "", "", err
	}
	if err := os.WriteFile(chainFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw}), 0o600); err != nil {
		return "", "", err
	}
	return keyFile, chainFile, nil
}
