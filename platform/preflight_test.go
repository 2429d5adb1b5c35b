package platform

import (
	"strings"
	"testing"
)

func TestPreflightNamesEverythingMissing(t *testing.T) {
	yes := func() bool { return true }
	no := func() bool { return false }
	tests := []struct {
		name  string
		needs []need
		want  []string
	}{
		{"all there", []need{{"root", yes, "run as root"}}, nil},
		{"two missing", []need{
			{"root", no, "run as root"},
			{"runc", yes, "apt-get install runc"},
			{"consul", no, "run `make setup`"},
		}, []string{"driftless cannot start; missing:", "  - root: run as root", "  - consul: run `make setup`"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := preflight(tt.needs)
			if tt.want == nil {
				if err != nil {
					t.Fatalf("unexpected error %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("no error")
			}
			if got := strings.Split(err.Error(), "\n"); strings.Join(got, "|") != strings.Join(tt.want, "|") {
				t.Fatalf("error:\n%s\nwant:\n%s", err, strings.Join(tt.want, "\n"))
			}
		})
	}
}

// TestCellNeedsOnThisHost checks the real probes against this host, which
// `make setup` prepared: every cell need is met.
func TestCellNeedsOnThisHost(t *testing.T) {
	if err := preflight(cellNeeds(nil)); err != nil {
		t.Fatalf("this host should run cells (make setup): %v", err)
	}
	if err := preflight(cellNeeds([]string{t.TempDir()})); err == nil || !strings.Contains(err.Error(), "CNI plugins") {
		t.Fatalf("an empty plugin folder should be reported: %v", err)
	}
}
