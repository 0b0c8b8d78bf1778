package data

import (
	"os"
	"strings"
	"testing"

	"github.com/backprop-dev/backprop/internal/testenv"
)

// checkReal loads both splits of a real 28×28, 10-class data set.
func checkReal(t *testing.T, name string) {
	for _, tc := range []struct {
		split string
		n     int
	}{{Train, 60000}, {Test, 10000}} {
		d, err := Load(name, tc.split)
		if err != nil {
			t.Fatal(err)
		}
		if d.Len() != tc.n {
			t.Fatalf("%s %s: %d examples, want %d", name, tc.split, d.Len(), tc.n)
		}
		s := d.Images.Shape()
		if len(s) != 4 || s[0] != tc.n || s[1] != 1 || s[2] != 28 || s[3] != 28 {
			t.Fatalf("%s %s: shape %v", name, tc.split, s)
		}
		var classes [256]int
		for _, l := range d.Labels {
			classes[l]++
		}
		for c := 0; c < 10; c++ {
			if classes[c] < tc.n/20 {
				t.Errorf("%s %s: class %d has only %d examples", name, tc.split, c, classes[c])
			}
		}
		lo, hi := float32(1), float32(0)
		for _, v := range d.Images.Data() {
			lo, hi = min(lo, v), max(hi, v)
		}
		if lo != 0 || hi != 1 {
			t.Errorf("%s %s: pixel range [%v, %v], want [0, 1]", name, tc.split, lo, hi)
		}
		t.Logf("%s %s: %d images from %s", name, tc.split, d.Len(), d.ImagesFile)
	}
}

func TestRealMNIST(t *testing.T) {
	if testing.Short() {
		t.Skip("loads 70000 images; skipped with -short")
	}
	if _, err := MNISTDir(); err != nil {
		testenv.Missing(t, "mnist", err.Error())
	}
	checkReal(t, "mnist")
}

func TestRealFashionMNIST(t *testing.T) {
	if testing.Short() {
		t.Skip("loads 70000 images; skipped with -short")
	}
	if _, err := FashionMNISTDir(); err != nil {
		testenv.Missing(t, "fashion-mnist", err.Error())
	}
	checkReal(t, "fashion-mnist")
}

func TestFashionMNISTMissingSaysHow(t *testing.T) {
	if _, err := os.Stat(FashionMNISTPath); err == nil {
		t.Skip("Fashion-MNIST is installed")
	}
	_, err := Load("fashion-mnist", Train)
	if err == nil || !strings.Contains(err.Error(), "apt-get install -y dataset-fashion-mnist") {
		t.Fatalf("err = %v", err)
	}
}
