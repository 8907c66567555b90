package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"io"
	"math/big"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	commonpb "go.temporal.io/api/common/v1"
	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/api/proxy"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/provisio-dev/provisio/connectors"
	"github.com/provisio-dev/provisio/internal/codec"
	"github.com/provisio-dev/provisio/internal/config"
	"github.com/provisio-dev/provisio/internal/events"
	"github.com/provisio-dev/provisio/internal/hr"
	"github.com/provisio-dev/provisio/internal/tclient"
	"github.com/provisio-dev/provisio/workflows"
)

// withEncryption returns cfg with payload encryption on: the stack's keys
// when the environment names them (`make stack` writes a key file into
// stack.env), else a fresh key for this test alone.
func withEncryption(t *testing.T, cfg config.Config) config.Config {
	t.Helper()
	if cfg.Codec.Enabled() {
		return cfg
	}
	k, err := codec.GenerateKey("e2e-" + randomHex(t, 4))
	require.NoError(t, err)
	cfg.Codec.Keys, cfg.Codec.KeyID = []codec.Key{k}, k.ID
	return cfg
}

// rawClient dials Temporal without the codec: what it reads is what the
// server stores.
func rawClient(t *testing.T, cfg config.Config) client.Client {
	t.Helper()
	cfg.Codec = config.Codec{}
	c, err := tclient.Dial(context.Background(), cfg, nil)
	require.NoError(t, err, "the stack must be up: run `make stack`")
	t.Cleanup(c.Close)
	return c
}

// codecEnv is the environment of a child process that must use cfg's
// keys, whatever the test process's own environment says.
func codecEnv(cfg config.Config) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "PROVISIO_CODEC_") {
			env = append(env, kv)
		}
	}
	return append(env, "PROVISIO_CODEC_KEYS="+codec.FormatKeys(cfg.Codec.Keys), "PROVISIO_CODEC_KEY_ID="+cfg.Codec.KeyID)
}

func randomHex(t *testing.T, n int) string {
	t.Helper()
	b := make([]byte, n)
	_, err := rand.Read(b)
	require.NoError(t, err)
	return hex.EncodeToString(b)
}

