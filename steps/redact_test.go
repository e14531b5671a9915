package steps

import (
	"go/ast"
	"go/parser"
	gotoken "go/token"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// everyEvent is one value of each event type; TestEveryEventIsListed keeps
// it complete.
var everyEvent = []Event{
	ScenarioStarted{}, ClusterState{}, StepStarted{}, Command{}, HTTPExchange{},
	Check{}, Log{}, Progress{}, StepFinished{}, Summary{}, Waiting{}, Observed{}, DoneByLab{},
}

// TestEveryEventIsListed: every type of the package with an EventName
// method is in everyEvent, so that a new event is redacted-tested too.
func TestEveryEventIsListed(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	var declared []string
	fset := gotoken.NewFileSet()
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, parser.SkipObjectResolution)
		if err != nil {
			t.Fatalf("parse %s: %v", name, err)
		}
		for _, d := range f.Decls {
			fn, ok := d.(*ast.FuncDecl)
			if !ok || fn.Recv == nil || fn.Name.Name != "EventName" {
				continue
			}
			recv := fn.Recv.List[0].Type
			if star, ok := recv.(*ast.StarExpr); ok {
				recv = star.X
			}
			declared = append(declared, recv.(*ast.Ident).Name)
		}
	}
	var listed []string
	for _, e := range everyEvent {
		listed = append(listed, reflect.TypeOf(e).Name())
	}
	slices.Sort(declared)
	slices.Sort(listed)
	if len(declared) == 0 || !slices.Equal(declared, listed) {
		t.Errorf("event types declared %v, listed in everyEvent %v", declared, listed)
	}
}

// fill sets every string in v, at any depth, to one holding secret twice
// (once against other text), and returns how many it set. Slices and maps get elements, pointers a
// value; interfaces stay nil (no event field is one).
func fill(v reflect.Value, secret string) int {
	switch v.Kind() {
	case reflect.String:
		v.SetString("before " + secret + " between " + secret + "after")
		return 1
	case reflect.Struct:
		n := 0
		for i := range v.NumField() {
			if v.Type().Field(i).IsExported() {
				n += fill(v.Field(i), secret)
			}
		}
		return n
	case reflect.Slice:
		s := reflect.MakeSlice(v.Type(), 2, 2)
		v.Set(s)
		return fill(s.Index(0), secret) + fill(s.Index(1), secret)
	case reflect.Array:
		n := 0
		for i := range v.Len() {
			n += fill(v.Index(i), secret)
		}
		return n
	case reflect.Map:
		k, e := reflect.New(v.Type().Key()).Elem(), reflect.New(v.Type().Elem()).Elem()
		n := fill(k, secret) + fill(e, secret)
		v.Set(reflect.MakeMap(v.Type()))
		v.SetMapIndex(k, e)
		return n
	case reflect.Pointer:
		p := reflect.New(v.Type().Elem())
		v.Set(p)
		return fill(p.Elem(), secret)
	}
	return 0
}

// strs lists every string in v with where it is.
func strs(v reflect.Value, at string, out map[string]string) {
	switch v.Kind() {
	case reflect.String:
		out[at] = v.String()
	case reflect.Struct:
		for i := range v.NumField() {
			if v.Type().Field(i).IsExported() {
				strs(v.Field(i), at+"."+v.Type().Field(i).Name, out)
			}
		}
	case reflect.Slice, reflect.Array:
		for i := range v.Len() {
			strs(v.Index(i), at+"["+strconv.Itoa(i)+"]", out)
		}
	case reflect.Map:
		for it := v.MapRange(); it.Next(); {
			strs(it.Key(), at+"{key}", out)
			strs(it.Value(), at+"{value}", out)
		}
	case reflect.Pointer, reflect.Interface:
		if !v.IsNil() {
			strs(v.Elem(), at, out)
		}
	}
}

// Every string of every event has the token replaced by its variable, and
// the event the engine made is left as it was.
func TestRedactEveryString(t *testing.T) {
	const secret = "eyJhbGciOiJSUzI1NiJ9.secret"
	r := &runner{tokens: map[string]token{"sa-token": {value: secret, variable: "VARIABLE"}}}
	for _, proto := range everyEvent {
		name := reflect.TypeOf(proto).Name()
		t.Run(name, func(t *testing.T) {
			v := reflect.New(reflect.TypeOf(proto)).Elem()
			n := fill(v, secret)
			ev := v.Interface().(Event)

			got := map[string]string{}
			strs(reflect.ValueOf(r.redact(ev)), name, got)
			if len(got) != n {
				t.Errorf("%d strings after redaction, %d before", len(got), n)
			}
			for at, s := range got {
				if strings.Contains(s, secret) {
					t.Errorf("%s keeps the token: %q", at, s)
				}
				if strings.Count(s, "$VARIABLE") != 2 {
					t.Errorf("%s = %q, want the token replaced by $VARIABLE twice", at, s)
				}
			}

			before := map[string]string{}
			strs(reflect.ValueOf(ev), name, before)
			for at, s := range before {
				if strings.Count(s, secret) != 2 {
					t.Errorf("redaction changed the original event: %s = %q", at, s)
				}
			}
		})
	}
}

// Without tokens an event goes out as it is.
func TestRedactWithoutTokens(t *testing.T) {
	ev := Log{Step: "s", Text: "nothing secret"}
	if got := (&runner{}).redact(ev); got != ev {
		t.Errorf("redact changed %+v into %+v", ev, got)
	}
}
