package reconciler

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	consul "github.com/hashicorp/consul/api"

	"github.com/driftless/driftless/catalog"
	"github.com/driftless/driftless/internal/ticks"
)

// Leader election. Every controller registers itself in Consul with a TTL
// check it keeps passing, opens a session bound to that check and competes
// for the lock at catalog.LeaderKey. Only the holder acts (applies commits,
// stages, converges); the others wait. When the leader dies its TTL check
// fails, Consul invalidates the session at once and another controller
// takes the lock after the session's lock delay.

const (
	// leaderCheckTTL is how long a silent controller keeps its session.
	leaderCheckTTL = 5 * time.Second
	// leaderLockDelay is how long the lock stays unavailable after its
	// holder's session was invalidated (Consul's guard against a leader
	// that does not know yet that it lost).
	leaderLockDelay = 2 * time.Second
)

// leadership is a held lock: lost closes when it is lost, release gives
// it up.
type leadership struct {
	lost    <-chan struct{}
	release func()
}

// lead blocks until this controller holds the leader lock or ctx ends.
func (c *Controller) lead(ctx context.Context) (*leadership, error) {
	agent := c.cfg.Consul.Agent()
	// The check is this process's own: a restarted controller with the
	// same id must not revive the session of the one that died.
	var nonce [4]byte
	_, _ = rand.Read(nonce[:])
	serviceID := "driftless-controller-" + c.cfg.ID + "-" + hex.EncodeToString(nonce[:])
	checkID := serviceID + ":alive"
	err := agent.ServiceRegister(&consul.AgentServiceRegistration{
		ID: serviceID, Name: catalog.ControllerServiceName, Tags: []string{catalog.Tag},
		Check: &consul.AgentServiceCheck{CheckID: checkID, Name: "controller alive", TTL: leaderCheckTTL.String(),
			Status: consul.HealthPassing, DeregisterCriticalServiceAfter: "1m"},
	})
	if err != nil {
		return nil, fmt.Errorf("registering the controller in consul: %w", err)
	}
	aliveCtx, stopAlive := context.WithCancel(context.Background())
	go ticks.NowAndEvery(aliveCtx, leaderCheckTTL/4, func() {
		if err := agent.UpdateTTL(checkID, "controller running", consul.HealthPassing); err != nil {
			c.log.Warn("keeping the controller check passing", "err", err)
		}
	})
	cleanup := func() {
		stopAlive()
		_ = agent.ServiceDeregister(serviceID)
	}
	session, _, err := c.cfg.Consul.Session().Create(&consul.SessionEntry{
		Name: "driftless controller " + c.cfg.ID, LockDelay: leaderLockDelay,
		Behavior: consul.SessionBehaviorRelease, Checks: []string{"serfHealth", checkID},
	}, nil)
	if err != nil {
		cleanup()
		return nil, fmt.Errorf("creating the leader session: %w", err)
	}
	lock, err := c.cfg.Consul.LockOpts(&consul.LockOptions{Key: catalog.LeaderKey, Value: []byte(c.cfg.ID),
		Session: session, LockWaitTime: time.Second})
	if err != nil {
		_, _ = c.cfg.Consul.Session().Destroy(session, nil)
		cleanup()
		return nil, fmt.Errorf("preparing the leader lock: %w", err)
	}
	release := func() {
		_ = lock.Unlock()
		_, _ = c.cfg.Consul.Session().Destroy(session, nil)
		cleanup()
	}
	c.setRole(RoleStandby)
	c.log.Info("waiting for the leader lock", "key", catalog.LeaderKey, "id", c.cfg.ID)
	for {
		lost, err := lock.Lock(ctx.Done())
		switch {
		case err == nil && lost != nil:
			return &leadership{lost: lost, release: release}, nil
		case ctx.Err() != nil:
			release()
			return nil, ctx.Err()
		case errors.Is(err, consul.ErrLockHeld):
			release()
			return nil, err
		case err != nil:
			// Consul unreachable or the session is gone: start over.
			release()
			return nil, fmt.Errorf("taking the leader lock: %w", err)
		}
	}
}

// Controller roles.
const (
	RoleLeader  = "leader"
	RoleStandby = "standby"
)

func (c *Controller) setRole(role string) {
	c.mu.Lock()
	c.role = role
	c.mu.Unlock()
}

// Leading reports whether this controller acts, and which controller holds
// the lock (by id, "" if unknown).
func (c *Controller) Leading(ctx context.Context) (bool, string) {
	c.mu.Lock()
	leading := c.role == RoleLeader
	c.mu.Unlock()
	if leading {
		return true, c.cfg.ID
	}
	pair, _, err := c.cfg.Consul.KV().Get(catalog.LeaderKey, (&consul.QueryOptions{}).WithContext(ctx))
	if err != nil || pair == nil || pair.Session == "" {
		return false, ""
	}
	return false, string(pair.Value)
}
