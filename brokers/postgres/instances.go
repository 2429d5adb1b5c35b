package postgres

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/jackc/pgx/v5"

	"github.com/driftless/driftless/brokers/osb"
)

// provision creates an instance's database: 201 when made, 200 when it
// already exists alike, 409 when it exists with another plan or other
// parameters.
func (b *Broker) provision(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	id := r.PathValue("instance_id")
	var req osb.ProvisionRequest
	if !decode(w, r, &req) {
		return
	}
	if req.ServiceID != ServiceID {
		fail(w, http.StatusBadRequest, "BadRequest", fmt.Sprintf("unknown service_id %q", req.ServiceID))
		return
	}
	limits, ok := Limits(req.PlanID)
	if !ok {
		fail(w, http.StatusBadRequest, "BadRequest", fmt.Sprintf("unknown plan_id %q", req.PlanID))
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	in, found, err := b.store.instance(ctx, id)
	if err != nil {
		b.internal(w, "provision", err)
		return
	}
	if found {
		if in.PlanID == req.PlanID && sameJSON(in.Parameters, req.Parameters) {
			reply(w, http.StatusOK, osb.ProvisionResponse{})
			return
		}
		fail(w, http.StatusConflict, "Conflict", fmt.Sprintf("instance %s exists with another plan or other parameters", id))
		return
	}
	db := databaseName(id)
	in = instance{ID: id, ServiceID: req.ServiceID, PlanID: req.PlanID, Database: db, Owner: ownerRole(db),
		Parameters: req.Parameters, Context: req.Context}
	err = b.createDatabase(ctx, in, limits)
	if err == nil {
		err = b.store.putInstance(ctx, in)
	}
	if err != nil {
		// Undo what was made: the platform's orphan mitigation would find
		// no record of it and answer 410.
		if derr := b.dropInstance(context.WithoutCancel(ctx), in, nil); derr != nil {
			b.log.Warn("undoing a failed provision", "instance", id, "err", derr)
		}
		b.internal(w, "provision", err)
		return
	}
	b.log.Info("provisioned", "instance", id, "plan", req.PlanID, "database", db)
	reply(w, http.StatusCreated, osb.ProvisionResponse{})
}

// createDatabase makes the owner role and the database, each unless a
// previous attempt already did, and closes the database to PUBLIC.
func (b *Broker) createDatabase(ctx context.Context, in instance, limits PlanLimits) error {
	var exists bool
	err := b.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1)`, in.Owner).Scan(&exists)
	if err != nil {
		return fmt.Errorf("looking up role %s: %w", in.Owner, err)
	}
	if !exists {
		if _, err := b.pool.Exec(ctx, `CREATE ROLE `+ident(in.Owner)+` NOLOGIN`); err != nil {
			return fmt.Errorf("creating role %s: %w", in.Owner, err)
		}
	}
	err = b.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)`, in.Database).Scan(&exists)
	if err != nil {
		return fmt.Errorf("looking up database %s: %w", in.Database, err)
	}
	if !exists {
		q := fmt.Sprintf(`CREATE DATABASE %s OWNER %s CONNECTION LIMIT %d`, ident(in.Database), ident(in.Owner), limits.Connections)
		if _, err := b.pool.Exec(ctx, q); err != nil {
			return fmt.Errorf("creating database %s: %w", in.Database, err)
		}
	}
	if _, err := b.pool.Exec(ctx, `REVOKE ALL ON DATABASE `+ident(in.Database)+` FROM PUBLIC`); err != nil {
		return fmt.Errorf("closing database %s to PUBLIC: %w", in.Database, err)
	}
	return nil
}

