package e2e

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/driftless/driftless/internal/testenv"
	"github.com/driftless/driftless/model"
)

// probeIdent waits until the wall probe at host answers, through the
// router, from an instance other than notGUID three times in a row (an
// app rolled to a new release), and returns that instance's guid and
// address on the bridge.
func (p *platform) probeIdent(t *testing.T, host, notGUID string) (guid, ip string) {
	t.Helper()
	testenv.Eventually(t, 120*time.Second, 300*time.Millisecond, host+" serves from a new instance", func() error {
		for i := range 3 {
			code, body, err := p.get(host, "/")
			if err != nil || code != 200 {
				return fmt.Errorf("%d %q %v", code, body, err)
			}
			var g, a string
			for _, f := range strings.Fields(string(body)) {
				if v, ok := strings.CutPrefix(f, "guid="); ok {
					g = v
				}
				if v, ok := strings.CutPrefix(f, "ip="); ok {
					a = v
				}
			}
			if g == "" || a == "" || g == notGUID {
				return fmt.Errorf("answer %d: %q", i, body)
			}
			if i > 0 && g != guid {
				return fmt.Errorf("two instances answer: %s and %s", guid, g)
			}
			guid, ip = g, a
		}
		return nil
	})
	return guid, ip
}

// TestNetworkPolicies deploys two wall probes, front and back, and checks
// from inside their containers that a network-policies.yml committed to
// the apps' repository opens the walls between them, one way and on the
// ports it names only: without a policy front cannot reach back's
// instance; with "front → back tcp 8080" it connects to 8080 while 8081
// (where nothing listens: refused if it were let through) times out, and
// back still cannot reach front; dev restarted adopts the instances with
// the rule kept; a bad policy file is refused at its file:line and
// changes nothing; the policy removed by commit walls them off again.
func TestNetworkPolicies(t *testing.T) {
	p := startDev(t)
	const front, back = "netfront.apps.localhost", "netback.apps.localhost"
	p.addWallProbe("apps/netfront", "netfront", front)
	p.addWallProbe("apps/netback", "netback", back)
	p.commitAll("two wall probes")
	sync := func() { _, _ = p.client.Sync(context.Background(), false, 0) }
	sync()
	frontGUID, frontIP := p.probeIdent(t, front, "")
	backGUID, backIP := p.probeIdent(t, back, "")

	check := func(when, from, addr, want string) {
		t.Helper()
		if got := p.dialFrom(t, from, addr); got != want {
			t.Errorf("%s: %s dialing %s from inside its instance: %s; want %s", when, from, addr, got, want)
		}
	}
	// waitDial waits until from's dial of addr gives want.
	waitDial := func(what, from, addr, want string) {
		t.Helper()
		testenv.Eventually(t, 30*time.Second, 500*time.Millisecond, what, func() error {
			if got := p.dialFrom(t, from, addr); got != want {
				return errors.New(got)
			}
			return nil
		})
	}
	check("no policy", front, net.JoinHostPort(backIP, "8080"), "timeout")
	check("no policy", back, net.JoinHostPort(frontIP, "8080"), "timeout")

	// front → back on tcp 8080: back rolls to a release carrying it.
	p.write(map[string]string{"network-policies.yml": "policies:\n- source: netfront\n  destination: netback\n  protocol: tcp\n  ports: 8080\n"})
	p.commitAll("netfront may reach netback on 8080")
	sync()
	backGUID, backIP = p.probeIdent(t, back, backGUID)
	waitDial("netfront reaches netback's instance directly", front, net.JoinHostPort(backIP, "8080"), "connected")
	check("policy front → back tcp 8080", front, net.JoinHostPort(backIP, "8081"), "timeout")
	check("policy front → back tcp 8080 (one way)", back, net.JoinHostPort(frontIP, "8080"), "timeout")
	if g, _ := p.probeIdent(t, front, ""); g != frontGUID {
		t.Errorf("the policy restarted its source app: %s → %s", frontGUID, g)
	}

	// dev restarted: the agent adopts both instances and keeps the rule.
	p.restart()
	for host, guid := range map[string]string{front: frontGUID, back: backGUID} {
		if g, _ := p.probeIdent(t, host, ""); g != guid {
			t.Errorf("%s's instance was replaced across the restart: %s → %s", host, guid, g)
		}
	}
	testenv.Eventually(t, 30*time.Second, 300*time.Millisecond, "the adopting agent rewrites its rules", func() error {
		data, err := os.ReadFile(p.logPath)
		if err != nil {
			return err
		}
		log := string(data)
		if strings.Count(log, `msg="cell ready"`) < 2 {
			return errors.New("the agent is not ready again")
		}
		if after := log[strings.LastIndex(log, `msg="cell ready"`):]; !strings.Contains(after, `msg="network policy rules written"`) {
			return errors.New("no rules written since")
		}
		return nil
	})
	// The restarted cell registers its adopted instances in Consul again
	// in its first registry syncs: routes may come and go until then.
	time.Sleep(5 * time.Second)
	p.probeIdent(t, front, "")
	check("after the restart", front, net.JoinHostPort(backIP, "8080"), "connected")
	check("after the restart", front, net.JoinHostPort(backIP, "8081"), "timeout")

	// A bad file is refused at its line; the apps and the rule stay.
	p.write(map[string]string{"network-policies.yml": "policies:\n- source: netfront\n  destination: netback\n  protocol: icmp\n  ports: 8080\n"})
	bad := p.commitAll("a bad policy")
	sync()
	testenv.Eventually(t, 30*time.Second, 300*time.Millisecond, "the bad policy refused at its line", func() error {
		st, err := p.client.Status(context.Background())
		if err != nil {
			return err
		}
		if len(st.Sources) != 1 {
			return fmt.Errorf("%d sources", len(st.Sources))
		}
		s := st.Sources[0]
		if s.LastSeen != bad || s.LastApplied == bad {
			return fmt.Errorf("source %+v", s)
		}
		for _, e := range s.Errors {
			if e.File == model.NetworkPoliciesFile && e.Line == 4 && strings.Contains(e.Message, `protocol "icmp"`) {
				return nil
			}
		}
		return fmt.Errorf("errors %+v", s.Errors)
	})
	if g, _ := p.probeIdent(t, back, ""); g != backGUID {
		t.Errorf("the refused commit rolled netback: %s → %s", backGUID, g)
	}
	check("after the refused commit", front, net.JoinHostPort(backIP, "8080"), "connected")

	// The policy removed: walled off again.
	p.write(map[string]string{"network-policies.yml": ""})
	p.commitAll("no policies")
	sync()
	_, backIP = p.probeIdent(t, back, backGUID)
	waitDial("netfront walled off netback again", front, net.JoinHostPort(backIP, "8080"), "timeout")
	check("policy removed", back, net.JoinHostPort(frontIP, "8080"), "timeout")
}
