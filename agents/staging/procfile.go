package staging

import (
	"bufio"
	"os"
	"path/filepath"
	"strings"
)

// procfileWeb returns the `web:` command of the app's Procfile, "" when
// there is none.
func procfileWeb(dir string) string {
	f, err := os.Open(filepath.Join(dir, "Procfile"))
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if ok && strings.TrimSpace(k) == "web" {
			return strings.TrimSpace(v)
		}
	}
	return ""
}
