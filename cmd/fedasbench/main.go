// Command fedasbench is fedas's load driver: it starts fedas in-process on
// loopback (one instance, or two federating ones as `fedas demo` does) and
// drives complete native flows through the sdk package from concurrent
// workers, then reports throughput, per-flow latency, failures by error
// code, connection reuse and process CPU per flow.
//
//	fedasbench [-scenario initial|local|local-password|federated|three-hop|app2app|par|token|refresh|wallet|reach|flood-sessions|flood-passwords]
//	           [-c 8] [-n 2000] [-d 10s]
//	           [-redis redis://127.0.0.1:6379/0|self] [-bcrypt-cost 4] [-json] [-cpuprofile FILE]
//	           [-rate R] [-quiet] [-no-cpu-split] [-attack-rate N] [-legit-rate N]
//	           [-auth client_secret_basic|private_key_jwt] [-token-openid=false] [-peer echo,fosite,oidc-provider]
//
// Scenarios:
//
//	initial    the native initial request only (→ insufficient_authorization)
//	local      initial → password challenge → otp challenge (TOTP, RFC 6238;
//	           fedas asks the code after the password: a user has no
//	           password-less TOTP sign-in) → code → token exchange
//	           (scenarios.go; a fresh user or time step per flow, as a
//	           code is good once)
//	local-password
//	           initial → password challenge → code → token exchange (ID token)
//	federated  AS1 prompts for an email, federates @bank.example to AS2 (a
//	           downstream PAR with private_key_jwt), AS2 challenges for the
//	           password (AS1 opted in to credential challenges), the device
//	           posts AS2's code to AS1's response_uri (AS1 redeems it at AS2)
//	           and redeems AS1's code
//	three-hop  AS1 → AS2 → AS3: AS1's email prompt federates to AS2, AS2
//	           federates its client as1 on to AS3, AS3 challenges for the
//	           password, the device posts AS3's code to AS2's response_uri
//	           and AS2's to AS1's, and redeems AS1's code
//	app2app    AS1 federates to AS2, AS2 answers redirect_to_app (downstream
//	           role); the bank app (signed in at AS2 at set-up) completes
//	           the deep link at /native/app/complete, the device posts the
//	           native_callback_uri's code to AS1's response_uri and redeems
//	           AS1's code
//	par        the PAR endpoint with a confidential client (-auth, auth.go)
//	token      the token endpoint alone (token.go): one authorization_code
//	           grant per flow, codes minted before the window
//	refresh    one refresh_token grant rotating the worker's refresh token
//	           (each worker signed in once with offline_access at set-up)
//	wallet     a cross-device credential presentation (OpenID4VP): the
//	           DPoP-bound initial request with login_hint=wallet, the
//	           simulated wallet fetching the request and posting its PID
//	           presentation, the device's one poll (poll_interval 1 s
//	           passed on a clock seam, not waited) giving the code, and
//	           the token exchange
//	reach      two instances A and B on one store (reach.go): a
//	           cross-device sign-in started on A, the app answering on A,
//	           the device's waiting poll (GET /native/reach/{id}, Prefer:
//	           wait) on B; latency is answer sent → poll answered;
//	           -reach-poll uq: a User Questioning question instead,
//	           polled on B with Client-Timeout
//	flood-sessions, flood-passwords
//	           legitimate traffic under an attack (flood.go): session
//	           creation at -attack-rate from one address while -legit-rate
//	           sign-ins run; refresh throughput with and without a
//	           wrong-password flood
//
// Beyond throughput and per-flow latency the report has (measure.go): the
// latency of every request step (the device's requests, and AS1's
// downstream requests timed on AS2's listener), errors by code,
// allocations per flow, the process CPU split by pprof label into the
// driver's and the servers' (password hashing apart), RSS over the
// window (sampled every second; one sample per 10 s in the JSON for soak
// runs, e.g. -d 10m -n 100000000 -rate R), and, on Redis, the memory a
// live auth session holds and the round trips of each step. A progress
// line goes to stderr every second on a terminal, every 5 s otherwise
// (-quiet: none); stdout carries only the report. -redis self starts a
// redis-server of its own on a free loopback port for the run.
//
// Every loop is bounded in count (-n flows) and time (-d; a flow in flight
// at the deadline is allowed to finish within a per-flow timeout), and all
// traffic stays on 127.0.0.1. 1 + c uncounted warm-up flows come first, so
// that connection reuse and latency describe the steady state.
//
// One user per worker is generated with a bcrypt.MinCost hash so that
// bcrypt does not dominate (cost 4 is still ~1.4 ms per check on a 2 vCPU
// Xeon); -bcrypt-cost 10 measures with a real cost (~80 ms per check).
// Without -redis, state lives in fedas's memory backend; with it, in an
// already running Redis under a fresh key prefix that is deleted at the end.
//
// -peer runs the same par or token load against other servers right
// after fedas's run and reports fedas/peer ratios (peer.go).
//
// The exit status is 1 when any flow failed. fedasbench is never run by
// `go test` beyond a tiny smoke test.
package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"os"
	"os/signal"
	"runtime"
	"runtime/pprof"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"
	"golang.org/x/crypto/bcrypt"

	"github.com/fedas/fedas/config"
	"github.com/fedas/fedas/sdk"
	"github.com/fedas/fedas/server"
	"github.com/fedas/fedas/storage"
	"github.com/fedas/fedas/storage/memory"
	"github.com/fedas/fedas/storage/redisstore"
)

const (
	// flowTimeout bounds one flow end to end (every request has its own
	// 10 s client timeout as well).
	flowTimeout = 10 * time.Second
	// drainGrace is how long after -d the run may last at most: in-flight
	// flows get flowTimeout, then everything is cancelled.
	drainGrace = flowTimeout + 5*time.Second
	// maxSamples is how many distinct error messages are kept.
	maxSamples = 5

	benchPassword = "fedasbench-password"
	benchDomain   = "bank.example"
	benchScope    = "openid email"
	nativeCB      = "https://app.example/cb"
	parClientID   = "bench-partner"
	parRedirect   = "https://partner.example/cb"
)

var scenarios = []string{"initial", "local", "local-password", "federated", "three-hop", "app2app", "par", "token", "refresh", "wallet", "reach"}

func main() {
	// The first interrupt stops new flows (those in flight finish and the
	// report is printed); a second one kills the process.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	go func() {
		<-ctx.Done()
		stop()
	}()
	if len(os.Args) > 1 && os.Args[1] == "suite" {
		err := runSuite(ctx, os.Args[2:], os.Stdout, os.Stderr)
		stop()
		if err != nil && !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "fedasbench suite:", err)
			os.Exit(1)
		}
		return
	}
	res, err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if errors.Is(err, flag.ErrHelp) {
		return
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "fedasbench:", err)
		os.Exit(2)
	}
	if res.Failures > 0 {
		os.Exit(1)
	}
}

// options are the command-line flags.
type options struct {
	scenario    string
	concurrency int
	maxFlows    int
	duration    time.Duration
	redisURL    string
	bcryptCost  int
	json        bool
	cpuProfile  string
	memProfile  string
	rateLimits  bool

	// Measurement (measure.go).
	rate       float64   // flows/s across workers, 0: closed loop
	quiet      bool      // no progress line
	noCPUSplit bool      // no in-memory CPU profile
	progress   io.Writer // where the progress line goes (stderr)

	// reachPoll is the reach scenario's waiting poll: native or uq.
	reachPoll string

	// The abuse scenarios (flood.go).
	attackRate float64
	legitRate  float64
	bcryptSet  bool

	// The par and token scenarios' client authentication and peers
	// (auth.go, token.go, peer.go).
	auth        string
	tokenOpenID bool
	peers       []string
}

