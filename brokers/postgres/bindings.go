package postgres

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strconv"

	"github.com/driftless/driftless/brokers/osb"
)

// bind makes a binding's LOGIN role: 201 with its credentials, 200 with a
// new password when it exists alike (a retried bind), 409 when it exists
// otherwise, 404 for an unknown instance, 400 for an unknown predecessor.
func (b *Broker) bind(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	id, bid := r.PathValue("instance_id"), r.PathValue("binding_id")
	var req osb.BindRequest
	if !decode(w, r, &req) {
		return
	}
	if req.ServiceID != ServiceID {
		fail(w, http.StatusBadRequest, "BadRequest", fmt.Sprintf("unknown service_id %q", req.ServiceID))
		return
	}
	appGUID := req.AppGUID
	if req.BindResource != nil && req.BindResource.AppGUID != "" {
		appGUID = req.BindResource.AppGUID
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	in, found, err := b.store.instance(ctx, id)
	if err != nil {
		b.internal(w, "bind", err)
		return
	}
	if !found {
		fail(w, http.StatusNotFound, "NotFound", fmt.Sprintf("instance %s does not exist", id))
		return
	}
	old, found, err := b.store.binding(ctx, id, bid)
	if err != nil {
		b.internal(w, "bind", err)
		return
	}
	if found {
		if old.AppGUID != appGUID || old.Predecessor != req.PredecessorBindingID || !sameJSON(old.Parameters, req.Parameters) {
			fail(w, http.StatusConflict, "Conflict", fmt.Sprintf("binding %s exists with other attributes", bid))
			return
		}
		creds, err := b.setPassword(ctx, in, old.Role)
		if err != nil {
			b.internal(w, "bind", err)
			return
		}
		b.log.Info("bound again: new password", "instance", id, "binding", bid, "role", old.Role)
		reply(w, http.StatusOK, osb.Binding{Credentials: creds})
		return
	}
	if p := req.PredecessorBindingID; p != "" {
		if _, ok, err := b.store.binding(ctx, id, p); err != nil || !ok {
			if err != nil {
				b.internal(w, "bind", err)
				return
			}
			fail(w, http.StatusBadRequest, "BadRequest", fmt.Sprintf("predecessor binding %s of instance %s does not exist", p, id))
			return
		}
	}
	bd := binding{InstanceID: id, ID: bid, Role: bindingRole(id, bid), Predecessor: req.PredecessorBindingID,
		AppGUID: appGUID, Parameters: req.Parameters}
	var creds osb.Credentials
	err = b.createRole(ctx, in, bd.Role)
	if err == nil {
		creds, err = b.setPassword(ctx, in, bd.Role)
	}
	if err == nil {
		err = b.store.putBinding(ctx, bd)
	}
	if err != nil {
		// Undo what was made: the platform's orphan mitigation would find
		// no record of it and answer 410.
		if derr := b.dropRole(context.WithoutCancel(ctx), bd.Role); derr != nil {
			b.log.Warn("undoing a failed bind", "instance", id, "binding", bid, "err", derr)
		}
		b.internal(w, "bind", err)
		return
	}
	b.log.Info("bound", "instance", id, "binding", bid, "role", bd.Role, "predecessor", bd.Predecessor)
	reply(w, http.StatusCreated, osb.Binding{Credentials: creds})
}

// createRole makes a binding's role, unless a previous attempt did: LOGIN,
// member of the instance's owner role (so it reaches that database and
// what is in it, and nothing else), its sessions acting as the owner.
func (b *Broker) createRole(ctx context.Context, in instance, role string) error {
	var exists bool
	err := b.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1)`, role).Scan(&exists)
	if err != nil {
		return fmt.Errorf("looking up role %s: %w", role, err)
	}
	var stmts []string
	if !exists {
		stmts = append(stmts, `CREATE ROLE `+ident(role)+` LOGIN`)
	}
	// Membership (with INHERIT, the default) makes the owner's CONNECT and
	// objects the binding's; SET role makes what the binding creates the
	// owner's, so a successor binding reaches it too.
	stmts = append(stmts, `GRANT `+ident(in.Owner)+` TO `+ident(role),
		`ALTER ROLE `+ident(role)+` LOGIN INHERIT`,
		`ALTER ROLE `+ident(role)+` SET role TO `+literal(in.Owner))
	for _, q := range stmts {
		if _, err := b.pool.Exec(ctx, q); err != nil {
			return fmt.Errorf("making role %s of %s: %w", role, in.Database, err)
		}
	}
	return nil
}

// setPassword gives role a new random password, sent as a SCRAM verifier,
// and returns the credentials an app uses. The error never holds the
// password.
func (b *Broker) setPassword(ctx context.Context, in instance, role string) (osb.Credentials, error) {
	password, err := newPassword()
	if err != nil {
		return nil, err
	}
	verifier, err := scramVerifier(password)
	if err != nil {
		return nil, err
	}
	if _, err := b.pool.Exec(ctx, `ALTER ROLE `+ident(role)+` PASSWORD `+literal(verifier)); err != nil {
		return nil, fmt.Errorf("setting the password of role %s: %w", role, err)
	}
	return b.credentials(in.Database, role, password), nil
}

// credentials are what an app needs to reach database as role; password
// empty leaves out the password and the URLs that carry it.
func (b *Broker) credentials(database, role, password string) osb.Credentials {
	hostPort := net.JoinHostPort(b.host, strconv.Itoa(b.port))
	c := osb.Credentials{
		"host":     b.host,
		"port":     b.port,
		"name":     database,
		"database": database,
		"username": role,
	}
	if password == "" {
		return c
	}
	c["password"] = password
	c["uri"] = (&url.URL{Scheme: "postgres", User: url.UserPassword(role, password), Host: hostPort,
		Path: "/" + database, RawQuery: "sslmode=disable"}).String()
	q := url.Values{"user": {role}, "password": {password}, "sslmode": {"disable"}}
	c["jdbcUrl"] = "jdbc:postgresql://" + hostPort + "/" + database + "?" + q.Encode()
	return c
}

// unbind ends a binding's sessions and drops its role, after handing what
// it owns to the instance's owner: 200, or 410 for an unknown binding.
func (b *Broker) unbind(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	id, bid := r.PathValue("instance_id"), r.PathValue("binding_id")
	if !planRefQuery(w, r) {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	in, found, err := b.store.instance(ctx, id)
	if err != nil {
		b.internal(w, "unbind", err)
		return
	}
	if !found {
		gone(w)
		return
	}
	bd, found, err := b.store.binding(ctx, id, bid)
	if err != nil {
		b.internal(w, "unbind", err)
		return
	}
	if !found {
		gone(w)
		return
	}
	if err := b.dropBindingRole(ctx, in, bd.Role); err != nil {
		b.internal(w, "unbind", err)
		return
	}
	if err := b.store.deleteBinding(ctx, id, bid); err != nil {
		b.internal(w, "unbind", err)
		return
	}
	b.log.Info("unbound", "instance", id, "binding", bid, "role", bd.Role)
	reply(w, http.StatusOK, struct{}{})
}

// dropBindingRole ends the role's sessions, gives what it owns in the
// instance's database to the owner role, and drops it.
func (b *Broker) dropBindingRole(ctx context.Context, in instance, role string) error {
	var exists bool
	err := b.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1)`, role).Scan(&exists)
	if err != nil {
		return fmt.Errorf("looking up role %s: %w", role, err)
	}
	if !exists {
		return nil
	}
	if _, err := b.pool.Exec(ctx, `ALTER ROLE `+ident(role)+` NOLOGIN`); err != nil {
		return fmt.Errorf("closing role %s: %w", role, err)
	}
	if err := b.terminate(ctx, role); err != nil {
		return err
	}
	conn, err := b.superConn(ctx, in.Database)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	for _, q := range []string{
		`REASSIGN OWNED BY ` + ident(role) + ` TO ` + ident(in.Owner),
		`DROP OWNED BY ` + ident(role),
		`DROP ROLE ` + ident(role),
	} {
		if _, err := conn.Exec(ctx, q); err != nil {
			return fmt.Errorf("dropping role %s of %s: %w", role, in.Database, err)
		}
	}
	return nil
}

