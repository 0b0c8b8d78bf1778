package models

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/backprop-dev/backprop/gan"
	"github.com/backprop-dev/backprop/onnx"
	"github.com/backprop-dev/backprop/onnx/backendtest"
	"github.com/backprop-dev/backprop/safetensors"
	"github.com/backprop-dev/backprop/tensor"
)

// recipes are the DCGAN recipes whose networks differ from the reference
// ones: the class-conditional pair with an EMA generator (what train gan
// trains by default), a spectrally normalized discriminator, and both
// together (with the hinge loss, which changes only the weights).
var recipes = []struct {
	name string
	r    gan.Recipe
}{
	{"conditional-ema", gan.Recipe{Conditional: true, EMA: 0.999}},
	{"spectral-norm", gan.Recipe{SpectralNorm: true}},
	{"conditional-spectral-norm", gan.Recipe{Conditional: true, SpectralNorm: true, Loss: gan.LossHinge}},
}

// recipeCheckpoint trains a DCGAN of recipe r for two steps (batch 4) on
// eight random labelled images (classes 0…7) and saves it, as train gan
// --limit 8 --batch 4 would after its first epoch.
func recipeCheckpoint(t *testing.T, r gan.Recipe) string {
	t.Helper()
	cfg := gan.Config{Data: writeImages(t, 8), Seed: 3, Batch: 4, Recipe: r}
	images, labels, err := gan.LoadLabeled(cfg)
	if err != nil {
		t.Fatal(err)
	}
	tr, err := gan.NewLabeledTrainer(cfg, images, labels)
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if _, err := tr.TrainStep(); err != nil {
			t.Fatal(err)
		}
	}
	path := filepath.Join(t.TempDir(), "checkpoint.safetensors")
	if err := tr.Save(path); err != nil {
		t.Fatal(err)
	}
	return path
}

// recipeExport is one network of a recipe checkpoint with its export.
type recipeExport struct {
	name string // recipe/kind
	ck   string // the checkpoint
	r    gan.Recipe
	net  *Net
	e    *Export
}

// recipeExports loads both networks of a checkpoint of every recipe and
// exports them on a batch of 12 samples drawn from seed 14 (classes 0…9,
// 0, 1: every class at least once).
func recipeExports(t *testing.T) []recipeExport {
	t.Helper()
	var out []recipeExport
	for _, c := range recipes {
		ck := recipeCheckpoint(t, c.r)
		for _, k := range []Kind{Generator, Discriminator} {
			n, err := Load(ck, k)
			if err != nil {
				t.Fatalf("%s: %v", c.name, err)
			}
			e, err := ExportNet(n, SampleInput(k, 12, 14))
			if err != nil {
				t.Fatalf("%s: %s: %v", c.name, k, err)
			}
			out = append(out, recipeExport{name: c.name + "/" + string(k), ck: ck, r: c.r, net: n, e: e})
		}
	}
	return out
}

