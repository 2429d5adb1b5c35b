package plan

import (
	"fmt"

	"github.com/driftless/driftless/model"
)

// place picks the cell for a new instance of app: among cells that are not
// lost and have room (memory, disk, instance slots), the one in the zone
// with the fewest instances of the app, then the cell with the fewest
// instances of the app, then the most free memory, then the lowest id.
// When none fits it returns nil and why.
func (s *state) place(run model.RunSpec) (*cellState, string) {
	var best *cellState
	var bestFree int64 = -1
	var largestFree int64 = -1
	var largestFreeCell string
	live := 0
	for _, c := range s.cells {
		if c.Lost {
			continue
		}
		live++
		free := c.Capacity.MemoryMB - c.usedMemory
		if free > largestFree {
			largestFree, largestFreeCell = free, c.ID
		}
		if !fits(c, run) {
			continue
		}
		if best == nil || s.better(c, free, best, bestFree) {
			best, bestFree = c, free
		}
	}
	if best != nil {
		return best, ""
	}
	switch {
	case live == 0:
		return nil, "no cell is available (none has sent a heartbeat recently)"
	case largestFree < run.MemoryMB:
		return nil, fmt.Sprintf("no cell has %d MB of memory free (most free: %d MB on %s)",
			run.MemoryMB, max(largestFree, 0), largestFreeCell)
	default:
		return nil, fmt.Sprintf("no cell has room for %d MB memory, %d MB disk and one more instance", run.MemoryMB, run.DiskMB)
	}
}

func fits(c *cellState, run model.RunSpec) bool {
	if c.Capacity.MemoryMB-c.usedMemory < run.MemoryMB {
		return false
	}
	if c.Capacity.DiskMB > 0 && c.Capacity.DiskMB-c.usedDisk < run.DiskMB {
		return false
	}
	if c.Capacity.Instances > 0 && c.used >= c.Capacity.Instances {
		return false
	}
	return true
}

// better reports whether cell a (with free memory aFree) is a better home
// than cell b for a new instance of the app being planned.
func (s *state) better(a *cellState, aFree int64, b *cellState, bFree int64) bool {
	if za, zb := s.appInZone[a.zone], s.appInZone[b.zone]; za != zb {
		return za < zb
	}
	if na, nb := s.appOnCell[a.pos], s.appOnCell[b.pos]; na != nb {
		return na < nb
	}
	if aFree != bFree {
		return aFree > bFree
	}
	return a.ID < b.ID
}
