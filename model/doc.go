// Package model defines the platform's nouns once: apps and their keys,
// releases and run specs, health checks and balancing with their
// defaults, instances and their states, located problems, events and log
// lines, and the limits the engines underneath impose.
//
// Every other package speaks these types: manifests converts Cloud
// Foundry's spellings into them, the controller stores them in Consul KV,
// the bus carries them inside its messages, the router reads them from
// Consul, and the API's types are views made from them. The package has
// no dependencies beyond the standard library and does no I/O.
package model
