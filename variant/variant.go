// Package variant makes randomized versions of problems for a class: the
// tiny GAN of Problem 1 and the auto-encoder of Problem 2 of the problem
// set, and four problems of the course's bank, the softmax classifier (an
// MLP with ReLU on a batch, mean cross-entropy against class labels), the
// conv net (convolution, ReLU, max pooling, a linear layer and
// cross-entropy), the Elman RNN over three time steps with a read-out at
// every step (backpropagation through time) and one attention head over
// three tokens (scaled dot-product attention), with weights drawn at a chosen decimal precision (one
// decimal, like the seed) and, optionally, different sizes. Each variant comes with
// a student sheet, a template for the student's numbers, and an answer key
// that `backprop grade` checks answers against: the numbers of `backprop
// solve --format json`, every element of every step of the worked trace
// with its label (h0[1], ∂J/∂w0[1,2]) and the full worked solution.
//
// Draws are fair by default: a variant is redrawn until every sigmoid is
// out of saturation (its pre-activation within ±MaxLogit, so that p or x'
// written to four digits still gives the right gradients) and at least one
// ReLU unit is off, so that the masks of the backward pass matter (see
// Fair); the softmax classifier and the conv net are also redrawn until
// no row of logits spreads by more than MaxLogit, a batch has two labels
// or more and one sample classified wrong, and no pooling window has a
// tie for its maximum; the RNN until every pre-activation lies within
// ±MaxRecurrent (no saturated tanh), the attention head until no softmax
// row has a probability above MaxAttention. Options.AnyDraws restores the draws made before
// fairness was checked.
//
// Generation is deterministic: a variant depends only on the seed, its
// problem and its number (not on how many variants are made), and every
// file is written byte for byte the same for the same options. Fair draws
// come from math/rand/v2's PCG seeded through SplitMix64 (see newSource);
// AnyDraws keeps the original rand.NewPCG(seed, stream) seeding, so that it
// draws the same numbers as before.
package variant

import (
	"bytes"
	"fmt"
	"math/rand/v2"

	"github.com/backprop-dev/backprop/derive"
	"github.com/backprop-dev/backprop/solve"
	"github.com/backprop-dev/backprop/spec"
)

// KeyFormat is the version of the key.json layout. Version 1 gained the
// optional "ask" field and, for GAN variants, the discriminator's
// pre-activation "a" among the forward values without changing anything a
// version-1 reader relies on.
const KeyFormat = 1

// MaxAttempts bounds the redraws of one fair variant; a variant that finds
// no fair draw in as many attempts is an error naming the last reason.
const MaxAttempts = 10000

// Options choose what Generate makes.
type Options struct {
	Seed  uint64
	Count int // variants per problem, 1 to 999
	// Problem is "gan", "autoencoder", "both" (gan and autoencoder),
	// "softmax", "convnet", "rnn", "attention" or "all" (the six).
	Problem   string
	Precision int // decimals of every drawn number, 1 to 4
	// VarySizes draws the sizes too: the GAN's z length (2–3), channels
	// (1–3), kernel size (2–3); the auto-encoder's input (3–5) and hidden
	// (2–4) sizes. Otherwise the seed's sizes are kept.
	VarySizes bool
	// Signed draws the GAN's w0 and w1 from both signs too (the seed's are
	// all positive). Fair draws always give b0, b1, w2 and b2 both signs;
	// with AnyDraws, Signed is what makes any weight negative.
	Signed bool
	// AnyDraws turns the fairness conditions off and draws as variants
	// were drawn before they existed: the same seeding and ranges, so the
	// same numbers for the same options, whether or not a sigmoid
	// saturates or a ReLU is off.
	AnyDraws bool
}

