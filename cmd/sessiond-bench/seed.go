package main

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"strconv"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/oklog/ulid/v2"
)

// seeded is what the load phases need from the seed: tokens, in memory.
type seeded struct {
	stats seedStats
	// get are tokens spread evenly over the N seeded sessions, for
	// GET /session and the raw lookup.
	get []string
	// del are tokens of sessions no other phase uses, for DELETE /session.
	del []string
	// everywhere are the users holding -per-user sessions each.
	everywhere []string
}

type seedStats struct {
	Rows          int     `json:"rows"`
	CopySeconds   float64 `json:"copy_seconds"`
	IndexSeconds  float64 `json:"index_seconds"`
	VacuumSeconds float64 `json:"vacuum_analyze_seconds"`
	TotalSeconds  float64 `json:"total_seconds"`
	RowsPerSecond float64 `json:"rows_per_second"`
	TableMiB      float64 `json:"sessions_table_with_indexes_mib"`
}

// seedRowsPerChunk is one COPY stream's share of work at a time.
const seedRowsPerChunk = 50_000

// seedDatabase fills the migrated database: o.sessions sessions (each on
// its own client, two per user), o.manyUsers users with o.perUser sessions
// each, and a reserve for DELETE /session. Secondary indexes and the
// foreign key are dropped during the COPY and rebuilt afterwards (a sort
// per index is far cheaper than 10M random B-tree inserts), then the
// table is vacuumed and analyzed.
func seedDatabase(ctx context.Context, dbURL string, o options, logf func(string, ...any)) (*seeded, error) {
	cfg, err := pgxpool.ParseConfig(dbURL)
	if err != nil {
		return nil, err
	}
	cfg.MaxConns = int32(o.seedWorkers + 1)
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, err
	}
	defer pool.Close()

	reserve := min(1_000_000, max(20_000, int(5_000*o.duration.Seconds())))
	many := o.manyUsers * o.perUser
	total := o.sessions + many + reserve
	start := time.Now()

	rebuild, err := dropForSeed(ctx, pool)
	if err != nil {
		return nil, err
	}

	s := &seeded{}
	stride := max(1, o.sessions/o.sample)
	for k := range o.manyUsers {
		s.everywhere = append(s.everywhere, fmt.Sprintf("bench_everywhere_%d", k))
	}
	base := start.Add(-24 * time.Hour).UTC().Truncate(time.Microsecond)
	step := 24 * time.Hour / time.Duration(total)
	// The sessions GET /session uses were active "just now" for the whole
	// run: sessiond writes last_active_at at most once a minute, and a
	// user calling several times a minute almost never pays for it. The
	// phase "GET /session (write due)" measures the call that does.
	activeUntil := start.Add(time.Hour).UTC().Truncate(time.Microsecond)
	nget := min(o.sample, (o.sessions+stride-1)/stride)
	sampled := func(i int) bool { return i < o.sessions && i%stride == 0 && i/stride < nget }
	s.get = make([]string, nget)
	s.del = make([]string, reserve)
	keep := func(i int, token string) { // each i once, so no lock
		switch {
		case sampled(i):
			s.get[i/stride] = token
		case i >= o.sessions+many:
			s.del[i-o.sessions-many] = token
		}
	}

	row := func(i int, r *rand.ChaCha8, keep func(i int, token string)) (client, session []any) {
		at := base.Add(time.Duration(i) * step)
		var user string
		switch {
		case i < o.sessions:
			user = "user_" + strconv.Itoa(i/2)
		case i < o.sessions+many:
			user = s.everywhere[(i-o.sessions)/o.perUser]
		default:
			user = "bench_signout_" + strconv.Itoa(i)
		}
		var raw [32]byte
		binary.LittleEndian.PutUint64(raw[0:], r.Uint64())
		binary.LittleEndian.PutUint64(raw[8:], r.Uint64())
		binary.LittleEndian.PutUint64(raw[16:], r.Uint64())
		binary.LittleEndian.PutUint64(raw[24:], r.Uint64())
		token := "st_" + base64.RawURLEncoding.EncodeToString(raw[:])
		hash := sha256.Sum256([]byte(token))
		keep(i, token)
		ms := ulid.Timestamp(at)
		clientID := "client_" + ulid.MustNew(ms, r).String()
		sessionID := "sess_" + ulid.MustNew(ms, r).String()
		lastActive := at
		if sampled(i) {
			lastActive = activeUntil
		}
		return []any{clientID, at},
			[]any{sessionID, hash[:], user, clientID, "active", at, lastActive, at.Add(168 * time.Hour),
				"Mozilla/5.0 (X11; Linux x86_64) sessiond-bench", "203.0.113.7", []byte(`{}`)}
	}

	chunks := make(chan int)
	errs := make(chan error, o.seedWorkers)
	var wg sync.WaitGroup
	for w := range o.seedWorkers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.NewChaCha8(seedKey(w))
			for from := range chunks {
				if err := copyChunk(ctx, pool, from, min(total, from+seedRowsPerChunk), r, row, keep); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	lastLog := time.Now()
	var sendErr error
send:
	for from := 0; from < total; from += seedRowsPerChunk {
		select {
		case chunks <- from:
		case sendErr = <-errs:
			break send
		case <-ctx.Done():
			sendErr = ctx.Err()
			break send
		}
		if time.Since(lastLog) > 10*time.Second {
			logf("  copied ~%d of %d rows", from, total)
			lastLog = time.Now()
		}
	}
	close(chunks)
	wg.Wait()
	if sendErr == nil {
		select {
		case sendErr = <-errs:
		default:
		}
	}
	if sendErr != nil {
		return nil, fmt.Errorf("seed: %w", sendErr)
	}
	s.stats.CopySeconds = time.Since(start).Seconds()
	logf("  COPY of %d rows: %.1fs; rebuilding indexes and constraints", total, s.stats.CopySeconds)

	t := time.Now()
	if err := rebuild(ctx); err != nil {
		return nil, err
	}
	s.stats.IndexSeconds = time.Since(t).Seconds()
	t = time.Now()
	if _, err := pool.Exec(ctx, "VACUUM (ANALYZE) clients, sessions"); err != nil {
		return nil, fmt.Errorf("vacuum analyze: %w", err)
	}
	s.stats.VacuumSeconds = time.Since(t).Seconds()
	s.stats.Rows = total
	s.stats.TotalSeconds = time.Since(start).Seconds()
	s.stats.RowsPerSecond = float64(total) / s.stats.TotalSeconds
	var size int64
	_ = pool.QueryRow(ctx, "SELECT pg_total_relation_size('sessions')").Scan(&size)
	s.stats.TableMiB = float64(size) / (1 << 20)
	logf("  indexes %.1fs, vacuum analyze %.1fs; seeded in %.1fs, sessions table %.0f MiB",
		s.stats.IndexSeconds, s.stats.VacuumSeconds, s.stats.TotalSeconds, s.stats.TableMiB)

	// Spread evenly over the table, used in a shuffled order.
	rand.Shuffle(len(s.get), func(i, j int) { s.get[i], s.get[j] = s.get[j], s.get[i] })
	return s, nil
}

