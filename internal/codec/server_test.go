package codec

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	commonpb "go.temporal.io/api/common/v1"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
)

const uiOrigin = "http://127.0.0.1:8233"

func newTestServer(t *testing.T, c *Codec) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(NewHandler(c, ServerOptions{AllowedOrigins: LoopbackAliases(uiOrigin)}))
	t.Cleanup(srv.Close)
	return srv
}

// call sends one request the way the Temporal UI does.
func call(t *testing.T, method, url, origin string, body []byte) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Namespace", "default")
	if origin != "" {
		req.Header.Set("Origin", origin)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp, data
}

func payloadsJSON(t *testing.T, ps ...*commonpb.Payload) []byte {
	t.Helper()
	data, err := protojson.Marshal(&commonpb.Payloads{Payloads: ps})
	require.NoError(t, err)
	return data
}

func TestServerDecodesAndEncodes(t *testing.T) {
	c := mustCodec(t, "", testKey(t, "k1", 1))
	srv := newTestServer(t, c)
	enc, err := c.Encode([]*commonpb.Payload{person(t)})
	require.NoError(t, err)

	for _, prefix := range []string{"", "/codec"} {
		resp, body := call(t, http.MethodPost, srv.URL+prefix+"/decode", uiOrigin, payloadsJSON(t, enc...))
		require.Equal(t, http.StatusOK, resp.StatusCode, "%s", body)
		assert.Equal(t, uiOrigin, resp.Header.Get("Access-Control-Allow-Origin"))
		var got commonpb.Payloads
		require.NoError(t, protojson.Unmarshal(body, &got))
		require.Len(t, got.Payloads, 1)
		assert.True(t, proto.Equal(person(t), got.Payloads[0]))
		assert.Contains(t, string(got.Payloads[0].Data), "Lovelace")
	}

	resp, body := call(t, http.MethodPost, srv.URL+"/encode", "", payloadsJSON(t, person(t)))
	require.Equal(t, http.StatusOK, resp.StatusCode, "%s", body)
	var got commonpb.Payloads
	require.NoError(t, protojson.Unmarshal(body, &got))
	require.Len(t, got.Payloads, 1)
	assert.Equal(t, EncodingEncrypted, string(got.Payloads[0].Metadata["encoding"]))
	dec, err := c.Decode(got.Payloads)
	require.NoError(t, err)
	assert.True(t, proto.Equal(person(t), dec[0]))
}

func TestServerRequests(t *testing.T) {
	c := mustCodec(t, "", testKey(t, "k1", 1))
	srv := newTestServer(t, c)
	foreign, err := mustCodec(t, "", testKey(t, "other", 2)).Encode([]*commonpb.Payload{person(t)})
	require.NoError(t, err)
	tests := []struct {
		name, method, path, origin string
		body                       []byte
		wantStatus                 int
		wantBody                   string
		wantAllowOrigin            string
	}{
		{name: "health", method: http.MethodGet, path: "/health", wantStatus: http.StatusOK, wantBody: "ok"},
		{name: "preflight from the UI", method: http.MethodOptions, path: "/decode", origin: uiOrigin,
			wantStatus: http.StatusNoContent, wantAllowOrigin: uiOrigin},
		{name: "preflight from localhost", method: http.MethodOptions, path: "/decode", origin: "http://localhost:8233",
			wantStatus: http.StatusNoContent, wantAllowOrigin: "http://localhost:8233"},
		{name: "another origin", method: http.MethodPost, path: "/decode", origin: "https://evil.example",
			body: payloadsJSON(t, foreign...), wantStatus: http.StatusForbidden, wantBody: "origin not allowed"},
		{name: "unknown key", method: http.MethodPost, path: "/decode", body: payloadsJSON(t, foreign...),
			wantStatus: http.StatusBadRequest, wantBody: `encrypted with key "other"`},
		{name: "not JSON", method: http.MethodPost, path: "/decode", body: []byte("{"), wantStatus: http.StatusBadRequest},
		{name: "too large", method: http.MethodPost, path: "/decode", body: bytes.Repeat([]byte(" "), MaxRequestBytes+1),
			wantStatus: http.StatusBadRequest, wantBody: "too large"},
		{name: "GET decode", method: http.MethodGet, path: "/decode", wantStatus: http.StatusNotFound},
		{name: "other path", method: http.MethodPost, path: "/admin", body: []byte("{}"), wantStatus: http.StatusNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := call(t, tt.method, srv.URL+tt.path, tt.origin, tt.body)
			assert.Equal(t, tt.wantStatus, resp.StatusCode, "%s", body)
			assert.Contains(t, string(body), tt.wantBody)
			assert.Equal(t, tt.wantAllowOrigin, resp.Header.Get("Access-Control-Allow-Origin"))
			if tt.method == http.MethodOptions {
				assert.Contains(t, resp.Header.Get("Access-Control-Allow-Headers"), "X-Namespace")
				assert.Contains(t, resp.Header.Get("Access-Control-Allow-Methods"), "POST")
			}
			assert.NotContains(t, string(body), "Lovelace")
		})
	}
}

