// Command fuzzci runs every Go fuzz target of the module for a bounded
// total time: the fuzzing step of CI (README "Run the whole test suite";
// CONTRIBUTING.md "Fuzzing").
//
//	go run ./internal/fuzzci [-budget 150s] [-run regexp] [-race=true] [-parallel n]
//
// It finds the packages whose test files declare func FuzzXxx(*testing.F),
// builds their test binaries in one go invocation, lists the targets of
// each binary (-test.list '^Fuzz'), and runs them -jobs at a time (one
// per CPU by default, each with its share of the fuzzing workers), so that
// one target's start-up and corpus replay overlap another's fuzzing
// (-test.fuzz '^FuzzXxx$' -test.fuzztime), sharing what is left of the
// budget after the build equally among the waves still to run. The
// budget includes the build.
//
// The binaries are built with -race, like the test step before it, and
// with coverage instrumentation (-d=libfuzzer, what go test -fuzz adds)
// for the module's own packages only: every dependency then comes from
// the build cache that `go test -race ./...` just filled, which is what
// makes a coverage-guided run of every target fit in CI (an instrumented
// build of the whole dependency tree costs minutes of CPU). Our parsers
// are what the coverage guides.
//
// A target that fails leaves its input in the package's testdata/fuzz
// (the path is printed): commit it, and it runs as a regression test with
// every `go test`. Any failure makes the command exit 1. Each target's
// corpus of interesting inputs accumulates in the build cache, as with
// go test -fuzz.
package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"time"
)

// pkg is one package with fuzz targets.
type pkg struct {
	importPath, dir, bin string
	targets              []string
}

// result is one target's run.
type result struct {
	pkg, target string
	fuzztime    time.Duration
	took        time.Duration
	execs       string
	failed      bool
	input       string // failing input, relative to the module root
}

var fuzzFunc = regexp.MustCompile(`(?m)^func (Fuzz\w+)\(\w+ \*testing\.F\)`)

func main() {
	budget := flag.Duration("budget", 150*time.Second, "total wall time, build included")
	run := flag.String("run", "", "run only targets matching this regexp")
	race := flag.Bool("race", true, "build with -race (shares the build cache of go test -race ./...)")
	parallel := flag.Int("parallel", runtime.GOMAXPROCS(0), "fuzzing workers per target")
	minPer := flag.Duration("min", time.Second, "least fuzzing time per target (the budget is shared first; a target gets at least this)")
	jobs := flag.Int("jobs", runtime.GOMAXPROCS(0), "targets fuzzed at once, each with parallel/jobs workers (at least 1): a target's start-up and corpus replay overlap another's fuzzing")
	flag.Parse()
	start := time.Now()
	deadline := start.Add(*budget)
	if err := fuzz(start, deadline, *run, *race, *parallel, *minPer, max(*jobs, 1)); err != nil {
		fmt.Fprintln(os.Stderr, "fuzzci:", err)
		os.Exit(1)
	}
}

