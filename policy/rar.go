package policy

import (
	"github.com/fedas/fedas/config"
	"github.com/fedas/fedas/rar"
)

// allowRAR gives each client the RFC 9396 types it may request
// (clients[].authorization_details_types; config.Validate checked that
// each is configured).
func allowRAR(clients map[string]*Client, cfg *config.Config) {
	types := cfg.RARTypes()
	for _, cc := range cfg.Clients {
		c := clients[cc.ID]
		if c == nil || len(cc.AuthorizationDetailsTypes) == 0 {
			continue
		}
		c.AuthorizationDetailsTypes = make(map[string]rar.TypeConfig, len(cc.AuthorizationDetailsTypes))
		for _, t := range cc.AuthorizationDetailsTypes {
			if tc, ok := types[t]; ok {
				c.AuthorizationDetailsTypes[t] = tc
			}
		}
	}
}
