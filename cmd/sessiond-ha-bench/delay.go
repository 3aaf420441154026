package main

import (
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"sync"
	"time"
)

// replicationAddr is the second loopback address the pair's standby
// streams over; clients and sessiond stay on 127.0.0.1.
const replicationAddr = "127.0.0.2"

// loopbackDelay delays every packet to or from replicationAddr on lo by
// netem, in both directions, so a commit's round trip to the standby grows
// by twice the delay while other loopback traffic passes undelayed: a prio
// qdisc at lo's root, its fourth band a netem, and u32 filters sending
// packets with replicationAddr as source or destination there (the
// priomap keeps everything else in bands 0–2).
type loopbackDelay struct {
	once sync.Once
	err  error
}

// addLoopbackDelay installs the delay. It refuses when lo already has a
// root qdisc other than the kernel's noqueue, so it never replaces a
// setting someone else made. Remove it when done, also after an error.
func addLoopbackDelay(delay time.Duration) (*loopbackDelay, error) {
	if _, err := exec.LookPath("tc"); err != nil {
		return nil, errors.New("tc not found: -standby-delay needs it (apt-get install iproute2), or run with -standby-delay=0")
	}
	out, err := exec.Command("tc", "qdisc", "show", "dev", "lo").CombinedOutput()
	if err != nil {
		return nil, fmt.Errorf("tc qdisc show dev lo: %v: %s", err, out)
	}
	if s := string(out); strings.TrimSpace(s) != "" && !strings.HasPrefix(s, "qdisc noqueue 0: root") {
		return nil, fmt.Errorf("lo already has a qdisc; not replacing it:\n%s", out)
	}
	d := &loopbackDelay{}
	usec := fmt.Sprint(delay.Microseconds()) + "us"
	for _, args := range [][]string{
		{"qdisc", "add", "dev", "lo", "root", "handle", "1:", "prio", "bands", "4"},
		{"qdisc", "add", "dev", "lo", "parent", "1:4", "handle", "40:", "netem", "delay", usec},
		{"filter", "add", "dev", "lo", "parent", "1:", "protocol", "ip", "prio", "1", "u32", "match", "ip", "dst", replicationAddr + "/32", "flowid", "1:4"},
		{"filter", "add", "dev", "lo", "parent", "1:", "protocol", "ip", "prio", "2", "u32", "match", "ip", "src", replicationAddr + "/32", "flowid", "1:4"},
	} {
		if out, err := exec.Command("tc", args...).CombinedOutput(); err != nil {
			d.Remove()
			return nil, fmt.Errorf("tc %s: %v: %s", strings.Join(args, " "), err, out)
		}
	}
	return d, nil
}

// Remove deletes lo's root qdisc, and with it the filters and the netem;
// lo is back to noqueue. Safe to call more than once and concurrently.
func (d *loopbackDelay) Remove() error {
	d.once.Do(func() {
		if out, err := exec.Command("tc", "qdisc", "del", "dev", "lo", "root").CombinedOutput(); err != nil {
			d.err = fmt.Errorf("tc qdisc del dev lo root: %v: %s", err, out)
		}
	})
	return d.err
}
