// Command consul is Consul's CLI built from its Go module at a pinned version.
package main

import (
	"fmt"
	"os"

	mcli "github.com/mitchellh/cli"

	"github.com/hashicorp/consul/command"
	"github.com/hashicorp/consul/command/cli"
	"github.com/hashicorp/consul/command/version"
)

func main() {
	ui := &cli.BasicUI{BasicUi: mcli.BasicUi{Writer: os.Stdout, ErrorWriter: os.Stderr}}
	cmds := command.RegisteredCommands(ui)
	c := &mcli.CLI{Name: "consul", Args: os.Args[1:], Commands: cmds, HelpWriter: os.Stdout, ErrorWriter: os.Stderr}
	if c.IsVersion() {
		os.Exit(version.New(ui).Run(nil))
	}
	code, err := c.Run()
	if err != nil {
		fmt.Fprintln(os.Stderr, "consul:", err)
		os.Exit(1)
	}
	os.Exit(code)
}
