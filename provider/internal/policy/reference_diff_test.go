package policy

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/distribution/reference"
	"github.com/open-policy-agent/opa/v1/rego"
)

// parsed is what the Rego parser and the oracle are compared on.
type parsed struct {
	Valid      bool
	Domain     string
	Path       string
	Tag        string
	Digest     string
	Normalized string
	Pull       string
	Error      string // Rego's explanation or the oracle's error; not compared
}

func (p parsed) String() string {
	if !p.Valid {
		return fmt.Sprintf("invalid(%s)", p.Error)
	}
	return fmt.Sprintf("{domain:%q path:%q tag:%q digest:%q normalized:%q pull:%q}",
		p.Domain, p.Path, p.Tag, p.Digest, p.Normalized, p.Pull)
}

func (p parsed) equal(q parsed) bool {
	if p.Valid != q.Valid {
		return false
	}
	if !p.Valid {
		return true
	}
	p.Error, q.Error = "", ""
	return p == q
}

// oracle parses s as containerd does: distribution/reference ParseDockerRef.
func oracle(s string) parsed {
	named, err := reference.ParseNormalizedNamed(s)
	if err != nil {
		return parsed{Error: err.Error()}
	}
	docker, err := reference.ParseDockerRef(s)
	if err != nil {
		return parsed{Error: err.Error()}
	}
	p := parsed{
		Valid:      true,
		Domain:     reference.Domain(docker),
		Path:       reference.Path(docker),
		Normalized: reference.TagNameOnly(named).String(),
		Pull:       docker.String(),
	}
	if t, ok := named.(reference.Tagged); ok {
		p.Tag = t.Tag()
	}
	if d, ok := named.(reference.Digested); ok {
		p.Digest = d.Digest().String()
	}
	return p
}

// regoParser evaluates library/lib/reference.rego with the OPA engine.
type regoParser struct {
	pq rego.PreparedEvalQuery
}

func newRegoParser(tb testing.TB) *regoParser {
	tb.Helper()
	src, err := os.ReadFile(filepath.Join(libraryDir, "lib", "reference.rego"))
	if err != nil {
		tb.Fatal(err)
	}
	pq, err := rego.New(
		rego.Query("x := data.lib.imagetrust.reference.parse(input)"),
		rego.Module("reference.rego", string(src)),
		rego.StrictBuiltinErrors(true),
	).PrepareForEval(context.Background())
	if err != nil {
		tb.Fatalf("preparing reference.rego: %v", err)
	}
	return &regoParser{pq: pq}
}

var errUndefined = errors.New("parse(input) is undefined")

func (r *regoParser) parse(ctx context.Context, s string) (parsed, error) {
	rs, err := r.pq.Eval(ctx, rego.EvalInput(s))
	if err != nil {
		return parsed{}, err
	}
	if len(rs) != 1 {
		return parsed{}, errUndefined
	}
	m, ok := rs[0].Bindings["x"].(map[string]any)
	if !ok {
		return parsed{}, fmt.Errorf("parse(input) = %T, want object", rs[0].Bindings["x"])
	}
	str := func(k string) string { v, _ := m[k].(string); return v }
	valid, ok := m["valid"].(bool)
	if !ok {
		return parsed{}, fmt.Errorf("parse(input).valid = %v, want bool", m["valid"])
	}
	if !valid {
		if str("error") == "" {
			return parsed{}, fmt.Errorf("parse(input) is invalid without an error message: %v", m)
		}
		return parsed{Error: str("error")}, nil
	}
	p := parsed{Valid: true, Domain: str("domain"), Path: str("path"), Tag: str("tag"),
		Digest: str("digest"), Normalized: str("normalized"), Pull: str("pull")}
	// Internal consistency of the fields the templates rely on.
	wantRepo := p.Path
	if p.Domain != "" {
		wantRepo = p.Domain + "/" + p.Path
	}
	if str("repository") != wantRepo {
		return parsed{}, fmt.Errorf("repository = %q, want %q", str("repository"), wantRepo)
	}
	return p, nil
}

