package steps

import (
	"reflect"
	"strings"
)

// redact replaces every token value the run holds, in every string of the
// event, by the shell variable it is shown as ($SA_TOKEN): a credential
// never reaches a sink, whichever field a step put it in.
func (r *runner) redact(e Event) Event {
	var pairs []string
	for _, t := range r.tokens {
		if t.value != "" { // hands-on: the attendee holds the token, the lab none
			pairs = append(pairs, t.value, "$"+t.variable)
		}
	}
	if len(pairs) == 0 {
		return e
	}
	return MapStrings(e, strings.NewReplacer(pairs...).Replace)
}

// MapStrings returns a copy of v in which every string, at any depth
// (fields of nested structs, elements of slices and arrays, keys and values
// of maps, what pointers and interfaces hold), has been replaced by f of
// it. v itself is not changed. Unexported fields are copied as they are.
func MapStrings[T any](v T, f func(string) string) T {
	out := mapStrings(reflect.ValueOf(&v).Elem(), f)
	return out.Interface().(T)
}

func mapStrings(v reflect.Value, f func(string) string) reflect.Value {
	out := reflect.New(v.Type()).Elem()
	switch v.Kind() {
	case reflect.String:
		out.SetString(f(v.String()))
	case reflect.Struct:
		out.Set(v)
		for i := range v.NumField() {
			if v.Type().Field(i).IsExported() {
				out.Field(i).Set(mapStrings(v.Field(i), f))
			}
		}
	case reflect.Slice:
		if v.IsNil() {
			return v
		}
		out.Set(reflect.MakeSlice(v.Type(), v.Len(), v.Len()))
		for i := range v.Len() {
			out.Index(i).Set(mapStrings(v.Index(i), f))
		}
	case reflect.Array:
		for i := range v.Len() {
			out.Index(i).Set(mapStrings(v.Index(i), f))
		}
	case reflect.Map:
		if v.IsNil() {
			return v
		}
		out.Set(reflect.MakeMapWithSize(v.Type(), v.Len()))
		for it := v.MapRange(); it.Next(); {
			out.SetMapIndex(mapStrings(it.Key(), f), mapStrings(it.Value(), f))
		}
	case reflect.Pointer:
		if v.IsNil() {
			return v
		}
		out.Set(reflect.New(v.Type().Elem()))
		out.Elem().Set(mapStrings(v.Elem(), f))
	case reflect.Interface:
		if v.IsNil() {
			return v
		}
		out.Set(mapStrings(v.Elem(), f))
	default:
		out.Set(v)
	}
	return out
}
