package replay

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/thrive-loadtest/thrive/report"
)

// GraphQL servers answer errors with a 200 and a top-level "errors" array
// ({"data": null, "errors": [{"message": "no such order"}]}); JSON-RPC ones
// with an "error" object. An operation whose recorded answer had none and
// whose live one has some failed, whatever the status says.

// apiAnswer is what of an answer tells its errors.
type apiAnswer struct {
	Errors []struct {
		Message    string `json:"message"`
		Extensions struct {
			Code string `json:"code"`
		} `json:"extensions"`
	} `json:"errors"`
	Error *struct {
		Code    json.Number `json:"code"`
		Message string      `json:"message"`
	} `json:"error"`
}

// maxErrorKind bounds the length of an error's name in reports.
const maxErrorKind = 60

// apiError returns the error a GraphQL or JSON-RPC answer carries, named by
// its code or message (digits folded, so that "no such order 201" and
// "no such order 202" count together), or "" when it carries none.
func apiError(body []byte) report.ErrorKind {
	body = bytes.TrimSpace(body)
	if len(body) == 0 || body[0] != '{' && body[0] != '[' || !bytes.Contains(body, []byte(`"error`)) {
		return ""
	}
	var a apiAnswer
	if body[0] == '[' {
		// A batch: the first answer with errors tells.
		var all []apiAnswer
		if json.Unmarshal(body, &all) != nil {
			return ""
		}
		for _, x := range all {
			if len(x.Errors) > 0 || x.Error != nil {
				a = x
				break
			}
		}
	} else if json.Unmarshal(body, &a) != nil {
		return ""
	}
	var name string
	switch {
	case len(a.Errors) > 0:
		name = "graphql: " + firstOf(a.Errors[0].Extensions.Code, a.Errors[0].Message, "error")
	case a.Error != nil:
		name = "json-rpc: " + strings.TrimSpace(fmt.Sprintf("%s %s", a.Error.Code, a.Error.Message))
	default:
		return ""
	}
	return report.ErrorKind(foldDigits(name, maxErrorKind))
}

func firstOf(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}

// foldDigits writes each run of digits of s as N, at most n bytes of it.
func foldDigits(s string, n int) string {
	var b strings.Builder
	inRun := false
	for i := 0; i < len(s) && b.Len() < n; i++ {
		c := s[i]
		if c >= '0' && c <= '9' {
			if !inRun {
				b.WriteByte('N')
			}
			inRun = true
			continue
		}
		inRun = false
		b.WriteByte(c)
	}
	return b.String()
}