// TestRecipeCheckpointsExport: every network of a conditional or
// spectral-norm checkpoint loads and exports (Load used to refuse them). A conditional network takes "input" and
// "class" (INT64, N) and gathers its class embedding; a spectrally
// normalized one holds plain weights. Each export written as a backend-test
// directory passes backprop's importer (backprop onnx test), also on
// another batch size, and its outputs are the checkpoint's networks' as
// the gan package loads and runs them.
func TestRecipeCheckpointsExport(t *testing.T) {
	for _, x := range recipeExports(t) {
		t.Run(x.name, func(t *testing.T) {
			n, m := x.net, x.e.Model
			if n.Conditional != x.r.Conditional || n.SpectralNorm != (x.r.SpectralNorm && n.Kind == Discriminator) {
				t.Errorf("Net conditional %v, spectral norm %v; recipe %s", n.Conditional, n.SpectralNorm, x.r)
			}
			var ins []string
			for _, vi := range m.Inputs() {
				ins = append(ins, fmt.Sprintf("%s %s %v", vi.Name, vi.Type, vi.Shape))
			}
			want := []string{"input FLOAT [-1 100]"}
			if n.Kind == Discriminator {
				want = []string{"input FLOAT [-1 1 28 28]"}
			}
			if n.Conditional {
				want = append(want, "class INT64 [-1]")
			}
			if !slices.Equal(ins, want) {
				t.Errorf("inputs %q, want %q", ins, want)
			}
			if got := slices.Contains(m.Operators(), "Gather"); got != n.Conditional {
				t.Errorf("operators %v: Gather %v, conditional %v", m.Operators(), got, n.Conditional)
			}
			inits, err := m.Initializers()
			if err != nil {
				t.Fatal(err)
			}
			for _, in := range inits {
				if strings.Contains(in.Name, "weight_orig") || strings.HasSuffix(in.Name, "weight_u") || strings.HasSuffix(in.Name, "weight_v") {
					t.Errorf("initializer %q: the spectral norm's parameters, not the weights it computes", in.Name)
				}
			}

			dir := filepath.Join(t.TempDir(), "test")
			if err := WriteTestData(dir, x.e); err != nil {
				t.Fatal(err)
			}
			for _, r := range backendtest.RunDir(dir, backendtest.Options{RTol: 1e-5, ATol: 1e-6}) {
				if r.Status != backendtest.Passed {
					t.Errorf("backprop onnx test: %s %s", r.Status, r.Detail)
				}
			}

			// another batch size (5), other classes
			z := SampleInput(n.Kind, 5, 2)
			var classes []int
			if n.Conditional {
				classes = []int{9, 3, 3, 0, 7}
			}
			e5, err := ExportNetClasses(n, z, classes)
			if err != nil {
				t.Fatal(err)
			}
			in5 := slices.Clone(e5.Inputs)
			got, err := backendtest.Run[float32](m, in5)
			if err != nil {
				t.Fatal(err)
			}
			if err := backendtest.Compare(got[0], e5.Outputs[0], 1e-5, 1e-6); err != nil {
				t.Errorf("batch of 5: %v", err)
			}

			// the checkpoint's networks as the gan package runs them
			c, err := gan.OpenCheckpoint(x.ck)
			if err != nil {
				t.Fatal(err)
			}
			if n.Kind == Generator {
				g, err := c.Generator()
				if err != nil {
					t.Fatal(err)
				}
				img, err := gan.GenerateLabeled(g, z, classes)
				if err != nil {
					t.Fatal(err)
				}
				worst := 0.0
				for i, v := range img.Data() {
					worst = math.Max(worst, math.Abs(float64(v)-(e5.Outputs[0].Floats[i]+1)/2))
				}
				if worst > 1e-6 {
					t.Errorf("export's images differ from gan.GenerateLabeled's by %.3g", worst)
				}
			}
			if n.Conditional {
				if _, err := ExportNetClasses(n, z, classes[:4]); err == nil {
					t.Error("4 classes for 5 samples were accepted")
				}
			} else if _, err := ExportNetClasses(n, z, []int{0, 1, 2, 3, 4}); err == nil {
				t.Error("classes for an unconditional network were accepted")
			}
		})
	}
}

// TestSpectralNormExportWeights: a spectrally normalized discriminator is
// exported with W/σ, σ = uᵀWv computed here in float64 from the
// checkpoint's weight_orig, weight_u and weight_v: the stored vectors, as
// torch.nn.utils.spectral_norm uses them in eval mode, without a new power
// iteration. That choice matters: one more iteration moves σ well beyond
// the tests' tolerances for the convolutions.
func TestSpectralNormExportWeights(t *testing.T) {
	ck := recipeCheckpoint(t, gan.Recipe{SpectralNorm: true})
	f, err := safetensors.Read(ck)
	if err != nil {
		t.Fatal(err)
	}
	n, err := Load(ck, Discriminator)
	if err != nil {
		t.Fatal(err)
	}
	e, err := ExportNet(n, SampleInput(Discriminator, 2, 1))
	if err != nil {
		t.Fatal(err)
	}
	inits, err := e.Model.Initializers()
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]*onnx.Tensor{}
	for _, in := range inits {
		byName[in.Name] = in
	}
	for _, layer := range []string{"0", "2", "6"} {
		w, err1 := f.F32("D." + layer + ".weight_orig")
		u, err2 := f.F32("D." + layer + ".weight_u")
		v, err3 := f.F32("D." + layer + ".weight_v")
		if err1 != nil || err2 != nil || err3 != nil {
			t.Fatalf("layer %s: %v %v %v", layer, err1, err2, err3)
		}
		rows, cols := u.Len(), v.Len()
		sigma := 0.0
		for i := range rows {
			r := 0.0
			for j := range cols {
				r += float64(w.Data()[i*cols+j]) * float64(v.Data()[j])
			}
			sigma += float64(u.Data()[i]) * r
		}
		got, ok := byName[layer+".weight"]
		if !ok {
			t.Fatalf("no initializer %s.weight (have %d)", layer, len(inits))
		}
		if fmt.Sprint(got.Shape) != fmt.Sprint(w.Shape()) {
			t.Fatalf("%s.weight: shape %v, weight_orig's %v", layer, got.Shape, w.Shape())
		}
		for i, x := range w.Data() {
			if want := float32(float64(x) / sigma); float32(got.Floats[i]) != want {
				t.Fatalf("%s.weight[%d] = %.9g, want W/σ = %.9g (σ = %.9g)", layer, i, got.Floats[i], want, sigma)
			}
		}
		// σ after one more power iteration, which eval mode does not run
		u2, v2 := slices.Clone(u.Data()), slices.Clone(v.Data())
		if err := gan.PowerIteration(w, u2, v2); err != nil {
			t.Fatal(err)
		}
		sigma2 := 0.0
		for i := range rows {
			for j := range cols {
				sigma2 += float64(u2[i]) * float64(w.Data()[i*cols+j]) * float64(v2[j])
			}
		}
		t.Logf("layer %s: σ = %.6g from the stored u, v; %.6g after one more power iteration (relative change %.2g)", layer, sigma, sigma2, math.Abs(sigma2-sigma)/sigma)
		// (the Linear's weight has one row: its u is ±1 and an iteration
		// barely moves σ; the convolutions' do)
		if rows > 1 && math.Abs(sigma2-sigma) < 1e-4*sigma {
			t.Errorf("layer %s: one more power iteration changes σ by less than 1e-4: the check cannot tell the two apart", layer)
		}
	}
}

