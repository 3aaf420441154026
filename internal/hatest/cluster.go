// Package hatest runs a Patroni-managed Postgres 15 pair for tests and
// measurements: one etcd member and two Patroni nodes, every process on
// 127.0.0.1 with ports of its own and its files under one directory, so
// several can run at once beside anything else on the machine. It uses
// the Debian packages patroni, etcd-server and postgresql-15 (installed by
// .ci/run) and must run as root: Patroni and Postgres refuse root, so
// they run as the postgres user.
package hatest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
)

// BinDir is where Debian's postgresql-15 keeps its programs.
const BinDir = "/usr/lib/postgresql/15/bin"

// Timing of the cluster, the values a production pair would use: the
// leader key lives TTL; each node's loop runs every LoopWait; DCS and
// Postgres calls are retried for RetryTimeout. A primary that dies is
// replaced within about TTL.
const (
	TTL          = 10
	LoopWait     = 1
	RetryTimeout = 4
)

// Config says what cluster to start.
type Config struct {
	// Synchronous sets Patroni's synchronous_mode: a commit is
	// acknowledged once the standby has it. False is the asynchronous
	// control, which may lose acknowledged commits in a failover.
	Synchronous bool
	// Database is created on the primary once the pair is up.
	Database string
	// Fsync turns fsync and full_page_writes on, as in production; off,
	// the default, the tests spare the shared machine's disk (a process
	// kill, unlike a power loss, loses nothing either way).
	Fsync bool
	// DelayableReplication puts a proxy of this process in front of each
	// Postgres and gives its address as the node's connect_address, which
	// is what the standby streams from (and copies its base backup
	// through); clients keep connecting to PGPort directly. Then
	// SetReplicationDelay delays the replication traffic alone, as a
	// standby in another zone would see it. False: no proxy, the standby
	// connects to PGPort.
	DelayableReplication bool
}

// Node is one Patroni node and its Postgres.
type Node struct {
	Name    string
	PGPort  int
	APIPort int
	DataDir string
	dir     string
	proxy   *delayProxy // see Config.DelayableReplication
	patroni *exec.Cmd
	exited  chan struct{}
	log     *lockedBuffer
}

// Cluster is a running pair.
type Cluster struct {
	Nodes [2]*Node
	dir   string
	etcd  *exec.Cmd
	cfg   Config
	uid   uint32
	gid   uint32
	// etcdPort is etcd's client port.
	etcdPort int
}

// Start starts etcd and the two nodes and returns once one node leads,
// the other streams from it (as the synchronous standby when
// cfg.Synchronous) and cfg.Database exists. Close it when done, also
// after an error.
func Start(ctx context.Context, cfg Config) (*Cluster, error) {
	if os.Geteuid() != 0 {
		return nil, errors.New("hatest: must run as root (Patroni and Postgres run as the postgres user)")
	}
	for _, bin := range []string{"patroni", "etcd", filepath.Join(BinDir, "postgres")} {
		if _, err := exec.LookPath(bin); err != nil {
			return nil, fmt.Errorf("hatest: %s not found (apt-get install patroni etcd-server postgresql-15): %w", bin, err)
		}
	}
	pg, err := user.Lookup("postgres")
	if err != nil {
		return nil, fmt.Errorf("hatest: no postgres user: %w", err)
	}
	uid, _ := strconv.Atoi(pg.Uid)
	gid, _ := strconv.Atoi(pg.Gid)
	dir, err := os.MkdirTemp("", "sessiond-ha-")
	if err != nil {
		return nil, err
	}
	// The postgres user must reach its directories inside.
	if err := os.Chmod(dir, 0o755); err != nil {
		return nil, err
	}
	c := &Cluster{dir: dir, cfg: cfg, uid: uint32(uid), gid: uint32(gid)}
	ports, err := freePorts(6)
	if err != nil {
		c.Close()
		return nil, err
	}
	c.etcdPort = ports[0]
	if err := c.startEtcd(ctx, ports[1]); err != nil {
		c.Close()
		return nil, err
	}
	for i := range c.Nodes {
		n := &Node{Name: fmt.Sprintf("pg%d", i+1), PGPort: ports[2+2*i], APIPort: ports[3+2*i]}
		n.dir = filepath.Join(dir, n.Name)
		n.DataDir = filepath.Join(n.dir, "data")
		if err := os.MkdirAll(n.dir, 0o700); err != nil {
			c.Close()
			return nil, err
		}
		if err := os.Chown(n.dir, uid, gid); err != nil {
			c.Close()
			return nil, err
		}
		c.Nodes[i] = n
		if cfg.DelayableReplication {
			if n.proxy, err = newDelayProxy(fmt.Sprintf("127.0.0.1:%d", n.PGPort)); err != nil {
				c.Close()
				return nil, err
			}
		}
		if err := c.startNode(n); err != nil {
			c.Close()
			return nil, err
		}
		if i == 0 {
			// The first node bootstraps alone, so it is the leader.
			if _, err := c.waitLeader(ctx, 60*time.Second); err != nil {
				c.Close()
				return nil, err
			}
		}
	}
	if err := c.WaitReplicating(ctx, 90*time.Second); err != nil {
		c.Close()
		return nil, err
	}
	if cfg.Database != "" {
		conn, err := pgx.Connect(ctx, c.URL("postgres"))
		if err != nil {
			c.Close()
			return nil, err
		}
		_, err = conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{cfg.Database}.Sanitize())
		conn.Close(ctx)
		if err != nil {
			c.Close()
			return nil, err
		}
	}
	return c, nil
}

