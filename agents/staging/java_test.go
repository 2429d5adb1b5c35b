package staging

import (
	"bytes"
	"encoding/binary"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// classFile builds a minimal class file: a class name, a class file
// version, a main method (public static, or an instance method named main
// when main is false), and a Long constant (two pool slots) on the way.
func classFile(name string, major uint16, main bool) []byte {
	var b bytes.Buffer
	w := func(v any) { _ = binary.Write(&b, binary.BigEndian, v) }
	utf8 := func(s string) { w(uint8(1)); w(uint16(len(s))); b.WriteString(s) }
	w(uint32(0xCAFEBABE))
	w(uint16(0))
	w(major)
	w(uint16(9)) // entries 1..8, the Long taking 7 and 8
	utf8(strings.ReplaceAll(name, ".", "/"))
	w(uint8(7))
	w(uint16(1))
	utf8("java/lang/Object")
	w(uint8(7))
	w(uint16(3))
	utf8("main")
	utf8("([Ljava/lang/String;)V")
	w(uint8(5))
	w(uint64(42))
	w(uint16(0x21)) // public super
	w(uint16(2))
	w(uint16(4))
	w(uint16(0)) // interfaces
	w(uint16(0)) // fields
	w(uint16(1)) // methods
	flags := uint16(0x0001)
	if main {
		flags |= 0x0008
	}
	w(flags)
	w(uint16(5))
	w(uint16(6))
	w(uint16(1)) // one attribute, skipped
	w(uint16(5))
	w(uint32(3))
	b.WriteString("xyz")
	w(uint16(0)) // class attributes
	return b.Bytes()
}

const java17 = 61

func TestReadClass(t *testing.T) {
	c, err := readClass(classFile("com.example.Main", java17, true))
	if err != nil || c.Name != "com.example.Main" || c.Major != java17 || !c.Main {
		t.Fatalf("readClass = %+v, %v", c, err)
	}
	c, err = readClass(classFile("Lib", 52, false))
	if err != nil || c.Main || javaMajor(c.Major) != 8 {
		t.Fatalf("readClass = %+v, %v", c, err)
	}
	for _, bad := range [][]byte{nil, []byte("PK\x03\x04"), classFile("X", java17, true)[:40]} {
		if _, err := readClass(bad); err == nil {
			t.Errorf("readClass(%q) accepted", bad)
		}
	}
}

func TestJavaDetection(t *testing.T) {
	main := string(classFile("com.example.Main", java17, true))
	tests := []struct {
		name  string
		files map[string]string
		want  string // the buildpack chosen
		kind  string // what java saw
	}{
		{"executable jar", map[string]string{"META-INF/MANIFEST.MF": "Manifest-Version: 1.0\r\nMain-Class: com.example.Main\r\n\r\n",
			"com/example/Main.class": main}, "java", javaJar},
		{"spring boot layout", map[string]string{
			"META-INF/MANIFEST.MF": "Manifest-Version: 1.0\nMain-Class: org.springframework.boot.loader.launch.JarLauncher\nStart-Class: com.example.Main\n",
			"org/springframework/boot/loader/launch/JarLauncher.class": string(classFile("org.springframework.boot.loader.launch.JarLauncher", java17, true)),
			"BOOT-INF/classes/com/example/Main.class":                  main, "BOOT-INF/lib/x.jar": "not a zip"}, "java", javaBoot},
		{"class tree", map[string]string{"com/example/Main.class": main}, "java", javaClasses},
		{"war", map[string]string{"WEB-INF/web.xml": "<web-app/>", "index.html": "<h1>hi</h1>"}, "java", javaWar},
		{"manifest without Main-Class is not a jar to run", map[string]string{"META-INF/MANIFEST.MF": "Manifest-Version: 1.0\n", "index.html": ""}, "static", ""},
		{"python", map[string]string{"app.py": "print(1)"}, "python", ""},
		{"static", map[string]string{"index.html": ""}, "static", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := tree(t, tt.files)
			bp, err := choose(nil, dir, Build{})
			if err != nil {
				t.Fatal(err)
			}
			if bp.Name() != tt.want {
				t.Fatalf("detected %s, want %s", bp.Name(), tt.want)
			}
			if app, why := detectJava(dir); app.kind != tt.kind {
				t.Fatalf("java saw %q (%s), want %q", app.kind, why, tt.kind)
			}
		})
	}
	_, err := choose(nil, tree(t, map[string]string{"README": "", "app.jar": "PK"}), Build{})
	if err == nil || !strings.Contains(err.Error(), "java: no META-INF/MANIFEST.MF with a Main-Class") || !strings.Contains(err.Error(), "app.jar") {
		t.Fatalf("no java app: %v", err)
	}
}

