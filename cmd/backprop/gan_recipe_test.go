package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/backprop-dev/backprop/data"
	"github.com/backprop-dev/backprop/gan"
)

// ganLabeledData writes a directory of IDX files with n 28×28 images per
// split and labels i mod 10: each class a bright bar at its own column.
func ganLabeledData(t *testing.T, n int) string {
	t.Helper()
	dir := t.TempDir()
	for _, split := range []string{"train", "t10k"} {
		px := make([]uint8, n*28*28)
		labels := make([]uint8, n)
		for i := range n {
			labels[i] = uint8(i % 10)
			x0 := 2 + 2*int(labels[i])
			for y := 4; y < 24; y++ {
				for x := x0; x < x0+3; x++ {
					px[i*784+y*28+x] = uint8(150 + (i*13+y)%100)
				}
			}
		}
		if err := data.WriteIDX(filepath.Join(dir, split+"-images-idx3-ubyte"), []int{n, 28, 28}, px); err != nil {
			t.Fatal(err)
		}
		if err := data.WriteIDX(filepath.Join(dir, split+"-labels-idx1-ubyte"), []int{n}, labels); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// TestTrainGANRecipeFlags checks the recipe options of train gan, sample
// --class and eval's mode coverage end to end on a tiny labelled set: a
// conditional run with every other ingredient, its checkpoint recognised
// by sample (--class required, classes written beside the samples) and
// eval (per-class precision), and the refusals with their exit statuses.
func TestTrainGANRecipeFlags(t *testing.T) {
	dir := ganLabeledData(t, 200)
	run := filepath.Join(t.TempDir(), "cond")
	if st, _, stderr := runCLI(t, "train", "gan", "-q", "--data", dir, "--epochs", "1", "--batch", "20", "--conditional",
		"--ema", "0.99", "--loss", "hinge", "--spectral-norm", "--lr-d", "4e-4", "--lr-g", "1e-4", "--out", run); st != 0 {
		t.Fatalf("train gan --conditional …: status %d\n%s", st, stderr)
	}
	ck := filepath.Join(run, "checkpoint.safetensors")
	c, err := gan.OpenCheckpoint(ck)
	if err != nil || !c.Conditional() || c.Format != 3 || c.Config.Recipe.Loss != gan.LossHinge || c.Config.Recipe.EMA != 0.99 {
		t.Fatalf("checkpoint: %v, %+v", err, c)
	}

	// refusals: status 2 for the command line, 1 for R1
	for _, c := range []struct {
		args   []string
		status int
		msg    string
	}{
		{[]string{"train", "gan", "--data", dir, "--r1", "10", "--out", t.TempDir()}, 1, "double backprop"},
		{[]string{"train", "gan", "--data", dir, "--loss", "wgan", "--out", t.TempDir()}, 2, `--loss "wgan"`},
		{[]string{"train", "gan", "--data", dir, "--loss", "hinge", "--label-smoothing", "0.9", "--out", t.TempDir()}, 2, "hinge loss has none"},
		{[]string{"train", "gan", "--resume", run, "--loss", "bce", "--epochs", "2"}, 2, "--loss"},
		{[]string{"train", "gan", "--resume", run, "--conditional=false", "--epochs", "2"}, 2, "--conditional"},
		{[]string{"train", "gan", "--data", dir, "--arch", "biggan", "--out", t.TempDir()}, 2, `--arch "biggan": want default`},
		{[]string{"train", "gan", "--resume", run, "--arch", "reference", "--epochs", "2"}, 2, "--arch"},
		{[]string{"sample", "--checkpoint", ck, "--no-ema", "--n", "10", "--out", filepath.Join(t.TempDir(), "s.png")}, 0, ""},
		{[]string{"sample", "--checkpoint", ck, "--class", "all", "--n", "15", "--out", filepath.Join(t.TempDir(), "s.png")}, 2, "multiple of 10"},
		{[]string{"sample", "--checkpoint", ck, "--class", "12", "--n", "10", "--out", filepath.Join(t.TempDir(), "s.png")}, 2, "want a class 0…9 or all"},
	} {
		st, _, stderr := runCLI(t, c.args...)
		if st != c.status || !strings.Contains(stderr, c.msg) {
			t.Errorf("%q: status %d, want %d and %q in\n%s", c.args, st, c.status, c.msg, stderr)
		}
	}

	// --resume keeps the recipe (the flags need not be repeated) and
	// reaches the new --epochs
	if st, _, stderr := runCLI(t, "train", "gan", "-q", "--resume", run, "--epochs", "2"); st != 0 {
		t.Fatalf("resume: %d\n%s", st, stderr)
	}
	if c2, err := gan.OpenCheckpoint(ck); err != nil || c2.Epoch != 2 || c2.Config.Recipe != c.Config.Recipe {
		t.Fatalf("resumed checkpoint: %v, %+v", err, c2)
	}

	// the default arch is the conditional recipe with an EMA; --arch
	// reference is the reference DCGAN (format 2), and an option changes
	// one ingredient of the arch's recipe
	for _, c := range []struct {
		args   []string
		recipe gan.Recipe
		format int
	}{
		{nil, gan.DefaultRecipe, 3},
		{[]string{"--arch", "reference"}, gan.Recipe{}, 2},
		{[]string{"--conditional=false"}, gan.Recipe{EMA: gan.DefaultRecipe.EMA}, 3},
		{[]string{"--arch", "reference", "--ema", "0.99"}, gan.Recipe{EMA: 0.99}, 3},
	} {
		out := filepath.Join(t.TempDir(), "run")
		args := append([]string{"train", "gan", "-q", "--data", dir, "--epochs", "1", "--batch", "100", "--out", out}, c.args...)
		if st, _, stderr := runCLI(t, args...); st != 0 {
			t.Fatalf("%q: status %d\n%s", args, st, stderr)
		}
		got, err := gan.OpenCheckpoint(filepath.Join(out, "checkpoint.safetensors"))
		if err != nil || got.Format != c.format || got.Config.Recipe.String() != c.recipe.String() {
			t.Errorf("%q: checkpoint format %d, recipe %q (%v); want format %d, recipe %q", args, got.Format, got.Config.Recipe, err, c.format, c.recipe)
		}
	}

	// a conditional checkpoint sampled without --class draws the classes
	// in turn
	turn := filepath.Join(t.TempDir(), "t.idx.gz")
	if st, stdout, stderr := runCLI(t, "sample", "--checkpoint", ck, "--n", "13", "--out", turn); st != 0 || !strings.Contains(stdout, "t-labels.idx.gz") {
		t.Fatalf("sample without --class: %d\n%s%s", st, stdout, stderr)
	}
	if labels, err := data.ReadLabels(strings.TrimSuffix(turn, ".idx.gz") + "-labels.idx.gz"); err != nil || len(labels) != 13 || labels[3] != 3 || labels[12] != 2 {
		t.Fatalf("classes drawn without --class: %v, %v", labels, err)
	}

	// an unconditional checkpoint refuses --class
	plain := filepath.Join(t.TempDir(), "plain")
	if st, _, stderr := runCLI(t, "train", "gan", "-q", "--data", dir, "--epochs", "1", "--batch", "100", "--arch", "reference", "--out", plain); st != 0 {
		t.Fatalf("train gan: %d\n%s", st, stderr)
	}
	if st, _, stderr := runCLI(t, "sample", "--checkpoint", filepath.Join(plain, "checkpoint.safetensors"), "--no-ema", "--n", "10", "--out", filepath.Join(t.TempDir(), "s.png")); st != 2 || !strings.Contains(stderr, "trained without --ema") {
		t.Errorf("--no-ema on a checkpoint without EMA: %d\n%s", st, stderr)
	}
	if st, _, stderr := runCLI(t, "sample", "--checkpoint", filepath.Join(plain, "checkpoint.safetensors"), "--class", "3", "--n", "10", "--out", filepath.Join(t.TempDir(), "s.png")); st != 2 || !strings.Contains(stderr, "is not class-conditional") {
		t.Errorf("--class on an unconditional checkpoint: %d\n%s", st, stderr)
	}

	// sample --class all: 20 images, 2 of each class cycling through the
	// classes, which are written beside them
	samples := filepath.Join(t.TempDir(), "s.idx.gz")
	st, stdout, stderr := runCLI(t, "sample", "--checkpoint", ck, "--class", "all", "--n", "20", "--out", samples)
	if st != 0 || !strings.Contains(stdout, "s-labels.idx.gz") {
		t.Fatalf("sample --class all: %d\n%s%s", st, stdout, stderr)
	}
	labels, err := data.ReadLabels(strings.TrimSuffix(samples, ".idx.gz") + "-labels.idx.gz")
	if err != nil || len(labels) != 20 || labels[0] != 0 || labels[1] != 1 || labels[10] != 0 || labels[19] != 9 {
		t.Fatalf("classes written: %v, %v", labels, err)
	}
	grid := filepath.Join(t.TempDir(), "g.png")
	if st, _, stderr := runCLI(t, "sample", "--checkpoint", ck, "--class", "all", "--n", "30", "--out", grid); st != 0 {
		t.Fatalf("sample --class all PNG: %d\n%s", st, stderr)
	}
	if _, err := os.Stat(strings.TrimSuffix(grid, ".png") + ".png-labels.idx"); err == nil {
		t.Error("a PNG grid got a labels file")
	}

	// eval finds the classes and reports the per-class precision
	st, stdout, stderr = runCLI(t, "eval", "--data", dir, "--cache", t.TempDir(), "--ref", "100", "--json", "--samples", "cond="+samples)
	if st != 0 {
		t.Fatalf("eval: %d\n%s", st, stderr)
	}
	var res struct {
		Scores []struct {
			Name      string     `json:"name"`
			MaxDev    *float64   `json:"max_class_deviation"`
			Precision []*float64 `json:"class_precision"`
		} `json:"scores"`
	}
	if err := json.Unmarshal([]byte(stdout), &res); err != nil {
		t.Fatalf("%v\n%s", err, stdout)
	}
	last := res.Scores[len(res.Scores)-1]
	if last.Name != "cond" || last.MaxDev == nil || len(last.Precision) != 10 || res.Scores[0].Precision != nil {
		t.Errorf("eval JSON: %s", stdout)
	}
	for c, p := range last.Precision {
		if p == nil || *p < 0 || *p > 1 {
			t.Errorf("class %d precision %v, want a share (2 samples asked for each class)", c, p)
		}
	}
}

// TestSplitsSeeAllClasses checks the warning's condition: classes
// cycling through the samples reach every split, classes one after the
// other do not.
func TestSplitsSeeAllClasses(t *testing.T) {
	cycling, sorted := make([]uint8, 100), make([]uint8, 100)
	for i := range cycling {
		cycling[i], sorted[i] = uint8(i%10), uint8(i/10)
	}
	if !splitsSeeAllClasses(cycling, 10) || splitsSeeAllClasses(sorted, 10) || !splitsSeeAllClasses(sorted, 1) {
		t.Error("splitsSeeAllClasses")
	}
}
