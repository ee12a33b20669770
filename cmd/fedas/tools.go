package main

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"time"

	"github.com/pquerna/otp/totp"
	"golang.org/x/crypto/bcrypt"
	"golang.org/x/term"
	"gopkg.in/yaml.v3"

	"github.com/fedas/fedas/admin"
	"github.com/fedas/fedas/config"
	"github.com/fedas/fedas/par"
)

// Stamped at build time (the Dockerfile does, since its build context has
// no .git for the Go toolchain's own VCS stamp):
//
//	go build -ldflags "-X main.version=1.2.0 -X main.revision=$(git rev-parse HEAD)"
var (
	version  string
	revision string
)

func demoCmd(args []string, s stdio) error {
	fs := newFlags("demo", "demo [app|wallet|reach]", "Starts two fedas instances on loopback (AS1 routes @bank.example to AS2) and walks a\n"+
		"scripted native client through a federated sign-in, printing every request and answer.\n"+
		"With app, AS2 sends the user to its bank app instead (redirect_to_app).\n"+
		"With wallet, one instance with a simulated credential issuer and wallet: a same-device and a\n"+
		"cross-device sign-in and a payment approval with a digital credential (OpenID4VP).\n"+
		"With reach, two instances of one deployment and the bank app on the user's phone: a\n"+
		"cross-device sign-in with number matching, a User Questioning question answered on the\n"+
		"phone, and the interaction_unavailable fallback completed by scanning a QR code.")
	if done, err := parseFlags(fs, args, s); done {
		return err
	}
	if err := wantArgs(fs, 0, 1, s); err != nil {
		return err
	}
	if fs.NArg() == 1 && fs.Arg(0) == "wallet" {
		return demoWallet(s.out)
	}
	if fs.NArg() == 1 && fs.Arg(0) == "reach" {
		return demoReach(s.out)
	}
	if fs.NArg() == 1 && fs.Arg(0) != "app" {
		msg := fmt.Sprintf("unknown demo %q (the variants are app, wallet and reach)", fs.Arg(0))
		fmt.Fprintf(s.err, "fedas demo: %s\n", msg)
		printUsage(s.err, fs)
		return usageError{msg}
	}
	return demo(fs.Args(), s.out)
}

// configCheckCmd is `fedas config check FILE`: every problem at once,
// "FILE:LINE:COLUMN: path: message", after the same environment
// overrides serve applies, and with the key files and secrets loaded as
// serve loads them, so that a config it accepts starts.
func configCheckCmd(args []string, s stdio) error {
	fs := newFlags("config check", "config check [FILE]", "Checks a config file as fedas serve would read it, with the FEDAS_ environment overrides\n"+
		"applied (docs/config.md): YAML syntax, unknown keys, value types, the rules of every\n"+
		"section, and the signing key, HMAC secret, Redis password and every secret reference\n"+
		"loaded. Prints every problem with its line and YAML path; exits 1 when there is one.\n"+
		"FILE defaults to $FEDAS_CONFIG.")
	noEnv := fs.Bool("no-env", false, "ignore the FEDAS_ environment overrides")
	if done, err := parseFlags(fs, args, s); done {
		return err
	}
	if err := wantArgs(fs, 0, 1, s); err != nil {
		return err
	}
	path := fs.Arg(0)
	if path == "" {
		path = os.Getenv(config.EnvConfig)
	}
	if path == "" {
		fmt.Fprintln(s.err, "fedas config check: no FILE (and FEDAS_CONFIG is not set)")
		printUsage(s.err, fs)
		return usageError{"no config file"}
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	o := config.Options{Env: config.LookupEnv, Keys: true}
	if *noEnv {
		o.Env = nil
	}
	cfg, probs := config.Check(b, o)
	probs = append(probs, startChecks(cfg)...)
	if len(probs) == 0 {
		fmt.Fprintf(s.out, "%s: configuration OK\n", path)
		return nil
	}
	fmt.Fprintf(s.out, "%s: %d configuration problem(s):\n", path, len(probs))
	noted := false
	for _, p := range probs {
		if p.AfterSyntax && !noted {
			fmt.Fprintln(s.out, "with the lines that do not parse left out, the rest of the file has these problems (some may be due to the syntax errors):")
			noted = true
		}
		where := path
		switch {
		case p.Source != "":
			where = p.Source
		case p.Line > 0:
			where = fmt.Sprintf("%s:%d:%d", path, p.Line, p.Column)
		}
		msg := p.Message
		if p.Path != "" {
			msg = p.Path + ": " + msg
		}
		fmt.Fprintf(s.out, "  %s: %s\n", where, msg)
	}
	return errors.New("invalid configuration")
}

// startChecks are what serve checks at start beyond the config package:
// the admin tokens file (the admin package reads it).
func startChecks(cfg *config.Config) []config.Problem {
	var probs []config.Problem
	if f := cfg.Admin.TokensFile; f != "" {
		if _, err := admin.LoadTokens(f); err != nil {
			p := config.Problem{Path: "admin.tokens_file", Message: err.Error()}
			if env := config.OverrideEnv("admin.tokens_file"); os.Getenv(env) != "" {
				p.Source = env
			}
			probs = append(probs, p)
		}
	}
	return probs
}

// keygenCmd is `fedas keygen [--dir DIR]`: the key material instances
// sharing a store must share, made once and copied (or mounted) to each.
func keygenCmd(args []string, s stdio) error {
	fs := newFlags("keygen", "keygen [--dir DIR]", "Writes DIR/signing-key.pem (EC P-256, PKCS#8: keys.signing_key_file) and DIR/hmac-secret\n"+
		"(32 random bytes, base64url: keys.hmac_secret_file), mode 0600. A file that exists is kept:\n"+
		"running it again changes nothing. Every instance sharing a store needs the same two files.\n"+
		"For another signing key (a rotation), use fedas keys generate.")
	dir := fs.String("dir", ".", "directory to write into (created 0700 if missing)")
	if done, err := parseFlags(fs, args, s); done {
		return err
	}
	if err := wantArgs(fs, 0, 0, s); err != nil {
		return err
	}
	if err := os.MkdirAll(*dir, 0o700); err != nil {
		return err
	}
	write := func(name string, make func() ([]byte, error)) error {
		p := filepath.Join(*dir, name)
		if _, err := os.Stat(p); err == nil {
			fmt.Fprintf(s.err, "kept %s (it exists)\n", p)
			return nil
		}
		b, err := make()
		if err != nil {
			return err
		}
		f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return err
		}
		if _, err := f.Write(b); err != nil {
			f.Close()
			return err
		}
		if err := f.Close(); err != nil {
			return err
		}
		fmt.Fprintf(s.err, "wrote %s\n", p)
		return nil
	}
	if err := write("signing-key.pem", func() ([]byte, error) {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return nil, err
		}
		der, err := x509.MarshalPKCS8PrivateKey(k)
		if err != nil {
			return nil, err
		}
		return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
	}); err != nil {
		return err
	}
	return write("hmac-secret", func() ([]byte, error) {
		b := make([]byte, 32)
		if _, err := rand.Read(b); err != nil {
			return nil, err
		}
		return []byte(base64.RawURLEncoding.EncodeToString(b) + "\n"), nil
	})
}

