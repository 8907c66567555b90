package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.temporal.io/api/serviceerror"

	"github.com/provisio-dev/provisio/connectors"
	"github.com/provisio-dev/provisio/internal/config"
	"github.com/provisio-dev/provisio/internal/events"
	"github.com/provisio-dev/provisio/internal/hr"
	"github.com/provisio-dev/provisio/internal/webhook"
	"github.com/provisio-dev/provisio/workflows"
)

// webhookSecret is the test's shared secret (32 bytes).
const webhookSecret = "e2e-webhook-secret-0123456789abc"

// serveWebhook runs `starter serve` on a free port with the test's config
// and returns its base URL; the test ends it with SIGTERM and checks that
// it stops cleanly.
func serveWebhook(t *testing.T, bin string, cfg config.Config) string {
	t.Helper()
	cmd := exec.Command(bin, "serve", "--addr", "127.0.0.1:0")
	cmd.Dir = repoRoot(t)
	cmd.Env = append(os.Environ(),
		"PROVISIO_TASK_QUEUE="+cfg.TaskQueue,
		"PROVISIO_POLICY="+cfg.PolicyFile,
		"PROVISIO_ROSTER="+cfg.RosterFile,
		"PROVISIO_WEBHOOK_SECRET="+webhookSecret,
	)
	return startListener(t, cmd, "webhook listening", 60*time.Second, 45*time.Second, webhookSecret)
}

// signedPost is one webhook request as HR would send it.
type signedPost struct {
	body      []byte
	timestamp string
	signature string
}

func sign(body []byte) signedPost { return signAt(body, time.Now().Unix()) }

func signAt(body []byte, ts int64) signedPost {
	return signedPost{body: body, timestamp: strconv.FormatInt(ts, 10), signature: webhook.Sign([]byte(webhookSecret), ts, body)}
}

// post sends p and decodes the JSON answer.
func (p signedPost) post(t *testing.T, base string) (int, map[string]any) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+webhook.EventsPath, bytes.NewReader(p.body))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(webhook.HeaderTimestamp, p.timestamp)
	req.Header.Set(webhook.HeaderSignature, p.signature)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	var out map[string]any
	require.NoError(t, json.Unmarshal(data, &out), "answers are JSON: %s", data)
	return resp.StatusCode, out
}

func hireBody(t *testing.T, p hr.Person) []byte {
	t.Helper()
	data, err := json.Marshal(events.Event{Type: events.TypeHire, Person: &p})
	require.NoError(t, err)
	return data
}

// TestWebhookHireEndToEnd posts signed events to `starter serve` on the
// real stack: a hire is accepted and onboarded; a replay, a bad
// signature, malformed JSON and an unknown manager are refused, and the
// last starts nothing.
func TestWebhookHireEndToEnd(t *testing.T) {
	cfg := testConfig(t)
	c, deps := startWorker(t, cfg)
	bin := buildStarter(t)
	base := serveWebhook(t, bin, cfg)
	employee := newEmployeeID(t)
	wfID := workflows.OnboardingID(employee)

	hire := sign(hireBody(t, newTestPerson(employee, "Grace", "Hook")))
	status, got := hire.post(t, base)
	require.Equal(t, http.StatusAccepted, status, "%v", got)
	assert.Equal(t, wfID, got["workflowId"])
	assert.Equal(t, string(events.OutcomeStarted), got["outcome"])
	assert.Equal(t, employee, got["employeeId"])
	assert.Contains(t, got["url"], cfg.UIURL+"/namespaces/default/workflows/"+wfID)

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var res workflows.OnboardingResult
	require.NoError(t, c.GetWorkflow(ctx, wfID, "").Get(ctx, &res), "the onboarding completes")
	require.NotEmpty(t, res.Username)
	require.NotEmpty(t, res.Accounts)
	t.Cleanup(func() {
		for _, conn := range deps.Activities.Connectors {
			_, _ = conn.DeleteAccount(context.Background(), connectors.AccountRequest{Username: res.Username})
		}
	})

	// The same request again is a replay.
	status, got = hire.post(t, base)
	assert.Equal(t, http.StatusUnauthorized, status)
	assert.Contains(t, got["error"], "replay")

	// The same event signed anew (a later timestamp: within the same
	// second the signature would be the same) is idempotent: it finds the
	// run.
	first, err := strconv.ParseInt(hire.timestamp, 10, 64)
	require.NoError(t, err)
	status, got = signAt(hire.body, first+1).post(t, base)
	assert.Equal(t, http.StatusAccepted, status, "%v", got)
	assert.Equal(t, string(events.OutcomeExisting), got["outcome"])
	assert.Equal(t, wfID, got["workflowId"])

	// A bad signature.
	bad := sign([]byte(`{"type":"terminate","employee_id":"` + employee + `"}`))
	bad.signature = webhook.Sign([]byte("not-the-secret-not-the-secret-!!"), time.Now().Unix(), bad.body)
	status, got = bad.post(t, base)
	assert.Equal(t, http.StatusUnauthorized, status)
	assert.Contains(t, got["error"], "signature does not match")

	// Malformed JSON.
	status, got = sign([]byte(`{"type":"hire","person":`)).post(t, base)
	assert.Equal(t, http.StatusBadRequest, status)
	assert.Contains(t, got["error"], "malformed JSON")

	// A hire whose manager nobody knows starts nothing.
	stranger, boss := newEmployeeID(t), newEmployeeID(t)
	p := newTestPerson(stranger, "Ann", "Stranger")
	p.ManagerID = boss
	status, got = sign(hireBody(t, p)).post(t, base)
	assert.Equal(t, http.StatusBadRequest, status, "%v", got)
	assert.Contains(t, got["error"], "manager_id: unknown manager "+boss)
	_, err = c.DescribeWorkflow(ctx, workflows.OnboardingID(stranger), "")
	var nf *serviceerror.NotFound
	assert.True(t, errors.As(err, &nf), "no onboarding of %s was started: %v", stranger, err)
}
