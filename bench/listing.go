package main

import (
	"context"
	"fmt"
	"runtime/metrics"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	goldap "github.com/go-ldap/ldap/v3"
	"github.com/jackc/pgx/v5"

	"github.com/provisio-dev/provisio/connectors"
	"github.com/provisio-dev/provisio/connectors/ldap"
	"github.com/provisio-dev/provisio/connectors/postgres"
)

// The listing figure uses accounts of their own: an LDAP branch and a
// PostgreSQL role prefix that the production connectors never see as
// theirs, so a 100,000-account seed cannot disturb the demo or the tests.
const (
	benchOU         = "ou=bench-people"
	benchRolePrefix = "bench_"
	seedWidth       = 8
)

// listing seeds n accounts in LDAP and PostgreSQL (only the missing ones:
// the seed is kept between runs) and lists them through the connectors'
// paged listing, timing it and sampling the heap.
func (b *bench) listing(ctx context.Context, n int) ([]Figure, error) {
	peopleDN := benchOU + "," + b.cfg.LDAP.BaseDN
	b.logf("listing: seeding %d LDAP entries under %s", n, peopleDN)
	if err := b.seedLDAP(ctx, peopleDN, n); err != nil {
		return nil, fmt.Errorf("seed LDAP: %w", err)
	}
	b.logf("listing: seeding %d PostgreSQL roles %s*", n, benchRolePrefix)
	// The roles are cluster-wide, where the production connector (no
	// prefix) and its tests would list them too: they go again at the end.
	defer func() {
		if err := b.dropPostgresSeed(context.WithoutCancel(ctx)); err != nil {
			b.logf("listing: drop the PostgreSQL seed: %v (drop the roles %s* by hand)", err, benchRolePrefix)
		}
	}()
	if err := b.seedPostgres(ctx, n); err != nil {
		return nil, fmt.Errorf("seed PostgreSQL: %w", err)
	}
	lc, err := ldap.New(ctx, ldap.Config{
		URL: b.cfg.LDAP.URL, BindDN: b.cfg.LDAP.BindDN, BindPassword: b.cfg.LDAP.Password,
		PeopleDN: peopleDN, GroupsDN: b.cfg.LDAP.GroupsDN,
	})
	if err != nil {
		return nil, err
	}
	defer lc.Close()
	pc, err := postgres.New(ctx, postgres.Config{URL: b.cfg.Postgres.URL, RolePrefix: benchRolePrefix})
	if err != nil {
		return nil, err
	}
	defer pc.Close()
	var figs []Figure
	for _, c := range []connectors.Connector{lc, pc} {
		b.logf("listing: %s", c.Name())
		r, err := listAll(ctx, c, n)
		if err != nil {
			return nil, fmt.Errorf("list %s: %w", c.Name(), err)
		}
		f := figure(fmt.Sprintf("list %d %s accounts", n, c.Name()), r.elapsed.Seconds(), "s", 0).
			target("< 10 s", r.elapsed < 10*time.Second)
		m := figure(fmt.Sprintf("list %d %s accounts: peak heap", n, c.Name()), float64(r.peakHeap)/(1<<20), "MiB", 0).
			target("flat: at most 2x the peak of the first tenth", r.peakHeap <= 2*max(r.peakTenth, 8<<20))
		m.Note = fmt.Sprintf("peak heap over the first tenth of the accounts: %.1f MiB", float64(r.peakTenth)/(1<<20))
		figs = append(figs, f, m)
	}
	return figs, nil
}

type listResult struct {
	elapsed             time.Duration
	peakHeap, peakTenth uint64
}

// listAll pages through every account of c, sampling live heap every 10 ms.
func listAll(ctx context.Context, c connectors.Connector, want int) (listResult, error) {
	var r listResult
	var peak, seen atomic.Uint64
	var tenth atomic.Uint64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for {
			metrics.Read(sample)
			v := sample[0].Value.Uint64()
			if v > peak.Load() {
				peak.Store(v)
			}
			if seen.Load() <= uint64(want/10) && v > tenth.Load() {
				tenth.Store(v)
			}
			select {
			case <-stop:
				return
			case <-tick.C:
			}
		}
	}()
	t0 := time.Now()
	token, count := "", 0
	for {
		page, err := c.ListAccounts(ctx, connectors.ListAccountsRequest{PageSize: connectors.MaxPageSize, PageToken: token})
		if err != nil {
			close(stop)
			wg.Wait()
			return r, err
		}
		count += len(page.Accounts)
		seen.Store(uint64(count))
		if token = page.NextPageToken; token == "" {
			break
		}
	}
	r.elapsed = time.Since(t0)
	close(stop)
	wg.Wait()
	r.peakHeap, r.peakTenth = peak.Load(), tenth.Load()
	if count < want {
		return r, fmt.Errorf("listed %d accounts, seeded %d", count, want)
	}
	return r, nil
}