func parseFlags(args []string, stderr io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("fedasbench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.scenario, "scenario", "federated", "one of "+strings.Join(append(slices.Clone(scenarios), floodScenarios...), ", "))
	fs.IntVar(&o.concurrency, "c", 8, "concurrent flows (workers)")
	fs.IntVar(&o.maxFlows, "n", 2000, "maximum number of flows")
	fs.DurationVar(&o.duration, "d", 10*time.Second, "maximum duration (flows in flight at the deadline finish)")
	fs.StringVar(&o.redisURL, "redis", "", "URL of an already running Redis, or self to start a redis-server (from PATH) for the run (default: the memory backend)")
	fs.IntVar(&o.bcryptCost, "bcrypt-cost", bcrypt.MinCost, "bcrypt cost of the generated users' password hashes")
	fs.BoolVar(&o.json, "json", false, "machine-readable output (one JSON object)")
	fs.StringVar(&o.cpuProfile, "cpuprofile", "", "write a CPU profile of the measured window (servers and driver) to this file")
	fs.StringVar(&o.memProfile, "memprofile", "", "write a heap profile at the end of the measured window (after a GC) to this file: what a soak retains")
	fs.BoolVar(&o.rateLimits, "rate-limits", false, "keep the default rate limits and the live-session cap per address (off by default: every flow comes from 127.0.0.1 and would share one address's budget; always on in the flood-* scenarios, whose clients have addresses of their own)")

	fs.Float64Var(&o.rate, "rate", 0, "open-loop cap: start at most this many flows per second across all workers (0: closed loop, each worker starts its next flow at once)")
	fs.BoolVar(&o.quiet, "quiet", false, "no progress line on stderr")
	fs.BoolVar(&o.noCPUSplit, "no-cpu-split", false, "take no CPU profile of the window, so no driver/server split of the CPU")
	fs.StringVar(&o.reachPoll, "reach-poll", "native", "reach scenario: the waiting poll measured, native (GET /native/reach/{id}, Prefer: wait) or uq (GET /uq/questions_polling, Client-Timeout)")
	fs.Float64Var(&o.attackRate, "attack-rate", 0, "flood-* scenarios: attack requests per second (default 2000 for flood-sessions, 200 for flood-passwords)")
	fs.Float64Var(&o.legitRate, "legit-rate", 20, "flood-sessions: legitimate sign-ins per second")
	peerFlags(fs, &o)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: fedasbench [-scenario initial|local|local-password|federated|three-hop|app2app|par|token|refresh|wallet|reach|flood-sessions|flood-passwords] [-c N] [-n N] [-d DURATION] [-redis URL|self] [-bcrypt-cost N] [-json] [-cpuprofile FILE] [-rate R] [-quiet] [-no-cpu-split] [-reach-poll native|uq] [-attack-rate N] [-legit-rate N] [-auth METHOD] [-token-openid=BOOL] [-peer LIST]")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	fs.Visit(func(f *flag.Flag) { o.bcryptSet = o.bcryptSet || f.Name == "bcrypt-cost" })
	o.bcryptCost = bcryptFor(o)
	switch {
	case fs.NArg() > 0:
		return o, fmt.Errorf("unexpected arguments %q", fs.Args())
	case !slices.Contains(scenarios, o.scenario) && !isFlood(o.scenario):
		return o, fmt.Errorf("unknown scenario %q (one of %s)", o.scenario, strings.Join(append(slices.Clone(scenarios), floodScenarios...), ", "))
	case o.attackRate < 0 || o.attackRate > 100_000 || o.legitRate <= 0 || o.legitRate > 10_000:
		return o, errors.New("-attack-rate must be in [0, 100000] and -legit-rate in (0, 10000]")
	case o.rate < 0 || o.rate > 1_000_000:
		return o, errors.New("-rate must be in [0, 1000000]")
	case o.concurrency < 1 || o.concurrency > 4096:
		return o, errors.New("-c must be in [1, 4096]")
	case o.maxFlows < 1:
		return o, errors.New("-n must be at least 1")
	case o.scenario == "reach" && o.maxFlows > reachMaxFlows:
		return o, errReachFlows
	case o.reachPoll != "native" && o.reachPoll != "uq":
		return o, errors.New("-reach-poll must be native or uq")
	case checkPeerFlags(o) != nil:
		return o, checkPeerFlags(o)
	case o.duration <= 0 || o.duration > 24*time.Hour:
		return o, errors.New("-d must be in (0, 24h]")
	case o.bcryptCost < bcrypt.MinCost || o.bcryptCost > 16:
		return o, fmt.Errorf("-bcrypt-cost must be in [%d, 16]", bcrypt.MinCost)
	}
	return o, nil
}

// run parses args, runs the benchmark and writes the report.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) (*result, error) {
	o, err := parseFlags(args, stderr)
	if err != nil {
		return nil, err
	}
	o.progress = stderr
	var self *selfRedis
	if o.redisURL == "self" {
		if self, err = startSelfRedis(); err != nil {
			return nil, err
		}
		defer self.stop()
		o.redisURL = self.url()
	}
	res, err := bench(ctx, o)
	if err != nil {
		return nil, err
	}
	res.Tree, res.Machine = tree(), describeMachine()
	if o.redisURL != "" {
		res.Machine.RedisVersion = redisVersionAt(ctx, o.redisURL)
	}
	if self != nil {
		res.Store = "redis self (redis-server " + res.Machine.RedisVersion + " started on " + self.addr + ")"
		res.Machine.RedisPID = self.pid()
	}
	res.ErrorsByKind = errorsByKind(res.FailuresByCode)
	if o.json {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return res, enc.Encode(res)
	}
	res.writeText(stdout)
	return res, nil
}