func TestJavaNames(t *testing.T) {
	for _, name := range []string{"java", "java_buildpack", "java_buildpack_offline",
		"https://github.com/cloudfoundry/java-buildpack", "https://github.com/cloudfoundry/java-buildpack.git",
		"https://github.com/cloudfoundry/java-buildpack.git#v4.77.0", "https://github.com/cloudfoundry/java-buildpack#v4.50"} {
		bp, err := lookup(name)
		if err != nil || bp.Name() != "java" {
			t.Errorf("lookup(%s) = %v, %v", name, bp, err)
		}
	}
	for _, name := range []string{"https://github.com/cloudfoundry/java-buildpack-fork", "https://example.com/cloudfoundry/java-buildpack"} {
		if _, err := lookup(name); err == nil {
			t.Errorf("lookup(%s) accepted", name)
		}
	}
}

func TestJavaPrepare(t *testing.T) {
	main := string(classFile("com.example.Main", java17, true))
	jar := map[string]string{"META-INF/MANIFEST.MF": "Main-Class: com.example.Main\n", "com/example/Main.class": main}
	tests := []struct {
		name      string
		files     map[string]string
		env       map[string]string
		wantErr   string
		wantStart string
		wantExec  string // in the launcher
		wantLog   string
	}{
		{name: "executable jar", files: jar, wantStart: "./" + LauncherPath, wantExec: "-cp '.' 'com.example.Main'",
			wantLog: "35% of 1 app + 26626 JRE classes = 9320 loaded → metaspace 65M"},
		{name: "spring boot", files: map[string]string{
			"META-INF/MANIFEST.MF":                              "Main-Class: org.springframework.boot.loader.JarLauncher\nStart-Class: com.example.Main\n",
			"org/springframework/boot/loader/JarLauncher.class": string(classFile("org.springframework.boot.loader.JarLauncher", java17, true)),
			"BOOT-INF/classes/com/example/Main.class":           main},
			wantExec: "-cp '.' 'org.springframework.boot.loader.JarLauncher'", wantLog: "Start-Class com.example.Main, 0 libraries"},
		{name: "class tree under a folder", files: map[string]string{"classes/com/example/Main.class": main,
			"classes/com/example/Lib.class": string(classFile("com.example.Lib", java17, false))},
			wantExec: "-cp 'classes' 'com.example.Main'"},
		{name: "stack threads and class count", files: jar, env: map[string]string{
			javaConfigEnv: "{ jre: { version: 17.+ }, memory_calculator: { stack_threads: 25, class_count: 1000 } }"},
			wantExec: "classes=1000 meta=19 threads=25 headroom=0", wantLog: "limit 256M: -Xmx172M = 256M − 0M headroom + 25 threads × 1M stack + 30M code cache + 19M metaspace"},
		{name: "war refused", files: map[string]string{"WEB-INF/web.xml": "", "index.html": ""},
			wantErr: "needs a servlet container, which driftless does not provide"},
		{name: "main class missing", files: map[string]string{"META-INF/MANIFEST.MF": "Main-Class: a.B\n", "x.class": main},
			wantErr: "the main class a.B is not in the app (no a/B.class)"},
		{name: "compiled for Java 21", files: map[string]string{"META-INF/MANIFEST.MF": "Main-Class: com.example.Main\n",
			"com/example/Main.class": string(classFile("com.example.Main", 65, true))},
			wantErr: "compiled for Java 21 (class file version 65) and the JRE is Java 17"},
		{name: "two mains", files: map[string]string{"A.class": string(classFile("A", java17, true)), "B.class": string(classFile("B", java17, true))},
			wantErr: "several classes have a main method (A, B)"},
		{name: "no main", files: map[string]string{"A.class": string(classFile("A", java17, false))},
			wantErr: "no class declares public static void main"},
		{name: "JRE 21 asked", files: jar, env: map[string]string{javaConfigEnv: "{jre: {version: 21.+}}"},
			wantErr: "asks for JRE 21.+; this platform has Java 17 only"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := tree(t, tt.files)
			var log []string
			plan, err := javaBuildpack{}.Prepare(dir, Build{Env: tt.env}, Cell{}, func(s string) { log = append(log, s) })
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if plan.Start != "./"+LauncherPath || len(plan.Layers) != 1 || plan.Layers[0] != LayerJRE || plan.Compile != "" {
				t.Fatalf("plan %+v", plan)
			}
			script, err := os.ReadFile(filepath.Join(dir, LauncherPath))
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(string(script), tt.wantExec) {
				t.Fatalf("launcher lacks %q:\n%s", tt.wantExec, script)
			}
			if all := strings.Join(log, "\n"); !strings.Contains(all, tt.wantLog) {
				t.Fatalf("log lacks %q:\n%s", tt.wantLog, all)
			}
		})
	}
}

