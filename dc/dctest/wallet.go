package dctest

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/fedas/fedas/dc/dcql"
	"github.com/fedas/fedas/dc/oid4vp"
	"github.com/fedas/fedas/dc/sdjwt"
	"github.com/fedas/fedas/dc/sdjwt/sdjwttest"
)

// Wallet errors: what the simulated wallet refuses before it answers.
var (
	// ErrRequest: the request (URL, request object, JAR signature, typ,
	// client_id binding, wallet_nonce echo, expected_origins) is not
	// acceptable (OpenID4VP 1.0 §5, §5.10, §5.9.3, App. A.2).
	ErrRequest = errors.New("dctest: request refused by the wallet")
	// ErrOrigin: a signed DC API request does not list the caller's origin
	// in expected_origins (OpenID4VP 1.0 App. A.2).
	ErrOrigin = fmt.Errorf("%w: origin not in expected_origins", ErrRequest)
	// ErrNoCredential: no held credential satisfies the dcql_query.
	ErrNoCredential = errors.New("dctest: no credential matches the query")
	// ErrNoReplay: Knobs.Replay* set but nothing was sent before.
	ErrNoReplay = errors.New("dctest: nothing to replay")
)

// Knobs make the wallet misbehave; each flips one rule a verifier must
// enforce (SECURITY-RESULTS.md "Digital credentials"). The zero value is an honest wallet.
type Knobs struct {
	// Deny answers error=access_denied (OpenID4VP 1.0 §8.5) instead of a
	// presentation.
	Deny bool
	// KB-JWT (RFC 9901 §4.3, §7.3):
	WrongNonce bool // nonce other than the request's
	WrongAud   bool // aud other than the client_id / origin
	StripKB    bool // no KB-JWT at all (downgrade, RFC 9901 §9.5)
	StaleIAT   bool // iat one hour in the past
	KBAlgNone  bool // KB-JWT with alg none
	KBHS256    bool // KB-JWT MACed with HS256
	// Disclosures (RFC 9901 §7.1):
	ExtraDisclosure bool // a fabricated, unreferenced disclosure is added
	DropDisclosure  bool // a disclosure the query asked for is withheld
	// Issuer JWT, re-signed by the issuer to simulate a misbehaving issuer
	// (SD-JWT VC §2):
	LegacyTyp   bool // typ vc+sd-jwt
	DiscloseIss bool // an extra disclosure carrying iss (its digest signed)
	DiscloseCnf bool // an extra disclosure carrying cnf (its digest signed)
	// Issuer JWT forged by the wallet (RFC 8725 §3.1):
	IssuerAlgNone bool // alg none, empty signature
	IssuerHS256   bool // HS256 keyed with the issuer's public key bytes
	// Transaction data (OpenID4VP 1.0 App. B.3.3):
	AlterTransactionData bool // hashes computed over an altered entry
	OmitTDHashes         bool // transaction_data_hashes omitted
	// Response (OpenID4VP 1.0 §8.2, §8.3):
	Replay        bool // post the previous response body/JWE verbatim
	ReplayVPToken bool // the previous vp_token, freshly encrypted
	PostTwice     bool // post the response a second time (Answer.SecondStatus)
	WrongState    bool // state inside the JWE differs from the request's
	FetchTwice    bool // fetch the request_uri twice (Answer.RefetchStatus)
	Unencrypted   bool // vp_token and state as plain form/JSON, no JWE
}

// Wallet is a simulated OpenID4VP 1.0 wallet holding SD-JWT VCs and their
// holder keys. Test support only; not safe for concurrent use.
type Wallet struct {
	// HTTP fetches request_uri and posts to response_uri (default: a
	// client that never follows redirects, VP-E "HTTP Redirects").
	HTTP *http.Client
	// Now is the KB-JWT iat clock (default time.Now).
	Now func() time.Time
	// VerifierRoots, when set, must anchor the request object's x5c chain;
	// otherwise only the x509_hash binding of the leaf is checked (§5.9.3).
	VerifierRoots *x509.CertPool
	// AllowUnsigned accepts unsigned requests of a redirect_uri: client_id
	// (tests only, §5.9.3).
	AllowUnsigned bool
	// Knobs are the evil knobs.
	Knobs Knobs

	mu    sync.Mutex
	held  []held
	last  lastSent
	nonce string // last wallet_nonce sent
}

type held struct {
	c   *Credential
	key *ecdsa.PrivateKey
}

type lastSent struct {
	form    url.Values // direct_post body
	data    []byte     // DC API / interactive answer
	vpToken map[string][]string
}

