package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// The broker's records, in the schema driftless_broker of the database its
// DSN names ("postgres"). PUBLIC has no access to the schema.
var schemaSQL = []string{
	`CREATE SCHEMA IF NOT EXISTS driftless_broker`,
	`REVOKE ALL ON SCHEMA driftless_broker FROM PUBLIC`,
	`CREATE TABLE IF NOT EXISTS driftless_broker.instances (
		id          text PRIMARY KEY,
		service_id  text NOT NULL,
		plan_id     text NOT NULL,
		database    text NOT NULL UNIQUE,
		owner_role  text NOT NULL,
		parameters  jsonb,
		context     jsonb,
		over_quota  boolean NOT NULL DEFAULT false,
		created_at  timestamptz NOT NULL DEFAULT now(),
		updated_at  timestamptz NOT NULL DEFAULT now()
	)`,
	`CREATE TABLE IF NOT EXISTS driftless_broker.bindings (
		instance_id  text NOT NULL REFERENCES driftless_broker.instances(id),
		id           text NOT NULL,
		role         text NOT NULL UNIQUE,
		predecessor  text NOT NULL DEFAULT '',
		app_guid     text NOT NULL DEFAULT '',
		parameters   jsonb,
		created_at   timestamptz NOT NULL DEFAULT now(),
		PRIMARY KEY (instance_id, id)
	)`,
}

// instance is the record of a service instance.
type instance struct {
	ID, ServiceID, PlanID string
	Database, Owner       string
	Parameters, Context   map[string]any
	OverQuota             bool
}

// binding is the record of a binding: its role's name, never its password.
type binding struct {
	InstanceID, ID, Role string
	Predecessor, AppGUID string
	Parameters           map[string]any
}

// store reads and writes the records.
type store struct{ pool *pgxpool.Pool }

func (s store) migrate(ctx context.Context) error {
	for _, q := range schemaSQL {
		if _, err := s.pool.Exec(ctx, q); err != nil {
			return fmt.Errorf("creating the schema driftless_broker: %w", err)
		}
	}
	return nil
}

// jsonb encodes m for a jsonb column (nil for an empty map).
func jsonb(m map[string]any) ([]byte, error) {
	if len(m) == 0 {
		return nil, nil
	}
	b, err := json.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("encoding parameters: %w", err)
	}
	return b, nil
}

func fromJSONB(b []byte) (map[string]any, error) {
	if len(b) == 0 {
		return nil, nil
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("decoding parameters: %w", err)
	}
	return m, nil
}

// sameJSON says whether two JSON objects are equal, an empty one equal to
// none.
func sameJSON(a, b map[string]any) bool {
	norm := func(m map[string]any) any {
		if len(m) == 0 {
			return nil
		}
		raw, _ := json.Marshal(m)
		var v any
		_ = json.Unmarshal(raw, &v)
		return v
	}
	return reflect.DeepEqual(norm(a), norm(b))
}

const instanceColumns = `id, service_id, plan_id, database, owner_role, parameters, context, over_quota`

func scanInstance(row pgx.Row) (instance, error) {
	var in instance
	var params, ctxJSON []byte
	if err := row.Scan(&in.ID, &in.ServiceID, &in.PlanID, &in.Database, &in.Owner, &params, &ctxJSON, &in.OverQuota); err != nil {
		return instance{}, err
	}
	var err1, err2 error
	in.Parameters, err1 = fromJSONB(params)
	in.Context, err2 = fromJSONB(ctxJSON)
	return in, errors.Join(err1, err2)
}

