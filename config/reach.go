package config

import (
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/fedas/fedas/netguard"
)

// Reach configures reaching the user on another channel (docs/reach.md):
// our app registered as an authenticator on the user's other devices, the
// cross-device redirect_to_app, the User Questioning API and the
// interaction relay. Off unless Enabled.
type Reach struct {
	// Enabled mounts the reach endpoints (/reach/..., /native/reach, the
	// User Questioning endpoints) and publishes them in the metadata.
	Enabled bool `yaml:"enabled"`
	// TaskTTL is the lifetime of a cross-device sign-in task and of an
	// interaction relay without max_wait (default 120s, at most 10m: RFC
	// 10027 §6.1.4 advises short lifetimes for cross-device flows).
	TaskTTL time.Duration `yaml:"task_ttl"`
	// QuestionTTL is the lifetime of a User Questioning question (default
	// 5m, at most 10m); unanswered by then it ends with timeout.
	QuestionTTL time.Duration `yaml:"question_ttl"`
	// PollInterval is the polling interval sent to clients of
	// /native/reach and /reach/interactions (default 2s, at least 1s);
	// polling faster answers 429 slow_down (docs/decisions.md Q26).
	PollInterval time.Duration `yaml:"poll_interval"`
	// MaxHold bounds a long poll: the inbox's wait, the UQ Client-Timeout
	// hold and Prefer: wait (default 25s, at most 25s, below the server's
	// write timeout and common proxy idle timeouts).
	MaxHold time.Duration `yaml:"max_hold"`
	// MaxLiveTasks caps a user's live tasks (default 3); TasksPerUser per
	// TasksWindow (default 10 per 10m) caps their creation. Beyond either
	// the front ends answer as if the user had no channel (a benign
	// fallback: push bombing gets nothing, docs/reach.md).
	MaxLiveTasks int `yaml:"max_live_tasks"`
	// TasksPerUser: see MaxLiveTasks.
	TasksPerUser int `yaml:"tasks_per_user"`
	// TasksWindow: see MaxLiveTasks.
	TasksWindow time.Duration `yaml:"tasks_window"`
	// Webhook enables the signed webhook channel (a JWS of ours POSTed to
	// the device's registered https URL, SSRF-guarded); default on.
	Webhook *bool `yaml:"webhook,omitempty"`
	// FoldUnknownUser answers an unknown User Questioning user_id as
	// unreachable_user, so that the endpoint reveals no account's
	// existence (User Questioning -10 §4.1 lets the OP choose).
	FoldUnknownUser bool `yaml:"fold_unknown_user"`
	// CreationsPerMinute caps the cross-device sign-ins (POST
	// /native/reach) and, apart, the relayed interactions (POST
	// /reach/interactions) one client creates per minute, across
	// instances (default 60); more is 429 slow_down with Retry-After.
	CreationsPerMinute int `yaml:"creations_per_minute"`
	// QuestionsPerMinute caps the User Questioning questions one client
	// may ask per minute, across instances (default 30); more is
	// high_rate_client (400, UQ -10 §5, with Retry-After).
	QuestionsPerMinute int `yaml:"questions_per_minute"`
	// PollsPerMinute caps one client's User Questioning polls per minute
	// across all its questions (default 120; high_rate_client). One
	// question is polled at most once a second (high_rate_question).
	PollsPerMinute int `yaml:"polls_per_minute"`
	// ACRs maps the app's local user verification (its amr, RFC 8176) to
	// the acr reported in used_acr and checked against wished_acr, the
	// first entry whose amr all appear winning; default: hwk+face, hwk+fpt
	// and hwk+pin → "phr" (phishing resistant), otherwise "app".
	ACRs []ReachACR `yaml:"acrs"`
}

// ReachACR maps a set of amr values to an acr (Reach.ACRs).
type ReachACR struct {
	// AMR values that must all be present.
	AMR []string `yaml:"amr"`
	// ACR reported when they are.
	ACR string `yaml:"acr"`
}

// ClientReach is one client's reach settings (clients[].reach).
type ClientReach struct {
	// DisableCrossDevice stops offering reach_uri in this client's
	// redirect_to_app answers: its users complete an app sign-in on the
	// same device only (RFC 10027 §6.1: allow turning cross-device off).
	DisableCrossDevice bool `yaml:"disable_cross_device"`
	// InteractionOrigins are the https origins (scheme://host[:port])
	// whose URLs this client may relay to its users with POST
	// /reach/interactions (reach_interaction_origins); none means the
	// client may not relay.
	InteractionOrigins []string `yaml:"interaction_origins"`
	// NotificationEndpoint is the client's User Questioning
	// client_notification_endpoint (https): set, the client is
	// Pushed-To-Client and may not poll; unset, it polls (UQ -10 §3).
	NotificationEndpoint string `yaml:"client_notification_endpoint"`
}

// Reach defaults.
const (
	DefaultReachTaskTTL     = 120 * time.Second
	DefaultReachQuestionTTL = 5 * time.Minute
	DefaultReachPoll        = 2 * time.Second
	DefaultReachMaxHold     = 25 * time.Second
	maxReachLifetime        = 10 * time.Minute
)

// Scopes of the reach endpoints (docs/reach.md).
const (
	// ScopeReachDevice lets our app register its device.
	ScopeReachDevice = "reach:device"
	// ScopeReachInteraction lets a client relay an interaction.
	ScopeReachInteraction = "reach:interaction"
	// ScopeQuestion lets a client ask a User Questioning question (UQ
	// -10 §3).
	ScopeQuestion = "question"
)

