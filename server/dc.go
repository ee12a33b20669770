package server

import (
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"

	"github.com/go-jose/go-jose/v4"
	"github.com/labstack/echo/v4"

	"github.com/fedas/fedas/authn/presentation"
	"github.com/fedas/fedas/config"
	"github.com/fedas/fedas/dc"
	"github.com/fedas/fedas/dc/dcql"
	"github.com/fedas/fedas/dc/external"
	"github.com/fedas/fedas/dc/oid4vp"
	"github.com/fedas/fedas/dc/statuslist"
	"github.com/fedas/fedas/dc/verifier"
	"github.com/fedas/fedas/flow"
	"github.com/fedas/fedas/netguard"
	"github.com/fedas/fedas/policy"
	"github.com/fedas/fedas/rar"
	"github.com/fedas/fedas/storage"
)

// Paths of the internal verifier's wallet-facing endpoints (OpenID4VP 1.0
// §5.10 request_uri, §8.2 response_uri; docs/protocol.md "Digital
// credentials").
const (
	PathDCRequest  = "/dc/request/"
	PathDCResponse = "/dc/response"
)

// DCOptions are test seams of the presentation step; production leaves
// them zero.
type DCOptions struct {
	// StatusCheckURL replaces the status list URL check (netguard's, which
	// refuses loopback): tests serve status lists on 127.0.0.1.
	StatusCheckURL func(string) error
	// HTTP is the client for status lists and the external verifier.
	HTTP *http.Client
}

// dcState is the presentation step and what it runs on.
type dcState struct {
	step     *presentation.Step
	internal *verifier.Internal // nil with an external verifier
}

// initDC builds the presentation step from digital_credentials
// (docs/config.md): the verifier, its trusted issuers and status lists.
func (s *Server) initDC(o Options) (*dcState, error) {
	d := o.Config.DigitalCredentials.WithDefaults()
	if !d.Enabled {
		return nil, nil
	}
	issuers, err := trustedIssuers(d.TrustedIssuers)
	if err != nil {
		return nil, err
	}
	httpc := o.DC.HTTP
	if httpc == nil {
		httpc = netguard.Client(netguard.Options{AllowLoopback: o.Config.Dev.AllowLoopbackHTTP})
	}
	status, err := statuslist.NewClient(statuslist.Options{HTTP: httpc, Key: statusKeys(d.TrustedIssuers, issuers),
		CheckURL: o.DC.StatusCheckURL, Now: s.now})
	if err != nil {
		return nil, err
	}
	var keep []string
	for _, ti := range d.TrustedIssuers {
		for from := range ti.Claims {
			keep = append(keep, from)
		}
	}
	st := &dcState{}
	var v dc.Verifier
	switch d.Verifier {
	case "external":
		tok, err := readToken(d.External)
		if err != nil {
			return nil, err
		}
		v, err = external.New(external.Options{BaseURL: d.External.URL, HTTPClient: o.DC.HTTP, BearerToken: tok, ClientID: d.External.ClientID,
			AllowLoopback: o.Config.Dev.AllowLoopbackHTTP, SealKey: derivedKey(o.HMACSecret, "fedas/dc-external-tx/v1"),
			WalletScheme: strings.TrimSuffix(d.WalletScheme, "://"),
			Issuers:      issuers, Status: status, KeepClaims: keep, Now: s.now, Timeout: d.External.Timeout})
		if err != nil {
			return nil, fmt.Errorf("digital_credentials.external: %w", err)
		}
	default:
		dcs, ok := o.Store.(storage.DCStore)
		if !ok {
			return nil, errors.New("server: the store keeps no OpenID4VP transactions (storage.DCStore)")
		}
		signer, err := readSigner(d)
		if err != nil {
			return nil, err
		}
		prefix := oid4vp.PrefixX509Hash
		if d.ClientIDPrefix == "redirect_uri" {
			prefix = oid4vp.PrefixRedirectURI
		}
		in, err := verifier.New(verifier.Options{Store: dcs, Signer: signer, ClientIDPrefix: prefix,
			Insecure:       o.Config.Dev.InsecureDCClientID || o.Config.Dev.AllowLoopbackHTTP,
			BaseURL:        o.Config.Issuer,
			InteractiveURL: o.Config.Issuer + PathNative,
			WalletScheme:   d.WalletScheme, Issuers: issuers, Status: status,
			PlainResponses: d.PlainResponses, KeepClaims: keep, Now: s.now})
		if err != nil {
			return nil, fmt.Errorf("digital_credentials: %w", err)
		}
		st.internal, v = in, in
	}
	step, err := presentation.New(presentation.Options{Verifier: v, Config: d, Logger: s.log.Named("presentation"),
		TransactionData: func(_, raw string, ids []string) ([]string, error) {
			// raw is the canonical JSON the flow validated at the initial
			// request (rar.Parse); parsed again against the same types.
			details, err := rar.Parse(raw, o.Config.RARTypes())
			if err != nil {
				return nil, err
			}
			mappings := o.Config.RARMappings()
			for _, det := range details {
				// A presentation is the whole sign-in here: a detail it
				// cannot show the wallet would be granted unseen (OpenID4VP
				// App. B.3.3). openid_credential names what is issued, not a
				// transaction (presentation during issuance).
				if _, ok := mappings[det.Type()]; !ok && det.Type() != rar.OpenIDCredential {
					return nil, errUnmappedDetails
				}
			}
			return rar.TransactionData(details, mappings, ids)
		}})
	if err != nil {
		return nil, err
	}
	st.step = step
	return st, nil
}

