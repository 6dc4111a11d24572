package check

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"

	"sigs.k8s.io/yaml"

	"github.com/imagetrust/imagetrust/provider/internal/suite"
)

// RecordFile is the fixture file --record writes in its directory.
const RecordFile = "recorded-providers.yaml"

// record writes every answer seen as one ProviderFixtures file, so that a later run with
// --provider-fixtures DIR reviews the same objects offline with the same answers. It refuses
// while any answer was a failure: a recorded outage would replay as a decision.
func (p *proxy) record(dir string) (string, error) {
	if err := p.failures(); err != nil {
		return "", fmt.Errorf("not recording fixtures: %w", err)
	}
	p.mu.Lock()
	pf := suite.ProviderFixtures{APIVersion: suite.FixturesAPIVersion, Kind: suite.FixturesKind, Providers: map[string]suite.ProviderFixture{}}
	pf.Metadata.Name = "recorded"
	names := make([]string, 0, len(p.answers))
	for n := range p.answers {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		keys := map[string]suite.KeyFixture{}
		for k, it := range p.answers[n] {
			if it.Error != "" {
				keys[k] = suite.KeyFixture{Error: it.Error}
				continue
			}
			v, err := json.Marshal(it.Value)
			if err != nil {
				p.mu.Unlock()
				return "", fmt.Errorf("provider %s key %q: %w", n, k, err)
			}
			keys[k] = suite.KeyFixture{Value: v}
		}
		if len(keys) > 0 {
			pf.Providers[n] = suite.ProviderFixture{Keys: keys}
		}
	}
	p.mu.Unlock()
	if len(pf.Providers) == 0 {
		return "", fmt.Errorf("not recording fixtures: no provider was called (the templates made no external_data call)")
	}
	b, err := yaml.Marshal(pf)
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return "", fmt.Errorf("--record %s: %w", dir, err)
	}
	file := filepath.Join(dir, RecordFile)
	header := "# Recorded by imagetrust check --record: the provider's answers for the keys the check asked.\n"
	if err := os.WriteFile(file, append([]byte(header), b...), 0o600); err != nil {
		return "", fmt.Errorf("--record: %w", err)
	}
	return file, nil
}