const libraryDir = "../../../library"

// compare reports a disagreement between the Rego parser and the oracle for s.
func compare(ctx context.Context, r *regoParser, s string) error {
	got, err := r.parse(ctx, s)
	if err != nil {
		return fmt.Errorf("rego parse(%q): %w", s, err)
	}
	want := oracle(s)
	if !got.equal(want) {
		return fmt.Errorf("rego parse(%q) = %v, want %v (distribution/reference)", s, got, want)
	}
	return nil
}

// The real-reference corpora: references as written in public manifests, charts, Dockerfiles
// and code (see /work/shared/data/README.md for how they were gathered).
const (
	corpusFile       = "real-image-refs.txt" // 3,265 references from 71 repositories
	secondCorpusFile = "real-refs-2.txt"     // 5,503 more from 250 other repositories
)

func readCorpus(tb testing.TB) []string { return readCorpusFile(tb, corpusFile) }

func readCorpusFile(tb testing.TB, name string) []string {
	tb.Helper()
	f, err := os.Open(filepath.Join("testdata", name))
	if err != nil {
		tb.Fatal(err)
	}
	defer func() { _ = f.Close() }()
	var refs []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "#") {
			continue
		}
		refs = append(refs, line)
	}
	if err := sc.Err(); err != nil {
		tb.Fatal(err)
	}
	return refs
}

func TestRegoParserMatchesDistributionOnRealCorpus(t *testing.T) {
	ctx := context.Background()
	r := newRegoParser(t)
	refs := readCorpus(t)
	if len(refs) != 3265 {
		t.Errorf("corpus has %d references, want 3265", len(refs))
	}
	var valid, disagreements int
	for _, s := range refs {
		if err := compare(ctx, r, s); err != nil {
			disagreements++
			t.Error(err)
			continue
		}
		if oracle(s).Valid {
			valid++
		}
	}
	t.Logf("real corpus: %d references (%d valid, %d invalid), %d disagreements",
		len(refs), valid, len(refs)-valid, disagreements)
}

func TestRegoParserMatchesDistributionOnSecondRealCorpus(t *testing.T) {
	ctx := context.Background()
	r := newRegoParser(t)
	refs := readCorpusFile(t, secondCorpusFile)
	if len(refs) != 5503 {
		t.Errorf("second corpus has %d references, want 5503", len(refs))
	}
	var valid, disagreements int
	for _, s := range refs {
		if err := compare(ctx, r, s); err != nil {
			disagreements++
			t.Error(err)
			continue
		}
		if oracle(s).Valid {
			valid++
		}
	}
	t.Logf("second real corpus: %d references (%d valid, %d invalid), %d disagreements",
		len(refs), valid, len(refs)-valid, disagreements)
}

