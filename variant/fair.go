package variant

import (
	"fmt"
	"math"

	"github.com/backprop-dev/backprop/spec"
)

// MaxLogit bounds a fair variant's sigmoid pre-activations: |a| ≤ 4 keeps
// σ(a) within [0.018, 0.982], so that a student who writes p (or x') to
// four digits still gets gradients of the right size. Beyond it the
// discriminator saturates: at a = 17, 1 − p ≈ 4·10⁻⁸ and every gradient of
// log p rounds to 0.
const MaxLogit = 4.0

// kink is how close to 0 a ReLU pre-activation may come: closer, and
// whether the unit is on depends on rounding or on the convention for the
// ReLU's derivative at 0.
const kink = 1e-9

// preActivations names, for the networks variant draws, each nonlinearity's
// input node: the ReLUs' u0 and u2 and the logistic unit's a in Problem 1,
// the ReLU's u1 and the sigmoid's u2 in Problem 2. These are the names
// spec.Build gives them (the layer's preactivation, else u<n> for h<n>,
// else a for the logistic unit).
func preActivations(s *spec.Spec) (relu, sigmoid []string) {
	for _, l := range s.Layers {
		name := l.Preactivation
		switch {
		case l.Type == "logistic":
			if name == "" {
				name = "a"
			}
			sigmoid = append(sigmoid, name)
		case l.Activation == "relu" || l.Activation == "sigmoid":
			if name == "" && len(l.Name) > 1 && l.Name[0] == 'h' {
				name = "u" + l.Name[1:]
			}
			if l.Activation == "relu" {
				relu = append(relu, name)
			} else {
				sigmoid = append(sigmoid, name)
			}
		}
	}
	return relu, sigmoid
}

// Fair reports why a drawn network is not a fair exercise, or "" when it
// is. It runs the network's forward pass (spec.Build) and asks that
//   - every sigmoid's pre-activation lie within ±MaxLogit,
//   - no ReLU pre-activation lie within 1e-9 of 0 (the kink),
//   - at least one ReLU unit be off (pre-activation < 0), so that the
//     masks of the backward pass zero something (when the network has two
//     ReLU units or more), and
//   - every ReLU layer keep at least one unit on, so that no asked
//     gradient is zero throughout.
//
// An error means the spec does not build.
func Fair(s *spec.Spec) (string, error) {
	m, err := spec.Build[float64](s)
	if err != nil {
		return "", err
	}
	relu, sigmoid := preActivations(s)
	value := func(name string) ([]float64, error) {
		v := m.Name[name]
		if v == nil {
			return nil, fmt.Errorf("fairness check: the network has no node %q", name)
		}
		return v.Value.Data(), nil
	}
	for _, name := range sigmoid {
		vals, err := value(name)
		if err != nil {
			return "", err
		}
		for i, x := range vals {
			if math.Abs(x) > MaxLogit {
				return fmt.Sprintf("sigmoid saturated: %s%s = %.4g, outside ±%g", name, at(vals, i), x, MaxLogit), nil
			}
		}
	}
	off, units := 0, 0
	for _, name := range relu {
		vals, err := value(name)
		if err != nil {
			return "", err
		}
		on := 0
		units += len(vals)
		for i, x := range vals {
			switch {
			case math.Abs(x) <= kink:
				return fmt.Sprintf("ReLU at its kink: %s%s = %.3g", name, at(vals, i), x), nil
			case x > 0:
				on++
			default:
				off++
			}
		}
		if on == 0 {
			return fmt.Sprintf("every ReLU unit of %s is off", name), nil
		}
	}
	if units >= 2 && off == 0 {
		return fmt.Sprintf("no ReLU unit is off (%v all positive)", relu), nil
	}
	return "", nil
}

// at is the 1-based flat index of element i, empty for a scalar.
func at(vals []float64, i int) string {
	if len(vals) == 1 {
		return ""
	}
	return fmt.Sprintf("[%d]", i+1)
}
