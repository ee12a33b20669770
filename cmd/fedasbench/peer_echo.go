package main

// The echo peer: the least a PAR or token endpoint on echo v4 can do —
// parse the form, authenticate the client (client_secret_basic compared
// in constant time; private_key_jwt: the ES256 signature, iss, sub, aud,
// exp and a single-use jti, RFC 7523 §3) and answer. PAR (RFC 9126 §2.2):
// 201 with a random request_uri, stored nowhere. Token: a code from a
// sync.Map taken once, PKCE S256 checked (RFC 7636 §4.6), a random access
// token and, with openid, an ES256 ID token. It is the floor for the PAR
// target "at least half of a minimal echo handler".

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/url"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/labstack/echo/v4"

	"github.com/fedas/fedas/par"
	"github.com/fedas/fedas/sdk"
)

type echoPeer struct {
	creds  *clientCreds
	issuer string
	jtis   sync.Map // assertion jti → struct{}
	codes  sync.Map // code → PKCE challenge
	signer jose.Signer
	openid bool // codes were minted with scope openid
}

func startEchoPeer(_ context.Context, ps *peerSetup) (*peerServer, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &echoPeer{creds: ps.creds, issuer: "http://" + ln.Addr().String(), openid: ps.openid}
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		ln.Close()
		return nil, err
	}
	if p.signer, err = jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: jose.JSONWebKey{Key: k, KeyID: "echo"}}, nil); err != nil {
		ln.Close()
		return nil, err
	}
	ev := echo.New()
	ev.HideBanner, ev.HidePort = true, true
	ev.POST("/par", p.par)
	ev.POST("/token", p.token)
	hs := &http.Server{Handler: ev, ReadHeaderTimeout: 5 * time.Second}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = hs.Serve(ln)
	}()
	srv := &peerServer{issuer: p.issuer, parEndpoint: p.issuer + "/par", tokenEndpoint: p.issuer + "/token",
		version: "echo " + echo.Version, note: "in this process; no storage: the floor of parsing, client authentication and JSON on echo",
		stop: func() {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			_ = hs.Shutdown(ctx)
			<-done
		}}
	if ps.o.scenario == "token" {
		srv.codes = make(chan mintedCode, ps.codes)
		for range ps.codes {
			pk := sdk.NewPKCE()
			code := randHex(16)
			p.codes.Store(code, pk.Challenge)
			srv.codes <- mintedCode{code: code, verifier: pk.Verifier, redirectURI: parRedirect}
		}
	}
	return srv, nil
}

func echoError(c echo.Context, status int, code string) error {
	c.Response().Header().Set("Cache-Control", "no-store")
	return c.JSON(status, map[string]string{"error": code})
}

// authenticate checks the client's credentials.
func (p *echoPeer) authenticate(r *http.Request, form url.Values) error {
	if p.creds.method == authBasic {
		u, pw, ok := r.BasicAuth()
		if !ok {
			return errors.New("no Basic credentials")
		}
		id, err1 := url.QueryUnescape(u)
		secret, err2 := url.QueryUnescape(pw)
		if err1 != nil || err2 != nil {
			return errors.New("bad Basic encoding")
		}
		a := sha256.Sum256([]byte(id + "\x00" + secret))
		b := sha256.Sum256([]byte(p.creds.id + "\x00" + p.creds.secret))
		if subtle.ConstantTimeCompare(a[:], b[:]) != 1 {
			return errors.New("wrong secret")
		}
		return nil
	}
	if form.Get("client_assertion_type") != par.ClientAssertionType {
		return errors.New("no client assertion")
	}
	jws, err := jose.ParseSignedCompact(form.Get("client_assertion"), []jose.SignatureAlgorithm{jose.ES256})
	if err != nil {
		return err
	}
	payload, err := jws.Verify(&p.creds.key.PublicKey)
	if err != nil {
		return err
	}
	var cl struct {
		Iss, Sub, Aud, Jti string
		Exp                int64
	}
	if err := json.Unmarshal(payload, &cl); err != nil {
		return err
	}
	if cl.Iss != p.creds.id || cl.Sub != p.creds.id || cl.Aud != p.issuer || cl.Jti == "" || time.Now().Unix() > cl.Exp {
		return errors.New("bad assertion claims")
	}
	if _, used := p.jtis.LoadOrStore(cl.Jti, struct{}{}); used {
		return errors.New("assertion replayed")
	}
	return nil
}

func (p *echoPeer) par(c echo.Context) error {
	form, err := c.FormParams()
	if err != nil {
		return echoError(c, http.StatusBadRequest, "invalid_request")
	}
	if p.authenticate(c.Request(), form) != nil {
		return echoError(c, http.StatusUnauthorized, "invalid_client")
	}
	if form.Get("client_id") != p.creds.id || form.Get("response_type") != "code" || form.Get("redirect_uri") != parRedirect ||
		form.Get("code_challenge") == "" || form.Get("code_challenge_method") != "S256" {
		return echoError(c, http.StatusBadRequest, "invalid_request")
	}
	c.Response().Header().Set("Cache-Control", "no-store")
	return c.JSON(http.StatusCreated, map[string]any{"request_uri": "urn:ietf:params:oauth:request_uri:" + randHex(16), "expires_in": 90})
}

func (p *echoPeer) token(c echo.Context) error {
	form, err := c.FormParams()
	if err != nil {
		return echoError(c, http.StatusBadRequest, "invalid_request")
	}
	if p.authenticate(c.Request(), form) != nil {
		return echoError(c, http.StatusUnauthorized, "invalid_client")
	}
	ch, ok := p.codes.LoadAndDelete(form.Get("code"))
	sum := sha256.Sum256([]byte(form.Get("code_verifier")))
	if !ok || form.Get("grant_type") != "authorization_code" || form.Get("redirect_uri") != parRedirect ||
		base64.RawURLEncoding.EncodeToString(sum[:]) != ch.(string) {
		return echoError(c, http.StatusBadRequest, "invalid_grant")
	}
	out := map[string]any{"access_token": randHex(32), "token_type": "Bearer", "expires_in": 3600}
	if p.openid {
		now := time.Now().Unix()
		claims, _ := json.Marshal(map[string]any{"iss": p.issuer, "sub": "bench-0", "aud": p.creds.id, "iat": now, "exp": now + 300})
		jws, err := p.signer.Sign(claims)
		if err != nil {
			return echoError(c, http.StatusInternalServerError, "server_error")
		}
		if out["id_token"], err = jws.CompactSerialize(); err != nil {
			return echoError(c, http.StatusInternalServerError, "server_error")
		}
	}
	c.Response().Header().Set("Cache-Control", "no-store")
	return c.JSON(http.StatusOK, out)
}
