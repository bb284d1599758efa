package api

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"net/http"

	"github.com/gin-gonic/gin"
)

// openAPIDoc is the OpenAPI 3 description of the whole API.
//
//go:embed openapi.json
var openAPIDoc []byte

// OpenAPI returns the OpenAPI document as it is in the repository.
func OpenAPI() []byte { return openAPIDoc }

// servedOpenAPI is the document with info.version set to the running
// build's version, so that a client knows which build describes itself.
func servedOpenAPI(version string) []byte {
	d := json.NewDecoder(bytes.NewReader(openAPIDoc))
	d.UseNumber() // keep every number as written
	var doc map[string]any
	if err := d.Decode(&doc); err != nil {
		panic("api: openapi.json: " + err.Error()) // a test checks it parses
	}
	info, _ := doc["info"].(map[string]any)
	if info == nil {
		info = map[string]any{}
		doc["info"] = info
	}
	info["version"] = version
	var out bytes.Buffer
	enc := json.NewEncoder(&out)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", " ")
	if err := enc.Encode(doc); err != nil {
		panic("api: openapi.json: " + err.Error())
	}
	return out.Bytes()
}

func (s *Server) openAPI(c *gin.Context) {
	c.Data(http.StatusOK, "application/json", s.openAPIServed)
}
