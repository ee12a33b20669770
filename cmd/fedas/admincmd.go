package main

import (
	"fmt"

	"github.com/fedas/fedas/admin"
)

// adminCmd runs `fedas admin token create --role read|write --name NAME
// --file FILE`: it appends the new token's digest to the tokens file and
// prints the token once (docs/admin.md "Tokens").
func adminCmd(args []string, s stdio) error {
	fs := newFlags("admin token create", "admin token create --role read|write --name NAME [--file admin-tokens]",
		"Creates an admin API token: appends \"<sha256 of the token> <role> <name>\" to the tokens file\n"+
			"(created 0600; the server re-reads it when it changes) and prints the token on stdout, once.")
	role := fs.String("role", "", "read or write")
	name := fs.String("name", "", "who holds the token (shown in the audit log)")
	file := fs.String("file", "admin-tokens", "the tokens file the server reads (admin.tokens_file or --admin-tokens)")
	if done, err := parseFlags(fs, args, s); done {
		return err
	}
	if err := wantArgs(fs, 0, 0, s); err != nil {
		return err
	}
	if *role != string(admin.RoleRead) && *role != string(admin.RoleWrite) {
		fmt.Fprintln(s.err, "fedas admin token create: --role must be read or write")
		printUsage(s.err, fs)
		return usageError{"--role must be read or write"}
	}
	if *name == "" {
		fmt.Fprintln(s.err, "fedas admin token create: --name is required")
		printUsage(s.err, fs)
		return usageError{"--name is required"}
	}
	tok := admin.NewToken()
	if err := admin.AppendToken(*file, *name, admin.Role(*role), tok); err != nil {
		return err
	}
	fmt.Fprintf(s.err, "added %s token %q to %s (only its SHA-256 is stored; this is the only time the token is shown)\n", *role, *name, *file)
	fmt.Fprintln(s.out, tok)
	return nil
}
