package e2e

import (
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestValidate runs `driftless validate` on good and bad trees: errors are
// printed with file:line:col and make it exit 1; warnings do not.
func TestValidate(t *testing.T) {
	tests := []struct {
		name     string
		files    map[string]string
		code     int
		contains []string
	}{
		{"examples", nil, 0, []string{"8 app(s), 0 warning(s): ok"}},
		{"warnings only", map[string]string{"a/manifest.yml": "applications:\n- name: a\n  lifecycle: buildpack\n"}, 0,
			[]string{"a/manifest.yml:3:3: warning: attribute \"lifecycle\" is not supported", "1 app(s), 1 warning(s): ok"}},
		{"errors", map[string]string{
			"a/manifest.yml": "applications:\n- name: a\n  instances: many\n",
			"b/manifest.yml": "applications:\n- name: ((who))\n  memory: 12\n",
		}, 1, []string{
			"a/manifest.yml:3:14: error: instances must be a whole number, not a string",
			"b/manifest.yml:2:9: error: variable ((who)) has no value",
			"b/manifest.yml:3:11: error: memory: size \"12\" needs a unit",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := filepath.Join("..", "examples")
			if tt.files != nil {
				dir = t.TempDir()
				for name, content := range tt.files {
					p := filepath.Join(dir, name)
					if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
						t.Fatal(err)
					}
					if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
						t.Fatal(err)
					}
				}
			}
			out, err := exec.Command(driftlessBin, "validate", dir).CombinedOutput()
			code := 0
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				code = ee.ExitCode()
			} else if err != nil {
				t.Fatal(err)
			}
			if code != tt.code {
				t.Errorf("exit code %d, want %d\n%s", code, tt.code, out)
			}
			for _, want := range tt.contains {
				if !strings.Contains(string(out), want) {
					t.Errorf("output lacks %q:\n%s", want, out)
				}
			}
			if tt.code == 1 {
				out, _ := exec.Command(driftlessBin, "validate", "--json", dir).Output()
				var res struct {
					Diagnostics []struct {
						File, Severity, Message string
						Line, Column            int
					}
				}
				if err := json.Unmarshal(out, &res); err != nil || len(res.Diagnostics) != len(tt.contains) || res.Diagnostics[0].Line != 3 {
					t.Errorf("validate --json = %s (%v)", out, err)
				}
			}
		})
	}
}
