package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/omnirouter/omnirouter/internal/httpbody"
)

// MaxBodyBytes bounds every request body except a restore's.
const MaxBodyBytes = 1 << 20

// MaxKeyLen bounds the Idempotency-Key header.
const MaxKeyLen = 255

// decode reads a JSON body into v. A body that is not JSON is a 400
// (malformed_json); unknown fields and values of the wrong type are a 422; a
// body over MaxBodyBytes is a 413. An empty body decodes as {}.
func decode(c *gin.Context, v any) error {
	if err := requireBodyType(c.Request, "application/json"); err != nil {
		return err
	}
	body, err := httpbody.Read(c.Writer, c.Request, MaxBodyBytes)
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return errorf(http.StatusRequestEntityTooLarge, "body_too_large", "request body exceeds %d bytes", MaxBodyBytes)
		}
		return errorf(http.StatusBadRequest, "unreadable_body", "cannot read request body: %v", err)
	}
	if len(bytes.TrimSpace(body)) == 0 {
		body = []byte("{}")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var te *json.UnmarshalTypeError
		switch {
		case errors.As(err, &te):
			field := te.Field
			if field == "" {
				return errorf(http.StatusBadRequest, "malformed_json", "request body must be a JSON object")
			}
			return invalid("invalid_type", "field %q must be a JSON %s", field, te.Type.Kind())
		case strings.HasPrefix(err.Error(), "json: unknown field"):
			return invalid("unknown_field", "%s", strings.TrimPrefix(err.Error(), "json: "))
		default:
			return errorf(http.StatusBadRequest, "malformed_json", "malformed JSON: %v", err)
		}
	}
	if dec.More() {
		return errorf(http.StatusBadRequest, "malformed_json", "malformed JSON: trailing data after the object")
	}
	return nil
}