// Variant is one generated problem: its files' contents.
type Variant struct {
	Name     string // directory name, e.g. "gan-03"
	Problem  string // "gan", "autoencoder", "softmax" or "convnet"
	Index    int    // 1-based number among the variants of its problem
	Spec     []byte // the network in the spec format (YAML)
	Sheet    []byte // the student sheet (Markdown with LaTeX)
	Template []byte // answers-template.json: the asked values, every number null
	Key      []byte // key.json
	Solution []byte // the worked solution (Markdown), as `backprop solve --format markdown`: the handout
	// SolutionFull is every element of every step (Markdown), as `backprop
	// solve --detail full --format markdown`; its step numbers are those
	// of key.json and of `backprop grade`'s reports.
	SolutionFull []byte
	// Derivation is the symbolic gradient derivation (Markdown), as
	// `backprop derive --spec key/spec.yaml --format markdown`; only the
	// auto-encoder, whose sheet asks for the equations, has one.
	Derivation []byte
	// Attempts is how many draws were made before a fair one (1 with
	// AnyDraws).
	Attempts int
}

// Check validates the options.
func (o Options) Check() error {
	switch o.Problem {
	case "gan", "autoencoder", "both", "softmax", "convnet", "rnn", "attention", "all":
	default:
		return fmt.Errorf("problem: want gan, autoencoder, both, softmax, convnet, rnn, attention or all, got %q", o.Problem)
	}
	if o.Count < 1 || o.Count > 999 {
		return fmt.Errorf("count: want 1 to 999, got %d", o.Count)
	}
	if o.Precision < 1 || o.Precision > 4 {
		return fmt.Errorf("precision: want 1 to 4 decimals, got %d", o.Precision)
	}
	return nil
}

// Generate makes the variants: for "both" and "all", all the variants of
// one problem before the next, in the order gan, autoencoder, softmax,
// convnet, rnn, attention.
func Generate(o Options) ([]Variant, error) {
	if err := o.Check(); err != nil {
		return nil, err
	}
	var problems []string
	switch o.Problem {
	case "both":
		problems = []string{"gan", "autoencoder"}
	case "all":
		problems = Problems
	default:
		problems = []string{o.Problem}
	}
	var out []Variant
	for _, p := range problems {
		for i := 1; i <= o.Count; i++ {
			v, err := generate(o, p, i)
			if err != nil {
				return nil, fmt.Errorf("%s variant %d: %w", p, i, err)
			}
			out = append(out, v)
		}
	}
	return out, nil
}

// Problems are the problems variant draws, in the order "all" makes them.
var Problems = []string{"gan", "autoencoder", "softmax", "convnet", "rnn", "attention"}

// stream numbers keep the problems' random streams apart (AnyDraws).
var stream = map[string]uint64{"gan": 1 << 32, "autoencoder": 2 << 32, "softmax": 3 << 32, "convnet": 4 << 32, "rnn": 5 << 32, "attention": 6 << 32}

// problemID numbers the problems for the fair draws' seeding.
var problemID = map[string]uint64{"gan": 1, "autoencoder": 2, "softmax": 3, "convnet": 4, "rnn": 5, "attention": 6}

// golden64 is 2^64/φ, SplitMix64's increment.
const golden64 = 0x9e3779b97f4a7c15

// splitMix64 is the output of a SplitMix64 generator whose state was x
// before the step: a bijective mix of x + golden64.
func splitMix64(x uint64) uint64 {
	x += golden64
	x = (x ^ x>>30) * 0xbf58476d1ce4e5b9
	x = (x ^ x>>27) * 0x94d049bb133111eb
	return x ^ x>>31
}

// newSource is the random source of one variant. Fair draws use a PCG
// whose 128-bit state is the first two outputs of a SplitMix64 generator
// started at splitMix64(seed) XOR (problem<<16 | index), the project's
// pattern (autoencoder's seededPCG): neighbouring seeds and indices start
// from unrelated states. AnyDraws keeps rand.NewPCG(seed, stream+index),
// the seeding variants had before, so that it repeats their numbers.
func newSource(o Options, problem string, index int) *rand.Rand {
	if o.AnyDraws {
		return rand.New(rand.NewPCG(o.Seed, stream[problem]+uint64(index)))
	}
	x := splitMix64(o.Seed) ^ (problemID[problem]<<16 | uint64(index))
	return rand.New(rand.NewPCG(splitMix64(x), splitMix64(x+golden64)))
}

