package verifier

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/fedas/fedas/dc"
	"github.com/fedas/fedas/dc/dcql"
	"github.com/fedas/fedas/dc/oid4vp"
	"github.com/fedas/fedas/dc/sdjwt"
	"github.com/fedas/fedas/storage"
)

// Limits and defaults.
const (
	// DefaultTTL is a transaction's lifetime when BeginRequest.TTL is zero
	// (docs/architecture.md "Local steps").
	DefaultTTL = 120 * time.Second
	// MaxTTL caps every transaction (and so every DCStore key).
	MaxTTL = 10 * time.Minute
	// DefaultMaxBody caps request bodies and DC API data (docs/security.md "Digital credentials").
	DefaultMaxBody = 256 << 10
	// DefaultWalletScheme starts the same/cross-device wallet URL (§3.4).
	DefaultWalletScheme = "openid4vp://"
)

// DC API protocol identifiers (OpenID4VP 1.0 App. A.1).
const (
	protocolSigned   = "openid4vp-v1-signed"
	protocolUnsigned = "openid4vp-v1-unsigned"
)

// Errors of Internal beyond the dc sentinels. Both wrap dc.ErrRejected.
var (
	// ErrAnswered: the transaction already has its one response (first
	// wins, docs/security.md "Digital credentials").
	ErrAnswered = fmt.Errorf("%w: transaction already answered", dc.ErrRejected)
	// ErrOrigin: a DC API response from an origin the transaction does not
	// expect, or a response form this verifier does not accept.
	ErrOrigin = fmt.Errorf("%w: origin not expected", dc.ErrRejected)
	// ErrPlain: an unencrypted response while PlainResponses is off.
	ErrPlain = fmt.Errorf("%w: unencrypted response refused", dc.ErrRejected)
)

// walletErrInvalidPresentation is the only detail a failed verification
// leaves (the dc.Verifier contract; docs/protocol.md "Digital credentials": never echo check details).
const walletErrInvalidPresentation = "invalid_presentation"

// Options configure Internal.
type Options struct {
	// Store keeps the transactions (required).
	Store storage.DCStore
	// Signer signs request objects: ES256 key and x5c chain, leaf first
	// (required unless ClientIDPrefix is redirect_uri:).
	Signer oid4vp.Signer
	// ClientIDPrefix is oid4vp.PrefixX509Hash (default; client_id from the
	// leaf, OpenID4VP 1.0 §5.9.3) or oid4vp.PrefixRedirectURI, which cannot
	// sign and is allowed only with Insecure (tests).
	ClientIDPrefix string
	// Insecure allows the redirect_uri: prefix (tests only).
	Insecure bool
	// BaseURL is our issuer: request_uri = BaseURL+"/dc/request/"+id,
	// response_uri = BaseURL+"/dc/response" (required).
	BaseURL string
	// InteractiveURL is the Interactive Authorization Endpoint
	// (OpenID4VCI 1.1), the expected_url of FlowInteractive requests;
	// required for that flow.
	InteractiveURL string
	// WalletScheme starts the wallet URL (DefaultWalletScheme; wallets also
	// use haip-vp:// and eudi-openid4vp://, docs/protocol.md "Digital credentials").
	WalletScheme string
	// Issuers are the trusted credential issuers (dc.VerifyVPToken).
	Issuers []dc.TrustedIssuer
	// Status checks status list claims; nil only if no credential has one.
	Status dc.StatusChecker
	// PlainResponses accepts unencrypted responses (direct_post vp_token
	// form, DC API vp_token) besides the encrypted ones the requests ask
	// for; off by default (docs/decisions.md Q30–Q35).
	PlainResponses bool
	// KeepClaims are the claim names kept in the stored result (data
	// minimisation, docs/architecture.md "Local steps").
	KeepClaims []string
	// Now is the clock (default time.Now).
	Now func() time.Time
	// MaxBody caps request bodies (DefaultMaxBody).
	MaxBody int64
	// KBMaxAge bounds the KB-JWT age (0: the sdjwt default).
	KBMaxAge time.Duration
}

