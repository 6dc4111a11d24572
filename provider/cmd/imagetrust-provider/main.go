// Command imagetrust-provider is the Gatekeeper external-data provider: POST /v1/resolve,
// /v1/mutate and /v1/verify over mTLS (TLS 1.3, client certificate required), and /healthz,
// /readyz and /metrics on a separate plain-HTTP port. All settings come from one YAML file
// (-config); a few flags override what operators expect to change per deployment.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"runtime/trace"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/imagetrust/imagetrust/provider/internal/app"
	"github.com/imagetrust/imagetrust/provider/internal/config"
	"github.com/imagetrust/imagetrust/provider/internal/gcpace"
)

func main() {
	ctx, stop := signalContext()
	defer stop()
	if err := run(ctx, os.Args, os.Getenv, os.Stdout, os.Stderr); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		fmt.Fprintf(os.Stderr, "imagetrust-provider: %v\n", err)
		os.Exit(1)
	}
}

// signalContext is cancelled by SIGTERM (Kubernetes stopping the pod) or SIGINT.
func signalContext() (context.Context, context.CancelFunc) {
	return signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
}

// flags are the command line. Everything else is in the configuration file.
type flags struct {
	config         string
	address        string
	metricsAddress string
	logLevel       string
	tlsReload      time.Duration
	checkConfig    bool
	printExample   bool
	cpuProfile     string
	heapProfile    string
	blockProfile   string
	mutexProfile   string
	traceFile      string
}

func parseFlags(args []string, getenv func(string) string, stderr io.Writer) (*flags, error) {
	f := &flags{}
	fs := flag.NewFlagSet(args[0], flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&f.config, "config", getenv("IMAGETRUST_CONFIG"), "provider configuration file (YAML; env IMAGETRUST_CONFIG)")
	fs.StringVar(&f.address, "address", "", "override server.address, the HTTPS listen address (e.g. :8443)")
	fs.StringVar(&f.metricsAddress, "metrics-address", "", "override server.metricsAddress, the plain-HTTP /healthz, /readyz, /metrics address")
	fs.StringVar(&f.logLevel, "log-level", "info", "log level: debug, info, warn or error")
	fs.DurationVar(&f.tlsReload, "tls-reload-interval", 2*time.Second, "how often the certificate, key and client CA files are checked for changes")
	fs.BoolVar(&f.checkConfig, "check-config", false, "validate the configuration, print it with defaults filled in, and exit")
	fs.BoolVar(&f.printExample, "print-example-config", false, "print a documented example configuration and exit")
	fs.StringVar(&f.cpuProfile, "cpuprofile", "", "write a CPU profile (pprof) of the whole run to this file at shutdown")
	fs.StringVar(&f.heapProfile, "heapprofile", "", "write a heap profile (pprof, after a GC) to this file at shutdown")
	fs.StringVar(&f.blockProfile, "blockprofile", "", "write a profile of where goroutines waited (pprof block profile, every wait of 10µs or more) to this file at shutdown")
	fs.StringVar(&f.mutexProfile, "mutexprofile", "", "write a profile of lock contention (pprof mutex profile, every event) to this file at shutdown")
	fs.StringVar(&f.traceFile, "trace", "", "write an execution trace (runtime/trace; go tool trace) of the whole run to this file at shutdown")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: %s -config FILE [flags]\n\nGatekeeper external-data provider for image trust.\n\nFlags:\n", fs.Name())
		fs.PrintDefaults()
	}
	if err := fs.Parse(args[1:]); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments %q (all settings are flags or in -config)", fs.Args())
	}
	if f.tlsReload <= 0 {
		return nil, fmt.Errorf("-tls-reload-interval %v must be positive", f.tlsReload)
	}
	return f, nil
}

