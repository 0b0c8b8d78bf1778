package variant

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"github.com/backprop-dev/backprop/expr"
	"github.com/backprop-dev/backprop/solve"
	"github.com/backprop-dev/backprop/tensor"
	"github.com/backprop-dev/backprop/trace"
)

// KeyStep is one step of the worked trace in the key.
type KeyStep struct {
	Pass    string `json:"pass"` // "forward" or "backward"
	Step    int    `json:"step"` // 1-based within its pass, as `backprop solve --detail full` (key/solution-full.md) numbers it
	Target  string `json:"target"`
	Formula string `json:"formula"`
	// Answer is where a student's answers file holds this step's values:
	// "forward.h0" or "gradients.w0"; empty when it holds none.
	Answer   string       `json:"answer,omitempty"`
	Shape    []int        `json:"shape"`
	Elements []KeyElement `json:"elements"`
}

// KeyElement is one element of a step: its label in the trace, its value
// and the worked line that computes it.
type KeyElement struct {
	Label string  `json:"label"`
	Value float64 `json:"value"`
	Line  string  `json:"line,omitempty"`
}

// named is one value of the key's forward or gradients object.
type named struct {
	name  string
	value trace.Matrix
}

// keyForward is the key's forward values: every value `backprop solve
// --format json` reports, and every asked one it does not (the
// discriminator's pre-activation a), taken from its step of the trace, in
// the order of the forward pass.
func keyForward(sol *solve.Solution) []named {
	have := map[string]trace.Matrix{}
	for _, f := range sol.Forward {
		have[f.Name] = f.Value
	}
	asked := map[string]bool{}
	for _, n := range sol.Spec.Ask.Forward {
		asked[n] = true
	}
	var out []named
	done := map[string]bool{}
	for _, st := range sol.Trace.Forward {
		t, ok := st.Target.(expr.Ref)
		if !ok || done[t.Name] {
			continue
		}
		if v, ok := have[t.Name]; ok {
			out = append(out, named{t.Name, v})
			done[t.Name] = true
		} else if asked[t.Name] {
			out = append(out, named{t.Name, st.Value})
			done[t.Name] = true
		}
	}
	for _, f := range sol.Forward { // reported without a step of its own
		if !done[f.Name] {
			out = append(out, named{f.Name, f.Value})
		}
	}
	return out
}

// writeValues writes a JSON object of values in their own shapes, as
// `backprop solve --format json` does.
func writeValues(b *bytes.Buffer, items []named) error {
	b.WriteString("{")
	for i, it := range items {
		if i > 0 {
			b.WriteString(",")
		}
		k, err := marshal(it.name)
		if err != nil {
			return err
		}
		v, err := marshal(tensor.MustFromSlice(it.value.Data, it.value.Shape...).Nested())
		if err != nil {
			return fmt.Errorf("%s: %w", it.name, err)
		}
		fmt.Fprintf(b, "\n    %s: %s", k, v)
	}
	b.WriteString("\n  }")
	return nil
}

// asked is the names the template lists: the spec's ask, or every value
// when it asks for nothing in particular.
func asked(names []string, all []named) []named {
	if len(names) == 0 {
		return all
	}
	byName := map[string]named{}
	for _, it := range all {
		byName[it.name] = it
	}
	var out []named
	for _, n := range names {
		if it, ok := byName[n]; ok {
			out = append(out, it)
		}
	}
	return out
}

// keyAsk is the key's record of what the sheet asks for.
type keyAsk struct {
	Forward   []string `json:"forward"`
	Gradients []string `json:"gradients"`
}

