package suite

import (
	"io/fs"

	"github.com/open-policy-agent/frameworks/constraint/pkg/apis/externaldata/unversioned"
)

// FixtureServer serves the ProviderFixtures files of one directory over real HTTPS, as
// `imagetrust verify` does for a suite, for other callers of the frameworks client
// (`imagetrust check --provider-fixtures`).
type FixtureServer struct {
	srv *fixtureServer
	set *providerSet
}

// ServeFixtures loads the fixture files directly in dir of fsys and starts serving them.
func ServeFixtures(fsys fs.FS, dir string) (*FixtureServer, error) {
	set, err := loadFixtures(fsys, dir)
	if err != nil {
		return nil, err
	}
	srv := newFixtureServer()
	srv.use(set)
	return &FixtureServer{srv: srv, set: set}, nil
}

// Providers returns one Provider object (URL, caBundle, timeout) per provider the fixtures
// name, to upsert into an external-data provider cache.
func (f *FixtureServer) Providers() []*unversioned.Provider {
	names := f.set.names()
	out := make([]*unversioned.Provider, 0, len(names))
	for _, n := range names {
		out = append(out, f.srv.provider(n))
	}
	return out
}

// Files are the fixture files that were loaded.
func (f *FixtureServer) Files() []string { return append([]string(nil), f.set.files...) }

// BeginReview and EndReview bracket one review: EndReview returns a *MissingFixtureError
// naming the keys asked for since BeginReview that no fixture answers, or nil. Reviews
// bracketed this way must not run concurrently.
func (f *FixtureServer) BeginReview() { f.srv.beginReview() }

// EndReview ends what BeginReview started and returns the keys no fixture answered, if any.
func (f *FixtureServer) EndReview() error {
	if err := f.srv.endReview(); err != nil {
		return err
	}
	return nil
}

// Requests counts the external-data requests answered so far.
func (f *FixtureServer) Requests() int {
	f.srv.mu.Lock()
	defer f.srv.mu.Unlock()
	return f.srv.requests
}

// Close stops the server.
func (f *FixtureServer) Close() { f.srv.Close() }
