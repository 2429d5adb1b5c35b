package policies

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/driftless/driftless/model"
)

// PreviewBudget is what quotas.yml's `previews:` allows pull-request
// previews. The rules of the built-in bundle (bundle/previews.rego) deny
// a preview over PerSource or Memory; the controller applies Instances and
// TTL itself.
type PreviewBudget struct {
	// PerSource is how many previews of one source may be deployed at
	// once (0: no limit); the pull request over it is refused.
	PerSource int
	// MemoryMB is the most memory one preview may use over its apps
	// (instances × memory; 0: no limit).
	MemoryMB int64
	// Instances is how many instances each app of a preview runs at most
	// (default 1).
	Instances int
	// TTL is how long a preview may go without a new commit or event of
	// its pull request before it is removed (default DefaultPreviewTTL).
	TTL time.Duration
}

// DefaultPreviewTTL is how long an idle preview is kept when quotas.yml
// does not say.
const DefaultPreviewTTL = 72 * time.Hour

// previewKeys are the keys of quotas.yml's `previews:`.
var previewKeys = []string{"instances", "memory", "per_source", "ttl"}

// normPreviews checks quotas.yml's `previews:` and gives it to the
// policies with memory in MB and ttl in seconds (ttl_seconds).
func normPreviews(raw map[string]any, norm func(string, map[string]any) map[string]any, problems *[]model.Problem) map[string]any {
	bad := func(format string, args ...any) {
		*problems = append(*problems, model.Problem{Position: model.Position{File: QuotasFile}, Message: "previews." + fmt.Sprintf(format, args...)})
	}
	out := norm("previews", raw)
	for _, k := range slices.Sorted(maps.Keys(raw)) {
		v, ok := out[k]
		if !ok {
			continue // a bad size, said by norm
		}
		switch k {
		case "memory":
		case "per_source", "instances":
			n, ok := v.(int)
			if !ok || n < 0 || k == "instances" && n == 0 {
				bad("%s: %v is not a whole number of at least %d", k, v, map[string]int{"per_source": 0, "instances": 1}[k])
				delete(out, k)
			}
		case "ttl":
			d, err := model.ParseDuration(fmt.Sprint(v))
			if err != nil {
				bad("ttl: %v", err)
				delete(out, k)
				continue
			}
			out[k] = fmt.Sprint(v)
			out["ttl_seconds"] = int64(d / time.Second)
		default:
			bad("%s: unknown key (the keys are %s)", k, strings.Join(previewKeys, ", "))
			delete(out, k)
		}
	}
	return out
}

// previewBudget reads the budget back from the data normPreviews made.
func previewBudget(data map[string]any) PreviewBudget {
	b := PreviewBudget{Instances: 1, TTL: DefaultPreviewTTL}
	q, _ := data["quotas"].(map[string]any)
	p, _ := q["previews"].(map[string]any)
	num := func(k string) (float64, bool) { f, ok := p[k].(float64); return f, ok }
	if n, ok := num("per_source"); ok {
		b.PerSource = int(n)
	}
	if n, ok := num("memory"); ok {
		b.MemoryMB = int64(n)
	}
	if n, ok := num("instances"); ok && n >= 1 {
		b.Instances = int(n)
	}
	if n, ok := num("ttl_seconds"); ok && n > 0 {
		b.TTL = time.Duration(n) * time.Second
	}
	return b
}

// String describes the budget as quotas.yml would set it.
func (b PreviewBudget) String() string {
	var parts []string
	if b.PerSource > 0 {
		parts = append(parts, fmt.Sprintf("per_source: %d", b.PerSource))
	}
	if b.MemoryMB > 0 {
		parts = append(parts, fmt.Sprintf("memory: %dM", b.MemoryMB))
	}
	parts = append(parts, fmt.Sprintf("instances: %d", b.Instances), "ttl: "+b.TTL.String())
	return strings.Join(slices.Clip(parts), ", ")
}