// Internal is the internal OpenID4VP verifier (dc.Verifier).
type Internal struct {
	o            Options
	clientID     string
	responseURI  string
	requestBase  string
	walletScheme string
	// cryptoOps counts signatures, decryptions and presentation checks
	// (tests assert that Result costs none).
	cryptoOps atomic.Int64
}

var _ dc.Verifier = (*Internal)(nil)

// New validates o and returns the verifier.
func New(o Options) (*Internal, error) {
	if o.Store == nil {
		return nil, errors.New("verifier: Store is required")
	}
	u, err := url.Parse(o.BaseURL)
	if o.BaseURL == "" || err != nil || u.Host == "" || u.RawQuery != "" || u.Fragment != "" || u.Scheme != "https" {
		return nil, errors.New("verifier: BaseURL must be an https URL without query or fragment")
	}
	base := strings.TrimSuffix(o.BaseURL, "/")
	v := &Internal{o: o, responseURI: base + "/dc/response", requestBase: base + "/dc/request/", walletScheme: o.WalletScheme}
	if v.walletScheme == "" {
		v.walletScheme = DefaultWalletScheme
	}
	switch o.ClientIDPrefix {
	case "", oid4vp.PrefixX509Hash:
		if o.Signer.Key == nil || len(o.Signer.Chain) == 0 || o.Signer.Chain[0] == nil {
			return nil, errors.New("verifier: Signer (key and x5c chain) is required for x509_hash")
		}
		v.clientID = oid4vp.X509HashClientID(o.Signer.Chain[0])
	case oid4vp.PrefixRedirectURI:
		if !o.Insecure {
			return nil, errors.New("verifier: the redirect_uri: client_id prefix is for tests only (Insecure)")
		}
		v.clientID = oid4vp.PrefixRedirectURI + v.responseURI
	default:
		return nil, fmt.Errorf("verifier: unsupported client_id prefix %q", o.ClientIDPrefix)
	}
	if v.o.Now == nil {
		v.o.Now = time.Now
	}
	if v.o.MaxBody <= 0 {
		v.o.MaxBody = DefaultMaxBody
	}
	return v, nil
}

// ClientID is the verifier's client_id with its prefix (§5.9.3).
func (v *Internal) ClientID() string { return v.clientID }

// txRecord is the stored transaction (short JSON names: ≤ 2 KB per
// transaction, docs/architecture.md "Local steps").
type txRecord struct {
	Flow     dc.Flow         `json:"f"`
	ReqID    string          `json:"r,omitempty"`
	Nonce    string          `json:"n"`
	Key      string          `json:"k"`
	Query    json.RawMessage `json:"q"`
	TD       []string        `json:"td,omitempty"`
	Redirect string          `json:"ru,omitempty"`
	Origins  []string        `json:"o,omitempty"`
	Binding  string          `json:"b,omitempty"`
	Issuance bool            `json:"i,omitempty"`
	Created  int64           `json:"c"`
	Exp      int64           `json:"e"`
}

// resultRecord is the stored outcome: the minimised result only.
type resultRecord struct {
	Status      dc.Status    `json:"s"`
	CodeHash    string       `json:"h,omitempty"`
	WalletError string       `json:"w,omitempty"`
	Creds       []storedCred `json:"v,omitempty"`
	// Submitted is the digest of a Submit's origin and data: the same
	// submission again (a client's retry, or concurrent retries) gets the
	// recorded result instead of ErrAnswered, so that the flow's
	// auth_session compare-and-swap, not the transaction, is the
	// single-use gate on every path (as Result is for same device).
	Submitted string `json:"d,omitempty"`
}

type storedCred struct {
	QueryID string         `json:"q"`
	Issuer  string         `json:"i"`
	VCT     string         `json:"t"`
	Subject string         `json:"s"`
	Claims  map[string]any `json:"c,omitempty"`
	Holder  string         `json:"h,omitempty"`
}

func (r resultRecord) result() dc.Result {
	out := dc.Result{Status: r.Status, WalletError: r.WalletError}
	for _, c := range r.Creds {
		out.Credentials = append(out.Credentials, dc.VerifiedCredential{QueryID: c.QueryID, Issuer: c.Issuer,
			VCT: c.VCT, Subject: c.Subject, Claims: c.Claims, HolderThumbprint: c.Holder})
	}
	return out
}