// TestJavaCommandWins: with a command, a war or a class tree without a
// main is the user's to start.
func TestJavaCommandWins(t *testing.T) {
	dir := tree(t, map[string]string{"WEB-INF/web.xml": ""})
	plan, err := javaBuildpack{}.Prepare(dir, Build{Command: "java -jar server.jar"}, Cell{}, func(string) {})
	if err != nil || plan.Start != "" || len(plan.Layers) != 1 {
		t.Fatalf("plan %+v, %v", plan, err)
	}
}

func TestParseJavaConfig(t *testing.T) {
	tests := []struct {
		name      string
		env       map[string]string
		want      javaConfig // Notes compared by substring below
		wantNotes []string
		wantErr   string
	}{
		{name: "none", env: map[string]string{"JAVA_OPTS": "-Xss512k"}},
		{name: "flow style", env: map[string]string{javaConfigEnv: "{ jre: { version: 17.+ }, memory_calculator: { stack_threads: 25 } }"},
			want: javaConfig{StackThreads: 25}},
		{name: "sequence", env: map[string]string{javaConfigEnv: "[jre: {version: 17.0.+}, memory_calculator: {class_count: 500, headroom: 5}]"},
			want: javaConfig{ClassCount: 500, Headroom: 5}},
		{name: "block style", env: map[string]string{javaConfigEnv: "memory_calculator:\n  stack_threads: 40\n  headroom: 10%\n"},
			want: javaConfig{StackThreads: 40, Headroom: 10}},
		{name: "older JRE is a note", env: map[string]string{javaConfigEnv: "{jre: {version: 11.+}}"},
			wantNotes: []string{"asks for JRE 11.+: the app runs on Java 17"}},
		{name: "Java 8 as 1.8", env: map[string]string{javaConfigEnv: "{jre: {version: 1.8.0_+}}"},
			wantNotes: []string{"asks for JRE 1.8.0_+: the app runs on Java 17"}},
		{name: "not applied", env: map[string]string{javaConfigEnv: "{jre: {version: 17.+, repository_root: x}, jvmkill_agent: {version: 1.+}, memory_calculator: {memory_sizes: {heap: 1G}}}",
			"JBP_CONFIG_SPRING_AUTO_RECONFIGURATION": "{enabled: false}"},
			wantNotes: []string{"JBP_CONFIG_SPRING_AUTO_RECONFIGURATION is not applied", "jre.repository_root is not applied",
				"jvmkill_agent is not applied", "memory_calculator.memory_sizes is not applied"}},
		{name: "newer JRE", env: map[string]string{javaConfigEnv: "{jre: {version: 21.+}}"}, wantErr: "asks for JRE 21.+; this platform has Java 17 only"},
		{name: "no version number", env: map[string]string{javaConfigEnv: "{jre: {version: latest}}"}, wantErr: `jre.version "latest": want a major version`},
		{name: "bad threads", env: map[string]string{javaConfigEnv: "{memory_calculator: {stack_threads: lots}}"},
			wantErr: "memory_calculator.stack_threads is lots: want a whole number from 1 to 10000"},
		{name: "headroom over 50", env: map[string]string{javaConfigEnv: "{memory_calculator: {headroom: 80}}"}, wantErr: "from 0 to 50"},
		{name: "not YAML", env: map[string]string{javaConfigEnv: "{jre: [}"}, wantErr: "is not YAML"},
		{name: "not a mapping", env: map[string]string{javaConfigEnv: "17"}, wantErr: "want a mapping"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := parseJavaConfig(tt.env)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			notes := strings.Join(cfg.Notes, "\n")
			cfg.Notes = nil
			if cfg.StackThreads != tt.want.StackThreads || cfg.ClassCount != tt.want.ClassCount || cfg.Headroom != tt.want.Headroom {
				t.Fatalf("config %+v, want %+v", cfg, tt.want)
			}
			for _, n := range tt.wantNotes {
				if !strings.Contains(notes, n) {
					t.Errorf("notes lack %q:\n%s", n, notes)
				}
			}
			if len(tt.wantNotes) == 0 && notes != "" {
				t.Errorf("unexpected notes:\n%s", notes)
			}
		})
	}
}
