// goyaml decodes each YAML document of stdin the way Talos does (yaml.v3 into typed Go structs) and prints one
// JSON line per document. The types mirror the Talos fields whose YAML readings differ between YAML 1.2 and Go:
// file modes (octal), bools (1.1 words), strings that look like numbers or bools.
package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"

	"gopkg.in/yaml.v3"
)

type file struct {
	Path        string `yaml:"path" json:"path"`
	Op          string `yaml:"op" json:"op"`
	Content     string `yaml:"content" json:"content"`
	Permissions uint32 `yaml:"permissions" json:"permissions"`
}

type iface struct {
	Interface string `yaml:"interface" json:"interface"`
	MTU       int    `yaml:"mtu" json:"mtu"`
	DHCP      bool   `yaml:"dhcp" json:"dhcp"`
}

type doc struct {
	Kind     string `yaml:"kind" json:"kind"`
	Hostname string `yaml:"hostname" json:"hostname"`
	Version  string `yaml:"version" json:"version"`
	Machine  struct {
		Type    string `yaml:"type" json:"type"`
		Install struct {
			Disk  string `yaml:"disk" json:"disk"`
			Wipe  bool   `yaml:"wipe" json:"wipe"`
			Image string `yaml:"image" json:"image"`
		} `yaml:"install" json:"install"`
		Files      []file            `yaml:"files" json:"files"`
		NodeLabels map[string]string `yaml:"nodeLabels" json:"nodeLabels"`
		Sysctls    map[string]string `yaml:"sysctls" json:"sysctls"`
		Network    struct {
			Hostname   string  `yaml:"hostname" json:"hostname"`
			Interfaces []iface `yaml:"interfaces" json:"interfaces"`
		} `yaml:"network" json:"network"`
		Features struct {
			KubePrism struct {
				Enabled bool `yaml:"enabled" json:"enabled"`
				Port    int  `yaml:"port" json:"port"`
			} `yaml:"kubePrism" json:"kubePrism"`
		} `yaml:"features" json:"features"`
	} `yaml:"machine" json:"machine"`
}

func main() {
	dec := yaml.NewDecoder(os.Stdin)
	out := json.NewEncoder(os.Stdout)
	for {
		var d doc
		err := dec.Decode(&d)
		if errors.Is(err, io.EOF) {
			return
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		if err := out.Encode(d); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
	}
}
