package main

import (
	"bytes"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// TestTrainsOnMNIST runs the example on 2048 MNIST training images for one
// epoch and checks that the classifier learned: far above the 10 % of
// guessing on the 10 000 test images.
func TestTrainsOnMNIST(t *testing.T) {
	var out bytes.Buffer
	if err := run([]string{"-limit", "2048", "-epochs", "1"}, &out); err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`epoch 1/1: train loss [0-9.]+, test accuracy ([0-9.]+)%`).FindStringSubmatch(out.String())
	if m == nil {
		t.Fatalf("no accuracy line in:\n%s", out.String())
	}
	acc, _ := strconv.ParseFloat(m[1], 64)
	t.Logf("%s", strings.TrimSpace(out.String()))
	if acc < 70 {
		t.Errorf("test accuracy %.2f%% after 32 steps, want ≥ 70%%", acc)
	}
}

func TestBadFlags(t *testing.T) {
	for _, args := range [][]string{{"-epochs", "0"}, {"-data", "/nonexistent"}} {
		if err := run(args, &bytes.Buffer{}); err == nil {
			t.Errorf("%v: no error", args)
		}
	}
}