// getBinding answers a binding's credentials without its password (never
// stored), and its parameters: 404 for an unknown instance or binding.
func (b *Broker) getBinding(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	id, bid := r.PathValue("instance_id"), r.PathValue("binding_id")
	in, found, err := b.store.instance(ctx, id)
	if err != nil {
		b.internal(w, "fetch binding", err)
		return
	}
	if !found {
		fail(w, http.StatusNotFound, "NotFound", fmt.Sprintf("instance %s does not exist", id))
		return
	}
	bd, found, err := b.store.binding(ctx, id, bid)
	if err != nil {
		b.internal(w, "fetch binding", err)
		return
	}
	if !found {
		fail(w, http.StatusNotFound, "NotFound", fmt.Sprintf("binding %s of instance %s does not exist", bid, id))
		return
	}
	reply(w, http.StatusOK, osb.Binding{Credentials: b.credentials(in.Database, bd.Role, ""), Parameters: bd.Parameters})
}

// bindingLastOperation: bindings are made synchronously, so one that exists
// has succeeded, and one that does not is gone (an unbind succeeded).
func (b *Broker) bindingLastOperation(w http.ResponseWriter, r *http.Request) {
	_, found, err := b.store.binding(r.Context(), r.PathValue("instance_id"), r.PathValue("binding_id"))
	if err != nil {
		b.internal(w, "binding last operation", err)
		return
	}
	if !found {
		gone(w)
		return
	}
	reply(w, http.StatusOK, osb.LastOperation{State: osb.StateSucceeded})
}