// instance returns the record of an instance; found is false when there
// is none.
func (s store) instance(ctx context.Context, id string) (in instance, found bool, err error) {
	in, err = scanInstance(s.pool.QueryRow(ctx, `SELECT `+instanceColumns+` FROM driftless_broker.instances WHERE id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return instance{}, false, nil
	}
	if err != nil {
		return instance{}, false, fmt.Errorf("reading instance %s: %w", id, err)
	}
	return in, true, nil
}

// instances returns every instance's record.
func (s store) instances(ctx context.Context) ([]instance, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+instanceColumns+` FROM driftless_broker.instances ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("listing instances: %w", err)
	}
	defer rows.Close()
	var out []instance
	for rows.Next() {
		in, err := scanInstance(rows)
		if err != nil {
			return nil, fmt.Errorf("listing instances: %w", err)
		}
		out = append(out, in)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("listing instances: %w", err)
	}
	return out, nil
}

func (s store) putInstance(ctx context.Context, in instance) error {
	params, err := jsonb(in.Parameters)
	if err != nil {
		return err
	}
	cx, err := jsonb(in.Context)
	if err != nil {
		return err
	}
	_, err = s.pool.Exec(ctx, `INSERT INTO driftless_broker.instances (`+instanceColumns+`)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
		ON CONFLICT (id) DO UPDATE SET plan_id = $3, parameters = $6, context = $7, over_quota = $8, updated_at = now()`,
		in.ID, in.ServiceID, in.PlanID, in.Database, in.Owner, params, cx, in.OverQuota)
	if err != nil {
		return fmt.Errorf("recording instance %s: %w", in.ID, err)
	}
	return nil
}

func (s store) deleteInstance(ctx context.Context, id string) error {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("forgetting instance %s: %w", id, err)
	}
	defer func() { _ = tx.Rollback(ctx) }()
	if _, err := tx.Exec(ctx, `DELETE FROM driftless_broker.bindings WHERE instance_id = $1`, id); err != nil {
		return fmt.Errorf("forgetting the bindings of instance %s: %w", id, err)
	}
	if _, err := tx.Exec(ctx, `DELETE FROM driftless_broker.instances WHERE id = $1`, id); err != nil {
		return fmt.Errorf("forgetting instance %s: %w", id, err)
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("forgetting instance %s: %w", id, err)
	}
	return nil
}

const bindingColumns = `instance_id, id, role, predecessor, app_guid, parameters`

func scanBinding(row pgx.Row) (binding, error) {
	var bd binding
	var params []byte
	if err := row.Scan(&bd.InstanceID, &bd.ID, &bd.Role, &bd.Predecessor, &bd.AppGUID, &params); err != nil {
		return binding{}, err
	}
	var err error
	bd.Parameters, err = fromJSONB(params)
	return bd, err
}

// binding returns the record of a binding of an instance; found is false
// when there is none.
func (s store) binding(ctx context.Context, instanceID, id string) (bd binding, found bool, err error) {
	bd, err = scanBinding(s.pool.QueryRow(ctx, `SELECT `+bindingColumns+` FROM driftless_broker.bindings
		WHERE instance_id = $1 AND id = $2`, instanceID, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return binding{}, false, nil
	}
	if err != nil {
		return binding{}, false, fmt.Errorf("reading binding %s of instance %s: %w", id, instanceID, err)
	}
	return bd, true, nil
}

// bindings returns the records of an instance's bindings.
func (s store) bindings(ctx context.Context, instanceID string) ([]binding, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+bindingColumns+` FROM driftless_broker.bindings
		WHERE instance_id = $1 ORDER BY id`, instanceID)
	if err != nil {
		return nil, fmt.Errorf("listing the bindings of instance %s: %w", instanceID, err)
	}
	defer rows.Close()
	var out []binding
	for rows.Next() {
		bd, err := scanBinding(rows)
		if err != nil {
			return nil, fmt.Errorf("listing the bindings of instance %s: %w", instanceID, err)
		}
		out = append(out, bd)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("listing the bindings of instance %s: %w", instanceID, err)
	}
	return out, nil
}

func (s store) putBinding(ctx context.Context, bd binding) error {
	params, err := jsonb(bd.Parameters)
	if err != nil {
		return err
	}
	_, err = s.pool.Exec(ctx, `INSERT INTO driftless_broker.bindings (`+bindingColumns+`)
		VALUES ($1, $2, $3, $4, $5, $6)`, bd.InstanceID, bd.ID, bd.Role, bd.Predecessor, bd.AppGUID, params)
	if err != nil {
		return fmt.Errorf("recording binding %s of instance %s: %w", bd.ID, bd.InstanceID, err)
	}
	return nil
}

func (s store) deleteBinding(ctx context.Context, instanceID, id string) error {
	_, err := s.pool.Exec(ctx, `DELETE FROM driftless_broker.bindings WHERE instance_id = $1 AND id = $2`, instanceID, id)
	if err != nil {
		return fmt.Errorf("forgetting binding %s of instance %s: %w", id, instanceID, err)
	}
	return nil
}

// setOverQuota records whether an instance is over its size quota.
func (s store) setOverQuota(ctx context.Context, id string, over bool) error {
	_, err := s.pool.Exec(ctx, `UPDATE driftless_broker.instances SET over_quota = $2, updated_at = now() WHERE id = $1`, id, over)
	if err != nil {
		return fmt.Errorf("recording the quota state of instance %s: %w", id, err)
	}
	return nil
}