func (c *Cluster) startEtcd(ctx context.Context, peerPort int) error {
	client := fmt.Sprintf("http://127.0.0.1:%d", c.etcdPort)
	peer := fmt.Sprintf("http://127.0.0.1:%d", peerPort)
	log := &lockedBuffer{}
	cmd := exec.Command("etcd", "--name", "e1", "--data-dir", filepath.Join(c.dir, "etcd"),
		"--listen-client-urls", client, "--advertise-client-urls", client,
		"--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
		"--initial-cluster", "e1="+peer, "--initial-cluster-state", "new",
		"--listen-metrics-urls", "")
	cmd.Env = []string{"PATH=/usr/bin:/bin"}
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("hatest: start etcd: %w", err)
	}
	c.etcd = cmd
	go func() { _ = cmd.Wait() }()
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(client + "/health")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("hatest: etcd did not become healthy: %v\n%s", err, log.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// patroniConfig is the node's patroni.yml.
func (c *Cluster) patroniConfig(n *Node) string {
	return fmt.Sprintf(`scope: sessiond-ha
name: %[1]s
log:
  level: WARNING
restapi:
  listen: 127.0.0.1:%[2]d
  connect_address: 127.0.0.1:%[2]d
etcd3:
  hosts: 127.0.0.1:%[3]d
bootstrap:
  dcs:
    ttl: %[4]d
    loop_wait: %[5]d
    retry_timeout: %[6]d
    maximum_lag_on_failover: 1073741824
    synchronous_mode: %[7]t
    postgresql:
      use_pg_rewind: false
      use_slots: true
      parameters:
        wal_level: replica
        hot_standby: "on"
        max_connections: 200
        max_wal_senders: 5
        max_replication_slots: 5
        shared_buffers: 32MB
        fsync: "%[12]s"
        full_page_writes: "%[12]s"
  initdb:
    - encoding: UTF8
    - auth-host: md5
    - auth-local: trust
  pg_hba:
    - local all all trust
    - host replication replicator 127.0.0.1/32 md5
    - host all all 127.0.0.1/32 md5
postgresql:
  listen: 127.0.0.1:%[8]d
  connect_address: %[13]s
  data_dir: %[9]s
  bin_dir: %[10]s
  pgpass: %[11]s/pgpass
  authentication:
    replication:
      username: replicator
      password: replicator
    superuser:
      username: postgres
      password: postgres
  parameters:
    unix_socket_directories: %[11]s
tags:
  nofailover: false
  noloadbalance: false
  clonefrom: false
  nosync: false
`, n.Name, n.APIPort, c.etcdPort, TTL, LoopWait, RetryTimeout, c.cfg.Synchronous, n.PGPort, n.DataDir, BinDir, n.dir, onOff(c.cfg.Fsync),
		n.connectAddress())
}

// connectAddress is where other nodes reach the node's Postgres: its
// proxy, if it has one.
func (n *Node) connectAddress() string {
	if n.proxy != nil {
		return n.proxy.Addr()
	}
	return fmt.Sprintf("127.0.0.1:%d", n.PGPort)
}

// SetReplicationDelay sets the one-way delay of every replication byte,
// each direction, from now on (a commit's wait for the standby grows by
// about twice d). Only with Config.DelayableReplication.
func (c *Cluster) SetReplicationDelay(d time.Duration) error {
	if !c.cfg.DelayableReplication {
		return errors.New("hatest: SetReplicationDelay needs Config.DelayableReplication")
	}
	for _, n := range c.Nodes {
		n.proxy.delay.Store(int64(d))
	}
	return nil
}

func (c *Cluster) startNode(n *Node) error {
	path := filepath.Join(n.dir, "patroni.yml")
	if err := os.WriteFile(path, []byte(c.patroniConfig(n)), 0o600); err != nil {
		return err
	}
	if err := os.Chown(path, int(c.uid), int(c.gid)); err != nil {
		return err
	}
	n.log = &lockedBuffer{}
	cmd := exec.Command("patroni", path)
	cmd.Dir = n.dir
	cmd.Env = []string{"PATH=/usr/bin:/bin", "HOME=" + n.dir, "LANG=C.UTF-8", "LC_ALL=C.UTF-8"}
	cmd.Stdout, cmd.Stderr = n.log, n.log
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Credential: &syscall.Credential{Uid: c.uid, Gid: c.gid},
		Setpgid:    true,
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("hatest: start patroni %s: %w", n.Name, err)
	}
	n.patroni = cmd
	n.exited = make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(n.exited)
	}()
	return nil
}

