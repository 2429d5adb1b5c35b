package postgres

import (
	"fmt"

	"github.com/driftless/driftless/brokers/osb"
)

// IDs of the broker's offering and plans in its catalog: fixed, so that a
// platform's records outlive a restart or an upgrade of the broker.
const (
	// ServiceID is the id of the "postgresql" offering.
	ServiceID = "driftless-postgresql"
	// PlanTiny is the id of the "tiny" plan, meant for previews.
	PlanTiny = "driftless-postgresql-tiny"
	// PlanSmall is the id of the "small" plan.
	PlanSmall = "driftless-postgresql-small"
	// PlanMedium is the id of the "medium" plan.
	PlanMedium = "driftless-postgresql-medium"
)

// PlanLimits are what a plan allows one instance.
type PlanLimits struct {
	// Connections is the database's CONNECTION LIMIT, shared by all of the
	// instance's bindings.
	Connections int
	// SizeBytes is the size quota, checked periodically (see
	// Broker.CheckQuotas): over it, the bindings may no longer connect.
	SizeBytes int64
}

// planSpec is a plan of the catalog with its limits.
type planSpec struct {
	id, name, description string
	limits                PlanLimits
}

const mb = 1 << 20

var plans = []planSpec{
	{PlanTiny, "tiny", "A database for previews: 2 connections, 20 MB", PlanLimits{Connections: 2, SizeBytes: 20 * mb}},
	{PlanSmall, "small", "A database with 5 connections and 100 MB", PlanLimits{Connections: 5, SizeBytes: 100 * mb}},
	{PlanMedium, "medium", "A database with 20 connections and 1 GB", PlanLimits{Connections: 20, SizeBytes: 1024 * mb}},
}

// Limits returns the limits of the plan with the given id.
func Limits(planID string) (PlanLimits, bool) {
	for _, p := range plans {
		if p.id == planID {
			return p.limits, true
		}
	}
	return PlanLimits{}, false
}

// Catalog is the broker's catalog: one offering, "postgresql", a database
// per instance on the broker's PostgreSQL server, with its plans. Each
// plan's limits are in its metadata (connection_limit, size_limit_bytes);
// its bindings are rotatable (binding_rotatable, OSB 2.17).
func Catalog() osb.Catalog {
	yes := true
	svc := osb.Service{
		ID:                   ServiceID,
		Name:                 "postgresql",
		Description:          "A PostgreSQL database on driftless's built-in server",
		Tags:                 []string{"postgresql", "relational"},
		Bindable:             true,
		PlanUpdateable:       true,
		InstancesRetrievable: true,
		BindingsRetrievable:  true,
		Metadata: map[string]any{
			"displayName":         "PostgreSQL",
			"providerDisplayName": "driftless",
		},
	}
	for _, p := range plans {
		svc.Plans = append(svc.Plans, osb.Plan{
			ID:               p.id,
			Name:             p.name,
			Description:      p.description,
			Free:             &yes,
			Bindable:         &yes,
			PlanUpdateable:   &yes,
			BindingRotatable: &yes,
			Metadata: map[string]any{
				"connection_limit": p.limits.Connections,
				"size_limit_bytes": p.limits.SizeBytes,
				"bullets": []string{
					fmt.Sprintf("%d connections", p.limits.Connections),
					fmt.Sprintf("%d MB", p.limits.SizeBytes/mb),
				},
				"binding_rotatable": true,
			},
		})
	}
	return osb.Catalog{Services: []osb.Service{svc}}
}
