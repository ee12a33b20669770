// Package authn holds fedas's local authentication steps, one package
// each (password, totp; later passkeys, credential presentations, reaching
// the user on another device). Each implements flow.Step; the engine
// chains them per client and knows none of them by name.
package authn
