package decide

import (
	"slices"
	"testing"

	"github.com/driftless/driftless/manifests"
)

func TestHTTP2Routes(t *testing.T) {
	m := manifests.Parse("m.yml", []byte(`applications:
- name: grpc
  routes:
  - {route: B.example.com/api/, protocol: http2}
  - {route: a.example.com, protocol: http2}
  - {route: web.example.com}
- name: legacy
  host: old
- name: none
  no-route: true
  routes:
  - {route: x.example.com, protocol: http2}
`), nil)
	tests := []struct {
		app  int
		want []string
	}{
		{0, []string{"a.example.com", "b.example.com/api"}},
		{1, nil},
	}
	for _, tc := range tests {
		app := m.Apps[tc.app]
		if got := HTTP2Routes(app, "apps.localhost"); !slices.Equal(got, tc.want) {
			t.Errorf("%s: http2 routes %q, want %q", app.Name, got, tc.want)
		}
		for _, r := range HTTP2Routes(app, "apps.localhost") {
			if !slices.Contains(Routes(app, "dev", "apps.localhost"), r) {
				t.Errorf("%s: http2 route %s is not one of its routes", app.Name, r)
			}
		}
	}
	if got := previewHTTP2Routes([]string{"a.example.com", "*.example.com"}, 7); len(got) != 1 {
		t.Errorf("preview http2 routes %q, want one (the wildcard stays production's)", got)
	}
}
