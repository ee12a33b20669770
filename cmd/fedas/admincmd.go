package main

import (
	"errors"
	"flag"
	"fmt"
	"io"

	"github.com/fedas/fedas/admin"
)

// adminCmd runs `fedas admin token create --role read|write --name NAME
// --file FILE`: it appends the new token's digest to the tokens file and
// prints the token once (docs/admin.md "Tokens").
func adminCmd(args []string, stdout, stderr io.Writer) error {
	usage := "usage: fedas admin token create --role read|write --name NAME [--file admin-tokens]"
	if len(args) < 2 || args[0] != "token" || args[1] != "create" {
		return errors.New(usage)
	}
	fs := flag.NewFlagSet("admin token create", flag.ContinueOnError)
	fs.SetOutput(stderr)
	role := fs.String("role", "", "read or write")
	name := fs.String("name", "", "who holds the token (shown in the audit log)")
	file := fs.String("file", "admin-tokens", "the tokens file the server reads (admin.tokens_file or --admin-tokens)")
	if err := fs.Parse(args[2:]); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return errors.New(usage)
	}
	if *role != string(admin.RoleRead) && *role != string(admin.RoleWrite) {
		return fmt.Errorf("--role must be read or write\n%s", usage)
	}
	if *name == "" {
		return fmt.Errorf("--name is required\n%s", usage)
	}
	tok := admin.NewToken()
	if err := admin.AppendToken(*file, *name, admin.Role(*role), tok); err != nil {
		return err
	}
	fmt.Fprintf(stderr, "added %s token %q to %s (only its SHA-256 is stored; this is the only time the token is shown)\n", *role, *name, *file)
	fmt.Fprintln(stdout, tok)
	return nil
}
