package config_test

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fedas/fedas/config"
)

const dcPIDQuery = `{"credentials":[{"id":"pid","format":"dc+sd-jwt","meta":{"vct_values":["urn:eudi:pid:1"]},"claims":[{"path":["given_name"]}]}]}`

// dcConfig is a valid configuration with digital_credentials on (internal
// verifier), a payment type mapped onto transaction data for the pid
// query, a rule per trigger, and demo-app (clients[0]) set up for every
// path.
func dcConfig() *config.Config {
	c := config.Default()
	c.AuthorizationDetailsTypes = []config.AuthorizationDetailsType{paymentType(), {Type: "account_info", Fields: map[string]config.AuthorizationDetailsField{"iban": {Type: "string"}}}}
	c.AuthorizationDetailsTypes[0].TransactionData.CredentialIDs = []string{"pid"}
	c.Clients[0].AuthorizationDetailsTypes = []string{"payment_initiation"}
	c.Clients[0].DigitalCredentials = &config.ClientDC{DCAPIOrigins: []string{"https://app.example"}, OpenID4VPRedirectURIs: []string{"https://app.example/dc"}}
	c.DigitalCredentials = config.DigitalCredentials{Enabled: true, SigningKeyFile: "verifier.key", CertificateChainFile: "verifier.pem",
		TrustedIssuers: []config.TrustedIssuer{{Issuer: "https://issuer.example", JWKS: `{"keys":[]}`, VCTValues: []string{"urn:eudi:pid:1"},
			SubjectClaim: "sub", StatusLists: []string{"https://issuer.example/status/"}, Claims: map[string]string{"given_name": "given_name", "family_name": "family_name"}}},
		Queries: map[string]string{"pid": dcPIDQuery},
		Rules:   []config.DCRule{{LoginHint: "wallet", Query: "pid"}, {AuthorizationDetailsType: "payment_initiation", Query: "pid", Clients: []string{c.Clients[0].ID}}},
	}
	return c
}

// external turns dcConfig's verifier into an external one.
func external(c *config.Config) {
	c.DigitalCredentials.Verifier = "external"
	c.DigitalCredentials.External.URL = "https://verifier.internal"
	c.Clients[0].DigitalCredentials.DCAPIOrigins = nil
}