// NewWallet returns an empty honest wallet.
func NewWallet() *Wallet { return &Wallet{} }

// Add stores a credential with its holder private key.
func (w *Wallet) Add(c *Credential, holder *ecdsa.PrivateKey) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.held = append(w.held, held{c, holder})
}

// Receive creates a holder key, has iss issue claims bound to it and
// stores the credential.
func (w *Wallet) Receive(iss *Issuer, claims map[string]any, o IssueOptions) (*Credential, error) {
	k, err := ecdsaKey()
	if err != nil {
		return nil, err
	}
	pub := jose.JSONWebKey{Key: &k.PublicKey}
	c, err := iss.Issue(claims, &pub, o)
	if err != nil {
		return nil, err
	}
	w.Add(c, k)
	return c, nil
}

// Answer is what the verifier's response_uri answered (OpenID4VP 1.0 §8.2).
type Answer struct {
	Status int
	Body   []byte
	// RedirectURI (same device) and PresentationDuringIssuanceSession
	// (presentation during issuance) from the 200 body.
	RedirectURI                       string
	PresentationDuringIssuanceSession string
	// Request is the verified request object.
	Request *oid4vp.RequestObject
	// SecondStatus is the status of the second POST (Knobs.PostTwice);
	// RefetchStatus of the second request_uri fetch (Knobs.FetchTwice).
	SecondStatus, RefetchStatus int
}

func (w *Wallet) httpClient() *http.Client {
	if w.HTTP != nil {
		c := *w.HTTP
		c.CheckRedirect = noRedirect
		return &c
	}
	return &http.Client{CheckRedirect: noRedirect, Timeout: 10 * time.Second}
}

func noRedirect(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

func (w *Wallet) now() time.Time {
	if w.Now != nil {
		return w.Now()
	}
	return time.Now()
}

// walletMetadata is the wallet_metadata parameter (OpenID4VP 1.0 §10).
const walletMetadata = `{"vp_formats_supported":{"dc+sd-jwt":{"sd-jwt_alg_values":["ES256"],"kb-jwt_alg_values":["ES256"]}},` +
	`"client_id_prefixes_supported":["x509_hash","redirect_uri"],"response_modes_supported":["direct_post.jwt","dc_api.jwt"],` +
	`"authorization_encryption_alg_values_supported":["ECDH-ES"],"authorization_encryption_enc_values_supported":["A128GCM","A256GCM"]}`

// Present runs a same/cross-device presentation (OpenID4VP 1.0 §5.10,
// §8.2, §8.3) from a wallet URL such as
// openid4vp://?client_id=…&request_uri=…&request_uri_method=post (any
// scheme): fetch and verify the request object, select credentials and
// disclosures per dcql_query, write the KB-JWT (aud = client_id), encrypt to
// client_metadata.jwks and POST response=<JWE> to response_uri. A non-2xx
// answer is returned in Answer, not as an error.
func (w *Wallet) Present(ctx context.Context, walletURL string) (*Answer, error) {
	u, err := url.Parse(walletURL)
	if err != nil {
		return nil, fmt.Errorf("%w: wallet URL", ErrRequest)
	}
	q := u.Query()
	clientID := q.Get("client_id")
	if clientID == "" {
		return nil, fmt.Errorf("%w: client_id missing", ErrRequest)
	}
	ans := &Answer{}
	var ro *oid4vp.RequestObject
	if ru := q.Get("request_uri"); ru != "" {
		post := q.Get("request_uri_method") == "post"
		body, status, err := w.fetchRequest(ctx, ru, post)
		if err != nil {
			return nil, err
		}
		if status != http.StatusOK {
			return nil, fmt.Errorf("%w: request_uri answered %d", ErrRequest, status)
		}
		if w.Knobs.FetchTwice {
			first := w.nonce
			_, ans.RefetchStatus, err = w.fetchRequest(ctx, ru, post)
			if err != nil {
				return nil, err
			}
			w.nonce = first // the request used is the first one
		}
		if ro, err = w.verifyRequest(string(body), clientID, post); err != nil {
			return nil, err
		}
	} else {
		// Unsigned request passed by value (redirect_uri: prefix, §5.9.3).
		if ro, err = w.byValue(q, clientID); err != nil {
			return nil, err
		}
	}
	ans.Request = ro
	if ro.ResponseMode != oid4vp.ModeDirectPostJWT && ro.ResponseMode != "direct_post" {
		return nil, fmt.Errorf("%w: response_mode %q", ErrRequest, ro.ResponseMode)
	}
	if ro.ResponseURI == "" {
		return nil, fmt.Errorf("%w: response_uri missing", ErrRequest)
	}
	if strings.HasPrefix(ro.ClientID, oid4vp.PrefixRedirectURI) && ro.ResponseURI != ro.ClientID[len(oid4vp.PrefixRedirectURI):] {
		return nil, fmt.Errorf("%w: redirect_uri client_id must equal response_uri (§5.9.3)", ErrRequest)
	}
	form, err := w.responseForm(ro, oid4vp.Audience(ro.ClientID, ""))
	if err != nil {
		return nil, err
	}
	ans.Status, ans.Body, err = w.post(ctx, ro.ResponseURI, form)
	if err != nil {
		return nil, err
	}
	if w.Knobs.PostTwice {
		if ans.SecondStatus, _, err = w.post(ctx, ro.ResponseURI, form); err != nil {
			return nil, err
		}
	}
	if ans.Status == http.StatusOK {
		var b struct {
			RedirectURI string `json:"redirect_uri"`
			PDIS        string `json:"presentation_during_issuance_session"`
		}
		if json.Unmarshal(ans.Body, &b) == nil {
			ans.RedirectURI, ans.PresentationDuringIssuanceSession = b.RedirectURI, b.PDIS
		}
	}
	return ans, nil
}

func (w *Wallet) fetchRequest(ctx context.Context, ru string, post bool) ([]byte, int, error) {
	var req *http.Request
	var err error
	if post {
		n, nerr := oid4vp.NewNonce()
		if nerr != nil {
			return nil, 0, nerr
		}
		w.nonce = n
		f := url.Values{"wallet_metadata": {walletMetadata}, "wallet_nonce": {n}}
		req, err = http.NewRequestWithContext(ctx, http.MethodPost, ru, strings.NewReader(f.Encode()))
		if err == nil {
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		}
	} else {
		w.nonce = ""
		req, err = http.NewRequestWithContext(ctx, http.MethodGet, ru, nil)
	}
	if err != nil {
		return nil, 0, fmt.Errorf("%w: request_uri", ErrRequest)
	}
	req.Header.Set("Accept", "application/oauth-authz-req+jwt")
	resp, err := w.httpClient().Do(req)
	if err != nil {
		return nil, 0, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, 0, err
	}
	if resp.StatusCode == http.StatusOK && !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/oauth-authz-req+jwt") {
		return nil, 0, fmt.Errorf("%w: request object content type", ErrRequest)
	}
	return body, resp.StatusCode, nil
}

