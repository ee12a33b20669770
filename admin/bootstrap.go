package admin

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/fedas/fedas/config"
	"github.com/fedas/fedas/storage"
)

// FileAuthor is the author of versions that come from the config file.
const FileAuthor = "config-file"

// Bootstrap commits p (the config file's policy) as version 1 when the
// store holds no policy yet; afterwards the store is the source of truth
// and the file's policy is not read again (docs/admin.md "Bootstrap").
// Of instances starting together exactly one commits; the others find
// its version. It returns the head and whether this call created it.
func Bootstrap(ctx context.Context, st storage.PolicyStore, p config.Policy, keep int, now time.Time) (uint64, bool, error) {
	head, err := st.PolicyHead(ctx)
	if err != nil || head > 0 {
		return head, false, err
	}
	err = commitFile(ctx, st, p, 0, config.Policy{}, "bootstrap", keep, now)
	if errors.Is(err, storage.ErrConflict) {
		head, err = st.PolicyHead(ctx)
		return head, false, err
	}
	if err != nil {
		return 0, false, err
	}
	return 1, true, nil
}

// ErrAdminEdits is returned by ApplyFile when the head is not the
// config file's: admins changed the policy since the file was applied.
var ErrAdminEdits = errors.New("the policy store has admin edits since the config file was last applied")

// ApplyFile commits the config file's policy p as the next version (a
// SIGHUP). It refuses with ErrAdminEdits when the head came from the
// admin surface, unless overwrite: a file edit must not silently undo
// admins' work. Committing an unchanged policy is a no-op.
func ApplyFile(ctx context.Context, st storage.PolicyStore, base *config.Config, p config.Policy, overwrite bool, now time.Time) (uint64, bool, error) {
	if _, err := config.Compose(base, p); err != nil {
		return 0, false, err
	}
	head, err := st.PolicyHead(ctx)
	if err != nil {
		return 0, false, err
	}
	var cur config.Policy
	if head > 0 {
		pv, err := st.PolicyVersion(ctx, head)
		if err != nil {
			return 0, false, err
		}
		if pv.Author != FileAuthor && !overwrite {
			return head, false, fmt.Errorf("%w (version %d by %s, %s): SIGHUP leaves it; import the file through the admin API, or set admin.sighup_overwrites_store", ErrAdminEdits, head, pv.Author, pv.Origin)
		}
		if cur, err = config.ParsePolicy(pv.Doc); err != nil {
			return 0, false, err
		}
	}
	if redactedYAML(cur) == redactedYAML(p) {
		return head, false, nil
	}
	if err := commitFile(ctx, st, p, head, cur, "sighup", base.Admin.Retention, now); err != nil {
		return 0, false, err
	}
	return head + 1, true, nil
}

func commitFile(ctx context.Context, st storage.PolicyStore, p config.Policy, head uint64, cur config.Policy, origin string, keep int, now time.Time) error {
	doc, err := config.MarshalPolicy(p)
	if err != nil {
		return err
	}
	summary := "config file applied"
	if head > 0 {
		summary = summarize(cur, p)
	}
	now = now.UTC()
	v := storage.PolicyVersion{Version: head + 1, Parent: head, Doc: doc, Author: FileAuthor, Origin: origin, Time: now, Summary: summary}
	a := storage.AuditEntry{Version: head + 1, Time: now, Actor: FileAuthor, Action: origin, Target: "policy", Summary: summary, Diff: lineDiff(redactedYAML(cur), redactedYAML(p))}
	if keep <= 0 {
		keep = 1000
	}
	return st.CommitPolicy(ctx, v, a, keep)
}
