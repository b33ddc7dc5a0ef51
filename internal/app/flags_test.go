package app_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// TestOnlyTheApplicationNamesFlags: no string literal outside the
// application layer and cmd names a flag of thrive (--name): the engines
// return data and typed errors, and this package says what to do in the
// command line's words. Tests, the benchmarks' and the manifests' own
// programs, the browser driver (Chromium's flags) and the tests' own
// Prometheus (its flags) are not engines.
// Nor does an engine import this package.
func TestOnlyTheApplicationNamesFlags(t *testing.T) {
	root := filepath.Join("..", "..")
	skip := map[string]bool{"cmd": true, "bench": true, "deploy": true, filepath.Join("internal", "app"): true, filepath.Join("internal", "apptest"): true,
		filepath.Join("internal", "promtest"): true}
	flag := regexp.MustCompile(`(^|[^-\w])--[a-z]`)
	files := 0
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		if d.IsDir() {
			if skip[rel] || d.Name() == "testdata" || strings.HasPrefix(d.Name(), ".") && rel != "." {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		src, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		fset := token.NewFileSet()
		f, err := parser.ParseFile(fset, path, src, parser.SkipObjectResolution)
		if err != nil {
			return err
		}
		files++
		for _, imp := range f.Imports {
			if p, _ := strconv.Unquote(imp.Path.Value); p == "github.com/thrive-loadtest/thrive/internal/app" {
				t.Errorf("%s imports the application layer: an engine is used by it, not the other way round", path)
			}
		}
		ast.Inspect(f, func(n ast.Node) bool {
			lit, ok := n.(*ast.BasicLit)
			if !ok || lit.Kind != token.STRING {
				return true
			}
			s, err := strconv.Unquote(lit.Value)
			if err == nil && flag.MatchString(s) {
				t.Errorf("%s: %s names a flag: the application layer (internal/app) says that", fset.Position(lit.Pos()), lit.Value)
			}
			return true
		})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if files < 100 {
		t.Fatalf("read %d Go files of the engines: is the walk's root the module's?", files)
	}
}