// hashPasswordCmd is `fedas hash-password`: from a terminal the password
// is read without echo, twice; otherwise it is stdin's first line.
func hashPasswordCmd(args []string, s stdio) error {
	fs := newFlags("hash-password", "hash-password", "Reads a password and prints its bcrypt hash for users[].password_hash. On a terminal it\n"+
		"asks twice without echo; otherwise it reads the first line of stdin. An empty password\n"+
		"is refused.")
	if done, err := parseFlags(fs, args, s); done {
		return err
	}
	if err := wantArgs(fs, 0, 0, s); err != nil {
		return err
	}
	var pw string
	if f, ok := s.in.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		read := func(prompt string) (string, error) {
			fmt.Fprint(s.err, prompt)
			b, err := term.ReadPassword(int(f.Fd()))
			fmt.Fprintln(s.err)
			return string(b), err
		}
		p1, err := read("Password: ")
		if err != nil {
			return err
		}
		if p1 == "" {
			return errors.New("empty password refused")
		}
		p2, err := read("Again: ")
		if err != nil {
			return err
		}
		if p1 != p2 {
			return errors.New("the passwords differ")
		}
		pw = p1
	} else {
		if s.in == nil {
			return errors.New("no password on stdin")
		}
		line, err := bufio.NewReader(s.in).ReadString('\n')
		if err != nil && !errors.Is(err, io.EOF) {
			return err
		}
		pw = strings.TrimRight(line, "\r\n")
	}
	if pw == "" {
		return errors.New("empty password refused (the first line of stdin is the password)")
	}
	h, err := bcrypt.GenerateFromPassword([]byte(pw), bcrypt.DefaultCost)
	if err != nil {
		return err
	}
	fmt.Fprintln(s.out, string(h))
	return nil
}

func pkceCmd(args []string, s stdio) error {
	fs := newFlags("pkce", "pkce", "Prints a fresh PKCE pair (RFC 7636, S256) as shell assignments:\ncode_verifier=… and code_challenge=… (eval \"$(fedas pkce)\").")
	if done, err := parseFlags(fs, args, s); done {
		return err
	}
	if err := wantArgs(fs, 0, 0, s); err != nil {
		return err
	}
	v, c := par.NewPKCE()
	fmt.Fprintf(s.out, "code_verifier=%s\ncode_challenge=%s\n", v, c)
	return nil
}

func totpCmd(args []string, s stdio) error {
	fs := newFlags("totp", "totp SECRET", "Prints the current RFC 6238 code (6 digits, 30 s) of a base32 secret.")
	if done, err := parseFlags(fs, args, s); done {
		return err
	}
	if err := wantArgs(fs, 1, 1, s); err != nil {
		return err
	}
	code, err := totp.GenerateCode(fs.Arg(0), time.Now())
	if err != nil {
		return err
	}
	fmt.Fprintln(s.out, code)
	return nil
}