// result is the report; its JSON form is the -json output.
type result struct {
	Scenario    string `json:"scenario"`
	Store       string `json:"store"`
	Concurrency int    `json:"concurrency"`
	MaxFlows    int    `json:"max_flows"`
	MaxDuration string `json:"max_duration"`
	Users       int    `json:"users"`
	BcryptCost  int    `json:"bcrypt_cost"`
	UsersNote   string `json:"users_note"`
	GoVersion   string `json:"go_version"`
	NumCPU      int    `json:"num_cpu"`
	GOMAXPROCS  int    `json:"gomaxprocs"`
	// SetupMS includes the 1 + c warm-up flows, which are not counted.
	SetupMS     float64 `json:"setup_ms"`
	WarmupFlows int     `json:"warmup_flows"`

	Flows          int            `json:"flows"`
	Failures       int            `json:"failures"`
	FailuresByCode map[string]int `json:"failures_by_code"`
	ErrorSamples   []string       `json:"error_samples,omitempty"`
	ElapsedS       float64        `json:"elapsed_s"`
	FlowsPerS      float64        `json:"flows_per_s"`
	// LatencyMS is over successful flows only.
	LatencyMS latency `json:"latency_ms"`
	// Steps is the latency of each request step in ms, in order of first
	// appearance (measure.go stepSet): side "device" timed by the device
	// (request sent → response headers), side "server" timed on AS2's
	// listener (AS1's downstream requests: first byte read → first byte
	// written).
	Steps []stepOut `json:"steps"`
	// ErrorsByKind is FailuresByCode folded by error code alone.
	ErrorsByKind map[string]int `json:"errors_by_kind"`

	// Device is every request the simulated devices sent (client-side
	// httptrace); Downstream is what AS1 sent to AS2 (federated only,
	// counted on AS2's listener).
	Device     reuse  `json:"device_requests"`
	Downstream *reuse `json:"downstream_requests,omitempty"`

	// CPU is the whole process's user+system time over the measured
	// window: the servers and the driver run in this process.
	CPUS         float64 `json:"process_cpu_s"`
	CPUPerFlowUS float64 `json:"process_cpu_per_flow_us"`
	CPUCores     float64 `json:"process_cpu_cores_busy"`
	GCCycles     uint32  `json:"gc_cycles"`
	HeapInuseMB  float64 `json:"heap_inuse_mb_end"`
	// AllocsPerFlow and AllocBytesPerFlow are runtime.MemStats Mallocs and
	// TotalAlloc over the window per flow (failures included): the whole
	// process, servers and driver alike.
	AllocsPerFlow     float64 `json:"allocs_per_flow"`
	AllocBytesPerFlow float64 `json:"alloc_bytes_per_flow"`
	// The CPU profile's split (measure.go cpuSplit; absent with
	// -no-cpu-split): servers are the samples without the driver's pprof
	// label, the password hash is the server samples in bcrypt/argon2.
	ServerCPUPerFlowUS  *float64  `json:"server_cpu_per_flow_us,omitempty"`
	DriverCPUPerFlowUS  *float64  `json:"driver_cpu_per_flow_us,omitempty"`
	HashCPUPerFlowUS    *float64  `json:"password_hash_cpu_per_flow_us,omitempty"`
	ServerCPUExclHashUS *float64  `json:"server_cpu_per_flow_excl_hash_us,omitempty"`
	CPUSplit            *cpuSplit `json:"cpu_split,omitempty"`
	// RSS is VmRSS at the window's start and end, its maximum over
	// one-second samples, VmHWM (the process's peak, set-up included) and
	// a sample every 10 s.
	RSSStartMB float64     `json:"rss_mb_start"`
	RSSEndMB   float64     `json:"rss_mb_end"`
	RSSMaxMB   float64     `json:"rss_mb_max"`
	RSSHWMMB   float64     `json:"rss_mb_hwm"`
	RSSSamples []rssSample `json:"rss_mb_samples"`
	// Rate is -rate (0: closed loop).
	Rate float64 `json:"rate"`
	// Redis (with -redis) is the stores' round trips over the measured
	// window, counted by a go-redis hook, and the redis-server's own CPU
	// and commands from INFO (the whole server: other clients count too).
	Redis *redisStats `json:"redis,omitempty"`
	// Flood is the abuse scenarios' report (flood.go).
	Flood *floodStats `json:"flood,omitempty"`
	// Reach is the reach scenario's report (reach.go).
	Reach *reachStats `json:"reach,omitempty"`
	// Auth is the par and token scenarios' client authentication; Token
	// the token scenario's report (token.go); Peers the same load against
	// other servers (-peer, peer.go).
	Auth  string       `json:"client_auth,omitempty"`
	Token *tokenStats  `json:"token,omitempty"`
	Peers []peerResult `json:"peers,omitempty"`

	// Tree is the source the binary was built from; Machine where it ran.
	Tree    string  `json:"tree"`
	Machine machine `json:"machine"`
}

type redisStats struct {
	RoundTrips        int64   `json:"round_trips"`
	RoundTripsPerFlow float64 `json:"round_trips_per_flow"`
	CPUS              float64 `json:"cpu_s"`
	CPUPerFlowUS      float64 `json:"cpu_per_flow_us"`
	Commands          int64   `json:"commands"`
	CommandsPerFlow   float64 `json:"commands_per_flow"`
	// CommandMix is INFO commandstats' calls per flow by command (the
	// whole server, our INFO excluded).
	CommandMix map[string]float64 `json:"commands_per_flow_by_name,omitempty"`
	// NetIn and NetOut are the redis-server's network bytes read and
	// written (INFO total_net_input_bytes, total_net_output_bytes; pub/sub
	// deliveries included) per flow.
	NetInPerFlow  float64 `json:"net_in_bytes_per_flow"`
	NetOutPerFlow float64 `json:"net_out_bytes_per_flow"`

	// After the window (measure.go sessionMemory): the Redis memory a
	// live auth session holds, from MEMORY USAGE of the keys the
	// sessions added (the session and any side key) and from used_memory.
	AuthSessions                  int                `json:"auth_sessions_measured,omitempty"`
	BytesPerAuthSession           float64            `json:"bytes_per_auth_session"`
	KeysPerAuthSession            float64            `json:"keys_per_auth_session"`
	BytesPerAuthSessionByKind     map[string]float64 `json:"bytes_per_auth_session_by_kind,omitempty"`
	UsedMemoryDeltaPerAuthSession float64            `json:"used_memory_delta_per_auth_session"`
	SessionMemoryError            string             `json:"session_memory_error,omitempty"`
	// RoundTripsPerStep is measured over sequential flows after the
	// window (measure.go tapRoundTrips).
	RoundTripsPerStep     map[string]float64 `json:"round_trips_per_step,omitempty"`
	RoundTripsPerStepNote string             `json:"round_trips_per_step_note,omitempty"`
}

type latency struct {
	P50  float64 `json:"p50"`
	P90  float64 `json:"p90"`
	P95  float64 `json:"p95"`
	P99  float64 `json:"p99"`
	Max  float64 `json:"max"`
	Mean float64 `json:"mean"`
}

type reuse struct {
	Requests       int64   `json:"requests"`
	PerFlow        float64 `json:"per_flow"`
	NewConnections int64   `json:"new_connections"`
	ReusedPct      float64 `json:"reused_pct"`
}

func newReuse(reqs, reused int64, flows int) reuse {
	r := reuse{Requests: reqs, NewConnections: reqs - reused}
	if reqs > 0 {
		r.ReusedPct = 100 * float64(reused) / float64(reqs)
	}
	if flows > 0 {
		r.PerFlow = float64(reqs) / float64(flows)
	}
	return r
}