// verifyRequest checks a request object fetched from request_uri: signed
// (typ oauth-authz-req+jwt, ES256, x5c whose leaf hash is the x509_hash
// client_id, optionally anchored in VerifierRoots) or, with AllowUnsigned,
// an alg none object of a redirect_uri: client. wantClientID ("" for the DC
// API) must equal the object's; a POST fetch must have its wallet_nonce
// echoed (§5.10).
func (w *Wallet) verifyRequest(jar, wantClientID string, noncePosted bool) (*oid4vp.RequestObject, error) {
	parts := strings.Split(jar, ".")
	if len(parts) != 3 {
		return nil, fmt.Errorf("%w: request object is not a compact JWS", ErrRequest)
	}
	hb, err := base64.RawURLEncoding.DecodeString(parts[0])
	if err != nil {
		return nil, fmt.Errorf("%w: header", ErrRequest)
	}
	var hdr struct {
		Alg string   `json:"alg"`
		Typ string   `json:"typ"`
		X5C []string `json:"x5c"`
	}
	if err := json.Unmarshal(hb, &hdr); err != nil {
		return nil, fmt.Errorf("%w: header", ErrRequest)
	}
	if hdr.Typ != oid4vp.RequestObjectType {
		return nil, fmt.Errorf("%w: typ must be %s (§5)", ErrRequest, oid4vp.RequestObjectType)
	}
	var payload []byte
	if hdr.Alg == "none" {
		if !w.AllowUnsigned || !strings.HasPrefix(wantClientID, oid4vp.PrefixRedirectURI) || parts[2] != "" {
			return nil, fmt.Errorf("%w: unsigned request object", ErrRequest)
		}
		if payload, err = base64.RawURLEncoding.DecodeString(parts[1]); err != nil {
			return nil, fmt.Errorf("%w: payload", ErrRequest)
		}
	} else {
		if len(hdr.X5C) == 0 {
			return nil, fmt.Errorf("%w: x5c missing", ErrRequest)
		}
		certs := make([]*x509.Certificate, len(hdr.X5C))
		for i, s := range hdr.X5C {
			der, err := base64.StdEncoding.DecodeString(s)
			if err != nil {
				return nil, fmt.Errorf("%w: x5c", ErrRequest)
			}
			if certs[i], err = x509.ParseCertificate(der); err != nil {
				return nil, fmt.Errorf("%w: x5c", ErrRequest)
			}
		}
		if w.VerifierRoots != nil {
			inter := x509.NewCertPool()
			for _, c := range certs[1:] {
				inter.AddCert(c)
			}
			if _, err := certs[0].Verify(x509.VerifyOptions{Roots: w.VerifierRoots, Intermediates: inter, CurrentTime: w.now(),
				KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
				return nil, fmt.Errorf("%w: x5c chain not trusted", ErrRequest)
			}
		}
		jws, err := jose.ParseSignedCompact(jar, []jose.SignatureAlgorithm{jose.ES256})
		if err != nil {
			return nil, fmt.Errorf("%w: request object alg", ErrRequest)
		}
		if payload, err = jws.Verify(certs[0].PublicKey); err != nil {
			return nil, fmt.Errorf("%w: request object signature", ErrRequest)
		}
		hash := oid4vp.X509HashClientID(certs[0])
		var cid struct {
			ClientID string `json:"client_id"`
		}
		_ = json.Unmarshal(payload, &cid)
		if cid.ClientID != hash {
			return nil, fmt.Errorf("%w: client_id is not x509_hash of the leaf (§5.9.3)", ErrRequest)
		}
	}
	ro, err := decodeRequest(payload)
	if err != nil {
		return nil, err
	}
	if wantClientID != "" && ro.ClientID != wantClientID {
		return nil, fmt.Errorf("%w: client_id differs from the wallet URL's", ErrRequest)
	}
	if noncePosted && ro.WalletNonce != w.nonce {
		return nil, fmt.Errorf("%w: wallet_nonce not echoed (§5.10)", ErrRequest)
	}
	if ro.Exp != 0 && w.now().Unix() > ro.Exp {
		return nil, fmt.Errorf("%w: request object expired", ErrRequest)
	}
	return ro, nil
}

func decodeRequest(payload []byte) (*oid4vp.RequestObject, error) {
	var ro oid4vp.RequestObject
	if err := json.Unmarshal(payload, &ro); err != nil {
		return nil, fmt.Errorf("%w: request object payload", ErrRequest)
	}
	if ro.ResponseType != "vp_token" || ro.Nonce == "" || len(ro.DCQLQuery) == 0 {
		return nil, fmt.Errorf("%w: response_type, nonce and dcql_query are required", ErrRequest)
	}
	return &ro, nil
}

// byValue reads an unsigned request from the wallet URL's parameters
// (redirect_uri: client_id, AllowUnsigned only).
func (w *Wallet) byValue(q url.Values, clientID string) (*oid4vp.RequestObject, error) {
	if !w.AllowUnsigned || !strings.HasPrefix(clientID, oid4vp.PrefixRedirectURI) {
		return nil, fmt.Errorf("%w: request_uri missing", ErrRequest)
	}
	m := map[string]any{}
	for k := range q {
		v := q.Get(k)
		switch k {
		case "dcql_query", "client_metadata", "transaction_data":
			m[k] = json.RawMessage(v)
		default:
			m[k] = v
		}
	}
	b, err := json.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("%w: parameters", ErrRequest)
	}
	return decodeRequest(b)
}

