package osb

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
)

// Sentinels an [*Error] matches with errors.Is.
var (
	// ErrGone: the broker answered 410 Gone (the instance or binding does not exist).
	ErrGone = errors.New("gone")
	// ErrConflict: 409 Conflict (it exists with different attributes).
	ErrConflict = errors.New("conflict")
	// ErrNotFound: 404 Not Found.
	ErrNotFound = errors.New("not found")
	// ErrBadRequest: 400 Bad Request.
	ErrBadRequest = errors.New("bad request")
	// ErrUnauthorized: 401 Unauthorized (wrong broker credentials).
	ErrUnauthorized = errors.New("unauthorized")
	// ErrPreconditionFailed: 412, the broker refuses API version 2.17.
	ErrPreconditionFailed = errors.New("API version refused")
	// ErrAsyncRequired: 422 with code AsyncRequired.
	ErrAsyncRequired = errors.New(CodeAsyncRequired)
	// ErrConcurrency: 422 with code ConcurrencyError.
	ErrConcurrency = errors.New(CodeConcurrencyError)
	// ErrRequiresApp: 422 with code RequiresApp.
	ErrRequiresApp = errors.New(CodeRequiresApp)
	// ErrMaintenanceInfoConflict: 422 with code MaintenanceInfoConflict.
	ErrMaintenanceInfoConflict = errors.New(CodeMaintenanceInfoConflict)
	// ErrOperationFailed: last_operation reported the state "failed".
	ErrOperationFailed = errors.New("operation failed")
	// ErrPollingTimeout: an operation was still in progress when the plan's
	// maximum_polling_duration ran out.
	ErrPollingTimeout = errors.New("maximum_polling_duration exceeded")
	// ErrMalformedResponse: a success answer whose body could not be read.
	ErrMalformedResponse = errors.New("malformed response")
)

// Error is a broker's answer that is not a success: an error status, an
// unexpected status, or an operation that ended in the state "failed".
type Error struct {
	// Broker is the broker's name from [Config].
	Broker string
	// Op says what was being done, e.g. "provision instance db-1".
	Op string
	// StatusCode is the HTTP status (200 for a failed last operation).
	StatusCode int
	// Code is the broker's error code, e.g. "ConcurrencyError"; may be empty.
	Code string
	// Description is the broker's description of the failure.
	Description string
	// State is StateFailed when last_operation reported a failure.
	State State
	// InstanceUsable is the broker's instance_usable, if it said.
	InstanceUsable *bool
	// UpdateRepeatable is the broker's update_repeatable, if it said.
	UpdateRepeatable *bool
}

// Error says which broker, what was being done, and what the broker answered.
func (e *Error) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "broker %s: %s: ", e.Broker, e.Op)
	if e.State == StateFailed {
		b.WriteString("operation failed")
	} else {
		fmt.Fprintf(&b, "%d %s", e.StatusCode, http.StatusText(e.StatusCode))
	}
	if e.Code != "" {
		fmt.Fprintf(&b, " (%s)", e.Code)
	}
	if e.Description != "" {
		fmt.Fprintf(&b, ": %s", e.Description)
	}
	return b.String()
}

// Is matches the sentinels ErrGone, ErrConflict, ErrNotFound, ErrBadRequest,
// ErrUnauthorized, ErrPreconditionFailed, ErrAsyncRequired, ErrConcurrency,
// ErrRequiresApp, ErrMaintenanceInfoConflict and ErrOperationFailed.
func (e *Error) Is(target error) bool {
	switch target {
	case ErrOperationFailed:
		return e.State == StateFailed
	case ErrAsyncRequired:
		return e.Code == CodeAsyncRequired
	case ErrConcurrency:
		return e.Code == CodeConcurrencyError
	case ErrRequiresApp:
		return e.Code == CodeRequiresApp
	case ErrMaintenanceInfoConflict:
		return e.Code == CodeMaintenanceInfoConflict
	}
	if e.State == StateFailed {
		return false
	}
	switch target {
	case ErrGone:
		return e.StatusCode == http.StatusGone
	case ErrConflict:
		return e.StatusCode == http.StatusConflict
	case ErrNotFound:
		return e.StatusCode == http.StatusNotFound
	case ErrBadRequest:
		return e.StatusCode == http.StatusBadRequest
	case ErrUnauthorized:
		return e.StatusCode == http.StatusUnauthorized
	case ErrPreconditionFailed:
		return e.StatusCode == http.StatusPreconditionFailed
	}
	return false
}

// Temporary says whether repeating the request later may succeed: a 5xx, a
// 408, a 429 or a ConcurrencyError.
func (e *Error) Temporary() bool {
	return e.StatusCode >= 500 || e.StatusCode == http.StatusRequestTimeout ||
		e.StatusCode == http.StatusTooManyRequests || e.Code == CodeConcurrencyError
}

// brokerError reads a broker's error answer. The body is decoded as an
// ErrorResponse; a body that is not one is not quoted (it might echo secrets).
func (c *Client) brokerError(op string, status int, body []byte) *Error {
	e := &Error{Broker: c.name, Op: op, StatusCode: status}
	var er ErrorResponse
	if len(body) > 0 && json.Unmarshal(body, &er) == nil {
		e.Code = er.Error
		e.Description = er.Description
		e.InstanceUsable = er.InstanceUsable
		e.UpdateRepeatable = er.UpdateRepeatable
	}
	return e
}