func (r *result) writeText(w io.Writer) {
	fmt.Fprintf(w, "fedasbench  scenario=%s store=%s c=%d n=%d d=%s  (%s, %d CPUs, GOMAXPROCS %d; setup %.0f ms incl. %d uncounted warm-up flows)\n",
		r.Scenario, r.Store, r.Concurrency, r.MaxFlows, r.MaxDuration, r.GoVersion, r.NumCPU, r.GOMAXPROCS, r.SetupMS, r.WarmupFlows)
	fmt.Fprintf(w, "users       %s\n", r.UsersNote)
	r.writeMachine(w)
	if r.Flood != nil {
		r.Flood.writeText(w)
		fmt.Fprintf(w, "cpu         %.2f s process CPU over the whole run (servers + driver)\n", r.CPUS)
		return
	}
	fmt.Fprintf(w, "flows       %d completed, %d failed in %.2f s → %.1f flows/s\n", r.Flows, r.Failures, r.ElapsedS, r.FlowsPerS)
	l := r.LatencyMS
	fmt.Fprintf(w, "latency     per flow: p50 %s  p90 %s  p95 %s  p99 %s  max %s  (mean %s)\n", ms(l.P50), ms(l.P90), ms(l.P95), ms(l.P99), ms(l.Max), ms(l.Mean))
	r.writeSteps(w)
	fmt.Fprintf(w, "device      %d requests (%.1f/flow), %.2f %% on reused connections (%d new)\n",
		r.Device.Requests, r.Device.PerFlow, r.Device.ReusedPct, r.Device.NewConnections)
	if d := r.Downstream; d != nil {
		fmt.Fprintf(w, "downstream  AS1→AS2 %d requests (%.1f/flow), %.2f %% on reused connections (%d new)\n",
			d.Requests, d.PerFlow, d.ReusedPct, d.NewConnections)
	}
	fmt.Fprintf(w, "cpu         %.2f s process CPU → %.0f µs/flow (servers + driver in one process; %.2f cores busy); %d GC cycles, heap in use %.0f MB at end\n",
		r.CPUS, r.CPUPerFlowUS, r.CPUCores, r.GCCycles, r.HeapInuseMB)
	r.writeMeasures(w)
	if rs := r.Redis; rs != nil {
		fmt.Fprintf(w, "redis       %d round trips (%.1f/flow); redis-server %.2f s CPU → %.0f µs/flow (not in the process CPU above), %d commands incl. those inside scripts (%.1f/flow)\n",
			rs.RoundTrips, rs.RoundTripsPerFlow, rs.CPUS, rs.CPUPerFlowUS, rs.Commands, rs.CommandsPerFlow)
		fmt.Fprintf(w, "            network %.0f B in, %.0f B out per flow; per flow by command: %s\n", rs.NetInPerFlow, rs.NetOutPerFlow, mixText(rs.CommandMix))
		rs.writeMeasures(w)
	}
	if r.Reach != nil {
		r.Reach.writeText(w)
	}
	r.writePeerText(w)
	if r.Failures == 0 {
		fmt.Fprintln(w, "failures    none")
		return
	}
	keys := make([]string, 0, len(r.FailuresByCode))
	for k := range r.FailuresByCode {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return r.FailuresByCode[keys[i]] > r.FailuresByCode[keys[j]] })
	fmt.Fprintln(w, "failures    by code:")
	for _, k := range keys {
		fmt.Fprintf(w, "  %6d  %s\n", r.FailuresByCode[k], k)
	}
	for _, s := range r.ErrorSamples {
		fmt.Fprintf(w, "  e.g. %s\n", s)
	}
}

func ms(v float64) string {
	if v < 1 {
		return fmt.Sprintf("%.0f µs", v*1000)
	}
	return fmt.Sprintf("%.2f ms", v)
}

// ---------------------------------------------------------------------
// The environment: fedas instances on loopback.

type instance struct {
	url   string
	srv   *server.Server
	store storage.Store
	purge func() // deletes this instance's Redis keys
	done  chan struct{}
	// shared: the store is another instance's, which closes it.
	shared bool
}

func (in *instance) stop() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_ = in.srv.Shutdown(ctx)
	select {
	case <-in.done:
	case <-ctx.Done():
	}
	if in.shared {
		return
	}
	in.purge()
	_ = in.store.Close()
}

// env is one benchmark run's servers, device HTTP client and counters.
type env struct {
	o        options
	runID    string
	hc       *http.Client
	tr       *http.Transport
	trace    *tracingRT
	as1, as2 *instance
	meta     sdk.Metadata
	down     *downstreamCounter // AS2's listener (federated)
	rt       rtCounter          // Redis round trips of every store
	users    []string           // one per worker
	reach    *reachEnv          // the reach scenario (reach.go)
	creds    *clientCreds       // the par and token scenarios' client (auth.go)
	tok      *tokenEnv          // the token scenario (token.go)
	steps    *stepSet           // per-step latency (measure.go)
	cleanups []func()
}

func (e *env) close() {
	for i := len(e.cleanups) - 1; i >= 0; i-- {
		e.cleanups[i]()
	}
}

// openStore opens the memory backend or, with -redis, a Redis store under
// a prefix of this run; purge deletes its keys.
func (e *env) openStore(ctx context.Context, name string) (st storage.Store, purge func(), err error) {
	if e.o.redisURL == "" {
		return memory.New(), func() {}, nil
	}
	prefix := "fedasbench:" + e.runID + ":" + name + ":"
	rs, err := redisstore.New(ctx, redisstore.Options{URL: e.o.redisURL, Prefix: prefix}, zap.NewNop())
	if err != nil {
		return nil, nil, fmt.Errorf("redis %s: %w", redactURL(e.o.redisURL), err)
	}
	rs.Client().AddHook(&e.rt)
	return rs, func() { deletePrefix(rs, prefix) }, nil
}

// deletePrefix removes this run's keys (bounded in iterations and time).
func deletePrefix(st *redisstore.Store, prefix string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c := st.Client()
	var cursor uint64
	for range 100_000 {
		keys, next, err := c.Scan(ctx, cursor, prefix+"*", 1000).Result()
		if err != nil {
			return
		}
		if len(keys) > 0 {
			_ = c.Unlink(ctx, keys...).Err()
		}
		if cursor = next; cursor == 0 {
			return
		}
	}
}

// start starts one fedas instance on a loopback port, on a store of its
// own.
func (e *env) start(ctx context.Context, name string, edit func(*config.Config), wrap func(net.Listener) net.Listener) (*instance, error) {
	return e.startWith(ctx, name, edit, wrap, nil, nil, nil)
}

// startOn starts one fedas instance on st (purge deletes its keys), with
// more server options (the reach scenario's shared store and hubs).
func (e *env) startOn(ctx context.Context, name string, edit func(*config.Config), st storage.Store, purge func(), more func(*server.Options)) (*instance, error) {
	return e.startWith(ctx, name, edit, nil, st, purge, more)
}

func (e *env) startWith(ctx context.Context, name string, edit func(*config.Config), wrap func(net.Listener) net.Listener,
	st storage.Store, purge func(), more func(*server.Options)) (*instance, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	cfg := config.Default()
	cfg.Issuer, cfg.Listen = "http://"+ln.Addr().String(), ln.Addr().String()
	cfg.Users = nil
	if !e.o.rateLimits && !isFlood(e.o.scenario) {
		// Every flow comes from 127.0.0.1: one address's rate limits and
		// live-session cap would measure themselves.
		off := false
		cfg.Limits.Rate.Enabled = &off
		cfg.Limits.MaxLiveSessionsPerIP = -1
	}
	if edit != nil {
		edit(cfg)
	}
	if err := cfg.Validate(); err != nil {
		ln.Close()
		return nil, fmt.Errorf("%s config: %w", name, err)
	}
	if st == nil {
		if st, purge, err = e.openStore(ctx, name); err != nil {
			ln.Close()
			return nil, err
		}
	}
	so := server.Options{Config: cfg, Store: st, Logger: zap.NewNop()}
	if more != nil {
		more(&so)
	}
	srv, err := server.New(so)
	if err != nil {
		ln.Close()
		_ = st.Close()
		return nil, err
	}
	if wrap != nil {
		ln = wrap(ln)
	}
	in := &instance{url: cfg.Issuer, srv: srv, store: st, purge: purge, done: make(chan struct{})}
	go func() {
		defer close(in.done)
		_ = srv.Serve(ln)
	}()
	e.cleanups = append(e.cleanups, in.stop)
	return in, nil
}

