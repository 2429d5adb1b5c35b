package catalog

import (
	"context"
	"crypto/rand"
	"fmt"
	"log/slog"
	"slices"
	"strings"

	consul "github.com/hashicorp/consul/api"
)

// Consul ACLs. Each part of driftless talks to Consul with a token of its
// own, whose one policy allows what that part does and nothing else (Consul
// runs with default_policy deny). The rules are here, once:
// docs/operations.md shows them (TestPoliciesDocumented keeps it so), dev
// mints them into its own Consul (platform/consulacl.go), the tests prove
// both what each allows and what it refuses (acl_test.go).

// Role is a part of driftless with a Consul token of its own.
type Role string

// The roles with a Consul token.
const (
	// RoleController writes the desired state (KV under KVPrefix), holds
	// the leader lock (a session), registers its own service and removes
	// the nodes of cells gone for good (ForgetCells).
	RoleController Role = "controller"
	// RoleCell registers the cell's node (under CellNodePrefix), its
	// service and its instances (services and their checks, under any
	// service name: apps name them) in the catalog (Writer), and holds its
	// key under CellsPrefix with a session (cells.go).
	RoleCell Role = "cell"
	// RoleRouter reads the instances (services, their health and nodes),
	// the live cells (KV under CellsPrefix) and the sleeping apps (KV
	// under SleepingPrefix).
	RoleRouter Role = "router"
)

// Roles is every Role, in the order the docs list them.
var Roles = []Role{RoleController, RoleCell, RoleRouter}

// ControllerServiceName is the Consul service each controller registers
// (its TTL check binds its leader session).
const ControllerServiceName = "driftless-controller"

// Policy is a named Consul ACL policy.
type Policy struct {
	Name  string
	Rules string
}

// rules renders ACL rules of one kind per line of grants: each is a
// resource ("key_prefix"), its name and its policy.
func rules(grants ...[3]string) string {
	var b strings.Builder
	for _, g := range grants {
		fmt.Fprintf(&b, "%s %q {\n  policy = %q\n}\n", g[0], g[1], g[2])
	}
	return b.String()
}

// Policy is the role's policy: exactly what its code does in Consul.
//   - controller: reconciler/store reads and writes KVPrefix (apps,
//     releases, sources, droplets, services, bindings, sleeping) and
//     reconciler/leader.go takes LeaderKey with a session it creates, bound
//     to the TTL check of the ControllerServiceName service it registers;
//     reconciler/gc.go lists the cells' nodes and deregisters those of
//     cells gone for good (ForgetCells);
//   - cell: agents/registry.go registers its node (CellNode), the cell's
//     service and its instances' services, named after the apps
//     (ServiceName), sets their checks, deregisters them and lists the
//     services of its node, all in the catalog (Writer); it holds
//     its key under CellsPrefix with a session it creates and renews
//     (Presence);
//   - router: router/registry lists the services, the passing health of
//     app services (which needs the nodes they run on) and the live cells
//     (CellsPrefix), router/wake follows SleepingPrefix.
func (r Role) Policy() Policy {
	p := Policy{Name: "driftless-" + string(r)}
	switch r {
	case RoleController:
		p.Rules = rules([3]string{"key_prefix", KVPrefix, "write"}, [3]string{"session_prefix", "", "write"},
			[3]string{"service", ControllerServiceName, "write"}, [3]string{"node_prefix", CellNodePrefix, "write"})
	case RoleCell:
		p.Rules = rules([3]string{"service_prefix", "", "write"}, [3]string{"node_prefix", CellNodePrefix, "write"},
			[3]string{"key_prefix", CellsPrefix, "write"},
			[3]string{"session_prefix", "", "write"})
	case RoleRouter:
		p.Rules = rules([3]string{"service_prefix", "", "read"}, [3]string{"node_prefix", "", "read"},
			[3]string{"key_prefix", CellsPrefix, "read"}, [3]string{"key_prefix", SleepingPrefix, "read"})
	}
	return p
}

// AgentPolicy is the policy of a Consul agent's own token (acl.tokens.agent)
// on node: register the node and its health, see the services it syncs.
func AgentPolicy(node string) Policy {
	return Policy{Name: "driftless-consul-agent-" + node,
		Rules: rules([3]string{"node", node, "write"}, [3]string{"service_prefix", "", "read"})}
}

// Grant is one token driftless asks Consul for: its secret, what it is
// for, and its policies.
type Grant struct {
	// Secret is the token's SecretID (a UUID, NewSecret): the token the
	// role is given.
	Secret      string
	Description string
	Policies    []Policy
}

// NewSecret makes a random token secret (a version 4 UUID, as Consul
// wants).
func NewSecret() (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("making a Consul token: %w", err)
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16]), nil
}