// key builds key.json and answers-template.json.
func key(o Options, v Variant, sol *solve.Solution) ([]byte, []byte, error) {
	fwd := keyForward(sol)
	var grads []named
	for _, g := range sol.Gradients {
		grads = append(grads, named{g.Name, g.Value})
	}
	forward, gradients := map[string]bool{}, map[string]bool{}
	for _, f := range fwd {
		forward[f.name] = true
	}
	for _, g := range grads {
		gradients[g.name] = true
	}
	var steps []KeyStep
	add := func(pass string, list []trace.Step) {
		for i, st := range list {
			ks := KeyStep{Pass: pass, Step: i + 1, Target: expr.String(st.Target), Formula: expr.String(st.Formula), Shape: st.Value.Shape}
			if ks.Shape == nil {
				ks.Shape = []int{}
			}
			switch t := st.Target.(type) {
			case expr.Ref:
				if pass == "forward" && forward[t.Name] {
					ks.Answer = "forward." + t.Name
				}
			case expr.Grad:
				if gradients[t.Wrt.Name] {
					ks.Answer = "gradients." + t.Wrt.Name
				}
			}
			text := stepLines(st, sol)
			for k, val := range st.Value.Data {
				e := KeyElement{Value: val}
				if k < len(st.Lines) {
					e.Label = expr.String(st.Lines[k].Target)
					if k < len(text) {
						e.Line = text[k]
					}
				} else {
					e.Label = elementLabel(ks.Target, st.Value.Shape, k)
				}
				ks.Elements = append(ks.Elements, e)
			}
			steps = append(steps, ks)
		}
	}
	add("forward", sol.Trace.Forward)
	add("backward", sol.Trace.Backward)

	tf, tg := asked(sol.Spec.Ask.Forward, fwd), asked(sol.Spec.Ask.Gradients, grads)
	ask := keyAsk{}
	for _, f := range tf {
		ask.Forward = append(ask.Forward, f.name)
	}
	for _, g := range tg {
		ask.Gradients = append(ask.Gradients, g.name)
	}

	var b bytes.Buffer
	field := func(name string, v any, last bool) error {
		raw, err := marshal(v)
		if err != nil {
			return err
		}
		fmt.Fprintf(&b, "  %q: %s", name, raw)
		if !last {
			b.WriteString(",")
		}
		b.WriteString("\n")
		return nil
	}
	b.WriteString("{\n")
	meta := []struct {
		k string
		v any
	}{
		{"backprop_key", KeyFormat}, {"variant", v.Name}, {"problem", v.Problem}, {"index", v.Index},
		{"seed", o.Seed}, {"precision", o.Precision}, {"title", sol.Spec.Title},
	}
	// the conventions are readings of Problem 1's reshape, kernel and
	// label, and of the conv net's flatten; the auto-encoder and the
	// softmax classifier have none of these layers
	if v.Problem == "gan" || v.Problem == "convnet" {
		meta = append(meta, struct {
			k string
			v any
		}{"conventions", sol.Spec.Conventions})
	}
	meta = append(meta, []struct {
		k string
		v any
	}{{"objective", sol.Spec.Objective.Type}, {"ask", ask}}...)
	for _, m := range meta {
		if err := field(m.k, m.v, false); err != nil {
			return nil, nil, err
		}
	}
	b.WriteString("  \"forward\": ")
	if err := writeValues(&b, fwd); err != nil {
		return nil, nil, err
	}
	b.WriteString(",\n  \"gradients\": ")
	if err := writeValues(&b, grads); err != nil {
		return nil, nil, err
	}
	b.WriteString(",\n  \"steps\": [\n")
	for i, st := range steps {
		raw, err := marshal(st)
		if err != nil {
			return nil, nil, err
		}
		b.WriteString("    ")
		b.Write(raw)
		if i < len(steps)-1 {
			b.WriteString(",")
		}
		b.WriteString("\n")
	}
	b.WriteString("  ],\n")
	if err := field("spec", string(v.Spec), true); err != nil {
		return nil, nil, err
	}
	b.WriteString("}\n")

	var t bytes.Buffer
	t.WriteString("{\n  \"variant\": ")
	name, _ := marshal(v.Name)
	t.Write(name)
	t.WriteString(",\n  \"forward\": {")
	for i, f := range tf {
		writeNull(&t, f.name, f.value.Shape, i == 0)
	}
	t.WriteString("\n  },\n  \"gradients\": {")
	for i, g := range tg {
		writeNull(&t, g.name, g.value.Shape, i == 0)
	}
	t.WriteString("\n  }\n}\n")
	return b.Bytes(), t.Bytes(), nil
}

// stepLines are the step's element lines as `backprop solve` prints them.
func stepLines(st trace.Step, sol *solve.Solution) []string {
	if len(st.Lines) == 0 {
		return nil
	}
	var txt bytes.Buffer
	one := &trace.Trace{Forward: []trace.Step{st}}
	if err := one.WriteText(&txt, trace.Header{}, 0); err != nil {
		return nil
	}
	lines := strings.Split(txt.String(), "\n")
	for i, l := range lines {
		if !strings.HasPrefix(l, "[1] ") {
			continue
		}
		j := i + 1
		if st.Note != "" {
			j++
		}
		var out []string
		for k := 0; k < len(st.Lines) && j+k < len(lines); k++ {
			out = append(out, strings.TrimSpace(lines[j+k]))
		}
		return out
	}
	return nil
}

// elementLabel names element k of a tensor, 1-based: h0[3], ∂J/∂w1[1,1,2,3].
func elementLabel(target string, shape []int, k int) string {
	if len(shape) == 0 {
		return target
	}
	idx := tensor.Index(shape, k)
	parts := make([]string, len(idx))
	for i, x := range idx {
		parts[i] = strconv.Itoa(x + 1)
	}
	return target + "[" + strings.Join(parts, ",") + "]"
}

func writeNull(b *bytes.Buffer, name string, shape []int, first bool) {
	if !first {
		b.WriteString(",")
	}
	k, _ := marshal(name)
	fmt.Fprintf(b, "\n    %s: %s", k, nulls(shape))
}

func nulls(shape []int) string {
	if len(shape) == 0 {
		return "null"
	}
	inner := nulls(shape[1:])
	parts := make([]string, shape[0])
	for i := range parts {
		parts[i] = inner
	}
	return "[" + strings.Join(parts, ", ") + "]"
}

// marshal is json.Marshal without HTML escaping (formulas contain < and >).
func marshal(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimRight(b.Bytes(), "\n"), nil
}
