package traces

import (
	"bytes"
	"encoding/json"
	"net/url"
	"regexp"
	"strings"
)

// A GraphQL API sends every call to one path (POST /graphql), and a
// JSON-RPC API likewise: named by method and path alone, a slow Order query
// hides among fast Product ones. Operation finds the name the call itself
// carries, so that reports and criteria can tell them apart.

// maxOperation bounds the length of an operation's name.
const maxOperation = 64

// gqlOperation is a GraphQL request, or a JSON-RPC call, as far as naming
// goes.
type gqlOperation struct {
	OperationName string `json:"operationName"`
	Query         string `json:"query"`
	Extensions    struct {
		PersistedQuery struct {
			Hash string `json:"sha256Hash"`
		} `json:"persistedQuery"`
	} `json:"extensions"`
	JSONRPC string `json:"jsonrpc"`
	Method  string `json:"method"`
}

var gqlNameRE = regexp.MustCompile(`^\s*(?:query|mutation|subscription)\s+([_A-Za-z][_0-9A-Za-z]*)`)

// name returns the operation's name: its operationName, else the name in
// its query, else "persisted-" and the start of its hash; a JSON-RPC call's
// method. Empty when it names nothing.
func (o *gqlOperation) name() string {
	var n string
	switch {
	case o.JSONRPC != "" && o.Method != "":
		n = o.Method
	case o.OperationName != "":
		n = o.OperationName
	case o.Query != "":
		if m := gqlNameRE.FindStringSubmatch(o.Query); m != nil {
			n = m[1]
		} else {
			n = "anonymous"
		}
	case o.Extensions.PersistedQuery.Hash != "":
		n = "persisted-" + o.Extensions.PersistedQuery.Hash[:min(8, len(o.Extensions.PersistedQuery.Hash))]
	}
	if len(n) > maxOperation || strings.ContainsAny(n, " \t\r\n:") {
		return ""
	}
	return n
}

// Operation returns the name of the GraphQL operation or JSON-RPC method a
// request carries: from the JSON body of a POST (a batch, a JSON array, is
// named by its operations joined with +), or from the operationName or
// query parameters of a GET. It returns "" for any other request. body is
// the request's content, decoded.
func Operation(method, target string, body []byte) string {
	if method == "GET" {
		_, q, ok := strings.Cut(target, "?")
		if !ok || !strings.Contains(q, "query=") && !strings.Contains(q, "operationName=") {
			return ""
		}
		vals, err := url.ParseQuery(q)
		if err != nil {
			return ""
		}
		o := gqlOperation{OperationName: vals.Get("operationName"), Query: vals.Get("query")}
		return o.name()
	}
	body = bytes.TrimSpace(body)
	if len(body) == 0 {
		return ""
	}
	switch body[0] {
	case '{':
		if !bytes.Contains(body, []byte(`"query"`)) && !bytes.Contains(body, []byte(`"operationName"`)) &&
			!bytes.Contains(body, []byte(`"jsonrpc"`)) && !bytes.Contains(body, []byte(`"persistedQuery"`)) {
			return ""
		}
		var o gqlOperation
		if json.Unmarshal(body, &o) != nil {
			return ""
		}
		return o.name()
	case '[':
		var ops []gqlOperation
		if json.Unmarshal(body, &ops) != nil {
			return ""
		}
		var names []string
		for i := range ops {
			n := ops[i].name()
			if n == "" {
				return ""
			}
			if len(names) == 3 {
				names = append(names, "…")
				break
			}
			names = append(names, n)
		}
		return strings.Join(names, "+")
	}
	return ""
}

// Operation is Operation for the exchange's request.
func (ex *Exchange) Operation() string {
	body, _ := ex.RequestContent()
	return Operation(ex.Method, ex.URL, body)
}
