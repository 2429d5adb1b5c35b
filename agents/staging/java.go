package staging

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"strings"
)

// javaBuildpack runs Java apps on a JRE: Cloud Foundry's java-buildpack,
// for executable JARs (Spring Boot's layout included) and trees of
// classes. The app source is the JAR unpacked (a manifest's `path:
// target/app.jar`); the JRE is Debian's OpenJDK 17, a layer over the
// bookworm stack (LayerJRE); the start command is a launcher script that
// sizes the JVM's memory from the instance's limit (java_memory.go).
// Nothing compiles: the JAR is already built.
type javaBuildpack struct{}

// Name is "java".
func (javaBuildpack) Name() string { return "java" }

// Aliases are Cloud Foundry's names (its URL is matched by AnswersToURL).
func (javaBuildpack) Aliases() []string {
	return []string{"java_buildpack", "java_buildpack_offline"}
}

// Stacks is bookworm: the JRE layer is built over it.
func (javaBuildpack) Stacks() []string { return []string{StackBookworm} }

// javaBuildpackURL is Cloud Foundry's java-buildpack repository, as
// manifests name it (with or without .git, with a #version): the built-in
// buildpack answers to it, with a warning.
var javaBuildpackURL = regexp.MustCompile(`^https?://github\.com/cloudfoundry/java-buildpack(\.git)?/?(#.*)?$`)

// AnswersToURL reports whether the buildpack stands in for the buildpack at
// url.
func (javaBuildpack) AnswersToURL(url string) bool { return javaBuildpackURL.MatchString(url) }

// LayerJRE names the JRE layer plans ask for: <stacks>/bookworm-jre,
// built by `scripts/build-stack.sh --jre` over the bookworm stack.
const LayerJRE = "jre"

// The shapes of Java app the buildpack tells apart.
const (
	javaJar     = "executable JAR"
	javaBoot    = "Spring Boot JAR"
	javaClasses = "class tree"
	javaWar     = "web application (WEB-INF/)"
)

// javaApp is what detection found.
type javaApp struct {
	kind     string
	manifest map[string]string
}

// detectJava looks at the app folder: a META-INF/MANIFEST.MF with a
// Main-Class (Spring Boot when it has a Start-Class, a BOOT-INF/ folder
// or one of Spring Boot's loaders as Main-Class), else a WEB-INF/ folder,
// else any .class file.
func detectJava(dir string) (javaApp, string) {
	if data, err := os.ReadFile(filepath.Join(dir, "META-INF", "MANIFEST.MF")); err == nil {
		m := jarManifest(data)
		if m["Main-Class"] != "" {
			kind := javaJar
			if m["Start-Class"] != "" || isDir(filepath.Join(dir, "BOOT-INF")) ||
				strings.HasPrefix(m["Main-Class"], "org.springframework.boot.loader.") {
				kind = javaBoot
			}
			return javaApp{kind: kind, manifest: m}, ""
		}
	}
	if isDir(filepath.Join(dir, "WEB-INF")) {
		return javaApp{kind: javaWar}, ""
	}
	found := errors.New("found")
	err := filepath.WalkDir(dir, func(_ string, e fs.DirEntry, err error) error {
		if err == nil && !e.IsDir() && strings.HasSuffix(e.Name(), ".class") {
			return found
		}
		return err
	})
	if errors.Is(err, found) {
		return javaApp{kind: javaClasses}, ""
	}
	why := "no META-INF/MANIFEST.MF with a Main-Class, WEB-INF/ or .class file"
	if jars, _ := filepath.Glob(filepath.Join(dir, "*.jar")); len(jars) > 0 {
		why += fmt.Sprintf(" (the folder holds %s: name it as the manifest's path to run it)", filepath.Base(jars[0]))
	}
	return javaApp{}, why
}

func isDir(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.IsDir()
}

// Detect applies to an executable JAR, a web application (refused by
// Prepare, so that no other buildpack serves it) and a tree of classes.
func (javaBuildpack) Detect(dir string, _ Build) (bool, string) {
	app, why := detectJava(dir)
	return app.kind != "", why
}

