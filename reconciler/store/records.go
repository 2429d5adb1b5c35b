package store

import (
	"context"
	"encoding/json"
	"fmt"
)

// loadRecords reads every JSON record under prefix (what names them in
// errors) into a map by key; unreadable ones are skipped and returned as
// warnings.
func loadRecords[K comparable, V any](ctx context.Context, kv KV, prefix, what string, key func(V) K) (map[K]V, []error, error) {
	data, err := kv.List(ctx, prefix)
	if err != nil {
		return nil, nil, fmt.Errorf("loading the %s: %w", what, err)
	}
	var warnings []error
	out := make(map[K]V, len(data))
	for k, raw := range data {
		var v V
		if err := json.Unmarshal(raw, &v); err != nil {
			warnings = append(warnings, fmt.Errorf("ignoring an unreadable record of the %s, %s: %w", what, k, err))
			continue
		}
		out[key(v)] = v
	}
	return out, warnings, nil
}