func fuzz(start, deadline time.Time, run string, race bool, parallel int, minPer time.Duration, jobs int) error {
	var only *regexp.Regexp
	if run != "" {
		var err error
		if only, err = regexp.Compile(run); err != nil {
			return err
		}
	}
	module, err := output("go", "list", "-m")
	if err != nil {
		return err
	}
	root, err := output("go", "list", "-m", "-f", "{{.Dir}}")
	if err != nil {
		return err
	}
	cache, err := output("go", "env", "GOCACHE")
	if err != nil {
		return err
	}
	pkgs, err := findPackages()
	if err != nil {
		return err
	}
	if len(pkgs) == 0 {
		return errors.New("no fuzz targets found")
	}
	tmp, err := os.MkdirTemp("", "fuzzci")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)

	// One build for every package: shared dependencies compile once, in
	// parallel.
	args := []string{"test", "-c", "-o", tmp + string(filepath.Separator), "-gcflags=" + module + "/...=-d=libfuzzer"}
	if race {
		args = append(args, "-race")
	}
	for i := range pkgs {
		args = append(args, pkgs[i].importPath)
		pkgs[i].bin = filepath.Join(tmp, filepath.Base(pkgs[i].importPath)+".test")
	}
	cmd := exec.Command("go", args...)
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("build: %w", err)
	}
	built := time.Since(start)

	var total int
	for i := range pkgs {
		list, err := outputIn(pkgs[i].dir, pkgs[i].bin, "-test.run", "^$", "-test.list", "^Fuzz")
		if err != nil {
			return fmt.Errorf("%s: %w", pkgs[i].importPath, err)
		}
		for _, t := range strings.Fields(list) {
			if strings.HasPrefix(t, "Fuzz") && (only == nil || only.MatchString(t)) {
				pkgs[i].targets = append(pkgs[i].targets, t)
			}
		}
		total += len(pkgs[i].targets)
	}
	fmt.Printf("fuzzci: built %d packages in %s; %d targets, %s left of the budget\n",
		len(pkgs), built.Round(time.Second), total, time.Until(deadline).Round(time.Second))

	type work struct {
		p      pkg
		target string
	}
	var queue []work
	for _, p := range pkgs {
		for _, target := range p.targets {
			queue = append(queue, work{p, target})
		}
	}
	jobs = min(jobs, max(len(queue), 1))
	workers := max(parallel/jobs, 1)
	// Targets run jobs at a time: the share of each is what is left of the
	// budget over the waves still to run, less their start-up overhead.
	var (
		mu       sync.Mutex
		results  = make([]result, len(queue))
		next     int
		left     = total
		overhead = 2 * time.Second // start-up and the seed corpus, re-estimated as targets run
	)
	var wg sync.WaitGroup
	for range jobs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				mu.Lock()
				if next == len(queue) {
					mu.Unlock()
					return
				}
				i := next
				next++
				waves := time.Duration((left + jobs - 1) / jobs)
				per := (time.Until(deadline) - waves*overhead) / waves
				per = max(per.Truncate(time.Second), minPer)
				mu.Unlock()
				w := queue[i]
				r := runTarget(w.p, w.target, per, workers, filepath.Join(cache, "fuzz", w.p.importPath), root)
				mu.Lock()
				results[i] = r
				overhead = max(overhead, r.took-r.fuzztime)
				left--
				status := "ok"
				if r.failed {
					status = "FAIL"
				}
				fmt.Printf("fuzzci: %-4s %-26s %-34s fuzzed %-4s took %-5s %s\n", status, w.target, w.p.importPath,
					r.fuzztime, r.took.Round(time.Second), r.execs)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()

	failed := 0
	for _, r := range results {
		if r.failed {
			failed++
			if r.input != "" {
				fmt.Printf("fuzzci: %s found a failing input: %s\n", r.target, r.input)
				fmt.Printf("        reproduce: go test -run '%s/%s' ./%s\n", r.target, filepath.Base(r.input), relPkg(r.pkg, module))
			}
		}
	}
	fmt.Printf("fuzzci: %d targets, %d failed, %s in total (budget %s)\n", len(results), failed,
		time.Since(start).Round(time.Second), deadline.Sub(start))
	if failed > 0 {
		return fmt.Errorf("%d fuzz targets failed; commit each failing input with its fix (CONTRIBUTING.md \"Fuzzing\")", failed)
	}
	return nil
}

