package workflows

// OnboardingID is the workflow ID of a person's onboarding. Built from the
// employee ID alone, so a repeated hire event finds the existing run instead
// of starting a second one, and no personal data appears in the ID.
func OnboardingID(employeeID string) string { return "onboarding-" + employeeID }

// TaskQueue is the default task queue; the worker and the CLI both take it
// from config, which defaults to this.
const TaskQueue = "provisioning"

// OffboardingID is the workflow ID of a person's offboarding, built like
// OnboardingID so a repeated termination finds the existing run.
func OffboardingID(employeeID string) string { return "offboarding-" + employeeID }
