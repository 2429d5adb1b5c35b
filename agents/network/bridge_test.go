package network

import "testing"

func TestGateway(t *testing.T) {
	tests := []struct {
		subnet, ip string
		prefix     int
		bad        bool
	}{
		{"10.200.0.0/16", "10.200.0.1", 16, false},
		{"10.201.7.0/24", "10.201.7.1", 24, false},
		{"10.200.0.5/16", "10.200.0.1", 16, false},
		{"fd00::/64", "", 0, true},
		{"nonsense", "", 0, true},
	}
	for _, tt := range tests {
		ip, prefix, err := Gateway(tt.subnet)
		if (err != nil) != tt.bad || ip != tt.ip || prefix != tt.prefix {
			t.Errorf("Gateway(%q) = %s/%d, %v", tt.subnet, ip, prefix, err)
		}
	}
}