// runORTTyped is runORT for inputs of type FLOAT or INT64
// (testdata/ort_run_typed.js).
func runORTTyped(t *testing.T, modules, node, model string, inputs []*onnx.Tensor) map[string]ortTensor {
	t.Helper()
	type typed struct {
		Type string    `json:"type"`
		Dims []int     `json:"dims"`
		Data []float64 `json:"data"`
	}
	req := struct {
		Model  string           `json:"model"`
		Inputs map[string]typed `json:"inputs"`
	}{Model: model, Inputs: map[string]typed{}}
	for _, in := range inputs {
		switch in.Type {
		case onnx.Float:
			req.Inputs[in.Name] = typed{"float32", in.Shape, in.Floats}
		case onnx.Int64:
			d := make([]float64, len(in.Ints))
			for i, v := range in.Ints {
				d[i] = float64(v)
			}
			req.Inputs[in.Name] = typed{"int64", in.Shape, d}
		default:
			t.Fatalf("input %q of type %s", in.Name, in.Type)
		}
	}
	body, err := json.Marshal(req)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(node, "testdata/ort_run_typed.js")
	cmd.Env = append(os.Environ(), "NODE_PATH="+modules)
	cmd.Stdin = bytes.NewReader(body)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("ONNX Runtime on %s: %v\n%s", model, err, stderr.String())
	}
	var resp struct {
		Version string               `json:"version"`
		Outputs map[string]ortTensor `json:"outputs"`
	}
	if err := json.Unmarshal(out, &resp); err != nil {
		t.Fatalf("ONNX Runtime's answer: %v", err)
	}
	t.Logf("ONNX Runtime %s", resp.Version)
	return resp.Outputs
}

// TestRecipeExportsRunInONNXRuntime: the conditional generator and
// discriminator (with and without spectral norm) and the spectral-norm
// discriminator run in ONNX Runtime (onnxruntime-node), class input
// included, with outputs equal to backprop's to 1e-5.
func TestRecipeExportsRunInONNXRuntime(t *testing.T) {
	modules, node := onnxRuntime(t)
	dir := t.TempDir()
	for _, x := range recipeExports(t) {
		t.Run(x.name, func(t *testing.T) {
			path := filepath.Join(dir, strings.ReplaceAll(x.name, "/", "_")+".onnx")
			if err := x.e.Model.Save(path); err != nil {
				t.Fatal(err)
			}
			got := runORTTyped(t, modules, node, path, x.e.Inputs)
			want := x.e.Outputs[0]
			g, ok := got[want.Name]
			if !ok {
				t.Fatalf("ONNX Runtime gave no output %q (it gave %d)", want.Name, len(got))
			}
			compare(t, want.Name, g.Dims, g.Data, want)
		})
	}
}

// torchPython returns a Python interpreter that imports torch
// (BACKPROP_TORCH_PYTHON, /usr/bin/python3 or python3 on PATH), or skips
// the test.
func torchPython(t *testing.T) string {
	t.Helper()
	var tried []string
	for _, p := range []string{os.Getenv("BACKPROP_TORCH_PYTHON"), "/usr/bin/python3", "python3"} {
		if p == "" {
			continue
		}
		path, err := exec.LookPath(p)
		if err != nil {
			tried = append(tried, p+": not found")
			continue
		}
		if err := exec.Command(path, "-c", "import torch").Run(); err != nil {
			tried = append(tried, path+": no torch")
			continue
		}
		return path
	}
	t.Skipf("no Python with torch (set BACKPROP_TORCH_PYTHON): %s", strings.Join(tried, "; "))
	return ""
}