// WithDefaults returns r with every unset field at its default.
func (r Reach) WithDefaults() Reach {
	if r.TaskTTL == 0 {
		r.TaskTTL = DefaultReachTaskTTL
	}
	if r.QuestionTTL == 0 {
		r.QuestionTTL = DefaultReachQuestionTTL
	}
	if r.PollInterval == 0 {
		r.PollInterval = DefaultReachPoll
	}
	if r.MaxHold == 0 {
		r.MaxHold = DefaultReachMaxHold
	}
	if r.MaxLiveTasks == 0 {
		r.MaxLiveTasks = 3
	}
	if r.TasksPerUser == 0 {
		r.TasksPerUser = 10
	}
	if r.TasksWindow == 0 {
		r.TasksWindow = 10 * time.Minute
	}
	if r.CreationsPerMinute == 0 {
		r.CreationsPerMinute = 60
	}
	if r.QuestionsPerMinute == 0 {
		r.QuestionsPerMinute = 30
	}
	if r.PollsPerMinute == 0 {
		r.PollsPerMinute = 120
	}
	if r.Webhook == nil {
		on := true
		r.Webhook = &on
	}
	if len(r.ACRs) == 0 {
		r.ACRs = []ReachACR{
			{AMR: []string{"hwk", "face"}, ACR: "phr"},
			{AMR: []string{"hwk", "fpt"}, ACR: "phr"},
			{AMR: []string{"hwk", "pin"}, ACR: "phr"},
		}
	}
	return r
}

// WebhookOn reports whether the webhook channel is enabled.
func (r Reach) WebhookOn() bool { return r.Webhook == nil || *r.Webhook }

// ACRFor maps the app's amr to an acr (Reach.ACRs; "app" when none
// matches).
func (r Reach) ACRFor(amr []string) string {
	for _, m := range r.WithDefaults().ACRs {
		all := len(m.AMR) > 0
		for _, a := range m.AMR {
			found := false
			for _, b := range amr {
				found = found || a == b
			}
			all = all && found
		}
		if all {
			return m.ACR
		}
	}
	return "app"
}

// ACRValues lists every acr ACRFor can answer, for the metadata
// (acr_list of UQ -10 §3).
func (r Reach) ACRValues() []string {
	out := []string{}
	for _, m := range r.WithDefaults().ACRs {
		if !containsString(out, m.ACR) {
			out = append(out, m.ACR)
		}
	}
	if !containsString(out, "app") {
		out = append(out, "app")
	}
	return out
}

func containsString(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func (c *Config) validateReach() []error {
	var errs []error
	add := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	r := c.Reach
	for _, d := range []struct {
		name     string
		v        time.Duration
		min, max time.Duration
	}{
		{"reach.task_ttl", r.TaskTTL, 10 * time.Second, maxReachLifetime},
		{"reach.question_ttl", r.QuestionTTL, 10 * time.Second, maxReachLifetime},
		{"reach.poll_interval", r.PollInterval, time.Second, time.Minute},
		{"reach.max_hold", r.MaxHold, time.Second, DefaultReachMaxHold},
		{"reach.tasks_window", r.TasksWindow, time.Minute, 24 * time.Hour},
	} {
		if d.v != 0 && (d.v < d.min || d.v > d.max) {
			add("%s: must be between %s and %s", d.name, d.min, d.max)
		}
	}
	if r.MaxLiveTasks < 0 || r.MaxLiveTasks > 50 {
		add("reach.max_live_tasks: must be between 1 and 50")
	}
	if r.TasksPerUser < 0 || r.TasksPerUser > 1000 {
		add("reach.tasks_per_user: must be between 1 and 1000")
	}
	if r.CreationsPerMinute < 0 || r.CreationsPerMinute > 100000 {
		add("reach.creations_per_minute: must be between 1 and 100000")
	}
	if r.QuestionsPerMinute < 0 || r.QuestionsPerMinute > 10000 {
		add("reach.questions_per_minute: must be between 1 and 10000")
	}
	if r.PollsPerMinute < 0 || r.PollsPerMinute > 100000 {
		add("reach.polls_per_minute: must be between 1 and 100000")
	}
	for i, m := range r.ACRs {
		if len(m.AMR) == 0 || m.ACR == "" {
			add("reach.acrs[%d]: amr and acr are required", i)
		}
	}
	for _, cl := range c.Clients {
		if cl.Reach == nil {
			continue
		}
		p := "clients[" + cl.ID + "].reach"
		if !r.Enabled {
			add("%s: needs reach.enabled", p)
		}
		for _, o := range cl.Reach.InteractionOrigins {
			if err := c.checkOrigin(o); err != nil {
				add("%s.interaction_origins: %q: %v", p, o, err)
			}
		}
		if ne := cl.Reach.NotificationEndpoint; ne != "" {
			if err := c.CheckURL(ne); err != nil {
				add("%s.client_notification_endpoint: %v", p, err)
			} else if err := netguard.CheckURL(ne, netguard.Options{AllowLoopback: c.Dev.AllowLoopbackHTTP}); err != nil {
				// SSRF (docs/reach.md "User Questioning"): no private,
				// loopback or metadata address; checked again at delivery.
				add("%s.client_notification_endpoint: %v", p, err)
			} else if u, _ := url.Parse(ne); u.Fragment != "" {
				add("%s.client_notification_endpoint: must have no fragment", p)
			}
		}
	}
	return errs
}

// checkOrigin accepts an https origin (http only on loopback with
// dev.allow_loopback_http): scheme://host[:port] and nothing more.
func (c *Config) checkOrigin(o string) error {
	u, err := url.Parse(o)
	if err != nil || u.Host == "" || u.User != nil || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" || strings.HasSuffix(o, "/") {
		return fmt.Errorf("must be an origin: scheme://host[:port]")
	}
	return c.CheckURL(o)
}
