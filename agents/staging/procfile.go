package staging

import (
	"bufio"
	"os"
	"path/filepath"
	"strings"

	"github.com/driftless/driftless/model"
)

// readProcfile returns the app's Procfile by process type ("web: ./serve"
// is {"web": "./serve"}); nil when there is none. Lines that are empty,
// comments, or whose type is not a valid process type are skipped, as
// Cloud Foundry's buildpacks skip them.
func readProcfile(dir string) map[string]string {
	f, err := os.Open(filepath.Join(dir, "Procfile"))
	if err != nil {
		return nil
	}
	defer f.Close()
	var out map[string]string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, ":")
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		if !ok || v == "" || !model.ProcessTypeRE.MatchString(k) {
			continue
		}
		if out == nil {
			out = make(map[string]string)
		}
		out[k] = v
	}
	return out
}
