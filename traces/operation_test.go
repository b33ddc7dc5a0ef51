package traces

import "testing"

func TestOperation(t *testing.T) {
	for _, tc := range []struct{ name, method, target, body, want string }{
		{"operationName", "POST", "/graphql", `{"operationName":"Checkout","query":"mutation Checkout($id: ID!) { checkout(id: $id) { id } }","variables":{"id":7}}`, "Checkout"},
		{"name from the query", "POST", "/graphql", `{"query":"query Order($id: ID!) { order(id: $id) { total } }"}`, "Order"},
		{"anonymous query", "POST", "/graphql", `{"query":"{ products { id } }"}`, "anonymous"},
		{"persisted query", "POST", "/graphql", `{"variables":{},"extensions":{"persistedQuery":{"version":1,"sha256Hash":"ecf4edb46db40b5132295c0291d62fb65d6759a9eedfa4d5d612dd5ec54a6b38"}}}`, "persisted-ecf4edb4"},
		{"batch", "POST", "/graphql", `[{"operationName":"Cart"},{"operationName":"Product"}]`, "Cart+Product"},
		{"long batch", "POST", "/graphql", `[{"operationName":"A"},{"operationName":"B"},{"operationName":"C"},{"operationName":"D"},{"operationName":"E"}]`, "A+B+C+…"},
		{"json-rpc", "POST", "/rpc", `{"jsonrpc":"2.0","method":"eth_getBalance","params":["0x1"],"id":1}`, "eth_getBalance"},
		{"GET with parameters", "GET", "/graphql?operationName=Product&query=query+Product%7Bp%7D", "", "Product"},
		{"plain JSON", "POST", "/api/items", `{"name":"x","query":5}`, ""},
		{"a form", "POST", "/login", "query=x&operationName=y", ""},
		{"plain GET", "GET", "/api/items?page=2", "", ""},
		{"a name with spaces", "POST", "/graphql", `{"operationName":"a b"}`, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Operation(tc.method, tc.target, []byte(tc.body)); got != tc.want {
				t.Fatalf("%q, want %q", got, tc.want)
			}
		})
	}
}