func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	f, err := parseFlags(args, getenv, stderr)
	if err != nil {
		return err
	}
	if f.printExample {
		_, err := stdout.Write(config.Example())
		return err
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(f.logLevel)); err != nil {
		return fmt.Errorf("-log-level %q: want debug, info, warn or error", f.logLevel)
	}
	lg := slog.New(slog.NewJSONHandler(stderr, &slog.HandlerOptions{Level: level}))
	if gc := gcDefaults(getenv, os.ReadFile); gc.gogc != 0 || gc.limit != 0 {
		if gc.gogc != 0 {
			defer gcpace.Start(gc.gogc, gc.minHeadroom)()
		}
		if gc.limit != 0 {
			debug.SetMemoryLimit(gc.limit)
		}
		lg.Debug("garbage collector defaults", slog.Int("gogc", gc.gogc), slog.Uint64("min_headroom_bytes", gc.minHeadroom), slog.Int64("gomemlimit", gc.limit))
	}

	cfg, err := loadConfig(f)
	if err != nil {
		return err
	}
	if f.checkConfig {
		b, err := cfg.Marshal()
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(stdout, "# %s: valid\n%s", f.config, b)
		return err
	}

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	var kube kubernetes.Interface
	if cfg.Auth.Kubernetes != nil {
		if kube, err = kubeClient(getenv); err != nil {
			return fmt.Errorf("auth.kubernetes: %w", err)
		}
	}

	var dyn dynamic.Interface
	if cfg.Scan.TrivyOperator.Enabled {
		if dyn, err = dynamicClient(getenv); err != nil {
			return fmt.Errorf("scan.trivyOperator: %w", err)
		}
	}

	// Everything that can fail at start (TLS files, credentials, authorities) is loaded before
	// a port is bound.
	prov, err := app.New(ctx, cfg, nil, nil, app.Options{
		Logger:     lg,
		Metrics:    reg,
		Kubernetes: kube,
		Dynamic:    dyn,
		OnReload: func(err error) {
			if err != nil {
				lg.Warn("TLS files changed but do not load; still serving the previous certificate", slog.String("error", err.Error()))
				return
			}
			lg.Info("TLS certificate, key and client CA reloaded")
		},
	})
	if err != nil {
		return err
	}
	var lc net.ListenConfig
	apiLn, err := lc.Listen(ctx, "tcp", cfg.Server.Address)
	if err != nil {
		return fmt.Errorf("server.address: %w", err)
	}
	opsLn, err := lc.Listen(ctx, "tcp", cfg.Server.MetricsAddress)
	if err != nil {
		_ = apiLn.Close()
		return fmt.Errorf("server.metricsAddress: %w", err)
	}
	prov.Runner.APIListener, prov.Runner.OpsListener = apiLn, opsLn
	runner, reloader := prov.Runner, prov.Reloader

	watchCtx, stopWatch := context.WithCancel(ctx)
	defer stopWatch()
	go reloader.Watch(watchCtx, f.tlsReload)

	stopProfiles, err := startProfiles(f)
	if err != nil {
		return err
	}
	lg.Info("starting", slog.String("version", version), slog.String("revision", revision),
		slog.String("config", f.config), slog.Int("registries", len(cfg.Registries)),
		slog.Int("authorities", len(cfg.Authorities)))
	runErr := runner.Run(ctx)
	if err := stopProfiles(); err != nil && runErr == nil {
		runErr = err
	}
	if runErr != nil {
		return runErr
	}
	lg.Info("stopped")
	return nil
}

// DefaultGOGC is the provider's GOGC unless the environment sets GOGC: the heap may grow to
// 1.5x the live data between collections instead of Go's 2x. The cache is most of the live
// data, so this bounds the resident memory of a full cache at a few percent more GC CPU.
const DefaultGOGC = 50

// DefaultMinHeadroom is how far the heap may always grow past the live data between
// collections when the environment does not set GOGC (package gcpace): with a small live heap
// GOGC 50 alone would collect every few MB, which cost a cold /v1/scan key about a tenth of
// its CPU. Above 32 MiB live, GOGC 50 gives more than this and alone decides.
const DefaultMinHeadroom = 16 << 20

// MemoryLimitFraction of the container's memory limit (cgroup v2 memory.max or v1
// memory.limit_in_bytes) becomes the soft memory limit unless the environment sets GOMEMLIMIT.
const MemoryLimitFraction = 0.85

type gcSettings struct {
	gogc        int    // 0: leave as is
	minHeadroom uint64 // bytes the heap goal is kept above the live heap (with gogc)
	limit       int64  // bytes; 0: leave as is
}

// gcDefaults returns the GC settings to apply: DefaultGOGC with DefaultMinHeadroom when GOGC
// is not set, and MemoryLimitFraction of the cgroup memory limit when GOMEMLIMIT is not set and
// there is a limit. Values the operator sets in GOGC / GOMEMLIMIT are left to the Go runtime
// (a GOGC the operator sets is used as it is, with no headroom floor).
func gcDefaults(getenv func(string) string, readFile func(string) ([]byte, error)) gcSettings {
	var s gcSettings
	if getenv("GOGC") == "" {
		s.gogc, s.minHeadroom = DefaultGOGC, DefaultMinHeadroom
	}
	if getenv("GOMEMLIMIT") == "" {
		for _, f := range []string{"/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"} {
			b, err := readFile(f)
			if err != nil {
				continue
			}
			v, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
			// "max" (v2) or a huge number (v1: no limit) means unlimited.
			if err != nil || v <= 0 || v >= 1<<60 {
				break
			}
			s.limit = int64(float64(v) * MemoryLimitFraction)
			break
		}
	}
	return s
}