// TestRecipeWeightsRunInPyTorch: export --pytorch of a conditional, a
// spectral-norm and a conditional spectral-norm checkpoint writes weights
// that model.py's Generator and Discriminator (built with the kwargs the
// files name) load with load_state_dict(strict=True), and that compute
// backprop's outputs in eval mode, classes included. For spectral norm
// PyTorch's own torch.nn.utils.spectral_norm divides by σ from the stored
// u and v, so this checks that backprop's evaluation mode is PyTorch's.
func TestRecipeWeightsRunInPyTorch(t *testing.T) {
	py := torchPython(t)
	for _, c := range recipes {
		t.Run(c.name, func(t *testing.T) {
			ck := recipeCheckpoint(t, c.r)
			nets, err := LoadAll(ck, "")
			if err != nil {
				t.Fatal(err)
			}
			dir := t.TempDir()
			files, err := WritePyTorch(dir, nets)
			if err != nil {
				t.Fatal(err)
			}
			if len(files) != 3 {
				t.Fatalf("files %v, want the generator's, the discriminator's and model.py", files)
			}
			args := []string{"testdata/torch_check.py", dir}
			wantKwargs := map[string]string{}
			for _, n := range nets {
				w, err := Weights(n)
				if err != nil {
					t.Fatal(err)
				}
				wantKwargs[string(n.Kind)+".safetensors"] = w.Metadata["kwargs"]
				e, err := ExportNet(n, SampleInput(n.Kind, 12, 5))
				if err != nil {
					t.Fatal(err)
				}
				check := safetensors.NewFile()
				check.Metadata["weights"] = string(n.Kind) + ".safetensors"
				for _, in := range append(e.Inputs, e.Outputs...) {
					if in.Type == onnx.Int64 {
						err = check.AddI64s(in.Name, in.Ints)
					} else {
						var x *tensor.Tensor[float32]
						if x, err = onnx.ToTensor[float32](in); err == nil {
							err = check.AddF32(in.Name, x)
						}
					}
					if err != nil {
						t.Fatal(err)
					}
				}
				path := filepath.Join(t.TempDir(), string(n.Kind)+"_check.safetensors")
				if err := check.WriteFile(path); err != nil {
					t.Fatal(err)
				}
				args = append(args, path)
			}
			cmd := exec.Command(py, args...)
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("%s %v: %v\n%s", py, args, err, stderr.String())
			}
			var report map[string]struct {
				Class        string         `json:"class"`
				Kwargs       map[string]int `json:"kwargs"`
				Shape        []int          `json:"shape"`
				MaxAbsDiff   float64        `json:"max_abs_diff"`
				MaxAbsOutput float64        `json:"max_abs_output"`
			}
			if err := json.Unmarshal(out, &report); err != nil {
				t.Fatalf("torch_check.py's answer %q: %v", out, err)
			}
			if len(report) != 2 {
				t.Fatalf("torch_check.py checked %d networks, want 2: %s", len(report), out)
			}
			for file, r := range report {
				kw, _ := json.Marshal(r.Kwargs)
				if string(kw) != wantKwargs[file] {
					t.Errorf("%s: PyTorch built %s(%s), the file names %s", file, r.Class, kw, wantKwargs[file])
				}
				t.Logf("%s: %s(%s) loaded strictly; output %v, largest |PyTorch − backprop| %.3g (outputs up to %.3g)", file, r.Class, kw, r.Shape, r.MaxAbsDiff, r.MaxAbsOutput)
				if !(r.MaxAbsDiff <= 1e-5*math.Max(1, r.MaxAbsOutput)) {
					t.Errorf("%s: PyTorch's output differs from backprop's by %.3g", file, r.MaxAbsDiff)
				}
			}
		})
	}
}

