package staging

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

func TestReadProcfile(t *testing.T) {
	tests := []struct {
		name, text string
		want       map[string]string
	}{
		{"web and worker", "web: ./serve --port $PORT\nworker: ./work\n", map[string]string{"web": "./serve --port $PORT", "worker": "./work"}},
		{"comments, blanks and bad lines skipped", "# procs\n\nweb: ./serve\nBad Type: x\nnocolon\nclock:\n", map[string]string{"web": "./serve"}},
		{"a command may hold colons", "web: ./serve --addr :8080\n", map[string]string{"web": "./serve --addr :8080"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, "Procfile"), []byte(tt.text), 0o644); err != nil {
				t.Fatal(err)
			}
			if got := readProcfile(dir); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("readProcfile = %v, want %v", got, tt.want)
			}
		})
	}
	if got := readProcfile(t.TempDir()); got != nil {
		t.Errorf("no Procfile: %v, want nil", got)
	}
}