// startProfiles starts the CPU profile (-cpuprofile), the execution trace (-trace) and the
// block and mutex profiles (-blockprofile, -mutexprofile); the returned function stops them and
// writes them and the heap profile (-heapprofile).
func startProfiles(f *flags) (func() error, error) {
	var cpu, tr *os.File
	if f.cpuProfile != "" {
		var err error
		if cpu, err = os.Create(f.cpuProfile); err != nil {
			return nil, fmt.Errorf("-cpuprofile: %w", err)
		}
		if err := pprof.StartCPUProfile(cpu); err != nil {
			_ = cpu.Close()
			return nil, fmt.Errorf("-cpuprofile: %w", err)
		}
	}
	if f.traceFile != "" {
		var err error
		if tr, err = os.Create(f.traceFile); err != nil {
			return nil, fmt.Errorf("-trace: %w", err)
		}
		if err := trace.Start(tr); err != nil {
			_ = tr.Close()
			return nil, fmt.Errorf("-trace: %w", err)
		}
	}
	if f.blockProfile != "" {
		runtime.SetBlockProfileRate(int((10 * time.Microsecond).Nanoseconds()))
	}
	if f.mutexProfile != "" {
		runtime.SetMutexProfileFraction(1)
	}
	return func() error {
		var errs []error
		if cpu != nil {
			pprof.StopCPUProfile()
			errs = append(errs, cpu.Close())
		}
		if tr != nil {
			trace.Stop()
			errs = append(errs, tr.Close())
		}
		for flag, p := range map[string]string{"blockprofile": f.blockProfile, "mutexprofile": f.mutexProfile} {
			if p == "" {
				continue
			}
			errs = append(errs, writeProfile(flag, p, strings.TrimSuffix(flag, "profile")))
		}
		if f.heapProfile != "" {
			runtime.GC()
			h, err := os.Create(f.heapProfile)
			if err != nil {
				return fmt.Errorf("-heapprofile: %w", err)
			}
			errs = append(errs, pprof.WriteHeapProfile(h), h.Close())
		}
		return errors.Join(errs...)
	}, nil
}

// writeProfile writes the named runtime profile (block, mutex) to path.
func writeProfile(flag, path, profile string) error {
	out, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("-%s: %w", flag, err)
	}
	if err := pprof.Lookup(profile).WriteTo(out, 0); err != nil {
		_ = out.Close()
		return fmt.Errorf("-%s: %w", flag, err)
	}
	return out.Close()
}

func loadConfig(f *flags) (*config.Config, error) {
	if f.config == "" {
		return nil, errors.New("no configuration: pass -config FILE or set IMAGETRUST_CONFIG (see -print-example-config)")
	}
	data, err := os.ReadFile(f.config)
	if err != nil {
		return nil, fmt.Errorf("reading config: %w", err)
	}
	cfg, err := config.Decode(data)
	if err != nil {
		return nil, fmt.Errorf("config %s: %w", f.config, err)
	}
	if f.address != "" {
		cfg.Server.Address = f.address
	}
	if f.metricsAddress != "" {
		cfg.Server.MetricsAddress = f.metricsAddress
	}
	cfg.ApplyDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("config %s:\n  %s", f.config, strings.ReplaceAll(err.Error(), "\n", "\n  "))
	}
	return cfg, nil
}

// restConfig uses $KUBECONFIG when set, the in-cluster service account otherwise.
func restConfig(getenv func(string) string) (*rest.Config, error) {
	var rc *rest.Config
	var err error
	if p := getenv("KUBECONFIG"); p != "" {
		rc, err = clientcmd.BuildConfigFromFlags("", p)
	} else {
		rc, err = rest.InClusterConfig()
	}
	if err != nil {
		return nil, fmt.Errorf("kubernetes client: %w", err)
	}
	return rc, nil
}

// kubeClient is the typed client on restConfig.
func kubeClient(getenv func(string) string) (kubernetes.Interface, error) {
	rc, err := restConfig(getenv)
	if err != nil {
		return nil, err
	}
	return kubernetes.NewForConfig(rc)
}

// dynamicClient is the dynamic client on restConfig (Trivy Operator reports).
func dynamicClient(getenv func(string) string) (dynamic.Interface, error) {
	rc, err := restConfig(getenv)
	if err != nil {
		return nil, err
	}
	return dynamic.NewForConfig(rc)
}