// errUnmappedDetails refuses authorization_details of a type without a
// transaction_data mapping in a presentation sign-in.
var errUnmappedDetails = errors.New("authorization_details type without a transaction_data mapping")

// chainFor is the engine's chain choice: a rule of digital_credentials
// that asks a presentation of this request makes it the whole chain (the
// credential identifies the user); otherwise the local chain.
func (s *Server) chainFor(local []flow.Step) func(c *policy.Client, req map[string]string) []flow.Step {
	pres := []flow.Step{s.dc.step}
	return func(c *policy.Client, req map[string]string) []flow.Step {
		if _, ok := s.dc.step.Required(c, req); ok {
			return pres
		}
		return local
	}
}

// dcRoutes mounts the internal verifier's wallet endpoints (no 3xx ever:
// OpenID4VP 1.0 §14.3 errata).
func (s *Server) dcRoutes(e *echo.Echo, limit func(string) echo.MiddlewareFunc) {
	var request, response http.Handler = http.HandlerFunc(s.dcOff), http.HandlerFunc(s.dcOff)
	if s.dc != nil && s.dc.internal != nil {
		request, response = s.dc.internal.RequestHandler(), s.dc.internal.ResponseHandler()
	}
	req := echo.WrapHandler(walletHeaders(request))
	e.GET(PathDCRequest+":id", req, limit(config.RateDCWallet))
	e.POST(PathDCRequest+":id", req, limit(config.RateDCWallet))
	e.POST(PathDCResponse, echo.WrapHandler(walletHeaders(response)), limit(config.RateDCWallet))
}

// dcOff answers the verifier's endpoints when this instance runs no
// internal verifier (digital_credentials off, or an external verifier):
// 404, as for any unknown path, in an RFC 6749 §5.2 body.
func (s *Server) dcOff(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusNotFound)
	_, _ = w.Write([]byte(`{"error":"not_found","error_description":"This server runs no credential verifier."}`))
}

// walletHeaders adds the headers every answer of ours carries (writeJSON)
// to the verifier's own answers.
func walletHeaders(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Pragma", "no-cache")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		h.ServeHTTP(w, r)
	})
}

func readSigner(d config.DigitalCredentials) (oid4vp.Signer, error) {
	key, err := config.ReadECKeyFile(d.SigningKeyFile)
	if err != nil {
		return oid4vp.Signer{}, fmt.Errorf("digital_credentials.signing_key_file: %w", err)
	}
	chain, err := readCerts(d.CertificateChainFile)
	if err != nil {
		return oid4vp.Signer{}, fmt.Errorf("digital_credentials.certificate_chain_file: %w", err)
	}
	if !key.PublicKey.Equal(chain[0].PublicKey) {
		return oid4vp.Signer{}, errors.New("digital_credentials: the certificate chain's leaf is not for signing_key_file")
	}
	return oid4vp.Signer{Key: key, Chain: chain}, nil
}