// healthcheckCmd is `fedas healthcheck`, for container HEALTHCHECKs
// (images have no curl). It asks the address the instance listens on,
// found as serve finds it, so the check follows the configuration instead
// of a URL written into the image.
func healthcheckCmd(args []string, s stdio) error {
	fs := newFlags("healthcheck", "healthcheck [--config FILE] [--listen ADDR] [--path /readyz] [URL]",
		"Exits 0 when GET http://<listen address><path> answers 200 within the timeout. The address is\n"+
			"URL, else --listen, else $FEDAS_LISTEN, else the listen key of the config file (--config,\n"+
			"else $FEDAS_CONFIG), else 127.0.0.1:8080; a wildcard host (0.0.0.0, ::) is asked on loopback.\n"+
			"/readyz answers 200 when storage is reachable; /healthz when the process is up.")
	cfgPath := fs.String("config", "", "config file whose listen address to check (default $FEDAS_CONFIG)")
	listen := fs.String("listen", "", "address to check (default $FEDAS_LISTEN, then the config file's)")
	path := fs.String("path", "/readyz", "path to ask")
	timeout := fs.Duration("timeout", 2*time.Second, "give up after this long")
	if done, err := parseFlags(fs, args, s); done {
		return err
	}
	if err := wantArgs(fs, 0, 1, s); err != nil {
		return err
	}
	u := fs.Arg(0)
	if u == "" {
		addr, err := healthAddr(*listen, *cfgPath)
		if err != nil {
			return err
		}
		u = "http://" + addr + *path
	}
	hc := &http.Client{Timeout: *timeout}
	resp, err := hc.Get(u)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: HTTP %d", u, resp.StatusCode)
	}
	return nil
}

// healthAddr finds the address serve listens on: flag > env > file, as
// serve's own precedence.
func healthAddr(listen, cfgPath string) (string, error) {
	if listen == "" {
		listen = os.Getenv("FEDAS_LISTEN")
	}
	if listen == "" {
		if cfgPath == "" {
			cfgPath = os.Getenv(config.EnvConfig)
		}
		if cfgPath != "" {
			b, err := os.ReadFile(cfgPath)
			if err != nil {
				return "", err
			}
			// Only the address: a health check must not fail on a secret
			// that its own environment lacks.
			var f struct {
				Listen string `yaml:"listen"`
			}
			if err := yaml.Unmarshal(b, &f); err != nil {
				return "", fmt.Errorf("%s: %w", cfgPath, err)
			}
			listen = f.Listen
		}
	}
	if listen == "" {
		listen = config.Default().Listen
	}
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return "", fmt.Errorf("listen address %q: %w", listen, err)
	}
	return net.JoinHostPort(loopbackFor(host), port), nil
}

// loopbackFor maps a wildcard listen host to the loopback address that
// reaches it.
func loopbackFor(host string) string {
	switch host {
	case "", "0.0.0.0":
		return "127.0.0.1"
	case "::", "[::]":
		return "::1"
	}
	return host
}

// versionCmd prints the version: the -ldflags stamp when there is one,
// else the module version, then the Go toolchain's VCS stamp.
func versionCmd(args []string, s stdio) error {
	fs := newFlags("version", "version", "Prints the version (stamped at build with -ldflags \"-X main.version=…\", else the module\n"+
		"version) and the build's VCS revision, time and modified flag (runtime/debug.ReadBuildInfo).")
	if done, err := parseFlags(fs, args, s); done {
		return err
	}
	if err := wantArgs(fs, 0, 0, s); err != nil {
		return err
	}
	bi, ok := debug.ReadBuildInfo()
	fmt.Fprint(s.out, versionText(bi, ok, version, revision))
	return nil
}

// versionText formats the build information; version and revision are
// the -ldflags stamps, which win over the toolchain's.
func versionText(bi *debug.BuildInfo, ok bool, version, revision string) string {
	v, mod, goVersion := version, "github.com/fedas/fedas", "unknown"
	settings := map[string]string{}
	if ok {
		mod, goVersion = bi.Main.Path, bi.GoVersion
		if v == "" {
			v = bi.Main.Version
		}
		for _, st := range bi.Settings {
			settings[st.Key] = st.Value
		}
	}
	if v == "" {
		v = "(devel)"
	}
	rev := revision
	if rev == "" {
		rev = settings["vcs.revision"]
	}
	var b strings.Builder
	fmt.Fprintf(&b, "fedas %s\n", v)
	fmt.Fprintf(&b, "module:   %s\n", mod)
	fmt.Fprintf(&b, "go:       %s\n", goVersion)
	if rev == "" {
		fmt.Fprintf(&b, "revision: unknown (built without VCS information)\n")
		return b.String()
	}
	fmt.Fprintf(&b, "revision: %s\n", rev)
	if t := settings["vcs.time"]; t != "" {
		fmt.Fprintf(&b, "time:     %s\n", t)
	}
	if m := settings["vcs.modified"]; m != "" {
		fmt.Fprintf(&b, "modified: %s\n", m)
	}
	return b.String()
}