// runTarget fuzzes one target in its package directory, so that a failing
// input is written to the package's testdata/fuzz.
func runTarget(p pkg, target string, fuzztime time.Duration, parallel int, cacheDir, root string) result {
	r := result{pkg: p.importPath, target: target, fuzztime: fuzztime}
	// Minimizing a failing input may take at most 10 s; the process gets a
	// hard limit well past its fuzzing time.
	ctx, cancel := context.WithTimeout(context.Background(), fuzztime+60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, p.bin, "-test.run", "^$", "-test.fuzz", "^"+target+"$",
		"-test.fuzztime", fuzztime.String(), "-test.fuzzminimizetime", "10s",
		"-test.fuzzcachedir", cacheDir, "-test.parallel", fmt.Sprint(parallel),
		"-test.timeout", (fuzztime + 50*time.Second).String())
	cmd.Dir = p.dir
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	began := time.Now()
	err := cmd.Run()
	r.took = time.Since(began)
	failing := regexp.MustCompile(`Failing input written to (\S+)`)
	sc := bufio.NewScanner(bytes.NewReader(out.Bytes()))
	for sc.Scan() {
		line := sc.Text()
		if m := failing.FindStringSubmatch(line); m != nil {
			if rel, err := filepath.Rel(root, filepath.Join(p.dir, m[1])); err == nil {
				r.input = rel
			}
		}
		if i := strings.Index(line, "execs: "); i >= 0 {
			r.execs = strings.Fields(line[i:])[1] + " execs"
		}
	}
	if err != nil && r.input == "" && coordinatorRace(out.Bytes(), target) {
		// go.dev/issue/75804 (fixed in Go 1.27): when -fuzztime ends while
		// a starved worker is mid-call, the coordinator reports its own
		// deadline as a failure, with no input. Nothing was found; replay
		// the seed and testdata corpus to be sure.
		replay := exec.Command(p.bin, "-test.run", "^"+target+"$")
		replay.Dir = p.dir
		rout, rerr := replay.CombinedOutput()
		if rerr == nil {
			r.execs += " (coordinator deadline race, go.dev/issue/75804: ignored after a clean corpus replay)"
			return r
		}
		out.Write(rout)
	}
	if err != nil {
		r.failed = true
		outMu.Lock()
		os.Stdout.Write(out.Bytes())
		outMu.Unlock()
	}
	return r
}

// outMu keeps a failing target's output whole while others run.
var outMu sync.Mutex

// coordinatorRace reports whether a fuzz run's only failure is the
// coordinator's "context deadline exceeded" (go.dev/issue/75804).
func coordinatorRace(out []byte, target string) bool {
	re := regexp.MustCompile(`(?m)^--- FAIL: ` + regexp.QuoteMeta(target) + ` \([^)]*\)\n\s+context deadline exceeded\n`)
	return re.Match(out) && !bytes.Contains(out, []byte("panic:")) && bytes.Count(out, []byte("--- FAIL:")) == 1
}

// findPackages lists the module's packages whose test files declare fuzz
// targets.
func findPackages() ([]pkg, error) {
	list, err := output("go", "list", "-f", "{{.ImportPath}}\t{{.Dir}}\t{{join .TestGoFiles \" \"}} {{join .XTestGoFiles \" \"}}", "./...")
	if err != nil {
		return nil, err
	}
	var pkgs []pkg
	for _, line := range strings.Split(list, "\n") {
		f := strings.SplitN(line, "\t", 3)
		if len(f) != 3 {
			continue
		}
		for _, file := range strings.Fields(f[2]) {
			b, err := os.ReadFile(filepath.Join(f[1], file))
			if err != nil {
				return nil, err
			}
			if fuzzFunc.Match(b) {
				pkgs = append(pkgs, pkg{importPath: f[0], dir: f[1]})
				break
			}
		}
	}
	return pkgs, nil
}

func relPkg(importPath, module string) string {
	return strings.TrimPrefix(strings.TrimPrefix(importPath, module), "/")
}

func output(name string, args ...string) (string, error) { return outputIn("", name, args...) }

// outputIn runs a command in dir (a test binary in its package directory,
// where its tests find their files) and returns its trimmed stdout.
func outputIn(dir, name string, args ...string) (string, error) {
	var stderr bytes.Buffer
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("%s %s: %w\n%s", name, strings.Join(args, " "), err, stderr.String())
	}
	return strings.TrimSpace(string(out)), nil
}