// seedLDAP adds the entries bench-000000 .. bench-<n-1> that are missing.
func (b *bench) seedLDAP(ctx context.Context, peopleDN string, n int) error {
	conn, err := b.ldapConn()
	if err != nil {
		return err
	}
	defer conn.Close()
	err = conn.Add(&goldap.AddRequest{DN: peopleDN, Attributes: []goldap.Attribute{
		{Type: "objectClass", Vals: []string{"organizationalUnit"}}, {Type: "ou", Vals: []string{"bench-people"}},
	}})
	if err != nil && !goldap.IsErrorWithCode(err, goldap.LDAPResultEntryAlreadyExists) {
		return err
	}
	have := map[string]bool{}
	res, err := conn.SearchWithPaging(goldap.NewSearchRequest(peopleDN, goldap.ScopeSingleLevel, goldap.NeverDerefAliases,
		0, 0, false, "(objectClass=inetOrgPerson)", []string{"uid"}, nil), 1000)
	if err != nil {
		return err
	}
	for _, e := range res.Entries {
		have[e.GetAttributeValue("uid")] = true
	}
	var missing []int
	for i := range n {
		if !have[benchUID(i)] {
			missing = append(missing, i)
		}
	}
	if len(missing) == 0 {
		return nil
	}
	conns := make([]*goldap.Conn, seedWidth)
	for i := range conns {
		if conns[i], err = b.ldapConn(); err != nil {
			return err
		}
		defer conns[i].Close()
	}
	chunk := (len(missing) + seedWidth - 1) / seedWidth
	return parallel(ctx, seedWidth, seedWidth, func(ctx context.Context, w int) error {
		for _, i := range missing[min(w*chunk, len(missing)):min((w+1)*chunk, len(missing))] {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			uid := benchUID(i)
			err := conns[w].Add(&goldap.AddRequest{DN: "uid=" + uid + "," + peopleDN, Attributes: []goldap.Attribute{
				{Type: "objectClass", Vals: []string{"inetOrgPerson"}},
				{Type: "uid", Vals: []string{uid}}, {Type: "cn", Vals: []string{"Bench " + uid}},
				{Type: "sn", Vals: []string{uid}}, {Type: "employeeNumber", Vals: []string{fmt.Sprintf("E%06d", i%1000000)}},
				{Type: "mail", Vals: []string{uid + "@example.com"}},
			}})
			if err != nil && !goldap.IsErrorWithCode(err, goldap.LDAPResultEntryAlreadyExists) {
				return fmt.Errorf("add %s: %w", uid, err)
			}
		}
		return nil
	})
}

func benchUID(i int) string { return "bench-" + fmt.Sprintf("%06d", i) }

func (b *bench) ldapConn() (*goldap.Conn, error) {
	conn, err := goldap.DialURL(b.cfg.LDAP.URL)
	if err != nil {
		return nil, err
	}
	if err := conn.Bind(b.cfg.LDAP.BindDN, b.cfg.LDAP.Password); err != nil {
		conn.Close()
		return nil, err
	}
	return conn, nil
}

// seedPostgres creates the missing LOGIN roles bench_<i> with the marker
// comment the connector recognises as its own, in server-side loops of a
// few thousand roles per transaction (one transaction for all of them
// exhausts the lock table).
func (b *bench) seedPostgres(ctx context.Context, n int) error {
	conn, err := pgx.Connect(ctx, b.cfg.Postgres.URL)
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	const batch = 2000
	for lo := 0; lo < n; lo += batch {
		hi := min(lo+batch, n) - 1
		_, err = conn.Exec(ctx, `DO $$
DECLARE i int; name text;
BEGIN
  FOR i IN `+strconv.Itoa(lo)+`..`+strconv.Itoa(hi)+` LOOP
    name := '`+benchRolePrefix+`' || lpad(i::text, 6, '0');
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = name) THEN
      EXECUTE format('CREATE ROLE %I LOGIN', name);
      EXECUTE format('COMMENT ON ROLE %I IS %L', name,
        'provisio:{"employee_id":"E' || lpad((i % 1000000)::text, 6, '0') || '"}');
    END IF;
  END LOOP;
END $$`)
		if err != nil {
			return fmt.Errorf("roles %d-%d: %w", lo, hi, err)
		}
	}
	return nil
}

// dropPostgresSeed drops every bench_ role, a few thousand per transaction.
func (b *bench) dropPostgresSeed(ctx context.Context) error {
	conn, err := pgx.Connect(ctx, b.cfg.Postgres.URL)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	for {
		_, err := conn.Exec(ctx, `DO $$
DECLARE r text;
BEGIN
  FOR r IN SELECT rolname FROM pg_roles WHERE starts_with(rolname, '`+benchRolePrefix+`') LIMIT 2000 LOOP
    EXECUTE format('DROP ROLE %I', r);
  END LOOP;
END $$`)
		if err != nil {
			return err
		}
		var left int
		if err := conn.QueryRow(ctx, `SELECT count(*) FROM pg_roles WHERE starts_with(rolname, $1)`, benchRolePrefix).Scan(&left); err != nil {
			return err
		}
		if left == 0 {
			return nil
		}
	}
}
