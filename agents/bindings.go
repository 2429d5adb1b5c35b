package agents

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/driftless/driftless/model"
)

// BindingsRoot is where an instance finds its service bindings, one folder
// per binding as servicebinding.io lays them out: its SERVICE_BINDING_ROOT.
// The cell mounts it read-only; an instance without bindings gets it empty.
const BindingsRoot = "/bindings"

// maxFileName is the longest file name the cell writes (NAME_MAX).
const maxFileName = 255

// bindingsDir is the host folder holding the bindings of instance guid,
// mounted at BindingsRoot in its container.
func (a *Agent) bindingsDir(guid string) string {
	return filepath.Join(a.cfg.DataDir, "bindings", guid)
}

// safeFileName reports whether name can be one file of a folder: not
// empty, "." or "..", no "/" or NUL, at most 255 bytes.
func safeFileName(name string) bool {
	return name != "" && name != "." && name != ".." && len(name) <= maxFileName &&
		!strings.ContainsAny(name, "/\x00")
}

// vcapService is one binding in VCAP_SERVICES, in Cloud Foundry's shape:
// every field present, null where Cloud Foundry gives null.
type vcapService struct {
	Label          string         `json:"label"`
	Name           string         `json:"name"`
	BindingName    *string        `json:"binding_name"`
	BindingGUID    string         `json:"binding_guid"`
	InstanceName   string         `json:"instance_name"`
	InstanceGUID   string         `json:"instance_guid"`
	Plan           string         `json:"plan"`
	Provider       *string        `json:"provider"`
	Tags           []string       `json:"tags"`
	Credentials    map[string]any `json:"credentials"`
	SyslogDrainURL *string        `json:"syslog_drain_url"`
	VolumeMounts   []any          `json:"volume_mounts"`
}

// errNotJSON stands for an encoding error, whose text may quote a
// credential.
var errNotJSON = errors.New("a value cannot be encoded as JSON")