// runHistory reads every event of a run through c: decoded when c has the
// codec, as stored when it has not.
func runHistory(t *testing.T, c client.Client, wfID, runID string) *historypb.History {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	it := c.GetWorkflowHistory(ctx, wfID, runID, false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	h := &historypb.History{}
	for it.HasNext() {
		e, err := it.Next()
		require.NoError(t, err, "history of %s", wfID)
		h.Events = append(h.Events, e)
	}
	require.NotEmpty(t, h.Events, "history of %s", wfID)
	return h
}

// wireBytes is m as protobuf bytes: strings and payload data appear in it
// verbatim, which is what a search for a secret or a name needs (JSON
// would base64 the payloads).
func wireBytes(t *testing.T, m proto.Message) []byte {
	t.Helper()
	b, err := proto.Marshal(m)
	require.NoError(t, err)
	return b
}

// historyPayloads lists every payload of h except search attributes, which
// the server indexes and the codec leaves alone by design.
func historyPayloads(t *testing.T, h *historypb.History) []*commonpb.Payload {
	t.Helper()
	var all []*commonpb.Payload
	err := proxy.VisitPayloads(context.Background(), h, proxy.VisitPayloadsOptions{
		SkipSearchAttributes: true,
		Visitor: func(_ *proxy.VisitPayloadsContext, ps []*commonpb.Payload) ([]*commonpb.Payload, error) {
			all = append(all, ps...)
			return ps, nil
		},
	})
	require.NoError(t, err)
	return all
}

// temporalDBFiles are the Temporal server's SQLite database and its
// journal or WAL files, from TEMPORAL_DB_FILE or DATA_DIR as the launcher
// script resolves them. A missing database fails the test: it reads what
// the local stack stores.
func temporalDBFiles(t *testing.T) []string {
	t.Helper()
	db := os.Getenv("TEMPORAL_DB_FILE")
	if db == "" {
		dataDir := os.Getenv("DATA_DIR")
		if dataDir == "" {
			dataDir = filepath.Join(repoRoot(t), ".data")
		}
		db = filepath.Join(dataDir, "temporal", "temporal.db")
	}
	_, err := os.Stat(db)
	require.NoError(t, err, "the Temporal SQLite file of the local stack (set TEMPORAL_DB_FILE if it lives elsewhere)")
	files := []string{db}
	for _, suffix := range []string{"-wal", "-journal", "-shm"} {
		if _, err := os.Stat(db + suffix); err == nil {
			files = append(files, db+suffix)
		}
	}
	return files
}

// filesContain reports which needles occur in any of the files, reading
// them in chunks that overlap by the longest needle, so a large database
// is never held in memory whole.
func filesContain(t *testing.T, files []string, needles ...string) map[string]bool {
	t.Helper()
	found := map[string]bool{}
	longest := 0
	for _, n := range needles {
		longest = max(longest, len(n))
	}
	for _, name := range files {
		f, err := os.Open(name)
		if os.IsNotExist(err) {
			continue // a journal comes and goes with each transaction
		}
		require.NoError(t, err)
		buf := make([]byte, 0, 4<<20+longest)
		chunk := make([]byte, 4<<20)
		for {
			n, err := io.ReadFull(f, chunk)
			buf = append(buf, chunk[:n]...)
			for _, needle := range needles {
				if bytes.Contains(buf, []byte(needle)) {
					found[needle] = true
				}
			}
			if err != nil {
				break
			}
			keep := min(len(buf), longest-1)
			buf = append(buf[:0], buf[len(buf)-keep:]...)
		}
		require.NoError(t, f.Close())
	}
	return found
}

// rosterPeople knows the people of a roster file, as `starter serve` knows
// the synced roster.
type rosterPeople map[string]bool

func (r rosterPeople) Known(_ context.Context, id string) (bool, error) { return r[id], nil }

func readRoster(t *testing.T, file string) ([]hr.Person, rosterPeople) {
	t.Helper()
	f, err := os.Open(file)
	require.NoError(t, err)
	defer f.Close()
	rows, rowErrs, err := hr.ReadRoster(f)
	require.NoError(t, err)
	require.Empty(t, rowErrs)
	people, known := make([]hr.Person, 0, len(rows)), rosterPeople{}
	for _, r := range rows {
		people = append(people, r.Person)
		known[r.Person.EmployeeID] = true
	}
	return people, known
}

// freshSurname is a pronounceable family name no earlier run can have
// stored (about 10^9 possibilities).
func freshSurname(t *testing.T) string {
	t.Helper()
	const consonants, vowels = "bdfgklmnprstvz", "aeiou"
	pick := func(set string) byte {
		n, err := rand.Int(rand.Reader, big.NewInt(int64(len(set))))
		require.NoError(t, err)
		return set[n.Int64()]
	}
	var b strings.Builder
	for range 4 {
		b.WriteByte(pick(consonants))
		b.WriteByte(pick(vowels))
	}
	b.WriteByte(pick(consonants))
	s := b.String()
	return strings.ToUpper(s[:1]) + s[1:]
}

// startCodecServer runs `starter codec-server` with cfg's keys on a free
// port and returns its base URL; it is stopped with SIGTERM at the end.
func startCodecServer(t *testing.T, bin string, cfg config.Config) string {
	t.Helper()
	cmd := exec.Command(bin, "codec-server", "--addr", "127.0.0.1:0")
	cmd.Dir = repoRoot(t)
	cmd.Env = append(codecEnv(cfg), "TEMPORAL_UI_URL="+cfg.UIURL)
	var secrets []string
	for _, k := range strings.Split(codec.FormatKeys(cfg.Codec.Keys), ",") {
		_, secret, _ := strings.Cut(k, ":")
		secrets = append(secrets, secret)
	}
	return startListener(t, cmd, "codec server listening", 30*time.Second, 30*time.Second, secrets...)
}

// TestEncryptedHireLeavesNoPersonalDataInTemporal hires a person shaped
// like a row of the sample roster, with a fresh employee ID, name and
// e-mail, while payload encryption is on. The worker and an operator with
// the key read the name in the history; the history as the server stores
// it, and the bytes of Temporal's SQLite file, hold neither the name nor
// the e-mail nor the username. The codec server decrypts a stored payload
// over HTTP, as the Temporal UI asks it to.
func TestEncryptedHireLeavesNoPersonalDataInTemporal(t *testing.T) {
	cfg := withEncryption(t, testConfig(t))
	dbFiles := temporalDBFiles(t)
	c, deps := startWorker(t, cfg)
	raw := rawClient(t, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()

	// The control: a payload written without the codec lands in the file
	// as it is, so the searches below would find a name stored in clear.
	controlID, marker := "codec-control-"+randomHex(t, 8), "plain-payload-"+randomHex(t, 8)
	control, err := raw.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
		ID: controlID, TaskQueue: cfg.TaskQueue + "-nobody-polls",
	}, "CodecControl", marker)
	require.NoError(t, err)
	t.Cleanup(func() { _ = raw.TerminateWorkflow(context.Background(), controlID, control.GetRunID(), "e2e cleanup") })

	// An engineer of the sample roster (no approval to wait for), under a
	// new identity.
	people, known := readRoster(t, cfg.RosterFile)
	var p hr.Person
	for _, q := range people {
		if q.Department == "Engineering" && q.ManagerID != "" && q.Status == hr.StatusActive && q.EmploymentType == hr.TypeEmployee {
			p = q
			break
		}
	}
	require.NotEmpty(t, p.EmployeeID, "the sample roster has an engineer with a manager")
	p.EmployeeID = newEmployeeID(t)
	p.FamilyName = freshSurname(t)
	p.Email = strings.ToLower(p.GivenName+"."+p.FamilyName) + "@example.com"
	p.StartDate = hr.Date{Time: time.Now().UTC().Truncate(24*time.Hour).AddDate(0, 0, -1)}
	p.EndDate = hr.Date{}
	wfID := workflows.OnboardingID(p.EmployeeID)

	starter := &events.Starter{Client: c, Config: cfg, People: known}
	receipt, err := starter.Start(ctx, events.Event{Type: events.TypeHire, Person: &p})
	require.NoError(t, err)
	require.Equal(t, events.OutcomeStarted, receipt.Outcome)
	var res workflows.OnboardingResult
	require.NoError(t, c.GetWorkflow(ctx, wfID, "").Get(ctx, &res), "the onboarding completes")
	require.NotEmpty(t, res.Username)
	t.Cleanup(func() {
		for _, conn := range deps.Activities.Connectors {
			_, _ = conn.DeleteAccount(context.Background(), connectors.AccountRequest{Username: res.Username})
		}
	})
	personal := []string{p.FamilyName, p.Email, res.Username}
	t.Logf("hired %s %s <%s> as %s with payload key %s", p.GivenName, p.FamilyName, p.Email, res.Username, cfg.Codec.KeyID)

	// Whoever holds the key reads the person in the history.
	decoded := wireBytes(t, runHistory(t, c, wfID, ""))
	for _, s := range personal {
		assert.Contains(t, string(decoded), s, "the decoded history holds %q", s)
	}

	// The server stores ciphertext: every payload is encrypted, and no
	// name, e-mail or username shows anywhere in the stored history.
	stored := runHistory(t, raw, wfID, "")
	payloads := historyPayloads(t, stored)
	require.NotEmpty(t, payloads)
	for i, pl := range payloads {
		assert.True(t, codec.Encrypted(pl), "stored payload %d is encrypted: %s", i, pl.GetMetadata())
	}
	storedBytes := wireBytes(t, stored)
	for _, s := range personal {
		assert.NotContains(t, string(storedBytes), s, "the stored history leaks %q", s)
	}
	assert.Contains(t, string(storedBytes), p.EmployeeID, "employee IDs stay readable (workflow ID, search attributes)")

	// The database file: the control and the run are in it, the person is
	// not.
	var found map[string]bool
	require.Eventually(t, func() bool {
		found = filesContain(t, dbFiles, append([]string{marker, wfID}, personal...)...)
		return found[marker] && found[wfID]
	}, time.Minute, time.Second, "the control payload and the workflow ID reach %s", dbFiles[0])
	for _, s := range personal {
		assert.False(t, found[s], "%s holds %q in clear", dbFiles[0], s)
	}

	// The codec server decrypts the stored workflow input for the UI.
	bin := buildStarter(t)
	base := startCodecServer(t, bin, cfg)
	input := stored.GetEvents()[0].GetWorkflowExecutionStartedEventAttributes().GetInput()
	require.NotEmpty(t, input.GetPayloads())
	body, err := protojson.Marshal(input)
	require.NoError(t, err)
	uiOrigin, err := codec.Origin(cfg.UIURL)
	require.NoError(t, err)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/decode", bytes.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Namespace", cfg.TemporalNamespace)
	req.Header.Set("Origin", uiOrigin)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	answer, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode, "%s", answer)
	assert.Equal(t, uiOrigin, resp.Header.Get("Access-Control-Allow-Origin"), "the UI's origin may read the answer")
	var out commonpb.Payloads
	require.NoError(t, protojson.Unmarshal(answer, &out))
	require.Len(t, out.Payloads, len(input.GetPayloads()))
	var in workflows.OnboardingInput
	require.NoError(t, converter.GetDefaultDataConverter().FromPayload(out.Payloads[0], &in))
	assert.Equal(t, p.FamilyName, in.Person.FamilyName)
	assert.Equal(t, p.Email, in.Person.Email)

	// A browser on another origin is refused.
	req, err = http.NewRequestWithContext(ctx, http.MethodPost, base+"/decode", bytes.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Origin", "https://attacker.example")
	resp, err = http.DefaultClient.Do(req)
	require.NoError(t, err)
	answer, err = io.ReadAll(resp.Body)
	resp.Body.Close()
	require.NoError(t, err)
	assert.Equal(t, http.StatusForbidden, resp.StatusCode)
	assert.NotContains(t, string(answer), p.FamilyName)
}