func seedKey(w int) [32]byte {
	var k [32]byte
	binary.LittleEndian.PutUint64(k[:], uint64(time.Now().UnixNano())+uint64(w)*0x9e3779b97f4a7c15)
	return k
}

// copyChunk copies rows [from, to) into clients and sessions.
func copyChunk(ctx context.Context, pool *pgxpool.Pool, from, to int, r *rand.ChaCha8,
	row func(int, *rand.ChaCha8, func(int, string)) ([]any, []any), keep func(int, string)) error {
	clients := make([][]any, 0, to-from)
	sess := make([][]any, 0, to-from)
	for i := from; i < to; i++ {
		c, s := row(i, r, keep)
		clients = append(clients, c)
		sess = append(sess, s)
	}
	if _, err := pool.CopyFrom(ctx, pgx.Identifier{"clients"}, []string{"id", "created_at"}, pgx.CopyFromRows(clients)); err != nil {
		return fmt.Errorf("copy clients: %w", err)
	}
	_, err := pool.CopyFrom(ctx, pgx.Identifier{"sessions"},
		[]string{"id", "token_hash", "user_id", "client_id", "status", "created_at", "last_active_at", "expires_at",
			"user_agent", "ip_address", "metadata"}, pgx.CopyFromRows(sess))
	if err != nil {
		return fmt.Errorf("copy sessions: %w", err)
	}
	return nil
}