// URL is the multi-host URL of the pair, as sessiond uses it: every new
// connection goes to whichever node accepts writes.
func (c *Cluster) URL(database string) string {
	return fmt.Sprintf("postgres://postgres:postgres@127.0.0.1:%d,127.0.0.1:%d/%s?sslmode=disable&target_session_attrs=read-write",
		c.Nodes[0].PGPort, c.Nodes[1].PGPort, database)
}

// NodeURL is the URL of one node alone.
func (c *Cluster) NodeURL(n *Node, database string) string {
	return fmt.Sprintf("postgres://postgres:postgres@127.0.0.1:%d/%s?sslmode=disable", n.PGPort, database)
}

// Member is one node as Patroni's REST API reports it.
type Member struct {
	Name  string `json:"name"`
	Role  string `json:"role"`
	State string `json:"state"`
	Lag   any    `json:"lag"`
}

// Members asks the nodes' REST APIs, in turn, for the cluster's members.
func (c *Cluster) Members(ctx context.Context) ([]Member, error) {
	var lastErr error
	for _, n := range c.Nodes {
		if n == nil {
			continue
		}
		ctx, cancel := context.WithTimeout(ctx, time.Second)
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("http://127.0.0.1:%d/cluster", n.APIPort), nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			cancel()
			lastErr = err
			continue
		}
		var body struct{ Members []Member }
		err = json.NewDecoder(resp.Body).Decode(&body)
		resp.Body.Close()
		cancel()
		if err != nil {
			lastErr = err
			continue
		}
		return body.Members, nil
	}
	return nil, fmt.Errorf("hatest: no Patroni REST API answers: %w", lastErr)
}

// Leader returns the node that leads and runs, or an error.
func (c *Cluster) Leader(ctx context.Context) (*Node, error) {
	ms, err := c.Members(ctx)
	if err != nil {
		return nil, err
	}
	for _, m := range ms {
		if m.Role == "leader" && m.State == "running" {
			return c.node(m.Name), nil
		}
	}
	return nil, errors.New("hatest: no running leader")
}

func (c *Cluster) node(name string) *Node {
	for _, n := range c.Nodes {
		if n != nil && n.Name == name {
			return n
		}
	}
	return nil
}

