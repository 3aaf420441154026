package main

import (
	"bytes"
	"errors"
	"flag"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// Every -skip key the help names leaves out a phase of the table (raw and
// get leave out their half of the rounds), and every phase that can be
// left out is named.
func TestSkipKeysAreThePhases(t *testing.T) {
	var help bytes.Buffer
	if _, err := parseOptions([]string{"-h"}, &help); !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("-h: %v", err)
	}
	m := regexp.MustCompile(`phases to skip: ([a-z,-]+)`).FindStringSubmatch(help.String())
	if m == nil {
		t.Fatalf("the help names no phases to skip:\n%s", help.String())
	}
	named := strings.Split(m[1], ",")
	keys := []string{"raw", "get"}
	for _, p := range phases {
		if p.skip != "" {
			keys = append(keys, p.skip)
		}
	}
	slices.Sort(named)
	slices.Sort(keys)
	if !slices.Equal(named, keys) {
		t.Errorf("-skip names %v; the phases' keys are %v", named, keys)
	}
}