// TestRecipeLoadErrors: what still cannot be exported is refused with a
// sentence naming the checkpoint, the network and why: a recipe flag that
// is not a boolean, and tensors that do not fit the networks the recipe
// describes.
func TestRecipeLoadErrors(t *testing.T) {
	dir := t.TempDir()
	tensors := map[string]*tensor.Tensor[float32]{"G.0.weight": tensor.New[float32](2, 2), "D.0.weight": tensor.New[float32](2, 2)}
	for _, c := range []struct {
		meta map[string]string
		kind Kind
		want []string
	}{
		{map[string]string{"recipe.conditional": "maybe"}, Generator, []string{"generator", `recipe.conditional = "maybe"`}},
		{map[string]string{"recipe.spectral_norm": "yes please"}, Discriminator, []string{"discriminator", "recipe.spectral_norm"}},
		{map[string]string{"recipe.conditional": "true"}, Generator, []string{"generator of recipe", "conditional"}},
		{map[string]string{"recipe.spectral_norm": "true"}, Discriminator, []string{"discriminator of recipe", "spectral norm"}},
	} {
		path := filepath.Join(dir, "ck.safetensors")
		if err := safetensors.Write(path, tensors, c.meta); err != nil {
			t.Fatal(err)
		}
		_, err := Load(path, c.kind)
		if err == nil {
			t.Errorf("%v %s: loaded", c.meta, c.kind)
			continue
		}
		for _, w := range append(c.want, path) {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%v %s: %v, want an error naming %q", c.meta, c.kind, err, w)
			}
		}
	}
}

// TestTorchClassKwargs: the weights files of the recipes' networks name
// model.py's constructor arguments that rebuild them.
func TestTorchClassKwargs(t *testing.T) {
	for _, c := range []struct {
		n    *Net
		want string
	}{
		{&Net{Kind: Generator, Conditional: true}, "Generator{conditional:1}"},
		{&Net{Kind: Discriminator, Conditional: true, SpectralNorm: true}, "Discriminator{conditional:1 spectral_norm:1}"},
		{&Net{Kind: Discriminator, SpectralNorm: true}, "Discriminator{spectral_norm:1}"},
		{&Net{Kind: Discriminator}, "Discriminator{}"},
	} {
		class, kw, err := TorchClass(c.n)
		if err != nil {
			t.Fatal(err)
		}
		var parts []string
		for _, k := range slices.Sorted(maps.Keys(kw)) {
			parts = append(parts, fmt.Sprintf("%s:%d", k, kw[k]))
		}
		if got := class + "{" + strings.Join(parts, " ") + "}"; got != c.want {
			t.Errorf("%+v: %s, want %s", c.n, got, c.want)
		}
	}
	if _, _, err := TorchClass(&Net{Kind: Generator, SpectralNorm: true}); err == nil {
		t.Error("a spectrally normalized generator was given a class")
	}
}

// TestImportGather: the importer takes the Gather the conditional exports
// use (rows of a matrix by an INT64 vector, negative indices counting from
// the end) and refuses other gathers by name, as unsupported.
func TestImportGather(t *testing.T) {
	model := func(axis int, dataShape []int) *onnx.Model {
		b := onnx.NewBuilder("gather")
		b.Input("idx", onnx.Int64, []int{-1})
		data := &onnx.Tensor{Name: "table", Type: onnx.Float, Shape: dataShape, Floats: make([]float64, tensor.NumElements(dataShape))}
		for i := range data.Floats {
			data.Floats[i] = float64(i)
		}
		b.Initializer(data)
		b.Node("Gather", []string{"table", "idx"}, []string{"rows"}, onnx.Attr{Name: "axis", Value: axis})
		b.Output("rows", onnx.Float, []int{-1, dataShape[len(dataShape)-1]})
		m, err := b.Model()
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	idx := &onnx.Tensor{Name: "idx", Type: onnx.Int64, Shape: []int{3}, Ints: []int64{2, -1, 0}}
	got, err := backendtest.Run[float32](model(0, []int{4, 2}), []*onnx.Tensor{idx})
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(got[0].Shape, got[0].Floats) != "[3 2] [4 5 6 7 0 1]" {
		t.Errorf("rows 2, −1, 0 of a 4×2 table: %v %v", got[0].Shape, got[0].Floats)
	}
	for _, c := range []struct {
		axis  int
		shape []int
		want  string
	}{{1, []int{4, 2}, "axis 1"}, {0, []int{4, 2, 2}, "data of rank 3"}} {
		_, err := backendtest.Run[float32](model(c.axis, c.shape), []*onnx.Tensor{idx})
		if err == nil || !onnx.IsUnsupported(err) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("axis %d, data %v: %v, want unsupported naming %q", c.axis, c.shape, err, c.want)
		}
	}
	bad := &onnx.Tensor{Name: "idx", Type: onnx.Int64, Shape: []int{1}, Ints: []int64{4}}
	if _, err := backendtest.Run[float32](model(0, []int{4, 2}), []*onnx.Tensor{bad}); err == nil || !strings.Contains(err.Error(), "index 4") {
		t.Errorf("index 4 of 4 rows: %v", err)
	}
}
