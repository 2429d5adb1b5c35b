package network

import (
	"net"
	"slices"
	"testing"
)

// filterDump is `iptables -S` of a host with the walls and policies of
// two bridges, dle1 and dle12 (whose name begins with the other's), and
// rules of no bridge.
const filterDump = `-P INPUT ACCEPT
-P FORWARD ACCEPT
-P OUTPUT ACCEPT
-N DLW-IN-dle1
-N DLW-IN-dle12
-N DLW-NP-dle1
-N DLW-NP-dle12
-N DOCKER
-A INPUT -i dle12 -m comment --comment "driftless walls dle12" -j DLW-IN-dle12
-A INPUT -i dle1 -m comment --comment "driftless walls dle1" -j DLW-IN-dle1
-A INPUT -i lo -j ACCEPT
-A FORWARD -i dle1 -o dle1 -m comment --comment "driftless policies dle1" -j DLW-NP-dle1
-A FORWARD -i dle1 -o dle1 -m comment --comment "driftless walls dle1" -j DROP
-A FORWARD -i dle12 -o dle12 -m comment --comment "driftless policies dle12" -j DLW-NP-dle12
-A FORWARD -i dle12 -o dle12 -m comment --comment "driftless walls dle12" -j DROP
-A DLW-IN-dle1 ! -s 127.0.0.0/8 -d 127.0.0.0/8 -m conntrack ! --ctstate RELATED,ESTABLISHED,DNAT -j DROP
-A DLW-IN-dle1 -j DROP
-A DLW-IN-dle12 -j DROP
-A DLW-NP-dle1 -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
-A DLW-NP-dle1 -s 10.170.0.2/32 -d 10.170.0.3/32 -p tcp -m tcp --dport 8080 -j ACCEPT
-A DLW-NP-dle12 -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
-A DOCKER -i dle1 -j RETURN
`

func TestOwnFilterRules(t *testing.T) {
	tests := []struct {
		bridge string
		want   []string
	}{
		{"dle1", []string{
			"-N DLW-IN-dle1",
			"-N DLW-NP-dle1",
			`-A INPUT -i dle1 -m comment --comment "driftless walls dle1" -j DLW-IN-dle1`,
			`-A FORWARD -i dle1 -o dle1 -m comment --comment "driftless policies dle1" -j DLW-NP-dle1`,
			`-A FORWARD -i dle1 -o dle1 -m comment --comment "driftless walls dle1" -j DROP`,
			"-A DLW-IN-dle1 ! -s 127.0.0.0/8 -d 127.0.0.0/8 -m conntrack ! --ctstate RELATED,ESTABLISHED,DNAT -j DROP",
			"-A DLW-IN-dle1 -j DROP",
			"-A DLW-NP-dle1 -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT",
			"-A DLW-NP-dle1 -s 10.170.0.2/32 -d 10.170.0.3/32 -p tcp -m tcp --dport 8080 -j ACCEPT",
		}},
		{"dle12", []string{
			"-N DLW-IN-dle12",
			"-N DLW-NP-dle12",
			`-A INPUT -i dle12 -m comment --comment "driftless walls dle12" -j DLW-IN-dle12`,
			`-A FORWARD -i dle12 -o dle12 -m comment --comment "driftless policies dle12" -j DLW-NP-dle12`,
			`-A FORWARD -i dle12 -o dle12 -m comment --comment "driftless walls dle12" -j DROP`,
			"-A DLW-IN-dle12 -j DROP",
			"-A DLW-NP-dle12 -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT",
		}},
		{"dle", nil},
		{"lo", nil},
	}
	for _, tt := range tests {
		t.Run(tt.bridge, func(t *testing.T) {
			if got := OwnFilterRules(filterDump, tt.bridge); !slices.Equal(got, tt.want) {
				t.Errorf("OwnFilterRules(%s) =\n%q\nwant\n%q", tt.bridge, got, tt.want)
			}
		})
	}
}

// natDump is `iptables -t nat -S` with the port mappings and masquerade
// rules of instances on 10.170.0.0/16 and 10.171.0.0/16.
const natDump = `-P PREROUTING ACCEPT
-N CNI-DN-aaaa
-N CNI-HOSTPORT-DNAT
-N CNI-abcd
-A POSTROUTING -s 10.170.0.2/32 -m comment --comment "name: \"driftless\" id: \"x-1\"" -j CNI-abcd
-A POSTROUTING -s 10.171.0.2/32 -m comment --comment "name: \"driftless\" id: \"y-1\"" -j CNI-efgh
-A CNI-DN-aaaa -s 10.170.0.2/32 -p tcp -m tcp --dport 20001 -j CNI-HOSTPORT-SETMARK
-A CNI-DN-aaaa -p tcp -m tcp --dport 20001 -j DNAT --to-destination 10.170.0.2:8080
-A CNI-DN-bbbb -p tcp -m tcp --dport 20002 -j DNAT --to-destination 10.171.0.2:8080
-A CNI-abcd -d 10.170.0.0/16 -m comment --comment "name: \"driftless\" id: \"x-1\"" -j ACCEPT
-A CNI-abcd ! -d 224.0.0.0/4 -j MASQUERADE
-A CNI-HOSTPORT-DNAT -p tcp -m multiport --dports 20001 -j CNI-DN-aaaa
-A POSTROUTING -s 10.17.0.2/32 -j MASQUERADE
`

func TestNATRulesOf(t *testing.T) {
	tests := []struct {
		subnet string
		want   int
	}{
		{"10.170.0.0/16", 4},
		{"10.171.0.0/16", 2},
		{"10.17.0.0/16", 1},
		{"10.172.0.0/16", 0},
		{"not a subnet", 0},
	}
	for _, tt := range tests {
		t.Run(tt.subnet, func(t *testing.T) {
			if got := NATRulesOf(natDump, tt.subnet); len(got) != tt.want {
				t.Errorf("NATRulesOf(%s) = %d rules %q, want %d", tt.subnet, len(got), got, tt.want)
			}
		})
	}
}

func TestMentions(t *testing.T) {
	_, sub, err := net.ParseCIDR("10.170.0.0/16")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		arg  string
		want bool
	}{
		{"10.170.0.2", true}, {"10.170.0.2/32", true}, {"10.170.0.2:8080", true}, {"!10.170.0.0/16", true},
		{"10.17.0.2", false}, {"10.1700.0.2", false}, {"dle1", false}, {"8080", false}, {"fd00::1", false},
	}
	for _, tt := range tests {
		if got := mentions(tt.arg, sub); got != tt.want {
			t.Errorf("mentions(%q) = %v, want %v", tt.arg, got, tt.want)
		}
	}
}
