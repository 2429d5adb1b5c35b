package staging

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// JREMajor is the Java release of the JRE layer (Debian's
// openjdk-17-jre-headless).
const JREMajor = 17

// javaConfigEnv is the one JBP_CONFIG_* variable the java buildpack
// applies: the OpenJDK JRE's configuration, as Cloud Foundry's
// java-buildpack reads it.
const javaConfigEnv = "JBP_CONFIG_OPEN_JDK_JRE"

// javaConfig is what JBP_CONFIG_OPEN_JDK_JRE sets that driftless applies:
// zero values mean the calculator's defaults.
type javaConfig struct {
	// StackThreads is memory_calculator.stack_threads.
	StackThreads int
	// ClassCount is memory_calculator.class_count: the classes the app
	// loads, instead of the estimate.
	ClassCount int
	// Headroom is memory_calculator.headroom, a percentage of the limit
	// left to the JVM's own overhead.
	Headroom int
	// Notes are what the staging log says about the configuration: keys
	// not applied, a JRE version answered with 17.
	Notes []string
}

// parseJavaConfig reads the JBP_CONFIG_* variables of the app's
// environment: JBP_CONFIG_OPEN_JDK_JRE (YAML, usually flow style, e.g.
// `{ jre: { version: 17.+ }, memory_calculator: { stack_threads: 25 } }`,
// or a sequence of such maps) is applied where it maps onto driftless;
// every other JBP_CONFIG_* variable is noted as not applied. A JRE version
// newer than 17 is an error (the app's classes may need it); an older one
// is a note (17 runs classes compiled for older releases).
func parseJavaConfig(env map[string]string) (javaConfig, error) {
	var cfg javaConfig
	for _, k := range sortedKeys(env) {
		if strings.HasPrefix(k, "JBP_CONFIG_") && k != javaConfigEnv {
			cfg.Notes = append(cfg.Notes, k+" is not applied: the built-in java buildpack reads only "+javaConfigEnv)
		}
	}
	raw, ok := env[javaConfigEnv]
	if !ok || strings.TrimSpace(raw) == "" {
		return cfg, nil
	}
	var doc any
	if err := yaml.Unmarshal([]byte(raw), &doc); err != nil {
		return cfg, fmt.Errorf("java buildpack: %s is not YAML: %w", javaConfigEnv, err)
	}
	top, err := configMap(doc)
	if err != nil {
		return cfg, fmt.Errorf("java buildpack: %s: %w", javaConfigEnv, err)
	}
	for _, k := range sortedKeys(top) {
		v := top[k]
		switch k {
		case "jre":
			if err := cfg.jre(v); err != nil {
				return cfg, err
			}
		case "memory_calculator":
			if err := cfg.calculator(v); err != nil {
				return cfg, err
			}
		default:
			cfg.Notes = append(cfg.Notes, fmt.Sprintf("%s: %s is not applied", javaConfigEnv, k))
		}
	}
	return cfg, nil
}

// jre applies the jre: section: only its version means something here.
func (c *javaConfig) jre(v any) error {
	m, err := configMap(v)
	if err != nil {
		return fmt.Errorf("java buildpack: %s jre: %w", javaConfigEnv, err)
	}
	for _, k := range sortedKeys(m) {
		if k != "version" {
			c.Notes = append(c.Notes, fmt.Sprintf("%s: jre.%s is not applied", javaConfigEnv, k))
			continue
		}
		version := fmt.Sprint(m[k])
		digits := version
		if i := strings.IndexFunc(version, func(r rune) bool { return r < '0' || r > '9' }); i >= 0 {
			digits = version[:i]
		}
		major, err := strconv.Atoi(digits)
		if err != nil {
			return fmt.Errorf("java buildpack: %s jre.version %q: want a major version such as 17.+", javaConfigEnv, version)
		}
		if major == 1 { // 1.8.0_+ is Java 8
			if rest, ok := strings.CutPrefix(version, "1."); ok {
				major, _ = strconv.Atoi(strings.SplitN(rest, ".", 2)[0])
			}
		}
		switch {
		case major > JREMajor:
			return fmt.Errorf("java buildpack: %s asks for JRE %s; this platform has Java %d only (Debian's openjdk-%d-jre-headless): "+
				"compile the app for %d (javac --release %d) and set jre.version to %d.+",
				javaConfigEnv, version, JREMajor, JREMajor, JREMajor, JREMajor, JREMajor)
		case major < JREMajor:
			c.Notes = append(c.Notes, fmt.Sprintf("%s asks for JRE %s: the app runs on Java %d, the only JRE here (it runs classes compiled for older releases)",
				javaConfigEnv, version, JREMajor))
		}
	}
	return nil
}

// calculator applies the memory_calculator: section.
func (c *javaConfig) calculator(v any) error {
	m, err := configMap(v)
	if err != nil {
		return fmt.Errorf("java buildpack: %s memory_calculator: %w", javaConfigEnv, err)
	}
	for _, k := range sortedKeys(m) {
		var dst *int
		lo, hi := 1, 100000
		switch k {
		case "stack_threads":
			dst, hi = &c.StackThreads, 10000
		case "class_count":
			dst, hi = &c.ClassCount, 1000000
		case "headroom":
			dst, lo, hi = &c.Headroom, 0, 50
		default:
			c.Notes = append(c.Notes, fmt.Sprintf("%s: memory_calculator.%s is not applied", javaConfigEnv, k))
			continue
		}
		n, err := strconv.Atoi(strings.TrimSuffix(fmt.Sprint(m[k]), "%"))
		if err != nil || n < lo || n > hi {
			return fmt.Errorf("java buildpack: %s memory_calculator.%s is %v: want a whole number from %d to %d",
				javaConfigEnv, k, m[k], lo, hi)
		}
		*dst = n
	}
	return nil
}

// configMap is a YAML mapping, or a sequence of mappings merged (Cloud
// Foundry's documentation writes both `{a: …}` and `[a: …]`).
func configMap(v any) (map[string]any, error) {
	switch t := v.(type) {
	case map[string]any:
		return t, nil
	case []any:
		out := map[string]any{}
		for _, e := range t {
			m, ok := e.(map[string]any)
			if !ok {
				return nil, fmt.Errorf("want a mapping, found %v", e)
			}
			for k, v := range m {
				out[k] = v
			}
		}
		return out, nil
	case nil:
		return map[string]any{}, nil
	default:
		return nil, fmt.Errorf("want a mapping, found %v", v)
	}
}

// sortedKeys are a map's keys in order, for a stable log.
func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
