package sdk

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/fedas/fedas/uq"
)

// UQMetadata is the User Questioning part of the OP metadata (UQ -10 §3).
type UQMetadata struct {
	Issuer          string   `json:"issuer"`
	JWKSURI         string   `json:"jwks_uri"`
	RequestEndpoint string   `json:"user_questioning_request_endpoint"`
	PollingEndpoint string   `json:"user_questioning_polling_endpoint"`
	AMRList         []string `json:"amr_list"`
	ACRList         []string `json:"acr_list"`
}

// DiscoverUQ reads the User Questioning metadata of issuer (RFC 8414
// document; -10 §3). A provider without the endpoints is an error.
func DiscoverUQ(ctx context.Context, hc *http.Client, issuer string) (UQMetadata, error) {
	var m UQMetadata
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, issuer+"/.well-known/oauth-authorization-server", nil)
	if err != nil {
		return m, err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return m, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return m, fmt.Errorf("sdk: metadata: HTTP %d", resp.StatusCode)
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&m); err != nil {
		return m, fmt.Errorf("sdk: metadata: %w", err)
	}
	if m.Issuer != issuer {
		return m, errors.New("sdk: metadata issuer mismatch (RFC 8414 §3.3)")
	}
	if m.RequestEndpoint == "" || m.PollingEndpoint == "" {
		return m, errors.New("sdk: the provider offers no User Questioning endpoints")
	}
	return m, nil
}

// UQClient is a client of the User Questioning API (-10 §4): it asks
// questions and polls for the User Statement Token with an access token
// of scope question (a bearer token; a DPoP-bound one needs Auth).
type UQClient struct {
	HTTP *http.Client
	Meta UQMetadata
	// AccessToken is sent as Bearer unless Auth is set.
	AccessToken string
	// Auth, when set, authorizes each request (e.g. a DPoP proof and the
	// DPoP scheme for a DPoP-bound token).
	Auth func(req *http.Request) error
}

// ErrPending is Poll's answer while the user has not answered (304,
// -10 §4.2.3).
var ErrPending = errors.New("sdk: question pending")

// Ask posts a question (-10 §4.1) and returns its question_id. A refusal
// is a *uq.Error with the code, the HTTP status and Retry-After.
func (c *UQClient) Ask(ctx context.Context, q uq.Request) (string, error) {
	body, err := json.Marshal(q)
	if err != nil {
		return "", err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.Meta.RequestEndpoint, bytes.NewReader(body))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "application/json")
	var out struct {
		QuestionID string `json:"question_id"`
	}
	if _, err := c.do(req, &out); err != nil {
		return "", err
	}
	if out.QuestionID == "" {
		return "", errors.New("sdk: no question_id in the answer")
	}
	return out.QuestionID, nil
}

// Poll polls once (-10 §4.2) and returns the User Statement Token, or
// ErrPending. clientTimeout > 0 is sent as Client-Timeout (whole
// seconds): the provider may hold the poll until the answer arrives, up
// to a second less than that. An end without a token (refused, timeout)
// and every refusal are a *uq.Error.
func (c *UQClient) Poll(ctx context.Context, questionID string, clientTimeout time.Duration) (string, error) {
	u := c.Meta.PollingEndpoint + "?question_id=" + url.QueryEscape(questionID)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return "", err
	}
	if clientTimeout > 0 {
		req.Header.Set("Client-Timeout", strconv.Itoa(int(clientTimeout/time.Second)))
	}
	var out struct {
		UST string `json:"user_statement_token"`
	}
	st, err := c.do(req, &out)
	if err != nil {
		return "", err
	}
	if st == http.StatusNotModified {
		return "", ErrPending
	}
	if out.UST == "" {
		return "", errors.New("sdk: no user_statement_token in the answer")
	}
	return out.UST, nil
}

// Wait polls until the question ends or ctx does, holding each poll for
// clientTimeout and waiting at least a second between polls (-10 §4.2:
// faster is high_rate_question) or Retry-After when told.
func (c *UQClient) Wait(ctx context.Context, questionID string, clientTimeout time.Duration) (string, error) {
	for {
		start := time.Now()
		ust, err := c.Poll(ctx, questionID, clientTimeout)
		wait := time.Second - time.Since(start)
		var ue *uq.Error
		switch {
		case err == nil:
			return ust, nil
		case errors.As(err, &ue) && (ue.Code == uq.CodeHighRateQuestion || ue.Code == uq.CodeHighRateClient || ue.Code == uq.CodeTemporarilyUnavailable):
			wait = max(wait, ue.RetryAfter)
		case !errors.Is(err, ErrPending):
			return "", err
		}
		if wait > 0 {
			t := time.NewTimer(wait)
			select {
			case <-ctx.Done():
				t.Stop()
				return "", ctx.Err()
			case <-t.C:
			}
		}
	}
}

// do sends req authorized, decodes a 200 into out and answers the
// status; 304 has no body; any other status is a *uq.Error.
func (c *UQClient) do(req *http.Request, out any) (int, error) {
	if c.Auth != nil {
		if err := c.Auth(req); err != nil {
			return 0, err
		}
	} else {
		req.Header.Set("Authorization", "Bearer "+c.AccessToken)
	}
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		return resp.StatusCode, err
	}
	switch resp.StatusCode {
	case http.StatusOK:
		return resp.StatusCode, json.Unmarshal(b, out)
	case http.StatusNotModified:
		return resp.StatusCode, nil
	}
	var body uq.Body
	_ = json.Unmarshal(b, &body)
	e := &uq.Error{Code: body.Error, Description: body.ErrorDescription, Status: resp.StatusCode}
	if e.Code == "" {
		e.Code = uq.CodeServerError
	}
	if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && s > 0 {
		e.RetryAfter = time.Duration(s) * time.Second
	}
	return resp.StatusCode, e
}

// VerifyUST fetches the provider's JWK Set (Meta.JWKSURI) and verifies a
// User Statement Token as -10 §2.1 asks of a client (uq.Verify: ES256
// with a kid from the set and no key-carrying header, aud, question_id,
// the question and statements exactly as sent, user_id iff sent, iss =
// the issuer). The amr/acr policy and freshness (statement_date) are the
// caller's.
func (c *UQClient) VerifyUST(ctx context.Context, ust string, want uq.Expect) (*uq.Claims, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.Meta.JWKSURI, nil)
	if err != nil {
		return nil, err
	}
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("sdk: jwks: HTTP %d", resp.StatusCode)
	}
	var set jose.JSONWebKeySet
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&set); err != nil {
		return nil, fmt.Errorf("sdk: jwks: %w", err)
	}
	if want.Issuer == "" {
		want.Issuer = c.Meta.Issuer
	}
	return uq.Verify(ust, set, want)
}