// responseMembers builds the authorization response members (§8.1, §8.5)
// the knobs allow: vp_token and state, or error=access_denied.
func (w *Wallet) responseMembers(ro *oid4vp.RequestObject, aud string) (map[string]any, error) {
	m := map[string]any{}
	if ro.State != "" {
		m["state"] = ro.State
	}
	if w.Knobs.WrongState {
		m["state"] = "not-the-state-" + randomString()
	}
	if w.Knobs.Deny {
		m["error"] = "access_denied"
		return m, nil
	}
	var vp map[string][]string
	if w.Knobs.ReplayVPToken {
		if w.last.vpToken == nil {
			return nil, ErrNoReplay
		}
		vp = w.last.vpToken
	} else {
		var err error
		if vp, err = w.vpToken(ro, aud); err != nil {
			return nil, err
		}
	}
	w.last.vpToken = vp
	m["vp_token"] = vp
	return m, nil
}

// responseForm is the direct_post(.jwt) body (§8.2, §8.3).
func (w *Wallet) responseForm(ro *oid4vp.RequestObject, aud string) (url.Values, error) {
	if w.Knobs.Replay {
		if w.last.form == nil {
			return nil, ErrNoReplay
		}
		return w.last.form, nil
	}
	m, err := w.responseMembers(ro, aud)
	if err != nil {
		return nil, err
	}
	f := url.Values{}
	switch {
	case w.Knobs.Deny:
		// §8.5 error response: plain parameters.
		f.Set("error", "access_denied")
		if s, ok := m["state"].(string); ok {
			f.Set("state", s)
		}
	case w.Knobs.Unencrypted || ro.ResponseMode == "direct_post":
		vp, _ := json.Marshal(m["vp_token"])
		f.Set("vp_token", string(vp))
		if s, ok := m["state"].(string); ok {
			f.Set("state", s)
		}
	default:
		jwe, err := encryptTo(ro, m)
		if err != nil {
			return nil, err
		}
		f.Set("response", jwe)
	}
	w.last.form = f
	return f, nil
}