// update changes an instance's plan (its connection limit and size quota)
// or parameters: 200, or 404 for an unknown instance.
func (b *Broker) update(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	id := r.PathValue("instance_id")
	var req osb.UpdateRequest
	if !decode(w, r, &req) {
		return
	}
	if req.ServiceID != ServiceID {
		fail(w, http.StatusBadRequest, "BadRequest", fmt.Sprintf("unknown service_id %q", req.ServiceID))
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	in, found, err := b.store.instance(ctx, id)
	if err != nil {
		b.internal(w, "update", err)
		return
	}
	if !found {
		fail(w, http.StatusNotFound, "NotFound", fmt.Sprintf("instance %s does not exist", id))
		return
	}
	if req.PlanID != "" {
		in.PlanID = req.PlanID
	}
	limits, ok := Limits(in.PlanID)
	if !ok {
		fail(w, http.StatusBadRequest, "BadRequest", fmt.Sprintf("unknown plan_id %q", req.PlanID))
		return
	}
	if req.Parameters != nil {
		in.Parameters = req.Parameters
	}
	if req.Context != nil {
		in.Context = req.Context
	}
	q := fmt.Sprintf(`ALTER DATABASE %s CONNECTION LIMIT %d`, ident(in.Database), limits.Connections)
	if _, err := b.pool.Exec(ctx, q); err != nil {
		b.internal(w, "update", fmt.Errorf("changing the connection limit of %s: %w", in.Database, err))
		return
	}
	if err := b.store.putInstance(ctx, in); err != nil {
		b.internal(w, "update", err)
		return
	}
	if err := b.checkQuota(ctx, in); err != nil {
		b.internal(w, "update", err)
		return
	}
	b.log.Info("updated", "instance", id, "plan", in.PlanID)
	reply(w, http.StatusOK, osb.UpdateResponse{})
}

// deprovision drops an instance's database, its bindings' roles and its
// owner role: 200, or 410 for an unknown instance.
func (b *Broker) deprovision(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	id := r.PathValue("instance_id")
	if !planRefQuery(w, r) {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	in, found, err := b.store.instance(ctx, id)
	if err != nil {
		b.internal(w, "deprovision", err)
		return
	}
	if !found {
		gone(w)
		return
	}
	bindings, err := b.store.bindings(ctx, id)
	if err != nil {
		b.internal(w, "deprovision", err)
		return
	}
	if err := b.dropInstance(ctx, in, bindings); err != nil {
		b.internal(w, "deprovision", err)
		return
	}
	if err := b.store.deleteInstance(ctx, id); err != nil {
		b.internal(w, "deprovision", err)
		return
	}
	b.log.Info("deprovisioned", "instance", id, "database", in.Database)
	reply(w, http.StatusOK, struct{}{})
}

// dropInstance drops an instance's database, its bindings' roles and its
// owner role, whichever exist.
func (b *Broker) dropInstance(ctx context.Context, in instance, bindings []binding) error {
	// WITH (FORCE) terminates the database's sessions first.
	if _, err := b.pool.Exec(ctx, `DROP DATABASE IF EXISTS `+ident(in.Database)+` WITH (FORCE)`); err != nil {
		return fmt.Errorf("dropping database %s: %w", in.Database, err)
	}
	for _, bd := range bindings {
		if err := b.dropRole(ctx, bd.Role); err != nil {
			return err
		}
	}
	return b.dropRole(ctx, in.Owner)
}

// dropRole ends a role's sessions and drops it.
func (b *Broker) dropRole(ctx context.Context, role string) error {
	if err := b.terminate(ctx, role); err != nil {
		return err
	}
	if _, err := b.pool.Exec(ctx, `DROP ROLE IF EXISTS `+ident(role)); err != nil {
		return fmt.Errorf("dropping role %s: %w", role, err)
	}
	return nil
}

// terminate ends the sessions of a role, waiting up to 5 s for each.
func (b *Broker) terminate(ctx context.Context, role string) error {
	_, err := b.pool.Exec(ctx, `SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity WHERE usename = $1`, role)
	if err != nil {
		return fmt.Errorf("ending the sessions of %s: %w", role, err)
	}
	return nil
}

// getInstance answers an instance with its plan, parameters and, in its
// metadata's attributes, its database, limits and current size.
func (b *Broker) getInstance(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	id := r.PathValue("instance_id")
	in, found, err := b.store.instance(ctx, id)
	if err != nil {
		b.internal(w, "fetch instance", err)
		return
	}
	if !found {
		fail(w, http.StatusNotFound, "NotFound", fmt.Sprintf("instance %s does not exist", id))
		return
	}
	size, err := b.size(ctx, in.Database)
	if err != nil {
		b.internal(w, "fetch instance", err)
		return
	}
	limits, _ := Limits(in.PlanID)
	reply(w, http.StatusOK, osb.Instance{
		ServiceID:  in.ServiceID,
		PlanID:     in.PlanID,
		Parameters: in.Parameters,
		Metadata: &osb.InstanceMetadata{Attributes: map[string]any{
			"database":         in.Database,
			"connection_limit": limits.Connections,
			"size_limit_bytes": limits.SizeBytes,
			"size_bytes":       size,
			"over_quota":       in.OverQuota,
		}},
	})
}

// size is pg_database_size of a database.
func (b *Broker) size(ctx context.Context, database string) (int64, error) {
	var size int64
	err := b.pool.QueryRow(ctx, `SELECT pg_database_size($1::text::name)`, database).Scan(&size)
	if err != nil {
		return 0, fmt.Errorf("measuring database %s: %w", database, err)
	}
	return size, nil
}

// lastOperation: every operation is synchronous, so an instance that exists
// has succeeded, and one that does not is gone (a deprovision succeeded).
func (b *Broker) lastOperation(w http.ResponseWriter, r *http.Request) {
	_, found, err := b.store.instance(r.Context(), r.PathValue("instance_id"))
	if err != nil {
		b.internal(w, "last operation", err)
		return
	}
	if !found {
		gone(w)
		return
	}
	reply(w, http.StatusOK, osb.LastOperation{State: osb.StateSucceeded})
}

// CheckQuotas compares every instance's size with its plan's quota: an
// instance over it loses CONNECT (its bindings can no longer open sessions;
// open ones are left alone), one back under it gets CONNECT again. Run
// calls it every Config.QuotaInterval.
func (b *Broker) CheckQuotas(ctx context.Context) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	ins, err := b.store.instances(ctx)
	if err != nil {
		return err
	}
	var errs []error
	for _, in := range ins {
		errs = append(errs, b.checkQuota(ctx, in))
	}
	return errors.Join(errs...)
}

// checkQuota enforces one instance's size quota; b.mu is held.
func (b *Broker) checkQuota(ctx context.Context, in instance) error {
	limits, ok := Limits(in.PlanID)
	if !ok {
		return fmt.Errorf("instance %s has plan %s, not in the catalog", in.ID, in.PlanID)
	}
	size, err := b.size(ctx, in.Database)
	if err != nil {
		return err
	}
	over := size > limits.SizeBytes
	if over == in.OverQuota {
		return nil
	}
	q := `GRANT CONNECT ON DATABASE ` + ident(in.Database) + ` TO ` + ident(in.Owner)
	if over {
		q = `REVOKE CONNECT ON DATABASE ` + ident(in.Database) + ` FROM ` + ident(in.Owner)
	}
	if _, err := b.pool.Exec(ctx, q); err != nil {
		return fmt.Errorf("enforcing the size quota of %s: %w", in.Database, err)
	}
	if err := b.store.setOverQuota(ctx, in.ID, over); err != nil {
		return err
	}
	if over {
		b.log.Warn("instance over its size quota: no new connections", "instance", in.ID, "size_bytes", size, "limit_bytes", limits.SizeBytes)
	} else {
		b.log.Info("instance back under its size quota", "instance", in.ID, "size_bytes", size, "limit_bytes", limits.SizeBytes)
	}
	return nil
}

// superConn opens a superuser session to one of the instances' databases.
func (b *Broker) superConn(ctx context.Context, database string) (*pgx.Conn, error) {
	cfg := b.pool.Config().ConnConfig.Copy()
	cfg.Database = database
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("connecting to database %s: %w", database, err)
	}
	return conn, nil
}
