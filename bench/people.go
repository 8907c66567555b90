package main

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"math/big"
	"sync"
	"time"

	"go.temporal.io/api/serviceerror"

	"github.com/provisio-dev/provisio/internal/config"
	"github.com/provisio-dev/provisio/internal/hr"
	"github.com/provisio-dev/provisio/workflows"
)

// benchPeople answers events.People for the people the bench generated:
// they have no manager and are known once hired.
type benchPeople struct {
	mu    sync.Mutex
	known map[string]bool
}

func newPeople(_ context.Context, _ config.Config) (*benchPeople, error) {
	return &benchPeople{known: map[string]bool{}}, nil
}

// Known reports whether the bench hired employeeID.
func (p *benchPeople) Known(_ context.Context, employeeID string) (bool, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.known[employeeID], nil
}

func (p *benchPeople) add(ids ...string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, id := range ids {
		p.known[id] = true
	}
}

// blockSize is how many employee IDs one bench run may use; each run takes
// a fresh block so its workflows never collide with an earlier run's.
const blockSize = 10000

// generateRoster returns n engineers (LDAP, PostgreSQL and SCIM access by
// policy) with employee IDs from a block no earlier run used.
func (b *bench) generateRoster(ctx context.Context, n int) ([]hr.Person, error) {
	if n > blockSize {
		return nil, fmt.Errorf("at most %d people per batch", blockSize)
	}
	base, err := b.freeBlock(ctx)
	if err != nil {
		return nil, err
	}
	today := hr.Date{Time: time.Now().UTC().Truncate(24 * time.Hour)}
	out := make([]hr.Person, n)
	for i := range out {
		id := fmt.Sprintf("E%06d", base+i)
		out[i] = hr.Person{
			EmployeeID: id, GivenName: "Bench", FamilyName: "Joiner" + id[1:],
			Email: "bench." + id[1:] + "@example.com", Department: "Engineering", Title: "Software Engineer",
			Location: "Berlin", EmploymentType: hr.TypeEmployee, StartDate: today, Status: hr.StatusActive,
		}
	}
	return out, nil
}

// freeBlock picks a random block of employee IDs in E300000-E699999 whose
// first ID never had an onboarding. The range keeps clear of the sample
// roster (E100xxx) and of the tests' random IDs (E7xxxxx-E9xxxxx): the
// ledger is append-only, so a bench person's entries stay for good.
func (b *bench) freeBlock(ctx context.Context) (int, error) {
	const first, blocks = 300000, 40
	for range 20 {
		k, err := rand.Int(rand.Reader, big.NewInt(blocks))
		if err != nil {
			return 0, err
		}
		base := first + int(k.Int64())*blockSize
		_, err = b.c.DescribeWorkflow(ctx, workflows.OnboardingID(fmt.Sprintf("E%06d", base)), "")
		var nf *serviceerror.NotFound
		switch {
		case errors.As(err, &nf):
			return base, nil
		case err != nil:
			return 0, fmt.Errorf("look for a free block of employee IDs: %w", err)
		}
	}
	return 0, errors.New("no free block of employee IDs left: clear the Temporal database (make stack-down; rm -rf .data/temporal)")
}