func (w *Wallet) post(ctx context.Context, uri string, f url.Values) (int, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, uri, strings.NewReader(f.Encode()))
	if err != nil {
		return 0, nil, fmt.Errorf("%w: response_uri", ErrRequest)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := w.httpClient().Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return resp.StatusCode, body, err
}

// encryptTo encrypts the response members to the first ECDH-ES P-256 key of
// client_metadata.jwks (§8.3): enc the first of
// encrypted_response_enc_values_supported this wallet knows, A128GCM when
// absent; kid echoed.
func encryptTo(ro *oid4vp.RequestObject, m map[string]any) (string, error) {
	var key *jose.JSONWebKey
	for i, k := range ro.ClientMetadata.JWKS.Keys {
		if _, ok := k.Key.(*ecdsa.PublicKey); ok && (k.Use == "" || k.Use == "enc") && (k.Algorithm == "" || k.Algorithm == string(jose.ECDH_ES)) {
			key = &ro.ClientMetadata.JWKS.Keys[i]
			break
		}
	}
	if key == nil {
		return "", fmt.Errorf("%w: no ECDH-ES key in client_metadata.jwks", ErrRequest)
	}
	enc := jose.A128GCM
	if l := ro.ClientMetadata.EncValuesSupported; len(l) > 0 {
		enc = ""
		for _, e := range l {
			if e == string(jose.A128GCM) || e == string(jose.A256GCM) {
				enc = jose.ContentEncryption(e)
				break
			}
		}
		if enc == "" {
			return "", fmt.Errorf("%w: no supported enc value", ErrRequest)
		}
	}
	b, err := json.Marshal(m)
	if err != nil {
		return "", err
	}
	e, err := jose.NewEncrypter(enc, jose.Recipient{Algorithm: jose.ECDH_ES, Key: key.Key, KeyID: key.KeyID}, nil)
	if err != nil {
		return "", err
	}
	obj, err := e.Encrypt(b)
	if err != nil {
		return "", err
	}
	return obj.CompactSerialize()
}

// DCAPI answers a Digital Credentials API request (OpenID4VP 1.0 App. A) as
// the platform would: requestJSON is {"requests":[{"protocol":
// "openid4vp-v1-signed"|"openid4vp-v1-unsigned","data":{…}}]}; the result is
// the data handed back to the caller: {"response":"<JWE>"} (dc_api.jwt) or
// {"vp_token":{…}} (dc_api). The KB-JWT aud is "origin:"+origin (App. A.4),
// and a signed request must list origin in expected_origins (App. A.2).
func (w *Wallet) DCAPI(requestJSON, origin string) ([]byte, error) {
	var req struct {
		Requests []struct {
			Protocol string          `json:"protocol"`
			Data     json.RawMessage `json:"data"`
		} `json:"requests"`
	}
	if err := json.Unmarshal([]byte(requestJSON), &req); err != nil {
		return nil, fmt.Errorf("%w: DC API request JSON", ErrRequest)
	}
	for _, r := range req.Requests {
		var ro *oid4vp.RequestObject
		switch r.Protocol {
		case "openid4vp-v1-signed":
			var d struct {
				Request string `json:"request"`
			}
			if err := json.Unmarshal(r.Data, &d); err != nil || d.Request == "" {
				return nil, fmt.Errorf("%w: data.request", ErrRequest)
			}
			var err error
			if ro, err = w.verifyRequest(d.Request, "", false); err != nil {
				return nil, err
			}
			if !contains(ro.ExpectedOrigins, origin) {
				return nil, ErrOrigin
			}
		case "openid4vp-v1-unsigned":
			var err error
			if ro, err = decodeRequest(r.Data); err != nil {
				return nil, err
			}
			if ro.ClientID != "" {
				return nil, fmt.Errorf("%w: unsigned DC API requests carry no client_id (App. A.2)", ErrRequest)
			}
		default:
			continue
		}
		return w.dataAnswer(ro, oid4vp.Audience(ro.ClientID, origin))
	}
	return nil, fmt.Errorf("%w: no supported protocol", ErrRequest)
}

