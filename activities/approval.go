package activities

import (
	"context"

	"github.com/provisio-dev/provisio/internal/hr"
)

// Directory answers who manages whom, from HR. Approvals use it to find who
// a request escalates to when its approver does not answer in time.
type Directory interface {
	// ManagerOf returns the employee ID of the nearest active manager above
	// employeeID; found is false when HR does not know employeeID at all.
	// An empty managerID with found true means nobody is above the person.
	ManagerOf(ctx context.Context, employeeID string) (managerID string, found bool, err error)
}

// ManagerOfInput names the person whose manager is wanted.
type ManagerOfInput struct {
	EmployeeID string `json:"employeeId"`
}

// ManagerOfResult is the manager, by employee ID only: no other personal
// data enters the history.
type ManagerOfResult struct {
	// ManagerID is empty when nobody is above the person in HR.
	ManagerID string `json:"managerId,omitempty"`
	// Known is false when HR does not know the person.
	Known bool `json:"known"`
}

// ManagerOf looks up who is above a person in HR, for escalating an
// approval request to the approver's manager.
func (a *Activities) ManagerOf(ctx context.Context, in ManagerOfInput) (ManagerOfResult, error) {
	if !hr.ValidEmployeeID(in.EmployeeID) {
		return ManagerOfResult{}, invalid("ManagerOf", "employee ID %q is not E + 6 digits", in.EmployeeID)
	}
	if a.Directory == nil {
		return ManagerOfResult{}, invalid("ManagerOf", "this worker has no HR directory configured")
	}
	m, found, err := a.Directory.ManagerOf(ctx, in.EmployeeID)
	if err != nil {
		return ManagerOfResult{}, classify("hr", "ManagerOf", err)
	}
	return ManagerOfResult{ManagerID: m, Known: found}, nil
}
