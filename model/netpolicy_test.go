package model

import (
	"strings"
	"testing"
)

func TestParsePortRange(t *testing.T) {
	tests := []struct {
		in      string
		want    PortRange
		str     string
		wantErr string
	}{
		{in: "8080", want: PortRange{8080, 8080}, str: "8080"},
		{in: "8000-8100", want: PortRange{8000, 8100}, str: "8000-8100"},
		{in: " 1 - 65535 ", want: PortRange{1, 65535}, str: "1-65535"},
		{in: "9000-9000", want: PortRange{9000, 9000}, str: "9000"},
		{in: "0", wantErr: "ports go from 1 to 65535"},
		{in: "65536", wantErr: "ports go from 1 to 65535"},
		{in: "9000-8000", wantErr: "the first of a range first"},
		{in: "http", wantErr: "give a port (8080) or a range (8000-8100)"},
		{in: "80-", wantErr: "give a port"},
		{in: "80-90-100", wantErr: "give a port"},
		{in: "", wantErr: "give a port"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParsePortRange(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("ParsePortRange(%q) = %v, %v; want an error with %q", tt.in, got, err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want || got.String() != tt.str {
				t.Fatalf("ParsePortRange(%q) = %v (%s), %v; want %v (%s)", tt.in, got, got.String(), err, tt.want, tt.str)
			}
		})
	}
}