// dropForSeed drops the foreign key, the primary keys and every index of
// clients and sessions, and returns a function that puts them back exactly
// as the migrations made them (definitions read from the catalog).
func dropForSeed(ctx context.Context, pool *pgxpool.Pool) (func(context.Context) error, error) {
	type constraint struct{ table, name, def string }
	var cons []constraint // primary keys first, then foreign keys
	rows, err := pool.Query(ctx, `SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid)
		FROM pg_constraint WHERE conrelid IN ('clients'::regclass, 'sessions'::regclass) AND contype IN ('p', 'f')
		ORDER BY contype DESC, conrelid::regclass::text`)
	if err != nil {
		return nil, err
	}
	for rows.Next() {
		var c constraint
		if err := rows.Scan(&c.table, &c.name, &c.def); err != nil {
			return nil, err
		}
		cons = append(cons, c)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	var indexes []string
	rows, err = pool.Query(ctx, `SELECT indexname, indexdef FROM pg_indexes
		WHERE schemaname = current_schema() AND tablename IN ('clients', 'sessions')
		AND indexname NOT IN (SELECT conname FROM pg_constraint WHERE contype = 'p')`)
	if err != nil {
		return nil, err
	}
	var indexNames []string
	for rows.Next() {
		var name, def string
		if err := rows.Scan(&name, &def); err != nil {
			return nil, err
		}
		indexNames = append(indexNames, name)
		indexes = append(indexes, def)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	for i := len(cons) - 1; i >= 0; i-- { // foreign keys first
		if _, err := pool.Exec(ctx, fmt.Sprintf("ALTER TABLE %s DROP CONSTRAINT %s", cons[i].table, cons[i].name)); err != nil {
			return nil, err
		}
	}
	for _, name := range indexNames {
		if _, err := pool.Exec(ctx, "DROP INDEX "+name); err != nil {
			return nil, err
		}
	}
	return func(ctx context.Context) error {
		conn, err := pool.Acquire(ctx)
		if err != nil {
			return err
		}
		defer conn.Release()
		if _, err := conn.Exec(ctx, "SET maintenance_work_mem = '1GB'"); err != nil {
			return err
		}
		for _, c := range cons {
			if _, err := conn.Exec(ctx, fmt.Sprintf("ALTER TABLE %s ADD CONSTRAINT %s %s", c.table, c.name, c.def)); err != nil {
				return fmt.Errorf("restore %s: %w", c.name, err)
			}
		}
		// The indexes can be built side by side: each is one sort.
		var wg sync.WaitGroup
		errs := make([]error, len(indexes))
		sem := make(chan struct{}, max(1, int(pool.Config().MaxConns)-1))
		for i, def := range indexes {
			wg.Add(1)
			go func() {
				defer wg.Done()
				sem <- struct{}{}
				defer func() { <-sem }()
				c, err := pool.Acquire(ctx)
				if err != nil {
					errs[i] = err
					return
				}
				defer c.Release()
				if _, err := c.Exec(ctx, "SET maintenance_work_mem = '512MB'"); err != nil {
					errs[i] = err
					return
				}
				if _, err := c.Exec(ctx, def); err != nil {
					errs[i] = fmt.Errorf("restore index: %w", err)
				}
			}()
		}
		wg.Wait()
		for _, err := range errs {
			if err != nil {
				return err
			}
		}
		return nil
	}, nil
}