// hostile is a table of references written to slip past a policy.
var hostile = []string{
	// host suffix / prefix tricks
	"registry.bank.internal.evil.io/app:1.0",
	"registry.bank.internal-evil.io/app:1.0",
	"evilregistry.bank.internal/app:1.0",
	"registry.bank.internal.:443/app:1.0",
	"registry.bank.internal../app:1.0",
	".registry.bank.internal/app:1.0",
	"registry.bank.internal/../evil/app:1.0",
	"registry.bank.internal/./app:1.0",
	"registry.bank.internal//app:1.0",
	"registry.bank.internal/app/:1.0",
	"registry.bank.internal/app/..:1.0",
	"registry.bank.internal%2fevil.io/app:1.0",
	"registry.bank.internal\\evil.io/app:1.0",
	"registry.bank.internal@evil.io/app:1.0",
	"registry.bank.internal#evil.io/app:1.0",
	"registry.bank.internal?x=evil.io/app:1.0",
	"quay.io/redhat-openshift-approved-evil/app:1",
	"quay.io/redhat-openshift-approved/../evil:1",
	"quay.io/redhat-openshift-approved.evil/app:1",
	"quay.io.evil.io/redhat-openshift-approved/app:1",
	"docker.io.evil.io/library/nginx:1.25",
	"index.docker.io/nginx:1.25",
	"Index.Docker.io/nginx:1.25",
	"registry-1.docker.io/library/nginx:1.25",
	"docker.io/nginx",
	"docker.io/library/nginx",
	"docker.io/library/library/nginx",
	"library/nginx",
	"nginx",
	"bank/app:1.0",
	"bank/app/x:1.0",
	// ports
	"registry.bank.internal:443/app:1.0",
	"registry.bank.internal:0/app:1.0",
	"registry.bank.internal:99999999999999999999/app:1.0",
	"registry.bank.internal:/app:1.0",
	"registry.bank.internal:abc/app:1.0",
	"registry.bank.internal:443:443/app:1.0",
	"localhost:5000/app:1.0",
	"localhost/app:1.0",
	"localhost:5000",
	"localhost",
	"LOCALHOST/app:1.0",
	"localhost.localdomain/app:1.0",
	"127.0.0.1:5000/app:1.0",
	"127.0.0.1/app",
	"[::1]:5000/app:1.0",
	"[::1]/app:1.0",
	"[fe80::1%25eth0]:5000/app:1.0",
	"::1/app:1.0",
	"[::1/app:1.0",
	"[]:5000/app:1.0",
	"[g::1]:5000/app",
	// case
	"Registry.Bank.Internal/app:1.0",
	"REGISTRY.BANK.INTERNAL/APP:1.0",
	"registry.bank.internal/App:1.0",
	"registry.bank.internal/app:V1.0",
	"registry.bank.internal/app:LATEST",
	"Nginx:1.25",
	"nginx:Latest",
	"Bank/app:1.0",
	"bank/App:1.0",
	"registry.bank.internal/app@SHA256:" + strings.Repeat("a", 64),
	"registry.bank.internal/app@sha256:" + strings.Repeat("A", 64),
	// traversal and separators
	"../nginx:1.25",
	"./nginx:1.25",
	"/nginx:1.25",
	"nginx/",
	"a//b",
	"a/./b",
	"a/../b",
	"a..b/c",
	"a__b/c",
	"a___b/c",
	"a--b/c",
	"a-/b",
	"a_/b",
	"-a/b",
	"a.b.c/d_e__f--g.h",
	"a_b.c/foo",
	"a_b.c/foo:1@sha256:" + strings.Repeat("b", 64),
	"foo_bar.com:8080/baz",
	// userinfo
	"user@registry.bank.internal/app:1.0",
	"user:pass@registry.bank.internal/app:1.0",
	"registry.bank.internal/app:1.0@evil.io",
	"registry.bank.internal/app@evil.io/x",
	// whitespace and control characters
	" nginx:1.25",
	"nginx:1.25 ",
	"nginx :1.25",
	"nginx:1.25\n",
	"\tnginx",
	"nginx:1.25\x00evil",
	"registry.bank.internal/app:1.0\r\n",
	"",
	" ",
	// homoglyphs and non-ASCII
	"registry.bаnk.internal/app:1.0", // Cyrillic а
	"registry.bank.internal/аpp:1.0", // Cyrillic а in the path
	"ｒegistry.bank.internal/app:1.0",
	"registry.bank.internal/app:1.0\u200b",
	"registry.bank.internal\u2024evil.io/app:1.0",
	"nginx:1\u00b725",
	"İ/app",
	"K/app", // Kelvin sign lowercases to k
	"registry.bank.internal/app:ǅ",
	"\xff\xfe/app",
	"nginx:\xff",
	// transport prefixes and URLs
	"docker://nginx:1.25",
	"docker://registry.bank.internal/app:1.0",
	"docker-daemon:nginx:1.25",
	"oci://registry.bank.internal/app:1.0",
	"oci-archive:/tmp/x.tar",
	"ko://github.com/bank/app/cmd/app",
	"ko://knative.dev/serving/cmd/queue",
	"https://registry.bank.internal/app:1.0",
	"http://registry.bank.internal/app:1.0",
	"registry.bank.internal/v2/app/manifests/1.0",
	"containers-storage:nginx",
	// tags
	"nginx:",
	"nginx::1.25",
	"nginx:1.25:1.26",
	"memcached:memcached:1.6.26-alpine3.19",
	"nginx:-1",
	"nginx:.1",
	"nginx:_1",
	"nginx:" + strings.Repeat("a", 128),
	"nginx:" + strings.Repeat("a", 129),
	"nginx:1.25/evil",
	"alpine:invalid!",
	"nginx:*",
	"nginx:1.*",
	"nginx:~1.25",
	"nginx:^1.25",
	"nginx:>=1.25",
	// digests
	"nginx@sha256:" + strings.Repeat("a", 64),
	"nginx:1.25@sha256:" + strings.Repeat("a", 64),
	"nginx:latest@sha256:" + strings.Repeat("0", 64),
	"nginx@sha256:" + strings.Repeat("a", 63),
	"nginx@sha256:" + strings.Repeat("a", 65),
	"nginx@sha256:abc",
	"quay.io/coreos/etcd@sha256:12345",
	"nginx@sha256:" + strings.Repeat("g", 64),
	"nginx@sha256:" + strings.Repeat("a", 32),
	"nginx@sha384:" + strings.Repeat("a", 96),
	"nginx@sha384:" + strings.Repeat("a", 64),
	"nginx@sha512:" + strings.Repeat("a", 128),
	"nginx@sha512:" + strings.Repeat("a", 64),
	"nginx@md5:" + strings.Repeat("a", 32),
	"nginx@sha1:" + strings.Repeat("a", 40),
	"nginx@blake3:" + strings.Repeat("a", 64),
	"nginx@Sha256:" + strings.Repeat("a", 64),
	"nginx@sha256+b64:" + strings.Repeat("a", 64),
	"nginx@sha256:",
	"nginx@:" + strings.Repeat("a", 64),
	"nginx@" + strings.Repeat("a", 64),
	"nginx@@sha256:" + strings.Repeat("a", 64),
	"nginx@sha256:" + strings.Repeat("a", 64) + "@sha256:" + strings.Repeat("b", 64),
	"nginx@sha256:" + strings.Repeat("a", 64) + ":1.25",
	"sha256:" + strings.Repeat("a", 64),
	"sha256:abc",
	// 64-hex names
	strings.Repeat("a", 64),
	strings.Repeat("a", 64) + ":1.0",
	strings.Repeat("a", 63),
	strings.Repeat("a", 65),
	strings.Repeat("A", 64),
	"docker.io/" + strings.Repeat("a", 64),
	"library/" + strings.Repeat("a", 64),
	// length limits (path > 255 rejected; the domain does not count)
	"r.io/" + strings.Repeat("a", 255),
	"r.io/" + strings.Repeat("a", 256),
	"r.io/" + strings.Repeat("a/", 127) + "a",
	"r.io/" + strings.Repeat("a/", 128) + "a",
	strings.Repeat("a", 247),
	strings.Repeat("a", 248),
	strings.Repeat("a.", 200) + "io/app:1",
	"r.io/" + strings.Repeat("a", 255) + ":1@sha256:" + strings.Repeat("c", 64),
}