// EnsureTokens makes Consul hold every grant, through mgmt (a client whose
// token may write ACLs): each policy is created, or updated when its rules
// differ, and each token exists with its Secret and exactly its policies.
// It is idempotent: an empty Consul (a new dev agent, one restarted in
// memory) and one that already holds them both end with the same tokens,
// so roles given these secrets keep working.
func EnsureTokens(ctx context.Context, mgmt *consul.Client, grants ...Grant) error {
	acl := mgmt.ACL()
	q := (&consul.QueryOptions{}).WithContext(ctx)
	w := (&consul.WriteOptions{}).WithContext(ctx)
	done := map[string]bool{}
	for _, g := range grants {
		for _, p := range g.Policies {
			if done[p.Name] {
				continue
			}
			if err := ensurePolicy(acl, p, q, w); err != nil {
				return err
			}
			done[p.Name] = true
		}
	}
	tokens, _, err := acl.TokenList(q)
	if err != nil {
		return fmt.Errorf("listing the Consul ACL tokens: %w", err)
	}
	for _, g := range grants {
		links := make([]*consul.ACLTokenPolicyLink, len(g.Policies))
		want := make([]string, len(g.Policies))
		for i, p := range g.Policies {
			links[i], want[i] = &consul.ACLTokenPolicyLink{Name: p.Name}, p.Name
		}
		i := slices.IndexFunc(tokens, func(t *consul.ACLTokenListEntry) bool { return t.SecretID == g.Secret })
		if i < 0 {
			if _, _, err := acl.TokenCreate(&consul.ACLToken{SecretID: g.Secret, Description: g.Description, Policies: links}, w); err != nil {
				return fmt.Errorf("creating the Consul token %q: %w", g.Description, err)
			}
			continue
		}
		have := make([]string, 0, len(tokens[i].Policies))
		for _, l := range tokens[i].Policies {
			have = append(have, l.Name)
		}
		slices.Sort(have)
		slices.Sort(want)
		if slices.Equal(have, want) && tokens[i].Description == g.Description {
			continue
		}
		t := &consul.ACLToken{AccessorID: tokens[i].AccessorID, SecretID: g.Secret, Description: g.Description, Policies: links}
		if _, _, err := acl.TokenUpdate(t, w); err != nil {
			return fmt.Errorf("updating the Consul token %q: %w", g.Description, err)
		}
	}
	return nil
}

// ensurePolicy creates p, or updates the policy of that name to p's rules.
func ensurePolicy(acl *consul.ACL, p Policy, q *consul.QueryOptions, w *consul.WriteOptions) error {
	cur, _, err := acl.PolicyReadByName(p.Name, q)
	if err != nil {
		return fmt.Errorf("reading the Consul ACL policy %s: %w", p.Name, err)
	}
	switch {
	case cur == nil:
		if _, _, err := acl.PolicyCreate(&consul.ACLPolicy{Name: p.Name, Rules: p.Rules,
			Description: "driftless: see docs/operations.md"}, w); err != nil {
			return fmt.Errorf("creating the Consul ACL policy %s: %w", p.Name, err)
		}
	case cur.Rules != p.Rules:
		cur.Rules = p.Rules
		if _, _, err := acl.PolicyUpdate(cur, w); err != nil {
			return fmt.Errorf("updating the Consul ACL policy %s: %w", p.Name, err)
		}
	}
	return nil
}

// EnsureAgentToken gives the Consul agent mgmt talks to a token of its own
// (AgentPolicy of its node), so that it may register its node and sync
// the services registered with it: the token found by its description, or
// a new one. Through mgmt, whose token may write ACLs.
func EnsureAgentToken(ctx context.Context, mgmt *consul.Client) error {
	node, err := mgmt.Agent().NodeName()
	if err != nil {
		return fmt.Errorf("asking the Consul agent its node name: %w", err)
	}
	g := Grant{Description: "driftless: the Consul agent of node " + node, Policies: []Policy{AgentPolicy(node)}}
	tokens, _, err := mgmt.ACL().TokenList((&consul.QueryOptions{}).WithContext(ctx))
	if err != nil {
		return fmt.Errorf("listing the Consul ACL tokens: %w", err)
	}
	for _, t := range tokens {
		if t.Description == g.Description {
			g.Secret = t.SecretID
		}
	}
	if g.Secret == "" {
		if g.Secret, err = NewSecret(); err != nil {
			return err
		}
	}
	if err := EnsureTokens(ctx, mgmt, g); err != nil {
		return err
	}
	if _, err := mgmt.Agent().UpdateAgentACLToken(g.Secret, (&consul.WriteOptions{}).WithContext(ctx)); err != nil {
		return fmt.Errorf("setting the Consul agent's token: %w", err)
	}
	return nil
}

// Hidden warns when Consul's ACLs hid part of a query's answer from the
// token (an empty listing is not an error in Consul: a role whose token
// lacks a rule sees nothing and says nothing), once each time it starts
// and once when it stops. The zero value is ready; one per query loop.
type Hidden struct {
	hidden bool
}

// Check logs, when meta says the answer was filtered by ACLs and the last
// one was not, that the token does not allow reading what (and which
// policy it needs), and, when that ends, that it does again.
func (h *Hidden) Check(log *slog.Logger, meta *consul.QueryMeta, what string, role Role) {
	if meta == nil || meta.ResultsFilteredByACLs == h.hidden {
		return
	}
	h.hidden = meta.ResultsFilteredByACLs
	if h.hidden {
		log.Warn("Consul's ACLs hide part of "+what+" from this token: give it the "+role.Policy().Name+
			" policy (docs/operations.md#consul-acls)", "role", string(role))
		return
	}
	log.Info("Consul's ACLs no longer hide any of "+what+" from this token", "role", string(role))
}
