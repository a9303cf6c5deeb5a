package statuspage_test

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/vigil-go/vigil"
	"github.com/vigil-go/vigil/statuspage"
	"github.com/vigil-go/vigil/vigilgrpc"
)

// What holds upstreams is Upstreams.
var (
	_ statuspage.Upstreams = (*vigil.Client)(nil)
	_ statuspage.Upstreams = (*vigilgrpc.Builder)(nil)
)

// The package links neither grpc-go nor NATS nor an exporter: a program
// that serves the page of its Client links nothing it does not use.
func TestLightImports(t *testing.T) {
	if testing.Short() {
		t.Skip("runs go list")
	}
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command")
	}
	out, err := exec.Command(goTool, "list", "-deps", "github.com/vigil-go/vigil/statuspage").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	for dep := range strings.Lines(string(out)) {
		dep = strings.TrimSpace(dep)
		for _, heavy := range []string{"google.golang.org/grpc", "github.com/nats-io/", "github.com/vigil-go/vigil/fleet",
			"github.com/vigil-go/vigil/vigilgrpc", "github.com/prometheus/", "go.opentelemetry.io/"} {
			if strings.HasPrefix(dep, heavy) {
				t.Errorf("statuspage depends on %s", dep)
			}
		}
	}
}
