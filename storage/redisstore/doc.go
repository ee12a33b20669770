// Package redisstore is the Redis backend of storage.Store, for
// deployments where several fedas instances share state. It runs on a
// single node, a Sentinel group or Redis Cluster through
// redis.UniversalClient, and follows the rules in docs/redis.md.
//
// # Key layout
//
// Every key carries the configured prefix P (default "fedas:") and, but
// for the policy keys, a TTL equal to the artefact's life. Keys one atomic step touches share a hash
// tag, so that a Lua script or MULTI never spans two cluster slots:
//
//	P tok:{<signature>}:<kind>   string: the record as JSON
//	P tok:{<signature>}:code     hash {rec, used}: an authorization code
//	P tok:{<signature>}:pkce     string, written with the code in one step
//	P tok:{<signature>}:refresh:used  the rotation's id: the refresh
//	                             token was rotated (InvalidateRefresh);
//	                             the token's TTL
//	P req:{<request id>}:<kind>  set of access/refresh signatures, for
//	                             RevokeRequest; its TTL only ever grows
//	P as:{<id>}                  hash {step, data}: an auth session,
//	                             expiring at its ExpiresAt
//	P used:{<key>}               replay marker, SET NX PXAT its expiry
//	P rl:{<key>}                 a rate limit's TAT (GCRA, ratelimit.go),
//	                             PX until the TAT passes (≤ its window)
//	P live:{<scope digest>}      sorted set: a live-session cap's slots,
//	                             score = expiry; its TTL only ever grows
//	P policy:{p}:head            the policy store's head version
//	P policy:{p}:versions        sorted set: version metadata by version
//	P policy:{p}:docs            hash: version -> the version's JSON
//	P policy:{p}:audit           sorted set: audit entries by version
//
// The four policy keys have no TTL: they are configuration, not
// sessions, and are bounded by the retention every commit trims to
// (docs/admin.md). Commits are announced on P policy:{p}:changed.
//
// Key parts that come from outside (signatures, request IDs, session IDs,
// replay keys) must match ^[A-Za-z0-9._~:+/=-]{1,512}$. Anything else can
// never be stored, so reads answer ErrNotFound without asking Redis and
// writes fail with ErrInvalidKey: client input can neither break out of
// its hash tag nor smuggle a pattern or protocol bytes into a command.
// Nothing on a request path uses KEYS or SCAN.
//
// # Single use
//
// Every single-use transition is one atomic command on the primary whose
// return value decides the outcome (docs/redis.md rule 2): InvalidateCode,
// InvalidateRefresh and the auth-session compare-and-swaps are Lua scripts, ConsumeToken is
// GETDEL, MarkUsed is SET NX. Of N concurrent callers exactly one wins.
// Reads never go to replicas (rule 3). Replication is asynchronous, so a
// consume acknowledged by a primary that dies before replicating it can be
// repeated once after a failover (rule 7).
//
// # Failures
//
// redis.Nil never leaves the package: it becomes storage.ErrNotFound.
// Every other failure of Redis — network errors, timeouts, OOM under
// noeviction, READONLY, CLUSTERDOWN — is wrapped so that
// errors.Is(err, storage.ErrUnavailable) holds, and each call runs under
// a deadline (Options.OpTimeout) so that a hung server costs a request at
// most that long. Errors and logs never contain command arguments: they
// hold codes, tokens and session state (rule 8).
//
// # Eviction
//
// Eviction silently deletes replay markers and consumed-code tombstones,
// which re-enables replays (rule 5). New therefore refuses a server whose
// maxmemory-policy, read from INFO memory on every master, is not
// noeviction, unless Options.AllowEvictionPolicy is set;
// CheckEvictionPolicy repeats the check at run time.
package redisstore