// TestCodecReadsRunsWrittenBeforeEncryption starts a run without the
// codec and reads it back through a client with the codec: turning
// encryption on leaves older runs readable.
func TestCodecReadsRunsWrittenBeforeEncryption(t *testing.T) {
	cfg := withEncryption(t, testConfig(t))
	raw := rawClient(t, cfg)
	c, err := tclient.Dial(context.Background(), cfg, nil)
	require.NoError(t, err)
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	id := "codec-plain-" + randomHex(t, 8)
	run, err := raw.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: id, TaskQueue: cfg.TaskQueue + "-nobody-polls"}, "CodecPlain", "written in clear")
	require.NoError(t, err)
	defer func() { _ = raw.TerminateWorkflow(context.Background(), id, run.GetRunID(), "e2e cleanup") }()

	h := runHistory(t, c, id, run.GetRunID())
	var got string
	require.NoError(t, converter.GetDefaultDataConverter().FromPayloads(
		h.GetEvents()[0].GetWorkflowExecutionStartedEventAttributes().GetInput(), &got))
	assert.Equal(t, "written in clear", got)

	// And a signal sent through the codec is stored encrypted next to it.
	require.NoError(t, c.SignalWorkflow(ctx, id, run.GetRunID(), "note", "sent encrypted"))
	stored := runHistory(t, raw, id, run.GetRunID())
	var signals int
	for _, e := range stored.GetEvents() {
		if a := e.GetWorkflowExecutionSignaledEventAttributes(); a != nil {
			signals++
			require.Len(t, a.GetInput().GetPayloads(), 1)
			assert.True(t, codec.Encrypted(a.GetInput().GetPayloads()[0]))
			assert.NotContains(t, string(wireBytes(t, a)), "sent encrypted")
		}
	}
	assert.Equal(t, 1, signals)
	decoded := runHistory(t, c, id, run.GetRunID())
	assert.Contains(t, string(wireBytes(t, decoded)), "sent encrypted")
	assert.Len(t, decoded.GetEvents(), len(stored.GetEvents()), "the same events, decoded")
}