// usersConfig returns one user per worker, all with the same password
// hashed once at the chosen cost.
func usersConfig(names []string, hash string) []config.User {
	us := make([]config.User, len(names))
	for i, n := range names {
		us[i] = config.User{Username: n, Subject: n, PasswordHash: hash,
			Claims: map[string]string{"email": n + "@" + benchDomain, "name": n}}
	}
	return us
}

func setup(ctx context.Context, o options) (*env, error) {
	e := &env{o: o, runID: randHex(6)}
	ok := false
	defer func() {
		if !ok {
			e.close()
		}
	}()
	e.tr = newTransport(o.concurrency)
	e.trace = &tracingRT{base: e.tr}
	e.hc = &http.Client{Transport: e.trace, Timeout: flowTimeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	e.cleanups = append(e.cleanups, e.tr.CloseIdleConnections)

	e.users = make([]string, o.concurrency)
	for i := range e.users {
		e.users[i] = fmt.Sprintf("bench-%d", i)
	}
	needUsers := o.scenario == "local" || o.scenario == "token" || o.scenario == "federated" || o.scenario == "reach" || isFlood(o.scenario)
	var users []config.User
	if needUsers {
		h, err := bcrypt.GenerateFromPassword([]byte(benchPassword), o.bcryptCost)
		if err != nil {
			return nil, err
		}
		names := e.users
		if o.scenario == "reach" {
			names = reachUsers(o)
		}
		users = usersConfig(names, string(h))
	}

	var err error
	switch o.scenario {
	case "initial":
		e.as1, err = e.start(ctx, "as1", func(c *config.Config) { c.Users = users }, nil)
	case "local", "local-password", "three-hop", "app2app", "refresh", "wallet":
		err = e.startScenario(ctx) // scenarios.go
	case "flood-sessions", "flood-passwords":
		e.as1, err = e.start(ctx, "as1", func(c *config.Config) { c.Users = users; floodConfig(o)(c) }, nil)
	case "par":
		if e.creds, err = newClientCreds(o.auth, parClientID); err != nil {
			return nil, err
		}
		e.as1, err = e.start(ctx, "as1", func(c *config.Config) {
			c.Clients = append(c.Clients, e.creds.fedasClient(config.Client{Name: "fedasbench PAR client",
				Scopes: []string{"openid", "profile", "email"}, GrantTypes: []string{"authorization_code"},
				RedirectURIs: []string{parRedirect}}))
		}, nil)
	case "token":
		err = e.startToken(ctx, users)
	case "federated":
		err = e.startFederation(ctx, users)
	case "reach":
		err = e.startReach(ctx, users)
	}
	if err != nil {
		return nil, err
	}
	if e.meta, err = sdk.Discover(ctx, e.hc, e.as1.url); err != nil {
		return nil, err
	}
	ok = true
	return e, nil
}

// startFederation starts AS2 (holds the users; AS1 is its federating
// client with allow_credential_challenges) and AS1 (routes @bank.example
// to AS2), as `fedas demo` does.
func (e *env) startFederation(ctx context.Context, users []config.User) error {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	priv := jose.JSONWebKey{Key: k, KeyID: "as1-at-as2", Algorithm: string(jose.ES256), Use: "sig"}
	privJSON, err := json.Marshal(priv)
	if err != nil {
		return err
	}
	pubJSON, err := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{priv.Public()}})
	if err != nil {
		return err
	}
	e.down = &downstreamCounter{}
	e.as2, err = e.start(ctx, "as2", func(c *config.Config) {
		c.Users = users
		c.Clients = append(c.Clients, config.Client{
			ID: "as1", Name: "AS1 (federating)", Federating: true, AllowCredentialChallenges: true,
			TokenEndpointAuthMethod: "private_key_jwt", JWKS: string(pubJSON), SigningAlg: "ES256",
			Scopes: []string{"openid", "profile", "email"}, GrantTypes: []string{"authorization_code"},
			RedirectURIs:       []string{"https://as1.example/web-callback"},
			NativeCallbackURIs: []string{nativeCB},
		})
	}, e.down.wrap)
	if err != nil {
		return err
	}
	e.as1, err = e.start(ctx, "as1", func(c *config.Config) {
		c.Downstreams = []config.Downstream{{
			ID: "bank", Issuer: e.as2.url, Name: "Bank", ClientID: "as1",
			Auth:   config.DownstreamAuth{Method: "private_key_jwt", Key: string(privJSON)},
			Scopes: map[string]string{"openid": "openid", "email": "email"},
		}}
		c.Prompt = &config.Prompt{Inputs: []config.PromptInput{{Key: "email", Title: "Email", Hint: "you@example.com"}}}
		c.Routes = []config.Route{{Downstream: "bank", EmailDomains: []string{benchDomain}}}
	}, nil)
	return err
}

