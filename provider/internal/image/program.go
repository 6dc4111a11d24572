package image

import "fmt"

// Program is what an image runs: one command of this repository (provider/cmd/<Name>) as the
// entrypoint /usr/local/bin/<Name>.
type Program struct {
	// Name is the command, the binary's name and the image title (required).
	Name string
	// Repository is where the release image is published; manifests reference it.
	Repository string
	// Ports the image exposes ("8443/tcp"; optional).
	Ports []string
}

// Program names, as `imagetrust-image build -program` and the Makefile's IMAGE_PROGRAMS name them.
const (
	ProgramProvider = "provider"
	ProgramCLI      = "cli"
)

// Programs are the images `make image` builds, by program name: the provider (the Deployment
// of manifests/base) and the imagetrust CLI (the report CronJob of manifests/components/report).
func Programs() map[string]Program {
	return map[string]Program{
		ProgramProvider: {Name: "imagetrust-provider", Repository: "ghcr.io/imagetrust/imagetrust-provider", Ports: []string{"8443/tcp", "8080/tcp"}},
		ProgramCLI:      {Name: "imagetrust", Repository: "ghcr.io/imagetrust/imagetrust"},
	}
}

// ProgramNamed returns the program called name ("provider" or "cli").
func ProgramNamed(name string) (Program, error) {
	p, ok := Programs()[name]
	if !ok {
		return Program{}, &OptionsError{"program", fmt.Sprintf("%q: want %s or %s", name, ProgramProvider, ProgramCLI)}
	}
	return p, nil
}

// BinaryPath is where the program's binary lives in the image; it is the entrypoint.
func (p Program) BinaryPath() string { return "/usr/local/bin/" + p.Name }

// program is o.Program, the provider when unset.
func (o *Options) program() Program {
	if o.Program.Name == "" {
		return Programs()[ProgramProvider]
	}
	return o.Program
}
