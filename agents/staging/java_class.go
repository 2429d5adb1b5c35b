package staging

import (
	"archive/zip"
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// classInfo is what the java buildpack reads of a class file.
type classInfo struct {
	// Name is the class's binary name with dots (com.example.Main).
	Name string
	// Major is the class file's major version (61 is Java 17).
	Major int
	// Main is whether it declares public static void main(String[]).
	Main bool
}

// javaMajor is the class file major version of a Java release: Java N
// writes N+44.
func javaMajor(major int) int { return major - 44 }

// errNotClass is returned for data that is not a class file.
var errNotClass = errors.New("not a class file")

// readClass parses the parts of a class file the buildpack needs: its name,
// version and whether it has a main method. It reads the constant pool
// and the method table, no more (JVMS §4).
func readClass(data []byte) (classInfo, error) {
	r := &classReader{b: data}
	if r.u4() != 0xCAFEBABE {
		return classInfo{}, errNotClass
	}
	r.u2() // minor
	info := classInfo{Major: int(r.u2())}
	n := int(r.u2())
	utf8 := make(map[int]string)
	classes := make(map[int]int) // Class entry → its name's Utf8 entry
	for i := 1; i < n && r.err == nil; i++ {
		switch tag := r.u1(); tag {
		case 1: // Utf8
			l := int(r.u2())
			utf8[i] = string(r.bytes(l))
		case 7: // Class
			classes[i] = int(r.u2())
		case 8, 16, 19, 20: // String, MethodType, Module, Package
			r.u2()
		case 15: // MethodHandle
			r.u1()
			r.u2()
		case 3, 4, 9, 10, 11, 12, 17, 18: // Integer, Float, refs, NameAndType, (Invoke)Dynamic
			r.u4()
		case 5, 6: // Long, Double: two entries
			r.u4()
			r.u4()
			i++
		default:
			return classInfo{}, fmt.Errorf("constant pool tag %d: %w", tag, errNotClass)
		}
	}
	r.u2() // access flags
	info.Name = strings.ReplaceAll(utf8[classes[int(r.u2())]], "/", ".")
	r.u2() // super
	r.skip(2 * int(r.u2()))
	skipMembers := func(want func(flags uint16, name, desc string)) {
		for c := int(r.u2()); c > 0 && r.err == nil; c-- {
			flags, name, desc := r.u2(), utf8[int(r.u2())], utf8[int(r.u2())]
			for a := int(r.u2()); a > 0 && r.err == nil; a-- {
				r.u2()
				r.skip(int(r.u4()))
			}
			if want != nil {
				want(flags, name, desc)
			}
		}
	}
	skipMembers(nil) // fields
	const public, static = 0x0001, 0x0008
	skipMembers(func(flags uint16, name, desc string) {
		if name == "main" && desc == "([Ljava/lang/String;)V" && flags&public != 0 && flags&static != 0 {
			info.Main = true
		}
	})
	if r.err != nil || info.Name == "" {
		return classInfo{}, errNotClass
	}
	return info, nil
}

// classReader reads big-endian values; past the end it records an error
// and returns zeros.
type classReader struct {
	b   []byte
	off int
	err error
}

func (r *classReader) bytes(n int) []byte {
	if r.err != nil || n < 0 || r.off+n > len(r.b) {
		r.err = io.ErrUnexpectedEOF
		return nil
	}
	out := r.b[r.off : r.off+n]
	r.off += n
	return out
}

func (r *classReader) skip(n int) { r.bytes(n) }

func (r *classReader) u1() byte {
	if b := r.bytes(1); b != nil {
		return b[0]
	}
	return 0
}

func (r *classReader) u2() uint16 {
	if b := r.bytes(2); b != nil {
		return binary.BigEndian.Uint16(b)
	}
	return 0
}

func (r *classReader) u4() uint32 {
	if b := r.bytes(4); b != nil {
		return binary.BigEndian.Uint32(b)
	}
	return 0
}

// maxClassFile is the largest class file the buildpack reads (the JVM's
// own limits make real ones far smaller).
const maxClassFile = 16 << 20

// mainClasses walks the app folder for class files declaring a main
// method and returns them with the folder each one's package starts in
// (the class path entry that finds it), at most limit of them.
func mainClasses(dir string, limit int) (mains []classInfo, roots []string, err error) {
	err = filepath.WalkDir(dir, func(p string, e fs.DirEntry, err error) error {
		if err != nil || e.IsDir() || !strings.HasSuffix(e.Name(), ".class") || len(mains) >= limit {
			return err
		}
		info, err := e.Info()
		if err != nil || !info.Mode().IsRegular() || info.Size() > maxClassFile {
			return err
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return fmt.Errorf("java buildpack: %w", err)
		}
		c, err := readClass(data)
		if err != nil || !c.Main {
			return nil // not a class file after all, or no main: not ours to judge
		}
		rel, _ := filepath.Rel(dir, p)
		rel = filepath.ToSlash(rel)
		want := strings.ReplaceAll(c.Name, ".", "/") + ".class"
		root, ok := strings.CutSuffix(rel, want)
		if !ok || (root != "" && !strings.HasSuffix(root, "/")) {
			return nil // its path does not match its package: no class path finds it
		}
		root = strings.TrimSuffix(root, "/")
		if root == "" {
			root = "."
		}
		mains, roots = append(mains, c), append(roots, root)
		return nil
	})
	return mains, roots, err
}

// countClasses counts the class files under dir, those inside the JARs
// under it included (their central directories only), for the memory
// calculator's estimate of the classes the app loads.
func countClasses(dir string) (int, error) {
	n := 0
	err := filepath.WalkDir(dir, func(p string, e fs.DirEntry, err error) error {
		if err != nil || e.IsDir() {
			return err
		}
		switch {
		case strings.HasSuffix(e.Name(), ".class"):
			n++
		case strings.HasSuffix(e.Name(), ".jar"):
			zr, err := zip.OpenReader(p)
			if err != nil {
				return nil // not a zip: not a library the JVM loads either
			}
			for _, f := range zr.File {
				if strings.HasSuffix(f.Name, ".class") {
					n++
				}
			}
			zr.Close()
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("java buildpack: counting classes: %w", err)
	}
	return n, nil
}

// jarManifest reads the main attributes of a JAR manifest
// (META-INF/MANIFEST.MF): "Name: value" lines, continuation lines (a
// leading space) joined, up to the first blank line.
func jarManifest(data []byte) map[string]string {
	out := map[string]string{}
	var last string
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		line := strings.TrimRight(sc.Text(), "\r")
		if line == "" {
			break // per-entry sections follow
		}
		if strings.HasPrefix(line, " ") && last != "" {
			out[last] += line[1:]
			continue
		}
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		last = strings.TrimSpace(k)
		out[last] = strings.TrimSpace(v)
	}
	return out
}