// newTransport is the one tuned transport all workers share: enough idle
// connections per host for every worker (docs/performance.md trap 3), loopback
// dial and header timeouts, no proxy, no compression.
func newTransport(concurrency int) *http.Transport {
	return &http.Transport{
		Proxy:                  nil,
		DialContext:            (&net.Dialer{Timeout: 3 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:           4*concurrency + 16,
		MaxIdleConnsPerHost:    concurrency + 8,
		IdleConnTimeout:        90 * time.Second,
		ResponseHeaderTimeout:  flowTimeout,
		ExpectContinueTimeout:  time.Second,
		DisableCompression:     true,
		MaxResponseHeaderBytes: 64 << 10,
	}
}

// tracingRT counts the device's requests and those sent on a reused
// connection (httptrace GotConn), and times each by step (measure.go).
type tracingRT struct {
	base         http.RoundTripper
	reqs, reused atomic.Int64
	steps        atomic.Pointer[stepSet]
}

func (t *tracingRT) RoundTrip(r *http.Request) (*http.Response, error) {
	tr := &httptrace.ClientTrace{GotConn: func(i httptrace.GotConnInfo) {
		t.reqs.Add(1)
		if i.Reused {
			t.reused.Add(1)
		}
	}}
	ss := t.steps.Load()
	if ss == nil || (!ss.on.Load() && !ss.tap.Load()) {
		return t.base.RoundTrip(r.WithContext(httptrace.WithClientTrace(r.Context(), tr)))
	}
	st := ss.device(r)
	if ss.tap.Load() {
		defer ss.enter(st, true)()
	}
	t0 := time.Now()
	resp, err := t.base.RoundTrip(r.WithContext(httptrace.WithClientTrace(r.Context(), tr)))
	if err == nil && ss.on.Load() {
		st.h.record(time.Since(t0))
	}
	return resp, err
}

// downstreamCounter counts, on AS2's listener, the requests that did not
// come from the device (anything but POST /native/…: AS1's PAR, token,
// metadata and JWKS requests) and how many of them opened their
// connection. HTTP/1.1 without pipelining: the first bytes read after a
// response was written start the next request.
type downstreamCounter struct {
	reqs, newConns atomic.Int64
	steps          atomic.Pointer[stepSet] // per-step latency (measure.go)
}

func (d *downstreamCounter) wrap(ln net.Listener) net.Listener {
	return &countingListener{Listener: ln, d: d}
}

type countingListener struct {
	net.Listener
	d *downstreamCounter
}

func (l *countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	cc := &countingConn{Conn: c, d: l.d, first: true, collecting: true}
	return cc, nil
}

var deviceRequest = []byte("POST /native/")

type countingConn struct {
	net.Conn
	d       *downstreamCounter
	written atomic.Bool // a response was written since the last request began
	// Read-side state: net/http never reads a connection from two
	// goroutines at once.
	first      bool
	collecting bool
	decided    bool // device request or not
	downstream bool
	head       [64]byte // the request line, as far as it fits
	n          int
	t0         time.Time // the request's first byte

	// A downstream request being timed (measure.go serverStep): set
	// when its request line is read, ended by the response's first write.
	mu      sync.Mutex
	pending *stepStat
	began   time.Time
	leave   func()
}

func (c *countingConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 {
		if c.written.Swap(false) {
			c.collecting, c.decided, c.n = true, false, 0
		}
		if c.collecting {
			if c.n == 0 {
				c.t0 = time.Now()
			}
			c.n += copy(c.head[c.n:], p[:n])
			if !c.decided && c.n >= len(deviceRequest) {
				c.decided = true
				c.downstream = !bytes.HasPrefix(c.head[:c.n], deviceRequest)
				if c.downstream {
					c.d.reqs.Add(1)
					if c.first {
						c.d.newConns.Add(1)
					}
				}
				c.first = false
			}
			if c.decided {
				line, _, eol := bytes.Cut(c.head[:c.n], []byte("\r\n"))
				if !c.downstream || eol || c.n == len(c.head) {
					c.collecting = false
				}
				if c.downstream && !c.collecting {
					if st, leave := c.d.serverStep(line); st != nil || leave != nil {
						c.mu.Lock()
						c.pending, c.began, c.leave = st, c.t0, leave
						c.mu.Unlock()
					}
				}
			}
		}
	}
	return n, err
}

func (c *countingConn) Write(p []byte) (int, error) {
	c.written.Store(true)
	c.mu.Lock()
	st, began, leave := c.pending, c.began, c.leave
	c.pending, c.leave = nil, nil
	c.mu.Unlock()
	if st != nil {
		st.h.record(time.Since(began))
	}
	if leave != nil {
		leave()
	}
	return c.Conn.Write(p)
}

// ---------------------------------------------------------------------
// Flows.

// worker is one simulated device at a time: its user and SDK client.
type worker struct {
	e      *env
	client *sdk.Client
	user   string
	reach  *reachWorker // the reach scenario (reach.go)
}

// flowError is a failed flow, keyed by where and with which error code.
type flowError struct {
	key string
	err error
}

func (f *flowError) Error() string { return f.key + ": " + f.err.Error() }
func (f *flowError) Unwrap() error { return f.err }

func (w *worker) fail(step string, err error) error {
	var se *sdk.Err
	code := ""
	switch {
	case errors.As(err, &se):
		if se.From != "" {
			step = w.e.where(se.From)
		}
		code = se.Response.Error
		if code == "" {
			code = fmt.Sprintf("HTTP %d", se.Status)
		}
	case errors.Is(err, context.DeadlineExceeded) || isTimeout(err):
		code = "timeout"
	case errors.Is(err, context.Canceled):
		code = "canceled"
	default:
		var ue *url.Error
		if errors.As(err, &ue) {
			code = "transport"
		} else {
			code = "unexpected"
		}
	}
	return &flowError{key: step + ": " + code, err: err}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// where names an endpoint URL as "as1 native", "as2 native", "as1 response_uri", …
func (e *env) where(u string) string {
	who := "?"
	switch {
	case e.as1 != nil && strings.HasPrefix(u, e.as1.url+"/"):
		who, u = "as1", strings.TrimPrefix(u, e.as1.url)
	case e.as2 != nil && strings.HasPrefix(u, e.as2.url+"/"):
		who, u = "as2", strings.TrimPrefix(u, e.as2.url)
	}
	switch {
	case u == server.PathNative:
		return who + " native"
	case strings.HasPrefix(u, server.PathResponse):
		return who + " response_uri"
	}
	return who + " " + u
}

// ui answers as the user would: the email prompt and the password challenge.
func (w *worker) ui(_ context.Context, r sdk.Response) (url.Values, error) {
	switch {
	case r.Error == "insufficient_information":
		return url.Values{"email": {w.user + "@" + benchDomain}}, nil
	case r.Error == "insufficient_authorization" && r.Challenge != nil && r.Challenge.Type == "password":
		v := url.Values{"password": {benchPassword}}
		if _, ok := r.Challenge.Inputs["username"]; ok {
			v.Set("username", w.user)
		}
		return v, nil
	}
	if r.Challenge != nil {
		r.Error += " (" + r.Challenge.Type + " challenge)"
	}
	return nil, &sdk.Err{Response: r}
}

func (w *worker) flow(ctx context.Context) error {
	switch w.e.o.scenario {
	case "initial":
		return w.initial(ctx)
	case "par":
		return w.par(ctx)
	case "reach":
		return w.reachFlow(ctx)
	case "local":
		return w.localTOTP(ctx)
	case "three-hop":
		return w.threeHop(ctx)
	case "app2app":
		return w.app2app(ctx)
	case "refresh":
		return w.refreshFlow(ctx)
	case "wallet":
		return w.walletFlow(ctx)
	case "token":
		return w.token(ctx)
	}
	return w.signIn(ctx) // federated, local-password
}

func (w *worker) initial(ctx context.Context) error {
	pk := sdk.NewPKCE()
	r, err := w.client.Post(ctx, w.e.meta.NativeEndpoint(), url.Values{"client_id": {"demo-app"}, "response_type": {"code"},
		"scope": {benchScope}, "code_challenge": {pk.Challenge}, "code_challenge_method": {"S256"}})
	if err != nil {
		return w.fail("as1 native", err)
	}
	if r.Error != "insufficient_authorization" || r.AuthSession == "" {
		return w.fail("as1 native", &sdk.Err{Response: r})
	}
	return nil
}

// signIn is the local or the federated sign-in and the token exchange.
func (w *worker) signIn(ctx context.Context) error {
	code, pk, err := w.client.Authorize(ctx, url.Values{"scope": {benchScope}, "native_callback_uri": {nativeCB}}, w.ui)
	if err != nil {
		return w.fail("authorize", err)
	}
	tok, err := w.client.Exchange(ctx, code, pk)
	if err != nil {
		return w.fail("as1 token", err)
	}
	if tok.AccessToken == "" || tok.IDToken == "" {
		return w.fail("as1 token", errors.New("token response without access_token or id_token"))
	}
	return nil
}

func (w *worker) par(ctx context.Context) error {
	status, body, err := w.e.creds.postForm(ctx, w.e.hc, w.e.meta.PAREndpoint, w.e.meta.Issuer, parForm(parClientID))
	if err != nil {
		return w.fail("as1 par", err)
	}
	var r sdk.Response
	_ = json.Unmarshal(body, &r)
	r.Status, r.From = status, w.e.meta.PAREndpoint
	if status != http.StatusCreated || !strings.HasPrefix(r.RequestURI, "urn:ietf:params:oauth:request_uri:") {
		return w.fail("as1 par", &sdk.Err{Response: r})
	}
	return nil
}

// ---------------------------------------------------------------------
// The run.

// collector gathers the outcome of every flow.
type collector struct {
	mu       sync.Mutex
	lat      []time.Duration
	failures map[string]int
	samples  []string
	// For the progress line (measure.go monitor).
	done, failed atomic.Int64
	hist         hist
}

func (c *collector) add(d time.Duration, err error) {
	if err == nil {
		c.done.Add(1)
		c.hist.record(d)
	} else {
		c.failed.Add(1)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if err == nil {
		c.lat = append(c.lat, d)
		return
	}
	key := "unexpected"
	var fe *flowError
	if errors.As(err, &fe) {
		key = fe.key
	}
	c.failures[key]++
	if len(c.samples) < maxSamples {
		msg := err.Error()
		if len(msg) > 300 {
			msg = msg[:300] + "…"
		}
		if !slices.Contains(c.samples, msg) {
			c.samples = append(c.samples, msg)
		}
	}
}

func bench(ctx context.Context, o options) (*result, error) {
	if isFlood(o.scenario) {
		return benchFlood(ctx, o)
	}
	t0 := time.Now()
	e, err := setup(ctx, o)
	if err != nil {
		return nil, fmt.Errorf("setup: %w", err)
	}
	defer e.close()
	// From here on this goroutine, and every one it starts (workers, the
	// device transport's connection goroutines), is the driver in CPU
	// profiles; the device connections set-up opened, unlabelled, go.
	pprof.SetGoroutineLabels(pprof.WithLabels(ctx, driverLabels))
	defer pprof.SetGoroutineLabels(ctx)
	e.tr.CloseIdleConnections()
	e.steps = newStepSet(e)
	e.trace.steps.Store(e.steps)
	if e.down != nil {
		e.down.steps.Store(e.steps)
	}
	e.rt.tap.Store(e.steps)
	workers := make([]*worker, o.concurrency)
	for i := range workers {
		workers[i] = &worker{e: e, user: e.users[i], client: &sdk.Client{HTTP: e.hc, ClientID: "demo-app", Meta: e.meta}}
	}
	if o.scenario == "reach" {
		if err := setUpReachWorkers(ctx, o, workers); err != nil {
			return nil, err
		}
	}
	if o.scenario == "token" {
		if err := e.mintFedasCodes(ctx); err != nil {
			return nil, err
		}
	}
	if err := warmUp(ctx, workers); err != nil {
		return nil, err
	}
	if e.reach != nil {
		e.resetReach()
	}
	setupDur := time.Since(t0)

	// Flows in flight when -d passes (or at an interrupt) finish; hard
	// bounds them all.
	hard, cancelHard := context.WithTimeout(context.WithoutCancel(ctx), o.duration+drainGrace)
	defer cancelHard()
	col := &collector{failures: map[string]int{}, lat: make([]time.Duration, 0, min(o.maxFlows, 1<<20))}
	var next atomic.Int64
	var wg sync.WaitGroup

	devReqs0, devReused0 := e.trace.reqs.Load(), e.trace.reused.Load()
	var downReqs0, downNew0 int64
	if e.down != nil {
		downReqs0, downNew0 = e.down.reqs.Load(), e.down.newConns.Load()
	}
	prof, err := startCPUProfile(o)
	if err != nil {
		return nil, err
	}
	defer prof.stop(o) // a no-op once stopped
	redis0, redisOK := e.redisInfo(ctx)
	rt0 := e.rt.n.Load()
	var ms0 runtime.MemStats
	runtime.ReadMemStats(&ms0)
	rss0, _ := procStatus()
	cpu0 := cpuTime()
	start := time.Now()
	deadline := start.Add(o.duration)
	mon := startMonitor(o, col, start, nil)
	e.steps.on.Store(true)
	for _, w := range workers {
		wg.Add(1)
		go pprof.Do(hard, driverLabels, func(context.Context) {
			defer wg.Done()
			pacer := time.NewTimer(time.Hour)
			defer pacer.Stop()
			for range o.maxFlows { // never more than -n iterations per worker
				if ctx.Err() != nil || time.Now().After(deadline) {
					return
				}
				i := next.Add(1)
				if i > int64(o.maxFlows) || !paceFlow(ctx, o, i, start, deadline, pacer) {
					return
				}
				fctx, cancel := context.WithTimeout(hard, flowTimeout)
				t := time.Now()
				err := w.flow(fctx)
				d := time.Since(t)
				if w.reach != nil {
					// The reach scenario's latency is the answer's way to
					// the waiting poll (reach.go), not the whole flow.
					d = w.reach.last
				}
				cancel()
				col.add(d, err)
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	e.steps.on.Store(false)
	cpu := cpuTime() - cpu0
	var split *cpuSplit
	if prof.running && !o.noCPUSplit {
		split = &cpuSplit{}
		countPersistConns(split)
	}
	cs, err := prof.stop(o)
	if err != nil {
		return nil, err
	}
	if err := writeHeapProfile(o.memProfile); err != nil {
		return nil, err
	}
	if cs != nil && split != nil {
		cs.PersistConnsDriver, cs.PersistConnsServer = split.PersistConnsDriver, split.PersistConnsServer
	}
	rt := e.rt.n.Load() - rt0
	redis1, redis1OK := e.redisInfo(ctx)
	var ms1 runtime.MemStats
	runtime.ReadMemStats(&ms1)

	res := &result{
		Scenario: o.scenario, Store: "memory", Concurrency: o.concurrency, MaxFlows: o.maxFlows,
		MaxDuration: o.duration.String(), BcryptCost: o.bcryptCost,
		GoVersion: runtime.Version(), NumCPU: runtime.NumCPU(), GOMAXPROCS: runtime.GOMAXPROCS(0),
		SetupMS: float64(setupDur.Microseconds()) / 1000, WarmupFlows: 1 + o.concurrency,
		Flows: len(col.lat), FailuresByCode: col.failures, ErrorSamples: col.samples,
		ElapsedS: elapsed.Seconds(),
		CPUS:     cpu.Seconds(), CPUCores: cpu.Seconds() / elapsed.Seconds(),
		GCCycles: ms1.NumGC - ms0.NumGC, HeapInuseMB: float64(ms1.HeapInuse) / (1 << 20),
	}
	if o.redisURL != "" {
		res.Store = "redis " + redactURL(o.redisURL)
	}
	for _, n := range col.failures {
		res.Failures += n
	}
	switch o.scenario {
	case "reach":
		per, _ := reachSizes(o)
		res.Users = per * o.concurrency
		res.UsersNote = fmt.Sprintf("%d generated users (%d per worker, each with its app's device on A) with bcrypt cost %d (checked at set-up only)", res.Users, per, o.bcryptCost)
		e.reachReport(res, res.Users)
	case "local", "local-password", "three-hop", "app2app", "refresh", "wallet":
		res.Users, res.UsersNote = e.scenarioUsers() // scenarios.go
	case "federated":
		res.Users = len(e.users)
		res.UsersNote = fmt.Sprintf("%d generated users with bcrypt cost %d", res.Users, o.bcryptCost)
		if o.bcryptCost == bcrypt.MinCost {
			res.UsersNote += " (bcrypt.MinCost, a fast hash so that bcrypt does not dominate; -bcrypt-cost 10 for a real cost)"
		}
	case "par", "token":
		e.authReport(res)
	default:
		res.UsersNote = "none: this scenario checks no password"
	}
	res.FlowsPerS = float64(res.Flows) / elapsed.Seconds()
	if total := res.Flows + res.Failures; total > 0 {
		res.CPUPerFlowUS = float64(cpu.Microseconds()) / float64(total)
	}
	res.LatencyMS = percentiles(col.lat)
	if total := res.Flows + res.Failures; redisOK && redis1OK && total > 0 {
		cpu := redis1.cpu - redis0.cpu
		cmds := redis1.commands - redis0.commands - 1 // our own INFO
		res.Redis = &redisStats{RoundTrips: rt, RoundTripsPerFlow: float64(rt) / float64(total),
			CPUS: cpu, CPUPerFlowUS: cpu * 1e6 / float64(total),
			Commands: cmds, CommandsPerFlow: float64(cmds) / float64(total),
			NetInPerFlow:  float64(redis1.netIn-redis0.netIn) / float64(total),
			NetOutPerFlow: float64(redis1.netOut-redis0.netOut) / float64(total),
			CommandMix:    map[string]float64{}}
		for name, n := range redis1.mix {
			if d := n - redis0.mix[name]; d > 0 && name != "info" {
				res.Redis.CommandMix[name] = float64(d) / float64(total)
			}
		}
	}
	res.Device = newReuse(e.trace.reqs.Load()-devReqs0, e.trace.reused.Load()-devReused0, res.Flows+res.Failures)
	if e.down != nil {
		reqs := e.down.reqs.Load() - downReqs0
		d := newReuse(reqs, reqs-(e.down.newConns.Load()-downNew0), res.Flows+res.Failures)
		res.Downstream = &d
	}
	mon.stop(res, rss0)
	res.Rate = o.rate
	res.Steps = e.steps.report()
	if total := res.Flows + res.Failures; total > 0 {
		res.AllocsPerFlow = float64(ms1.Mallocs-ms0.Mallocs) / float64(total)
		res.AllocBytesPerFlow = float64(ms1.TotalAlloc-ms0.TotalAlloc) / float64(total)
		cs.finish(res, total)
	}
	// After the window, on Redis: round trips per step, then the memory
	// of live auth sessions (both leave keys that the purge removes).
	if res.Redis != nil {
		res.Redis.RoundTripsPerStep, res.Redis.RoundTripsPerStepNote = e.tapRoundTrips(hard, workers[0])
		if err := e.sessionMemory(hard, workers[0], res.Redis); err != nil {
			res.Redis.SessionMemoryError = err.Error()
		}
	}
	if len(o.peers) > 0 {
		if res.Peers, err = runPeers(ctx, e, res); err != nil {
			return nil, err
		}
	}
	return res, nil
}

// warmUp runs flows that are not counted: one alone, which proves the
// setup (a misconfiguration fails here, not 2000 times), loads the Redis
// scripts and fills AS1's cache of AS2's metadata and JWKS; then one per
// worker at once, which opens the connections the measured window reuses.
func warmUp(ctx context.Context, workers []*worker) error {
	wctx, cancel := context.WithTimeout(ctx, flowTimeout)
	defer cancel()
	if err := workers[0].flow(wctx); err != nil {
		return fmt.Errorf("warm-up flow: %w", err)
	}
	errs := make([]error, len(workers))
	var wg sync.WaitGroup
	for i, w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = w.flow(wctx)
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("warm-up flows: %w", err)
	}
	return nil
}

func percentiles(lat []time.Duration) latency {
	if len(lat) == 0 {
		return latency{}
	}
	slices.Sort(lat)
	at := func(q float64) float64 {
		i := int(q*float64(len(lat))+0.5) - 1
		i = max(0, min(i, len(lat)-1))
		return float64(lat[i].Nanoseconds()) / 1e6
	}
	var sum time.Duration
	for _, d := range lat {
		sum += d
	}
	return latency{P50: at(0.50), P90: at(0.90), P95: at(0.95), P99: at(0.99), Max: at(1),
		Mean: float64(sum.Nanoseconds()) / float64(len(lat)) / 1e6}
}

// cpuTime is this process's user + system CPU time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// rtCounter is a go-redis hook counting round trips: one per command sent
// on its own, one per pipeline; with a tap, also per step (measure.go).
type rtCounter struct {
	n   atomic.Int64
	tap atomic.Pointer[stepSet]
}

func (c *rtCounter) count() {
	c.n.Add(1)
	if t := c.tap.Load(); t != nil {
		t.roundTrip()
	}
}

func (c *rtCounter) DialHook(next redis.DialHook) redis.DialHook { return next }

func (c *rtCounter) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		c.count()
		return next(ctx, cmd)
	}
}

func (c *rtCounter) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		c.count()
		return next(ctx, cmds)
	}
}

type redisSnapshot struct {
	cpu           float64 // used_cpu_sys + used_cpu_user, seconds
	commands      int64   // total_commands_processed
	netIn, netOut int64   // total_net_input_bytes, total_net_output_bytes
	// mix is INFO commandstats: calls by command.
	mix map[string]int64
}

// redisInfo reads the redis-server's CPU time and command count (one
// INFO round trip); ok is false without Redis or when INFO fails.
func (e *env) redisInfo(ctx context.Context) (redisSnapshot, bool) {
	st, ok := e.as1.store.(*redisstore.Store)
	if !ok {
		return redisSnapshot{}, false
	}
	ictx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	info, err := st.Client().Info(ictx, "cpu", "stats", "commandstats").Result()
	if err != nil {
		return redisSnapshot{}, false
	}
	snap := redisSnapshot{mix: map[string]int64{}}
	found := 0
	for _, line := range strings.Split(info, "\n") {
		k, v, ok := strings.Cut(strings.TrimSpace(line), ":")
		if !ok {
			continue
		}
		if name, ok := strings.CutPrefix(k, "cmdstat_"); ok {
			calls, _, _ := strings.Cut(strings.TrimPrefix(v, "calls="), ",")
			if n, err := strconv.ParseInt(calls, 10, 64); err == nil {
				snap.mix[name] = n
			}
			continue
		}
		switch k {
		case "total_net_input_bytes", "total_net_output_bytes":
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				return redisSnapshot{}, false
			}
			if k == "total_net_input_bytes" {
				snap.netIn = n
			} else {
				snap.netOut = n
			}
			found++
		case "used_cpu_sys", "used_cpu_user":
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				return redisSnapshot{}, false
			}
			snap.cpu += f
			found++
		case "total_commands_processed":
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				return redisSnapshot{}, false
			}
			snap.commands = n
			found++
		}
	}
	return snap, found == 5
}

// mixText renders a command mix, most frequent first.
func mixText(m map[string]float64) string {
	names := make([]string, 0, len(m))
	for n, v := range m {
		if v >= 0.05 { // a connection's HELLO, say: not per flow
			names = append(names, n)
		}
	}
	sort.Slice(names, func(i, j int) bool {
		return m[names[i]] > m[names[j]] || m[names[i]] == m[names[j]] && names[i] < names[j]
	})
	parts := make([]string, 0, len(names))
	for _, n := range names {
		parts = append(parts, fmt.Sprintf("%s %.1f", n, m[n]))
	}
	return strings.Join(parts, ", ")
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// redactURL drops credentials from a Redis URL for the report.
func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "(unparsable URL)"
	}
	if u.User != nil {
		u.User = url.User("…")
	}
	return u.String()
}
