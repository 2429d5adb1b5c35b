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
func (s *state) place(need model.Resources) (*cellState, string) {
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
		if !fits(c, need) {
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
	case largestFree < need.MemoryMB:
		return nil, fmt.Sprintf("no cell has %d MB of memory free (most free: %d MB on %s)",
			need.MemoryMB, max(largestFree, 0), largestFreeCell)
	default:
		return nil, fmt.Sprintf("no cell has room for %d MB memory, %d MB disk and one more instance", need.MemoryMB, need.DiskMB)
	}
}

// fits reports whether one more instance needing need's memory and disk
// fits on c (need is small and passed by value: this runs for every cell
// at every placement).
func fits(c *cellState, need model.Resources) bool {
	if c.Capacity.MemoryMB-c.usedMemory < need.MemoryMB {
		return false
	}
	if c.Capacity.DiskMB > 0 && c.Capacity.DiskMB-c.usedDisk < need.DiskMB {
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