func TestRegoParserMatchesDistributionOnHostileTable(t *testing.T) {
	ctx := context.Background()
	r := newRegoParser(t)
	var valid int
	for _, s := range hostile {
		if err := compare(ctx, r, s); err != nil {
			t.Error(err)
		}
		if oracle(s).Valid {
			valid++
		}
	}
	t.Logf("hostile table: %d references (%d valid)", len(hostile), valid)
}

// TestRegoParserPins spells out what the node pulls for references that fool
// string-prefix policies; the oracle agrees (checked above), this guards intent.
func TestRegoParserPins(t *testing.T) {
	ctx := context.Background()
	r := newRegoParser(t)
	for _, tc := range []struct {
		in         string
		wantDomain string // "" means: must be invalid
		wantPull   string
	}{
		{"registry.bank.internal.evil.io/app:1.0", "registry.bank.internal.evil.io", "registry.bank.internal.evil.io/app:1.0"},
		{"nginx", "docker.io", "docker.io/library/nginx:latest"},
		{"bank/app:1.0", "docker.io", "docker.io/bank/app:1.0"},
		{"index.docker.io/nginx", "docker.io", "docker.io/library/nginx:latest"},
		{"nginx:1.25@sha256:" + strings.Repeat("a", 64), "docker.io", "docker.io/library/nginx@sha256:" + strings.Repeat("a", 64)},
		{"localhost:5000/app", "localhost:5000", "localhost:5000/app:latest"},
		{"Registry.Bank.Internal/app:1.0", "Registry.Bank.Internal", "Registry.Bank.Internal/app:1.0"},
		{"docker://nginx:1.25", "", ""},
		{"https://registry.bank.internal/app:1.0", "", ""},
		{"user@registry.bank.internal/app:1.0", "", ""},
		{"quay.io/coreos/etcd@sha256:12345", "", ""},
		{strings.Repeat("a", 64), "", ""},
		{"registry.bank.internal/App:1.0", "", ""},
	} {
		got, err := r.parse(ctx, tc.in)
		if err != nil {
			t.Fatalf("parse(%q): %v", tc.in, err)
		}
		if tc.wantDomain == "" {
			if got.Valid {
				t.Errorf("parse(%q) = %v, want invalid", tc.in, got)
			}
			continue
		}
		if !got.Valid || got.Domain != tc.wantDomain || got.Pull != tc.wantPull {
			t.Errorf("parse(%q) = %v, want domain %q pull %q", tc.in, got, tc.wantDomain, tc.wantPull)
		}
	}
}

