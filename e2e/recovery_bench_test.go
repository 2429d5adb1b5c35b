package e2e

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/driftless/driftless/api"
	"github.com/driftless/driftless/model"
)

// BenchmarkRecovery measures, on real parts, how fast lost instances come
// back:
//   - instance-kill-to-replacement: `driftless dev`, 5 instances; the task
//     of one (each in turn) is killed with SIGKILL, the clock stops when the router
//     answers from a new instance at that index;
//   - cell-kill-to-all-elsewhere: two cells in their own network
//     namespaces; one agent is killed with SIGKILL together with its
//     containers, the clock stops when every instance runs on the other
//     cell and answers through the router. The default lost-after (10 s)
//     is the detection part.
//
// Run with: go test ./e2e -run '^$' -bench Recovery -benchtime 10x
func BenchmarkRecovery(b *testing.B) {
	b.Run("instance-kill-to-replacement", func(b *testing.B) {
		// Five instances, killed in turn: no index crashes three times in a
		// row, so no restart waits for the crash backoff.
		p := startDev(b)
		p.write(map[string]string{"apps/hello/manifest.yml": helloManifest(5, "K")})
		p.addHello("apps/hello")
		p.commitAll("hello")
		_, _ = p.client.Sync(context.Background(), false, 0)
		p.waitServing(b, 120*time.Second, 5, func(info) error { return nil })
		var samples []time.Duration
		for i := range b.N {
			d, err := p.client.App(context.Background(), "dev", "hello")
			if err != nil {
				b.Fatal(err)
			}
			var victim api.Instance
			for _, in := range d.Instances {
				if in.Index == i%5 && in.State == model.StateRunning {
					victim = in
				}
			}
			if victim.GUID == "" {
				b.Fatalf("no running instance %d: %+v", i%5, d.Instances)
			}
			start := time.Now()
			p.killTask(b, victim.GUID)
			err = pollAnswer(p, 30*time.Second, func(in info) bool {
				return in.Index == fmt.Sprint(victim.Index) && in.GUID != victim.GUID
			})
			if err != nil {
				b.Fatal(err)
			}
			samples = append(samples, time.Since(start))
			p.waitServing(b, 30*time.Second, 5, func(info) error { return nil })
		}
		report(b, samples)
	})

	b.Run("cell-kill-to-all-elsewhere", func(b *testing.B) {
		c := startCluster(b, []string{"a", "b"}, 1, "--lost-after", "10s")
		c.addHello("apps/hello")
		c.write(map[string]string{"apps/hello/manifest.yml": helloManifest(4, "C")})
		c.commit("four instances")
		var samples []time.Duration
		for i := range b.N {
			victim, survivor := "a", "b"
			if i%2 == 1 {
				victim, survivor = "b", "a"
			}
			c.waitRunning(b, 120*time.Second, 4, func(insts []api.Instance) error {
				if pc := perCell(insts); pc[victim] == 0 {
					return fmt.Errorf("nothing on %s yet: %v", victim, pc)
				}
				return nil
			})
			start := time.Now()
			c.agents[victim].kill()
			for _, id := range c.containerIDs()[victim] {
				c.removeContainer(victim, id) // the cell's host died with it
			}
			c.waitRunning(b, 60*time.Second, 4, func(insts []api.Instance) error {
				for _, in := range insts {
					if in.Cell != survivor || in.State != model.StateRunning {
						return fmt.Errorf("instance %d on %s is %s", in.Index, in.Cell, in.State)
					}
				}
				return nil
			})
			samples = append(samples, time.Since(start))
			c.startAgent(victim)
			// Spread again: scale down and up so the next round has
			// instances on the victim.
			c.write(map[string]string{"apps/hello/manifest.yml": helloManifest(2, "C")})
			c.commit("two")
			c.waitRunning(b, 60*time.Second, 2, nil)
			c.write(map[string]string{"apps/hello/manifest.yml": helloManifest(4, "C")})
			c.commit("four")
		}
		report(b, samples)
	})
}
