package tlsresume

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/caddyserver/caddy/v2"

	"github.com/tlsresume/caddy-tlsresume/tlsresume/keyring"
)

func init() {
	caddy.RegisterModule(AdminAPI{})
}

// AdminAPI is the admin endpoint of the tls_resume app, under
// `/tls_resume/` on Caddy's admin listener. Caddy loads it on its own; it
// needs no configuration. Every response is JSON; errors are
// `{"error": "..."}` with a 4xx status for bad requests, 405 for a wrong
// method, 503 when no tls_resume app is running and 502 when the ring's
// storage failed.
//
//   - `GET /tls_resume/status`: the ring (name, version, KEK ID, every key's
//     ID, state — staged, sealing or retired — activation, expiry and age;
//     never key material), the invalidation time, the size of the deny
//     list, storage health, and the handshake, resumption, refusal,
//     ticket-rejection and early-data counts since the configuration was
//     loaded (Status).
//   - `POST /tls_resume/rotate`: rotate the whole fleet now; the staged key
//     seals as soon as every node can know it. With `{"emergency": true}`
//     (a leaked ticket key) every key is dropped at once, a fresh one seals
//     immediately and earlier tickets are invalidated. Answers with the
//     status.
//   - `POST /tls_resume/invalidate`: with an empty body or
//     `{"before": "RFC 3339 time"}` (default: now), no ticket issued before
//     that time resumes on any node.
//   - `POST /tls_resume/revoke`: deny a client certificate everywhere (no
//     resumption, no full handshake); see RevokeRequest for the body.
type AdminAPI struct{}

// CaddyModule returns the Caddy module information.
func (AdminAPI) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "admin.api.tls_resume",
		New: func() caddy.Module { return new(AdminAPI) },
	}
}

// Routes returns the admin routes of the tls_resume app.
func (AdminAPI) Routes() []caddy.AdminRoute {
	return []caddy.AdminRoute{
		{Pattern: "/tls_resume/status", Handler: adminHandler(http.MethodGet, handleStatus)},
		{Pattern: "/tls_resume/rotate", Handler: adminHandler(http.MethodPost, handleRotate)},
		{Pattern: "/tls_resume/invalidate", Handler: adminHandler(http.MethodPost, handleInvalidate)},
		{Pattern: "/tls_resume/revoke", Handler: adminHandler(http.MethodPost, handleRevoke)},
	}
}

// maxAdminBody bounds request bodies (a PEM certificate fits easily).
const maxAdminBody = 64 << 10

// adminHandler checks the method, finds the running app and calls h.
func adminHandler(method string, h func(*App, http.ResponseWriter, *http.Request) error) caddy.AdminHandler {
	return caddy.AdminHandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
		if r.Method != method {
			w.Header().Set("Allow", method)
			return caddy.APIError{HTTPStatus: http.StatusMethodNotAllowed,
				Err: fmt.Errorf("method %s not allowed; use %s", r.Method, method)}
		}
		app := runningApp()
		if app == nil {
			return caddy.APIError{HTTPStatus: http.StatusServiceUnavailable, Err: errNotRunning}
		}
		return h(app, w, r)
	})
}

func handleStatus(app *App, w http.ResponseWriter, _ *http.Request) error {
	st, err := app.status()
	if err != nil {
		return operationError(err)
	}
	return writeJSON(w, st)
}

// RotateRequest is the (optional) body of POST /tls_resume/rotate.
type RotateRequest struct {
	// Emergency drops every ticket key at once instead of staging the
	// next one: for a leaked key. A fresh key seals immediately and every
	// ticket issued earlier is invalidated, so every client pays one full
	// handshake (more on nodes until they poll the new ring).
	Emergency bool `json:"emergency,omitempty"`
}

func handleRotate(app *App, w http.ResponseWriter, r *http.Request) error {
	var req RotateRequest
	if err := decodeBody(r, &req); err != nil {
		return err
	}
	st, err := app.rotate(r.Context(), req.Emergency)
	if err != nil {
		return operationError(err)
	}
	return writeJSON(w, st)
}

// InvalidateRequest is the body of POST /tls_resume/invalidate.
type InvalidateRequest struct {
	// Tickets issued before this time (RFC 3339) no longer resume.
	// Default: now. At most a minute in the future.
	Before *time.Time `json:"before,omitempty"`
}

// InvalidateResponse answers POST /tls_resume/invalidate.
type InvalidateResponse struct {
	// The invalidation time in force (a later one already in force wins).
	InvalidatedBefore time.Time `json:"invalidated_before"`
}

func handleInvalidate(app *App, w http.ResponseWriter, r *http.Request) error {
	var req InvalidateRequest
	if err := decodeBody(r, &req); err != nil {
		return err
	}
	var before time.Time
	if req.Before != nil {
		before = *req.Before
	}
	inForce, err := app.invalidate(r.Context(), before)
	if err != nil {
		return operationError(err)
	}
	return writeJSON(w, InvalidateResponse{InvalidatedBefore: inForce.UTC()})
}

// RevokeResponse answers POST /tls_resume/revoke.
type RevokeResponse struct {
	// The deny-list entry, as stored.
	Revoked keyring.DeniedCert `json:"revoked"`
	// Entries on the deny list afterwards.
	DeniedCertificates int `json:"denied_certificates"`
}

func handleRevoke(app *App, w http.ResponseWriter, r *http.Request) error {
	var req RevokeRequest
	if err := decodeBody(r, &req); err != nil {
		return err
	}
	entry, err := req.deniedCert()
	if err != nil {
		return badRequest(err)
	}
	stored, denied, err := app.revoke(r.Context(), entry)
	if err != nil {
		return operationError(err)
	}
	return writeJSON(w, RevokeResponse{Revoked: stored, DeniedCertificates: denied})
}

// decodeBody decodes a JSON object into v; an empty body leaves v alone.
// Unknown fields and trailing data are errors, so typos do not pass.
func decodeBody(r *http.Request, v any) error {
	body, err := io.ReadAll(io.LimitReader(r.Body, maxAdminBody+1))
	if err != nil {
		return badRequest(fmt.Errorf("reading body: %v", err))
	}
	if len(body) > maxAdminBody {
		return caddy.APIError{HTTPStatus: http.StatusRequestEntityTooLarge,
			Err: fmt.Errorf("body larger than %d bytes", maxAdminBody)}
	}
	if len(body) == 0 {
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return badRequest(fmt.Errorf("bad JSON: %v", err))
	}
	if dec.More() {
		return badRequest(errors.New("bad JSON: data after the object"))
	}
	return nil
}

func badRequest(err error) error {
	return caddy.APIError{HTTPStatus: http.StatusBadRequest, Err: err}
}

// operationError maps an operation failure to a status: a refused request
// is 400, no running app 503, anything else (storage) 502.
func operationError(err error) error {
	if errors.As(err, new(invalidInput)) {
		return badRequest(err)
	}
	if errors.Is(err, errNotRunning) {
		return caddy.APIError{HTTPStatus: http.StatusServiceUnavailable, Err: err}
	}
	return caddy.APIError{HTTPStatus: http.StatusBadGateway, Err: fmt.Errorf("ring storage: %v", err)}
}

func writeJSON(w http.ResponseWriter, v any) error {
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "\t")
	return enc.Encode(v)
}

// Interface guards
var (
	_ caddy.Module      = (*AdminAPI)(nil)
	_ caddy.AdminRouter = (*AdminAPI)(nil)
)
