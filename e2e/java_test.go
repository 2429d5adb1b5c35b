package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/driftless/driftless/internal/children"
	"github.com/driftless/driftless/internal/testenv"
)

// buildJavaJar builds the java-hello example's JAR (Spring Boot's layout:
// BOOT-INF/classes, BOOT-INF/lib, a launcher as Main-Class and the app as
// Start-Class) from its sources with the JDK, in a folder of the test, and
// returns its bytes.
func buildJavaJar(t *testing.T) []byte {
	t.Helper()
	for _, tool := range []string{"javac", "jar"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s not found: run make setup (it installs openjdk-17-jdk-headless)", tool)
		}
	}
	root, err := children.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	src := filepath.Join(root, "examples", "apps", "java-hello")
	if out, err := exec.Command("cp", "-r", filepath.Join(src, "src"), filepath.Join(src, "build.sh"), dir).CombinedOutput(); err != nil {
		t.Fatalf("copying the example's sources: %v\n%s", err, out)
	}
	if out, err := exec.Command("sh", filepath.Join(dir, "build.sh")).CombinedOutput(); err != nil {
		t.Fatalf("building the JAR: %v\n%s", err, out)
	}
	jar, err := os.ReadFile(filepath.Join(dir, "target", "app.jar"))
	if err != nil {
		t.Fatal(err)
	}
	return jar
}

// TestJava deploys a Spring-Boot-shaped executable JAR with 256M through
// the real platform: the java buildpack (named by Cloud Foundry's URL,
// with a warning) runs it on the JRE layer as vcap, with the memory flags
// its launcher computed from the limit (JBP_CONFIG_OPEN_JDK_JRE's
// stack_threads applied, JAVA_OPTS after them), and it answers through
// the router.
func TestJava(t *testing.T) {
	jar := buildJavaJar(t)
	p := startDev(t)
	url := "https://github.com/cloudfoundry/java-buildpack.git#v4.77.0"
	p.write(map[string]string{"apps/java-e2e/manifest.yml": `applications:
- name: java-e2e
  path: target/app.jar
  memory: 256M
  buildpacks: [` + url + `]
  health-check-type: http
  health-check-http-endpoint: /health
  env:
    JBP_CONFIG_OPEN_JDK_JRE: '{ jre: { version: 17.+ }, memory_calculator: { stack_threads: 25 } }'
    JBP_CONFIG_SPRING_AUTO_RECONFIGURATION: '{ enabled: false }'
    JAVA_OPTS: -Dgreeting=hi -XX:MaxDirectMemorySize=12M
`})
	if err := os.MkdirAll(filepath.Join(p.repo, "apps", "java-e2e", "target"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(p.repo, "apps", "java-e2e", "target", "app.jar"), jar, 0o644); err != nil {
		t.Fatal(err)
	}
	p.commitAll("a Java app")
	_, _ = p.client.Sync(context.Background(), false, 0)
	host := "java-e2e.apps.localhost"
	p.waitAnswer(t, 6*time.Minute, host, "Hello from Java (instance 0, Java 17)")

	ctx := context.Background()
	d, err := p.client.App(ctx, "dev", "java-e2e")
	if err != nil {
		t.Fatal(err)
	}
	log := stagingLog(t, d, d.ReleaseID)
	for _, want := range []string{
		"java buildpack (stack bookworm)",
		"warning: buildpack " + url + " is not fetched: driftless's built-in java buildpack stages the app",
		"note: JBP_CONFIG_SPRING_AUTO_RECONFIGURATION is not applied",
		"Spring Boot JAR, Main-Class com.example.boot.BootLauncher",
		"Start-Class com.example.hello.HelloApp, 1 libraries in BOOT-INF/lib",
		"memory calculator: 35% of 3 app + 26626 JRE classes = 9321 loaded → metaspace 65M",
		"threads (25 (stack_threads)) × 1M",
		"limit 256M: -Xmx126M = 256M − 0M headroom + 25 threads × 1M stack + 30M code cache + 65M metaspace (9321 classes) + 10M direct memory",
	} {
		if !strings.Contains(log, want) {
			t.Errorf("staging log lacks %q:\n%s", want, log)
		}
	}

	// The JVM's options: the calculated ones, then JAVA_OPTS (the user's
	// direct memory wins over the calculator's); it runs as vcap.
	code, body, err := p.get(host, "/jvm")
	if err != nil || code != 200 {
		t.Fatalf("/jvm: %d %v", code, err)
	}
	args := strings.Split(strings.TrimSpace(string(body)), "\n")
	want := []string{"user vcap", "-Xmx126M", "-Xss1M", "-XX:ReservedCodeCacheSize=30M", "-XX:MaxMetaspaceSize=65M",
		"-XX:MaxDirectMemorySize=10M", "-XX:+ExitOnOutOfMemoryError", "-Dgreeting=hi", "-XX:MaxDirectMemorySize=12M"}
	if strings.Join(args, " ") != strings.Join(want, " ") {
		t.Errorf("JVM user and options\n%q\nwant\n%q", args, want)
	}
	// The heap the JVM took is inside the limit and the calculated -Xmx.
	code, body, err = p.get(host, "/memory")
	if err != nil || code != 200 {
		t.Fatalf("/memory: %d %v", code, err)
	}
	m := regexp.MustCompile(`maxMemory (\d+)`).FindStringSubmatch(string(body))
	if m == nil {
		t.Fatalf("/memory: %q", body)
	}
	heap, _ := strconv.ParseInt(m[1], 10, 64)
	if heap <= 64<<20 || heap > 126<<20 {
		t.Errorf("Runtime.maxMemory %d (%dM): want at most -Xmx126M and well above 64M", heap, heap>>20)
	}
	t.Logf("Runtime.maxMemory %dM at a 256M limit", heap>>20)

	// The launcher printed its calculation into the app's log.
	testenv.Eventually(t, 30*time.Second, time.Second, "the app log shows the JVM memory line", func() error {
		out, err := p.cli("logs", "java-e2e", "--recent")
		if err != nil {
			return fmt.Errorf("%v: %s", err, out)
		}
		if !strings.Contains(out, "JVM memory: limit 256M: -Xmx126M") {
			return fmt.Errorf("no JVM memory line in:\n%s", out)
		}
		return nil
	})

	// At 96M the same droplet (memory is not staging input) refuses to
	// start, naming the numbers; the 256M release keeps serving.
	manifest, err := os.ReadFile(filepath.Join(p.repo, "apps", "java-e2e", "manifest.yml"))
	if err != nil {
		t.Fatal(err)
	}
	p.write(map[string]string{"apps/java-e2e/manifest.yml": strings.Replace(string(manifest), "memory: 256M", "memory: 96M", 1)})
	p.commitAll("too little memory for the JVM")
	_, _ = p.client.Sync(ctx, false, 0)
	testenv.Eventually(t, 2*time.Minute, time.Second, "the launcher refuses 96M", func() error {
		out, err := p.cli("logs", "java-e2e", "--recent")
		if err != nil {
			return fmt.Errorf("%v: %s", err, out)
		}
		if !strings.Contains(out, "memory limit 96M is too small for the JVM: 0M headroom + 25 threads × 1M stack + 16M code cache + "+
			"65M metaspace (9321 classes) + 10M direct memory leave -20M of heap, below the 32M minimum") {
			return fmt.Errorf("no refusal in:\n%s", out)
		}
		return nil
	})
	p.waitAnswer(t, 10*time.Second, host, "Hello from Java")
}
