package check

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"sigs.k8s.io/kustomize/api/konfig"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/api/resource"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"

	"github.com/imagetrust/imagetrust/provider/internal/manifests"
)

// originAnnotation is where kustomize records a resource's source file when the
// kustomization sets `buildMetadata: [originAnnotations]`.
const originAnnotation = "config.kubernetes.io/origin"

// KustomizationFile returns the kustomization file dir holds (kustomization.yaml,
// kustomization.yml or Kustomization), or "" when it holds none.
func KustomizationFile(dir string) string {
	for _, n := range konfig.RecognizedKustomizationFileNames() {
		f := filepath.Join(dir, n)
		if st, err := os.Stat(f); err == nil && st.Mode().IsRegular() {
			return f
		}
	}
	return ""
}

// Kustomize renders the kustomization in dir in-process, as `kubectl kustomize dir` does
// (sigs.k8s.io/kustomize/api: files only from the kustomization's root, no plugins, no Helm),
// and returns the rendered objects placed where they were written: with origin annotations
// (`buildMetadata: [originAnnotations]`) each object and its image scalars point into the
// resource file kustomize read them from; otherwise, and for generated or remote resources,
// at the kustomization file. The objects hold the rendered values, as `kubectl apply -k` would
// send them.
func Kustomize(dir string) ([]manifests.Object, error) {
	kfile := KustomizationFile(dir)
	if kfile == "" {
		return nil, &manifests.Error{File: dir, Err: fmt.Errorf("no kustomization file (%s)", strings.Join(konfig.RecognizedKustomizationFileNames(), ", "))}
	}
	m, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(filesys.MakeFsOnDisk(), dir)
	if err != nil {
		return nil, &manifests.Error{File: kfile, Err: fmt.Errorf("kustomize build: %w", err)}
	}
	out, err := m.AsYaml()
	if err != nil {
		return nil, &manifests.Error{File: kfile, Err: fmt.Errorf("kustomize build: %w", err)}
	}
	objs, err := manifests.Parse(manifests.Source{Name: kfile, Data: out})
	if err != nil {
		return nil, fmt.Errorf("rendered output of %s: %w", kfile, err)
	}
	p := placer{dir: dir, kfile: kfile, sources: map[string][]manifests.Object{}}
	for i := range objs {
		if err := p.place(&objs[i]); err != nil {
			return nil, err
		}
	}
	return objs, nil
}

// placer moves rendered objects to their sources.
type placer struct {
	dir, kfile string
	sources    map[string][]manifests.Object // parsed resource files by path
}

func (p *placer) place(o *manifests.Object) error {
	file, ok, err := p.originFile(o)
	if err != nil {
		return err
	}
	if !ok {
		p.atKustomization(o)
		return nil
	}
	srcObjs, err := p.source(file)
	if err != nil {
		return err
	}
	src := matchSource(o, srcObjs)
	if src == nil {
		// The file is known, the object in it is not (renamed beyond recognition).
		o.File, o.Doc, o.Item, o.Line, o.Column = file, 0, -1, 1, 1
		for i := range o.Images {
			o.Images[i].Line, o.Images[i].Column, o.Images[i].Offset = 1, 1, 0
		}
		return nil
	}
	o.File, o.Doc, o.Item, o.Line, o.Column = file, src.Doc, src.Item, src.Line, src.Column
	for i := range o.Images {
		im := &o.Images[i]
		im.Line, im.Column, im.Offset = src.Line, src.Column, 0
		for _, s := range src.Images {
			if s.Field == im.Field && s.Name == im.Name {
				im.Line, im.Column, im.Offset, im.Style, im.Alias = s.Line, s.Column, s.Offset, s.Style, s.Alias
				break
			}
		}
	}
	return nil
}