func readCerts(path string) ([]*x509.Certificate, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var out []*x509.Certificate
	for {
		var blk *pem.Block
		blk, b = pem.Decode(b)
		if blk == nil {
			break
		}
		if blk.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	if len(out) == 0 {
		return nil, errors.New("no PEM certificate")
	}
	return out, nil
}

func readToken(e config.ExternalVerifier) (string, error) {
	switch {
	case e.TokenEnv != "":
		v := os.Getenv(e.TokenEnv)
		if v == "" {
			return "", fmt.Errorf("digital_credentials.external.token_env: %s is empty", e.TokenEnv)
		}
		return v, nil
	case e.TokenFile != "":
		b, err := os.ReadFile(e.TokenFile)
		if err != nil {
			return "", fmt.Errorf("digital_credentials.external.token_file: %w", err)
		}
		return strings.TrimSpace(string(b)), nil
	}
	return "", nil
}

// trustedIssuers turns the config into the verifier's trust policy.
func trustedIssuers(list []config.TrustedIssuer) ([]dc.TrustedIssuer, error) {
	out := make([]dc.TrustedIssuer, 0, len(list))
	for _, ti := range list {
		t := dc.TrustedIssuer{Issuer: ti.Issuer, VCTValues: ti.VCTValues, StatusRequired: ti.Status == "required",
			SubjectClaim: dcql.Path{ti.SubjectClaim}}
		for _, a := range ti.Algs {
			t.Algs = append(t.Algs, jose.SignatureAlgorithm(a))
		}
		switch {
		case ti.X5CRootsFile != "":
			certs, err := readCerts(ti.X5CRootsFile)
			if err != nil {
				return nil, fmt.Errorf("trusted issuer %s: x5c_roots_file: %w", ti.Issuer, err)
			}
			pool := x509.NewCertPool()
			for _, c := range certs {
				pool.AddCert(c)
			}
			t.X5CRoots = pool
		default:
			raw := []byte(ti.JWKS)
			if ti.JWKSFile != "" {
				b, err := os.ReadFile(ti.JWKSFile)
				if err != nil {
					return nil, fmt.Errorf("trusted issuer %s: jwks_file: %w", ti.Issuer, err)
				}
				raw = b
			}
			var set jose.JSONWebKeySet
			if err := json.Unmarshal(raw, &set); err != nil {
				return nil, fmt.Errorf("trusted issuer %s: jwks: %w", ti.Issuer, err)
			}
			for _, k := range set.Keys {
				if !k.IsPublic() {
					return nil, fmt.Errorf("trusted issuer %s: jwks must hold public keys only", ti.Issuer)
				}
			}
			t.Keys = &set
		}
		out = append(out, t)
	}
	return out, nil
}

// statusKeys decides which key must have signed a status list: the
// trusted issuer whose status_lists prefix the URI starts with, and only
// its keys (Token Status List §8.3; a list elsewhere is refused).
func statusKeys(cfg []config.TrustedIssuer, issuers []dc.TrustedIssuer) statuslist.KeyFunc {
	return func(uri string, h jose.Header) (any, error) {
		for i, ti := range cfg {
			for _, p := range ti.StatusLists {
				if !strings.HasPrefix(uri, p) {
					continue
				}
				t := issuers[i]
				if t.X5CRoots != nil {
					chains, err := h.Certificates(x509.VerifyOptions{Roots: t.X5CRoots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}})
					if err != nil || len(chains) == 0 {
						return nil, errors.New("status list: x5c does not chain to the issuer's roots")
					}
					return chains[0][0].PublicKey, nil
				}
				if t.Keys != nil {
					if h.KeyID != "" {
						if ks := t.Keys.Key(h.KeyID); len(ks) == 1 {
							return ks[0].Key, nil
						}
						return nil, errors.New("status list: unknown kid")
					}
					if len(t.Keys.Keys) == 1 {
						return t.Keys.Keys[0].Key, nil
					}
				}
				return nil, errors.New("status list: no key for it")
			}
		}
		return nil, errors.New("status list: not at a trusted issuer's status_lists")
	}
}