// TestValidate_DigitalCredentials: every message of digital_credentials
// validation (config/dc.go validateDC), each from one misconfiguration of
// a valid configuration, with its path; the valid variants pass.
func TestValidate_DigitalCredentials(t *testing.T) {
	ti := func(c *config.Config) *config.TrustedIssuer { return &c.DigitalCredentials.TrustedIssuers[0] }
	cdc := func(c *config.Config) *config.ClientDC { return c.Clients[0].DigitalCredentials }
	client := "clients[" + config.Default().Clients[0].ID + "].digital_credentials"
	for name, tc := range map[string]struct {
		edit func(c *config.Config)
		want string // "" means valid
	}{
		"valid":              {edit: func(*config.Config) {}},
		"valid external":     {edit: external},
		"valid external pin": {edit: func(c *config.Config) { external(c); c.DigitalCredentials.External.ClientID = "x509_hash:abc" }},
		"valid pdi client": {edit: func(c *config.Config) {
			cdc(c).Dialect, cdc(c).DCAPIOrigins, cdc(c).OpenID4VPRedirectURIs = "pdi", nil, nil
		}},
		"valid redirect_uri": {edit: func(c *config.Config) {
			c.DigitalCredentials.ClientIDPrefix = "redirect_uri"
			c.Dev.InsecureDCClientID = true
		}},
		"client but disabled":  {edit: func(c *config.Config) { c.DigitalCredentials.Enabled = false }, want: client + ": digital_credentials.enabled is false"},
		"unknown dialect":      {edit: func(c *config.Config) { cdc(c).Dialect = "oid4vp" }, want: client + `.dialect: "oid4vp" is not wallet, draft00, pdi or ia`},
		"blank origin":         {edit: func(c *config.Config) { cdc(c).DCAPIOrigins = []string{"https://a b"} }, want: client + `.dc_api_origins: "https://a b" is not an origin`},
		"relative return URI":  {edit: func(c *config.Config) { cdc(c).OpenID4VPRedirectURIs = []string{"/dc"} }, want: client + `.openid4vp_redirect_uris: "/dc" is not an absolute URI without fragment`},
		"pdi with DC API":      {edit: func(c *config.Config) { cdc(c).Dialect, cdc(c).OpenID4VPRedirectURIs = "pdi", nil }, want: client + ".dc_api_origins: dialect pdi never uses the Digital Credentials API"},
		"ia with return URIs":  {edit: func(c *config.Config) { cdc(c).Dialect, cdc(c).DCAPIOrigins = "ia", nil }, want: client + ".openid4vp_redirect_uris: dialect ia never returns to an app"},
		"ia external":          {edit: func(c *config.Config) { external(c); cdc(c).Dialect, cdc(c).OpenID4VPRedirectURIs = "ia", nil }, want: client + ".dialect: ia needs the internal verifier"},
		"DC API external":      {edit: func(c *config.Config) { external(c); cdc(c).DCAPIOrigins = []string{"https://app.example"} }, want: client + ".dc_api_origins: the external verifier serves no Digital Credentials API requests"},
		"no signing key":       {edit: func(c *config.Config) { c.DigitalCredentials.SigningKeyFile = "" }, want: "digital_credentials: the internal verifier needs signing_key_file and certificate_chain_file"},
		"external without url": {edit: func(c *config.Config) { external(c); c.DigitalCredentials.External.URL = "" }, want: "digital_credentials.external.url: required with verifier: external"},
		"external over http":   {edit: func(c *config.Config) { external(c); c.DigitalCredentials.External.URL = "http://verifier.internal" }, want: "digital_credentials.external.url: \"http://verifier.internal\" must use https"},
		"two tokens": {edit: func(c *config.Config) {
			external(c)
			c.DigitalCredentials.External.TokenEnv, c.DigitalCredentials.External.TokenFile = "TOK", "/run/tok"
		}, want: "digital_credentials.external: set token_env or token_file, not both"},
		"unprefixed pin":     {edit: func(c *config.Config) { external(c); c.DigitalCredentials.External.ClientID = "verifier" }, want: `digital_credentials.external.client_id: "verifier" is not a prefixed OpenID4VP client_id`},
		"long timeout":       {edit: func(c *config.Config) { external(c); c.DigitalCredentials.External.Timeout = 2 * time.Minute }, want: "digital_credentials.external.timeout: must be between 0 and 1m"},
		"unknown verifier":   {edit: func(c *config.Config) { c.DigitalCredentials.Verifier = "remote" }, want: `digital_credentials.verifier: "remote" is not internal or external`},
		"redirect_uri prod":  {edit: func(c *config.Config) { c.DigitalCredentials.ClientIDPrefix = "redirect_uri" }, want: "digital_credentials.client_id_prefix: redirect_uri needs dev.insecure_dc_client_id"},
		"unknown prefix":     {edit: func(c *config.Config) { c.DigitalCredentials.ClientIDPrefix = "did" }, want: `digital_credentials.client_id_prefix: "did" is not x509_hash or redirect_uri`},
		"bad wallet scheme":  {edit: func(c *config.Config) { c.DigitalCredentials.WalletScheme = "openid4vp" }, want: `digital_credentials.wallet_scheme: "openid4vp" must look like openid4vp://`},
		"short request ttl":  {edit: func(c *config.Config) { c.DigitalCredentials.RequestTTL = time.Second }, want: "digital_credentials.request_ttl: must be between 10s and 10m"},
		"long poll interval": {edit: func(c *config.Config) { c.DigitalCredentials.PollInterval = 2 * time.Minute }, want: "digital_credentials.poll_interval: must be between 1s and 1m"},
		"many restarts":      {edit: func(c *config.Config) { c.DigitalCredentials.MaxRestarts = 11 }, want: "digital_credentials.max_restarts: must be between 0 and 10"},
		"no issuer":          {edit: func(c *config.Config) { c.DigitalCredentials.TrustedIssuers = nil }, want: "digital_credentials.trusted_issuers: at least one issuer is needed"},
		"issuer without iss": {edit: func(c *config.Config) { ti(c).Issuer = "" }, want: "digital_credentials.trusted_issuers[0].issuer: required"},
		"issuer twice": {edit: func(c *config.Config) {
			c.DigitalCredentials.TrustedIssuers = append(c.DigitalCredentials.TrustedIssuers, *ti(c))
		}, want: `digital_credentials.trusted_issuers[1].issuer: "https://issuer.example" is listed twice`},
		"two key sources":     {edit: func(c *config.Config) { ti(c).JWKSFile = "keys.json" }, want: "digital_credentials.trusted_issuers[0]: set exactly one of jwks, jwks_file and x5c_roots_file"},
		"no vct":              {edit: func(c *config.Config) { ti(c).VCTValues = nil }, want: "digital_credentials.trusted_issuers[0].vct_values: at least one credential type is needed"},
		"hmac alg":            {edit: func(c *config.Config) { ti(c).Algs = []string{"HS256"} }, want: `digital_credentials.trusted_issuers[0].algs: "HS256" is not ES256, ES384, EdDSA or PS256 (the SD-JWT algorithms we verify)`},
		"bad status":          {edit: func(c *config.Config) { ti(c).Status = "always" }, want: `digital_credentials.trusted_issuers[0].status: "always" is not required or optional`},
		"status list on http": {edit: func(c *config.Config) { ti(c).StatusLists = []string{"http://issuer.example/"} }, want: `digital_credentials.trusted_issuers[0].status_lists: "http://issuer.example/" must use https`},
		"no subject claim":    {edit: func(c *config.Config) { ti(c).SubjectClaim = "" }, want: "digital_credentials.trusted_issuers[0].subject_claim: required"},
		"empty claim name":    {edit: func(c *config.Config) { ti(c).Claims["nickname"] = "" }, want: `digital_credentials.trusted_issuers[0].claims: "nickname": "": credential and ID token claim names must not be empty`},
		"two claims onto one": {edit: func(c *config.Config) { ti(c).Claims["first_name"] = "given_name" }, want: `digital_credentials.trusted_issuers[0].claims: "first_name" and "given_name" both map to "given_name"`},
		"no query":            {edit: func(c *config.Config) { c.DigitalCredentials.Queries = nil }, want: "digital_credentials.queries: at least one query is needed"},
		"bad query":           {edit: func(c *config.Config) { c.DigitalCredentials.Queries["mdl"] = `{"credentials":[]}` }, want: "digital_credentials.queries[mdl]: not a valid DCQL query (OpenID4VP §6)"},
		"no rule":             {edit: func(c *config.Config) { c.DigitalCredentials.Rules = nil }, want: "digital_credentials.rules: at least one rule is needed"},
		"rule without query":  {edit: func(c *config.Config) { c.DigitalCredentials.Rules[0].Query = "mdl" }, want: `digital_credentials.rules[0].query: "mdl" is not in digital_credentials.queries`},
		"rule for unknown type": {edit: func(c *config.Config) { c.DigitalCredentials.Rules[1].AuthorizationDetailsType = "transfer" },
			want: `digital_credentials.rules[1].authorization_details_type: "transfer" is not in authorization_details_types`},
		"rule for unmapped type": {edit: func(c *config.Config) { c.DigitalCredentials.Rules[1].AuthorizationDetailsType = "account_info" },
			want: `digital_credentials.rules[1].authorization_details_type: "account_info" has no transaction_data mapping`},
		"mapping outside the query": {edit: func(c *config.Config) { c.AuthorizationDetailsTypes[0].TransactionData.CredentialIDs = []string{"mdl"} },
			want: `digital_credentials.rules[1]: transaction_data.credential_ids of "payment_initiation" names "mdl", not a credential of query "pid"`},
		"rule for unknown client": {edit: func(c *config.Config) { c.DigitalCredentials.Rules[1].Clients = []string{"nobody"} }, want: `digital_credentials.rules[1].clients: "nobody" is not a client`},
		"rule for client without dc": {edit: func(c *config.Config) { c.DigitalCredentials.Rules[1].Clients = []string{c.Clients[1].ID} },
			want: `digital_credentials.rules[1].clients: "` + config.Default().Clients[1].ID + `" has no digital_credentials section`},
	} {
		t.Run(name, func(t *testing.T) {
			c := dcConfig()
			tc.edit(c)
			err := c.Validate()
			if tc.want == "" {
				require.NoError(t, err)
				return
			}
			require.ErrorContains(t, err, tc.want)
		})
	}
}

// TestValidate_ReservedIDTokenClaims: no trusted issuer's claims map may
// name an ID token claim fedas sets itself — a credential must never
// choose our subject, audience, lifetimes, assurance or key binding.
func TestValidate_ReservedIDTokenClaims(t *testing.T) {
	for _, name := range []string{"iss", "sub", "aud", "exp", "iat", "nbf", "amr", "acr", "auth_time", "nonce", "azp", "jti", "cnf", "at_hash", "c_hash", "sid"} {
		t.Run(name, func(t *testing.T) {
			require.Contains(t, config.ReservedIDTokenClaims, name)
			c := dcConfig()
			c.DigitalCredentials.TrustedIssuers[0].Claims = map[string]string{"personal_administrative_number": name}
			err := c.Validate()
			require.ErrorContains(t, err, `digital_credentials.trusted_issuers[0].claims.personal_administrative_number: "`+name+`" is an ID token claim fedas sets itself`)
			require.False(t, strings.Contains(err.Error(), "both map"))
		})
	}
}