// originFile is the local file the object was read from, per its origin annotation.
func (p *placer) originFile(o *manifests.Object) (string, bool, error) {
	raw, ok := o.Object.GetAnnotations()[originAnnotation]
	if !ok {
		return "", false, nil
	}
	var org resource.Origin
	if err := yaml.Unmarshal([]byte(raw), &org); err != nil {
		return "", false, &manifests.Error{File: p.kfile, Err: fmt.Errorf("%s: annotation %s: %w", o.Ref(), originAnnotation, err)}
	}
	if org.Repo != "" || org.Path == "" || filepath.IsAbs(org.Path) {
		return "", false, nil // remote, generated (configuredIn) or not a local path
	}
	return filepath.Join(p.dir, org.Path), true, nil
}

func (p *placer) atKustomization(o *manifests.Object) {
	o.File, o.Doc, o.Item, o.Line, o.Column = p.kfile, 0, -1, 1, 1
	for i := range o.Images {
		o.Images[i].Line, o.Images[i].Column, o.Images[i].Offset = 1, 1, 0
	}
}

func (p *placer) source(file string) ([]manifests.Object, error) {
	if objs, ok := p.sources[file]; ok {
		return objs, nil
	}
	b, err := os.ReadFile(file) //nolint:gosec // a file the user's kustomization names, already read by kustomize
	if err != nil {
		return nil, &manifests.Error{File: file, Err: err}
	}
	objs, err := manifests.Parse(manifests.Source{Name: file, Data: b})
	if err != nil {
		var me *manifests.Error
		if errors.As(err, &me) {
			return nil, err
		}
		return nil, &manifests.Error{File: file, Err: err}
	}
	p.sources[file] = objs
	return objs, nil
}

// matchSource finds the object o was rendered from among the objects of its source file:
// same kind with the same name, else the same kind whose name the rendered name contains
// (namePrefix, nameSuffix), else the only object of that kind.
func matchSource(o *manifests.Object, srcs []manifests.Object) *manifests.Object {
	kind, name := o.Object.GetKind(), o.Object.GetName()
	var sameKind []*manifests.Object
	for i := range srcs {
		if srcs[i].Object.GetKind() == kind {
			sameKind = append(sameKind, &srcs[i])
		}
	}
	for _, s := range sameKind {
		if s.Object.GetName() == name {
			return s
		}
	}
	var best *manifests.Object
	for _, s := range sameKind {
		if n := s.Object.GetName(); n != "" && strings.Contains(name, n) && (best == nil || len(n) > len(best.Object.GetName())) {
			best = s
		}
	}
	if best != nil {
		return best
	}
	if len(sameKind) == 1 {
		return sameKind[0]
	}
	return nil
}

// LoadInputs reads the manifests of a check: files, directories and stdin ("-") through
// manifests.Collect, except directories that hold a kustomization file at their top, which are
// rendered with Kustomize, as are the kustomizations (-k DIR), which must hold one.
func LoadInputs(files, kustomizations []string, stdin io.Reader) ([]manifests.Object, error) {
	var plain []string
	dirs := append([]string(nil), kustomizations...)
	for _, k := range kustomizations {
		if st, err := os.Stat(k); err != nil || !st.IsDir() || KustomizationFile(k) == "" {
			return nil, &manifests.Error{File: k, Err: fmt.Errorf("-k: not a directory holding a kustomization file (%s)", strings.Join(konfig.RecognizedKustomizationFileNames(), ", "))}
		}
	}
	for _, f := range files {
		if f != "-" {
			if st, err := os.Stat(f); err == nil && st.IsDir() && KustomizationFile(f) != "" {
				dirs = append(dirs, f)
				continue
			}
		}
		plain = append(plain, f)
	}
	var objs []manifests.Object
	if len(plain) > 0 {
		srcs, err := manifests.Collect(plain, stdin)
		if err != nil {
			return nil, err
		}
		if objs, err = manifests.ParseAll(srcs); err != nil {
			return nil, err
		}
	}
	for _, d := range dirs {
		k, err := Kustomize(d)
		if err != nil {
			return nil, err
		}
		objs = append(objs, k...)
	}
	return objs, nil
}
