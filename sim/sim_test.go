package sim_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/driftless/driftless/internal/testenv"
)

// TestHollowCellsJoinAndAreLost: hollow cells join a real controller
// through real NATS (each as its own cell) and Consul; a commit's apps are
// staged by them, placed on them, RUNNING in the controller's view and
// registered in Consul; a killed hollow cell is lost: its session lapses,
// its instances leave what routers route to, and the controller places
// them on the other cells.
func TestHollowCellsJoinAndAreLost(t *testing.T) {
	tests := []struct {
		name            string
		cells           int
		apps, instances int
	}{
		{name: "3 cells, 2 apps × 3 instances", cells: 3, apps: 2, instances: 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := newSimPlatform(t, platformOptions{lostAfter: 3 * time.Second})
			p.startCells("hollow-", tt.cells, 1024, 50*time.Millisecond)
			p.commit(appFiles("app", tt.apps, tt.instances, 64), "apps")

			want := tt.apps * tt.instances
			var placed map[string]map[string]string
			testenv.Eventually(t, 60*time.Second, 100*time.Millisecond, "every instance RUNNING and registered", func() error {
				return p.settled(tt.apps, tt.instances, &placed, "")
			})
			perCell := map[string]int{}
			for _, insts := range placed {
				for _, cell := range insts {
					perCell[cell]++
				}
			}
			if len(perCell) < 2 {
				t.Errorf("%d instances on %d cell(s) (%v), want them spread", want, len(perCell), perCell)
			}
			victim, most := "", 0
			for cell, n := range perCell {
				if n > most {
					victim, most = cell, n
				}
			}
			p.kill(victim)
			testenv.Eventually(t, 60*time.Second, 200*time.Millisecond, "the killed cell's instances placed elsewhere", func() error {
				return p.settled(tt.apps, tt.instances, &placed, victim)
			})
		})
	}
}

// settled checks that every app has instances RUNNING in the controller's
// view and instances routed in Consul, none of them on cell gone.
func (p *simPlatform) settled(apps, instances int, placed *map[string]map[string]string, gone string) error {
	running := p.running()
	routed, err := p.routed()
	if err != nil {
		return err
	}
	for i := range apps {
		name := fmt.Sprintf("app%d", i)
		if running[name] != instances {
			return fmt.Errorf("%s: %d RUNNING, want %d", name, running[name], instances)
		}
		insts := routed["dev-"+name]
		if len(insts) != instances {
			return fmt.Errorf("%s: %d routed, want %d", name, len(insts), instances)
		}
		for guid, cell := range insts {
			if cell == gone {
				return fmt.Errorf("%s: instance %s still routed on killed cell %s", name, guid, gone)
			}
		}
	}
	*placed = routed
	return nil
}