func generate(o Options, problem string, index int) (Variant, error) {
	d := &drawer{r: newSource(o, problem, index), prec: o.Precision, scale: pow10(o.Precision)}
	v := Variant{Name: fmt.Sprintf("%s-%02d", problem, index), Problem: problem, Index: index}
	file := v.Name + "/key/spec.yaml"
	// the sizes are drawn once; only the numbers are redrawn
	var draw func() ([]byte, string)
	switch problem {
	case "gan":
		sz := ganSizes(o, d)
		draw = func() ([]byte, string) { return gan(o, d, index, sz) }
	case "autoencoder":
		sz := aeSizes(o, d)
		draw = func() ([]byte, string) { return autoencoder(o, d, index, sz) }
	case "softmax":
		sz := softmaxSizes(o, d)
		draw = func() ([]byte, string) { return softmax(o, d, index, sz) }
	case "convnet":
		sz := convnetSizes(o, d)
		draw = func() ([]byte, string) { return convnet(o, d, index, sz) }
	case "rnn":
		sz := rnnSizes(o, d)
		draw = func() ([]byte, string) { return rnn(o, d, index, sz) }
	case "attention":
		sz := attentionSizes(o, d)
		draw = func() ([]byte, string) { return attention(o, d, index, sz) }
	}
	var s *spec.Spec
	var sheet, why string
	for v.Attempts = 1; ; v.Attempts++ {
		var err error
		v.Spec, sheet = draw()
		if s, err = spec.Parse(file, v.Spec); err != nil {
			return v, fmt.Errorf("generated spec does not parse: %w", err)
		}
		if o.AnyDraws {
			break
		}
		if why, err = Fair(s); err != nil {
			return v, err
		}
		if why == "" && (problem == "softmax" || problem == "convnet") {
			if why, err = fairCourse(s); err != nil {
				return v, err
			}
		}
		if why == "" && (problem == "rnn" || problem == "attention") {
			if why, err = fairSequence(s, problem); err != nil {
				return v, err
			}
		}
		if why == "" {
			break
		}
		if v.Attempts == MaxAttempts {
			return v, fmt.Errorf("no fair draw in %d attempts (the last: %s); --any-draws draws without the fairness conditions", MaxAttempts, why)
		}
	}
	sol, err := solve.Solve(s, solve.Options{})
	if err != nil {
		return v, err
	}
	var md bytes.Buffer
	if err := sol.WriteMarkdown(&md); err != nil {
		return v, err
	}
	v.Solution = md.Bytes()
	full, err := solve.Solve(s, solve.Options{Detail: "full"})
	if err != nil {
		return v, err
	}
	var fmd bytes.Buffer
	if err := full.WriteMarkdown(&fmd); err != nil {
		return v, err
	}
	v.SolutionFull = fmd.Bytes()
	if problem == "autoencoder" {
		if v.Derivation, err = derivation(s); err != nil {
			return v, err
		}
	}
	v.Key, v.Template, err = key(o, v, sol)
	if err != nil {
		return v, err
	}
	v.Sheet = []byte(sheet)
	return v, nil
}

// derivation is the gradient derivation of s as Markdown, as a course
// hands it out (derive.Textbook): the derivative rules, the scalar chain
// rule for one weight, the equations per sample and batched over N
// samples, in the variant's sizes.
func derivation(s *spec.Spec) ([]byte, error) {
	var b bytes.Buffer
	if err := derive.Textbook(s, "markdown", &b); err != nil {
		return nil, fmt.Errorf("derive: %w", err)
	}
	return b.Bytes(), nil
}

func pow10(n int) int {
	p := 1
	for range n {
		p *= 10
	}
	return p
}