// addressesIn returns every e-mail address of domain (e.g.
// "@example.com") found in the files, reading them in overlapping chunks.
func addressesIn(t *testing.T, files []string, domain string) map[string]bool {
	t.Helper()
	const overlap = 256 // longer than any local part worth reporting
	found := map[string]bool{}
	local := func(c byte) bool {
		return c == '.' || c == '_' || c == '-' || c == '+' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
	}
	for _, name := range files {
		f, err := os.Open(name)
		if os.IsNotExist(err) {
			continue
		}
		require.NoError(t, err)
		buf := make([]byte, 0, 4<<20+overlap)
		chunk := make([]byte, 4<<20)
		for {
			n, err := io.ReadFull(f, chunk)
			buf = append(buf, chunk[:n]...)
			for from := 0; ; {
				i := bytes.Index(buf[from:], []byte(domain))
				if i < 0 {
					break
				}
				end := from + i
				start := end
				for start > 0 && local(buf[start-1]) {
					start--
				}
				found[strings.ToLower(string(buf[start:end+len(domain)]))] = true
				from = end + len(domain)
			}
			if err != nil {
				break
			}
			keep := min(len(buf), overlap)
			buf = append(buf[:0], buf[len(buf)-keep:]...)
		}
		require.NoError(t, f.Close())
	}
	return found
}

// TestTemporalDBHoldsNoRosterEmail reads Temporal's SQLite file and finds
// no e-mail address of the sample roster in it. With payload encryption
// on (the `make stack` default) no run can put one there; a database that
// ran the demo before encryption existed still holds those runs until
// their retention ends (start from an empty .data/temporal).
func TestTemporalDBHoldsNoRosterEmail(t *testing.T) {
	cfg := testConfig(t)
	people, _ := readRoster(t, cfg.RosterFile)
	roster := map[string]bool{}
	for _, p := range people {
		require.True(t, strings.HasSuffix(strings.ToLower(p.Email), "@example.com"), "the sample roster uses example.com: %s", p.Email)
		roster[strings.ToLower(p.Email)] = true
	}
	stored := addressesIn(t, temporalDBFiles(t), "@example.com")
	var leaked []string
	for addr := range stored {
		if roster[addr] {
			leaked = append(leaked, addr)
		}
	}
	assert.Empty(t, leaked, "e-mails of the sample roster in Temporal's database (payload encryption off, or runs from before it was on)")
	t.Logf("%d distinct @example.com addresses in the database (test people of earlier unencrypted runs), none from the roster", len(stored))
}