func randomID() (string, error) {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

func hashCode(code string) string {
	h := sha256.Sum256([]byte(code))
	return base64.RawURLEncoding.EncodeToString(h[:])
}

// storeErr maps a storage failure: unavailable → dc.ErrUnavailable (the
// flow answers 503), not found → dc.ErrExpired.
func storeErr(op string, err error) error {
	switch {
	case errors.Is(err, storage.ErrNotFound):
		return dc.ErrExpired
	case errors.Is(err, storage.ErrUnavailable):
		return fmt.Errorf("verifier: %s: %w: %w", op, dc.ErrUnavailable, err)
	}
	return fmt.Errorf("verifier: %s: %w", op, err)
}

// newKey returns a fresh response key; with kid set (the request id) a
// direct_post.jwt response without an outer state is found by its JWE kid.
func newKey(kid string) (*oid4vp.ResponseKey, string, error) {
	k, err := oid4vp.NewResponseKey()
	if err != nil {
		return nil, "", err
	}
	txt, err := k.MarshalText()
	if err != nil {
		return nil, "", err
	}
	if kid != "" {
		parts := strings.SplitN(string(txt), ".", 3)
		txt = []byte(parts[0] + "." + kid + "." + parts[2])
		if k, err = oid4vp.UnmarshalResponseKey(txt); err != nil {
			return nil, "", err
		}
	}
	return k, string(txt), nil
}

// Begin implements dc.Verifier: it stores the transaction and returns what
// the flow hands the client (the dc.Verifier contract "Transaction").
func (v *Internal) Begin(ctx context.Context, r dc.BeginRequest) (dc.Transaction, error) {
	if r.Query == nil {
		return dc.Transaction{}, errors.New("verifier: Begin: a DCQL query is required")
	}
	switch r.Flow {
	case dc.FlowDCAPI:
		if len(r.Origins) == 0 || slices.Contains(r.Origins, "") {
			return dc.Transaction{}, errors.New("verifier: Begin: the DC API needs expected origins (OpenID4VP App. A.2)")
		}
	case dc.FlowSameDevice:
		if r.RedirectURITemplate == "" && !r.Issuance {
			return dc.Transaction{}, errors.New("verifier: Begin: same device needs a redirect URI template")
		}
	case dc.FlowCrossDevice:
	case dc.FlowInteractive:
		if v.o.InteractiveURL == "" {
			return dc.Transaction{}, errors.New("verifier: Begin: the interactive flow needs Options.InteractiveURL")
		}
	default:
		return dc.Transaction{}, fmt.Errorf("verifier: Begin: unknown flow %q", r.Flow)
	}
	if r.Issuance && r.Flow != dc.FlowSameDevice {
		return dc.Transaction{}, errors.New("verifier: Begin: presentation during issuance is a same-device flow")
	}
	if r.Flow != dc.FlowSameDevice && r.RedirectURITemplate != "" {
		return dc.Transaction{}, errors.New("verifier: Begin: a redirect URI template is for same device only (OpenID4VP §14.2)")
	}
	if r.Flow != dc.FlowDCAPI && len(r.Origins) != 0 {
		return dc.Transaction{}, errors.New("verifier: Begin: origins are for the DC API only")
	}
	if r.RedirectURITemplate != "" {
		if u, err := url.Parse(r.RedirectURITemplate); err != nil || u.Scheme == "" {
			return dc.Transaction{}, errors.New("verifier: Begin: the redirect URI template must be an absolute URI")
		}
	}
	if r.Nonce != "" && (len(r.Nonce) < 22 || !oid4vp.URLSafe(r.Nonce)) {
		return dc.Transaction{}, errors.New("verifier: Begin: a nonce must be >= 16 bytes of base64url (OpenID4VP §5.2)")
	}
	ttl := r.TTL
	if ttl <= 0 {
		ttl = DefaultTTL
	}
	ttl = min(ttl, MaxTTL)
	query, err := json.Marshal(r.Query)
	if err != nil {
		return dc.Transaction{}, err
	}
	txID, err := randomID()
	if err != nil {
		return dc.Transaction{}, err
	}
	reqID := ""
	if r.Flow == dc.FlowSameDevice || r.Flow == dc.FlowCrossDevice {
		if reqID, err = randomID(); err != nil {
			return dc.Transaction{}, err
		}
	}
	key, keyText, err := newKey(reqID)
	if err != nil {
		return dc.Transaction{}, err
	}
	nonce := r.Nonce
	if nonce == "" {
		if nonce, err = oid4vp.NewNonce(); err != nil {
			return dc.Transaction{}, err
		}
	}
	now := v.o.Now()
	rec := txRecord{Flow: r.Flow, ReqID: reqID, Nonce: nonce, Key: keyText, Query: query, TD: r.TransactionData,
		Redirect: r.RedirectURITemplate, Origins: r.Origins, Binding: r.Binding, Issuance: r.Issuance,
		Created: now.UnixMilli(), Exp: now.Add(ttl).UnixMilli()}
	tx := dc.Transaction{ID: txID, ExpiresAt: now.Add(ttl), ClientID: v.clientID}
	switch r.Flow {
	case dc.FlowDCAPI, dc.FlowInteractive:
		// Signed now: the request travels inside the challenge (§3.3).
		if tx.Request, err = v.inlineRequest(rec, key, ttl); err != nil {
			return dc.Transaction{}, err
		}
	default:
		tx.RequestURI = v.walletScheme + "?" + url.Values{
			"client_id":          {v.clientID},
			"request_uri":        {v.requestBase + reqID},
			"request_uri_method": {"post"},
		}.Encode()
	}
	b, err := json.Marshal(rec)
	if err != nil {
		return dc.Transaction{}, err
	}
	if err := v.o.Store.CreateDC(ctx, txID, reqID, b, ttl); err != nil {
		return dc.Transaction{}, storeErr("Begin", err)
	}
	return tx, nil
}

// inlineRequest signs the DC API or interactive request (OpenID4VP 1.0
// App. A; OpenID4VCI 1.1) and wraps it as the JSON text the platform or
// wallet takes.
func (v *Internal) inlineRequest(rec txRecord, key *oid4vp.ResponseKey, ttl time.Duration) (string, error) {
	p := oid4vp.RequestParams{Nonce: rec.Nonce, DCQLQuery: rec.Query, EncryptionKey: key,
		TransactionData: rec.TD, Now: v.o.Now, Lifetime: ttl}
	if rec.Flow == dc.FlowInteractive {
		p.ResponseMode, p.ExpectedURL = oid4vp.ModeIAEPostJWT, v.o.InteractiveURL
	} else {
		p.ResponseMode, p.ExpectedOrigins = oid4vp.ModeDCAPIJWT, rec.Origins
	}
	v.cryptoOps.Add(1)
	if v.o.ClientIDPrefix == oid4vp.PrefixRedirectURI {
		// Tests only: the unsigned DC API protocol (App. A.2: no client_id).
		if rec.Flow == dc.FlowInteractive {
			return "", errors.New("verifier: the interactive flow needs signed requests (x509_hash)")
		}
		ro, err := oid4vp.UnsignedRequest(p)
		if err != nil {
			return "", err
		}
		b, err := json.Marshal(map[string]any{"requests": []any{map[string]any{"protocol": protocolUnsigned, "data": ro}}})
		return string(b), err
	}
	jar, err := oid4vp.SignRequest(p, v.o.Signer)
	if err != nil {
		return "", err
	}
	var b []byte
	if rec.Flow == dc.FlowInteractive {
		b, err = json.Marshal(map[string]string{"request": jar})
	} else {
		b, err = json.Marshal(map[string]any{"requests": []any{map[string]any{"protocol": protocolSigned, "data": map[string]string{"request": jar}}}})
	}
	return string(b), err
}

// load reads a live transaction: one storage read.
func (v *Internal) load(ctx context.Context, op, txID string) (txRecord, *resultRecord, error) {
	sr, err := v.o.Store.DC(ctx, txID)
	if err != nil {
		return txRecord{}, nil, storeErr(op, err)
	}
	var rec txRecord
	if err := json.Unmarshal(sr.Tx, &rec); err != nil {
		return txRecord{}, nil, fmt.Errorf("verifier: %s: corrupt transaction: %w", op, err)
	}
	if !v.o.Now().Before(time.UnixMilli(rec.Exp)) {
		return txRecord{}, nil, dc.ErrExpired
	}
	if sr.Result == nil {
		return rec, nil, nil
	}
	var res resultRecord
	if err := json.Unmarshal(sr.Result, &res); err != nil {
		return txRecord{}, nil, fmt.Errorf("verifier: %s: corrupt result: %w", op, err)
	}
	return rec, &res, nil
}

// Result implements dc.Verifier: one storage read, no signature,
// decryption or presentation check, and nothing consumed (the flow's
// auth_session compare-and-swap is the single-use gate; it calls Cancel
// after minting the code). Same device needs the response_code (compared
// as SHA-256 digests in constant time), cross device an empty one.
func (v *Internal) Result(ctx context.Context, txID, responseCode string) (dc.Result, error) {
	rec, res, err := v.load(ctx, "Result", txID)
	if err != nil {
		return dc.Result{}, err
	}
	switch rec.Flow {
	case dc.FlowSameDevice:
		if responseCode == "" {
			return dc.Result{}, dc.ErrWrongFlow
		}
		if res == nil || res.CodeHash == "" ||
			subtle.ConstantTimeCompare([]byte(hashCode(responseCode)), []byte(res.CodeHash)) != 1 {
			return dc.Result{}, dc.ErrResponseCode
		}
	default:
		if responseCode != "" {
			return dc.Result{}, dc.ErrWrongFlow
		}
		if res == nil {
			return dc.Result{}, dc.ErrPending
		}
	}
	return res.result(), nil
}

// Cancel implements dc.Verifier: the transaction and its request pointer
// are deleted; a later response, fetch or Result finds nothing.
func (v *Internal) Cancel(ctx context.Context, txID string) error {
	sr, err := v.o.Store.DC(ctx, txID)
	if errors.Is(err, storage.ErrNotFound) {
		return nil
	}
	if err != nil {
		return storeErr("Cancel", err)
	}
	var rec txRecord
	_ = json.Unmarshal(sr.Tx, &rec)
	if err := v.o.Store.DeleteDC(ctx, txID, rec.ReqID); err != nil {
		return storeErr("Cancel", err)
	}
	return nil
}

// vpResponse is a response as the wallet gave it, before verification.
type vpResponse struct {
	vpToken     map[string][]string
	walletError string
}

// verify checks a response against the transaction and builds the result
// to store (§8.6; App. B.3.3). A failed check yields an error result, never
// its details.
func (v *Internal) verify(ctx context.Context, rec txRecord, resp vpResponse, audience string) (resultRecord, error) {
	if resp.walletError != "" {
		return resultRecord{Status: dc.StatusError, WalletError: resp.walletError}, nil
	}
	q, err := dcql.Parse(rec.Query)
	if err != nil {
		return resultRecord{}, fmt.Errorf("verifier: stored query: %w", err)
	}
	// docs/security.md "Digital credentials": a KB-JWT is not older than its transaction
	// (minus the sdjwt leeway), nor than KBMaxAge.
	maxAge := v.o.KBMaxAge
	if maxAge <= 0 {
		maxAge = sdjwt.DefaultKBMaxAge
	}
	maxAge = min(maxAge, max(v.o.Now().Sub(time.UnixMilli(rec.Created)), time.Second))
	v.cryptoOps.Add(1)
	creds, err := dc.VerifyVPToken(ctx, resp.vpToken, dc.Policy{Issuers: v.o.Issuers, Query: q, Nonce: rec.Nonce,
		Audience: audience, Now: v.o.Now, KBMaxAge: maxAge, KeepClaims: v.o.KeepClaims}, v.o.Status)
	if errors.Is(err, dc.ErrUnavailable) {
		// A status list out of reach decides nothing: not recorded, so the
		// same response is taken once it is back (503 meanwhile).
		return resultRecord{}, err
	}
	if err == nil {
		err = dc.CheckTransactionData(creds, rec.TD)
	}
	if err != nil {
		return resultRecord{Status: dc.StatusError, WalletError: walletErrInvalidPresentation}, nil
	}
	out := resultRecord{Status: dc.StatusVerified}
	for _, c := range creds {
		out.Creds = append(out.Creds, storedCred{QueryID: c.QueryID, Issuer: c.Issuer, VCT: c.VCT, Subject: c.Subject,
			Claims: c.Claims, Holder: c.HolderThumbprint})
	}
	return out, nil
}

// record stores the result first-wins and mints the response_code for
// same device. It returns the code ("" off same device).
func (v *Internal) record(ctx context.Context, txID string, rec txRecord, res resultRecord) (string, error) {
	code := ""
	if rec.Flow == dc.FlowSameDevice {
		var err error
		if code, err = randomID(); err != nil {
			return "", err
		}
		res.CodeHash = hashCode(code)
	}
	b, err := json.Marshal(res)
	if err != nil {
		return "", err
	}
	switch err := v.o.Store.SetDCResult(ctx, txID, b); {
	case errors.Is(err, storage.ErrConflict):
		return "", ErrAnswered
	case err != nil:
		return "", storeErr("record", err)
	}
	return code, nil
}

// walletErrorCode keeps a wallet's error code only when it is a plain
// token (§8.5 codes are lower-case ASCII); the description is dropped.
func walletErrorCode(c string) string {
	if c == "" || len(c) > 64 {
		return "invalid_response"
	}
	for i := 0; i < len(c); i++ {
		if !(c[i] >= 'a' && c[i] <= 'z' || c[i] >= '0' && c[i] <= '9' || c[i] == '_') {
			return "invalid_response"
		}
	}
	return c
}

// Submit implements dc.Verifier for the DC API (Origin set, one of the
// transaction's expected origins, exact string; KB-JWT aud origin:<o>,
// App. A.4) and the interactive flow (Origin "", aud = the full
// client_id). data is {"response":"<JWE>"} or, with PlainResponses,
// {"vp_token":{…}} (an object or its JSON text), or a wallet error. The
// first submission wins (another one later is ErrAnswered), and the same
// submission again gets the recorded result (a retry after a lost answer
// or a failure after the record; the flow's compare-and-swap issues one
// code); a failed verification is stored and returned as
// Result{Status: error, WalletError: "invalid_presentation"}.
func (v *Internal) Submit(ctx context.Context, txID string, r dc.DCAPIResponse) (dc.Result, error) {
	rec, res, err := v.load(ctx, "Submit", txID)
	if err != nil {
		return dc.Result{}, err
	}
	var audiences []string
	switch rec.Flow {
	case dc.FlowDCAPI:
		switch {
		case r.Origin == "":
			// A native client cannot prove its origin to us; the wallet
			// wrote the one the platform asserted into the KB-JWT aud, and
			// it must be exactly one of the client's registered origins
			// (OpenID4VP App. A.4): each is tried as the expected aud.
			for _, o := range rec.Origins {
				audiences = append(audiences, oid4vp.Audience(v.clientID, o))
			}
		case slices.Contains(rec.Origins, r.Origin):
			audiences = []string{oid4vp.Audience(v.clientID, r.Origin)}
		default:
			return dc.Result{}, ErrOrigin
		}
		if len(audiences) == 0 {
			return dc.Result{}, ErrOrigin
		}
	case dc.FlowInteractive:
		if r.Origin != "" {
			return dc.Result{}, ErrOrigin
		}
		audiences = []string{v.clientID}
	default:
		return dc.Result{}, dc.ErrWrongFlow
	}
	submitted := hashCode(r.Origin + "\x00" + string(r.Data))
	if res != nil {
		return resubmitted(res, submitted)
	}
	if int64(len(r.Data)) > v.o.MaxBody {
		return dc.Result{}, fmt.Errorf("%w: %w", dc.ErrRejected, oid4vp.ErrTooLarge)
	}
	resp, err := v.parseSubmitted(rec, r.Data)
	if err != nil {
		return dc.Result{}, err
	}
	var out resultRecord
	for _, aud := range audiences {
		if out, err = v.verify(ctx, rec, resp, aud); err != nil {
			return dc.Result{}, err
		}
		if out.Status == dc.StatusVerified || resp.walletError != "" {
			break
		}
	}
	out.Submitted = submitted
	if _, err := v.record(ctx, txID, rec, out); errors.Is(err, ErrAnswered) {
		// A concurrent submission recorded first: the same one is a retry.
		if _, res, lerr := v.load(ctx, "Submit", txID); lerr == nil && res != nil {
			return resubmitted(res, submitted)
		}
		return dc.Result{}, err
	} else if err != nil {
		return dc.Result{}, err
	}
	return out.result(), nil
}

// resubmitted answers a Submit on an answered transaction: the recorded
// result when it was this very submission, else ErrAnswered (first wins).
func resubmitted(res *resultRecord, submitted string) (dc.Result, error) {
	if res.Submitted == "" || subtle.ConstantTimeCompare([]byte(res.Submitted), []byte(submitted)) != 1 {
		return dc.Result{}, ErrAnswered
	}
	return res.result(), nil
}

// parseSubmitted reads the DC API / openid4vp_response data.
func (v *Internal) parseSubmitted(rec txRecord, data []byte) (vpResponse, error) {
	var m struct {
		Response *string         `json:"response"`
		VPToken  json.RawMessage `json:"vp_token"`
		Error    *string         `json:"error"`
	}
	if err := json.Unmarshal(data, &m); err != nil {
		return vpResponse{}, fmt.Errorf("%w: %w: not a JSON object", dc.ErrRejected, oid4vp.ErrInvalidResponse)
	}
	n := 0
	for _, set := range []bool{m.Response != nil, m.VPToken != nil, m.Error != nil} {
		if set {
			n++
		}
	}
	if n != 1 {
		return vpResponse{}, fmt.Errorf("%w: %w: exactly one of response, vp_token, error", dc.ErrRejected, oid4vp.ErrInvalidResponse)
	}
	switch {
	case m.Error != nil:
		return vpResponse{walletError: walletErrorCode(*m.Error)}, nil
	case m.Response != nil:
		return v.decrypt(rec, *m.Response, "")
	}
	if !v.o.PlainResponses {
		return vpResponse{}, ErrPlain
	}
	vt, err := parseVPToken(m.VPToken)
	if err != nil {
		return vpResponse{}, err
	}
	return vpResponse{vpToken: vt}, nil
}

// decrypt opens an encrypted response with the transaction's key; a wallet
// error inside it becomes the error result.
func (v *Internal) decrypt(rec txRecord, jwe, state string) (vpResponse, error) {
	key, err := oid4vp.UnmarshalResponseKey([]byte(rec.Key))
	if err != nil {
		return vpResponse{}, fmt.Errorf("verifier: stored key: %w", err)
	}
	v.cryptoOps.Add(1)
	resp, err := oid4vp.DecryptResponse(jwe, key, oid4vp.ExpectedResponse{State: state, MaxSize: int(v.o.MaxBody)})
	var we *oid4vp.WalletError
	if errors.As(err, &we) {
		return vpResponse{walletError: walletErrorCode(we.Code)}, nil
	}
	if err != nil {
		return vpResponse{}, fmt.Errorf("%w: %w", dc.ErrRejected, err)
	}
	return vpResponse{vpToken: resp.VPToken}, nil
}

// parseVPToken accepts vp_token as a JSON object or as a JSON string
// holding one (form encoding, docs/protocol.md "Digital credentials"): query id → non-empty array of
// non-empty strings.
func parseVPToken(raw json.RawMessage) (map[string][]string, error) {
	var s string
	if err := json.Unmarshal(raw, &s); err == nil {
		raw = json.RawMessage(s)
	}
	var vt map[string][]string
	if err := json.Unmarshal(raw, &vt); err != nil || len(vt) == 0 {
		return nil, fmt.Errorf("%w: %w: vp_token must be an object of arrays of strings", dc.ErrRejected, oid4vp.ErrInvalidResponse)
	}
	for id, pres := range vt {
		if id == "" || len(pres) == 0 || slices.Contains(pres, "") {
			return nil, fmt.Errorf("%w: %w: empty vp_token entry", dc.ErrRejected, oid4vp.ErrInvalidResponse)
		}
	}
	return vt, nil
}
