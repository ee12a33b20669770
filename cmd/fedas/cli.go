package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
)

// command is one subcommand of fedas. Every command parses its own flags
// with parseFlags, so that -h/--help prints its usage on stdout and exits
// 0, and a flag it does not know prints the usage on stderr and exits 2.
type command struct {
	// name is what follows fedas ("config check").
	name string
	// summary is its line in `fedas help`.
	summary string
	// run runs it with the arguments after its name.
	run func(args []string, s stdio) error
}

// stdio is a command's standard streams (tests pass buffers).
type stdio struct {
	in       io.Reader
	out, err io.Writer
}

// commands lists every subcommand in `fedas help` order.
func commands() []command {
	return []command{
		{"serve", "run the authorization server (the default command)", serveCmd},
		{"demo", "run two instances on loopback and a federated native sign-in, printed step by step (wallet: sign-ins and a payment with a digital credential; reach: the user's other device)", demoCmd},
		{"config check", "check a config file: every problem at once, with its place", configCheckCmd},
		{"admin token create", "create an admin API token; its digest goes to the tokens file", adminCmd},
		{"keygen", "write a signing key and an HMAC secret for a deployment", keygenCmd},
		{"keys generate", "write a new ES256 signing key for a rotation; print its kid and config entry", keysGenerateCmd},
		{"hash-password", "bcrypt a password for users[].password_hash", hashPasswordCmd},
		{"pkce", "print a PKCE code_verifier and its S256 code_challenge", pkceCmd},
		{"totp", "print the current TOTP code of a base32 secret", totpCmd},
		{"conformance", "black-box checks of any AS claiming the native endpoint (FiPA): pass / fail / not applicable per spec section", conformanceCmd},
		{"healthcheck", "exit 0 when a running instance is ready (GET /readyz): for container health checks", healthcheckCmd},
		{"version", "print the version and build information", versionCmd},
		{"help", "list the commands, or print one command's usage", helpCmd},
	}
}

// usageError is a command line that does not parse. Its message and the
// command's usage are already on stderr; main exits 2 for it, as the flag
// package's own commands do.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

// exitCode maps run's error to the process's exit status.
func exitCode(err error) int {
	var ue usageError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ue):
		return 2
	}
	return 1
}

// dispatch finds the command that args name, the longest name first
// ("config check" before a hypothetical "config"), and runs it. A group
// name alone ("config", "admin token") prints the group's commands.
func dispatch(args []string, s stdio) error {
	cmds := commands()
	for n := min(3, len(args)); n >= 1; n-- {
		name := strings.Join(args[:n], " ")
		for _, c := range cmds {
			if c.name == name {
				return c.run(args[n:], s)
			}
		}
	}
	if len(args) == 0 {
		return serveCmd(nil, s)
	}
	// A group: "config", "admin", "admin token" and what follows them.
	for n := min(2, len(args)); n >= 1; n-- {
		group := strings.Join(args[:n], " ")
		var sub []command
		for _, c := range cmds {
			if strings.HasPrefix(c.name, group+" ") {
				sub = append(sub, c)
			}
		}
		if len(sub) == 0 {
			continue
		}
		rest := args[n:]
		if len(rest) > 0 && isHelp(rest[0]) {
			listCommands(s.out, sub)
			return nil
		}
		msg := fmt.Sprintf("%q needs a subcommand", group)
		if len(rest) > 0 {
			msg = fmt.Sprintf("unknown command %q", strings.Join(args[:n+1], " "))
		}
		fmt.Fprintf(s.err, "fedas: %s\n", msg)
		listCommands(s.err, sub)
		return usageError{msg}
	}
	msg := fmt.Sprintf("unknown command %q", args[0])
	fmt.Fprintf(s.err, "fedas: %s\n", msg)
	listCommands(s.err, cmds)
	return usageError{msg}
}

func isHelp(a string) bool { return a == "-h" || a == "--help" || a == "-help" || a == "help" }

// listCommands prints one line per command.
func listCommands(w io.Writer, cmds []command) {
	fmt.Fprintln(w, "usage: fedas <command> [flags] [arguments]   (fedas <command> --help for its usage)")
	fmt.Fprintln(w, "\ncommands:")
	for _, c := range cmds {
		fmt.Fprintf(w, "  %-20s %s\n", c.name, c.summary)
	}
}

// helpCmd is `fedas help [COMMAND]`.
func helpCmd(args []string, s stdio) error {
	fs := newFlags("help", "help [COMMAND]", "Lists the commands, or prints the usage of one (the same as fedas COMMAND --help).")
	if done, err := parseFlags(fs, args, s); done {
		return err
	}
	if fs.NArg() == 0 {
		listCommands(s.out, commands())
		return nil
	}
	for _, c := range commands() {
		if c.name == strings.Join(fs.Args(), " ") && c.name != "help" {
			return c.run([]string{"--help"}, s)
		}
	}
	return dispatch(append(fs.Args(), "--help"), s)
}

// newFlags returns a flag set for a command whose synopsis (after
// "fedas ") is synopsis and whose description is about.
func newFlags(name, synopsis, about string) *flagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	// parseFlags prints the error and the usage where they belong (stdout
	// for --help, stderr for an error), not the flag package.
	fs.Usage = func() {}
	fs.SetOutput(io.Discard)
	return &flagSet{FlagSet: fs, usage: "usage: fedas " + synopsis + "\n\n" + about + "\n"}
}

// flagSet is a command's flags with its usage text.
type flagSet struct {
	*flag.FlagSet
	usage string
}

// printUsage writes fs's usage and its flags, if any, to w.
func printUsage(w io.Writer, fs *flagSet) {
	fmt.Fprint(w, fs.usage)
	n := 0
	fs.VisitAll(func(*flag.Flag) { n++ })
	if n > 0 {
		fmt.Fprintln(w, "\nflags:")
		fs.SetOutput(w)
		fs.PrintDefaults()
		fs.SetOutput(io.Discard)
	}
}

// parseFlags parses args into fs. done is true when the caller must
// return err right away: nil after -h/--help (usage on stdout), a
// usageError after a flag error (message and usage on stderr).
func parseFlags(fs *flagSet, args []string, s stdio) (done bool, err error) {
	err = fs.Parse(args)
	switch {
	case errors.Is(err, flag.ErrHelp):
		printUsage(s.out, fs)
		return true, nil
	case err != nil:
		fmt.Fprintf(s.err, "fedas %s: %v\n", fs.Name(), err)
		printUsage(s.err, fs)
		return true, usageError{err.Error()}
	}
	// flag stops at the first argument that is not a flag; a --help after
	// the arguments ("fedas config check FILE --help") still asks for help.
	for _, a := range fs.Args() {
		if a == "-h" || a == "--help" || a == "-help" {
			printUsage(s.out, fs)
			return true, nil
		}
	}
	return false, nil
}

// wantArgs checks the number of arguments after the flags.
func wantArgs(fs *flagSet, lo, hi int, s stdio) error {
	if n := fs.NArg(); n < lo || n > hi {
		msg := "wrong number of arguments"
		if n > hi {
			msg = fmt.Sprintf("unexpected argument %q", fs.Arg(hi))
		}
		fmt.Fprintf(s.err, "fedas %s: %s\n", fs.Name(), msg)
		printUsage(s.err, fs)
		return usageError{msg}
	}
	return nil
}