func (c *Cluster) waitLeader(ctx context.Context, limit time.Duration) (*Node, error) {
	deadline := time.Now().Add(limit)
	for {
		n, err := c.Leader(ctx)
		if err == nil && n != nil {
			// Patroni reports the leader before Postgres takes writes.
			if c.acceptsWrites(ctx, n) {
				return n, nil
			}
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return nil, fmt.Errorf("hatest: no leader within %s (%v)\n%s", limit, err, c.Logs())
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func (c *Cluster) acceptsWrites(ctx context.Context, n *Node) bool {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, c.NodeURL(n, "postgres"))
	if err != nil {
		return false
	}
	defer conn.Close(ctx)
	var standby bool
	return conn.QueryRow(ctx, "SELECT pg_is_in_recovery()").Scan(&standby) == nil && !standby
}

// WaitReplicating returns once the leader streams to the other node, as
// its synchronous standby in synchronous mode.
func (c *Cluster) WaitReplicating(ctx context.Context, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	want := "async"
	if c.cfg.Synchronous {
		want = "sync"
	}
	var last string
	for {
		if leader, err := c.Leader(ctx); err == nil {
			state, err := c.replicationState(ctx, leader)
			if err == nil && state == want {
				return nil
			}
			last = fmt.Sprintf("sync_state %q, %v", state, err)
		} else {
			last = err.Error()
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("hatest: the standby did not stream (%s) within %s: %s\n%s", want, limit, last, c.Logs())
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func (c *Cluster) replicationState(ctx context.Context, leader *Node) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, c.NodeURL(leader, "postgres"))
	if err != nil {
		return "", err
	}
	defer conn.Close(ctx)
	var state string
	err = conn.QueryRow(ctx, `SELECT sync_state FROM pg_stat_replication WHERE state = 'streaming' LIMIT 1`).Scan(&state)
	return state, err
}

// WalsenderPIDs returns the process IDs of the node's walsenders.
func (c *Cluster) WalsenderPIDs(ctx context.Context, n *Node) ([]int, error) {
	conn, err := pgx.Connect(ctx, c.NodeURL(n, "postgres"))
	if err != nil {
		return nil, err
	}
	defer conn.Close(ctx)
	rows, _ := conn.Query(ctx, `SELECT pid FROM pg_stat_replication`)
	pids, err := pgx.CollectRows(rows, pgx.RowTo[int32])
	if err != nil {
		return nil, err
	}
	if len(pids) == 0 {
		return nil, errors.New("hatest: no walsender")
	}
	out := make([]int, len(pids))
	for i, p := range pids {
		out[i] = int(p)
	}
	return out, nil
}

// Signal sends sig to every pid.
func Signal(pids []int, sig syscall.Signal) error {
	var errs []error
	for _, p := range pids {
		if err := syscall.Kill(p, sig); err != nil && !errors.Is(err, syscall.ESRCH) {
			errs = append(errs, fmt.Errorf("signal %d: %w", p, err))
		}
	}
	return errors.Join(errs...)
}

// Kill is the node's machine dying: SIGKILL to Patroni, to the
// postmaster (not Patroni's child: it is found by the pid in the data
// directory's postmaster.pid) and to every process of the postmaster's
// tree, at once.
//
// The postmaster's pid is taken only while its command line still names
// this node's data directory, so a stale postmaster.pid (the postmaster
// already dead, its pid reused) never leads to another process.
func (n *Node) Kill() error {
	pids := []int{}
	if n.patroni != nil && n.patroni.Process != nil {
		select {
		case <-n.exited:
		default:
			pids = append(pids, n.patroni.Process.Pid)
		}
	}
	if pm, err := n.PostmasterPID(); err == nil && n.isPostmaster(pm) {
		pids = append(pids, pm)
		pids = append(pids, descendants(pm)...)
	}
	if err := Signal(pids, syscall.SIGKILL); err != nil {
		return err
	}
	if n.exited != nil {
		select {
		case <-n.exited:
		case <-time.After(5 * time.Second):
			return fmt.Errorf("hatest: patroni %s did not exit after SIGKILL", n.Name)
		}
	}
	return nil
}

// PostmasterPID reads the first line of the data directory's
// postmaster.pid.
func (n *Node) PostmasterPID() (int, error) {
	b, err := os.ReadFile(filepath.Join(n.DataDir, "postmaster.pid"))
	if err != nil {
		return 0, err
	}
	line, _, _ := strings.Cut(string(b), "\n")
	return strconv.Atoi(strings.TrimSpace(line))
}

// isPostmaster reports whether pid runs Postgres on this node's data
// directory.
func (n *Node) isPostmaster(pid int) bool {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "cmdline"))
	if err != nil {
		return false
	}
	args := strings.Split(string(b), "\x00")
	return len(args) > 0 && strings.HasSuffix(args[0], "postgres") && slices.Contains(args, n.DataDir)
}

// descendants returns every process below pid, from /proc.
func descendants(pid int) []int {
	children := map[int][]int{}
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...; comm may hold spaces and parentheses.
		s := string(b)
		i := strings.LastIndexByte(s, ')')
		if i < 0 {
			continue
		}
		fields := strings.Fields(s[i+1:])
		if len(fields) < 2 {
			continue
		}
		ppid, _ := strconv.Atoi(fields[1])
		children[ppid] = append(children[ppid], p)
	}
	var out []int
	queue := []int{pid}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		for _, ch := range children[p] {
			out = append(out, ch)
			queue = append(queue, ch)
		}
	}
	return out
}

// Logs returns what etcd and the Patroni nodes wrote, for a failure.
func (c *Cluster) Logs() string {
	var b strings.Builder
	for _, n := range c.Nodes {
		if n != nil && n.log != nil {
			fmt.Fprintf(&b, "--- patroni %s\n%s\n", n.Name, n.log.String())
		}
	}
	return b.String()
}

// Close kills every process of the cluster and removes its files.
func (c *Cluster) Close() {
	for _, n := range c.Nodes {
		if n != nil {
			_ = n.Kill()
		}
	}
	for _, n := range c.Nodes {
		if n != nil && n.proxy != nil {
			n.proxy.Close()
		}
	}
	if c.etcd != nil && c.etcd.Process != nil {
		_ = c.etcd.Process.Kill()
	}
	// The postgres processes may take a moment to be reaped before
	// their files can all go.
	for i := 0; i < 20; i++ {
		if os.RemoveAll(c.dir) == nil {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func onOff(b bool) string {
	if b {
		return "on"
	}
	return "off"
}

func freePorts(n int) ([]int, error) {
	var ports []int
	var lns []net.Listener
	defer func() {
		for _, ln := range lns {
			ln.Close()
		}
	}()
	for i := 0; i < n; i++ {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		lns = append(lns, ln)
		ports = append(ports, ln.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