// Prepare applies JBP_CONFIG_OPEN_JDK_JRE, finds the main class, counts
// the app's classes and writes the launcher (LauncherPath); the plan asks
// for the JRE layer and compiles nothing.
func (javaBuildpack) Prepare(dir string, b Build, _ Cell, out func(string)) (Plan, error) {
	cfg, err := parseJavaConfig(b.Env)
	if err != nil {
		return Plan{}, err
	}
	for _, n := range cfg.Notes {
		out("       note: " + n)
	}
	plan := Plan{Layers: []string{LayerJRE}}
	app, why := detectJava(dir)
	custom := strings.TrimSpace(b.Command) != ""
	var classPath []string
	var main string
	switch app.kind {
	case "":
		if !custom {
			return Plan{}, fmt.Errorf("java buildpack: %s; push an executable JAR (path: target/app.jar) or a tree of classes", why)
		}
	case javaWar:
		if !custom {
			return Plan{}, fmt.Errorf("java buildpack: this app is a web application archive (WEB-INF/) and needs a servlet container, " +
				"which driftless does not provide (its JRE layer has no Tomcat): package it as an executable JAR " +
				"(Spring Boot: bootJar or spring-boot:repackage; or a Main-Class that embeds its server) and push that")
		}
	case javaJar, javaBoot:
		main = app.manifest["Main-Class"]
		classPath = append([]string{"."}, manifestClassPath(dir, app.manifest["Class-Path"], out)...)
		if err := checkMainClass(dir, ".", main); err != nil {
			return Plan{}, err
		}
		out(fmt.Sprintf("       %s, Main-Class %s", app.kind, main))
		if app.kind == javaBoot {
			libs, _ := filepath.Glob(filepath.Join(dir, "BOOT-INF", "lib", "*.jar"))
			start := app.manifest["Start-Class"]
			out(fmt.Sprintf("       Start-Class %s, %d libraries in BOOT-INF/lib", start, len(libs)))
			if start != "" {
				if err := checkMainClass(dir, "BOOT-INF/classes", start); err != nil {
					out("       warning: " + err.Error())
				}
			}
		}
	case javaClasses:
		mains, roots, err := mainClasses(dir, 6)
		if err != nil {
			return Plan{}, err
		}
		switch {
		case len(mains) == 1:
			main, classPath = mains[0].Name, []string{roots[0]}
			if err := checkMainClass(dir, roots[0], main); err != nil {
				return Plan{}, err
			}
			out(fmt.Sprintf("       %s, main class %s (class path %s)", app.kind, main, roots[0]))
		case custom:
		case len(mains) == 0:
			return Plan{}, fmt.Errorf("java buildpack: no class declares public static void main(String[]) " +
				"(in a folder matching its package); add META-INF/MANIFEST.MF with a Main-Class, or a command")
		default:
			var names []string
			for _, m := range mains {
				names = append(names, m.Name)
			}
			return Plan{}, fmt.Errorf("java buildpack: several classes have a main method (%s); "+
				"name one as Main-Class in META-INF/MANIFEST.MF, or give a command", strings.Join(names, ", "))
		}
	}
	if main == "" {
		out("       the manifest's command starts the app (java from the JRE layer is on PATH); no memory calculation")
		return plan, nil
	}
	n, err := countClasses(dir)
	if err != nil {
		return Plan{}, err
	}
	loaded := loadedClasses(n, cfg)
	if cfg.ClassCount > 0 {
		out(fmt.Sprintf("       memory calculator: %d loaded classes (class_count) → metaspace %dM", loaded, metaspaceMB(loaded)))
	} else {
		out(fmt.Sprintf("       memory calculator: %d%% of %d app + %d JRE classes = %d loaded → metaspace %dM",
			classLoadPercent, n, JREClassCount, loaded, metaspaceMB(loaded)))
	}
	threads := "scaled with the limit"
	if cfg.StackThreads > 0 {
		threads = fmt.Sprintf("%d (stack_threads)", cfg.StackThreads)
	}
	out(fmt.Sprintf("       at start, from MEMORY_LIMIT: heap = limit − headroom %d%% − threads (%s) × 1M − code cache − metaspace − 10M direct; then $JAVA_OPTS",
		cfg.Headroom, threads))
	for _, limit := range []int64{256, 512, 1024} {
		p, err := calculateMemory(limit, loaded, int64(cfg.StackThreads), int64(cfg.Headroom))
		if err != nil {
			out(fmt.Sprintf("       %dM: too small (heap %dM, under %dM)", limit, p.HeapMB, minHeapMB))
			continue
		}
		out("       " + p.String())
	}
	launcher := filepath.Join(dir, filepath.FromSlash(LauncherPath))
	if err := os.MkdirAll(filepath.Dir(launcher), 0o755); err != nil {
		return Plan{}, fmt.Errorf("java buildpack: writing the launcher: %w", err)
	}
	script := javaLauncher(loaded, int64(cfg.StackThreads), int64(cfg.Headroom), strings.Join(classPath, ":"), main)
	if err := os.WriteFile(launcher, []byte(script), 0o755); err != nil {
		return Plan{}, fmt.Errorf("java buildpack: writing the launcher: %w", err)
	}
	plan.Start = "./" + LauncherPath
	return plan, nil
}

// checkMainClass checks that class is a class file under root (a class
// path entry of the app folder) that the JRE can run.
func checkMainClass(dir, root, class string) error {
	rel := path.Join(root, strings.ReplaceAll(class, ".", "/")+".class")
	data, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(rel)))
	if err != nil {
		return fmt.Errorf("java buildpack: the main class %s is not in the app (no %s): %w", class, rel, err)
	}
	c, err := readClass(data)
	if err != nil {
		return fmt.Errorf("java buildpack: %s: %w", rel, err)
	}
	if javaMajor(c.Major) > JREMajor {
		return fmt.Errorf("java buildpack: %s is compiled for Java %d (class file version %d) and the JRE is Java %d: compile with --release %d",
			class, javaMajor(c.Major), c.Major, JREMajor, JREMajor)
	}
	return nil
}

// manifestClassPath is the JAR manifest's Class-Path entries that are in
// the app folder (relative, space-separated); the others are noted.
func manifestClassPath(dir, attr string, out func(string)) []string {
	var cp []string
	for _, e := range strings.Fields(attr) {
		clean := path.Clean(e)
		if path.IsAbs(clean) || clean == ".." || strings.HasPrefix(clean, "../") || strings.Contains(clean, ":") {
			out("       note: Class-Path entry " + e + " is outside the app: left out")
			continue
		}
		if _, err := os.Stat(filepath.Join(dir, filepath.FromSlash(clean))); err != nil {
			out("       note: Class-Path entry " + e + " is not in the app: left out")
			continue
		}
		cp = append(cp, clean)
	}
	return cp
}