func FuzzRegoParserMatchesDistribution(f *testing.F) {
	for _, s := range hostile {
		f.Add(s)
	}
	ctx := context.Background()
	r := newRegoParser(f)
	f.Fuzz(func(t *testing.T, s string) {
		if len(s) > 1024 {
			t.Skip("longer than any reference worth parsing")
		}
		if err := compare(ctx, r, s); err != nil {
			if !utf8.ValidString(s) {
				t.Errorf("(invalid UTF-8 input) %v", err)
				return
			}
			t.Error(err)
		}
	})
}

// TestRegoGrammarIsDistributions checks that the grammar literals in reference.rego are
// distribution/reference's own regular expressions, character for character.
func TestRegoGrammarIsDistributions(t *testing.T) {
	src, err := os.ReadFile(filepath.Join(libraryDir, "lib", "reference.rego"))
	if err != nil {
		t.Fatal(err)
	}
	rs, err := rego.New(
		rego.Query("x := data.lib.imagetrust.reference"),
		rego.Module("reference.rego", string(src)),
	).Eval(context.Background())
	if err != nil || len(rs) != 1 {
		t.Fatalf("evaluating data.lib.imagetrust.reference: %v %v", rs, err)
	}
	pkg := rs[0].Bindings["x"].(map[string]any)
	get := func(k string) string { v, _ := pkg[k].(string); return v }
	for _, tc := range []struct{ rule, want string }{
		{"domain_and_port", reference.DomainRegexp.String()},
		{"tag_pattern", reference.TagRegexp.String()},
		{"digest_pattern", reference.DigestRegexp.String()},
		{"reference_pattern", reference.ReferenceRegexp.String()},
		{"anchored_name_pattern", `^(?:(` + reference.DomainRegexp.String() + `)/)?(` + get("remote_name") + `)$`},
	} {
		if got := get(tc.rule); got != tc.want {
			t.Errorf("reference.rego %s = %q, want %q", tc.rule, got, tc.want)
		}
	}
	if got, want := `(?:`+get("domain_and_port")+`/)?`+get("remote_name"), reference.NameRegexp.String(); got != want {
		t.Errorf("reference.rego name grammar = %q, want NameRegexp %q", got, want)
	}
}