// nullable is nil for "", else &s.
func nullable(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// vcapServices is the VCAP_SERVICES of bindings: an object keyed by label,
// each a list of bindings sorted by name ("{}" when there are none).
func vcapServices(bindings []model.Binding) ([]byte, error) {
	sorted := slices.Clone(bindings)
	slices.SortStableFunc(sorted, func(x, y model.Binding) int {
		return cmp.Or(cmp.Compare(x.Label, y.Label), cmp.Compare(x.Name, y.Name))
	})
	out := make(map[string][]vcapService, len(sorted))
	for _, b := range sorted {
		s := vcapService{Label: b.Label, Name: b.Name, BindingName: nullable(b.BindingName), BindingGUID: b.BindingGUID,
			InstanceName: b.InstanceName, InstanceGUID: b.InstanceGUID, Plan: b.Plan, Provider: nullable(b.Provider),
			Tags: b.Tags, Credentials: b.Credentials, SyslogDrainURL: nullable(b.SyslogDrainURL), VolumeMounts: b.VolumeMounts}
		if s.Tags == nil {
			s.Tags = []string{}
		}
		if s.Credentials == nil {
			s.Credentials = map[string]any{}
		}
		if s.VolumeMounts == nil {
			s.VolumeMounts = []any{}
		}
		out[b.Label] = append(out[b.Label], s)
	}
	data, err := json.Marshal(out)
	if err != nil {
		// The encoder's error may quote the value: not passed on.
		return nil, fmt.Errorf("encoding VCAP_SERVICES: %w", errNotJSON)
	}
	return data, nil
}

// credentialFile is the content of a credential's file: a string as it
// is, any other value as its JSON.
func credentialFile(v any) ([]byte, error) {
	if s, ok := v.(string); ok {
		return []byte(s), nil
	}
	data, err := json.Marshal(v)
	if err != nil {
		return nil, errNotJSON
	}
	return data, nil
}

// bindingFiles are the files of one binding's folder, by name: type,
// provider (when set) and one per credential. Names that are not safe
// file names, or that would replace type or provider, are left out; each
// is named (never its value) in the warnings.
func bindingFiles(b model.Binding) (map[string][]byte, []string) {
	files := map[string][]byte{"type": []byte(b.Label)}
	if b.Provider != "" {
		files["provider"] = []byte(b.Provider)
	}
	var warnings []string
	for _, k := range slices.Sorted(maps.Keys(b.Credentials)) {
		switch _, taken := files[k]; {
		case !safeFileName(k):
			warnings = append(warnings, fmt.Sprintf("binding %s: credential %q is no safe file name: left out of %s", b.Name, k, BindingsRoot))
			continue
		case taken:
			warnings = append(warnings, fmt.Sprintf("binding %s: credential %q would replace the binding's %s file: left out of %s", b.Name, k, k, BindingsRoot))
			continue
		}
		data, err := credentialFile(b.Credentials[k])
		if err != nil {
			warnings = append(warnings, fmt.Sprintf("binding %s: credential %q cannot be encoded: left out of %s", b.Name, k, BindingsRoot))
			continue
		}
		files[k] = data
	}
	return files, warnings
}

// writeBindings makes dir (replacing what is there) hold one folder per
// binding, servicebinding.io's layout, owned by uid and readable by it
// only: folders 0500, files 0400. Bindings whose name is no safe folder
// name, or that repeat an earlier one's, are left out with a warning. It
// returns the warnings, which name bindings and keys, never values.
func writeBindings(dir string, bindings []model.Binding, uid int) ([]string, error) {
	if err := os.RemoveAll(dir); err != nil {
		return nil, fmt.Errorf("removing old bindings: %w", err)
	}
	if err := os.Mkdir(dir, 0o700); err != nil {
		return nil, fmt.Errorf("creating the bindings folder: %w", err)
	}
	var warnings []string
	seen := map[string]bool{}
	for _, b := range bindings {
		switch {
		case !safeFileName(b.Name):
			warnings = append(warnings, fmt.Sprintf("binding %q is no safe folder name: left out of %s", b.Name, BindingsRoot))
			continue
		case seen[b.Name]:
			warnings = append(warnings, fmt.Sprintf("binding %q is named twice: the second is left out of %s", b.Name, BindingsRoot))
			continue
		}
		seen[b.Name] = true
		files, warns := bindingFiles(b)
		warnings = append(warnings, warns...)
		bdir := filepath.Join(dir, b.Name)
		if err := os.Mkdir(bdir, 0o700); err != nil {
			return warnings, fmt.Errorf("creating the folder of binding %s: %w", b.Name, err)
		}
		for _, name := range slices.Sorted(maps.Keys(files)) {
			p := filepath.Join(bdir, name)
			if err := os.WriteFile(p, files[name], 0o400); err != nil {
				return warnings, fmt.Errorf("writing file %s of binding %s: %w", name, b.Name, err)
			}
			if err := own(p, uid, 0o400); err != nil {
				return warnings, fmt.Errorf("binding %s: %w", b.Name, err)
			}
		}
		if err := own(bdir, uid, 0o500); err != nil {
			return warnings, fmt.Errorf("binding %s: %w", b.Name, err)
		}
	}
	if err := own(dir, uid, 0o500); err != nil {
		return warnings, fmt.Errorf("the bindings folder: %w", err)
	}
	return warnings, nil
}

// own gives path to uid (user and group) with mode.
func own(path string, uid int, mode os.FileMode) error {
	if err := os.Lchown(path, uid, uid); err != nil {
		return fmt.Errorf("giving %s to user %d: %w", filepath.Base(path), uid, err)
	}
	if err := os.Chmod(path, mode); err != nil {
		return fmt.Errorf("setting the mode of %s: %w", filepath.Base(path), err)
	}
	return nil
}

// removeBindings removes the bindings folder of instance guid; a missing
// one is no error.
func (a *Agent) removeBindings(guid string) error {
	if !safeFileName(guid) {
		return nil
	}
	if err := os.RemoveAll(a.bindingsDir(guid)); err != nil {
		return fmt.Errorf("removing the instance's bindings: %w", err)
	}
	return nil
}

// envBytes is the size of env as model.MaxEnvBytes counts it.
func envBytes(env []string) int {
	n := 0
	for _, e := range env {
		n += len(e) + 1
	}
	return n
}

// withVcapServices adds VCAP_SERVICES to env unless it would make env
// larger than model.MaxEnvBytes: then env is returned as it is, and false.
func withVcapServices(env []string, services []byte) ([]string, bool) {
	v := "VCAP_SERVICES=" + string(services)
	if envBytes(env)+len(v)+1 > model.MaxEnvBytes {
		return env, false
	}
	return append(env, v), true
}

// instanceWarning tells an instance's app (a CELL line in its log) and the
// cell's log about something wrong with what it was given. The text must
// hold no secret.
func (a *Agent) instanceWarning(ref model.InstanceRef, text string) {
	a.log.Warn(text, "app", ref.App, "space", ref.Space, "guid", ref.GUID)
	a.publishCellLine(ref, text)
}
