package main

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/spf13/pflag"
)

// hostServicePortsValue is the agent's repeatable --host-service-port: a
// TCP port on the bridge's gateway that instances may reach.
type hostServicePortsValue struct{ ports *[]int }

// hostServicePortFlag binds --host-service-port to ports.
func hostServicePortFlag(f *pflag.FlagSet, ports *[]int) {
	f.Var(hostServicePortsValue{ports}, "host-service-port",
		"TCP port on the bridge's gateway that instances may reach, past the walls (a host service for apps: a database, a DNS resolver); repeatable")
}

// String implements pflag.Value.
func (v hostServicePortsValue) String() string {
	if v.ports == nil {
		return "[]"
	}
	s := make([]string, len(*v.ports))
	for i, p := range *v.ports {
		s[i] = strconv.Itoa(p)
	}
	return "[" + strings.Join(s, ",") + "]"
}

// Set implements pflag.Value: one port per use of the flag.
func (v hostServicePortsValue) Set(s string) error {
	p, err := strconv.Atoi(strings.TrimSpace(s))
	if err != nil || p < 1 || p > 65535 {
		return fmt.Errorf("want a TCP port, 1 to 65535")
	}
	for _, have := range *v.ports {
		if have == p {
			return nil
		}
	}
	*v.ports = append(*v.ports, p)
	return nil
}

// Type implements pflag.Value.
func (hostServicePortsValue) Type() string { return "port" }