// Interactive answers an OpenID4VCI 1.1 Interactive Authorization
// openid4vp_request ({"request":"<JAR>"}) with the openid4vp_response JSON,
// shaped like DC API data; the wallet is the client, so the KB-JWT aud is
// the request's client_id.
func (w *Wallet) Interactive(openid4vpRequestJSON string) ([]byte, error) {
	var d struct {
		Request string `json:"request"`
	}
	if err := json.Unmarshal([]byte(openid4vpRequestJSON), &d); err != nil || d.Request == "" {
		return nil, fmt.Errorf("%w: openid4vp_request", ErrRequest)
	}
	ro, err := w.verifyRequest(d.Request, "", false)
	if err != nil {
		return nil, err
	}
	return w.dataAnswer(ro, ro.ClientID)
}

// dataAnswer is the response object of the DC API / interactive paths:
// encrypted when the response_mode ends in .jwt (§8.3, App. A.3).
func (w *Wallet) dataAnswer(ro *oid4vp.RequestObject, aud string) ([]byte, error) {
	if w.Knobs.Replay {
		if w.last.data == nil {
			return nil, ErrNoReplay
		}
		return w.last.data, nil
	}
	m, err := w.responseMembers(ro, aud)
	if err != nil {
		return nil, err
	}
	var out []byte
	if strings.HasSuffix(ro.ResponseMode, ".jwt") && !w.Knobs.Unencrypted {
		jwe, err := encryptTo(ro, m)
		if err != nil {
			return nil, err
		}
		out, err = json.Marshal(map[string]string{"response": jwe})
		if err != nil {
			return nil, err
		}
	} else if out, err = json.Marshal(m); err != nil {
		return nil, err
	}
	w.last.data = out
	return out, nil
}