func TestOrigin(t *testing.T) {
	tests := []struct{ in, want, wantErr string }{
		{in: "http://127.0.0.1:8233", want: "http://127.0.0.1:8233"},
		{in: "https://Temporal.Example.com/ui/", want: "https://temporal.example.com"},
		{in: "127.0.0.1:8233", wantErr: "not an absolute URL"},
		{in: "", wantErr: "not an absolute URL"},
	}
	for _, tt := range tests {
		got, err := Origin(tt.in)
		if tt.wantErr != "" {
			require.Error(t, err, tt.in)
			assert.Contains(t, err.Error(), tt.wantErr)
			continue
		}
		require.NoError(t, err)
		assert.Equal(t, tt.want, got)
	}
	assert.Equal(t, []string{"http://127.0.0.1:8233", "http://localhost:8233"}, LoopbackAliases("http://127.0.0.1:8233"))
	assert.Equal(t, []string{"http://localhost", "http://127.0.0.1"}, LoopbackAliases("http://localhost"))
	assert.Equal(t, []string{"https://ui.example.com"}, LoopbackAliases("https://ui.example.com"))
}

func TestServeStopsWhenTheContextEnds(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- Serve(ctx, ln, NewHandler(mustCodec(t, "", testKey(t, "k1", 1)), ServerOptions{}), nil)
	}()
	require.Eventually(t, func() bool {
		resp, err := http.Get("http://" + ln.Addr().String() + HealthPath)
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}, 5*time.Second, 20*time.Millisecond)
	cancel()
	select {
	case err := <-done:
		assert.NoError(t, err)
	case <-time.After(ShutdownTimeout + time.Second):
		t.Fatal("Serve did not return after the context ended")
	}
	_, err = http.Get("http://" + ln.Addr().String() + HealthPath)
	assert.Error(t, err, "the listener is closed")
}

// The JSON the SDK handler writes uses the proto field names the UI reads.
func TestServerAnswerShape(t *testing.T) {
	c := mustCodec(t, "", testKey(t, "k1", 1))
	srv := newTestServer(t, c)
	enc, err := c.Encode([]*commonpb.Payload{person(t)})
	require.NoError(t, err)
	_, body := call(t, http.MethodPost, srv.URL+"/decode", "", payloadsJSON(t, enc...))
	var shape struct {
		Payloads []struct {
			Metadata map[string]string `json:"metadata"`
			Data     string            `json:"data"`
		} `json:"payloads"`
	}
	require.NoError(t, json.Unmarshal(body, &shape), "%s", body)
	require.Len(t, shape.Payloads, 1)
	assert.NotEmpty(t, shape.Payloads[0].Data)
	assert.True(t, strings.HasPrefix(string(body), `{"payloads":[`), "%s", body)
}