// vpToken selects, per dcql_query, a credential for each needed credential
// query and the disclosures it asks for, and presents each with a KB-JWT
// (OpenID4VP 1.0 §6, §8.1, App. B.3.6).
func (w *Wallet) vpToken(ro *oid4vp.RequestObject, aud string) (map[string][]string, error) {
	q, err := dcql.Parse(ro.DCQLQuery)
	if err != nil {
		return nil, fmt.Errorf("%w: dcql_query", ErrRequest)
	}
	td, err := parseTD(ro.TransactionData)
	if err != nil {
		return nil, err
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	picked := map[string]held{}
	paths := map[string][]string{}
	for _, cq := range q.Credentials {
		for _, h := range w.held {
			if sel, ok := selectFor(&cq, h.c); ok {
				picked[cq.ID], paths[cq.ID] = h, sel
				break
			}
		}
	}
	ids, err := chooseIDs(q, picked)
	if err != nil {
		return nil, err
	}
	vp := map[string][]string{}
	for _, id := range ids {
		p, err := w.present(picked[id], paths[id], ro, aud, id, td)
		if err != nil {
			return nil, err
		}
		vp[id] = []string{p}
	}
	return vp, nil
}

// chooseIDs applies credential_sets (§6.2, §6.4.2): each required set needs
// an option whose ids are all available; optional sets contribute their
// first available option. Without credential_sets every query is required.
func chooseIDs(q *dcql.Query, picked map[string]held) ([]string, error) {
	if len(q.CredentialSets) == 0 {
		var ids []string
		for _, cq := range q.Credentials {
			if _, ok := picked[cq.ID]; !ok {
				return nil, ErrNoCredential
			}
			ids = append(ids, cq.ID)
		}
		return ids, nil
	}
	seen := map[string]bool{}
	var ids []string
	for _, cs := range q.CredentialSets {
		found := false
		for _, opt := range cs.Options {
			all := true
			for _, id := range opt {
				if _, ok := picked[id]; !ok {
					all = false
				}
			}
			if all {
				for _, id := range opt {
					if !seen[id] {
						seen[id] = true
						ids = append(ids, id)
					}
				}
				found = true
				break
			}
		}
		if !found && cs.Required {
			return nil, ErrNoCredential
		}
	}
	return ids, nil
}

// selectFor reports whether c answers cq and which disclosure paths to
// reveal: all claims, or the first claim set whose claims c holds (§6.4.1).
func selectFor(cq *dcql.CredentialQuery, c *Credential) ([]string, bool) {
	if cq.Format != dcql.FormatSDJWTVC || !contains(cq.Meta.VCTValues, c.VCT) {
		return nil, false
	}
	byID := map[string]dcql.ClaimQuery{}
	for _, cl := range cq.Claims {
		byID[cl.ID] = cl
	}
	try := func(cls []dcql.ClaimQuery) ([]string, bool) {
		var out []string
		for _, cl := range cls {
			if _, err := dcql.Resolve(c.Claims, cl.Path); err != nil && !visible(cl.Path) {
				return nil, false
			}
			out = append(out, disclosuresFor(c, cl.Path)...)
		}
		return out, true
	}
	if len(cq.ClaimSets) == 0 {
		sel, ok := try(cq.Claims)
		if sel == nil {
			sel = []string{}
		}
		return sel, ok
	}
	for _, set := range cq.ClaimSets {
		var cls []dcql.ClaimQuery
		for _, id := range set {
			cls = append(cls, byID[id])
		}
		if sel, ok := try(cls); ok {
			if sel == nil {
				sel = []string{}
			}
			return sel, true
		}
	}
	return nil, false
}

// visible: claims the issuer always adds (never disclosable).
func visible(p dcql.Path) bool {
	s, _ := p[0].(string)
	switch s {
	case "iss", "vct", "iat", "exp", "status", "cnf":
		return len(p) == 1
	}
	return false
}

// disclosuresFor returns the disclosure paths needed to reveal claims path
// p: every disclosure on the way to it and every one beneath it (a nil
// component matches any array index).
func disclosuresFor(c *Credential, p dcql.Path) []string {
	var out []string
	for _, d := range c.Disclosures {
		comps := strings.Split(d.Path, ".")
		n := min(len(comps), len(p))
		ok := true
		for i := 0; i < n; i++ {
			switch v := p[i].(type) {
			case string:
				ok = ok && comps[i] == v
			case nil:
			default:
				ok = ok && comps[i] == fmt.Sprint(v)
			}
		}
		if ok {
			out = append(out, d.Path)
		}
	}
	return out
}

// tdEntry is the decoded part of a transaction_data entry the wallet needs
// (OpenID4VP 1.0 §5.1, App. B.3.3).
type tdEntry struct {
	raw           string
	CredentialIDs []string `json:"credential_ids"`
	HashAlgs      []string `json:"transaction_data_hashes_alg"`
}

func parseTD(list []string) ([]tdEntry, error) {
	out := make([]tdEntry, 0, len(list))
	for _, s := range list {
		b, err := base64.RawURLEncoding.DecodeString(s)
		if err != nil {
			return nil, fmt.Errorf("%w: transaction_data encoding", ErrRequest)
		}
		e := tdEntry{raw: s}
		if err := json.Unmarshal(b, &e); err != nil || len(e.CredentialIDs) == 0 {
			return nil, fmt.Errorf("%w: transaction_data entry", ErrRequest)
		}
		if len(e.HashAlgs) > 0 && !contains(e.HashAlgs, "sha-256") {
			return nil, fmt.Errorf("%w: transaction_data_hashes_alg without sha-256", ErrRequest)
		}
		out = append(out, e)
	}
	return out, nil
}

// TDHash is the transaction_data hash (OpenID4VP 1.0 App. B.3.3.1):
// base64url(SHA-256) over the exact base64url string sent.
func TDHash(entry string) string {
	h := sha256.Sum256([]byte(entry))
	return base64.RawURLEncoding.EncodeToString(h[:])
}

// present makes one SD-JWT+KB presentation, applying the knobs.
func (w *Wallet) present(h held, sel []string, ro *oid4vp.RequestObject, aud, qid string, td []tdEntry) (string, error) {
	c, k := h.c, w.Knobs
	jwt := c.JWT
	var disc []string
	for _, d := range c.Disclosures {
		if contains(sel, d.Path) {
			disc = append(disc, d.Encoded)
		}
	}
	if k.DropDisclosure && len(disc) > 0 {
		disc = disc[:len(disc)-1]
	}
	if k.ExtraDisclosure {
		d, err := sdjwttest.EncodeDisclosure([]any{randomString(), "smuggled", "value"})
		if err != nil {
			return "", err
		}
		disc = append(disc, d)
	}
	if k.LegacyTyp || k.DiscloseIss || k.DiscloseCnf || k.IssuerAlgNone || k.IssuerHS256 {
		var err error
		if jwt, disc, err = forgeIssuerJWT(c, disc, k); err != nil {
			return "", err
		}
	}
	sdPart := sdjwttest.Combine(jwt, disc, "")
	if k.StripKB {
		return sdPart, nil
	}
	nonce := ro.Nonce
	if k.WrongNonce {
		nonce = "wrong-" + randomString()
	}
	if k.WrongAud {
		aud = "x509_hash:" + randomString()
	}
	iat := w.now()
	if k.StaleIAT {
		iat = iat.Add(-time.Hour)
	}
	claims := sdjwttest.KBClaims(sdPart, nonce, aud, iat)
	var hashes []string
	alg := false
	for _, e := range td {
		if !contains(e.CredentialIDs, qid) {
			continue
		}
		s := e.raw
		if k.AlterTransactionData {
			s = alterTD(s)
		}
		hashes = append(hashes, TDHash(s))
		alg = alg || len(e.HashAlgs) > 0
	}
	if len(hashes) > 0 && !k.OmitTDHashes {
		claims["transaction_data_hashes"] = hashes
		if alg {
			claims["transaction_data_hashes_alg"] = "sha-256"
		}
	}
	switch {
	case k.KBAlgNone:
		return sdPart + unsignedJWS(map[string]any{"alg": "none", "typ": sdjwt.TypKB}, claims), nil
	case k.KBHS256:
		kb, err := sdjwttest.SignKB(jose.SigningKey{Algorithm: jose.HS256, Key: []byte("holder-mac-key-0123456789abcdef!")}, sdjwt.TypKB, claims)
		return sdPart + kb, err
	}
	kb, err := sdjwttest.SignKB(jose.SigningKey{Algorithm: jose.ES256, Key: h.key}, sdjwt.TypKB, claims)
	if err != nil {
		return "", err
	}
	return sdPart + kb, nil
}

// alterTD changes the payload of a transaction_data entry (e.g. the amount
// a user approved) and re-encodes it.
func alterTD(s string) string {
	b, _ := base64.RawURLEncoding.DecodeString(s)
	var m map[string]any
	if json.Unmarshal(b, &m) != nil {
		return s + "A"
	}
	m["payload"] = map[string]any{"altered": true}
	nb, _ := json.Marshal(m)
	return base64.RawURLEncoding.EncodeToString(nb)
}

// forgeIssuerJWT rewrites the issuer JWT per the knobs: re-signed by the
// issuer (legacy typ, forbidden disclosures) or forged by the wallet (alg
// none, HS256).
func forgeIssuerJWT(c *Credential, disc []string, k Knobs) (string, []string, error) {
	payload, err := payloadOf(c.JWT)
	if err != nil {
		return "", nil, err
	}
	typ := sdjwt.TypVC
	if k.LegacyTyp {
		typ = sdjwt.TypVCLegacy
	}
	for _, name := range []string{"iss", "cnf"} {
		if (name == "iss" && !k.DiscloseIss) || (name == "cnf" && !k.DiscloseCnf) {
			continue
		}
		// The plain claim stays: the disclosure duplicates it, as an
		// issuer bug or an attempt to override it would.
		v := payload[name]
		d, err := sdjwttest.EncodeDisclosure([]any{randomString(), name, v})
		if err != nil {
			return "", nil, err
		}
		sd, _ := payload["_sd"].([]any)
		payload["_sd"] = append(sd, sdjwt.Digest(d))
		disc = append(disc, d)
	}
	switch {
	case k.IssuerAlgNone:
		return unsignedJWS(map[string]any{"alg": "none", "typ": typ}, payload), disc, nil
	case k.IssuerHS256:
		pub, err := x509.MarshalPKIXPublicKey(&c.issuer.Key.PublicKey)
		if err != nil {
			return "", nil, err
		}
		jwt, err := sdjwttest.Sign(jose.SigningKey{Algorithm: jose.HS256, Key: pub}, map[jose.HeaderKey]any{jose.HeaderType: typ}, payload)
		return jwt, disc, err
	}
	jwt, err := c.issuer.resign(typ, payload)
	return jwt, disc, err
}

func unsignedJWS(hdr, payload map[string]any) string {
	h, _ := json.Marshal(hdr)
	p, _ := json.Marshal(payload)
	return base64.RawURLEncoding.EncodeToString(h) + "." + base64.RawURLEncoding.EncodeToString(p) + "."
}

func ecdsaKey() (*ecdsa.PrivateKey, error) {
	return ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
}

func randomString() string {
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

func contains(l []string, s string) bool {
	for _, e := range l {
		if e == s {
			return true
		}
	}
	return false
}
